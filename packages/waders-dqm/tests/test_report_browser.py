"""The DQM report pages rendered by a real browser (headless Chromium).

Skipped when Chromium is not installed, unless WADERS_REQUIRE_BROWSER=1 (set it in the CI
session that installs Chromium, so that a missing browser fails instead of skipping).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest

from waders.dqm.report import build_report
from waders.dqm.report.common import format_value
from waders.dqm.report.web import make_server, publish_runs

pytestmark = pytest.mark.browser

_spec = importlib.util.spec_from_file_location("_dqm_report_fixtures", Path(__file__).with_name("_report_fixtures.py"))
fx = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fx)

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-proxy-server",
    "--hide-scrollbars",
    "--enable-logging=stderr",
    "--v=0",
)


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else None


@pytest.fixture(scope="module")
def chromium():
    path = find_chromium()
    if path is None:
        if os.environ.get("WADERS_REQUIRE_BROWSER") == "1":
            pytest.fail("Chromium is required (WADERS_REQUIRE_BROWSER=1) but not installed")
        pytest.skip("headless Chromium is not installed (apt-get install chromium)")
    return path


def browse(chromium: str, url: str, tmp_path: Path, *extra: str) -> tuple[str, str]:
    """Run Chromium on ``url``; return (stdout, stderr)."""
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    result = subprocess.run(
        [chromium, *FLAGS, f"--user-data-dir={profile}", *extra, url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout, result.stderr


def console_messages(stderr: str) -> list[str]:
    """Messages the page wrote to the browser console (errors, failed loads, uncaught exceptions)."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


def body_attributes(dom: str) -> dict[str, str]:
    body = re.search(r"<body([^>]*)>", dom)
    assert body, dom[:500]
    return dict(re.findall(r'([\w-]+)="([^"]*)"', body.group(1)))


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("browser") / "out"
    r11, d11 = fx.make_run(out, 11, images=2)
    r12, d12 = fx.make_run(out, 12, images=2, reference_run=11, fail=(2, "U", "MEFitDCSigma"))
    build_report(r11, d11)
    build_report(r12, d12)
    return out, r12, d12


def test_run_page_renders_with_all_images(chromium, site, tmp_path):
    _, r12, _ = site
    page = r12 / "report" / "index.html"
    dom, stderr = browse(chromium, page.as_uri(), tmp_path, "--dump-dom")
    attributes = body_attributes(dom)
    n_images = len(re.findall(r"<img ", page.read_text()))
    assert n_images > 20
    assert attributes.get("data-images") == str(n_images)
    assert attributes.get("data-images-ok") == "true"
    assert console_messages(stderr) == []
    assert "DQM run 012" in dom
    value = fx.scalar_value(12, 1, "L", 10.71)
    assert format_value(value, 0.052, "ADU/e-") in dom
    assert "0.45 outside [0.0, 0.3]" in dom

    shot = tmp_path / "run012.png"
    browse(chromium, page.as_uri(), tmp_path, f"--screenshot={shot}", "--window-size=1280,2000")
    import matplotlib.image

    pixels = matplotlib.image.imread(shot)
    assert pixels.shape[:2] == (2000, 1280)
    rgb = (pixels[..., :3] * 255).round().astype(np.uint8).reshape(-1, 3)
    colours = np.unique(rgb, axis=0)
    assert len(colours) > 100  # text, badges, plots: far from blank
    not_white = np.any(rgb < 240, axis=1).mean()
    assert not_white > 0.05
    # the header bar (dark blue) is at the top
    assert pixels[5, 640, 2] > pixels[5, 640, 0] + 0.2


def test_history_page_renders(chromium, site, tmp_path):
    _, r12, _ = site
    dom, stderr = browse(chromium, (r12 / "report" / "history.html").as_uri(), tmp_path, "--dump-dom")
    attributes = body_attributes(dom)
    assert attributes.get("data-images") == "4"
    assert attributes.get("data-images-ok") == "true"
    assert console_messages(stderr) == []
    assert "Trends over 2 run(s)" in dom


def test_broken_image_is_detected(chromium, site, tmp_path):
    out, _, _ = site
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    (copy / "run012" / "report" / "overlay_MEFitDCLambda_L.png").unlink()
    dom, stderr = browse(chromium, (copy / "run012" / "report" / "index.html").as_uri(), tmp_path, "--dump-dom")
    assert body_attributes(dom).get("data-images-ok") == "false"
    assert 'class="broken"' in dom
    # and the console scan does see script errors (so the empty scans above mean something)
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><html><body><script>undefinedFunction();</script></body></html>")
    _, stderr = browse(chromium, bad.as_uri(), tmp_path, "--dump-dom")
    assert any("undefinedFunction" in m for m in console_messages(stderr))


def test_published_site_over_http(chromium, site, tmp_path):
    out, _, _ = site
    web = tmp_path / "web"
    publish_runs(out, web)
    server = make_server(web, "127.0.0.1", 0, quiet=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        dom, stderr = browse(chromium, base + "/", tmp_path, "--dump-dom")
        assert "run 012" in dom and "run 011" in dom
        assert console_messages(stderr) == []
        dom, stderr = browse(chromium, base + "/run012/report/index.html", tmp_path, "--dump-dom")
        assert body_attributes(dom).get("data-images-ok") == "true"
        assert console_messages(stderr) == []
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
