"""One bench JSON holding several models' runs: a run on another model is added under its own key
and every other entry of the file is kept (``write_bench`` rewrites the whole file)."""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def write_bench_entry(
    name: str, key: str, payload: dict[str, Any], out_dir: str | os.PathLike | None = None
) -> Path:
    """Set ``<out_dir>/<name>.json``'s ``key`` to ``{created, environment, **payload}``, keeping the
    rest of the file (a missing file starts as ``{"bench": name}``)."""
    import torch

    from effeval.bench.common import bench_dir
    from effeval.model_identity import name_models
    from effeval.results.convert import environment_block
    from effeval.results.writer import write_json_atomic

    path = Path(out_dir or bench_dir()) / f"{name}.json"
    doc = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {"bench": name}
    env = environment_block("cuda" if torch.cuda.is_available() else "cpu")
    env["torch_threads"] = torch.get_num_threads()
    doc[key] = {
        "created": _dt.datetime.now(tz=_dt.timezone.utc).isoformat(),
        "environment": env,
        **name_models(payload),
    }
    write_json_atomic(path, doc)
    logger.info("bench %s [%s] -> %s", name, key, path)
    return path
