"""Unstructured and N:M weight pruning of one 2-D weight ``W [rows, cols]``.

- magnitude: zero the smallest ``|W|`` of the whole matrix (the classic layer-wise baseline).
- WANDA (Sun et al. 2023): score ``|W_ij| * ‖X_j‖₂``, zero the lowest scores within each output row.
- SparseGPT (Frantar & Alistarh 2023): column-by-column OBS with a damped Hessian ``2/n X^T X``;
  each pruned weight's error is spread over the not-yet-processed columns of its row.
- N:M: keep ``N`` of every ``M`` consecutive inputs of a row (``2:4`` and ``4:8`` zero half).

Masks are boolean with ``True`` = pruned. A conv target's per-channel statistics have shape
``[rows, cols]`` (one Hessian per row), which every function here accepts.
"""

from __future__ import annotations

import math

from effeval.errors import ConfigError

PATTERNS = ("unstructured", "2:4", "4:8")


def parse_pattern(pattern) -> tuple[int, int] | None:
    """``"unstructured"`` -> None; ``"N:M"`` -> (N kept, M group size), with 0 < N < M."""
    if pattern is None or str(pattern).strip().lower() in ("", "unstructured", "none"):
        return None
    text = str(pattern).strip()
    try:
        n_text, m_text = text.split(":")
        n, m = int(n_text), int(m_text)
    except ValueError:
        raise ConfigError(
            f"pattern: {pattern!r} is not 'unstructured' or 'N:M'. Fix: use unstructured, 2:4 or 4:8"
        ) from None
    if not (0 < n < m):
        raise ConfigError(
            f"pattern: N:M needs 0 < N < M (N weights kept of every M), got {text}. Fix: use 2:4 or 4:8"
        )
    return n, m


def nm_sparsity(nm: tuple[int, int]) -> float:
    return 1.0 - nm[0] / nm[1]


def _check_nm_cols(cols: int, nm, where: str) -> None:
    if cols % nm[1]:
        raise ConfigError(
            f"pattern: {where} has {cols} inputs per row, not a multiple of M={nm[1]}. "
            f"Fix: use a pattern whose M divides {cols}, or unstructured"
        )


def lowest_per_row(scores, sparsity: float):
    """Mask of the ``floor(cols * sparsity)`` lowest scores in every row."""
    import torch

    rows, cols = scores.shape
    k = int(math.floor(cols * sparsity + 1e-9))
    mask = torch.zeros_like(scores, dtype=torch.bool)
    if k > 0:
        idx = torch.topk(scores, k, dim=1, largest=False).indices
        mask.scatter_(1, idx, True)
    return mask


