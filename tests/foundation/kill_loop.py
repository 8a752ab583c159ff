"""kill -9 loop over `results export --format hub` and `results leaderboard`: count broken files.

    python tests/foundation/kill_loop.py --kills 40

Each round starts a writer process that re-exports (or rebuilds the site) in a loop, waits until
it is writing, kills it with SIGKILL at a random moment, then checks every file a user would
open: the exported samples file must equal its source byte for byte, JSON must parse, each SVG
must be complete XML, index.html must end with ``</html>``. Prints one JSON line of counts.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parent / "data"  # effeval result JSON of two real demo runs
STAMP = "2026-01-01T00-00-00.000000"

WRITER = """
import sys
from pathlib import Path
kind, source, out = sys.argv[1:4]
if kind == "hub":
    from effeval.results.export import export
    step = lambda: export(source, "hub", out)
else:
    import matplotlib
    matplotlib.use("Agg")
    from effeval.results.leaderboard import build_site
    step = lambda: build_site(source, out)
step()
print("ready", flush=True)
while True:
    step()
"""


def make_hub_source(root: Path, megabytes: int) -> tuple[Path, Path]:
    """An effeval result whose samples file is large enough that a kill lands mid-copy."""
    result = json.loads((DATA / "result_hf_llama_sp.json").read_text())
    samples = root / f"samples_effeval_smoke_gen_{STAMP}.jsonl"
    line = json.dumps({"doc_id": 0, "filter": "none", "resps": [["x" * 900]]}) + "\n"
    with open(samples, "w") as fh:
        for i in range(megabytes * 1024 * 1024 // len(line)):
            fh.write(line.replace('"doc_id": 0', f'"doc_id": {i}'))
    result["samples"] = samples.name
    source = root / "run.json"
    source.write_text(json.dumps(result))
    return source, samples


def broken_files(kind: str, out: Path, samples: Path | None) -> list[str]:
    bad = []
    if kind == "hub":
        digest = hashlib.sha256(samples.read_bytes()).hexdigest()
        for f in out.rglob("samples_*.jsonl"):
            if hashlib.sha256(f.read_bytes()).hexdigest() != digest:
                bad.append(str(f))
        for f in out.rglob("*.json"):
            try:
                json.loads(f.read_text())
            except ValueError:
                bad.append(str(f))
        readme = out / "README.md"
        if readme.exists() and not readme.read_text().rstrip().endswith("`config.effeval`."):
            bad.append(str(readme))
    else:
        for f in out.rglob("*.svg"):
            try:
                ET.parse(f)
            except ET.ParseError:
                bad.append(str(f))
        index = out / "index.html"
        if index.exists() and not index.read_text().rstrip().endswith("</html>"):
            bad.append(str(index))
    return bad


def run(kind: str, kills: int, seed: int, megabytes: int) -> dict:
    rng = random.Random(seed)
    root = Path(tempfile.mkdtemp(prefix=f"effeval-kill-{kind}-"))
    try:
        if kind == "hub":
            source, samples = make_hub_source(root, megabytes)
        else:
            source, samples = DATA, None
        out = root / "out"
        env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        truncated_rounds, broken_total = 0, 0
        for _ in range(kills):
            proc = subprocess.Popen(
                [sys.executable, "-c", WRITER, kind, str(source), str(out)],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env=env,
                text=True,
            )
            proc.stdout.readline()  # "ready": one complete pass is on disk, the next is under way
            time.sleep(rng.uniform(0.0, 0.4))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            bad = broken_files(kind, out, samples)
            truncated_rounds += bool(bad)
            broken_total += len(bad)
        temps_after_kills = len(list(out.rglob("*.tmp")))
        # one clean pass: it must remove what killed writers left behind
        subprocess.run(
            [
                sys.executable,
                "-c",
                WRITER.replace("while True:\n    step()", ""),
                kind,
                str(source),
                str(out),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            env=env,
        )
        return {
            "kind": kind,
            "kills": kills,
            "rounds_with_a_broken_file": truncated_rounds,
            "broken_files": broken_total,
            "temp_files_after_kills": temps_after_kills,
            "temp_files_after_next_clean_run": len(list(out.rglob("*.tmp"))),
            "files_checked": len([p for p in out.rglob("*") if p.is_file()]),
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--megabytes", type=int, default=40, help="size of the hub samples file")
    parser.add_argument("--kinds", default="hub,leaderboard")
    args = parser.parse_args(argv)
    for kind in args.kinds.split(","):
        print(json.dumps(run(kind, args.kills, args.seed, args.megabytes)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
