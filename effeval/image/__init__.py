"""Text-to-image evaluation: information-flow interventions on prompt embeddings, scoring, reports.

Kaplan et al., "Follow the Flow: On Information Flow Across Textual Tokens in Text-to-Image
Models" (arXiv 2504.01137). Everything works on stock diffusers through ``prompt_embeds`` /
``negative_prompt_embeds`` / ``pooled_prompt_embeds`` (no fork).

Modules (import them directly; this package stays import-light -- no torch here):

- ``encoders``: prompt encoding for SD 1.x/2.x and SDXL; word <-> token-position alignment.
- ``interventions``: ``none``, ``keep``/``drop`` (modes ``pad`` and ``mask``), ``patch``,
  ``drop-redundant``; spec parsing (``drop:red ball@mask``).
- ``redundancy``: which token subsets alone reproduce an expression.
- ``generation``: images for (prompt, intervention, seed) through the stock pipeline.
- ``__main__``: ``python -m effeval.image run ...`` (resumable, torchrun data parallel).
- ``report``: the self-contained ``report.html``.
- ``scorers``, ``benchmarks``, ``metrics``: evaluators, benchmark data and loaders, metrics.
"""
