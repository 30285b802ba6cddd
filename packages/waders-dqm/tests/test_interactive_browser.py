"""The interactive DQM page driven in headless Chromium like a user would (DevTools protocol over a pipe).

Filters, sorting, zoom by mouse drag and hover are exercised with real input events; the
checks read the page's DOM and plotly's state.  Skipped without Chromium unless
WADERS_REQUIRE_BROWSER=1.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

from waders.dqm.report import build_report
from waders.dqm.report.web import publish_runs

pytestmark = pytest.mark.browser


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"_dqm_{name}", Path(__file__).with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


fx = _load("_report_fixtures")
cdp = _load("_cdp")
browser_tests = _load("test_report_browser")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("interactive") / "out"
    r11, d11 = fx.make_run(out, 11, images=3)
    r12, d12 = fx.make_run(out, 12, images=3, reference_run=11, fail=(2, "U", "MEFitDCSigma"))
    build_report(r11, d11)
    build_report(r12, d12)
    # published copy: the page must work from there, offline
    web = tmp_path_factory.mktemp("interactive") / "web"
    publish_runs(out, web)
    return web / "run012" / "report" / "interactive.html", d12


chromium = browser_tests.chromium  # the fixture: skips (or fails with WADERS_REQUIRE_BROWSER=1) without Chromium


@pytest.fixture
def page(site, tmp_path, chromium):
    browser = cdp.Browser(chromium, browser_tests.FLAGS, tmp_path / "profile")
    try:
        browser.goto(site[0].as_uri())
        browser.wait_for("window.dqm && window.dqm.ready")
        yield browser
        assert browser.console == []
    finally:
        browser.close()


def visible_rows(browser) -> list[dict[str, str]]:
    return browser.evaluate(
        "Array.from(document.querySelectorAll('#me-table tbody tr')).filter(r => !r.hidden)"
        ".map(r => Object.assign({}, r.dataset))"
    )


def select(browser, selector: str, value: str) -> None:
    """Choose an option as a user does: the value changes and a change event fires."""
    browser.evaluate(
        f"(() => {{ const s = document.querySelector({json.dumps(selector)}); s.value = {json.dumps(value)};"
        " s.dispatchEvent(new Event('change', {bubbles: true})); })()"
    )


def test_loads_offline_from_the_published_folder(page, site):
    scripts = page.evaluate("Array.from(document.scripts).filter(s => s.src).map(s => s.src)")
    assert [s.rsplit("/", 2)[-2:] for s in scripts] == [["assets", "plotly.min.js"], ["assets", "dqm.js"]]
    assert all(s.startswith(site[0].parent.as_uri()) for s in scripts)  # from the published folder, no network
    links = page.evaluate("Array.from(document.querySelectorAll('[href],[src]')).map(e => e.href || e.src)")
    assert not [link for link in links if link.startswith(("http:", "https:"))]
    assert page.evaluate("typeof Plotly") == "object"
    document = site[1]
    n_rows = sum(len(per_amp) for image in document["images"].values() for per_amp in image["me"].values())
    n_rows += sum(len(per_amp) for per_amp in document["run_level"].values())
    assert page.evaluate("document.getElementById('me-table').tBodies[0].rows.length") == n_rows
    assert len(visible_rows(page)) == n_rows


def test_filter_by_status_amplifier_and_image(page, site):
    document = site[1]
    all_rows = len(visible_rows(page))
    select(page, "#filter-status", "fail")
    rows = visible_rows(page)
    assert [(r["me"], r["amp"], r["image"]) for r in rows] == [("MEFitDCSigma", "U", "2")]
    assert page.evaluate("document.getElementById('me-count').textContent") == f"1 of {all_rows} rows"
    # the plot cards follow: only the failing ME's card is left
    cards = page.evaluate(
        "Array.from(document.querySelectorAll('#plots article')).filter(a => !a.hidden).map(a => a.id)"
    )
    assert cards == ["me-MEFitDCSigma-U"]
    select(page, "#filter-status", "")
    select(page, "#filter-amp", "L")
    select(page, "#filter-image", "3")
    rows = visible_rows(page)
    expected = sorted(name for name, per_amp in document["images"]["skp_run012_img003"]["me"].items() if "L" in per_amp)
    assert sorted(r["me"] for r in rows) == expected
    assert {(r["amp"], r["image"]) for r in rows} == {("L", "3")}
    select(page, "#filter-amp", "")
    select(page, "#filter-image", "")
    assert len(visible_rows(page)) == all_rows


def test_sort_by_clicking_headers(page):
    select(page, "#filter-me", "")
    page.click("#me-table th[data-key='value']")
    values = [float(r["value"]) for r in visible_rows(page) if r["value"]]
    assert len(values) > 10
    assert values == sorted(values)
    assert visible_rows(page)[-1]["value"] == ""  # rows without a value go last
    page.click("#me-table th[data-key='value']")
    values = [float(r["value"]) for r in visible_rows(page) if r["value"]]
    assert values == sorted(values, reverse=True)
    assert page.evaluate("document.querySelector(\"th[data-key='value']\").getAttribute('aria-sort')") == "descending"
    page.click("#me-table th[data-key='status']")
    statuses = [r["status"] for r in visible_rows(page)]
    rank = {"none": 0, "pass": 1, "warn": 2, "fail": 3}
    assert [rank[s] for s in statuses] == sorted(rank[s] for s in statuses)
    page.click("#me-table th[data-key='status']")
    assert visible_rows(page)[0]["status"] == "fail"


def _plot(page, selector: str) -> None:
    page.evaluate(f"document.querySelector({json.dumps(selector)}).scrollIntoView({{block: 'center'}})")
    page.wait_for(f"document.querySelector({json.dumps(selector)}).dataset.rendered === 'true'")


def _pixel(page, selector: str, trace: int, point: int) -> list[float]:
    """Viewport coordinates of a data point of a plotly plot."""
    return page.evaluate(
        f"(() => {{ const gd = document.querySelector({json.dumps(selector)}); const fl = gd._fullLayout;"
        f" const t = gd.data[{trace}]; const box = gd.getBoundingClientRect();"
        f" return [box.left + fl._size.l + fl.xaxis.l2p(t.x[{point}]),"
        f" box.top + fl._size.t + fl.yaxis.l2p(t.y[{point}])];"
        " })()"
    )


def test_plot_with_reference_zooms_by_mouse_drag(page):
    plot = "#me-MEFitDCSigma-U div.plot"
    _plot(page, plot)
    names = page.evaluate(f"document.querySelector('{plot}').data.map(t => t.name)")
    assert "reference run 11" in names and "run 12" in names
    before = page.evaluate(f"document.querySelector('{plot}')._fullLayout.xaxis.range.slice()")
    # drag a box over the middle of the plot area: plotly zooms to it
    box = page.evaluate(
        f"(() => {{ const gd = document.querySelector('{plot}'); const s = gd._fullLayout._size;"
        " const r = gd.getBoundingClientRect(); return [r.left + s.l, r.top + s.t, s.w, s.h]; })()"
    )
    x0, y0 = box[0] + 0.3 * box[2], box[1] + 0.2 * box[3]
    x1, y1 = box[0] + 0.6 * box[2], box[1] + 0.8 * box[3]
    page.mouse("mouseMoved", x0, y0)
    page.mouse("mousePressed", x0, y0, button="left", buttons=1)
    for f in (0.25, 0.5, 0.75, 1.0):
        page.mouse("mouseMoved", x0 + f * (x1 - x0), y0 + f * (y1 - y0), buttons=1)
    page.mouse("mouseReleased", x1, y1, button="left")
    page.wait_for(f"document.querySelector('{plot}').dataset.xrange")
    after = page.evaluate(f"document.querySelector('{plot}').layout.xaxis.range")
    width = before[1] - before[0]
    assert after[0] == pytest.approx(before[0] + 0.3 * width, abs=0.02 * width)
    assert after[1] == pytest.approx(before[0] + 0.6 * width, abs=0.02 * width)
    info = page.evaluate(f"document.querySelector('{plot}').parentNode.querySelector('.info').textContent")
    assert info.startswith("zoomed: x from")


def test_scalar_plot_hover_names_the_image(page):
    plot = "#me-MEFitDCSigma-U div.plot"
    _plot(page, plot)
    traces = page.evaluate(f"document.querySelector('{plot}').data.map(t => t.name)")
    x, y = _pixel(page, plot, traces.index("run 12"), 1)
    page.mouse("mouseMoved", x, y)
    hover = page.wait_for(f"document.querySelector('{plot}').dataset.hover")
    assert hover.startswith("run 12, image 2:")
    assert hover.endswith("x = 2, y = 0.45")  # the failing value (range 0.3 * 1.5)
    value = page.evaluate(f"document.querySelector('{plot}').data[{traces.index('run 12')}].y[1]")
    assert value == pytest.approx(0.45)


def test_history_hover_shows_run_numbers(page, site):
    plot = "#trend-noise div.plot"
    _plot(page, plot)
    traces = page.evaluate(f"document.querySelector('{plot}').data.map(t => [t.name, t.x])")
    names = [t[0] for t in traces]
    means = names.index("amplifier L run mean")
    assert traces[means][1] == [11, 12]  # one point per run
    for point, run in ((0, 11), (1, 12)):
        x, y = _pixel(page, plot, means, point)
        page.mouse("mouseMoved", x, y)
        hover = page.wait_for(
            f"(() => {{ const h = document.querySelector('{plot}').dataset.hover;"
            f" return h && h.startsWith('run {run},') ? h : ''; }})()"
        )
        # the run mean or an image of that run (they share the x position), with its run number
        assert hover.startswith(f"run {run}, ")
        assert "mean of 3 image(s)" in hover or ", image " in hover
        # plotly's own hover label shows the run too
        label = page.evaluate(f"document.querySelector('{plot}').querySelector('.hoverlayer').textContent")
        assert f"run {run}" in label


def test_published_page_without_plotly_fails_visibly(site, tmp_path, chromium):
    """Control: the console check above would see a missing library (so the empty console means something)."""
    copy = tmp_path / "report"
    shutil.copytree(site[0].parent, copy)
    (copy / "assets" / "plotly.min.js").unlink()
    browser = cdp.Browser(chromium, browser_tests.FLAGS, tmp_path / "profile")
    try:
        browser.goto((copy / "interactive.html").as_uri())
        browser.wait_for("window.dqm && window.dqm.ready")
        browser.evaluate("document.querySelector('div.plot').scrollIntoView()")
        browser.wait_for("document.readyState === 'complete'")
        import time

        time.sleep(0.5)
        browser.evaluate("1")  # collect pending console events
        assert any("Plotly" in message for message in browser.console)
    finally:
        browser.close()
