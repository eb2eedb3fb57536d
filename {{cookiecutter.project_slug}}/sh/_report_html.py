"""sh/report.py --html: one self-contained page (tables, notes, and the figures embedded as PNG data) that
opens in any browser from the file, with no server and no network."""
import base64
import html
from datetime import datetime
from pathlib import Path

from runtime.run_folder import write_text_atomic

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
th { background: #f2f2f2; }
td.better { background: #dff3df; } td.worse { background: #f8dede; }
figure { display: inline-block; margin: 0 1em 1em 0; }
img { max-width: 100%; border: 1px solid #ddd; }
.note { color: #555; }
"""


def table_html(title: str, columns: list, rows: list) -> str:
    head = "".join(f"<th>{html.escape(str(column))}</th>" for column in columns)
    body = "".join("<tr>" + "".join(_cell(cell) for cell in row) + "</tr>" for row in rows)
    return f"<h2>{html.escape(title)}</h2>\n<table>\n<tr>{head}</tr>\n{body}\n</table>\n"


def _cell(cell) -> str:
    text = str(cell)
    kind = "better" if text.endswith("better") else "worse" if text.endswith("worse") else ""
    return f'<td class="{kind}">{html.escape(text)}</td>' if kind else f"<td>{html.escape(text)}</td>"


def figure_html(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    name = html.escape(path.name)
    return f'<figure><img src="data:image/png;base64,{data}" alt="{name}"><figcaption>{name}</figcaption></figure>\n'


def write_html(path: Path, title: str, tables: list, notes: list, figures: list) -> Path:
    """Write the page: ``tables`` as (title, columns, rows), ``notes`` as lines, ``figures`` as PNG files."""
    parts = [f"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
             f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
             f"<h1>{html.escape(title)}</h1>\n<p class=\"note\">written {datetime.now():%Y-%m-%d %H:%M} "
             "by sh/report.py</p>\n"]
    parts += [table_html(*table) for table in tables]
    parts += [f'<p class="note">{html.escape(note)}</p>\n' for note in notes]
    if figures:
        parts.append("<h2>figures</h2>\n" + "".join(figure_html(figure) for figure in figures))
    parts.append("</body>\n</html>\n")
    write_text_atomic(path, "".join(parts))
    return path
