"""The HTML report in a real browser: headless Chromium (Debian's, driven by Playwright) renders it
at a phone's width (390 px) and a desktop's (1280 px). The charts say what the report dict says
(every point inside its axes at the place its value gives, periods on a time-proportional axis
with empty periods as gaps, bars proportional to the counts); no two labels overlap, none is under
11 px, the charts fill the width and the page never scrolls sideways; long tables fold; a title
holding ``<script>`` is shown as text, never run, and nothing is fetched."""

from __future__ import annotations

import importlib.util
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy.engine import Engine

from predictions.db import read_session
from reports.build import ReportQuery, build_report
from reports.charts import GROUP_CHART_ROWS
from reports.render import render
from tests.reports.test_report_build import NOW, Ledger, _day

CHROMIUM = Path("/usr/bin/chromium")
_MISSING = (
    "headless browser test skipped: /usr/bin/chromium is absent "
    "(apt-get install -y chromium; .ci/run installs it)"
    if not CHROMIUM.exists()
    else "headless browser test skipped: the playwright package is absent "
    "(pip install playwright; the test extras name it; no `playwright install` needed)"
    if importlib.util.find_spec("playwright") is None
    else None
)
browser_test = pytest.mark.skipif(_MISSING is not None, reason=_MISSING or "")
HOSTILE = '<script>document.title="pwned";console.error("injected")</script> & "co"'
PHONE, DESKTOP = 390, 1280
TAGS = [f"tag-{i:02d}" for i in range(15)] + ["semiconductors-and-export-controls-of-2025"]


def _report(engine: Engine, group_by: str) -> dict[str, Any]:
    """Forecasts resolving over 20 months, none in months 7-9 (a gap), by three forecasters
    (one of them hostile), on 16 tags (more than the group chart and a folded table show)."""
    led = Ledger(engine)
    for i in range(160):
        month = i % 20
        if 6 <= month <= 8:
            continue
        due = _day(15 + 30.4 * month + i % 7)
        led.add(
            [
                ("alice", 0.1 + 0.8 * ((i * 37) % 100) / 100, _day(0)),
                (HOSTILE, 0.5 + 0.4 * ((i % 3) - 1), _day(1)),
                ("a-forecaster-with-a-rather-long-name", 0.9 if i % 4 else 0.2, _day(2)),
            ],
            due=due,
            outcome=(i * 37) % 100 > 45,
            tags=sorted({TAGS[i % len(TAGS)], TAGS[(i * 7) % len(TAGS)]}),
        )
    led.save()
    with read_session(engine) as session:
        return build_report(session, ReportQuery(group_by=group_by), now=NOW)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"]
        )
        yield chromium
        chromium.close()


class _Page:
    """A page opened on a file, with every console message, page error and request recorded."""

    def __init__(self, browser: Any, path: Path, width: int) -> None:
        self.page = browser.new_page(viewport={"width": width, "height": 900})
        self.console: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        self.page.on("pageerror", lambda e: self.console.append(f"error: {e}"))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.goto(path.as_uri())

    def __enter__(self) -> _Page:
        return self

    def __exit__(self, *exc: object) -> None:
        self.page.close()


def _open(browser: Any, tmp_path: Path, html: str, width: int) -> _Page:
    path = tmp_path / f"report-{width}.html"
    path.write_text(html, encoding="utf-8")
    return _Page(browser, path, width)


# Every visible chart: its class, box, plot area, texts (box, size in px) and points (centre,
# the ends of their interval bars, their data).
_CHARTS_JS = """() => [...document.querySelectorAll('svg')]
  .filter(s => s.getBoundingClientRect().width > 0)
  .map(svg => {
    const box = e => { const r = e.getBoundingClientRect();
      return {left: r.left, right: r.right, top: r.top, bottom: r.bottom}; };
    const scale = svg.getScreenCTM().a;
    const area = svg.querySelector('rect.area');
    return {
      cls: svg.getAttribute('class'), box: box(svg), area: box(area),
      texts: [...svg.querySelectorAll('text')].map(t => ({
        text: t.textContent, box: box(t), v: t.dataset.v === undefined ? null : +t.dataset.v,
        cls: t.getAttribute('class'),
        px: parseFloat(getComputedStyle(t).fontSize) * scale})),
      points: [...svg.querySelectorAll('g.pt')].map(g => ({
        data: {...g.dataset}, dot: box(g.querySelector('circle')),
        bar: box(g.querySelector('line.ci'))})),
      bars: [...svg.querySelectorAll('rect.bar')].map(b => ({data: {...b.dataset}, box: box(b)})),
    };
  })"""


