"""Speculative decoding across different vocabularies: AR, SLEM, TLI, SLRS (Timor et al., 2025).

``registry.ALGORITHMS`` maps each name (ar, slem, tli, slrs, hf) to its module; every module
exposes ``generate(target, target_tok, drafter, drafter_tok, prompt_ids, config, *,
num_draft_tokens, generator) -> GenerationResult`` (see ``common``). Nothing heavy is imported here.
"""

from effeval.methods.hetero_spec.registry import ALGORITHMS, get_algorithm  # noqa: F401
