"""One number formatter for everything effeval prints or renders (tables, reports, leaderboard)."""

from __future__ import annotations

import math
from typing import Any

# Beyond these magnitudes a fixed-point number is unreadable (a random model's perplexity is
# ~1e41: 42 digits); scientific notation says the same in a few characters.
SCIENTIFIC_ABOVE = 1e7
SCIENTIFIC_BELOW = 1e-3


def format_number(value: Any, digits: int = 4, missing: str = "-", thousands: bool = False) -> str:
    """``digits`` significant digits; ``missing`` for None, NaN and infinities; scientific notation
    outside [1e-3, 1e7) (3.7e41 -> "3.7e+41"); with ``thousands``, numbers >= 1000 as ``12,345``;
    anything that is not a number as ``str``."""
    if value is None:
        return missing
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    v = float(value)
    if not math.isfinite(v):
        return missing
    size = abs(v)
    if size >= SCIENTIFIC_ABOVE:
        return f"{v:.{max(1, digits - 1)}g}"
    if 0 < size < SCIENTIFIC_BELOW:
        return f"{v:.{max(0, digits - 2)}e}"
    if thousands and size >= 1000:
        return f"{v:,.0f}"
    if isinstance(value, int):
        return str(value)
    return f"{v:.{digits}g}"