def lowest_nm(scores, nm: tuple[int, int]):
    """Mask zeroing the ``M - N`` lowest scores of every group of ``M`` consecutive inputs."""
    import torch

    n, m = nm
    rows, cols = scores.shape
    groups = scores.reshape(rows, cols // m, m)
    idx = torch.topk(groups, m - n, dim=-1, largest=False).indices
    mask = torch.zeros_like(groups, dtype=torch.bool).scatter_(-1, idx, True)
    return mask.reshape(rows, cols)


def lowest_global(scores, sparsity: float):
    """Mask of the ``floor(numel * sparsity)`` lowest scores of the whole matrix."""
    import torch

    k = int(math.floor(scores.numel() * sparsity + 1e-9))
    mask = torch.zeros(scores.numel(), dtype=torch.bool, device=scores.device)
    if k > 0:
        mask[torch.topk(scores.flatten(), k, largest=False).indices] = True
    return mask.view_as(scores)


def magnitude_mask(weight, sparsity: float, nm=None, where: str = "weight"):
    scores = weight.abs().float()
    if nm is not None:
        _check_nm_cols(scores.shape[1], nm, where)
        return lowest_nm(scores, nm)
    return lowest_global(scores, sparsity)


def wanda_scores(weight, col_norm):
    """``|W_ij| * ‖X_j‖₂``; ``col_norm`` is [cols] (linear) or [rows, cols] (conv taps)."""
    return weight.abs().float() * col_norm.float()


def wanda_mask(weight, col_norm, sparsity: float, nm=None, where: str = "weight"):
    scores = wanda_scores(weight, col_norm)
    if nm is not None:
        _check_nm_cols(scores.shape[1], nm, where)
        return lowest_nm(scores, nm)
    return lowest_per_row(scores, sparsity)


def _inverse_cholesky(hessian, percdamp: float):
    """Upper Cholesky factor of ``(H + damp*I)^-1`` (batched); damping grows until H is PD."""
    import torch

    eye = torch.eye(hessian.shape[-1], dtype=hessian.dtype, device=hessian.device)
    mean_diag = torch.diagonal(hessian, dim1=-2, dim2=-1).mean(-1)[..., None, None]
    damp = percdamp
    for _ in range(8):
        try:
            chol = torch.linalg.cholesky(hessian + damp * mean_diag * eye)
            return torch.linalg.cholesky(torch.cholesky_inverse(chol), upper=True)
        except RuntimeError:  # torch.linalg.LinAlgError subclasses RuntimeError
            damp *= 10
    raise RuntimeError("SparseGPT: Hessian is not positive definite even with heavy damping")


def sparsegpt_prune(
    weight,
    hessian,
    sparsity: float,
    nm=None,
    blocksize: int = 128,
    percdamp: float = 0.01,
    where: str = "weight",
):
    """Prune ``weight`` [rows, cols] with SparseGPT; returns (new weight, mask).

    ``hessian`` is [cols, cols] (shared by all rows) or [rows, cols, cols] (one per row, conv).
    Unstructured: exactly ``floor(rows*cols*sparsity)`` zeros, chosen block by block (columns
    ``blocksize`` at a time) where ``w^2 / [H^-1]_jj^2`` is lowest."""
    import torch

    W = weight.detach().clone().float()
    rows, cols = W.shape
    if nm is not None:
        _check_nm_cols(cols, nm, where)
        blocksize = max(nm[1], blocksize - blocksize % nm[1])
    H = hessian.detach().clone().float()
    if H.dim() == 2:
        H = H[None]
    diag = torch.diagonal(H, dim1=-2, dim2=-1)
    # inputs that are always zero: a unit diagonal decouples them (their weights act on nothing)
    diag[diag == 0] = 1.0
    Hinv = _inverse_cholesky(H, percdamp)  # [R', cols, cols] with R' in {1, rows}
    mask = torch.zeros_like(W, dtype=torch.bool)
    total = int(math.floor(rows * cols * sparsity + 1e-9)) if nm is None else 0
    done = 0
    for i1 in range(0, cols, blocksize):
        i2 = min(i1 + blocksize, cols)
        count = i2 - i1
        W1 = W[:, i1:i2].clone()
        Q1 = torch.zeros_like(W1)
        Err1 = torch.zeros_like(W1)
        Hinv1 = Hinv[:, i1:i2, i1:i2]
        d1 = torch.diagonal(Hinv1, dim1=-2, dim2=-1)  # [R', count]
        mask1 = torch.zeros_like(W1, dtype=torch.bool)
        if nm is None:
            # cumulative share keeps the matrix total exact while each block picks its own zeros
            want = int(math.floor(total * i2 / cols + 1e-9)) - done
            if want > 0:
                scores = W1.pow(2) / d1.pow(2)
                mask1.view(-1)[torch.topk(scores.flatten(), want, largest=False).indices] = True
            done += want
        for i in range(count):
            w = W1[:, i]
            d = d1[:, i]
            if nm is not None and i % nm[1] == 0:
                scores = W1[:, i : i + nm[1]].pow(2) / d1[:, i : i + nm[1]].pow(2)
                idx = torch.topk(scores, nm[1] - nm[0], dim=1, largest=False).indices
                mask1[:, i : i + nm[1]].scatter_(1, idx, True)
            q = w.clone()
            q[mask1[:, i]] = 0.0
            Q1[:, i] = q
            err = (w - q) / d
            W1[:, i:] -= err[:, None] * Hinv1[:, i, i:]
            Err1[:, i] = err
        W[:, i1:i2] = Q1
        mask[:, i1:i2] = mask1
        if i2 < cols:
            if Hinv.shape[0] == 1:
                W[:, i2:] -= Err1 @ Hinv[0, i1:i2, i2:]
            else:
                W[:, i2:] -= torch.einsum("rk,rkj->rj", Err1, Hinv[:, i1:i2, i2:])
    W[mask] = 0.0
    return W.to(weight.dtype), mask
