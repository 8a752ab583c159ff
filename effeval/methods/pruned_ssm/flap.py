"""FLAP structured pruning (An et al., AAAI 2024, "Fluctuation-based Adaptive Structured Pruning
for Large Language Models"), as Ghattas et al. (EMNLP 2025) apply it to Mamba2 heads.

A structure (attention head, MLP channel, Mamba2 head or head-dim channel) is a set of *input*
channels of one output projection ``W [out, in]`` (``o_proj``, ``down_proj``, ``out_proj``).
Over the calibration tokens ``x_n`` entering that projection, per input channel ``j``:

- mean ``m_j = 1/N sum_n x_nj`` and fluctuation ``F_j = 1/(N-1) sum_n (x_nj - m_j)^2``;
- IFV  (input feature variance):           ``S_j = F_j``
- WIFV (weighted input feature variance):  ``S_j = F_j * sum_i W_ij^2``   (the paper's default)
- WIFN (weighted input feature norm):      ``S_j = mean_i |W_ij| * ||x_:j||_2``
- a head's score is ``sum_{j in head} S_j^2`` (the reference code's aggregation); a channel's is ``S_j``.

The lowest-scoring structures are removed; their expected contribution is folded into the
projection's bias (bias compensation): ``b' = b + W[:, removed] @ m[removed]``. Removing a
channel whose input never fluctuates then changes nothing at all, which is the method's premise.

Structure (``flap_structure``):
- ``ul-um`` (uniform layers, uniform modules; the default): every layer keeps the same number of
  heads / channels, each ranked within its layer.
- ``al-am`` (adaptive layers, adaptive modules; the FLAP reference code's default and the SSM
  pruning paper's setting; decoders only): attention channel scores are squared, then every
  layer's attention scores and MLP scores are standardised within the layer
  (``(S - mean) / std``, unbiased std); a KV group's score is the mean of its channels'
  standardised scores; all groups and channels of all layers are ranked together, each weighted
  by the parameters it holds (a KV group ``(2 n_rep + 2) head_dim hidden``, an MLP channel
  ``3 hidden``; the reference's 512/3 is this ratio for LLaMA-7B), and the top of the ranking is
  kept up to the position where the cumulative kept parameters come closest to ``(1 - ratio)``
  of the total (that structure itself is removed, as the reference keeps scores strictly above
  the threshold). ``ratio`` is thus a fraction of the attention + MLP parameters.
  Stock transformers configs hold one ``num_key_value_heads`` / ``intermediate_size`` for all
  layers, so the shrunk AL-AM checkpoint gives every layer the widest layer's width: narrower
  layers are padded with removed structures whose weights are zeros (exactly the masked model,
  and reloadable with stock ``from_pretrained``); ``per_layer_shrunk`` builds the in-memory model
  with every layer at its own width (Llama / Qwen2 attention infers its head count from the
  projection shapes) for speed measurements.
Statistics come from the dense model (one forward), as in the reference code.

Qwen2 models (no ``o_proj`` / ``down_proj`` bias in their config) are shrunk into a
``LlamaForCausalLM`` with ``attention_bias`` and ``mlp_bias`` on: the same computation (Qwen2 is a
Llama with q/k/v biases) with a place for the compensation biases.

What a ratio prunes:
- decoder (Llama family): ``units=all`` prunes key/value head groups (a KV head with its query
  heads) and MLP channels, each at the ratio; ``heads`` / ``channels`` prune one kind only.
  ``ratio * num_key_value_heads`` must be a whole number (SmolLM2-135M has 3 KV heads: 1/3, 2/3).
- Mamba2: ``all``/``heads`` prune whole heads (per group), ``channels`` prune head-dim channels;
  a smaller checkpoint additionally needs the stock config's integer ``expand``.
- Mamba (v1): channels of the inner width (every channel is its own SSM).

A shrunk checkpoint sets ``attention_bias`` / ``mlp_bias`` (Llama) or ``use_bias`` (Mamba) so the
compensation bias has a place in a stock config; the biases this turns on for other projections
are zeros, so outputs equal the masked model's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from effeval.errors import ConfigError
from effeval.methods.pruned_ssm.structured import load_shrunk, new_bias, shrunk_config, take_rows

logger = logging.getLogger(__name__)

METRICS = ("wifv", "ifv", "wifn")
UNITS = ("all", "heads", "channels")
FLAP_STRUCTURES = ("ul-um", "al-am")


def check_structure(structure) -> str:
    """The normalised FLAP structure name, or a one-line ConfigError."""
    name = str(structure).strip().lower().replace("_", "-")
    if name not in FLAP_STRUCTURES:
        raise ConfigError(
            f"flap_structure: unknown {structure!r}. Fix: use one of {', '.join(FLAP_STRUCTURES)} "
            "(uniform per-layer sizes, or the adaptive global search)"
        )
    return name


class FluctuationStats:
    """Running per-channel sum, sum of squares and count of a projection's inputs (float64)."""

    def __init__(self):
        self.sum = None
        self.sumsq = None
        self.count = 0

    def add(self, x) -> None:
        """``x``: [tokens, channels]."""
        x = x.detach().double().reshape(-1, x.shape[-1])
        s, sq = x.sum(0), x.pow(2).sum(0)
        self.sum = s if self.sum is None else self.sum + s
        self.sumsq = sq if self.sumsq is None else self.sumsq + sq
        self.count += x.shape[0]

    @property
    def mean(self):
        return self.sum / self.count

    @property
    def fluctuation(self):
        """Unbiased sample variance over tokens (N-1 in the denominator)."""
        n = self.count
        if n < 2:
            raise ConfigError("calibration: FLAP needs at least 2 calibration tokens. Fix: give more text")
        return ((self.sumsq - n * self.mean.pow(2)) / (n - 1)).clamp_min(0)

    @property
    def norm(self):
        return self.sumsq.sqrt()


