"""The report pages are jinja2 templates with autoescaping: text from run documents cannot inject markup."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

from waders.dqm.report import build_report
from waders.dqm.report.web import publish_runs

_spec = importlib.util.spec_from_file_location("_dqm_report_fixtures", Path(__file__).with_name("_report_fixtures.py"))
fx = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fx)

EVIL = '</script><script>alert("x")</script><img src=x onerror=alert(1)>'


def test_document_text_is_escaped_on_every_page(tmp_path):
    out = tmp_path / "out"
    run_dir, document = fx.make_run(out, 3, images=2, tag=EVIL, fail=(1, "L", "MEFitDCSigma"))
    document["images"]["skp_run003_img001"]["me"]["MEFitDCSigma"]["L"]["quality"]["detail"] = EVIL
    (run_dir / "summary_run003.json").write_text(json.dumps(document))
    outputs = build_report(run_dir, document)
    web = tmp_path / "web"
    publish_runs(out, web)
    pages = [outputs["index"], outputs["history"], outputs["interactive"], web / "index.html"]
    for page in pages:
        html = page.read_text()
        assert "<img src=x" not in html and '<script>alert("x")' not in html, page.name
        assert "&lt;img src=x onerror=alert(1)&gt;" in html, page  # the tag, shown as text on every page
    interactive = outputs["interactive"].read_text()
    # the escaped text is in the table, and the JSON data block cannot be closed early by the text
    assert "&lt;/script&gt;&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in interactive
    block = re.search(r'<script type="application/json" id="dqm-data">(.*?)</script>', interactive, re.S).group(1)
    assert json.loads(block)["run"] == 3
    # only the page's own scripts: the JSON block, plotly and dqm.js
    assert re.findall(r"<script[^>]*>", interactive) == [
        '<script type="application/json" id="dqm-data">',
        '<script src="assets/plotly.min.js">',
        '<script src="assets/dqm.js">',
    ]


def test_curve_mes_are_drawn_as_curves_spread_over_many_images(tmp_path):
    from waders.dqm.report.interactive import MAX_CURVES, interactive_data
    from waders.dqm.report.view import RunView

    _, document = fx.make_run(tmp_path, 4, images=40, plots=False)
    for entry in document["images"].values():  # a per-row ME with a value too (like waders' own)
        entry["me"]["MEMeanPixelChargePerRow"]["L"]["value"] = 0.05
    plots = {(p["me"], p["amp"]): p for p in interactive_data(RunView(document), None, None)["plots"]}
    curve = plots[("MEMeanPixelChargePerRow", "L")]
    assert curve["kind"] == "curve"
    images = [c["image"] for c in curve["curves"]]
    assert len(images) == MAX_CURVES and images[0] == 1 and images[-1] == 40
    assert curve["note"] == f"{MAX_CURVES} of 40 images"
    scalar = plots[("MEFitDCSigma", "U")]
    assert scalar["kind"] == "scalar" and [p[0] for p in scalar["points"]] == list(range(1, 41))
