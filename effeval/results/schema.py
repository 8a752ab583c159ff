"""Load and check the ``effeval/result/v1`` JSON Schema shipped in this package."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from effeval.errors import ConfigError

SCHEMA_ID = "effeval/result/v1"
SCHEMA_FILE = Path(__file__).with_name("result_v1.schema.json")


@functools.lru_cache(maxsize=1)
def load_schema() -> dict:
    return json.loads(SCHEMA_FILE.read_text())


def schema_errors(obj: Any) -> list[str]:
    """Every schema violation of ``obj`` as ``path: message`` (empty list when valid)."""
    import jsonschema

    from effeval.atomic import first_nonfinite

    validator = jsonschema.Draft202012Validator(load_schema(), format_checker=jsonschema.FormatChecker())
    errors = sorted(validator.iter_errors(obj), key=lambda e: list(e.absolute_path))
    found = [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors]
    # JSON Schema's "number" lets NaN and Infinity through (Python's json reads the NaN/Infinity
    # tokens), but they are not JSON numbers and no other reader takes them
    bad = first_nonfinite(obj)
    if bad is not None:
        found.append(f"{bad[0]}: {bad[1]} is not a JSON number (write null for an undefined value)")
    return found


def validate_result(obj: Any, where: str = "result") -> None:
    """Raise ``ConfigError`` listing what is wrong if ``obj`` is not valid effeval/result/v1."""
    errors = schema_errors(obj)
    if errors:
        shown = "; ".join(errors[:5]) + (f"; ... ({len(errors)} errors)" if len(errors) > 5 else "")
        raise ConfigError(f"{where} is not valid {SCHEMA_ID}: {shown}")
