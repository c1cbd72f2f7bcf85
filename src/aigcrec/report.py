"""A self-contained HTML report: sections of text, tables and PNG figures embedded as base64."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any, Iterable, Mapping

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222;line-height:1.45}
h1{border-bottom:2px solid #444}h2{margin-top:2em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f2f2f2}td:first-child,th:first-child{text-align:left}
img{max-width:100%;border:1px solid #ddd;margin:.4em 0}.note{color:#555;font-size:.92em}
"""


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4f}"
    return html.escape(str(v))


class Report:
    """Collects blocks in order and writes one HTML file with everything inline."""

    def __init__(self, title: str) -> None:
        self.title = title
        self._blocks: list[str] = []

    def section(self, title: str, text: str | None = None) -> None:
        self._blocks.append(f"<h2>{html.escape(title)}</h2>")
        if text:
            self.text(text)

    def text(self, text: str) -> None:
        self._blocks.append(f"<p class='note'>{html.escape(text)}</p>")

    def table(self, rows: Iterable[Mapping[str, Any]] | Any, caption: str | None = None) -> None:
        """Rows as mappings (or a pandas DataFrame); columns are the union of keys in order."""
        if hasattr(rows, "to_dict"):
            rows = rows.to_dict(orient="records")
        rows = list(rows)
        cols: list[str] = []
        for r in rows:
            cols += [c for c in r if c not in cols]
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in cols)
        body = "".join("<tr>" + "".join(f"<td>{_fmt(r.get(c, ''))}</td>" for c in cols) + "</tr>" for r in rows)
        cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
        self._blocks.append(f"<table>{cap}<tr>{head}</tr>{body}</table>")

    def figure(self, fig: Any, caption: str | None = None) -> None:
        """Embed a matplotlib figure as PNG and close it."""
        import matplotlib.pyplot as plt  # lazy: plotting libraries load only when a report draws a figure

        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
        plt.close(fig)
        self.png(buf.getvalue(), caption)

    def image(self, image: Any, caption: str | None = None) -> None:
        """Embed a PIL image."""
        buf = io.BytesIO()
        image.save(buf, format="PNG")
        self.png(buf.getvalue(), caption)

    def png(self, data: bytes, caption: str | None = None) -> None:
        b64 = base64.b64encode(data).decode("ascii")
        self._blocks.append(f"<img alt='{html.escape(caption or '')}' src='data:image/png;base64,{b64}'>")
        if caption:
            self.text(caption)

    def to_html(self) -> str:
        body = "\n".join(self._blocks)
        return (
            f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(self.title)}</title>"
            f"<style>{_STYLE}</style></head><body><h1>{html.escape(self.title)}</h1>\n{body}\n</body></html>"
        )

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_html(), encoding="utf-8")
        return path
