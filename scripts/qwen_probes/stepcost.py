"""Per-step cost of a batched k=8 decode step (short-m@k) for a zoo model (< 1 CPU-minute for the 0.5B).

Usage: python scripts/qwen_probes/stepcost.py qwen2.5-coder-0.5b 12
"""

import logging
import sys
import time

import torch
from transformers import AutoModelForCausalLM

from effeval import zoo

logger = logging.getLogger(__name__)
logging.basicConfig(level=logging.INFO)

torch.set_num_threads(1)
name, steps = sys.argv[1], int(sys.argv[2])

m = AutoModelForCausalLM.from_pretrained(str(zoo.get(name)), dtype=torch.float32).eval()
prompt = torch.randint(100, 5000, (1, 120))
with torch.no_grad():
    c0, w0 = time.process_time(), time.perf_counter()
    out = m(input_ids=prompt, use_cache=True)
    pre_cpu, pre_wall = time.process_time() - c0, time.perf_counter() - w0
    cache = out.past_key_values
    cache.batch_repeat_interleave(8)
    tok = torch.randint(100, 5000, (8, 1))
    c0, w0 = time.process_time(), time.perf_counter()
    for _ in range(steps):
        out = m(input_ids=tok, past_key_values=cache, use_cache=True)
        cache = out.past_key_values
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
logger.info(
    "%s",
    f"{name}: prefill 120 tok {pre_cpu:.2f} CPU-s / {pre_wall:.2f} wall-s; batched k=8 decode step {cpu / steps:.3f} CPU-s / {wall / steps:.3f} wall-s (mean of {steps})",
)