def channel_scores(metric: str, stats: FluctuationStats, weight):
    """Per-input-channel score ``S_j`` of the projection ``weight [out, in]``."""
    w = weight.detach().double()
    if metric == "ifv":
        return stats.fluctuation
    if metric == "wifv":
        return stats.fluctuation * w.pow(2).sum(0)
    if metric == "wifn":
        return (w.abs() * stats.norm[None, :]).mean(0)
    raise ConfigError(f"flap_metric: unknown {metric!r}. Fix: use one of {', '.join(METRICS)}")


def group_scores(scores, group: int):
    """A head's score: the sum of its channels' squared scores."""
    return scores.pow(2).reshape(-1, group).sum(1)


def compensation_bias(weight, mean, removed):
    """``W[:, removed] @ m[removed]``: the removed channels' mean contribution to the output."""
    return weight.detach().double()[:, removed] @ mean[removed]


def _top(scores, keep: int):
    import torch

    return torch.topk(scores, keep).indices.sort().values


def _dropped(keep, total: int):
    import torch

    mask = torch.ones(total, dtype=torch.bool)
    mask[keep] = False
    return mask.nonzero().flatten()


def _whole(total: int, ratio: float, what: str, field_name: str) -> int:
    """Units kept when ``ratio`` of ``total`` must be removed exactly (a whole number)."""
    removed = total * ratio
    if abs(removed - round(removed)) > 1e-6 or total - round(removed) < 1:
        allowed = [f"{k / total:.4g}" for k in range(1, total)]
        raise ConfigError(
            f"sparsity: FLAP ratio {ratio} removes {removed:g} of {total} {what}, which the config's "
            f"{field_name} cannot express. Fix: use a ratio in {{{', '.join(allowed) or 'none'}}} or "
            "flap_units=channels"
        )
    return total - int(round(removed))


@dataclass
class FlapLayer:
    """What one layer keeps, and the compensation biases (float64, added to the output bias)."""

    heads: object = None  # decoder: kept KV-head indices; Mamba2: kept head indices
    channels: object = None  # decoder: kept MLP channels; Mamba/Mamba2: kept inner channels
    attn_bias: object = None  # decoder o_proj
    mlp_bias: object = None  # decoder down_proj
    out_bias: object = None  # Mamba out_proj
    scores: dict = field(default_factory=dict)


# ------------------------------------------------------------------------------ statistics


