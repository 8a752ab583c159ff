"""One registry shape for everything effeval looks up by name.

A ``Registry`` is a read-only mapping ``name -> "module:object"``: looking a name up costs
nothing, and ``load(name)`` imports the module only then (like lm-eval's model registry, whose
placeholders we also feed). Models, hetero-spec algorithms, image scorers, benchmarks, zoo
builders, demo steps and front-door sub-commands are all registries. This is a leaf module
(it imports only ``effeval.errors``) so algorithms in ``effeval/methods/`` may use it.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Generic, TypeVar

from effeval.errors import ConfigError

T = TypeVar("T")


def split_target(target: str) -> tuple[str, str]:
    module, sep, attr = target.partition(":")
    if not sep or not module or not attr:
        raise ValueError(f"registry target {target!r} is not 'module:object'")
    return module, attr


class Registry(Mapping[str, str], Generic[T]):
    """``name -> "module:object"`` placeholders of one kind, loaded on demand.

    ``kind`` names what is registered ("model", "benchmark", ...) and ``argument`` the option a
    user types the name into; both go into the one-line error for an unknown name.
    ``describe(name)`` is an optional one-line help text (shown by ``--help`` listings).
    ``modules`` are imported before the first lookup: their decorators (``register``) add names.
    """

    def __init__(
        self,
        kind: str,
        targets: Mapping[str, str] | None = None,
        *,
        argument: str | None = None,
        help: Mapping[str, str] | None = None,
        modules: Sequence[str] = (),
    ) -> None:
        self.kind = kind
        self._modules = list(modules)
        self._importing = False
        self.argument = argument or kind
        self._targets: dict[str, str] = {}
        self._help: dict[str, str] = {}
        self._loaded: dict[str, T] = {}
        for name, target in (targets or {}).items():
            self.add(name, target, (help or {}).get(name, ""))

    # -- registration
    def add(self, name: str, target: str, help: str = "", loaded: T | None = None) -> None:
        """Register ``target`` ("module:object"); ``loaded``, when given, is what ``load`` returns
        (a decorator registering from inside the module already has the object)."""
        split_target(target)  # refuse a malformed placeholder at import time, not at first use
        self._targets[name] = target
        self._help[name] = help
        self._loaded.pop(name, None)
        if loaded is not None:
            self._loaded[name] = loaded

    def register(self, name: str, help: str = "") -> Callable[[T], T]:
        """Decorator: register a module-level object under ``name`` (its own module:qualname)."""

        def deco(obj: T) -> T:
            self.add(name, f"{obj.__module__}:{obj.__qualname__}", help, loaded=obj)
            return obj

        return deco

    def _import_modules(self) -> None:
        if self._importing:  # a module being imported looked a name up: it sees what is there so far
            return
        self._importing = True
        try:
            while self._modules:
                importlib.import_module(self._modules[0])  # a failing import fails every lookup
                self._modules.pop(0)
        finally:
            self._importing = False

    # -- Mapping[str, str]: the placeholders
    def __getitem__(self, name: str) -> str:
        self._import_modules()
        return self._targets[name]

    def __iter__(self) -> Iterator[str]:
        self._import_modules()
        return iter(self._targets)

    def __len__(self) -> int:
        self._import_modules()
        return len(self._targets)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self._targets!r})"

    def describe(self, name: str) -> str:
        return self._help.get(name, "")

    def unknown_error(self, name: str) -> ConfigError:
        self._import_modules()
        return ConfigError(
            f"{self.argument}: unknown {self.kind} {name!r}. Fix: use one of {', '.join(self._targets)}"
        )

    def available(self) -> list[str]:
        """Names whose module is installed (without importing it)."""
        self._import_modules()
        return [
            n for n, t in self._targets.items() if importlib.util.find_spec(split_target(t)[0]) is not None
        ]

    def load(self, name: str) -> T:
        """The registered object; ConfigError for an unknown name or a module not installed."""
        self._import_modules()
        if name in self._loaded:
            return self._loaded[name]
        if name not in self._targets:
            raise self.unknown_error(name)
        module_name, attr = split_target(self._targets[name])
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if not exc.name or not (module_name == exc.name or module_name.startswith(exc.name + ".")):
                raise  # the module exists but one of its own imports is missing: a real bug
            others = ", ".join(n for n in self._targets if n != name) or "none"
            raise ConfigError(
                f"{self.argument}: {self.kind} {name!r} is not available in this installation "
                f"(module {module_name} is missing). Fix: use one of {others}"
            ) from None
        obj: Any = module
        for part in attr.split("."):
            obj = getattr(obj, part)
        self._loaded[name] = obj
        return obj
