"""``effeval results leaderboard RESULTS_DIR --out SITE_DIR``: a static leaderboard site.

One ``index.html`` (inline CSS and JS, no server, no CDN: it works offline from file://) with a
sortable table of runs x tasks plus efficiency columns, and one accuracy-vs-cost plot per task
(``plots/<task>.svg``, matplotlib Agg; a task name with other characters than letters, digits, ``._-``
gets a hash suffix, so no two tasks share a plot) marking the Pareto front. Cost is lm-eval's total
evaluation time when a run has it (the same clock for every wrapper), else the wrapper's time.
"""

from __future__ import annotations

import html
import json
import logging
import math
import re
from pathlib import Path
from typing import Any

from effeval.errors import ConfigError
from effeval.formatting import format_number
from effeval.results.filenames import unique_stems
from effeval.results.runs import primary_metric
from effeval.results.schema import SCHEMA_ID, schema_errors

logger = logging.getLogger(__name__)

# (efficiency key, column title); a column appears when at least one run has the value.
EFFICIENCY_COLUMNS = [
    ("cost_s", "cost (s)"),
    ("tokens_per_s", "tokens/s"),
    ("generated_tokens", "generated tokens"),
    ("acceptance_rate", "acceptance rate"),
    ("global_sparsity", "sparsity"),
    ("thinking_tokens_saved_ratio", "thinking tokens saved"),
    ("head_vs_projection_params", "head/projection params"),
    ("nonzero_parameters", "non-zero params"),
]


def _num(x: Any) -> float | None:
    if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x):
        return float(x)
    return None


def run_cost(result: dict) -> float | None:
    eff = result.get("efficiency") or {}
    return _num(eff.get("evaluation_wall_time_s")) or _num(eff.get("wall_time_s"))


def collect_results(results_dir: str | Path) -> list[dict]:
    """Every valid effeval/result/v1 file under ``results_dir`` (other JSON is skipped)."""
    root = Path(results_dir)
    if not root.is_dir():
        raise ConfigError(
            f"RESULTS_DIR {str(root)!r}: no such folder. Fix: pass a folder of effeval result JSON "
            "(e.g. demo-out or results/example-demo, or the --out of `effeval results convert`)"
        )
    found, other = [], []
    for path in sorted(root.rglob("*.json")):
        if any(part.startswith(".") for part in path.relative_to(root).parts):
            continue
        try:
            obj = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, OSError) as exc:
            logger.warning("leaderboard: skipping %s (not readable JSON: %s)", path, type(exc).__name__)
            continue
        if not isinstance(obj, dict) or obj.get("schema") != SCHEMA_ID:
            other.append(path.name)  # lm-eval raw output, benchmark JSON, ...: not a run of ours
            continue
        errors = schema_errors(obj)
        if errors:
            logger.warning("leaderboard: skipping %s (not valid %s: %s)", path, SCHEMA_ID, errors[0])
            continue
        obj["_path"] = str(path.relative_to(root))
        found.append(obj)
    if other:
        logger.warning(
            "leaderboard: %d JSON file(s) are not %s results and are not shown: %s%s",
            len(other),
            SCHEMA_ID,
            ", ".join(other[:5]),
            ", ..." if len(other) > 5 else "",
        )
    if not found:
        raise ConfigError(
            f"RESULTS_DIR {str(root)!r}: no effeval result JSON ({SCHEMA_ID}) in it. Fix: convert lm-eval "
            "output first with `effeval results convert LM_EVAL_OUT --out DIR` and pass DIR"
        )
    return found


def task_columns(results: list[dict]) -> list[tuple[str, str, bool | None]]:
    """(task, headline metric, higher_is_better) for every task any run has."""
    cols: dict[str, tuple[str, bool | None]] = {}
    for res in results:
        for task, metrics in sorted((res.get("tasks") or {}).items()):
            if task in cols:
                continue
            metric = primary_metric(metrics)
            if metric:
                cols[task] = (metric, metrics[metric].get("higher_is_better"))
    return [(t, m, h) for t, (m, h) in sorted(cols.items())]


def _value(res: dict, task: str, metric: str) -> float | None:
    return _num(((res.get("tasks") or {}).get(task) or {}).get(metric, {}).get("value"))


