"""The HTML report in a real browser: headless Chromium renders it without console errors, the
screenshot is not blank, and a title holding ``<script>`` is shown as text, never run."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from predictions.db import read_session
from reports.build import ReportQuery, build_report
from reports.render import render
from tests.reports.test_report_build import Ledger, _day

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="headless browser test skipped: /usr/bin/chromium is absent "
    "(apt-get install -y chromium; .ci/run installs it)",
)
HOSTILE = '<script>document.title="pwned";console.error("injected")</script> & "co"'


def _chromium(tmp_path: Path, page: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=412,1400",  # a phone's width
            *extra,
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _console_lines(stderr: str) -> list[str]:
    """Chromium logs every page console message and uncaught error as ``CONSOLE(...)``."""
    return [line for line in stderr.splitlines() if "CONSOLE" in line]


def _report_page(engine: Engine, tmp_path: Path) -> Path:
    led = Ledger(engine)
    for i in range(40):
        led.add(
            [("alice", 0.15 + 0.02 * i, _day(i)), (HOSTILE, 0.5, _day(i + 1))],
            due=_day(100 + 10 * i),
            outcome=i % 3 != 0,
            tags=["china" if i % 2 else "us"],
        )
    led.save()
    with read_session(engine) as session:
        data = build_report(session, ReportQuery(group_by="month"))
    page = tmp_path / "report.html"
    page.write_text(render(data, "html", title=f"Report {HOSTILE}"), encoding="utf-8")
    return page


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_report_html_renders_in_chromium(engine: Engine, tmp_path: Path) -> None:
    page = _report_page(engine, tmp_path)

    dom = _chromium(tmp_path, page, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert _console_lines(dom.stderr) == []
    # The hostile title and forecaster name are text: escaped in the DOM, no script element.
    assert "<script" not in dom.stdout.lower()
    title = re.search(r"<title>(.*?)</title>", dom.stdout, re.S)
    assert title and title.group(1).startswith("Report &lt;script&gt;document.title=")
    assert "<h1>Report &lt;script&gt;document.title=" in dom.stdout
    assert dom.stdout.count("&lt;script&gt;") >= 2  # the title and the forecaster table
    assert dom.stdout.count("<svg") == 2

    shot = tmp_path / "shot.png"
    done = _chromium(tmp_path, page, f"--screenshot={shot}")
    assert done.returncode == 0 and shot.exists(), done.stderr[-2000:]
    assert _console_lines(done.stderr) == []
    from PIL import Image

    with Image.open(shot) as image:
        pixels = image.convert("L")
        extrema = pixels.getextrema()
        histogram = pixels.histogram()
        assert image.size == (412, 1400)
    dark = sum(histogram[:128])
    total = sum(histogram)
    assert extrema[0] < 60 and extrema[1] > 200  # black text on a white page
    assert 0.005 < dark / total < 0.5  # ink, but not a black screen


def test_report_html_console_check_catches_an_error(tmp_path: Path) -> None:
    """The console check is real: a page with a script error and a blocked fetch is caught."""
    page = tmp_path / "bad.html"
    page.write_text(
        "<!DOCTYPE html><title>bad</title><p>x</p>"
        "<script>console.error('boom'); undefinedFunction();</script>",
        encoding="utf-8",
    )
    done = _chromium(tmp_path, page, "--dump-dom")
    lines = _console_lines(done.stderr)
    assert any("boom" in line for line in lines), done.stderr[-2000:]
    assert any("undefinedFunction" in line for line in lines)
