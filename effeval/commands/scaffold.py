"""The one command-line scaffold every effeval entry point runs through.

``run_guarded`` owns what all of them share: logging (one format), environment defaults, and
turning an ``EffevalError`` into one ``effeval error: ...`` line and exit status 2
(``EFFEVAL_TRACEBACK=1`` re-raises it instead). ``Command`` is a parser plus a run function; a
sub-command only adds its arguments and runs.

Offline mode is the environment's choice: nothing here sets ``HF_HUB_OFFLINE`` (the Makefile
does for ``make`` targets); a model argument that is not a local folder fails with a one-line
error either way.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass

from effeval.errors import ConfigError, EffevalError, traceback_requested

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
INTERRUPTED = 130  # exit status after Ctrl-C, as a shell reports a process SIGINT ended


def setup_logging(verbose: bool = False) -> None:
    """effeval's own loggers at INFO; other libraries at WARNING (INFO with ``verbose``)."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format=LOG_FORMAT)
    if verbose:
        logging.getLogger().setLevel(logging.INFO)
    logging.getLogger("effeval").setLevel(logging.INFO)


def apply_environment_defaults() -> None:
    # tokenizers' thread pool warns (and can deadlock) after fork; lm-eval and torchrun fork
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


class ArgumentParser(argparse.ArgumentParser):
    """argparse with effeval's error form: a wrong flag value, a missing required argument or an
    unknown one is a ConfigError ``<argument>: <problem>. Fix: <fix>`` (one line, exit 2 under
    ``run_guarded``) instead of argparse's usage block and ``error:`` line. Sub-parsers inherit it."""

    def error(self, message: str):
        see = f"see `{self.prog} --help`"
        # a sub-command slot is named by its internal dest ("results_cmd"); users know it as COMMAND
        slots = {a.dest for a in self._actions if isinstance(a, argparse._SubParsersAction)}
        if message.startswith("argument "):
            argument, _, problem = message[len("argument ") :].partition(": ")
            argument = "COMMAND" if argument in slots else argument.split("/")[-1]
            raise ConfigError(f"{argument}: {problem.rstrip('.')}. Fix: {see}")
        if message.startswith("the following arguments are required: "):
            missing = ", ".join(
                "COMMAND" if name in slots else name for name in message.split(": ", 1)[1].split(", ")
            )
            raise ConfigError(f"{missing}: required but not given. Fix: pass {missing}; {see}")
        if message.startswith("unrecognized arguments: "):
            unknown = message.split(": ", 1)[1]
            raise ConfigError(f"{unknown}: not an argument of {self.prog}. Fix: {see}")
        raise ConfigError(f"{self.prog}: {message.rstrip('.')}. Fix: {see}")


def run_guarded(body: Callable[[], int | None], *, verbose: bool = False) -> int:
    """Run ``body`` as a command: its return value is the exit status (None: 0)."""
    setup_logging(verbose)
    apply_environment_defaults()
    try:
        return int(body() or 0)
    except EffevalError as exc:
        if traceback_requested():
            raise
        sys.stderr.write(f"effeval error: {exc}\n")
        return 2
    except KeyboardInterrupt as exc:
        # Ctrl-C: one line and the shell's status for SIGINT (128 + 2), not a traceback; writers
        # are atomic, so what was finished stays and nothing is left half-written
        if traceback_requested():
            raise
        sys.stderr.write(f"\neffeval: interrupted{f'; {exc}' if str(exc) else ''}\n")
        return INTERRUPTED


def add_settings(parser: argparse.ArgumentParser, config_cls, exclude=()) -> None:
    """One option per field of a method's config dataclass (``effeval.config_fields``): ``--name-with-
    dashes`` with the field's type, default, choices and help; a bool that defaults to True becomes
    ``--no-name``, one that defaults to False ``--name``. Required fields are required options."""
    from effeval.config_fields import MISSING, settings_of

    for s in settings_of(config_cls, exclude=exclude):
        flag = "--" + s.name.replace("_", "-")
        text = s.help.replace("%", "%%")
        if s.type is bool:
            if s.default is True:
                parser.add_argument(
                    f"--no-{s.name.replace('_', '-')}", dest=s.name, action="store_false", help=text
                )
            else:
                parser.add_argument(flag, dest=s.name, action="store_true", help=text)
            continue
        if s.default is MISSING:
            parser.add_argument(flag, dest=s.name, type=s.type, required=True, choices=s.choices, help=text)
        else:
            shown = f" (default {s.default})" if s.default is not None and "default" not in s.help else ""
            parser.add_argument(
                flag, dest=s.name, type=s.type, default=s.default, choices=s.choices, help=text + shown
            )


@dataclass(frozen=True)
class Command:
    """``prog`` + ``add_arguments(parser)`` + ``run(args) -> exit status``; call it with argv."""

    prog: str
    description: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int | None]

    def parser(self) -> argparse.ArgumentParser:
        parser = ArgumentParser(prog=self.prog, description=self.description)
        self.add_arguments(parser)
        return parser

    def __call__(self, argv: list[str] | None = None) -> int:
        argv = list(sys.argv[1:] if argv is None else argv)
        # parsing runs under the guard too: a bad flag value is one line and exit 2
        return run_guarded(
            lambda: self.run(self.parser().parse_args(argv)),
            verbose=any(a in ("-v", "--verbose") for a in argv),
        )
