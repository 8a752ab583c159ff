"""The k character heads and the string distribution they define.

Head ``j`` is a linear map ``hidden -> |C|`` (|C| = 258: 256 bytes, END, EOS); all k heads are
one ``Linear(hidden, k * |C|)``, so a step costs ``2 * hidden * k * |C|`` FLOPs instead of the
projection's ``2 * hidden * V``.

Scoring (``mode``):

- ``padded`` (default; the product of the k heads, our reading of the paper): ``log p(s) = sum_{j<k} log p_j(row(s)_j)``
  over all k positions of the END-padded row. It is a distribution over the ``|C|^k`` symbol
  sequences; only those whose END symbols form a suffix (and that start with a byte or are the
  EOS row) spell a string, so the probabilities of all strings -- and a fortiori of all
  vocabulary tokens -- sum to less than 1. Scores are therefore log-probabilities of the
  *product-of-heads* model that distillation fits (see ``distill``), comparable between
  continuations of the same model, not normalised over the input vocabulary.
- ``terminated``: positions after the first END are ignored (``sum_{j<=L}``), i.e. the
  distribution of "sample every head, read up to the first END"; this one sums to 1 over
  strings (plus the mass of the empty string).
- ``vocab``: the padded score renormalised over the base model's input vocabulary,
  ``log p(t) = padded(row(t)) - logsumexp_{t'} padded(row(t'))`` (a token longer than k is one
  event, scored by its first k-byte row). This is a next-token distribution over the same
  events as the base model's softmax and sums to exactly 1 over the vocabulary, so its
  perplexity can be divided by the base model's; the string scores above cannot (they leave the
  mass of non-token strings and invalid rows unassigned, e^-5.6 per token on SmolLM2). It costs a
  V-sized gather per scored position, so it is an evaluation mode: generation in this mode
  decodes as ``padded``.

Generation picks the best *valid* string exactly under the same definition (``best_rows``):
for every length L in 1..k the best string of that length takes each head's best byte, so the
argmax over lengths and EOS is an O(k) search. Sampling draws a length from its exact marginal,
then the bytes, so sampled strings follow the scoring distribution conditioned on validity.
"""

from __future__ import annotations

from effeval.methods.spellm.alphabet import END, EOS, NUM_BYTES, NUM_SYMBOLS

MODES = ("padded", "terminated", "vocab")
STRING_MODES = ("padded", "terminated")  # the modes that define a distribution over strings


def string_mode(mode: str) -> str:
    """The string distribution that decodes under ``mode`` (``vocab`` decodes as ``padded``)."""
    return "padded" if mode == "vocab" else mode


def _torch():
    import torch

    return torch


def make_heads(hidden_size: int, k: int, num_symbols: int = NUM_SYMBOLS):
    """``CharHeads`` module (built lazily so that importing this file needs no torch)."""
    torch = _torch()

    class CharHeads(torch.nn.Module):
        """k linear heads hidden -> |C|, computed as one matmul."""

        def __init__(self):
            super().__init__()
            self.k = k
            self.num_symbols = num_symbols
            self.proj = torch.nn.Linear(hidden_size, k * num_symbols)

        def forward(self, hidden):
            """hidden [..., d] -> per-head log-probabilities [..., k, |C|] (float32)."""
            logits = self.proj(hidden).view(*hidden.shape[:-1], self.k, self.num_symbols)
            return torch.log_softmax(logits.float(), dim=-1)

    return CharHeads()


def string_logprob(char_logprobs, rows, mode: str = "padded"):
    """log p(string) for symbol rows ``[..., k]`` under head log-probs ``[..., k, |C|]``."""
    torch = _torch()
    picked = char_logprobs.gather(-1, rows.unsqueeze(-1)).squeeze(-1)  # [..., k]
    if mode == "padded":
        return picked.sum(-1)
    if mode != "terminated":
        raise ValueError(f"mode must be one of {STRING_MODES} (vocab: use vocab_logprob)")
    # keep positions up to and including the first non-byte symbol (END or EOS)
    is_stop = rows >= NUM_BYTES
    stops_before = torch.cumsum(is_stop.long(), dim=-1) - is_stop.long()
    return (picked * (stops_before == 0)).sum(-1)


