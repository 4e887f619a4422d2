"""Render the report's content blocks as one self-contained HTML page and as GitHub Markdown.

The same list of blocks feeds both renderers, so `index.html` and `report.md` say the same
things. Every text in a block is treated as untrusted (it may come from a CSV): the HTML
renderer passes it through `html.escape`, the Markdown renderer through `markdown_escape`.
Only the renderers' own tags are markup. The page has inline CSS, relative links only, and a
Content-Security-Policy that allows no script and no network access. Reads no CSV columns.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field

from bench.report.tables import markdown_escape, to_markdown


@dataclass
class Heading:
    text: str

    @property
    def anchor(self) -> str:
        """The id GitHub gives a heading: lower case, spaces to hyphens, punctuation dropped."""
        kept = "".join(c for c in self.text.lower() if c.isalnum() or c in " -_")
        return kept.replace(" ", "-")


@dataclass
class Para:
    text: str


@dataclass
class Notes:
    """Things the reader must know before trusting a number (warnings box)."""

    items: list[str]


@dataclass
class Bullets:
    """A plain bulleted list (the key findings)."""

    items: list[str]


@dataclass
class Facts:
    """Label/value pairs (the provenance table)."""

    rows: list[tuple[str, str]]


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]
    bold: list[list[bool]] | None = None
    right_from: int | None = None  # first numeric (right-aligned) column; bold flags start here
    verdict_column: int | None = None  # colour this column by verdict in HTML
    groups: list[str] | None = None  # per row; a rule is drawn where the group changes (HTML)
    nowrap: bool = False  # keep every cell on one line (wide numeric tables scroll instead)


@dataclass
class Image:
    title: str
    caption: str
    png: str  # relative path
    pdf: str
    titled: bool = True  # False under a section heading of the same name (no title twice)


@dataclass
class Links:
    items: list[tuple[str, str]]  # (label, relative path)
    intro: str = ""


@dataclass
class Page:
    title: str
    subtitle: str
    blocks: list = field(default_factory=list)


CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222;
  margin: 0 auto; max-width: 1280px; padding: 1.5rem 2rem 4rem; }
h1 { font-size: 1.6rem; margin: 0 0 .2rem; }
h2 { font-size: 1.25rem; margin: 2.2rem 0 .6rem; padding-bottom: .2rem;
  border-bottom: 1px solid #ddd; }
h3 { font-size: 1.05rem; margin: 1.6rem 0 .4rem; }
.subtitle { color: #555; margin: 0 0 1rem; }
nav { font-size: .92rem; margin: .5rem 0 1rem; }
nav a { margin-right: .9rem; }
a { color: #0b5cad; }
.notes { background: #fff6e0; border: 1px solid #e8c670; border-radius: 6px; padding: .6rem 1rem;
  margin: 1rem 0; }
.notes ul { margin: .2rem 0; padding-left: 1.2rem; }
.scroll { overflow-x: auto; margin: .6rem 0; }
table { border-collapse: collapse; font-size: .86rem; }
th, td { padding: .28rem .55rem; border-bottom: 1px solid #e3e3e3; text-align: left;
  vertical-align: top; }
th { background: #f4f4f4; border-bottom: 2px solid #ccc; vertical-align: bottom; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.num, table.nowrap td { white-space: nowrap; }
table.nowrap { font-size: .8rem; }
table.nowrap th, table.nowrap td { padding: .26rem .42rem; }
tr.group td { border-top: 2px solid #bbb; }
tr:hover td { background: #fafafa; }
table.facts th { background: none; border-bottom: 1px solid #e3e3e3; text-align: left;
  font-weight: 600; }
.supported { background: #e3f4e6; color: #1d6b2c; font-weight: 600; }
.contradicted { background: #fbe4e1; color: #9b2a1c; font-weight: 600; }
.inconclusive { color: #555; }
.not-measured { color: #999; }
figure { margin: 1rem 0 2rem; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: .9rem; color: #444; margin-top: .3rem; }
code { font-size: .88em; background: #f3f3f3; padding: 0 .2em; border-radius: 3px; }
"""
CSP = "default-src 'none'; img-src 'self' file: data:; style-src 'unsafe-inline'"


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _table_html(block: Table) -> str:
    first = len(block.header) if block.right_from is None else block.right_from

    def cls(j: int) -> str:
        return ' class="num"' if j >= first and j != block.verdict_column else ""

    head = "".join(f"<th{cls(j)}>{_e(h)}</th>" for j, h in enumerate(block.header))
    body = []
    for i, row in enumerate(block.rows):
        new_group = block.groups and i > 0 and block.groups[i] != block.groups[i - 1]
        cells = []
        for j, text in enumerate(row):
            inner = _e(text)
            flags = block.bold[i] if block.bold else []
            k = j - first
            if 0 <= k < len(flags) and flags[k]:
                inner = f"<strong>{inner}</strong>"
            attr = cls(j)
            if j == block.verdict_column:
                verdict = str(text).split(" (")[0].replace(" ", "-")
                attr = f' class="{_e(verdict)}"'
            cells.append(f"<td{attr}>{inner}</td>")
        row_class = ' class="group"' if new_group else ""
        body.append(f"<tr{row_class}>" + "".join(cells) + "</tr>")
    table_class = ' class="nowrap"' if block.nowrap else ""
    return (
        f'<div class="scroll"><table{table_class}><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def to_html(page: Page) -> str:
    parts = []
    headings = [b for b in page.blocks if isinstance(b, Heading)]
    nav = " ".join(f'<a href="#{_e(h.anchor)}">{_e(h.text)}</a>' for h in headings)
    for block in page.blocks:
        if isinstance(block, Heading):
            parts.append(f'<h2 id="{_e(block.anchor)}">{_e(block.text)}</h2>')
        elif isinstance(block, Para):
            parts.append(f"<p>{_e(block.text)}</p>")
        elif isinstance(block, Notes):
            items = "".join(f"<li>{_e(t)}</li>" for t in block.items)
            parts.append(
                f'<div class="notes"><strong>Read this first</strong><ul>{items}</ul></div>'
            )
        elif isinstance(block, Bullets):
            parts.append("<ul>" + "".join(f"<li>{_e(t)}</li>" for t in block.items) + "</ul>")
        elif isinstance(block, Facts):
            rows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in block.rows)
            parts.append(f'<div class="scroll"><table class="facts">{rows}</table></div>')
        elif isinstance(block, Table):
            parts.append(_table_html(block))
        elif isinstance(block, Image):
            parts.append(
                "<figure>"
                + (f"<h3>{_e(block.title)}</h3>" if block.titled else "")
                + f'<a href="{_e(block.png)}">'
                f'<img src="{_e(block.png)}" alt="{_e(block.title)}" loading="lazy"></a>'
                f"<figcaption>{_e(block.caption)} "
                f'(<a href="{_e(block.pdf)}">PDF</a>)</figcaption></figure>'
            )
        elif isinstance(block, Links):
            intro = f"<p>{_e(block.intro)}</p>" if block.intro else ""
            items = "".join(
                f'<li><a href="{_e(href)}">{_e(label)}</a></li>' for label, href in block.items
            )
            parts.append(f"{intro}<ul>{items}</ul>")
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(page.title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        f'<h1>{_e(page.title)}</h1>\n<p class="subtitle">{_e(page.subtitle)}</p>\n'
        f"<nav>{nav}</nav>\n" + "\n".join(parts) + "\n</body>\n</html>\n"
    )