def collect_stats(model, kind: str, input_ids, batch_size: int = 8, progress: bool = True) -> list[dict]:
    """Per layer ``{projection name: FluctuationStats}`` of the dense model's inputs to
    ``o_proj`` / ``down_proj`` (decoder) or ``out_proj`` (Mamba), from one forward per batch."""
    import torch
    from tqdm.auto import tqdm

    from effeval.methods.pruned_ssm import arch

    layers = arch.block_layers(model, kind)
    names = ("self_attn.o_proj", "mlp.down_proj") if kind == "decoder" else ("mixer.out_proj",)
    stats = [{n: FluctuationStats() for n in names} for _ in layers]
    handles = []
    for i, layer in enumerate(layers):
        modules = dict(layer.named_modules())
        for n in names:
            handles.append(
                modules[n].register_forward_hook(lambda mod, args, out, s=stats[i][n]: s.add(args[0]))
            )
    device = next(model.parameters()).device
    try:
        with torch.no_grad():
            for chunk in tqdm(input_ids.split(batch_size), desc="FLAP statistics", disable=not progress):
                model(input_ids=chunk.to(device), use_cache=False)
    finally:
        for h in handles:
            h.remove()
    return stats


# ------------------------------------------------------------------------------ decoder (Llama)


def _attn_shape(cfg) -> tuple[int, int, int]:
    """(KV heads, query heads per KV head, head_dim) of a decoder config."""
    n_kv = cfg.num_key_value_heads
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    return n_kv, cfg.num_attention_heads // n_kv, head_dim


def check_decoder(model) -> None:
    cfg = model.config
    block = model.model.layers[0]
    names = {n for n, _ in block.named_modules()}
    need = {f"self_attn.{p}" for p in ("q_proj", "k_proj", "v_proj", "o_proj")} | {
        f"mlp.{p}" for p in ("gate_proj", "up_proj", "down_proj")
    }
    qwen2 = cfg.model_type == "qwen2" and not getattr(cfg, "use_sliding_window", False)
    if (
        not need <= names
        or not (qwen2 or (hasattr(cfg, "attention_bias") and hasattr(cfg, "mlp_bias")))
        or "self_attn.q_norm" in names
    ):
        raise ConfigError(
            f"method=flap: {type(model).__name__} (model_type={cfg.model_type!r}) is not a Llama-family "
            "decoder (q/k/v/o_proj, gate/up/down_proj, attention_bias and mlp_bias in its config) nor a "
            "Qwen2 without sliding window. Fix: use a Llama-family or Qwen2 model or a Mamba/Mamba2 model"
        )


def standardise(x):
    """``(x - mean) / std`` over one layer's scores (unbiased std, as the reference's torch.std);
    a layer whose scores are all equal standardises to zeros."""
    std = x.std()
    return (x - x.mean()) / std if float(std) > 0 else x - x.mean()


def alam_select(head_channel_scores, mlp_scores, group: int, head_params: int, channel_params: int, ratio):
    """AL-AM: which KV groups and MLP channels every layer keeps (see the module docstring).

    ``head_channel_scores``: per layer the ``o_proj`` input-channel scores (KV group ``g`` owns
    channels ``g*group .. (g+1)*group-1``), or None when heads are not pruned; ``mlp_scores``:
    per layer the ``down_proj`` input-channel scores, or None. Returns (kept groups per layer or
    None, kept channels per layer or None, group scores per layer, channel scores per layer),
    the scores standardised."""
    import torch

    head_units = (
        [standardise(s.double().pow(2)).reshape(-1, group).mean(1) for s in head_channel_scores]
        if head_channel_scores is not None
        else []
    )
    channel_units = [standardise(s.double()) for s in mlp_scores] if mlp_scores is not None else []
    parts = head_units + channel_units
    sizes = [len(u) for u in parts]
    weight = torch.cat(
        [torch.full((len(u),), float(head_params), dtype=torch.float64) for u in head_units]
        + [torch.full((len(u),), float(channel_params), dtype=torch.float64) for u in channel_units]
    )
    order = torch.argsort(torch.cat(parts), descending=True, stable=True)
    kept_params = torch.cumsum(weight[order], 0)
    cut = int(torch.argmin((kept_params - weight.sum() * (1 - ratio)).abs()))
    keep = torch.zeros(len(weight), dtype=torch.bool)
    keep[order[:cut]] = True  # the structure at the cut is removed (reference: score > threshold)
    masks = list(keep.split(sizes))
    heads = [m.nonzero().flatten() for m in masks[: len(head_units)]] or None
    channels = [m.nonzero().flatten() for m in masks[len(head_units) :]] or None
    return heads, channels, head_units, channel_units


