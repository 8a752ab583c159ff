"""The shared Registry and the CLI scaffold.

Each test was checked able to fail: a Registry that imports in ``__init__`` fails the laziness
check; one that swallows every ModuleNotFoundError hides the broken-module bug; a scaffold that
ignores EFFEVAL_TRACEBACK, or sets HF_HUB_OFFLINE, fails the scaffold tests.
"""

from __future__ import annotations

import sys

import pytest

from effeval.commands.scaffold import Command, run_guarded
from effeval.errors import ConfigError
from effeval.registry import Registry


@pytest.fixture
def module_dir(tmp_path, monkeypatch):
    (tmp_path / "effeval_reg_probe.py").write_text("VALUE = 41 + 1\n")
    (tmp_path / "effeval_reg_broken.py").write_text("import effeval_no_such_dependency\nVALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in ("effeval_reg_probe", "effeval_reg_broken"):
        sys.modules.pop(name, None)


def test_registry_imports_only_on_load(module_dir):
    reg: Registry[int] = Registry("thing", {"probe": "effeval_reg_probe:VALUE"}, argument="--thing")
    assert dict(reg) == {"probe": "effeval_reg_probe:VALUE"} and "probe" in reg
    assert "effeval_reg_probe" not in sys.modules  # listing names imports nothing
    assert reg.load("probe") == 42
    assert "effeval_reg_probe" in sys.modules


def test_registry_errors_name_the_argument_and_the_choices(module_dir):
    reg = Registry(
        "thing",
        {
            "probe": "effeval_reg_probe:VALUE",
            "gone": "effeval_reg_absent:VALUE",
            "broken": "effeval_reg_broken:VALUE",
        },
        argument="--thing",
    )
    with pytest.raises(ConfigError) as unknown:
        reg.load("nope")
    assert str(unknown.value) == "--thing: unknown thing 'nope'. Fix: use one of probe, gone, broken"
    with pytest.raises(
        ConfigError, match=r"^--thing: thing 'gone' is not available .*Fix: use one of probe, broken$"
    ):
        reg.load("gone")
    # a module that exists but whose own import fails is a bug, not a user error
    with pytest.raises(ModuleNotFoundError, match="effeval_no_such_dependency"):
        reg.load("broken")
    assert reg.available() == ["probe", "broken"]
    with pytest.raises(ValueError, match="not 'module:object'"):
        reg.add("bad", "no_colon")


def test_registry_decorator_and_modules_imported_on_first_lookup(module_dir):
    (module_dir / "effeval_reg_decorated.py").write_text(
        "from effeval_reg_shared import REG\n\n@REG.register('double', help='twice')\ndef double(x):\n    return 2 * x\n"
    )
    reg = Registry("function", modules=["effeval_reg_decorated"])
    sys.modules["effeval_reg_shared"] = type(sys)("effeval_reg_shared")
    sys.modules["effeval_reg_shared"].REG = reg
    try:
        assert "effeval_reg_decorated" not in sys.modules
        assert list(reg) == ["double"]  # first lookup imported the module, whose decorator registered
        assert reg["double"] == "effeval_reg_decorated:double" and reg.describe("double") == "twice"
        assert reg.load("double")(21) == 42
    finally:
        sys.modules.pop("effeval_reg_shared", None)
        sys.modules.pop("effeval_reg_decorated", None)


def _fail(_args=None):
    raise ConfigError("--x: bad. Fix: good")


def test_scaffold_prints_one_line_and_exits_2(capsys, monkeypatch):
    monkeypatch.delenv("EFFEVAL_TRACEBACK", raising=False)
    assert run_guarded(_fail) == 2
    assert capsys.readouterr().err == "effeval error: --x: bad. Fix: good\n"
    command = Command("prog", "d", lambda p: p.add_argument("--n", type=int, default=3), lambda a: a.n)
    assert command(["--n", "5"]) == 5 and command([]) == 3


def test_scaffold_traceback_on_request_and_no_forced_offline(monkeypatch):
    monkeypatch.setenv("EFFEVAL_TRACEBACK", "1")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with pytest.raises(ConfigError, match="--x: bad"):
        run_guarded(_fail)
    import os

    assert "HF_HUB_OFFLINE" not in os.environ  # offline is the environment's choice


def test_methods_import_nothing_from_the_front_door():
    """``effeval/methods/`` are pure algorithms: no import (top-level or inside a function) of
    effeval.models / bench / results / cli / zoo / commands. Shown able to fail: adding
    ``from effeval.zoo import get`` inside any method function makes it list that file."""
    import ast
    from pathlib import Path

    import effeval

    forbidden = ("models", "bench", "results", "cli", "zoo", "commands")
    root = Path(effeval.__file__).parent / "methods"
    offenders = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
                if node.module == "effeval":
                    names = [f"effeval.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            if any(n.split(".")[:2] in (["effeval", f] for f in forbidden) for n in names):
                offenders.append(f"{path.relative_to(root)}:{node.lineno}")
    assert offenders == []
