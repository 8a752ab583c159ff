"""Numbers as people read them in tables (leaderboard, demo, compare)."""

from __future__ import annotations

import math

# Beyond these magnitudes a fixed-point number is unreadable (a random model's perplexity is
# ~1e41: 42 digits); scientific notation with 3 significant digits says the same in 7 characters.
SCIENTIFIC_ABOVE = 1e7
SCIENTIFIC_BELOW = 1e-3


def format_number(value: float | int | None, digits: int = 4) -> str:
    """``None`` -> ""; 12345 -> "12,345"; 1234.56 -> "1,235"; 27.1234 -> "27.12";
    3.7e41 -> "3.7e+41"; 0.00012 -> "1.20e-04"; nan / inf as such."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    v = float(value)
    if not math.isfinite(v):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    size = abs(v)
    if size >= SCIENTIFIC_ABOVE or (0 < size < SCIENTIFIC_BELOW):
        return f"{v:.{max(1, digits - 1)}g}" if size >= SCIENTIFIC_ABOVE else f"{v:.{digits - 2}e}"
    if size >= 1000:
        return f"{v:,.0f}"
    return f"{v:.{digits}g}"