def plan_decoder(model, stats, ratio: float, metric: str, units: str, structure: str = "ul-um"):
    cfg = model.config
    n_kv, n_rep, head_dim = _attn_shape(cfg)
    group = head_dim * n_rep
    layers = list(model.model.layers)
    head_s = (
        [
            channel_scores(metric, st["self_attn.o_proj"], la.self_attn.o_proj.weight)
            for la, st in zip(layers, stats)
        ]
        if units in ("all", "heads")
        else None
    )
    mlp_s = (
        [
            channel_scores(metric, st["mlp.down_proj"], la.mlp.down_proj.weight)
            for la, st in zip(layers, stats)
        ]
        if units in ("all", "channels")
        else None
    )
    if structure == "al-am":
        hidden = cfg.hidden_size
        kept_heads, kept_channels, head_units, channel_units = alam_select(
            head_s, mlp_s, group, (2 * n_rep + 2) * head_dim * hidden, 3 * hidden, ratio
        )
    else:
        kept_heads = kept_channels = None
        head_units, channel_units = [], []
        if head_s is not None:
            keep_kv = _whole(n_kv, ratio, "key/value heads", "num_key_value_heads")
            head_units = [group_scores(s, group) for s in head_s]
            kept_heads = [_top(u, keep_kv) for u in head_units]
        if mlp_s is not None:
            inter = cfg.intermediate_size
            keep_ch = inter - int(round(inter * ratio))
            if keep_ch < 1:
                raise ConfigError(
                    f"sparsity: {ratio} would remove every MLP channel. Fix: use a smaller ratio"
                )
            channel_units = mlp_s
            kept_channels = [_top(s, keep_ch) for s in mlp_s]
    plan = []
    for i, (layer, st) in enumerate(zip(layers, stats)):
        out = FlapLayer()
        if kept_heads is not None:
            out.heads = kept_heads[i]
            channels = _head_channels(out.heads, group)
            out.attn_bias = compensation_bias(
                layer.self_attn.o_proj.weight, st["self_attn.o_proj"].mean, _dropped(channels, n_kv * group)
            )
            out.scores["heads"] = head_units[i]
        if kept_channels is not None:
            d = layer.mlp.down_proj
            out.channels = kept_channels[i]
            out.mlp_bias = compensation_bias(
                d.weight, st["mlp.down_proj"].mean, _dropped(out.channels, d.weight.shape[1])
            )
            out.scores["channels"] = channel_units[i]
        plan.append(out)
    return plan


def _head_channels(heads, size: int):
    import torch

    return (heads[:, None] * size + torch.arange(size)[None, :]).flatten()


def _set_bias(linear, extra) -> None:
    import torch

    base = linear.bias.detach().double() if linear.bias is not None else 0
    value = (base + extra).to(linear.weight.dtype)
    if linear.bias is None:
        linear.bias = torch.nn.Parameter(value)
    else:
        linear.bias.data.copy_(value)


def mask_decoder(model, plan: list[FlapLayer]) -> None:
    """Zero the removed heads / channels in place and add the compensation biases (same shapes)."""
    import torch

    n_kv, n_rep, head_dim = _attn_shape(model.config)
    with torch.no_grad():
        for layer, keep in zip(model.model.layers, plan):
            attn, mlp = layer.self_attn, layer.mlp
            if keep.heads is not None:
                gone = _dropped(keep.heads, n_kv)
                q_rows = _head_channels(gone, head_dim * n_rep)
                kv_rows = _head_channels(gone, head_dim)
                for proj, rows in ((attn.q_proj, q_rows), (attn.k_proj, kv_rows), (attn.v_proj, kv_rows)):
                    proj.weight[rows] = 0
                    if proj.bias is not None:
                        proj.bias[rows] = 0
                attn.o_proj.weight[:, q_rows] = 0
                _set_bias(attn.o_proj, keep.attn_bias)
            if keep.channels is not None:
                gone = _dropped(keep.channels, mlp.down_proj.weight.shape[1])
                for proj in (mlp.gate_proj, mlp.up_proj):
                    proj.weight[gone] = 0
                    if proj.bias is not None:
                        proj.bias[gone] = 0
                mlp.down_proj.weight[:, gone] = 0
                _set_bias(mlp.down_proj, keep.mlp_bias)