def _eff_value(res: dict, key: str) -> float | None:
    if key == "cost_s":
        return run_cost(res)
    eff = res.get("efficiency") or {}
    if key == "nonzero_parameters":  # the pruning wrapper calls it nonzero_params
        return _num(res.get("model", {}).get(key)) or _num(eff.get(key)) or _num(eff.get("nonzero_params"))
    return (
        _num(eff.get(key)) if key != "global_sparsity" else (_num(eff.get(key)) or _num(eff.get("sparsity")))
    )


def pareto_front(points: list[tuple[float, float]], higher_is_better: bool = True) -> list[int]:
    """Indices of points no other point beats: at most the cost and strictly better quality
    (or strictly cheaper and at least as good)."""
    sign = 1.0 if higher_is_better else -1.0
    front = []
    for i, (ci, qi) in enumerate(points):
        dominated = any(
            (cj <= ci and sign * qj >= sign * qi) and (cj < ci or sign * qj > sign * qi)
            for j, (cj, qj) in enumerate(points)
            if j != i
        )
        if not dominated:
            front.append(i)
    return front


def _short_label(run_id: str, width: int = 32) -> str:
    """Plot label: no ``demo__`` prefix, no trailing lm-eval timestamp, at most ``width`` chars."""
    label = re.sub(r"__\d{4}-\d{2}-\d{2}T[0-9.\-]+$", "", run_id.removeprefix("demo__"))
    return label if len(label) <= width else label[: width - 1] + "…"


def plot_task(results: list[dict], task: str, metric: str, higher: bool | None, path: Path) -> bool:
    """Accuracy-vs-cost scatter with the Pareto front; False when fewer than one run has both."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts, labels = [], []
    for res in results:
        q, c = _value(res, task, metric), run_cost(res)
        if q is not None and c is not None:
            pts.append((c, q))
            labels.append(res["run_id"])
    if not pts:
        return False
    front = set(pareto_front(pts, higher is not False))
    fig, ax = plt.subplots(figsize=(5.5, 3.8), dpi=100)
    dominated = [p for i, p in enumerate(pts) if i not in front]
    if dominated:
        ax.scatter([p[0] for p in dominated], [p[1] for p in dominated], color="#999999", label="dominated")
    fp = sorted(pts[i] for i in front)
    ax.plot([p[0] for p in fp], [p[1] for p in fp], "o-", color="#d62728", label="Pareto front")
    for (c, q), label in zip(pts, labels):
        right_half = c > (min(p[0] for p in pts) + max(p[0] for p in pts)) / 2
        note = ax.annotate(
            _short_label(label),
            (c, q),
            fontsize=7,
            xytext=(-3 if right_half else 3, 3),
            textcoords="offset points",
            ha="right" if right_half else "left",
        )
        note.set_in_layout(False)  # long names must not squeeze the axes
    ax.margins(x=0.12, y=0.12)
    ax.set_xlabel("cost: evaluation wall time (s)")
    ax.set_ylabel(f"{metric} ({'higher' if higher is not False else 'lower'} is better)")
    ax.set_title(task, fontsize=10)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    from effeval.atomic import atomic_path

    # matplotlib writes in place: a temp file renamed over the old plot keeps index.html's links whole
    with atomic_path(path) as tmp:
        fig.savefig(
            tmp, format="svg", metadata={"Date": None}
        )  # no timestamp: rebuilding gives the same file
    plt.close(fig)
    return True


_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;font-size:13px}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}
td.text,th.text{text-align:left}
th{background:#f0f0f0;cursor:pointer;user-select:none;position:sticky;top:0}
th.sorted-asc::after{content:" \\25B2"} th.sorted-desc::after{content:" \\25BC"}
tr:nth-child(even){background:#fafafa}
.plots{display:flex;flex-wrap:wrap;gap:1em}
figure{margin:0} figcaption{font-size:12px;color:#555}
"""

# Sort by the clicked column; numbers compare as numbers, empty cells always go last.
_JS = """
document.querySelectorAll('#runs th').forEach(function (th, col) {
  th.addEventListener('click', function () {
    var table = document.getElementById('runs');
    var body = table.tBodies[0];
    var asc = !th.classList.contains('sorted-asc');
    table.querySelectorAll('th').forEach(function (h) { h.classList.remove('sorted-asc', 'sorted-desc'); });
    th.classList.add(asc ? 'sorted-asc' : 'sorted-desc');
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = a.cells[col].getAttribute('data-sort'), y = b.cells[col].getAttribute('data-sort');
      if (x === '' && y === '') return 0;
      if (x === '') return 1;
      if (y === '') return -1;
      var nx = parseFloat(x), ny = parseFloat(y), c;
      if (!isNaN(nx) && !isNaN(ny)) c = nx - ny; else c = x < y ? -1 : (x > y ? 1 : 0);
      return asc ? c : -c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  });
});
"""


