"""Usage: python scripts/qwen_probes/prune_probe.py OUT.json

Cost probe for the Qwen pruning bench (< 1 CPU-minute) + FLAP AL-AM / UL-UM per-layer widths
from 4 calibration windows (structure only: no perplexity)."""

import json
import logging
import sys
import time

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from effeval import zoo
from effeval.bench.pruned_ssm import eval_windows, window_nll
from effeval.methods.pruned_ssm import unstructured as un
from effeval.methods.pruned_ssm.calibration import token_windows
from effeval.methods.pruned_ssm.flap import collect_stats, plan_decoder
from effeval.real_data import prose_documents

logger = logging.getLogger(__name__)
logging.basicConfig(level=logging.INFO)

torch.set_num_threads(1)


c0 = time.process_time()
path = zoo.get("qwen2.5-coder-0.5b")
tok = AutoTokenizer.from_pretrained(path)
m = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
calib = token_windows(tok, prose_documents("train"), 4, 128, seed=0)
win = eval_windows(tok, prose_documents("heldout"), 128, 2)
out = {}
t = time.process_time()
window_nll(m, win, batch_size=2)
out["eval_cpu_s_per_128_token_window"] = (time.process_time() - t) / len(win)
t = time.process_time()
stats = collect_stats(m, "decoder", calib, batch_size=4, progress=False)
out["flap_stats_cpu_s_per_window"] = (time.process_time() - t) / len(calib)
t = time.process_time()
w = m.model.layers[0].mlp.down_proj.weight.detach().clone()  # [896, 4864]: the largest solve per layer
x = torch.randn(512, w.shape[1])
un.sparsegpt_prune(w, x.T @ x, 0.5, None, 128, 0.01, where="probe")
out["sparsegpt_cpu_s_down_proj_one_layer"] = time.process_time() - t
cfg = m.config
n_rep, hd, hidden = (
    cfg.num_attention_heads // cfg.num_key_value_heads,
    cfg.hidden_size // cfg.num_attention_heads,
    cfg.hidden_size,
)
prunable = cfg.num_hidden_layers * (
    cfg.num_key_value_heads * (2 * n_rep + 2) * hd * hidden + cfg.intermediate_size * 3 * hidden
)
for structure, units, ratio in (
    ("al-am", "all", 0.2),
    ("al-am", "all", 0.5),
    ("ul-um", "all", 0.5),
    ("ul-um", "channels", 0.2),
):
    plan = plan_decoder(m, stats, ratio, "wifv", units, structure)
    heads = [len(k.heads) if k.heads is not None else cfg.num_key_value_heads for k in plan]
    chans = [len(k.channels) for k in plan]
    kept = sum(h * (2 * n_rep + 2) * hd * hidden + c * 3 * hidden for h, c in zip(heads, chans))
    out[f"{structure}:{units}@{ratio}"] = {
        "kv_heads_per_layer": heads,
        "mlp_channels_per_layer": chans,
        "removed_share_of_attention_mlp_params": 1 - kept / prunable,
        "padded_checkpoint_width": {"kv_heads": max(heads), "mlp_channels": max(chans)},
    }
out["calibration_windows"] = len(calib)
out["probe_cpu_s"] = round(time.process_time() - c0, 1)
json.dump(out, open(sys.argv[1], "w"), indent=1)
logger.info("%s", json.dumps({k: v for k, v in out.items() if not isinstance(v, dict)}))