def _padded(keep, total: int, width: int):
    """``keep`` plus the first ``width - len(keep)`` removed indices (sorted), and a mask of which
    of them are padding (removed structures kept as zeros so every layer has ``width``)."""
    import torch

    pad = _dropped(keep, total)[: max(width - len(keep), 0)]
    idx = torch.cat([keep, pad]).sort().values
    return idx, torch.isin(idx, pad)


# config fields a Qwen2 config shares with LlamaConfig (the rest are Qwen2's sliding-window knobs)
_LLAMA_FIELDS = (
    "vocab_size",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "hidden_act",
    "max_position_embeddings",
    "initializer_range",
    "rms_norm_eps",
    "use_cache",
    "tie_word_embeddings",
    "rope_parameters",
    "rope_theta",
    "rope_scaling",
    "attention_dropout",
    "bos_token_id",
    "eos_token_id",
    "pad_token_id",
    "dtype",
    "torch_dtype",
)


def _shrunk_decoder_config(model, new: dict, heads_pruned: bool, channels_pruned: bool):
    """(config, model class) of the shrunk decoder: the same class with biases turned on, or for
    Qwen2 a LlamaConfig (q/k/v and o biases: attention_bias; MLP biases: mlp_bias)."""
    cfg = model.config
    if cfg.model_type == "qwen2":
        import transformers

        d = cfg.to_dict()
        values = {k: d[k] for k in _LLAMA_FIELDS if k in d}
        values.update(new, attention_bias=True, mlp_bias=channels_pruned)
        values.setdefault("head_dim", _attn_shape(cfg)[2])
        return transformers.LlamaConfig(**values), transformers.LlamaForCausalLM
    d = cfg.to_dict()
    d.update(new)
    if heads_pruned:
        d["attention_bias"] = True
    if channels_pruned:
        d["mlp_bias"] = True
    return type(cfg).from_dict(d), type(model)


def _layer_tensors(old: dict, p: str, keep: FlapLayer, shape, head_width, channel_width) -> dict:
    """The shrunk state-dict entries of layer prefix ``p``: kept (plus zero padding) rows of
    q/k/v and gate/up, columns of o/down, and the compensation biases."""
    n_kv, n_rep, head_dim = shape
    sd = {}
    if keep.heads is not None:
        idx, pad = _padded(keep.heads, n_kv, head_width)
        q_rows, q_pad = _head_channels(idx, head_dim * n_rep), pad.repeat_interleave(head_dim * n_rep)
        kv_rows, kv_pad = _head_channels(idx, head_dim), pad.repeat_interleave(head_dim)
        for name, rows, zero in (
            ("q_proj", q_rows, q_pad),
            ("k_proj", kv_rows, kv_pad),
            ("v_proj", kv_rows, kv_pad),
        ):
            key = p + f"self_attn.{name}."
            take_rows(sd, old, key, rows)
            sd[key + "weight"][zero] = 0
            sd[key + "bias"][zero] = 0
        key = p + "self_attn.o_proj."
        w = old[key + "weight"]
        sd[key + "weight"] = w[:, q_rows]
        sd[key + "weight"][:, q_pad] = 0
        sd[key + "bias"] = new_bias(old.get(key + "bias"), keep.attn_bias, w)
    if keep.channels is not None:
        idx, pad = _padded(keep.channels, old[p + "mlp.down_proj.weight"].shape[1], channel_width)
        for name in ("gate_proj", "up_proj"):
            key = p + f"mlp.{name}."
            take_rows(sd, old, key, idx)
            sd[key + "weight"][pad] = 0
            sd[key + "bias"][pad] = 0
        key = p + "mlp.down_proj."
        w = old[key + "weight"]
        sd[key + "weight"] = w[:, idx]
        sd[key + "weight"][:, pad] = 0
        sd[key + "bias"] = new_bias(old.get(key + "bias"), keep.mlp_bias, w)
    return sd