def _display_model(name: str) -> str:
    """A local path shows as its folder name (the full path is the cell's tooltip)."""
    return Path(name).name if name.startswith(("/", "~", ".")) else name


def render_html(
    results: list[dict],
    tasks: list[tuple[str, str, bool | None]],
    eff_cols: list[tuple[str, str]],
    plots: dict[str, str],
    title: str,
) -> str:
    esc = html.escape
    head = ['<th class="text">run</th>', '<th class="text">model</th>', '<th class="text">method</th>']
    head += [
        f'<th title="{esc(m)}, {"higher" if h is not False else "lower"} is better">{esc(t)}<br>'
        f"<small>{esc(m)}</small></th>"
        for t, m, h in tasks
    ]
    head += [f"<th>{esc(title_)}</th>" for _, title_ in eff_cols]
    rows = []
    for res in results:
        model = _display_model(res["model"]["name"])
        cells = [
            f'<td class="text run" data-sort="{esc(res["run_id"])}">{esc(res["run_id"])}</td>',
            f'<td class="text" data-sort="{esc(model)}" title="{esc(res["model"]["name"])}">{esc(model)}</td>',
            f'<td class="text" data-sort="{esc(res["method"]["name"])}">{esc(res["method"]["name"])}</td>',
        ]
        for t, m, _ in tasks:
            v = _value(res, t, m)
            cells.append(
                f'<td data-sort="{"" if v is None else repr(v)}">{format_number(v, thousands=True, missing="")}</td>'
            )
        for key, _ in eff_cols:
            v = _eff_value(res, key)
            cells.append(
                f'<td data-sort="{"" if v is None else repr(v)}">{format_number(v, thousands=True, missing="")}</td>'
            )
        rows.append(f'<tr data-run="{esc(res["run_id"])}">' + "".join(cells) + "</tr>")
    figures = "".join(
        f'<figure><img src="{esc(src)}" alt="{esc(t)}: quality vs cost" width="550"><figcaption>{esc(t)}: '
        f"quality vs cost, Pareto front in red</figcaption></figure>"
        for t, src in plots.items()
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>
<style>{_CSS}</style></head>
<body>
<h1>{esc(title)}</h1>
<p>{len(results)} run{"s" if len(results) != 1 else ""}. Click a column header to sort. Cost = evaluation wall time in seconds.</p>
<table id="runs"><thead><tr>{"".join(head)}</tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody></table>
<h2>Quality vs cost</h2>
<div class="plots">{figures or "<p>No run has both a score and a cost.</p>"}</div>
<script>{_JS}</script>
</body></html>
"""


def build_site(results_dir: str | Path, out: str | Path, title: str = "effeval leaderboard") -> Path:
    """Write ``out/index.html`` and ``out/plots/*.svg``; returns the index path."""
    from effeval.results.writer import write_text_atomic

    results = collect_results(results_dir)
    results.sort(key=lambda r: r["run_id"])
    tasks = task_columns(results)
    eff_cols = [(k, t) for k, t in EFFICIENCY_COLUMNS if any(_eff_value(r, k) is not None for r in results)]
    out = Path(out)
    plots: dict[str, str] = {}
    # tasks named a/b and a_b must not share (and overwrite) one plot file
    stems = unique_stems([task for task, _, _ in tasks], "RESULTS_DIR", fallback="task")
    for task, metric, higher in tasks:
        rel = f"plots/{stems[task]}.svg"
        if plot_task(results, task, metric, higher, out / rel):
            plots[task] = rel
    index = write_text_atomic(out / "index.html", render_html(results, tasks, eff_cols, plots, title))
    logger.info("leaderboard: %d runs, %d tasks, %d plots -> %s", len(results), len(tasks), len(plots), index)
    return index


def demo_step(ctx) -> list[Path]:
    """Last demo step: the leaderboard of everything the demo wrote."""
    index = build_site(ctx.out_dir, Path(ctx.out_dir) / "site", title="effeval demo leaderboard")
    print(f"leaderboard: file://{index.resolve()}", flush=True)
    return [index]
