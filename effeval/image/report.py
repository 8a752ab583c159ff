"""``report.html``: one self-contained page (images inlined as data URIs; no scripts, no network).

Layout: a summary table (each metric per intervention, with its bootstrap CI and the change vs
``none``), then the grid -- one row per prompt, one column per intervention, every seed's image
with its scores underneath. Opens offline from anywhere (the PNGs are embedded, not linked).
``inline=False`` links the PNGs by their path relative to the page instead (a small page next
to its images, e.g. a committed benchmark report); ``max_prompts`` shows the first N prompts.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

from effeval.formatting import format_number
from effeval.results.writer import write_text_atomic

# Scores shown under each image (others stay in per_prompt.jsonl), in this order.
CELL_KEYS = (
    "clip_similarity",
    "clipscore",
    "vqa_accuracy",
    "vqa_p_expected",
    "leakage",
    "omission",
    "binding",
    "baseline_clip_cosine",
)
RESERVED = {"id", "index", "prompt", "intervention", "seed", "image", "sequence_length", "positions"}

CSS = """
body{font-family:system-ui,sans-serif;margin:24px;color:#1d2330;background:#fff}
h1{font-size:20px;margin:0 0 4px}
.meta{color:#555;font-size:13px;margin-bottom:16px}
table{border-collapse:collapse;margin-bottom:24px}
th,td{border:1px solid #d5d9e0;padding:6px 8px;font-size:13px;vertical-align:top}
th{background:#eef1f6;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.grid td{background:#fafbfc}
.prompt{max-width:260px;font-size:13px}
.prompt .id{color:#777;font-size:11px}
figure{display:inline-block;margin:0 6px 6px 0;text-align:center}
figure img{width:128px;height:128px;image-rendering:pixelated;border:1px solid #ccc;display:block;background:#000}
figcaption{font-size:11px;line-height:1.3;color:#333;max-width:128px}
.good{color:#116b2f}.bad{color:#a4161a}
"""


def _html_number(v) -> str:
    return html.escape(format_number(v, digits=3, missing="\u2013"))


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def render(
    out_dir: Path,
    result: dict,
    rows: list[dict],
    records: list[dict],
    inline: bool = True,
    max_prompts: int | None = None,
    preamble_html: str = "",
) -> str:
    """``preamble_html``: trusted HTML placed after the header, before the summary (a benchmark's
    own tables)."""
    labels = result["method"]["args"]["interventions"]
    bench = result.get("extra", {}).get("benchmark", "")
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>effeval image report: {html.escape(bench)}</title><style>{CSS}</style></head><body>",
        f"<h1>effeval image report — {html.escape(bench)}</h1>",
        "<div class='meta'>"
        f"pipeline <b>{html.escape(result['model']['name'])}</b> ({html.escape(str(result['model'].get('wrapper')))}), "
        f"{len(records)} prompts × {len(labels)} interventions × seeds {html.escape(str(result['method']['args']['seeds']))}, "
        f"{result['method']['args'].get('steps')} steps, run {html.escape(result['run_id'])}</div>",
        preamble_html,
    ]

    # summary: metric rows x intervention columns
    metric_names: list[str] = []
    for label in labels:
        for name in result["tasks"].get(f"{bench}/{label}", {}):
            if name not in metric_names and not name.endswith("_abs_change"):  # the JSON has those
                metric_names.append(name)
    if metric_names:
        parts.append(
            "<h2>Summary</h2><table><tr><th>metric</th>"
            + "".join(f"<th>{html.escape(lab)}</th>" for lab in labels)
            + "</tr>"
        )
        for name in metric_names:
            cells = []
            for label in labels:
                m = result["tasks"].get(f"{bench}/{label}", {}).get(name)
                if m is None:
                    cells.append("<td class='num'>–</td>")
                    continue
                text = _html_number(m.get("value"))
                if m.get("ci_low") is not None:
                    text += f" <small>[{_html_number(m['ci_low'])}, {_html_number(m['ci_high'])}]</small>"
                if m.get("label"):
                    text += f"<br><small>{html.escape(m['label'])}</small>"
                cells.append(f"<td class='num'>{text}</td>")
            parts.append(f"<tr><th>{html.escape(name)}</th>{''.join(cells)}</tr>")
        parts.append("</table>")
    red = result["tasks"].get(f"{bench}/redundancy")
    if red:
        parts.append(
            "<h2>Redundancy</h2><table>"
            + "".join(
                f"<tr><th>{html.escape(k)}</th><td class='num'>{_html_number(v.get('value'))}</td></tr>"
                for k, v in red.items()
            )
            + "</table>"
        )

    # grid
    by_cell: dict[tuple[int, str], list[dict]] = {}
    for r in rows:
        by_cell.setdefault((r["index"], r["intervention"]), []).append(r)
    parts.append(
        "<h2>Images</h2><table class='grid'><tr><th>prompt</th>"
        + "".join(f"<th>{html.escape(lab)}</th>" for lab in labels)
        + "</tr>"
    )
    shown = records if max_prompts is None else records[:max_prompts]
    for i, record in enumerate(shown):
        parts.append(
            f"<tr><td class='prompt'><div class='id'>{html.escape(str(record['id']))}</div>"
            f"{html.escape(record['prompt'])}</td>"
        )
        for label in labels:
            figs = []
            for r in sorted(by_cell.get((i, label), []), key=lambda r: r["seed"]):
                keys = [k for k in CELL_KEYS if k in r] or [
                    k for k in r if k not in RESERVED and not k.startswith("q.")
                ][:4]
                caption = "<br>".join(f"{html.escape(k)} {_html_number(r[k])}" for k in keys)
                caption = f"seed {r['seed']}" + (f"<br>{caption}" if caption else "")
                img = out_dir / r["image"]
                src = (_data_uri(img) if inline else html.escape(r["image"])) if img.is_file() else ""
                figs.append(
                    f"<figure><img alt='{html.escape(label)} seed {r['seed']}' src='{src}'>"
                    f"<figcaption>{caption}</figcaption></figure>"
                )
            parts.append(f"<td>{''.join(figs)}</td>")
        parts.append("</tr>")
    parts.append("</table>")
    if len(shown) < len(records):
        parts.append(
            f"<p class='meta'>{len(records) - len(shown)} more prompts in the run's per_prompt.jsonl</p>"
        )
    parts.append("</body></html>\n")
    return "".join(parts)


def write_report(
    out_dir: str | Path,
    result: dict,
    rows: list[dict],
    records: list[dict],
    inline: bool = True,
    max_prompts: int | None = None,
    preamble_html: str = "",
) -> Path:
    out_dir = Path(out_dir)
    page = render(
        out_dir, result, rows, records, inline=inline, max_prompts=max_prompts, preamble_html=preamble_html
    )
    return write_text_atomic(out_dir / "report.html", page)
