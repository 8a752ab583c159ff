"""SpeLLM (Ben-Artzy & Schwartz, arXiv 2507.16323): character-level multi-head output.

An LM's output projection costs ``d x V`` per token. SpeLLM replaces it by ``k`` small linear
heads (``d -> |C|``): head ``j`` predicts the ``j``-th symbol of the next token's string, all
heads at once. The predicted string is mapped back to input tokens, so the input vocabulary
(and sequence length) stays the base model's.

Modules (torch/transformers are imported inside them, never here):

- ``alphabet``: the symbol alphabet (256 bytes + END + EOS) and ``CharCodec``, which maps every
  token of a tokenizer to its padded symbol row, strings back to input tokens, long tokens to
  chunks, and reports coverage.
- ``heads``: ``CharHeads`` (the k heads), exact string log-probs, greedy/sampled strings.
- ``model``: ``SpeLLMForCausalLM`` (HF backbone + heads, one-directory save/load, scoring,
  generation).
- ``distill``: self-distillation from the base model's own next-token distribution.
- ``cli``: ``effeval spellm distill|coverage``; ``demo``: the ``make demo`` step.

See docs/spellm.md for the definitions (alphabet, scoring, long strings, targets).
"""