def _link(label: str, href: str) -> str:
    # Our own relative paths: only spaces would break a Markdown link, and we write none.
    return f"[{markdown_escape(label)}]({href})"


def to_markdown_page(page: Page) -> str:
    out = [f"# {markdown_escape(page.title)}", "", markdown_escape(page.subtitle), ""]
    headings = [b for b in page.blocks if isinstance(b, Heading)]
    out += [" · ".join(_link(h.text, f"#{h.anchor}") for h in headings), ""]
    for block in page.blocks:
        if isinstance(block, Heading):
            out += [f"## {markdown_escape(block.text)}", ""]  # GitHub derives the anchor
        elif isinstance(block, Para):
            out += [markdown_escape(block.text), ""]
        elif isinstance(block, Notes):
            out += ["> **Read this first**", ">"]
            out += [f"> - {markdown_escape(t)}" for t in block.items] + [""]
        elif isinstance(block, Bullets):
            out += [f"- {markdown_escape(t)}" for t in block.items] + [""]
        elif isinstance(block, Facts):
            out.append(to_markdown(["", ""], [[k, v] for k, v in block.rows]))
        elif isinstance(block, Table):
            out.append(to_markdown(block.header, block.rows, block.bold, block.right_from))
        elif isinstance(block, Image):
            if block.titled:
                out += [f"### {markdown_escape(block.title)}", ""]
            out += [f"![{markdown_escape(block.title)}]({block.png})", ""]
            out += [f"{markdown_escape(block.caption)} ({_link('PDF', block.pdf)})", ""]
        elif isinstance(block, Links):
            if block.intro:
                out += [markdown_escape(block.intro), ""]
            out += [f"- {_link(label, href)}" for label, href in block.items] + [""]
    return "\n".join(out).rstrip() + "\n"
