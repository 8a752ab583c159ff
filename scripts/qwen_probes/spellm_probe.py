"""Usage: python scripts/qwen_probes/spellm_probe.py OUT.json

Cost-only SpeLLM probe on Qwen2.5-Coder-0.5B (< 1 CPU-minute): vocabulary coverage, characters vs
bytes, head vs projection size / FLOPs / time, decode step time with UNTRAINED heads."""

import json
import logging
import sys
import time

import torch

from effeval import zoo
from effeval.bench.spellm_real import head_vs_projection_time, step_time
from effeval.methods.spellm.alphabet import CharCodec
from effeval.methods.spellm.model import SpeLLMForCausalLM, load_causal_lm
from effeval.real_data import prose_documents

logger = logging.getLogger(__name__)
logging.basicConfig(level=logging.INFO)

torch.set_num_threads(1)

c0 = time.process_time()
path = str(zoo.get("qwen2.5-coder-0.5b"))
base, tok = load_causal_lm(path)
base.eval()
codec = CharCodec(tok, 16)
spellm = SpeLLMForCausalLM.from_base(path, 16, seed=0).eval()
out = {
    "coverage": codec.coverage(),
    "characters_vs_bytes": codec.characters_vs_bytes(),
    "output_layer": {
        **spellm.output_layer_facts(),
        **head_vs_projection_time(spellm, base, tokens=16, repeats=5),
    },
    "step_time_untrained_heads": step_time(spellm, base, tok, prose_documents("heldout")[0], 64, 24, 3),
    "params": sum(p.numel() for p in base.parameters()),
    "output_projection": list(base.get_output_embeddings().weight.shape),
    "tied_embeddings": bool(base.config.tie_word_embeddings),
}
out["probe_cpu_s"] = round(time.process_time() - c0, 1)
json.dump(out, open(sys.argv[1], "w"), indent=1)
logger.info("%s", json.dumps({k: out[k] for k in ("coverage", "params", "output_projection", "probe_cpu_s")}))