def _widths(plan: list[FlapLayer]) -> tuple[int | None, int | None]:
    """The widest layer's kept KV groups and MLP channels (None where not pruned)."""
    heads = max(len(k.heads) for k in plan) if plan[0].heads is not None else None
    channels = max(len(k.channels) for k in plan) if plan[0].channels is not None else None
    if heads == 0 or channels == 0:
        what = "key/value head" if heads == 0 else "MLP channel"
        raise ConfigError(
            f"sparsity: FLAP removed every {what} of every layer, which no config can express. "
            "Fix: use a smaller ratio"
        )
    return heads, channels


def shrink_decoder(model, plan: list[FlapLayer]):
    """A new, smaller stock model: fewer KV heads / MLP channels (the widest layer's count in every
    layer; narrower layers padded with zeroed structures), compensation biases on."""
    import torch

    cfg = model.config
    shape = _attn_shape(cfg)
    head_width, channel_width = _widths(plan)
    new = {}
    if head_width is not None:
        new.update(
            num_key_value_heads=head_width, num_attention_heads=head_width * shape[1], head_dim=shape[2]
        )
    if channel_width is not None:
        new["intermediate_size"] = channel_width
    new_config, cls = _shrunk_decoder_config(model, new, head_width is not None, channel_width is not None)
    old = model.state_dict()
    sd = dict(old)
    for i, keep in enumerate(plan):
        p = f"model.layers.{i}."
        sd.update(_layer_tensors(old, p, keep, shape, head_width, channel_width))
        if new_config.attention_bias and p + "self_attn.o_proj.bias" not in sd:  # Qwen2 -> Llama
            w = sd[p + "self_attn.o_proj.weight"]
            sd[p + "self_attn.o_proj.bias"] = torch.zeros(w.shape[0], dtype=w.dtype)
    return load_shrunk(model, new_config, sd, "FLAP shrink", cls)


def per_layer_shrunk(model, plan: list[FlapLayer]):
    """A copy of the dense ``model`` with every layer at its own kept width (AL-AM), compensation
    biases on ``o_proj`` / ``down_proj``. In memory only: no stock config describes per-layer widths
    (``shrink_decoder`` writes the loadable, padded one). A layer that keeps no KV group keeps
    one zeroed group (attention cannot run with zero heads)."""
    import copy

    import torch

    shape = _attn_shape(model.config)
    new = copy.deepcopy(model)
    old = model.state_dict()
    with torch.no_grad():
        for i, (layer, keep) in enumerate(zip(new.model.layers, plan)):
            p = f"model.layers.{i}."
            heads = max(len(keep.heads), 1) if keep.heads is not None else None
            channels = max(len(keep.channels), 1) if keep.channels is not None else None
            sd = _layer_tensors(old, p, keep, shape, heads, channels)
            for key in {k.rsplit(".", 1)[0] for k in sd}:
                w, b = sd[key + ".weight"], sd.get(key + ".bias")
                linear = torch.nn.Linear(
                    w.shape[1], w.shape[0], bias=b is not None, dtype=w.dtype, device=w.device
                )
                linear.weight.copy_(w)
                if b is not None:
                    linear.bias.copy_(b)
                parent, name = key[len(p) :].rsplit(".", 1)
                setattr(layer.get_submodule(parent), name, linear)
    return new.eval()


# ------------------------------------------------------------------------------ Mamba / Mamba2


