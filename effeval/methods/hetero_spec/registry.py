"""``ALGORITHMS``: algorithm name -> module exposing the common ``generate`` (imported lazily, so
SLRS, developed separately, and transformers' ``hf`` path cost nothing until used)."""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable

from effeval.errors import ConfigError

ALGORITHMS: dict[str, str] = {
    "ar": "effeval.methods.hetero_spec.ar",
    "slem": "effeval.methods.hetero_spec.slem",
    "tli": "effeval.methods.hetero_spec.tli",
    "slrs": "effeval.methods.hetero_spec.slrs",
    "hf": "effeval.methods.hetero_spec.hf",
}


def get_algorithm(name: str) -> Callable:
    """The ``generate`` function of algorithm ``name`` (ConfigError if unknown or unavailable)."""
    if name not in ALGORITHMS:
        raise ConfigError(f"algorithm {name!r} is unknown. Fix: use one of {', '.join(ALGORITHMS)}")
    try:
        module = importlib.import_module(ALGORITHMS[name])
    except ModuleNotFoundError as exc:
        if exc.name != ALGORITHMS[name]:
            raise
        raise ConfigError(
            f"algorithm {name!r}: its module {ALGORITHMS[name]} is not available in this installation. "
            f"Fix: use one of {', '.join(n for n in ALGORITHMS if n != name)}"
        ) from None
    return module.generate


def available() -> list[str]:
    """Algorithms whose module imports (SLRS may be absent)."""
    out = []
    for name, module in ALGORITHMS.items():
        if importlib.util.find_spec(module) is not None:
            out.append(name)
    return out
