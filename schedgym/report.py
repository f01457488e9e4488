"""The leaderboard as one self-contained HTML page: per suite the ranking tables and the pictures, embedded as
PNG data, plus the jobs that failed. Nothing outside the file is referenced, so it can be mailed or archived."""

from __future__ import annotations

import base64
import html
import os
from pathlib import Path

from schedgym import __version__
from schedgym.atomic import atomic_write_text
from schedgym.bench import Table, suite_tables
from schedgym.pictures import suite_pictures

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; } th { background: #eef2f7; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { display: inline-block; margin: 0.5em 1em 0.5em 0; vertical-align: top; }
figure img { max-width: 100%; border: 1px solid #ddd; } figcaption { font-size: 0.85em; color: #555; }
.failed { color: #a00; }
"""


def _table_html(table: Table) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in table.header)
    body = "".join(
        "<tr>" + "".join(f'<td class="num">{html.escape(c)}</td>' if numeric else f"<td>{html.escape(c)}</td>" for c, numeric in zip(cells, table.numeric)) + "</tr>"
        for cells in table.cells
    )
    return f"<table><caption>{html.escape(table.caption)}</caption><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def report_html(result: dict[str, list[dict]], max_instances: int = 2) -> str:
    """The page for ``result`` (from :func:`schedgym.bench.run_bench`, with ``keep_solutions=True`` for the
    schedule pictures)."""
    tables = suite_tables(result)
    pictures = suite_pictures(result, max_instances)
    rows = result["rows"]
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>schedgym leaderboard</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>schedgym leaderboard</h1>",
        f"<p>{len(rows)} rows over {len(tables)} suite{'s' if len(tables) != 1 else ''}, schedgym {html.escape(__version__)}. Every schedule was checked "
        "by its problem's validator; the gap is to the best known upper bound where the suite has one.</p>",
        "<ul>" + "".join(f"<li><a href='#s{i}'>{html.escape(p)} / {html.escape(s)}</a></li>" for i, (p, s) in enumerate(tables)) + "</ul>",
    ]
    for i, (key, suite_table_list) in enumerate(tables.items()):
        parts.append(f"<section id='s{i}'><h2>{html.escape(key[0])} / {html.escape(key[1])}</h2>")
        parts += [_table_html(table) for table in suite_table_list]
        for picture in pictures.get(key, []):
            data = base64.b64encode(picture.png).decode()
            parts.append(f"<figure><img alt='{html.escape(picture.caption)}' src='data:image/png;base64,{data}'><figcaption>{html.escape(picture.caption)}</figcaption></figure>")
        parts.append("</section>")
    failed = [r for r in rows if "error" in r]
    if failed:
        parts.append("<h2 class='failed'>Failed jobs</h2><ul>")
        parts += [f"<li>{html.escape(r['problem'])} / {html.escape(r['suite'])} / {html.escape(r['instance'])} / {html.escape(r['solver'])}: {html.escape(r['error'])}</li>" for r in failed]
        parts.append("</ul>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(result: dict[str, list[dict]], directory: str | os.PathLike, max_instances: int = 2) -> Path:
    """Write :func:`report_html` to ``directory/index.html`` (atomically); returns its path."""
    path = Path(directory) / "index.html"
    atomic_write_text(path, report_html(result, max_instances))
    return path
