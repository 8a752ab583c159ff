#!/usr/bin/env bash
# One-command GPU recipe: the pruning settings of Ghattas et al. (EMNLP 2025, "On Pruning
# State-Space LLMs") on the real state-spaces checkpoints from the Hugging Face hub, evaluated on
# the paper's task group (`pruned_ssm`: 6 zero-shot tasks + WikiText-2) with lm-eval.
#
#   bash scripts/pruned_ssm_paper_gpu.sh [OUT_DIR]        # needs a CUDA GPU and network access
#
# Models: state-spaces/mamba-2.8b-hf (Mamba, transformers format on the hub) and
# state-spaces/mamba2-2.7b (mamba_ssm format; converted once to a transformers folder by
# scripts/convert_mamba2_ssm.py). Settings (from the paper / the reference code's scripts):
#   WANDA, SparseGPT: 50% unstructured and 2:4 of in_proj; 128 calibration windows x 2048 tokens
#   FLAP: 25% and 50% of Mamba2 heads, WIFV, 1024 calibration windows (x 128 tokens here)
#   d_state / head-dim: 25% and 50%, taylor-first importance, 128 x 2048 windows
# Calibration: WikiText-2 *train* (the evaluation uses its test split). Not run on this project's
# CPU machines (no network, no GPU); the same commands run offline on the zoo's proxy.
set -euo pipefail
OUT=${1:-runs/pruned_ssm_paper}
mkdir -p "$OUT"
pip install -q -e ".[gpu]"   # mamba-ssm + causal-conv1d CUDA kernels
CAL="dataset:wikitext:wikitext-2-raw-v1:train:text"
MAMBA2_DIR="$OUT/mamba2-2.7b-hf"
[ -f "$MAMBA2_DIR/config.json" ] || python scripts/convert_mamba2_ssm.py state-spaces/mamba2-2.7b "$MAMBA2_DIR"

run() {  # run NAME MODEL MODEL_ARGS
  effeval lm --model effeval-pruned-ssm --model_args "pretrained=$2,$3" \
    --tasks pruned_ssm --device cuda:0 --batch_size auto --output_path "$OUT/$1"
}
for MODEL in state-spaces/mamba-2.8b-hf "$MAMBA2_DIR"; do
  TAG=$(basename "$MODEL")
  effeval lm --model hf --model_args "pretrained=$MODEL" --tasks pruned_ssm --device cuda:0 \
    --batch_size auto --output_path "$OUT/$TAG-dense"
  for METHOD in wanda sparsegpt; do
    run "$TAG-$METHOD-50" "$MODEL" "method=$METHOD,sparsity=0.5,targets=in_proj,calibration=$CAL,nsamples=128,seqlen=2048"
    run "$TAG-$METHOD-2of4" "$MODEL" "method=$METHOD,pattern=2:4,targets=in_proj,calibration=$CAL,nsamples=128,seqlen=2048"
  done
  for RATIO in 0.25 0.5; do
    run "$TAG-dstate-$RATIO" "$MODEL" "method=dstate,sparsity=$RATIO,criterion=taylor-first,calibration=$CAL,nsamples=128,seqlen=2048"
  done
done
for RATIO in 0.25 0.5; do   # Mamba2 only: heads exist; 25% cannot shrink (integer expand), so it runs masked
  SHRINK=$([ "$RATIO" = "0.5" ] && echo true || echo false)
  run "mamba2-flap-$RATIO" "$MAMBA2_DIR" "method=flap,flap_units=heads,flap_metric=wifv,sparsity=$RATIO,shrink=$SHRINK,calibration=$CAL,nsamples=1024,seqlen=128"
  run "mamba2-headdim-$RATIO" "$MAMBA2_DIR" "method=headdim,sparsity=$RATIO,shrink=$SHRINK,criterion=taylor-first,calibration=$CAL,nsamples=128,seqlen=2048"
done
effeval results convert "$OUT" --out "$OUT/effeval"
echo "results: $OUT/effeval"