def vocab_scores(char_logprobs, token_rows):
    """Padded score of every vocabulary token's row: ``[..., k, |C|]`` x ``[V, k]`` -> ``[..., V]``."""
    torch = _torch()
    k = token_rows.shape[1]
    out = torch.zeros(*char_logprobs.shape[:-2], token_rows.shape[0], dtype=char_logprobs.dtype)
    out = out.to(char_logprobs.device)
    rows = token_rows.to(char_logprobs.device)
    for j in range(k):  # k gathers of [..., V]: never materialises [..., V, k]
        out += char_logprobs[..., j, :].index_select(-1, rows[:, j])
    return out


def vocab_logprob(char_logprobs, rows, token_rows):
    """``vocab`` mode: log p(row) renormalised over the vocabulary's rows ``token_rows`` [V, k]."""
    torch = _torch()
    norm = torch.logsumexp(vocab_scores(char_logprobs, token_rows), dim=-1)
    return string_logprob(char_logprobs, rows, "padded") - norm


def _tails(end_lp, mode: str):
    """For L = 1..k: the log-prob of the positions after a length-L string ([N, k])."""
    torch = _torch()
    if mode == "padded":  # sum_{j>=L} log p_j(END) = total - sum_{j<L}
        return end_lp.sum(-1, keepdim=True) - torch.cumsum(end_lp, dim=-1)
    # terminated: only the END right after the string counts (none when L = k)
    return torch.cat([end_lp[..., 1:], torch.zeros_like(end_lp[..., :1])], dim=-1)


def _eos_score(lp, end_lp, mode: str):
    if mode == "padded":
        return lp[..., 0, EOS] + end_lp[..., 1:].sum(-1)
    return lp[..., 0, EOS]


def _length_scores(char_logprobs, mode: str):
    """Score of the best string of each length L=1..k, and of EOS: ([N, k], [N], best bytes [N, k])."""
    torch = _torch()
    byte_lp, byte_best = char_logprobs[..., :NUM_BYTES].max(dim=-1)  # [N, k]
    end_lp = char_logprobs[..., END]  # [N, k]
    prefix = torch.cumsum(byte_lp, dim=-1)  # prefix[L-1] = sum of the first L bytes
    return prefix + _tails(end_lp, mode), _eos_score(char_logprobs, end_lp, mode), byte_best


def rows_for(byte_sym, lengths, eos_mask, k: int):
    torch = _torch()
    pos = torch.arange(k, device=byte_sym.device)
    rows = torch.where(pos < lengths.unsqueeze(-1), byte_sym, torch.full_like(byte_sym, END))
    eos_row = torch.full_like(rows, END)
    eos_row[..., 0] = EOS
    return torch.where(eos_mask.unsqueeze(-1), eos_row, rows)


def best_rows(char_logprobs, mode: str = "padded", allow_eos: bool = True):
    """Exact argmax over valid strings (length 1..k, or EOS): (rows [N, k], log-prob [N])."""
    torch = _torch()
    k = char_logprobs.shape[-2]
    by_len, eos, byte_best = _length_scores(char_logprobs, mode)
    best_score, best_len = by_len.max(dim=-1)
    lengths = best_len + 1
    eos_mask = (eos > best_score) if allow_eos else torch.zeros_like(best_score, dtype=torch.bool)
    rows = rows_for(byte_best, lengths, eos_mask, k)
    return rows, torch.where(eos_mask, eos, best_score)


def sample_rows(
    char_logprobs, generator, mode: str = "padded", temperature: float = 1.0, allow_eos: bool = True
):
    """Sample valid strings from the heads' distribution (temperature on every head)."""
    torch = _torch()
    lp = torch.log_softmax(char_logprobs / temperature, dim=-1) if temperature != 1.0 else char_logprobs
    k = lp.shape[-2]
    byte_mass = torch.logsumexp(lp[..., :NUM_BYTES], dim=-1)  # log P_j(any byte)
    end_lp = lp[..., END]
    prefix = torch.cumsum(byte_mass, dim=-1)
    tail = _tails(end_lp, mode)
    eos = _eos_score(lp, end_lp, mode)
    if not allow_eos:
        eos = torch.full_like(eos, float("-inf"))
    choice_lp = torch.cat([prefix + tail, eos.unsqueeze(-1)], dim=-1)  # [N, k+1]
    flat = choice_lp.reshape(-1, k + 1)
    choice = torch.multinomial(torch.softmax(flat, -1), 1, generator=generator).view(choice_lp.shape[:-1])
    byte_probs = torch.softmax(lp[..., :NUM_BYTES].reshape(-1, NUM_BYTES), -1)
    byte_sym = torch.multinomial(byte_probs, 1, generator=generator).view(lp.shape[:-1])
    eos_mask = choice == k
    return rows_for(byte_sym, choice + 1, eos_mask, k)
