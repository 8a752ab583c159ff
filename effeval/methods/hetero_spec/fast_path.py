"""Faster CPU forward passes for small row counts (the verify pass scores ``k + 1`` rows).

``apply(model, "mkldnn")`` replaces every ``torch.nn.Linear`` of a model with ``PrepackedLinear``:
the same weights, reordered once into oneDNN's blocked layout (``Tensor.to_mkldnn``) and
multiplied with ``mkldnn_linear``, instead of being re-read in the plain row-major layout on every
call. It is fp32 and uses the same numbers, but oneDNN sums in its own order, so logits can differ
from the plain path in the last bits (about 1e-6 relative) and, rarely, flip a near-tie argmax:
it is *not* bit-identical to ``torch.nn.Linear``. The path is applied to the target once, and the
AR baseline and every speculative algorithm then run on that same converted model, so a
comparison never credits a faster kernel to speculation; equality with the plain path is what the
tests measure, not an assumption.

``"none"`` leaves the model as it is. (bf16 is not a path here: it changes the model's numbers,
so it is a different target model, measured as such in ``effeval.bench.verify_cost``.)
"""

from __future__ import annotations

FAST_PATHS = ("none", "mkldnn")


def _prepacked_linear_class():
    """The ``PrepackedLinear`` module class (built on first use: torch is imported lazily)."""
    import torch

    class _PrepackedLinear(torch.nn.Module):
        """``y = x W^T + b`` with ``W`` held as a oneDNN (mkldnn) tensor, reordered once."""

        def __init__(self, linear: torch.nn.Linear):
            super().__init__()
            self.in_features, self.out_features = linear.in_features, linear.out_features
            weight = linear.weight.detach().float().contiguous()
            self.packed_weight = weight.to_mkldnn()
            bias = linear.bias.detach().float() if linear.bias is not None else None
            self.packed_bias = bias.to_mkldnn() if bias is not None else None

        def forward(self, x):
            shape = x.shape
            rows = x.reshape(-1, shape[-1]).contiguous().float().to_mkldnn()
            if self.packed_bias is not None:
                out = torch._C._nn.mkldnn_linear(rows, self.packed_weight, self.packed_bias)
            else:
                out = torch._C._nn.mkldnn_linear(rows, self.packed_weight, None)
            return out.to_dense().reshape(*shape[:-1], self.out_features).to(x.dtype)

        def extra_repr(self) -> str:
            return f"in_features={self.in_features}, out_features={self.out_features}, oneDNN-prepacked"

    return _PrepackedLinear


def apply(model, fast_path: str):
    """``model`` with its linear layers on ``fast_path`` (in place; returns the model). Only fp32
    CPU models are converted (oneDNN's fp32 kernels); anything else is left unchanged and the
    returned count of converted layers says so."""
    import torch

    if fast_path == "none":
        return model
    if fast_path != "mkldnn":
        raise ValueError(f"fast_path={fast_path!r}: unknown (expected one of {FAST_PATHS})")
    cls = _prepacked_linear_class()
    replaced = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if (
                type(child) is torch.nn.Linear
                and child.weight.dtype == torch.float32
                and child.weight.device.type == "cpu"
            ):
                setattr(parent, name, cls(child))
                replaced += 1
    model.effeval_fast_path = {"fast_path": fast_path, "linear_layers": replaced}
    return model


def is_available(fast_path: str) -> bool:
    import torch

    return fast_path == "none" or (fast_path == "mkldnn" and torch.backends.mkldnn.is_available())
