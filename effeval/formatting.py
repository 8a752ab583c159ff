"""One number formatter for everything effeval prints or renders (tables, reports, leaderboard)."""

from __future__ import annotations

import math
from typing import Any


def format_number(value: Any, digits: int = 4, missing: str = "-", thousands: bool = False) -> str:
    """``digits`` significant digits for floats; ``missing`` for None, NaN and infinities;
    with ``thousands``, whole numbers >= 1000 as ``12,345``; anything else as ``str``."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return missing
    if thousands and isinstance(value, (int, float)) and abs(value) >= 1000 and float(value).is_integer():
        return f"{int(value):,}"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)
