"""``python -m effeval.bench <name> [args]``: run one side-by-side benchmark (or ``all``)."""

from __future__ import annotations

import sys
from collections.abc import Callable

from effeval.commands.scaffold import run_guarded
from effeval.errors import ConfigError
from effeval.registry import Registry

# name -> main(argv) -> exit status; each benchmark lives in its own module.
BENCHES: Registry[Callable[[list[str]], int]] = Registry(
    "benchmark",
    {
        "hetero-spec": "effeval.bench.hetero_spec:main",
        "verify-cost": "effeval.bench.verify_cost:main",
        "short-mk": "effeval.bench.short_mk:main",
        "spellm": "effeval.bench.spellm:main",
        "pruned-ssm": "effeval.bench.pruned_ssm:main",
        "image": "effeval.bench.image:main",
        "image-shapes": "effeval.bench.image_shapes:main",
        "overhead": "effeval.bench.overhead:main",
        "real": "effeval.bench.real:main",
        "humaneval-large": "effeval.bench.humaneval_large:main",
    },
)


def run(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: python -m effeval.bench {" + ",".join([*BENCHES, "all"]) + "} [options]")
        return 0
    name, rest = argv[0], argv[1:]
    names = list(BENCHES) if name == "all" else [name]
    for one in names:
        if one not in BENCHES:
            raise ConfigError(
                f"NAME: benchmark {one!r} is unknown. Fix: use one of {', '.join(BENCHES)} or all"
            )
        code = BENCHES.load(one)(rest)
        if code:
            return int(code)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    return run_guarded(lambda: run(argv))


if __name__ == "__main__":
    sys.exit(main())
