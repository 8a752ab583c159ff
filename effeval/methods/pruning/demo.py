"""Demo step: WANDA at 50% on the zoo Mamba2's in_proj, evaluated on the offline twins of the
paper's tasks through the stock ``lm_eval`` CLI."""

from __future__ import annotations

from pathlib import Path


def run(ctx) -> list[Path]:
    from effeval.zoo.corpus import corpus_texts

    model = ctx.zoo("mamba2-sp")
    # Python's own docs text, written beside lm-eval's raw output (not a result to commit).
    calib = ctx.out_dir / "lm_eval" / "pruned_ssm_calibration.txt"
    calib.parent.mkdir(parents=True, exist_ok=True)
    calib.write_text("\n\n".join(corpus_texts("prose")[:40]), encoding="utf-8")
    args = f"pretrained={model},method=wanda,sparsity=0.5,targets=in_proj,calibration={calib},nsamples=16,seqlen=64"
    return [ctx.run_lm_eval("pruned-ssm-wanda50", "effeval-pruned-ssm", args, "pruned_ssm_mini")]
