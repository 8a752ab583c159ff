"""Atomic writes: a reader never sees a half-written result file."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from effeval.results.schema import validate_result


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    from effeval.atomic import write_text_atomic as write

    return write(path, text)


def finite(obj: Any) -> Any:
    """NaN/inf -> None (JSON has no such numbers; lm-eval writes them for undefined stderr)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    return obj


def write_json_atomic(path: str | os.PathLike, obj: Any) -> Path:
    return write_text_atomic(path, json.dumps(finite(obj), indent=2, allow_nan=False, default=str) + "\n")


def write_result(path: str | os.PathLike, result: dict) -> Path:
    """Name models by what they are (never a cache path), validate against effeval/result/v1,
    then write atomically."""
    from effeval.model_identity import name_models

    result = finite(name_models(result))
    validate_result(result, where=str(path))
    return write_json_atomic(path, result)
