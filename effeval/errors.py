"""effeval's user-facing errors.

Every error a user can cause by bad input is an ``EffevalError`` whose message names the
argument and the fix. When one reaches the top level of a command-line run (ours or the
stock ``lm_eval`` CLI), it is printed as one line instead of a traceback; set
``EFFEVAL_TRACEBACK=1`` to see the traceback.
"""

from __future__ import annotations

import contextlib
import os
import sys


class EffevalError(Exception):
    """Base class: a problem the user can fix; the message says how."""


class ConfigError(EffevalError, ValueError):
    """A bad argument or configuration value (model_args, CLI flags, files)."""


class NotImplementedYetError(EffevalError, NotImplementedError):
    """A registered method whose implementation has not landed yet."""


def config_error(argument: str, problem: str, fix: str) -> ConfigError:
    """Build the standard message: ``<argument>: <problem>. Fix: <fix>``."""
    return ConfigError(f"{argument}: {problem}. Fix: {fix}")


@contextlib.contextmanager
def loading(argument: str, path: object, what: str = "model"):
    """Around a ``from_pretrained`` of a user's folder: a corrupt config.json, a truncated
    safetensors file or a missing tokenizer file becomes one ConfigError naming ``argument``
    instead of a deep traceback. Errors that are already effeval's pass through."""
    try:
        yield
    except EffevalError:
        raise
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise ConfigError(
            f"{argument}: could not load the {what} in {str(path)!r} ({type(exc).__name__}: {first}). "
            "Fix: pass a complete folder written by save_pretrained (config.json, weights, tokenizer), "
            "e.g. rebuild it with `effeval zoo build`"
        ) from None


@contextlib.contextmanager
def named_as(render):
    """Around a method's own checks: a check names its parameter (``k: ...``, ``--calibration:
    ...``); the user typed a flag or a model_arg, so the message is renamed ``render(name): ...``."""
    try:
        yield
    except ConfigError as exc:
        name, sep, rest = str(exc).partition(": ")
        if sep and name.lstrip("-").isidentifier():
            raise ConfigError(f"{render(name.lstrip('-'))}: {rest}") from None
        raise


def model_args(model: str):
    """``k: ...`` -> ``<model> model_args 'k': ...`` (inside an lm-eval wrapper)."""
    return named_as(lambda name: f"{model} model_args '{name}'")


def cli_flags():
    """``batch_size: ...`` -> ``--batch-size: ...`` (inside a command line tool)."""
    return named_as(lambda name: "--" + name.replace("_", "-"))


def traceback_requested() -> bool:
    """``EFFEVAL_TRACEBACK`` set to anything but empty/0/false/no: show tracebacks."""
    return os.environ.get("EFFEVAL_TRACEBACK", "").strip().lower() not in ("", "0", "false", "no")


def _one_line_excepthook(exc_type, exc, tb, _previous=sys.excepthook):
    if issubclass(exc_type, EffevalError) and not traceback_requested():
        sys.stderr.write(f"effeval error: {exc}\n")
        if not (sys.flags.interactive or hasattr(sys, "ps1")):
            # the stock `lm_eval` CLI dies here: bad input exits 2 as our own commands do (the
            # interpreter would exit 1); an interactive session keeps running
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(2)
        return
    _previous(exc_type, exc, tb)


if getattr(sys.excepthook, "__name__", "") != "_one_line_excepthook":
    sys.excepthook = _one_line_excepthook
