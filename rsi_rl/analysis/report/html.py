"""HTML building blocks of the report pages: escaping, numbers, tables, images, the page."""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rsi_rl.analysis.runs import num

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#fafafa;color:#222}
main{max-width:1180px;margin:0 auto;padding:18px 26px 60px;box-sizing:border-box}
h1{font-size:1.5em;margin:.2em 0}h2{font-size:1.15em;margin:1.6em 0 .5em;border-bottom:1px solid #ddd;padding-bottom:4px}
.sub{color:#666;font-size:.9em;overflow-wrap:anywhere}.cards{display:flex;flex-wrap:wrap;gap:10px;margin:14px 0}
.card{background:#fff;border:1px solid #e0e0e0;border-radius:8px;padding:10px 16px;min-width:120px}
.card .v{font-size:1.45em;font-weight:600}.card .k{color:#666;font-size:.8em;text-transform:uppercase;letter-spacing:.04em}
.up{color:#2e7d32}.down{color:#c62828}.warn{background:#fff3e0;border:1px solid #ffb74d;padding:6px 10px;border-radius:6px}
img{max-width:100%;background:#fff;border:1px solid #e0e0e0;border-radius:6px}
.tw{max-width:100%;overflow-x:auto;margin:6px 0}
table{border-collapse:collapse;background:#fff;font-size:.88em}td{overflow-wrap:anywhere;max-width:32em}th,td{border:1px solid #e0e0e0;padding:4px 9px;text-align:left}
th{background:#f0f0f0}td.n{text-align:right;font-variant-numeric:tabular-nums}
pre{background:#1e1e1e;color:#ddd;padding:10px 14px;border-radius:6px;overflow:auto;font-size:.82em;max-height:520px}
pre .a{color:#8fd18f}pre .d{color:#f08c8c}pre .h{color:#8fb8f0}
ul.tree,ul.tree ul{list-style:none;margin:0;padding-left:18px}ul.tree li{margin:2px 0;position:relative}
ul.tree ul{border-left:1px dashed #bbb}
.b{display:inline-block;border-radius:4px;padding:0 6px;font-size:.78em;color:#fff;margin-right:4px}
.b.kept{background:#2e7d32}.b.reverted{background:#9e9e9e}.b.failed{background:#c62828}.b.start{background:#1565c0}
.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.85em;color:#555}
details summary{cursor:pointer;color:#1565c0}
"""


def esc(x: Any) -> str:
    """``x`` as escaped HTML text."""
    return html.escape(str(x))


def fmt(v: Any, digits: int = 4) -> str:
    """A table cell's number: floats to ``digits`` places, ints as they are, None as a dash."""
    n = num(v)
    if n is None:
        return "—" if v is None else esc(v)
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return str(v)
    return f"{n:.{digits}f}"


def img(path: Path | None, embed: bool, alt: str) -> str:
    """An ``<img>`` of a PNG, embedded as base64 or linked by name ('' without a file)."""
    if path is None or not path.is_file():
        return ""
    if embed:
        src = "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()
    else:
        src = esc(path.name)
    return f'<p><img src="{src}" alt="{esc(alt)}"></p>'


def table(
    rows: list[dict[str, Any]],
    columns: list[str],
    numeric: Iterable[str] = (),
    raw: Iterable[str] = (),
) -> str:
    """An HTML table of ``rows`` (mappings) by ``columns``: ``numeric`` columns formatted
    and right-aligned, ``raw`` columns inserted as HTML (links), the rest escaped."""
    numbers, markup = set(numeric), set(raw)
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    body = []
    for r in rows:
        cells = []
        for c in columns:
            v = r.get(c)
            if c in numbers:
                cells.append(f'<td class="n">{fmt(v)}</td>')
            elif c in markup:
                cells.append(f"<td>{'' if v is None else v}</td>")
            else:
                cells.append(f"<td>{esc('' if v is None else v)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    # the wrapper scrolls sideways: a wide table never widens the page
    return f'<div class="tw"><table><tr>{head}</tr>{"".join(body)}</table></div>'


def write_page(out: Path, title: str, body: list[str]) -> Path:
    """Write ``<out>/index.html``: one self-contained page (no script, no external link)."""
    doc = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>rsi_rl report: {esc(title)}</title><style>{CSS}</style></head>"
        f"<body><main>{''.join(body)}</main></body></html>\n"
    )
    page = out / "index.html"
    page.write_text(doc, encoding="utf-8")
    return page


def diff_html(text: str) -> str:
    """A unified diff as a ``<pre>``, added, removed and header lines coloured."""
    out = []
    for line in text.splitlines():
        cls = ""
        if line.startswith(("+++", "---", "@@", "# step")):
            cls = "h"
        elif line.startswith("+"):
            cls = "a"
        elif line.startswith("-"):
            cls = "d"
        out.append(f'<span class="{cls}">{esc(line)}</span>' if cls else esc(line))
    return "<pre>" + "\n".join(out) + "</pre>"
