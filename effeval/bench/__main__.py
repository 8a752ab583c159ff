"""``python -m effeval.bench <name> [args]``: run one side-by-side benchmark (or ``all``)."""

from __future__ import annotations

import importlib
import logging
import sys

from effeval.errors import ConfigError, EffevalError

# name -> "module:function(argv) -> int"; each benchmark lives in its own module.
BENCHES = {
    "hetero-spec": "effeval.bench.hetero_spec:main",
    "short-mk": "effeval.bench.short_mk:main",
    "spellm": "effeval.bench.spellm:main",
    "pruned-ssm": "effeval.bench.pruned_ssm:main",
    "image": "effeval.bench.image:main",
    "overhead": "effeval.bench.overhead:main",
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if not argv or argv[0] in ("-h", "--help"):
            print("usage: python -m effeval.bench {" + ",".join([*BENCHES, "all"]) + "} [options]")
            return 0
        name, rest = argv[0], argv[1:]
        names = list(BENCHES) if name == "all" else [name]
        for one in names:
            if one not in BENCHES:
                raise ConfigError(
                    f"benchmark {one!r} is unknown. Fix: use one of {', '.join(BENCHES)} or all"
                )
            module, func = BENCHES[one].split(":")
            code = getattr(importlib.import_module(module), func)(rest)
            if code:
                return int(code)
        return 0
    except EffevalError as exc:
        print(f"effeval error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
