"""Settings shared by every bootstrap confidence interval effeval reports (image metrics,
``effeval results compare``)."""

from __future__ import annotations

from effeval.errors import ConfigError


def check_bootstrap_settings(resamples: object, confidence: object) -> None:
    """One-line ConfigErrors for a resample count below 1 or a level outside (0, 1)."""
    if isinstance(resamples, bool) or not isinstance(resamples, int) or resamples < 1:
        raise ConfigError(f"--bootstrap: {resamples!r} resamples. Fix: use a positive integer such as 1000")
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0 < confidence < 1:
        raise ConfigError(f"--confidence: {confidence!r} is not in (0, 1). Fix: use e.g. 0.95")