def _centre(b: dict[str, float]) -> tuple[float, float]:
    return (b["left"] + b["right"]) / 2, (b["top"] + b["bottom"]) / 2


def _overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    return (
        min(a["right"], b["right"]) - max(a["left"], b["left"]) > 0.5
        and min(a["bottom"], b["bottom"]) - max(a["top"], b["top"]) > 0.5
    )


def _index(key: str) -> int:
    """Months (``2025-03``) or quarters (``2025-Q2``) counted from year 0."""
    if "Q" in key:
        return int(key[:4]) * 4 + int(key[-1])
    return int(key[:4]) * 12 + int(key[5:7])


def _check_readable(chart: dict[str, Any]) -> None:
    texts = chart["texts"]
    small = [(t["text"], round(t["px"], 1)) for t in texts if t["px"] < 11]
    assert not small, f"{chart['cls']}: labels under 11 px: {small}"
    clash = [
        (a["text"], b["text"])
        for a, b in itertools.combinations(texts, 2)
        if _overlap(a["box"], b["box"])
    ]
    assert not clash, f"{chart['cls']}: labels overlap: {clash}"
    for t in texts:  # inside the drawing
        assert chart["box"]["left"] - 0.5 <= t["box"]["left"], (chart["cls"], t["text"])
        assert t["box"]["right"] <= chart["box"]["right"] + 0.5, (chart["cls"], t["text"])


def _check_inside(chart: dict[str, Any]) -> None:
    area = chart["area"]
    for point in chart["points"]:
        x, y = _centre(point["dot"])
        for px, py in ((x, y), (x, point["bar"]["top"]), (x, point["bar"]["bottom"])):
            assert area["left"] - 0.5 <= px <= area["right"] + 0.5, (chart["cls"], point["data"])
            assert area["top"] - 0.5 <= py <= area["bottom"] + 0.5, (chart["cls"], point["data"])


def _top(chart: dict[str, Any], cls: str) -> float:
    """The axis runs from 0 at one edge of the plot area to its highest tick at the other."""
    return max(t["v"] for t in chart["texts"] if t["cls"] == cls and t["v"] is not None)


def _check_time_chart_points(chart: dict[str, Any], report: dict[str, Any]) -> None:
    """Each period's point: the report's very numbers, drawn where they say."""
    periods = [p for p in report["over_time"]["periods"] if p["count"]]
    area, top = chart["area"], _top(chart, "ytick")
    points = chart["points"]
    assert [p["data"]["key"] for p in points] == [p["key"] for p in periods]
    height = area["bottom"] - area["top"]
    for point, period in zip(points, periods, strict=True):
        assert float(point["data"]["brier"]) == period["brier"]
        assert float(point["data"]["low"]) == period["brier_interval"]["low"]
        assert float(point["data"]["high"]) == period["brier_interval"]["high"]
        assert int(point["data"]["count"]) == period["count"]
        assert _centre(point["dot"])[1] == pytest.approx(
            area["bottom"] - period["brier"] / top * height, abs=0.75
        )
        assert point["bar"]["top"] == pytest.approx(
            area["bottom"] - period["brier_interval"]["high"] / top * height, abs=0.75
        )
        assert point["bar"]["bottom"] == pytest.approx(
            area["bottom"] - period["brier_interval"]["low"] / top * height, abs=0.75
        )


def _check_time_chart(chart: dict[str, Any], report: dict[str, Any]) -> None:
    _check_time_chart_points(chart, report)
    periods = [p for p in report["over_time"]["periods"] if p["count"]]
    area, points = chart["area"], chart["points"]
    # Time-proportional: the same distance per period, across the empty periods too.
    index = [_index(p["key"]) for p in periods]
    xs = [_centre(p["dot"])[0] for p in points]
    per_period = (xs[-1] - xs[0]) / (index[-1] - index[0])
    for i, x in zip(index, xs, strict=True):
        assert x == pytest.approx(xs[0] + (i - index[0]) * per_period, abs=0.75)
    assert max(b - a for a, b in itertools.pairwise(index)) > 1  # the gap is there
    # A slot per period over the full width of the plot area.
    slots = index[-1] - index[0] + 1
    assert per_period * slots == pytest.approx(area["right"] - area["left"], abs=1)
    # Bars: as tall as their counts, under their points.
    bars = chart["bars"]
    assert [int(b["data"]["count"]) for b in bars] == [p["count"] for p in periods]
    most = max(p["count"] for p in periods)
    tallest = max(b["box"]["bottom"] - b["box"]["top"] for b in bars)
    for bar, x, period in zip(bars, xs, periods, strict=True):
        h = bar["box"]["bottom"] - bar["box"]["top"]
        assert h == pytest.approx(tallest * period["count"] / most, abs=1.0)
        assert _centre(bar["box"])[0] == pytest.approx(x, abs=0.75)


