"""Which architecture a model is and where its prunable weights live.

Two families: transformers' Mamba / Mamba2 (``backbone.layers[i].mixer``) and decoder-only
transformers whose blocks sit at ``model.layers`` (Llama, SmolLM2, Qwen2, Gemma, ...; kind
``"decoder"``). For decoders every ``nn.Linear`` inside a block is a target, named by its path in
the block (``self_attn.q_proj``, ``mlp.down_proj``); a target name matches a path or its last part.

transformers' ``MambaMixer`` holds ``in_proj``, ``conv1d``, ``x_proj``, ``dt_proj``, ``out_proj``;
``Mamba2Mixer`` holds ``in_proj``, ``conv1d``, ``out_proj`` (dt comes out of ``in_proj``).
Every target is seen as a 2-D weight ``[rows, cols]`` whose rows are outputs and whose cols
are inputs: a depthwise ``conv1d`` weight ``[C, 1, K]`` is ``C`` rows of ``K`` taps.
"""

from __future__ import annotations

from dataclasses import dataclass

from effeval.errors import ConfigError

TARGETS = {
    "mamba": ("in_proj", "x_proj", "dt_proj", "conv1d", "out_proj"),
    "mamba2": ("in_proj", "conv1d", "out_proj"),
}
DEFAULT_TARGETS = ("in_proj",)  # the paper's WANDA setting: the mixer's packed input projection


def decoder_layers(model):
    """The blocks of a decoder-only transformer (``model.model.layers``), or None."""
    inner = getattr(model, "model", None)
    layers = getattr(inner, "layers", None)
    import torch

    return layers if isinstance(layers, torch.nn.ModuleList) and len(layers) else None


def model_kind(model) -> str | None:
    """``"mamba"``, ``"mamba2"``, ``"decoder"`` (transformer blocks at model.layers) or None."""
    kind = ssm_kind(model)
    if kind is None and decoder_layers(model) is not None:
        return "decoder"
    return kind


def block_layers(model, kind: str):
    return model.backbone.layers if kind in ("mamba", "mamba2") else decoder_layers(model)


def block_linears(block) -> dict:
    """``{path in block: nn.Linear}`` for one decoder block, in module order."""
    import torch

    return {n: m for n, m in block.named_modules() if isinstance(m, torch.nn.Linear)}


def resolve_decoder_targets(model, targets) -> tuple[str, ...]:
    """Paths (inside a block) of the decoder's linear targets; ``None``/``all`` -> every linear."""
    available = list(block_linears(decoder_layers(model)[0]))
    if targets is None or targets == "" or targets == [] or targets == "all":
        return tuple(available)
    if isinstance(targets, str):
        targets = [t.strip() for t in targets.replace("+", ",").replace(";", ",").split(",") if t.strip()]
    out = []
    for name in targets:
        hits = [p for p in available if p == name or p.rsplit(".", 1)[-1] == name or p.startswith(name + ".")]
        if not hits:
            raise ConfigError(
                f"targets: {name!r} matches no linear layer in the blocks of {type(model).__name__}. "
                f"Fix: use 'all' or names among {', '.join(available)} (separated by '+')"
            )
        out += [h for h in hits if h not in out]
    return tuple(out)


def decoder_targets(model, names) -> list[Target]:
    out = []
    for i, block in enumerate(decoder_layers(model)):
        linears = block_linears(block)
        out += [Target(i, n, f"model.layers.{i}.{n}", linears[n]) for n in names]
    return out


def ssm_kind(model) -> str | None:
    """``"mamba"``, ``"mamba2"`` or ``None`` (not a transformers Mamba causal LM)."""
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    if model_type in ("mamba", "mamba2") and hasattr(model, "backbone"):
        return model_type
    return None


def require_ssm(model, what: str) -> str:
    kind = ssm_kind(model)
    if kind is None:
        raise ConfigError(
            f"{what}: needs a MambaForCausalLM or Mamba2ForCausalLM, got {type(model).__name__} "
            f"(model_type={getattr(getattr(model, 'config', None), 'model_type', None)!r}). "
            "Fix: pass a Mamba/Mamba2 checkpoint (e.g. `effeval zoo build mamba2-sp`), or use method=magnitude "
            "for other architectures"
        )
    return kind


def resolve_targets(kind: str | None, targets) -> tuple[str, ...]:
    """Validate target module names for this architecture (``None`` -> the paper's default)."""
    if targets is None or targets == "" or targets == []:
        return DEFAULT_TARGETS
    if isinstance(targets, str):
        targets = [t.strip() for t in targets.replace("+", ",").replace(";", ",").split(",") if t.strip()]
    allowed = TARGETS.get(kind) if kind else None
    out = []
    for name in targets:
        if allowed is not None and name not in allowed:
            arch = "Mamba" if kind == "mamba" else "Mamba2"
            raise ConfigError(
                f"targets: unknown target module {name!r} for {arch}. "
                f"Fix: use one or more of {', '.join(allowed)} (separated by '+' inside --model_args)"
            )
        if name not in out:
            out.append(name)
    if not out:
        raise ConfigError(
            "targets: no module named. Fix: pass e.g. targets=in_proj or targets=in_proj+out_proj"
        )
    return tuple(out)


@dataclass
class Target:
    """One prunable weight: ``layer``'s mixer attribute ``name`` and its full module path."""

    layer: int
    name: str
    path: str
    module: object

    def weight2d(self):
        """The weight as ``[rows, cols]`` (a view: writing to it writes the parameter)."""
        w = self.module.weight
        return w.data.view(w.shape[0], -1)

    @property
    def is_conv(self) -> bool:
        return self.name == "conv1d"


def mixers(model) -> list:
    return [layer.mixer for layer in model.backbone.layers]


def layer_targets(model, layer: int, names) -> list[Target]:
    mixer = model.backbone.layers[layer].mixer
    return [Target(layer, n, f"backbone.layers.{layer}.mixer.{n}", getattr(mixer, n)) for n in names]


def all_targets(model, names) -> list[Target]:
    out = []
    for i in range(len(model.backbone.layers)):
        out += layer_targets(model, i, names)
    return out


def generic_targets(model, names) -> list[Target]:
    """For non-SSM models (magnitude only): every ``nn.Linear`` whose last name part is in ``names``."""
    import torch

    out = []
    for path, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and path.rsplit(".", 1)[-1] in names:
            out.append(Target(-1, path.rsplit(".", 1)[-1], path, module))
    if not out:
        raise ConfigError(
            f"targets: no nn.Linear named {', '.join(names)} in {type(model).__name__}. "
            "Fix: name modules that exist (e.g. targets=q_proj+v_proj for Llama)"
        )
    return out
