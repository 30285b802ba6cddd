"""The progress bars of the commands: shown on a terminal only, not broken by log lines."""

from __future__ import annotations

import io
import logging
import re
import sys

import pytest

from waders.core import progress
from waders.core.log import setup_logging
from waders.core.progress import progress_bar, progress_enabled


class FakeTTY(io.StringIO):
    """A text stream that says it is a terminal (what a user's stderr is)."""

    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _allowed(monkeypatch):
    monkeypatch.delenv(progress.ENV, raising=False)
    progress.configure(True)
    yield
    progress.configure(True)


def test_bar_with_eta_on_a_tty():
    stream = FakeTTY()
    with progress_bar(total=4, desc="images", unit="image", stream=stream) as bar:
        assert bar.shown
        for _ in range(4):
            bar.update(1)
    text = stream.getvalue()
    assert "images" in text
    assert "4/4" in text
    # tqdm redraws the line with \r, showing counts, the elapsed time and the ETA ("<mm:ss")
    assert text.count("\r") >= 2
    assert re.search(r"\d\d:\d\d<\d\d:\d\d", text)
    assert "image/s" in text or "s/image" in text


def test_nothing_when_not_a_tty():
    stream = io.StringIO()
    with progress_bar(total=4, desc="images", stream=stream) as bar:
        assert not bar.shown
        bar.update(4)
    assert stream.getvalue() == ""
    assert not progress_enabled(stream)


@pytest.mark.parametrize("how", ["configure", "env", "argument"])
def test_off_switches(monkeypatch, how):
    stream = FakeTTY()
    if how == "configure":
        progress.configure(False)
    elif how == "env":
        monkeypatch.setenv(progress.ENV, "1")
    with progress_bar(total=2, stream=stream, enabled=False if how == "argument" else None) as bar:
        bar.update(2)
    assert stream.getvalue() == ""


def test_umbrella_no_progress_flag():
    from click.testing import CliRunner

    from waders.core.cli.main import cli

    assert "--no-progress" in CliRunner().invoke(cli, ["--help"]).output
    result = CliRunner().invoke(cli, ["--no-progress", "conditions", "--help"])
    assert result.exit_code == 0
    assert not progress_enabled(FakeTTY())
    CliRunner().invoke(cli, ["conditions", "--help"])
    assert progress_enabled(FakeTTY())


def test_log_line_during_progress_is_printed_above_the_bar(monkeypatch):
    stream = FakeTTY()
    monkeypatch.setattr(sys, "stderr", stream)
    setup_logging(verbosity=1)  # the CLI's handler, on (the fake) stderr
    log = logging.getLogger("waders.test")
    handlers = list(logging.getLogger("waders").handlers)
    try:
        with progress_bar(total=3, desc="files", unit="file") as bar:
            bar.update(1)
            log.info("file 2 has no overscan")
            bar.update(2)
        # the handlers are restored after the bar
        assert logging.getLogger("waders").handlers == handlers
    finally:
        for handler in handlers:
            logging.getLogger("waders").removeHandler(handler)
    lines = stream.getvalue().split("\n")
    # the log record is a line of its own (the bar was cleared first, not overwritten mid-line) ...
    message = [line for line in lines if "file 2 has no overscan" in line]
    assert len(message) == 1
    assert message[0].split("\r")[-1] == "INFO: file 2 has no overscan"
    # ... and the bar is drawn again after it and finishes at 3/3
    after = "\n".join(lines[lines.index(message[0]) + 1 :])
    assert "files" in after and "3/3" in after


def test_bar_shows_no_more_than_the_console_handler(monkeypatch):
    """A handler set to WARNING (a DQM run's console while INFO goes to its run log) stays at WARNING."""
    stream = FakeTTY()
    monkeypatch.setattr(sys, "stderr", stream)
    setup_logging(verbosity=1)
    logger = logging.getLogger("waders")
    handlers = list(logger.handlers)
    try:
        for handler in handlers:
            handler.setLevel(logging.WARNING)
        with progress_bar(total=2, desc="images") as bar:
            logging.getLogger("waders.test").info("only for the run log")
            logging.getLogger("waders.test").warning("image 2 is noisy")
            bar.update(2)
    finally:
        for handler in handlers:
            logger.removeHandler(handler)
    text = stream.getvalue()
    assert "only for the run log" not in text
    assert "WARNING: image 2 is noisy" in text