def _check_group_chart(chart: dict[str, Any], report: dict[str, Any]) -> None:
    groups = report["groups"]
    shown = sorted(groups, key=lambda g: -g["count"])[:GROUP_CHART_ROWS]
    assert [p["data"]["key"] for p in chart["points"]] == [g["key"] for g in shown]
    area, top = chart["area"], _top(chart, "xtick")
    width = area["right"] - area["left"]
    for point, group in zip(chart["points"], shown, strict=True):
        assert float(point["data"]["brier"]) == group["brier"]
        assert int(point["data"]["count"]) == group["count"]
        assert _centre(point["dot"])[0] == pytest.approx(
            area["left"] + group["brier"] / top * width, abs=0.75
        )
        assert point["bar"]["left"] == pytest.approx(
            area["left"] + group["brier_interval"]["low"] / top * width, abs=0.75
        )
        assert point["bar"]["right"] == pytest.approx(
            area["left"] + group["brier_interval"]["high"] / top * width, abs=0.75
        )


@browser_test
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("width", [PHONE, DESKTOP])
def test_report_html_charts_match_the_data(
    engine: Engine, browser: Any, tmp_path: Path, width: int
) -> None:
    report = _report(engine, "month")
    with read_session(engine) as session:
        by_tag = build_report(session, ReportQuery(group_by="tag"), now=NOW)
    for data in (report, by_tag):
        with _open(browser, tmp_path, render(data, "html"), width) as page:
            charts = page.page.evaluate(_CHARTS_JS)
            overflow = page.page.evaluate(
                "[document.documentElement.scrollWidth, window.innerWidth]"
            )
            content = page.page.evaluate(
                "document.querySelector('h1').getBoundingClientRect().width"
            )
            assert page.console == []
        assert overflow[0] <= overflow[1], f"the page scrolls sideways at {width} px"
        drawing = "narrow" if width == PHONE else "wide"
        kinds = [c["cls"] for c in charts]
        expected = [f"time {drawing}", "rel"]
        if data is by_tag:
            expected.insert(1, f"groups {drawing}")
        assert kinds == expected
        for chart in charts:
            _check_readable(chart)
            _check_inside(chart)
            if chart["cls"] != "rel":  # full width
                assert chart["box"]["right"] - chart["box"]["left"] >= content - 1
        _check_time_chart(charts[0], data)
        if data is by_tag:
            _check_group_chart(charts[1], data)


@browser_test
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_report_html_long_tables_fold(engine: Engine, browser: Any, tmp_path: Path) -> None:
    report = _report(engine, "tag")
    assert len(report["breakdowns"]["tag"]) == len(TAGS) > 12
    with _open(browser, tmp_path, render(report, "html"), DESKTOP) as page:
        table = page.page.locator("#grouped ~ .scroll table").first
        rows = table.locator("tr")
        assert rows.count() == len(TAGS) + 1
        visible = "els => els.filter(e => e.getBoundingClientRect().height > 0).length"
        assert rows.evaluate_all(visible) == 12 + 1
        summary = page.page.locator("#grouped ~ details.fold summary").first
        assert summary.inner_text() == f"Show all {len(TAGS)} rows"
        summary.click()
        assert rows.evaluate_all(visible) == len(TAGS) + 1
        assert summary.inner_text() == "Show the first 12 rows"
        assert page.console == []


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_report_html_group_by_shapes_the_page(engine: Engine) -> None:
    """Each --group-by gives its own page: a period chart by month, quarter or year, and a
    section with a chart and a table of the groups by tag, forecaster or horizon."""
    report = _report(engine, "quarter")
    pages = {}
    for group_by in ("month", "quarter", "year", "tag", "forecaster", "horizon"):
        with read_session(engine) as session:
            data = build_report(session, ReportQuery(group_by=group_by), now=NOW)
        html = render(data, "html")
        pages[group_by] = html
        if group_by in ("tag", "forecaster", "horizon"):
            assert f'<h2 id="grouped">By {group_by}</h2>' in html
            assert html.count(f"<h2>By {group_by}</h2>") == 0  # not twice
            assert 'class="groups narrow"' in html and 'class="groups wide"' in html
        else:
            assert 'id="grouped"' not in html
            assert f"Calibration over time, by {group_by} of resolution" in html
    assert len(set(pages.values())) == 6
    assert report["over_time"]["unit"] == "quarter"


