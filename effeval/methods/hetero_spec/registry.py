"""``ALGORITHMS``: algorithm name -> the ``generate`` function of its module (imported lazily, so
SLRS, developed separately, and transformers' ``hf`` path cost nothing until used)."""

from __future__ import annotations

from collections.abc import Callable

from effeval.registry import Registry

ALGORITHMS: Registry[Callable] = Registry(
    "algorithm",
    {
        "ar": "effeval.methods.hetero_spec.ar:generate",
        "slem": "effeval.methods.hetero_spec.slem:generate",
        "tli": "effeval.methods.hetero_spec.tli:generate",
        "slrs": "effeval.methods.hetero_spec.slrs:generate",
        "hf": "effeval.methods.hetero_spec.hf:generate",
    },
    argument="algorithm",
)


def get_algorithm(name: str) -> Callable:
    """The ``generate`` function of algorithm ``name`` (ConfigError if unknown or unavailable)."""
    return ALGORITHMS.load(name)


def available() -> list[str]:
    """Algorithms whose module is installed (SLRS may be absent)."""
    return ALGORITHMS.available()
