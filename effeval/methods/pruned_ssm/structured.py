"""Structured SSM pruning that shrinks the model: d_state, head dimension, whole heads.

What each structure owns (so removing it removes exactly these weights):

Mamba2 mixer (``in_proj`` rows are ``[z: I | x: I | B: G*N | C: G*N | dt: H]``, ``conv1d``
channels are ``[x: I | B: G*N | C: G*N]``, ``I = H*P``):
- state ``(g, n)``: ``in_proj`` rows B[g,n], C[g,n] and their conv channels. Each group keeps
  the same number of states (``state_size`` is one config field), chosen per group.
- channel ``(h, p)`` (head-dim): ``in_proj`` rows z and x, the x conv channel, the gated-norm
  weight and the ``out_proj`` column. Every head keeps the same number (``head_dim``).
- head ``h``: its ``P`` channels, its ``dt`` row, ``A_log``, ``D``, ``dt_bias``. Every group keeps
  the same number of heads (B and C are shared per group).
Mamba mixer: state ``n``: ``x_proj`` rows B[n], C[n] and column ``n`` of ``A_log``. (Mamba v1 has no
heads: every channel is its own SSM, so head-dim/head pruning is refused.)

Limits of the stock configs (transformers 5.24, strict dataclass configs):
- ``Mamba2Config.expand`` is an int and ``hidden_size * expand == num_heads * head_dim`` is
  validated, so head-dim and head pruning can only shrink the inner width ``I`` to a multiple of
  ``hidden_size`` (for expand=2: only 50%). Other ratios raise a ConfigError; ``shrink=False``
  still gives the masked (same-shape) model.
- The gated RMSNorm averages over ``I / n_groups`` channels. The shrunk model averages over fewer,
  so its norm weights are scaled by ``sqrt(g / g')``; it then equals the masked model up to the
  norm's epsilon (``eps`` vs ``eps * g / g'``), i.e. to float tolerance.

Importance criteria (per weight, summed over a structure's weights): ``magnitude`` (w^2),
``taylor-first`` (|g*w|, g = mean gradient of the LM loss on calibration windows),
``taylor-second`` (|g*w - 1/2 F w^2|, F = empirical Fisher diagonal, as LLM-Pruner), ``random``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from effeval.errors import ConfigError

logger = logging.getLogger(__name__)

STRUCTURES = ("dstate", "headdim", "heads")
CRITERIA = ("taylor-first", "taylor-second", "magnitude", "random")
ALIASES = {
    "d_state": "dstate",
    "state": "dstate",
    "head_dim": "headdim",
    "head-dim": "headdim",
    "head": "heads",
}


@dataclass
class LayerKeep:
    """Kept indices of one mixer (sorted LongTensors; ``None`` = keep all)."""

    states: object = None  # Mamba2: indices into G*N; Mamba: indices into N
    channels: object = None  # Mamba2: indices into I
    heads: object = None  # Mamba2: indices into H


def n_keep(total: int, sparsity: float, what: str) -> int:
    keep = total - int(round(total * sparsity))
    if keep < 1:
        raise ConfigError(
            f"sparsity: {sparsity} would remove every {what} ({total}). Fix: use a smaller sparsity"
        )
    return keep


# ------------------------------------------------------------------------------ importance


def weight_scores(model, criterion: str, input_ids=None, batch_size: int = 8, progress: bool = True) -> dict:
    """Per-weight importance for every mixer parameter: ``{param_name: tensor like the param}``."""
    import torch

    params = {n: p for n, p in model.named_parameters() if ".mixer." in n}
    if criterion == "magnitude":
        return {n: p.detach().float().pow(2) for n, p in params.items()}
    if criterion not in ("taylor-first", "taylor-second"):
        raise ConfigError(f"criterion: unknown {criterion!r}. Fix: use one of {', '.join(CRITERIA)}")
    if input_ids is None:
        raise ConfigError(
            f"criterion={criterion} needs calibration text. Fix: pass calibration=<file> or criterion=magnitude"
        )
    from tqdm.auto import tqdm

    grads = {n: torch.zeros_like(p, dtype=torch.float32) for n, p in params.items()}
    fisher = {n: torch.zeros_like(p, dtype=torch.float32) for n, p in params.items()}
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    was_training = model.training
    model.eval()  # eval keeps transformers on the exact path used for inference
    device = next(model.parameters()).device
    chunks = input_ids.split(batch_size)
    try:
        for n, p in model.named_parameters():
            p.requires_grad_(n in params)
        for chunk in tqdm(chunks, desc="taylor importance", unit="batch", disable=not progress):
            chunk = chunk.to(device)
            model.zero_grad(set_to_none=True)
            loss = model(input_ids=chunk, labels=chunk, use_cache=False).loss
            loss.backward()
            for n, p in params.items():
                if p.grad is not None:
                    g = p.grad.detach().float()
                    grads[n] += g / len(chunks)
                    fisher[n] += g.pow(2) / len(chunks)
    finally:
        model.zero_grad(set_to_none=True)
        for n, p in model.named_parameters():
            p.requires_grad_(flags[n])
        model.train(was_training)
    out = {}
    for n, p in params.items():
        w = p.detach().float()
        first = grads[n] * w
        out[n] = first.abs() if criterion == "taylor-first" else (first - 0.5 * fisher[n] * w.pow(2)).abs()
    return out


def _rows(t):
    return t.reshape(t.shape[0], -1).sum(1)


def structure_scores(model, kind: str, layer: int, scores: dict) -> dict:
    """Per-structure importance of one mixer: {"states": [...], "channels": [...], "heads": [...]}."""
    prefix = f"backbone.layers.{layer}.mixer."
    mixer = model.backbone.layers[layer].mixer

    def get(name):
        return scores.get(prefix + name)

    N = mixer.ssm_state_size
    if kind == "mamba":
        rank = mixer.time_step_rank
        xp = _rows(get("x_proj.weight"))
        a = get("A_log").sum(0)
        return {"states": xp[rank : rank + N] + xp[rank + N : rank + 2 * N] + a}
    I, G, H = mixer.intermediate_size, mixer.n_groups, mixer.num_heads  # noqa: E741 (the paper's name for the inner width)
    GN = G * N
    rin = _rows(get("in_proj.weight"))
    if get("in_proj.bias") is not None:
        rin = rin + get("in_proj.bias")
    rconv = _rows(get("conv1d.weight"))
    if get("conv1d.bias") is not None:
        rconv = rconv + get("conv1d.bias")
    cout = get("out_proj.weight").sum(0)
    channels = rin[:I] + rin[I : 2 * I] + rconv[:I] + cout + get("norm.weight")
    states = rin[2 * I : 2 * I + GN] + rin[2 * I + GN : 2 * I + 2 * GN] + rconv[I : I + GN] + rconv[I + GN :]
    heads = channels.view(H, -1).sum(1) + rin[2 * I + 2 * GN :] + get("A_log") + get("D") + get("dt_bias")
    return {"states": states, "channels": channels, "heads": heads}


# ------------------------------------------------------------------------------ selection


def _top_per_group(scores, groups: int, keep: int):
    """Indices (flat, sorted) of the ``keep`` highest scores within each of ``groups`` equal slices."""
    import torch

    view = scores.reshape(groups, -1)
    size = view.shape[1]
    top = torch.topk(view, keep, dim=1).indices.sort(dim=1).values
    return (top + torch.arange(groups, device=top.device)[:, None] * size).flatten()


def check_expressible(model, kind: str, structure: str, sparsity: float) -> dict:
    """New config values for this structure and sparsity, or a ConfigError if the stock config
    cannot express the shrunk shapes."""
    cfg = model.config
    if structure == "dstate":
        return {"state_size": n_keep(cfg.state_size, sparsity, "state dimension")}
    if kind == "mamba":
        raise ConfigError(
            f"method={structure}: Mamba (v1) has no heads (every channel is its own SSM), so head-dim / head "
            "pruning does not apply. Fix: use method=dstate, or a Mamba2 model"
        )
    H, P, hidden = cfg.num_heads, cfg.head_dim, cfg.hidden_size
    if structure == "headdim":
        new = {"head_dim": n_keep(P, sparsity, "head-dim channel"), "num_heads": H}
    else:
        keep = n_keep(H // cfg.n_groups, sparsity, "head of a group") * cfg.n_groups
        new = {"num_heads": keep, "head_dim": P}
    inner = new["num_heads"] * new["head_dim"]
    if inner % hidden:
        allowed = [round(1 - k / cfg.expand, 4) for k in range(1, cfg.expand)]
        raise ConfigError(
            f"method={structure} sparsity={sparsity}: the shrunk inner width {new['num_heads']}x{new['head_dim']}="
            f"{inner} is not a multiple of hidden_size={hidden}, and Mamba2Config needs hidden_size*expand == "
            f"num_heads*head_dim with an integer expand. Fix: use sparsity in {allowed or 'none (expand=1)'}, "
            "or shrink=false to keep the masked same-shape model"
        )
    new["expand"] = inner // hidden
    return new


def select(
    model, kind: str, structure: str, sparsity: float, criterion: str, scores: dict | None, seed: int = 0
) -> list[LayerKeep]:
    """Which structures each layer keeps (same count in every layer: the config is global)."""
    import torch

    gen = torch.Generator().manual_seed(int(seed))
    plan = []
    for layer, mixer in enumerate(model.backbone.layers):
        mixer = mixer.mixer
        if criterion == "random":
            sizes = {
                "states": mixer.ssm_state_size * (getattr(mixer, "n_groups", 1) if kind == "mamba2" else 1)
            }
            if kind == "mamba2":
                sizes.update(channels=mixer.intermediate_size, heads=mixer.num_heads)
            s = {k: torch.rand(v, generator=gen) for k, v in sizes.items()}
        else:
            s = structure_scores(model, kind, layer, scores)
        s = {k: v.detach().float().cpu() for k, v in s.items()}
        if structure == "dstate":
            groups = mixer.n_groups if kind == "mamba2" else 1
            keep = n_keep(mixer.ssm_state_size, sparsity, "state dimension")
            plan.append(LayerKeep(states=_top_per_group(s["states"], groups, keep)))
        elif structure == "headdim":
            keep = n_keep(mixer.head_dim, sparsity, "head-dim channel")
            plan.append(LayerKeep(channels=_top_per_group(s["channels"], mixer.num_heads, keep)))
        else:
            keep = n_keep(mixer.num_heads // mixer.n_groups, sparsity, "head of a group")
            heads = _top_per_group(s["heads"], mixer.n_groups, keep)
            P = mixer.head_dim
            channels = (heads[:, None] * P + torch.arange(P)[None, :]).flatten()
            plan.append(LayerKeep(channels=channels, heads=heads))
    return plan


# ------------------------------------------------------------------------------ apply


def _dropped(keep, total: int):
    import torch

    if keep is None:
        return torch.zeros(0, dtype=torch.long)
    mask = torch.ones(total, dtype=torch.bool)
    mask[keep] = False
    return mask.nonzero().flatten()


def mask_model(model, kind: str, plan: list[LayerKeep]) -> None:
    """Zero every weight the plan removes, keeping shapes (the "masked-but-unshrunk" model)."""
    import torch

    with torch.no_grad():
        for layer, keep in enumerate(plan):
            m = model.backbone.layers[layer].mixer
            N = m.ssm_state_size
            if kind == "mamba":
                drop = _dropped(keep.states, N)
                rank = m.time_step_rank
                m.x_proj.weight[rank + drop] = 0
                m.x_proj.weight[rank + N + drop] = 0
                continue
            I, GN = m.intermediate_size, m.n_groups * N  # noqa: E741 (the paper's name for the inner width)
            ch = _dropped(keep.channels, I)
            st = _dropped(keep.states, GN)
            hd = _dropped(keep.heads, m.num_heads)
            in_rows = torch.cat([ch, I + ch, 2 * I + st, 2 * I + GN + st, 2 * I + 2 * GN + hd])
            conv_rows = torch.cat([ch, I + st, I + GN + st])
            m.in_proj.weight[in_rows] = 0
            if m.in_proj.bias is not None:
                m.in_proj.bias[in_rows] = 0
            m.conv1d.weight[conv_rows] = 0
            if m.conv1d.bias is not None:
                m.conv1d.bias[conv_rows] = 0
            m.out_proj.weight[:, ch] = 0


def shrink_model(model, kind: str, plan: list[LayerKeep], new_values: dict, out_biases: dict | None = None):
    """A new, smaller model of the same class whose config carries ``new_values``.

    ``out_biases`` ({layer: tensor}) adds to each Mamba2 ``out_proj`` bias (FLAP's compensation;
    ``new_values`` then carries ``use_bias=True`` and ``in_proj`` gets a zero bias if it had none)."""
    import torch

    new_config = shrunk_config(model, new_values)
    old = model.state_dict()
    sd = dict(old)
    for layer, keep in enumerate(plan):
        p = f"backbone.layers.{layer}.mixer."
        m = model.backbone.layers[layer].mixer
        N = m.ssm_state_size
        if kind == "mamba":
            rank = m.time_step_rank
            st = keep.states
            rows = torch.cat([torch.arange(rank), rank + st, rank + N + st])
            sd[p + "x_proj.weight"] = old[p + "x_proj.weight"][rows]
            sd[p + "A_log"] = old[p + "A_log"][:, st]
            continue
        I, GN, H = m.intermediate_size, m.n_groups * N, m.num_heads  # noqa: E741 (the paper's name for the inner width)
        ch = keep.channels if keep.channels is not None else torch.arange(I)
        st = keep.states if keep.states is not None else torch.arange(GN)
        hd = keep.heads if keep.heads is not None else torch.arange(H)
        in_rows = torch.cat([ch, I + ch, 2 * I + st, 2 * I + GN + st, 2 * I + 2 * GN + hd])
        conv_rows = torch.cat([ch, I + st, I + GN + st])
        sd[p + "in_proj.weight"] = old[p + "in_proj.weight"][in_rows]
        if p + "in_proj.bias" in old:
            sd[p + "in_proj.bias"] = old[p + "in_proj.bias"][in_rows]
        sd[p + "conv1d.weight"] = old[p + "conv1d.weight"][conv_rows]
        if p + "conv1d.bias" in old:
            sd[p + "conv1d.bias"] = old[p + "conv1d.bias"][conv_rows]
        sd[p + "out_proj.weight"] = old[p + "out_proj.weight"][:, ch]
        for name in ("A_log", "D", "dt_bias"):
            sd[p + name] = old[p + name][hd]
        # the gated RMSNorm now averages over fewer channels: rescale so it matches the masked model
        group_old = I // m.n_groups
        group_new = len(ch) // m.n_groups
        sd[p + "norm.weight"] = old[p + "norm.weight"][ch] * math.sqrt(group_old / group_new)
        if out_biases is not None and layer in out_biases:
            if p + "in_proj.bias" not in sd:
                sd[p + "in_proj.bias"] = torch.zeros(len(in_rows), dtype=sd[p + "in_proj.weight"].dtype)
            sd[p + "out_proj.bias"] = new_bias(
                old.get(p + "out_proj.bias"), out_biases[layer], sd[p + "out_proj.weight"]
            )
    return load_shrunk(model, new_config, sd, "shrink")


def shrunk_config(model, new_values: dict):
    """``model``'s config with ``new_values``; Mamba's ``intermediate_size`` is dropped (derived from expand)."""
    cfg_dict = model.config.to_dict()
    cfg_dict.update(new_values)
    cfg_dict.pop("intermediate_size", None)
    return type(model.config).from_dict(cfg_dict)


def take_rows(sd: dict, old: dict, key: str, rows) -> None:
    """``<key>weight`` rows ``rows`` of the old state dict, and a bias for them: the old one's rows,
    zeros where the layer had none (the shrunk config turns biases on to carry a compensation)."""
    import torch

    weight = old[key + "weight"]
    sd[key + "weight"] = weight[rows]
    sd[key + "bias"] = (
        old[key + "bias"][rows] if key + "bias" in old else torch.zeros(len(rows), dtype=weight.dtype)
    )


def new_bias(old_bias, extra, weight):
    """``old_bias + extra`` (in float64, then ``weight``'s dtype); no old bias counts as zero."""
    base = old_bias.double() if old_bias is not None else 0
    return (base + extra).to(weight.dtype)


def load_shrunk(model, new_config, sd: dict, what: str, model_class=None):
    """A new model of ``model``'s class (or ``model_class``) with ``new_config`` and state dict ``sd``
    (all of it used, all of its weights given but a tied ``lm_head``), on ``model``'s device and
    dtype, in eval mode."""
    param = next(model.parameters())
    new_model = (model_class or type(model))(new_config)
    missing, unexpected = new_model.load_state_dict(sd, strict=False)
    tied = {k for k in missing if k.endswith("lm_head.weight")} if new_config.tie_word_embeddings else set()
    if set(missing) - tied or unexpected:
        raise RuntimeError(f"{what}: state dict mismatch (missing {missing}, unexpected {unexpected})")
    new_model.tie_weights()
    new_model.generation_config = model.generation_config
    return new_model.to(device=param.device, dtype=param.dtype).eval()
