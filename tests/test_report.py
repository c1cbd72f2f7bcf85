"""The HTML report embeds tables and figures inline."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from PIL import Image  # noqa: E402

from aigcrec.report import Report  # noqa: E402


def test_report_embeds_table_figure_and_image(tmp_path):
    rep = Report("t")
    rep.section("Results", "a <note>")
    rep.table([{"model": "a", "auc": 0.71234}, {"model": "b", "auc": 0.7, "extra": 1}])
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    rep.figure(fig, "a line")
    rep.image(Image.new("RGB", (4, 4), "red"))
    html = rep.write(tmp_path / "r.html").read_text()
    assert html.count("data:image/png;base64,") == 2
    assert "<td>0.7123</td>" in html and "<th>extra</th>" in html
    assert "a &lt;note&gt;" in html  # escaped, not injected
