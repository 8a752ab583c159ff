"""One source per method setting: the method's dataclass.

A field written with ``setting(default, help=...)`` carries its type (the annotation), default,
help text and optional ``choices`` / ``check`` (a function returning a problem or None).
``settings_of(cls)`` reads them back; the lm-eval model_args (``effeval.models.base.args_from``)
and the command-line options (``effeval.commands.scaffold.add_settings``) are derived from it,
so no layer repeats the list. A leaf module: algorithms in ``effeval/methods/`` may use it.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Iterable
from typing import Any

MISSING = dataclasses.MISSING


def setting(
    default: Any = MISSING,
    *,
    help: str,
    choices: Iterable[Any] | None = None,
    check: Callable[[Any], str | None] | None = None,
) -> Any:
    """A dataclass field with its help text (and optional choices / check) attached."""
    meta = {"help": help, "choices": tuple(choices) if choices is not None else None, "check": check}
    return dataclasses.field(default=default, metadata=meta)


def positive(x) -> str | None:
    """A ``check``: the value must be > 0."""
    return None if x > 0 else f"must be > 0, got {x}. Fix: pass a positive number"


def non_negative(x) -> str | None:
    """A ``check``: the value must be >= 0 (0 meaning "no limit")."""
    return None if x >= 0 else f"must be >= 0, got {x}. Fix: pass 0 (no limit) or a positive number"


@dataclasses.dataclass(frozen=True)
class Setting:
    name: str
    type: type  # the plain type (int, float, str, bool, ...); Optional is in ``optional``
    default: Any  # MISSING when required
    help: str
    choices: tuple | None
    check: Callable[[Any], str | None] | None
    optional: bool  # ``X | None``: None is a valid value

    @property
    def required(self) -> bool:
        return self.default is MISSING


def _plain_type(hint) -> tuple[type, bool]:
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args:
        (inner,) = [a for a in args if a is not type(None)]
        return inner, True
    return hint, False


def settings_of(cls, exclude: Iterable[str] = ()) -> list[Setting]:
    """The settings of dataclass ``cls`` in declaration order (fields without help included)."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        if f.name in exclude or not f.init:
            continue
        plain, optional = _plain_type(hints[f.name])
        default = f.default if f.default is not MISSING else MISSING
        if f.default_factory is not MISSING:
            default = f.default_factory()
        out.append(
            Setting(
                name=f.name,
                type=plain,
                default=default,
                help=f.metadata.get("help", ""),
                choices=f.metadata.get("choices"),
                check=f.metadata.get("check"),
                optional=optional or default is None,
            )
        )
    return out


def build(cls, values: dict[str, Any], **fixed: Any):
    """``cls(**values restricted to its fields, **fixed)``: copying settings without a field list."""
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    return cls(**{k: v for k, v in values.items() if k in names and k not in fixed}, **fixed)
