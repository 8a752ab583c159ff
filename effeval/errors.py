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
            "Fix: pass a complete folder written by save_pretrained (config.json, weights, tokenizer); "
            "a zoo model is rebuilt with `effeval zoo build NAME --force`"
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


def _flush_open_files() -> None:
    """Flush every open file object the program still holds. Leaving from inside the excepthook
    skips the interpreter's teardown of module globals (where an unclosed file would have been
    flushed as it is freed), so its buffered writes are pushed out here instead."""
    import gc
    import io

    kinds = (io.TextIOWrapper, io.BufferedWriter, io.BufferedRandom)
    for obj in gc.get_objects():
        # type(), not isinstance(): isinstance reads obj.__class__, which some objects (torch's
        # deprecated aliases) answer with a warning
        if issubclass(type(obj), kinds):
            try:
                if not obj.closed:
                    obj.flush()
            except Exception:  # a broken pipe or a detached buffer: nothing to save
                pass


def _exit_like_the_interpreter(code: int) -> None:
    """What a normal exit does, in its order (wait for non-daemon threads, run the atexit
    handlers, flush what is buffered), then leave with ``code``. ``SystemExit`` raised from an
    excepthook is honoured by CPython (``PyErr_Print`` hands it to ``Py_Exit``), so the rest of
    the interpreter's finalisation still runs; only the teardown of module globals does not,
    which ``_flush_open_files`` makes up for."""
    import atexit
    import threading

    shutdown = getattr(threading, "_shutdown", None)
    if shutdown is not None and threading.current_thread() is threading.main_thread():
        shutdown()
    atexit._run_exitfuncs()  # runs each handler once and empties the list
    _flush_open_files()
    raise SystemExit(code)


def _one_line_excepthook(exc_type, exc, tb, _previous=sys.excepthook):
    if issubclass(exc_type, EffevalError) and not traceback_requested():
        sys.stderr.write(f"effeval error: {exc}\n")
        if not (sys.flags.interactive or hasattr(sys, "ps1")):
            # the stock `lm_eval` CLI dies here: bad input exits 2 as our own commands do (the
            # interpreter would exit 1); an interactive session keeps running
            del tb  # the traceback holds every frame of the failed run
            _exit_like_the_interpreter(2)
        return
    _previous(exc_type, exc, tb)


if getattr(sys.excepthook, "__name__", "") != "_one_line_excepthook":
    sys.excepthook = _one_line_excepthook
