from __future__ import annotations

import importlib.util
import json
import math
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from waders.core.errors import ConfigError, DataError, InputFileError
from waders.dqm.report import build_report
from waders.dqm.report.commands import publish, serve
from waders.dqm.report.common import format_value
from waders.dqm.report.web import make_server, publish_runs

_spec = importlib.util.spec_from_file_location("_dqm_report_fixtures", Path(__file__).with_name("_report_fixtures.py"))
fx = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fx)


def sources(html: str) -> list[str]:
    return re.findall(r'<img src="([^"]+)"', html)


def count_pdf_pages(path: Path) -> int:
    try:
        from pypdf import PdfReader
    except ImportError:
        return len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", path.read_bytes()))
    return len(PdfReader(path).pages)


def make_runs(out: Path):
    """OUTDIR with run 11 (all pass) and run 12 (reference 11, image 2 amplifier U MEFitDCSigma fails)."""
    r11, d11 = fx.make_run(out, 11, images=2)
    r12, d12 = fx.make_run(out, 12, images=2, reference_run=11, fail=(2, "U", "MEFitDCSigma"))
    return out, (r11, d11), (r12, d12)


@pytest.fixture
def runs(tmp_path):
    return make_runs(tmp_path / "out")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The runs of ``make_runs`` with their reports (run 12 with the PDF), built once for the read-only tests."""
    out, (r11, d11), (r12, d12) = make_runs(tmp_path_factory.mktemp("built") / "out")
    build_report(r11, d11)
    outputs = build_report(r12, d12, pdf=True)
    return out, (r11, d11), (r12, d12), outputs


@pytest.mark.parametrize(
    ("value", "error", "unit", "text"),
    [
        (0.1623, 0.0041, "e-", "0.1623 ± 0.0041 e-"),
        (10.71, 0.052, "ADU/e-", "10.710 ± 0.052 ADU/e-"),
        (1234.5, 56.0, None, "1234 ± 56"),
        (3.21e-5, 4.1e-6, "e-/pix", "(3.21 ± 0.41)e-05 e-/pix"),
        (0.5, None, "e-", "0.5 e-"),
        (None, 0.1, "e-", "n/a"),
        (float("nan"), 0.1, None, "n/a"),
    ],
)
def test_format_value(value, error, unit, text):
    assert format_value(value, error, unit) == text


def test_run_page_has_numbers_badges_and_existing_images(built):
    _, _, (r12, _), outputs = built
    index = r12 / "report" / "index.html"
    assert outputs["index"] == index
    html = index.read_text()
    assert "DQM run 012" in html and "SR1" in html
    assert '<span class="badge fail">FAIL</span>' in html  # run status
    # every scalar value of the run, formatted, with its unit
    for name, unit, base, error, _ in fx.SCALARS:
        for image in (1, 2):
            for amp in fx.AMPS:
                if (image, amp, name) == (2, "U", "MEFitDCSigma"):
                    continue
                assert format_value(fx.scalar_value(12, image, amp, base), error, unit) in html
    # the failing test with its detail, and the image row marked
    assert "0.45 outside [0.0, 0.3]" in html
    assert '<tr class="fail" id="image-skp_run012_img002">' in html
    assert 'href="#me-MEFitDCSigma-U"' in html
    # images: ME plots (relative, ../me/...), run-level plot and reference overlays, all existing
    srcs = sources(html)
    assert "../me/run_MEFitDCLambda.png" in srcs
    assert "../me/skp_run012_img001_MEFitDCLambda_L.png" in srcs
    assert {f"overlay_{n}_{a}.png" for n, *_ in fx.SCALARS for a in fx.AMPS} <= set(srcs)
    assert "overlay_MEMeanPixelChargePerRow_L.png" in srcs  # curve overlay
    for src in srcs:
        assert not src.startswith(("http:", "https:", "/")), src
        assert (index.parent / src).is_file(), src
    assert "<link" not in html and "@import" not in html  # self-contained
    assert 'href="../../run011/report/index.html"' in html
    assert 'href="history.html"' in html and outputs["history"].is_file()


def test_missing_plot_is_reported_not_linked(tmp_path):
    run_dir, doc = fx.make_run(tmp_path, 7, images=1)
    (run_dir / "me" / "skp_run007_img001_MEFitDCLambda_L.png").unlink()
    build_report(run_dir, doc)
    html = (run_dir / "report" / "index.html").read_text()
    assert "plot not found: me/skp_run007_img001_MEFitDCLambda_L.png" in html
    assert "../me/skp_run007_img001_MEFitDCLambda_L.png" not in sources(html)
    assert "../me/skp_run007_img001_MEFitDCLambda_U.png" in sources(html)


def test_history_page_uses_the_store_and_the_current_document(tmp_path):
    _, d10 = fx.make_run(tmp_path / "elsewhere", 10, images=3, plots=False)
    _, d11 = fx.make_run(tmp_path / "elsewhere", 11, images=2, plots=False)
    r12, d12 = fx.make_run(tmp_path / "out", 12, images=2, plots=False)
    stale = json.loads(json.dumps(d12))
    stale["masked_fraction"] = {"L": 0.777, "U": 0.777}
    store = fx.FakeStore([d10, d11, stale])  # the store still has an old version of run 12
    outputs = build_report(r12, d12, store)
    html = outputs["history"].read_text()
    assert "Trends over 3 run(s)" in html
    for run in (10, 11):
        assert f'<a href="../../run{run:03d}/report/index.html">{run:03d}</a>' in html
    assert "history MEFitDCSigma L" in store.calls and "get_run 10" in store.calls
    # masked fraction of the current document, not the stored one
    assert format_value(100 * d12["masked_fraction"]["L"]) in html
    assert "77.7" not in html
    # the per-run mean of run 10 (three images) ± its standard error is in the table
    values = [fx.scalar_value(10, i, "L", 10.71) for i in (1, 2, 3)]
    assert format_value(statistics.mean(values), statistics.stdev(values) / math.sqrt(3)) in html
    for key in ("noise", "gain", "dark_current", "masked_fraction"):
        assert outputs[f"history_{key}"].is_file()
        assert f'src="history_{key}.png"' in html


def test_history_without_store_reads_sibling_runs(built):
    outputs = built[3]
    html = outputs["history"].read_text()
    assert "Trends over 2 run(s)" in html


def test_rebuild_redraws_only_what_changed(runs):
    out, _, (r12, d12) = runs
    first = build_report(r12, d12)
    pngs = {k: p for k, p in first.items() if p.suffix == ".png"}
    before = {k: p.stat().st_mtime_ns for k, p in pngs.items()}
    again = build_report(r12, d12)
    assert {k: again[k].stat().st_mtime_ns for k in pngs} == before
    # a new image changes the overlays and the trends of run 12; the reference plots stay the same
    _, d12b = fx.make_run(out, 12, images=3, reference_run=11, fail=(2, "U", "MEFitDCSigma"))
    third = build_report(r12, d12b)
    changed = {k for k in pngs if third[k].stat().st_mtime_ns != before[k]}
    assert "overlay_MEFitDCLambda_L" in changed and "history_gain" in changed
    assert "history_masked_fraction" not in changed  # masked fractions did not change
    assert "skp_run012_img003" in third["index"].read_text()
    cache = json.loads((r12 / "report" / ".plots.json").read_text())
    assert "overlay_MEFitDCLambda_L.png" in cache


def test_pdf_has_summary_page_and_one_page_per_plot(built):
    _, _, (r12, d12), outputs = built
    pdf = outputs["pdf"]
    assert pdf == r12 / "report" / "report_run012.pdf"
    assert pdf.read_bytes().startswith(b"%PDF")
    run_level = 1
    overlays = 4 * 2  # 4 MEs (3 scalar, 1 curve) x 2 amplifiers
    image_plots = 3 * 2 * 2  # 3 MEs with plots x 2 amplifiers x 2 images
    assert count_pdf_pages(pdf) == 1 + run_level + overlays + image_plots
    assert 'href="report_run012.pdf"' in outputs["index"].read_text()
    mtimes = {p: p.stat().st_mtime_ns for p in (r12 / "report").iterdir()}
    build_report(r12, d12, pdf=True)
    assert {p: p.stat().st_mtime_ns for p in (r12 / "report").iterdir()} == mtimes  # nothing rewritten


def test_pdf_long_summary_continues_on_more_pages(tmp_path):
    quality = {"status": "pass", "test": "range", "detail": "ok"}
    me = {f"ME{i:02d}": {"L": {"value": i, "error": 0.1, "unit": "e-", "quality": quality}} for i in range(40)}
    document = {"run": 3, "amplifiers": ["L"], "images": {"a": {"image": 1, "status": "pass", "me": me}}}
    outputs = build_report(tmp_path / "run003", document, pdf=True)
    assert count_pdf_pages(outputs["pdf"]) == 2  # 30 rows on the title page, 10 on the next; no plots


def test_odd_file_names_are_quoted_and_published(tmp_path):
    run_dir = tmp_path / "out" / "run004"
    plot = fx.png(run_dir / "me" / "img #1 a_MEX_L.png", 0)
    entry = {"value": 1.0, "error": 0.5, "unit": "e-", "plot": plot, "quality": {"status": "warn", "detail": "x"}}
    document = {"run": 4, "amplifiers": ["L"], "images": {"img #1 a": {"image": 1, "me": {"MEX": {"L": entry}}}}}
    (run_dir / "summary_run004.json").write_text(json.dumps(document))
    outputs = build_report(run_dir, document)
    assert "../me/img%20%231%20a_MEX_L.png" in sources(outputs["index"].read_text())
    publish_runs(tmp_path / "out", tmp_path / "web")
    assert (tmp_path / "web" / "run004" / "me" / "img #1 a_MEX_L.png").is_file()


def test_empty_run_and_bad_document(tmp_path):
    run_dir = tmp_path / "run005"
    outputs = build_report(run_dir, {"run": 5, "status": "none", "amplifiers": ["L"], "images": {}})
    html = outputs["index"].read_text()
    assert "No image processed yet" in html and "DQM run 005" in html
    with pytest.raises(DataError, match="no run number"):
        build_report(run_dir, {"images": {}})


def test_real_store_when_available(runs, tmp_path):
    store_module = pytest.importorskip("waders.dqm.store")
    _, (r11, d11), (r12, d12) = runs
    with store_module.open_store(tmp_path / "dqm.sqlite") as store:
        store.put_run(d11)
        store.put_run(d12)
        shutil.rmtree(r11)  # the reference and the history must come from the store
        outputs = build_report(r12, d12, store)
    html = outputs["history"].read_text()
    assert "Trends over 2 run(s)" in html
    values = [fx.scalar_value(11, i, "U", 0.0512) for i in (1, 2)]
    assert format_value(statistics.mean(values), statistics.stdev(values) / math.sqrt(2)) in html
    assert "overlay_MEFitDCLambda_L.png" in sources(outputs["index"].read_text())


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        return response.read()


def test_publish_and_serve(built, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(built[0], out)
    fx.make_run(out, 13, images=1, plots=False)  # no report yet: listed as such, not published
    web = tmp_path / "web"
    result = CliRunner().invoke(publish, ["--to", str(web), "--from", str(out)])
    assert result.exit_code == 0, result.output
    assert "run 012: published" in result.output and "run 013: no report" in result.output
    index = (web / "index.html").read_text()
    assert 'href="run012/report/index.html"' in index and 'href="run011/report/index.html"' in index
    assert '<span class="badge fail">FAIL</span>' in index and '<span class="badge pass">PASS</span>' in index
    assert "run013" not in index
    page = web / "run012" / "report" / "index.html"
    for src in sources(page.read_text()):
        assert (page.parent / src).is_file(), src
    assert (web / "run012" / "report" / "report_run012.pdf").is_file()
    assert not (web / "run012" / "report" / ".plots.json").exists()
    assert not list(web.glob(".run*"))  # no staging directory left
    # unchanged runs are not copied again
    again = publish_runs(out, web)
    assert {r.run: r.action for r in again} == {11: "unchanged", 12: "unchanged", 13: "no report"}

    server = make_server(web, "127.0.0.1", 0, quiet=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        assert b"DQM runs" in fetch(base + "/")
        html = fetch(base + "/run012/report/index.html").decode()
        assert "DQM run 012" in html
        assert fetch(base + "/run012/report/" + sources(html)[0]).startswith(b"\x89PNG")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_publish_errors(tmp_path):
    with pytest.raises(InputFileError, match="no run") as err:
        publish_runs(tmp_path, tmp_path / "web")
    assert err.value.hint == "run 'waders dqm run' first, and pass its -o folder with --from"
    fx.make_run(tmp_path / "dqm", 12, images=1, plots=False)  # 'waders dqm run -o dqm/', then publish from '.'
    with pytest.raises(InputFileError, match="no run") as err:
        publish_runs(tmp_path, tmp_path / "web")
    assert err.value.hint == f"pass the -o folder of 'waders dqm run' with --from, e.g. --from {tmp_path / 'dqm'}"
    assert not (tmp_path / "web").exists()
    result = CliRunner().invoke(serve, [str(tmp_path / "missing")])
    assert isinstance(result.exception, InputFileError)
    busy = make_server(tmp_path, "127.0.0.1", 0, quiet=True)
    try:
        with pytest.raises(ConfigError, match="cannot listen on 127.0.0.1"):
            make_server(tmp_path, "127.0.0.1", busy.server_address[1])
    finally:
        busy.server_close()


def test_serve_command_prints_url_and_stops_on_ctrl_c(tmp_path):
    (tmp_path / "index.html").write_text("<html><body>hello dqm</body></html>")
    code = "import sys; from waders.dqm.report.commands import serve; serve(sys.argv[1:])"
    proc = subprocess.Popen(
        [sys.executable, "-u", "-c", code, str(tmp_path), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        url = re.search(r"http://\S+/", line).group(0)
        assert url.startswith("http://127.0.0.1:")
        assert b"hello dqm" in fetch(url + "index.html")
        proc.send_signal(signal.SIGINT)
        stdout, _ = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert "stopped" in stdout
    assert proc.returncode == 0
