"""Convert a mamba_ssm Mamba2 checkpoint (e.g. state-spaces/mamba2-2.7b) to a transformers
Mamba2ForCausalLM folder: ``python scripts/convert_mamba2_ssm.py HUB_ID_OR_DIR OUT_DIR``.

mamba_ssm's Mamba2 defaults (d_state 128, d_conv 4, expand 2, headdim 64, ngroups 1, chunk 256)
fill the fields its config.json leaves out; the tensors keep their names except the embedding
(``backbone.embedding`` -> ``backbone.embeddings``). The tokenizer is GPT-NeoX-20B's, as for every
state-spaces checkpoint. Needs network access (hub) unless given local folders.
"""

import json
import sys
from pathlib import Path


def main(src: str, out: str) -> None:
    import torch
    from huggingface_hub import snapshot_download
    from transformers import AutoTokenizer, Mamba2Config, Mamba2ForCausalLM

    folder = Path(src) if Path(src).is_dir() else Path(snapshot_download(src))
    cfg = json.loads((folder / "config.json").read_text())
    ssm = {"d_state": 128, "d_conv": 4, "expand": 2, "headdim": 64, "ngroups": 1, "chunk_size": 256}
    ssm.update({k: v for k, v in cfg.get("ssm_cfg", {}).items() if k in ssm})
    vocab = cfg["vocab_size"]
    pad = cfg.get("pad_vocab_size_multiple", 1)
    vocab += (pad - vocab % pad) % pad
    config = Mamba2Config(
        vocab_size=vocab,
        hidden_size=cfg["d_model"],
        num_hidden_layers=cfg["n_layer"],
        state_size=ssm["d_state"],
        conv_kernel=ssm["d_conv"],
        expand=ssm["expand"],
        head_dim=ssm["headdim"],
        num_heads=ssm["expand"] * cfg["d_model"] // ssm["headdim"],
        n_groups=ssm["ngroups"],
        chunk_size=ssm["chunk_size"],
        tie_word_embeddings=cfg.get("tie_embeddings", True),
        residual_in_fp32=cfg.get("residual_in_fp32", True),
    )
    state = torch.load(folder / "pytorch_model.bin", map_location="cpu")
    state = {k.replace("backbone.embedding.", "backbone.embeddings."): v for k, v in state.items()}
    model = Mamba2ForCausalLM(config)
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not (config.tie_word_embeddings and k == "lm_head.weight")]
    if missing or unexpected:
        raise SystemExit(f"convert: missing {missing}, unexpected {unexpected}")
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained("EleutherAI/gpt-neox-20b").save_pretrained(out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
