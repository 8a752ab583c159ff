"""Pruning state-space LMs (Mamba / Mamba2), after Ghattas, Hassid & Schwartz, "On Pruning
State-Space LLMs" (EMNLP 2025).

- ``calibration``: token windows from a text file, a ``datasets`` dataset or given texts.
- ``capture``: input statistics for every prunable weight, including ``conv1d`` and ``dt_proj``,
  whose weights transformers' Mamba applies directly (forward hooks never fire for them).
- ``unstructured``: magnitude, WANDA, SparseGPT, with unstructured or N:M patterns.
- ``structured``: d_state / head-dim / whole-head pruning that shrinks the model and its config.
- ``api``: ``PruneSpec`` (validated settings) and ``prune_model`` (one entry point + report).

Nothing here imports lm_eval; ``effeval/models/pruned_ssm.py`` is the lm-eval adapter.
"""
