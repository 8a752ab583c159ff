"""One entry point: ``prune_model(model, tokenizer, spec, calibration)`` -> ``PruneResult``.

``PruneSpec`` validates every setting up front (one ConfigError naming the argument and the
fix). The report carries what the efficiency block needs: per-module and global sparsity of the
targets, parameters before/after, non-zero parameters, pruning wall time, calibration tokens.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from effeval.config_fields import setting
from effeval.errors import ConfigError
from effeval.methods.pruned_ssm import arch
from effeval.methods.pruned_ssm.structured import ALIASES, CRITERIA, STRUCTURES
from effeval.methods.pruned_ssm.unstructured import nm_sparsity, parse_pattern

logger = logging.getLogger(__name__)

UNSTRUCTURED = ("magnitude", "wanda", "sparsegpt")
METHODS = UNSTRUCTURED + STRUCTURES + ("flap",)
CALIBRATED = ("wanda", "sparsegpt", "flap")


def _fraction(x) -> str | None:
    return None if 0.0 <= x < 1.0 else f"{x} is outside [0, 1). Fix: pass a fraction such as sparsity=0.5"


@dataclass
class PruneSpec:
    """Every pruning setting with its help: the lm-eval model_args and ``effeval pruned-ssm``'s
    options are derived from these fields."""

    method: str = setting(help=f"one of {', '.join(METHODS)}")
    sparsity: float | None = setting(
        None, help="fraction to remove, in [0, 1) (implied by N:M patterns)", check=_fraction
    )
    pattern: str = setting("unstructured", help="unstructured, 2:4 or 4:8 (unstructured methods)")
    targets: str | None = setting(
        None,
        help="'+'-separated: Mamba mixer modules (default in_proj; also out_proj, x_proj, dt_proj, conv1d), "
        "or for transformers block linears by name or path (default all: q/k/v/o_proj, gate/up/down_proj)",
    )
    criterion: str = setting("taylor-first", help=f"structured importance: {', '.join(CRITERIA)}")
    nsamples: int = setting(128, help="calibration sequences")
    seqlen: int = setting(128, help="tokens per calibration sequence")
    seed: int = setting(0, help="seed of calibration sampling and the random criterion")
    sequential: bool = setting(
        True,
        help="calibrate each layer on the already-pruned layers before it (--no-sequential: on the dense "
        "model's activations)",
    )
    shrink: bool = setting(
        True, help="structured: shrink the shapes (--no-shrink: zero the pruned structures)"
    )
    blocksize: int = setting(128, help="SparseGPT: columns solved per block")
    percdamp: float = setting(0.01, help="SparseGPT: Hessian dampening, as a fraction of its mean diagonal")
    batch_size: int = setting(8, help="calibration batch size")
    flap_metric: str = setting("wifv", help="FLAP fluctuation metric: wifv, ifv or wifn")
    flap_units: str = setting(
        "all",
        help="FLAP structures: all, heads or channels (transformers: KV-head groups / MLP channels; Mamba2: "
        "heads / head-dim channels)",
    )
    flap_structure: str = setting(
        "ul-um",
        help="FLAP structure search: ul-um (same size in every layer) or al-am (per-layer standardised "
        "scores ranked globally, weighted by parameters; decoder-only transformers)",
    )

    def validated(self) -> PruneSpec:
        """A normalized copy (aliases resolved, N:M sparsity filled in) or a ConfigError."""
        method = ALIASES.get(str(self.method).strip().lower(), str(self.method).strip().lower())
        if method not in METHODS:
            raise ConfigError(f"method: unknown {self.method!r}. Fix: use one of {', '.join(METHODS)}")
        nm = parse_pattern(self.pattern)
        sparsity = self.sparsity
        if nm is not None:
            if method not in UNSTRUCTURED:
                raise ConfigError(
                    f"pattern: {self.pattern} applies to magnitude/wanda/sparsegpt, not method={method}. "
                    "Fix: drop pattern or use an unstructured method"
                )
            implied = nm_sparsity(nm)
            if sparsity is not None and abs(float(sparsity) - implied) > 1e-9:
                raise ConfigError(
                    f"sparsity: {sparsity} contradicts pattern={self.pattern} (which zeros {implied:g}). "
                    "Fix: drop sparsity or set it to that value"
                )
            sparsity = implied
        if sparsity is None:
            raise ConfigError("sparsity: missing. Fix: pass sparsity=<fraction in [0, 1)>, e.g. sparsity=0.5")
        try:
            sparsity = float(sparsity)
        except (TypeError, ValueError):
            raise ConfigError(
                f"sparsity: {sparsity!r} is not a number. Fix: pass a fraction in [0, 1)"
            ) from None
        if not (0.0 <= sparsity < 1.0):
            raise ConfigError(f"sparsity: {sparsity} is outside [0, 1). Fix: pass a fraction such as 0.5")
        criterion = str(self.criterion).strip().lower().replace("_", "-")
        if criterion not in CRITERIA:
            raise ConfigError(f"criterion: unknown {self.criterion!r}. Fix: use one of {', '.join(CRITERIA)}")
        for name in ("nsamples", "seqlen", "blocksize", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(
                    f"{name}: must be >= 1, got {getattr(self, name)}. Fix: pass a positive integer"
                )
        if not (0 < float(self.percdamp) < 10):
            raise ConfigError(f"percdamp: {self.percdamp} is outside (0, 10). Fix: use e.g. 0.01")
        from effeval.methods.pruned_ssm.flap import METRICS as FLAP_METRICS
        from effeval.methods.pruned_ssm.flap import UNITS as FLAP_UNITS

        flap_metric = str(self.flap_metric).strip().lower()
        if flap_metric not in FLAP_METRICS:
            raise ConfigError(
                f"flap_metric: unknown {self.flap_metric!r}. Fix: use one of {', '.join(FLAP_METRICS)}"
            )
        flap_units = str(self.flap_units).strip().lower()
        if flap_units not in FLAP_UNITS:
            raise ConfigError(
                f"flap_units: unknown {self.flap_units!r}. Fix: use one of {', '.join(FLAP_UNITS)}"
            )
        from effeval.methods.pruned_ssm.flap import check_structure

        flap_structure = check_structure(self.flap_structure)
        return PruneSpec(
            method=method,
            sparsity=sparsity,
            pattern="unstructured" if nm is None else f"{nm[0]}:{nm[1]}",
            targets=self.targets,
            criterion=criterion,
            nsamples=int(self.nsamples),
            seqlen=int(self.seqlen),
            seed=int(self.seed),
            sequential=bool(self.sequential),
            shrink=bool(self.shrink),
            blocksize=int(self.blocksize),
            percdamp=float(self.percdamp),
            batch_size=int(self.batch_size),
            flap_metric=flap_metric,
            flap_units=flap_units,
            flap_structure=flap_structure,
        )

    @property
    def needs_calibration(self) -> bool:
        return self.method in CALIBRATED or (
            self.method in STRUCTURES and self.criterion.startswith("taylor")
        )


@dataclass
class PruneResult:
    model: Any
    report: dict[str, Any] = field(default_factory=dict)


def count_params(model) -> tuple[int, int]:
    """(parameters, non-zero parameters); tied tensors counted once."""
    total = nonzero = 0
    for p in model.parameters():  # parameters() already yields a shared tensor once
        total += p.numel()
        nonzero += int((p != 0).sum())
    return total, nonzero


def sparsity_report(targets) -> dict[str, Any]:
    modules, by_name, zeros, numel = {}, {}, 0, 0
    for t in targets:
        w = t.module.weight
        z, n = int((w == 0).sum()), w.numel()
        modules[t.path] = z / n
        agg = by_name.setdefault(t.name, [0, 0])
        agg[0] += z
        agg[1] += n
        zeros += z
        numel += n
    return {
        "module_sparsity": modules,
        "target_sparsity": {k: v[0] / v[1] for k, v in by_name.items()},
        "global_sparsity": zeros / numel if numel else 0.0,
        "target_params": numel,
        "target_zeros": zeros,
    }


def calibration_ids(tokenizer, calibration, spec: PruneSpec, task_loader=None):
    from effeval.methods.pruned_ssm.calibration import load_texts, token_windows

    if tokenizer is None:
        raise ConfigError(
            "calibration: a tokenizer is needed to tokenize calibration text. Fix: pass the model's tokenizer"
        )
    texts = load_texts(calibration, task_loader=task_loader)
    return token_windows(tokenizer, texts, spec.nsamples, spec.seqlen, spec.seed)


def prune_model(
    model,
    tokenizer=None,
    spec: PruneSpec | None = None,
    calibration=None,
    task_loader=None,
    input_ids=None,
    progress: bool = True,
) -> PruneResult:
    """Prune ``model`` (in place for unstructured; a new smaller model for shrinking structured).

    ``input_ids`` ([nsamples, seqlen]) bypasses text loading when given."""
    spec = (spec or PruneSpec(method="wanda", sparsity=0.5)).validated()
    kind = arch.model_kind(model)
    if spec.method in STRUCTURES or (kind is None and spec.method != "magnitude"):
        arch.require_ssm(model, f"method={spec.method}")
    if kind == "decoder" and spec.method in UNSTRUCTURED:
        targets_names = arch.resolve_decoder_targets(model, spec.targets)
    elif spec.method in UNSTRUCTURED:
        targets_names = arch.resolve_targets(kind, spec.targets)
    else:
        targets_names = ()
    params_before, nonzero_before = count_params(model)
    calib_tokens = 0
    start = time.perf_counter()
    if spec.needs_calibration and input_ids is None:
        if calibration is None:
            raise ConfigError(
                f"calibration: method={spec.method} (criterion={spec.criterion}) needs calibration text. "
                "Fix: pass calibration=<text file>, dataset:<name> or task:<lm-eval task>"
            )
        input_ids = calibration_ids(tokenizer, calibration, spec, task_loader)
    if spec.needs_calibration:
        calib_tokens = int(input_ids.numel())
    was_training = model.training
    model.eval()
    report: dict[str, Any] = {
        "method": spec.method,
        "requested_sparsity": spec.sparsity,
        "pattern": spec.pattern,
    }
    if spec.method in UNSTRUCTURED:
        report["targets"] = list(targets_names)
        targets = _prune_unstructured(model, kind, spec, targets_names, input_ids, progress)
        out_model = model
        report.update(sparsity_report(targets))
    elif spec.method == "flap":
        from effeval.methods.pruned_ssm.flap import flap_prune

        before = _shape_fields(model.config, kind)
        out_model, extra, _ = flap_prune(
            model,
            kind,
            input_ids,
            spec.sparsity,
            spec.flap_metric,
            spec.flap_units,
            shrink=spec.shrink,
            batch_size=spec.batch_size,
            progress=progress,
            structure=spec.flap_structure,
        )
        report.update(extra, config_before=before, config_after=_shape_fields(out_model.config, kind))
    else:
        out_model, extra = _prune_structured(model, kind, spec, input_ids, progress)
        report.update(extra)
    out_model.train(was_training)
    wall = time.perf_counter() - start
    params_after, nonzero_after = count_params(out_model)
    report.update(
        {
            "criterion": spec.criterion if spec.method in STRUCTURES else None,
            "architecture": kind,
            "params_before": params_before,
            "params_after": params_after,
            "nonzero_params_before": nonzero_before,
            "nonzero_params": nonzero_after,
            "model_sparsity": 1.0 - nonzero_after / params_before,
            "prune_wall_time_s": wall,
            "calibration_tokens": calib_tokens,
            "calibration_samples": int(input_ids.shape[0]) if spec.needs_calibration else 0,
            "spec": asdict(spec),
        }
    )
    return PruneResult(out_model, report)


def _prune_unstructured(model, kind, spec: PruneSpec, names, input_ids, progress: bool):
    """Unstructured / N:M pruning of the named weights of every block (Mamba, Mamba2 or a
    decoder-only transformer; magnitude also any model's ``nn.Linear`` of those names)."""
    import torch

    nm = parse_pattern(spec.pattern)
    if kind == "decoder":
        targets = arch.decoder_targets(model, names)
    else:
        targets = arch.all_targets(model, names) if kind else arch.generic_targets(model, names)
    if spec.method == "magnitude":
        with torch.no_grad():
            for t in targets:
                _apply_mask(t, spec, nm)
        return targets
    from effeval.methods.pruned_ssm.capture import blockwise_calibrate

    def on_layer(layer: int, stats: dict) -> None:
        with torch.no_grad():
            for t in targets:
                if t.layer == layer:
                    _apply_mask(t, spec, nm, stats[t.name])

    blockwise_calibrate(
        model,
        kind,
        input_ids,
        names,
        hessian=spec.method == "sparsegpt",
        on_layer=on_layer,
        sequential=spec.sequential,
        batch_size=spec.batch_size,
        progress=progress,
    )
    return targets


def _apply_mask(t, spec: PruneSpec, nm, stats=None) -> None:
    from effeval.methods.pruned_ssm import unstructured as un

    w = t.weight2d()
    if spec.method == "magnitude":
        w[un.magnitude_mask(w, spec.sparsity, nm, where=t.path)] = 0
    elif spec.method == "wanda":
        w[un.wanda_mask(w, stats.col_norm(), spec.sparsity, nm, where=t.path)] = 0
    else:
        new, _ = un.sparsegpt_prune(
            w, stats.hessian_matrix(), spec.sparsity, nm, spec.blocksize, spec.percdamp, where=t.path
        )
        w.copy_(new)


def decoder_dense_stats(model, input_ids, names=None, batch_size: int = 8, progress: bool = True) -> dict:
    """Input statistics (squared norms and Gram matrices) of every decoder block linear, from the
    dense model's activations: ``{layer: {name: InputStats}}``. With ``sequential=False`` WANDA and
    SparseGPT use exactly these, so one calibration pass serves every method and sparsity."""
    from effeval.methods.pruned_ssm.capture import blockwise_calibrate

    names = arch.resolve_decoder_targets(model, names)
    collected: dict = {}
    blockwise_calibrate(
        model,
        "decoder",
        input_ids,
        names,
        hessian=True,
        on_layer=lambda layer, stats: collected.__setitem__(layer, stats),
        sequential=False,
        batch_size=batch_size,
        progress=progress,
    )
    return collected


def prune_decoder_with_stats(model, spec: PruneSpec, stats: dict) -> dict:
    """Prune a decoder in place with statistics from ``decoder_dense_stats`` (the dense-activation,
    ``sequential=False`` setting); returns the sparsity report."""
    import torch

    spec = spec.validated()
    names = arch.resolve_decoder_targets(model, spec.targets)
    nm = parse_pattern(spec.pattern)
    targets = arch.decoder_targets(model, names)
    with torch.no_grad():
        for t in targets:
            _apply_mask(t, spec, nm, stats[t.layer][t.name] if spec.method != "magnitude" else None)
    return sparsity_report(targets)


def _prune_structured(model, kind, spec: PruneSpec, input_ids, progress: bool):
    from effeval.methods.pruned_ssm import structured as st

    if spec.sparsity <= 0:
        raise ConfigError(
            f"sparsity: method={spec.method} needs sparsity > 0 (got {spec.sparsity}). Fix: pass e.g. sparsity=0.5"
        )
    new_values = st.check_expressible(model, kind, spec.method, spec.sparsity) if spec.shrink else None
    if not spec.shrink and kind == "mamba" and spec.method != "dstate":
        st.check_expressible(model, kind, spec.method, spec.sparsity)  # raises the clear v1 error
    scores = None
    if spec.criterion != "random":
        scores = st.weight_scores(model, spec.criterion, input_ids, spec.batch_size, progress)
    plan = st.select(model, kind, spec.method, spec.sparsity, spec.criterion, scores, spec.seed)
    before = _shape_fields(model.config, kind)
    if spec.shrink:
        out = st.shrink_model(model, kind, plan, new_values)
    else:
        st.mask_model(model, kind, plan)
        out = model
    return out, {
        "structure": spec.method,
        "shrunk": spec.shrink,
        "config_before": before,
        "config_after": _shape_fields(out.config, kind),
        "kept": [
            {k: (v.tolist() if v is not None else None) for k, v in asdict(keep).items()} for keep in plan
        ],
    }


def _shape_fields(config, kind) -> dict:
    if kind == "decoder":
        names = ("hidden_size", "num_attention_heads", "num_key_value_heads", "head_dim", "intermediate_size")
        return {n: getattr(config, n, None) for n in names}
    names = (
        ("hidden_size", "state_size", "expand", "num_heads", "head_dim", "n_groups")
        if kind == "mamba2"
        else ("hidden_size", "state_size", "expand", "intermediate_size")
    )
    return {n: getattr(config, n, None) for n in names}


def forward_tokens_per_s(model, input_ids, repeats: int = 3, backbone_only: bool = False) -> float:
    """Forward-pass throughput (tokens/s, best of ``repeats``) on ``input_ids``; used to report the
    speed of a structured-pruned model next to the dense one measured the same way.
    ``backbone_only`` leaves out the LM head, which pruning the mixers does not change."""
    import torch

    device = next(model.parameters()).device
    ids = input_ids.to(device)
    run = model.backbone if backbone_only and hasattr(model, "backbone") else model
    best = float("inf")
    with torch.no_grad():
        run(input_ids=ids, use_cache=False)  # warm-up
        for _ in range(repeats):
            start = time.perf_counter()
            run(input_ids=ids, use_cache=False)
            if device.type == "cuda":
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - start)
    return ids.numel() / best


def save_pruned(model, tokenizer, out_dir, report: dict | None = None) -> None:
    """Save a checkpoint that stock ``from_pretrained`` loads, plus ``effeval_pruning.json``."""
    import json
    from pathlib import Path

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    if tokenizer is not None:
        tokenizer.save_pretrained(str(out))
    from effeval.model_files import honour_umask

    honour_umask(out)  # safetensors leaves its weights at 0600
    if report is not None:
        slim = {k: v for k, v in report.items() if k != "kept"}
        from effeval.atomic import write_text_atomic

        write_text_atomic(out / "effeval_pruning.json", json.dumps(slim, indent=2, default=str) + "\n")
