"""Every ``python -m effeval.bench NAME`` runs through the one CLI scaffold (``effeval.commands.scaffold``):
its entry point is a ``Command`` named after the bench, so logging, environment defaults, the one-line
``effeval error: ...`` exit 2 and ``EFFEVAL_TRACEBACK=1`` are the scaffold's, also when a bench module
is run directly (``python -m effeval.bench.pruned_ssm``).

Shown able to fail: a bench whose ``main`` builds its own ``argparse.ArgumentParser`` and parses argv
itself (as every bench did before issue 16) is a plain function and fails the first test; one whose
``add_arguments`` defines a flag twice, requires an option, or defaults ``--threads`` to more than one
thread fails the second.
"""

from __future__ import annotations

import pytest

from effeval.bench.__main__ import BENCHES
from effeval.commands.scaffold import Command


@pytest.mark.parametrize("name", list(BENCHES))
def test_every_bench_entry_point_is_a_scaffold_command(name):
    main = BENCHES.load(name)
    assert isinstance(main, Command), f"{name}: {main!r} does not run through the CLI scaffold"
    assert main.prog == f"python -m effeval.bench {name}"


@pytest.mark.parametrize("name", list(BENCHES))
def test_every_bench_runs_on_its_defaults_with_one_thread(name):
    args = BENCHES.load(name).parser().parse_args([])  # no required options: the defaults are the run
    assert getattr(args, "threads", 1) == 1, f"{name}: benches measure on one torch thread by default"
