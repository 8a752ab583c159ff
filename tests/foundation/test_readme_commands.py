"""The commands in README.md work as written: every ``effeval ...`` and ``python -m effeval.bench
...`` line in its code blocks parses with today's parsers (flags, choices, sub-commands), and every
``effeval lm`` line names one of our models with model_args it accepts and tasks in task_configs/.

Parsing only (nothing runs, nothing is loaded): renaming a flag, a sub-command or a task without
updating the README fails here. Shown able to fail: the last test feeds deliberately stale lines
(an old command name, a removed flag, an unknown task) through the same checker.
"""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_commands() -> list[str]:
    lines = []
    for block in re.findall(r"```[a-z]*\n(.*?)```", README.read_text(encoding="utf-8"), re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.strip()
            if line.startswith(("effeval ", "python -m effeval")):
                lines.append(line)
    return lines


def _argv(line: str) -> list[str]:
    line = re.sub(r"\$\([^)]*\)", "/tmp/model-dir", line)  # $(effeval zoo path X) -> a folder
    line = re.sub(r"\s#(?!\S*\})\s.*$", "", line)  # a trailing comment
    line = line.replace("[", "").replace("]", "")  # optional parts are checked too
    return shlex.split(line)


def check_command(line: str) -> None:
    """Raise (ConfigError / SystemExit / AssertionError) if ``line`` does not parse."""
    from effeval.bench.__main__ import BENCHES
    from effeval.cli import DELEGATED, build_parser, check_lm_argv

    argv = _argv(line)
    if argv[:3] == ["python", "-m", "effeval.bench"]:
        names = argv[3].split("|")  # "a|b|all": each alternative is a benchmark
        for name in names:
            if name != "all":
                BENCHES.load(name).parser().parse_args(argv[4:])
            else:
                assert len(names) > 1 or not argv[4:], line
        return
    assert argv[0] == "effeval", line
    command, rest = argv[1], argv[2:]
    if command == "lm":
        assert check_lm_argv(rest), f"{line}: a task that is not in task_configs/"
    elif command in DELEGATED:
        main = DELEGATED.load(command)  # a scaffold Command, or a main() beside its build_parser()
        parser = main.parser() if hasattr(main, "parser") else sys.modules[main.__module__].build_parser()
        parser.parse_args(rest)
    else:
        build_parser().parse_args(argv[1:])


def test_readme_has_the_commands_it_documents():
    commands = readme_commands()
    assert len(commands) >= 25, commands
    for first_word in ("zoo", "results", "lm", "pruned-ssm", "spellm", "short-mk", "image"):
        assert any(c.split()[1] == first_word for c in commands if c.startswith("effeval ")), first_word


# README model folders are placeholders; `effeval lm` checks a wrapper's folders up front, so each
# stands for a zoo folder of the kind it names (built once, offline)
PLACEHOLDERS = {
    "DIR": "llama-sp",
    "<target>": "llama-sp",
    "<drafter>": "qwen-tekken",
    "runs/spellm": "spellm-llama-sp",
}


@pytest.mark.parametrize("line", readme_commands())
def test_readme_command_parses(line, zoo_path):
    if line.startswith("effeval lm "):
        for placeholder, zoo_name in PLACEHOLDERS.items():
            line = re.sub(rf"(?<==){re.escape(placeholder)}(?=[,\s]|$)", zoo_path(zoo_name), line)
    check_command(line)


@pytest.mark.parametrize(
    "stale",
    [
        "effeval prune --model DIR --method wanda --out pruned/",  # the old command name
        "effeval pruned-ssm --model DIR --method wanda --nsamples-per-layer 3 --out p/",  # no such flag
        "effeval lm --model effeval-spellm --model_args pretrained=runs/spellm --tasks no_such_task",
        "python -m effeval.bench spec",  # the old benchmark name
        "effeval results leaderboard-build results/ --out site/",
    ],
)
def test_a_stale_readme_line_fails_the_check(stale):
    from effeval.errors import ConfigError

    with pytest.raises((ConfigError, AssertionError)):
        check_command(stale)
