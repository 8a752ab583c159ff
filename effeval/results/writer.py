"""Atomic writes: a reader never sees a half-written result file."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from effeval.results.schema import validate_result


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    from effeval.atomic import write_text_atomic as write

    return write(path, text)


def write_json_atomic(path: str | os.PathLike, obj: Any) -> Path:
    """Indented JSON, atomically; NaN / Infinity anywhere is a ConfigError and nothing is written
    (see ``effeval.atomic.write_json_atomic``)."""
    from effeval.atomic import write_json_atomic as write

    return write(path, obj)


def finite(obj: Any) -> Any:
    """NaN/inf -> None: reading lm-eval's output, where NaN means "undefined" (a stderr of one
    document). Only the converter's input goes through this; the JSON writer refuses them."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    return obj


def write_result(path: str | os.PathLike, result: dict) -> Path:
    """Name models by what they are (never a cache path), validate against effeval/result/v1
    (NaN / Infinity included: refused), then write atomically."""
    from effeval.model_identity import name_models

    result = name_models(result)
    validate_result(result, where=str(path))
    return write_json_atomic(path, result)