def plan_mamba2(model, stats, ratio: float, metric: str, units: str) -> list[FlapLayer]:
    from effeval.methods.pruned_ssm.structured import n_keep

    plan = []
    for layer, st in zip(model.backbone.layers, stats):
        m = layer.mixer
        s_all = channel_scores(metric, st["mixer.out_proj"], m.out_proj.weight)
        H, P, G = m.num_heads, m.head_dim, m.n_groups
        out = FlapLayer()
        if units in ("all", "heads"):
            heads = group_scores(s_all, P)
            keep = n_keep(H // G, ratio, "head of a group")
            view = heads.reshape(G, -1)
            top = torch_top_per_row(view, keep)
            out.heads = top
            out.channels = _head_channels(top, P)
            out.scores["heads"] = heads
        else:
            keep = n_keep(P, ratio, "head-dim channel")
            top = torch_top_per_row(s_all.reshape(H, P), keep)
            out.channels = top
            out.scores["channels"] = s_all
        out.out_bias = compensation_bias(
            m.out_proj.weight, st["mixer.out_proj"].mean, _dropped(out.channels, len(s_all))
        )
        plan.append(out)
    return plan


def torch_top_per_row(scores, keep: int):
    """Flat sorted indices of the ``keep`` highest entries of every row of ``scores [rows, size]``."""
    import torch

    rows, size = scores.shape
    top = torch.topk(scores, keep, dim=1).indices.sort(dim=1).values
    return (top + torch.arange(rows)[:, None] * size).flatten()


def plan_mamba(model, stats, ratio: float, metric: str) -> list[FlapLayer]:
    from effeval.methods.pruned_ssm.structured import n_keep

    plan = []
    for layer, st in zip(model.backbone.layers, stats):
        m = layer.mixer
        s = channel_scores(metric, st["mixer.out_proj"], m.out_proj.weight)
        keep = _top(s, n_keep(len(s), ratio, "inner channel"))
        bias = compensation_bias(m.out_proj.weight, st["mixer.out_proj"].mean, _dropped(keep, len(s)))
        plan.append(FlapLayer(channels=keep, out_bias=bias, scores={"channels": s}))
    return plan


def mask_mamba(model, kind: str, plan: list[FlapLayer]) -> None:
    """Zero the removed heads / channels (their gate ``z`` rows make the mixer output exactly zero
    there) and add the compensation bias to ``out_proj``."""
    import torch

    from effeval.methods.pruned_ssm.structured import LayerKeep, mask_model

    with torch.no_grad():
        if kind == "mamba2":
            mask_model(model, kind, [LayerKeep(channels=k.channels, heads=k.heads) for k in plan])
        else:
            for layer, keep in zip(model.backbone.layers, plan):
                m = layer.mixer
                gone = _dropped(keep.channels, m.intermediate_size)
                m.in_proj.weight[gone] = 0
                m.in_proj.weight[m.intermediate_size + gone] = 0
                if m.in_proj.bias is not None:
                    m.in_proj.bias[gone] = 0
                    m.in_proj.bias[m.intermediate_size + gone] = 0
                m.out_proj.weight[:, gone] = 0
        for layer, keep in zip(model.backbone.layers, plan):
            _set_bias(layer.mixer.out_proj, keep.out_bias)


def mamba2_new_values(model, units: str, ratio: float) -> dict:
    from effeval.methods.pruned_ssm.structured import check_expressible

    new = check_expressible(model, "mamba2", "heads" if units in ("all", "heads") else "headdim", ratio)
    new["use_bias"] = True
    return new


def mamba_new_values(model, plan) -> dict:
    cfg = model.config
    kept = len(plan[0].channels)
    if kept % cfg.hidden_size:
        allowed = [round(1 - k / cfg.expand, 4) for k in range(1, cfg.expand)]
        raise ConfigError(
            f"sparsity: FLAP keeps {kept} of {cfg.intermediate_size} inner channels, not a multiple of "
            f"hidden_size={cfg.hidden_size}; MambaConfig derives the inner width from an integer expand. "
            f"Fix: use a ratio in {allowed or 'none (expand=1)'}, or shrink=false for the masked model"
        )
    return {"expand": kept // cfg.hidden_size, "use_bias": True}


def shrink_mamba2(model, plan: list[FlapLayer], new_values: dict):
    from effeval.methods.pruned_ssm.structured import LayerKeep, shrink_model

    biases = {i: k.out_bias for i, k in enumerate(plan)}
    return shrink_model(
        model,
        "mamba2",
        [LayerKeep(channels=k.channels, heads=k.heads) for k in plan],
        new_values,
        out_biases=biases,
    )


def shrink_mamba(model, plan: list[FlapLayer], new_values: dict):
    import torch

    new_config = shrunk_config(model, new_values)
    old = model.state_dict()
    sd = dict(old)
    for i, keep in enumerate(plan):
        p = f"backbone.layers.{i}.mixer."
        inter = model.backbone.layers[i].mixer.intermediate_size
        ch = keep.channels
        take_rows(sd, old, p + "in_proj.", torch.cat([ch, inter + ch]))
        sd[p + "conv1d.weight"] = old[p + "conv1d.weight"][ch]
        if p + "conv1d.bias" in old:
            sd[p + "conv1d.bias"] = old[p + "conv1d.bias"][ch]
        sd[p + "x_proj.weight"] = old[p + "x_proj.weight"][:, ch]
        sd[p + "dt_proj.weight"] = old[p + "dt_proj.weight"][ch]
        if p + "dt_proj.bias" in old:
            sd[p + "dt_proj.bias"] = old[p + "dt_proj.bias"][ch]
        sd[p + "A_log"] = old[p + "A_log"][ch]
        sd[p + "D"] = old[p + "D"][ch]
        ow = old[p + "out_proj.weight"]
        sd[p + "out_proj.weight"] = ow[:, ch]
        sd[p + "out_proj.bias"] = new_bias(old.get(p + "out_proj.bias"), keep.out_bias, ow)
    return load_shrunk(model, new_config, sd, "FLAP shrink")


# ------------------------------------------------------------------------------ entry point


def flap_prune(
    model,
    kind: str,
    input_ids,
    ratio: float,
    metric: str = "wifv",
    units: str = "all",
    shrink: bool = True,
    batch_size: int = 8,
    progress: bool = True,
    structure: str = "ul-um",
):
    """Prune ``model`` with FLAP; returns (model, report extras, plan). ``shrink=False`` masks in
    place. ``structure``: ``ul-um`` (uniform) or ``al-am`` (adaptive global search, decoders)."""
    structure = check_structure(structure)
    metric = str(metric).strip().lower()
    if metric not in METRICS:
        raise ConfigError(f"flap_metric: unknown {metric!r}. Fix: use one of {', '.join(METRICS)}")
    units = str(units).strip().lower()
    if units not in UNITS:
        raise ConfigError(f"flap_units: unknown {units!r}. Fix: use one of {', '.join(UNITS)}")
    if not (0 < ratio < 1):
        raise ConfigError(
            f"sparsity: FLAP needs a ratio in (0, 1), got {ratio}. Fix: pass e.g. sparsity=0.25"
        )
    new_values = None
    if structure == "al-am" and kind != "decoder":
        raise ConfigError(
            f"flap_structure: al-am is implemented for decoder-only transformers, not {kind}. "
            "Fix: use flap_structure=ul-um for Mamba / Mamba2"
        )
    if kind == "decoder":
        check_decoder(model)
        if structure == "ul-um" and units in ("all", "heads"):  # fail before the calibration forward
            _whole(model.config.num_key_value_heads, ratio, "key/value heads", "num_key_value_heads")
    elif kind == "mamba2" and shrink:
        new_values = mamba2_new_values(model, units, ratio)
    elif kind == "mamba" and units == "heads":
        raise ConfigError(
            "flap_units: Mamba (v1) has no heads (every channel is its own SSM). Fix: use flap_units=channels or all"
        )
    stats = collect_stats(model, kind, input_ids, batch_size, progress)
    if kind == "decoder":
        plan = plan_decoder(model, stats, ratio, metric, units, structure)
        if shrink:
            _widths(plan)
    elif kind == "mamba2":
        plan = plan_mamba2(model, stats, ratio, metric, units)
    else:
        plan = plan_mamba(model, stats, ratio, metric)
        if shrink:
            new_values = mamba_new_values(model, plan)
    if not shrink:
        (mask_decoder(model, plan) if kind == "decoder" else mask_mamba(model, kind, plan))
        out = model
    elif kind == "decoder":
        out = shrink_decoder(model, plan)
    elif kind == "mamba2":
        out = shrink_mamba2(model, plan, new_values)
    else:
        out = shrink_mamba(model, plan, new_values)
    extra = {
        "structure": "flap",
        "flap_metric": metric,
        "flap_units": units,
        "flap_structure": structure,
        "shrunk": shrink,
        "kept": [
            {
                "heads": k.heads.tolist() if k.heads is not None else None,
                "channels": k.channels.tolist() if k.channels is not None else None,
            }
            for k in plan
        ],
        "kept_per_layer": [
            {
                "heads": len(k.heads) if k.heads is not None else None,
                "channels": len(k.channels) if k.channels is not None else None,
            }
            for k in plan
        ],
    }
    return out, extra, plan


def describe_bias(plan) -> float:
    """Largest compensation bias magnitude (a quick sanity figure for reports)."""
    vals = [
        float(b.abs().max())
        for k in plan
        for b in (k.attn_bias, k.mlp_bias, k.out_bias)
        if b is not None and b.numel()
    ]
    return max(vals) if vals else 0.0
