"""Real tokenizers that ship inside PyPI wheels, saved as ordinary HF tokenizer folders.

- ``mistral-sp``: Mistral's 32k SentencePiece (``mistral-common`` ``data/tokenizer.model.v1``),
  byte fallback, ``▁`` for spaces. Loaded as ``LlamaTokenizer`` (a folder with
  ``tokenizer_config.json`` naming the class: ``LlamaTokenizer(vocab_file=...)`` alone gives a
  3-token tokenizer in transformers 5).
- ``mistral-sp-v3``: the 32,768-token SentencePiece of Mistral's v3 instruct tokenizer.
- ``tekken``: Mistral's 131k byte-level BPE (``data/tekken_240911.json``), converted by
  transformers through mistral-common once, then saved as a plain ``tokenizer.json`` so later
  loads need neither mistral-common nor the 2 s conversion. The converter sets no special
  tokens, so bos/eos/pad/unk are set from tekken's own control tokens (ids 1, 2, 11, 0).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from effeval.errors import ConfigError

TOKENIZERS = {
    "mistral-sp": "tokenizer.model.v1",
    "mistral-sp-v3": "mistral_instruct_tokenizer_240323.model.v3",
    "tekken": "tekken_240911.json",
}


def mistral_common_data_dir() -> Path:
    try:
        import mistral_common
    except ImportError:
        raise ConfigError(
            "zoo tokenizers need the 'mistral-common' package (it ships the real tokenizer files). "
            "Fix: pip install mistral-common"
        ) from None
    return Path(mistral_common.__file__).parent / "data"


def write_tokenizer(name: str, out_dir: str | os.PathLike) -> Path:
    """Write tokenizer ``name`` as a loadable HF tokenizer folder at ``out_dir``."""
    if name not in TOKENIZERS:
        raise ConfigError(f"tokenizer {name!r} is unknown. Fix: use one of {', '.join(TOKENIZERS)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    source = mistral_common_data_dir() / TOKENIZERS[name]
    if name.startswith("mistral-sp"):
        shutil.copyfile(source, out / "tokenizer.model")
        (out / "tokenizer_config.json").write_text(
            json.dumps(
                {
                    "tokenizer_class": "LlamaTokenizer",
                    "bos_token": "<s>",
                    "eos_token": "</s>",
                    "unk_token": "<unk>",
                    "pad_token": "<unk>",
                    "add_bos_token": True,
                    "add_eos_token": False,
                    "legacy": False,
                    "model_max_length": 4096,
                },
                indent=2,
            )
        )
        return out
    # tekken: convert once through mistral-common, then save a plain tokenizer.json.
    from transformers import AutoTokenizer

    with tempfile.TemporaryDirectory() as tmp:
        shutil.copyfile(source, Path(tmp) / "tekken.json")
        tok = AutoTokenizer.from_pretrained(tmp)
    tok.add_special_tokens(
        {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"}
    )
    tok.model_max_length = 4096
    tok.save_pretrained(str(out))
    return out


def load_tokenizer(path: str | os.PathLike):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path))
