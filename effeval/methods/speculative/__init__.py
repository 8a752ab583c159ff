"""Speculative decoding across different vocabularies: AR, SLEM, TLI, SLRS (Timor et al., 2025)."""