@browser_test
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_report_html_renders_in_chromium(engine: Engine, browser: Any, tmp_path: Path) -> None:
    report = _report(engine, "month")
    html = render(report, "html", title=f"Report {HOSTILE}")
    with _open(browser, tmp_path, html, PHONE) as page:
        assert page.console == []
        assert page.requests == [(tmp_path / f"report-{PHONE}.html").as_uri()]
        # The hostile title and forecaster name are text: shown as typed, no script element.
        assert page.page.title() == f"Report {HOSTILE}"
        assert page.page.locator("h1").inner_text() == f"Report {HOSTILE}"
        assert page.page.locator("script").count() == 0
        assert HOSTILE in page.page.locator("body").inner_text()
        shot = tmp_path / "shot.png"
        page.page.screenshot(path=str(shot), full_page=True)
    from PIL import Image

    with Image.open(shot) as image:
        pixels = image.convert("L")
        darkest, lightest = cast(tuple[int, int], pixels.getextrema())
        histogram = pixels.histogram()
        assert image.size[0] == PHONE
    dark = sum(histogram[:128])
    assert darkest < 60 and lightest > 200  # black text on a white page
    assert 0.005 < dark / sum(histogram) < 0.5  # ink, but not a black screen


@browser_test
def test_report_html_console_check_catches_an_error(browser: Any, tmp_path: Path) -> None:
    """The console and request checks are real: a script error and a fetch are caught."""
    html = (
        "<!DOCTYPE html><title>bad</title><p>x</p><img src='http://127.0.0.1:9/x.png'>"
        "<script>console.error('boom'); undefinedFunction();</script>"
    )
    with _open(browser, tmp_path, html, PHONE) as page:
        page.page.wait_for_load_state("load")
        assert any("boom" in line for line in page.console), page.console
        assert any("undefinedFunction" in line for line in page.console), page.console
        assert "http://127.0.0.1:9/x.png" in page.requests


@browser_test
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("group_by", ["year", "forecaster"])
def test_report_html_one_forecast(
    engine: Engine, browser: Any, tmp_path: Path, group_by: str
) -> None:
    """One period, one group, one bin: every chart still draws inside its axes, readably."""
    led = Ledger(engine)
    led.add([("alice", 0.9, _day(0))], due=_day(40), outcome=False)
    led.save()
    with read_session(engine) as session:
        report = build_report(session, ReportQuery(group_by=group_by), now=NOW)
    for width in (PHONE, DESKTOP):
        with _open(browser, tmp_path, render(report, "html"), width) as page:
            charts = page.page.evaluate(_CHARTS_JS)
            assert page.console == []
        assert len(charts) == (3 if group_by == "forecaster" else 2)
        for chart in charts:
            _check_readable(chart)
            _check_inside(chart)
        _check_time_chart_points(charts[0], report)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_report_period_and_group_intervals(engine: Engine) -> None:
    """A period's or group's Brier interval (the bars of the charts) is the normal one,
    BS +- 1.96 sd / sqrt(n) of the squared errors, within [0, 1]."""
    led = Ledger(engine)
    for p, y in ((0.9, True), (0.8, False), (0.3, False), (0.6, True)):
        led.add([("alice", p, _day(0))], due=_day(40), outcome=y, tags=["t"])
    led.save()
    with read_session(engine) as session:
        report = build_report(session, ReportQuery(group_by="tag"), now=NOW)
    se = [0.01, 0.64, 0.09, 0.16]
    mean = sum(se) / 4
    half = 1.959963984540054 * (sum((v - mean) ** 2 for v in se) / 4) ** 0.5 / 2
    for row in (report["over_time"]["periods"][0], report["groups"][0]):
        assert row["brier"] == pytest.approx(mean)
        interval = row["brier_interval"]
        assert interval["method"] == "normal"
        assert interval["low"] == pytest.approx(max(0.0, mean - half))
        assert interval["high"] == pytest.approx(mean + half)
