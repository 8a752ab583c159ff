"""Input statistics for every prunable weight of a Mamba / Mamba2 block.

transformers' mixers call ``in_proj``, ``x_proj`` and ``out_proj`` as modules, so forward hooks
see their inputs. ``conv1d`` and ``dt_proj`` are applied through their weights
(``causal_conv1d_fn(x, self.conv1d.weight ...)``, ``self.dt_proj.weight @ time_step``), so hooks
on them never fire. Their inputs are recomputed from module outputs that hooks do see, exactly as
the mixer computes them:

- Mamba:  conv input = first half of ``in_proj``'s output (``projected.chunk(2)[0]``);
          ``dt_proj`` input = the first ``time_step_rank`` features of ``x_proj``'s output.
- Mamba2: conv input = ``in_proj`` output ``[I : I + conv_dim]`` (x, B, C; after the gate z).

A depthwise conv is a per-channel linear map over ``K`` taps of the causally left-padded input,
so its "input features" are the ``K`` shifted copies of that channel: ``[C, tokens, K]``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

logger = logging.getLogger(__name__)


def conv_taps(u, kernel: int):
    """``u`` [batch, C, L] -> per-channel tap inputs [C, batch*L, K] (zero left padding)."""
    import torch.nn.functional as F

    batch, channels, length = u.shape
    padded = F.pad(u, (kernel - 1, 0))
    taps = padded.unfold(-1, kernel, 1)  # [batch, C, L, K]; tap k multiplies weight[:, 0, k]
    return taps.permute(1, 0, 2, 3).reshape(channels, batch * length, kernel)


class InputStats:
    """Running ``sum x^2`` per input feature and, if asked, the Gram matrix ``sum x x^T``.

    Linear: ``sq`` [cols], ``gram`` [cols, cols]. Conv: ``sq`` [C, K], ``gram`` [C, K, K]."""

    def __init__(self, hessian: bool):
        self.hessian = hessian
        self.sq = None
        self.gram = None
        self.tokens = 0

    def add(self, x) -> None:
        """``x``: [tokens, cols] (linear) or [C, tokens, K] (conv)."""
        x = x.float()
        sq = x.pow(2).sum(-2)
        self.sq = sq if self.sq is None else self.sq + sq
        if self.hessian:
            gram = x.transpose(-1, -2) @ x
            self.gram = gram if self.gram is None else self.gram + gram
        self.tokens += x.shape[-2]

    def col_norm(self):
        """‖X_j‖₂ per input feature (WANDA's activation norm)."""
        return self.sq.sqrt()

    def hessian_matrix(self):
        """SparseGPT's ``H = 2/n X^T X`` (per channel for conv)."""
        return self.gram * (2.0 / max(self.tokens, 1))


def _register(mixer, kind: str, names, emit: Callable[[str, object], None]) -> list:
    """Hooks that call ``emit(target_name, inputs)`` for each target of one mixer."""
    names = set(names)
    handles = []

    def in_proj_hook(module, args, output):
        if "in_proj" in names:
            emit("in_proj", args[0].reshape(-1, args[0].shape[-1]))
        if "conv1d" in names:
            inter = mixer.intermediate_size
            if kind == "mamba":
                conv_in = output[..., :inter]
            else:
                conv_in = output[..., inter : inter + mixer.conv_dim]
            emit("conv1d", conv_taps(conv_in.transpose(1, 2), mixer.conv_kernel_size))

    def x_proj_hook(module, args, output):
        if "x_proj" in names:
            emit("x_proj", args[0].reshape(-1, args[0].shape[-1]))
        if "dt_proj" in names:
            time_step = output[..., : mixer.time_step_rank]
            emit("dt_proj", time_step.reshape(-1, time_step.shape[-1]))

    def out_proj_hook(module, args, output):
        emit("out_proj", args[0].reshape(-1, args[0].shape[-1]))

    if names & {"in_proj", "conv1d"}:
        handles.append(mixer.in_proj.register_forward_hook(in_proj_hook))
    if names & {"x_proj", "dt_proj"}:
        handles.append(mixer.x_proj.register_forward_hook(x_proj_hook))
    if "out_proj" in names:
        handles.append(mixer.out_proj.register_forward_hook(out_proj_hook))
    return handles


def blockwise_calibrate(
    model,
    kind: str,
    input_ids,
    names,
    hessian: bool,
    on_layer: Callable[[int, dict[str, InputStats]], None],
    sequential: bool = True,
    batch_size: int = 8,
    progress: bool = True,
) -> None:
    """Run the calibration windows block by block; after each block's statistics are collected,
    ``on_layer(layer_index, {target_name: InputStats})`` prunes it.

    ``sequential=True`` feeds the next block the outputs of the already-pruned block (as
    SparseGPT and WANDA do); ``False`` uses the dense model's activations for every block.
    ``kind``: "mamba" / "mamba2" (hooks on the mixer, see the module docstring) or "decoder" (a
    decoder-only transformer: hooks on the block's ``nn.Linear`` targets, named by their path)."""
    import torch
    from tqdm.auto import tqdm

    with torch.no_grad():
        if kind == "decoder":
            layers, inputs, forward, hook = _decoder_blocks(model, input_ids, names, batch_size)
        else:
            layers, inputs, forward, hook = _ssm_blocks(model, kind, input_ids, names, batch_size)
        for index in tqdm(range(len(layers)), desc="prune layers", unit="layer", disable=not progress):
            block = layers[index]
            stats = {n: InputStats(hessian) for n in names}
            handles = hook(block, stats)
            try:
                outputs = [forward(block, x) for x in inputs]
            finally:
                for handle in handles:
                    handle.remove()
            on_layer(index, stats)
            if sequential:
                outputs = [forward(block, x) for x in inputs]
            inputs = outputs


# Each returns (blocks, per-batch inputs of block 0, forward(block, input) -> the next block's
# input in the same dtype, hook(block, stats) -> handles that add each target's inputs to stats).


def _ssm_blocks(model, kind: str, input_ids, names, batch_size: int):
    device = next(model.parameters()).device
    hidden = [model.backbone.embeddings(chunk.to(device)) for chunk in input_ids.split(batch_size)]

    def hook(block, stats):
        return _register(block.mixer, kind, names, lambda n, x: stats[n].add(x))

    return model.backbone.layers, hidden, lambda block, h: block(h).to(h.dtype), hook


def _decoder_blocks(model, input_ids, names, batch_size: int):
    from effeval.methods.pruned_ssm.arch import block_linears, decoder_layers

    def forward(block, batch):  # batch: (hidden states, the keyword arguments of every block)
        hidden, kwargs = batch
        return _block_output(block(hidden, **kwargs)).to(hidden.dtype), kwargs

    def hook(block, stats):
        linears = block_linears(block)
        return [
            linears[n].register_forward_hook(
                lambda mod, args, out, s=stats[n]: s.add(args[0].reshape(-1, args[0].shape[-1]))
            )
            for n in names
        ]

    return decoder_layers(model), decoder_block_inputs(model, input_ids, batch_size), forward, hook


class _StopForward(Exception):
    """Raised by the first block's pre-hook once its inputs are captured."""


def decoder_block_inputs(model, input_ids, batch_size: int):
    """Per batch: (hidden states entering block 0, the keyword arguments the model passes every
    block: attention mask, position embeddings, ...), captured by a pre-hook that stops the forward."""
    from effeval.methods.pruned_ssm.arch import decoder_layers

    device = next(model.parameters()).device
    first = decoder_layers(model)[0]
    captured = []

    def grab(module, args, kwargs):
        hidden = args[0] if args else kwargs.pop("hidden_states")
        kwargs = {k: v for k, v in kwargs.items() if k not in ("past_key_values", "past_key_value")}
        kwargs["use_cache"] = False
        captured.append((hidden, kwargs))
        raise _StopForward

    handle = first.register_forward_pre_hook(grab, with_kwargs=True)
    try:
        for chunk in input_ids.split(batch_size):
            try:
                model(input_ids=chunk.to(device), use_cache=False)
            except _StopForward:
                pass
    finally:
        handle.remove()
    return captured


def _block_output(out):
    return out[0] if isinstance(out, (tuple, list)) else out
