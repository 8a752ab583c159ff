"""``effeval lm``'s up-front checks of the lm-eval flags that lm-eval itself takes unchecked.

Each finds, before lm-eval builds a task or loads a model, a mistake that it would otherwise
turn into a traceback minutes in or, worse, a run that looks fine:

- ``--model_args`` / ``--gen_kwargs`` with a key given twice (lm-eval keeps the last one and
  only logs a warning), or a generation setting of the wrong kind (``temperature=abc``);
- ``--output_path`` naming an existing file without ``.json``: lm-eval evaluates everything,
  then cannot make its folder, logs a warning and exits 0 with nothing saved;
- a ``pretrained`` / ``drafter`` folder whose ``config.json`` or weights are damaged.

Both flags take several values (``--model_args a=1 b=2``) and may be repeated; lm-eval merges
them all, so every value is read here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from effeval.errors import ConfigError

MODEL_ARGS = ("--model_args", "--model-args", "-a")
GEN_KWARGS = ("--gen_kwargs", "--gen-kwargs")
OUTPUT_PATH = ("--output_path", "--output-path", "-o")
# model_args that name a model folder (hetero-spec's drafter is a second model)
FOLDER_ARGS = ("pretrained", "drafter")


def flag_values(argv: list[str], names: tuple[str, ...]) -> list[str] | None:
    """Every value of a flag that takes one or more (argparse ``nargs="+"``), over all its
    occurrences, in order; None when the flag is absent."""
    out: list[str] | None = None
    i = 0
    while i < len(argv):
        token = argv[i]
        inline = next((token.split("=", 1)[1] for n in names if token.startswith(n + "=")), None)
        if inline is not None:
            out = (out or []) + [inline]
        elif token in names:
            out = out or []
            while i + 1 < len(argv) and not argv[i + 1].startswith("-"):
                i += 1
                out.append(argv[i])
        i += 1
    return out


def _split(text: str) -> list[str]:
    """``a=1,b=[2,3]`` -> ``["a=1", "b=[2,3]"]``: lm-eval's own splitter (commas inside brackets
    and quotes stay) where it has one."""
    try:
        from lm_eval._cli.utils import split_top_level
    except ImportError:  # another lm-eval version: plain commas
        return text.split(",")
    return split_top_level(text)


def key_values(values: list[str], flag: str) -> dict[str, str]:
    """The raw ``key -> value`` strings of a ``key=value,...`` flag (or its JSON form); a key
    given twice, a part without ``=`` or an empty key is one ConfigError naming ``flag``."""
    pairs: list[tuple[str, str]] = []
    if values and values[0].lstrip().startswith("{"):
        if len(values) > 1:
            raise ConfigError(
                f"{flag}: a JSON object and more values ({' '.join(values[1:])!r}); lm-eval would drop "
                "the rest. Fix: put every key in the one JSON object, or use key=value pairs only"
            )
        objects: list[list] = []  # every object's pairs, inner ones first: the last is the top level
        try:
            json.loads(values[0], object_pairs_hook=lambda items: objects.append(items) or dict(items))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{flag}: not valid JSON ({exc.msg}). Fix: use key=value,key=value") from None
        top = objects[-1] if objects else []
        pairs = [(k, v if isinstance(v, str) else json.dumps(v)) for k, v in top]
    else:
        for value in values:
            for part in _split(value):
                part = part.strip()
                if not part:
                    continue
                if "=" not in part:
                    raise ConfigError(
                        f"{flag}: {part!r} has no '='. Fix: write key=value pairs separated by commas, "
                        "e.g. pretrained=DIR,dtype=float32"
                    )
                key, _, raw = part.partition("=")
                if not key.strip():
                    raise ConfigError(f"{flag}: {part!r} has an empty key. Fix: write key=value")
                pairs.append((key.strip(), raw))
    seen: dict[str, str] = {}
    for key, raw in pairs:
        if key in seen:
            raise ConfigError(
                f"{flag}: {key!r} is given twice ({seen[key]!r}, then {raw!r}); lm-eval would silently keep "
                f"the last. Fix: give {key} once"
            )
        seen[key] = raw
    return seen


def _typed(raw: str):
    """A value as lm-eval's CLI types it (``0.7`` -> float, ``true`` -> bool, else the string)."""
    try:
        from lm_eval._cli.utils import handle_cli_value_string
    except ImportError:
        return raw
    return handle_cli_value_string(raw)


def check_output_path(value: str) -> None:
    """lm-eval writes ``<path>/<model>/results_*.json``, or ``<stem>_<date>.json`` beside a path
    ending in ``.json``; any other path that cannot become a folder is refused before the run."""
    from effeval.atomic import check_output_dir

    path = Path(value).expanduser()
    if path.suffix == ".json" and not path.is_dir():
        check_output_dir(path.parent, "--output_path")
        return
    if path.exists() and not path.is_dir():
        raise ConfigError(
            f"--output_path: {value!r} is a file; lm-eval would run every task, then fail to make its "
            "results folder there and save nothing. Fix: pass a folder (or a path ending in .json)"
        )
    check_output_dir(path, "--output_path")


def check_model_folders(model: str, model_args: dict[str, str]) -> None:
    """A local ``pretrained`` / ``drafter`` folder with a damaged config.json or weights is
    refused now (header reads only), not after lm-eval has built its tasks. For ``--model hf``
    a path that does not exist is refused too (the effeval wrappers check theirs themselves)."""
    from effeval.models.base import check_pretrained

    for key in FOLDER_ARGS:
        raw = model_args.get(key)
        if raw is None:
            continue
        value = str(_typed(raw))
        if model == "hf" and key == "pretrained":
            check_pretrained(value, key, model)
        elif os.path.isdir(os.path.expanduser(value)):
            from effeval.model_files import folder_problem

            problem = folder_problem(os.path.expanduser(value))
            if problem is not None:
                raise ConfigError(
                    f"{model} model_args '{key}': the model in {value!r} is damaged: {problem}. Fix: save "
                    "it again with save_pretrained (a zoo model: `effeval zoo build NAME --force`)"
                )


def check_lm_flags(argv: list[str], model: str) -> None:
    """Every check above, on ``effeval lm``'s argv."""
    from effeval.models.base import check_gen_kwargs

    model_values = flag_values(argv, MODEL_ARGS)
    model_args = key_values(model_values, "--model_args") if model_values else {}
    gen_values = flag_values(argv, GEN_KWARGS)
    if gen_values:
        raw = key_values(gen_values, "--gen_kwargs")
        check_gen_kwargs({k: _typed(v) for k, v in raw.items()}, "--gen_kwargs")
    output = flag_values(argv, OUTPUT_PATH)
    if output:
        check_output_path(output[-1])
    check_model_folders(model, model_args)
