"""The track-record and team pages: exactly the numbers of ``tracker report --format json`` for the
same filters (the page's sections are the report's own HTML of that JSON), every question type,
the ranking's minimum count, bad filters, the cache across a write; on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from freezegun import freeze_time

from reports.render import html_part
from service.record_pages import cache_folder
from tests.reports.test_team_report import NOW, make_ledger
from tests.service.support import add_user, live_server, sign_in
from tests.service.test_pages import _LAYOUT_JS, _NO_BROWSER, CHROMIUM

LINKS = {"forecaster": "/record/forecasters/"}


@pytest.fixture
def site(
    app: FastAPI, client: TestClient, cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[TestClient, Any]:
    """The ledger of the team report's tests, and a viewer named alice signed in."""
    monkeypatch.setenv("TRACKER_CACHE_DIR", str(tmp_path / "cache"))
    make_ledger(cli)
    password = add_user(app, "alice", "viewer")
    assert sign_in(client, "alice", password).status_code == 303
    return client, cli


def _cli_report(cli: Any, *args: str) -> dict[str, Any]:
    with freeze_time(NOW):
        result = cli("report", "--format", "json", *args)
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.output))


def _part(html: str) -> str:
    """The report's piece on a page."""
    start = '<div class="report">\n'
    return html[html.index(start) + len(start) : html.rindex("\n</div>\n</div>")]


def _sections(html: str) -> str:
    """A rendered report body without its time of generation."""
    return re.sub(r'<p class="meta">Generated [^\n]*\n', "", html, count=1)


def _get(client: TestClient, path: str) -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text
    assert "style=" not in page.text
    return page.text


CASES = [
    ("/record", ["--by", "alice"], {}),
    ("/record?group_by=horizon&since=2025-02", ["--by", "alice", "--group-by", "horizon", "--since", "2025-02"], {"since": "2025-02"}),
    ("/record/forecasters/bob?group_by=month", ["--by", "bob", "--group-by", "month"], {}),
    ("/record/forecasters/manifold", ["--by", "manifold"], {}),
    ("/record/tags/policy?group_by=forecaster&until=2025-12", ["--tag", "policy", "--group-by", "forecaster", "--until", "2025-12"], {"until": "2025-12"}),
    ("/record/team", [], {}),
    ("/record/team?group_by=tag&min_count=2", ["--group-by", "tag", "--min-count", "2"], {}),
    ("/record/team?group_by=forecaster&min_count=2", ["--group-by", "forecaster", "--min-count", "2"], {}),
]  # fmt: skip


@pytest.mark.parametrize(("path", "args", "typed"), CASES)
def test_record_pages_show_the_reports_numbers(
    site: tuple[TestClient, Any], path: str, args: list[str], typed: dict[str, str]
) -> None:
    client, cli = site
    report = _cli_report(cli, *args)
    typed = {"since": typed.get("since"), "until": typed.get("until")}
    page = _get(client, path)
    body = _part(page)
    assert _sections(body.strip()) == _sections(
        html_part(report, "body", typed=typed, links=LINKS).strip()
    )


def test_record_page_covers_every_question_type(site: tuple[TestClient, Any]) -> None:
    client, cli = site
    report = _cli_report(cli, "--by", "alice")
    page = _get(client, "/record")
    for kind in ("numeric", "date", "choice"):
        assert report["types"][kind]["count"] == 1
        assert f'<h2 id="{kind}">' in page
    assert page.count('<svg class="pit"') == 2 and page.count('<svg class="coverage"') == 2
    assert page.count('<svg class="rel"') == 2  # the binary calibration and the choice options'
    numeric = report["types"]["numeric"]["overall"]
    for iv in numeric["intervals"]:
        assert f'data-level="{iv["level"]}" data-share="{iv["share"]}"' in page
    assert f"{numeric['crps']:.3f}" in page
    assert '<svg class="time' in page  # scores over time
    assert "<h2>By horizon</h2>" in page


def test_team_page_is_the_reports_team_view(site: tuple[TestClient, Any]) -> None:
    client, cli = site
    report = _cli_report(cli, "--group-by", "forecaster", "--min-count", "2")
    page = _get(client, "/team?min_count=2")
    table = _part(page)
    assert table.strip() == html_part(report, "team", links=LINKS).strip()
    team = report["team"]
    assert [s["name"] for s in team["ranked"]] == ["alice", "bob"]
    for s in team["ranked"]:
        assert f'<tr class="ranked" data-name="{s["name"]}"><td>{s["rank"]}</td>' in page
    # carol forecast one question, fewer than the minimum: listed with her count, not ranked
    assert [(s["name"], s["count"]) for s in team["unranked"]] == [("carol", 1)]
    assert '<tr class="unranked" data-name="carol"><td>-</td>' in page
    for name in ("team median", "team geometric mean of odds", "manifold"):
        assert f'<tr class="beside" data-name="{name}"><td>-</td>' in page
    for kind in ("numeric", "date", "choice"):  # the other types' scores by forecaster
        rows = report["types"][kind]["breakdowns"]["forecaster"]
        assert [r["key"] for r in rows] == ["alice", "bob"]
        assert f'<h3 id="team-{kind}">' in page
    crps = report["types"]["numeric"]["breakdowns"]["forecaster"][1]["crps"]
    assert f"<td>bob</td><td>1</td><td>{crps:.3f}</td>" in page


def test_team_page_ranks_from_the_minimum_count(site: tuple[TestClient, Any]) -> None:
    client, _ = site
    page = _get(client, "/team")  # the default minimum, 10 questions: nobody yet
    assert 'class="ranked"' not in page
    for name in ("alice", "bob", "carol"):
        assert f'<tr class="unranked" data-name="{name}">' in page
    assert 'value="10"' in page


def test_record_pages_refuse_bad_filters(site: tuple[TestClient, Any]) -> None:
    client, _ = site
    for path, detail in [
        ("/record?group_by=week", "group-by: got 'week', expected one of month, quarter, year"),
        ("/record/team?since=soon", "since: got 'soon', expected a date"),
        ("/team?min_count=0", "min-count: got 0, expected a whole number of questions"),
        ("/record/forecasters/nobody", "forecaster: got 'nobody', expected the id of an existing"),
    ]:
        page = client.get(path)
        assert page.status_code == (404 if "nobody" in path else 422), path
        assert detail in page.text.replace("&#39;", "'"), page.text


def test_record_pages_need_a_sign_in(client: TestClient) -> None:
    for path in ("/record", "/record/team", "/team", "/record/tags/policy"):
        page = client.get(path)
        assert page.status_code == 303 and page.headers["location"].startswith("/login?next=")
    css = client.get("/static/report.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert "svg.wide" in css.text


def test_record_pages_cache_follows_a_write(site: tuple[TestClient, Any], tmp_path: Path) -> None:
    client, cli = site
    before = _get(client, "/team?min_count=2")
    assert list(cache_folder().glob("*/*.json"))
    assert cache_folder().is_relative_to(tmp_path)
    with freeze_time(NOW):
        assert cli("reopen", "1", "--note", "the source was wrong").exit_code == 0
    after = _get(client, "/team?min_count=2")
    report = _cli_report(cli, "--group-by", "forecaster", "--min-count", "2")
    assert after != before
    table = _part(after)
    assert table.strip() == html_part(report, "team", links=LINKS).strip()


def test_report_api_takes_the_minimum_count(site: tuple[TestClient, Any]) -> None:
    """``tracker --server URL report --min-count N`` asks the API for the same team view."""
    client, cli = site
    report = _cli_report(cli, "--group-by", "forecaster", "--min-count", "2")
    got = client.get("/api/v1/report", params={"group_by": "forecaster", "min_count": 2})
    assert got.status_code == 200, got.text
    assert got.json()["team"] == report["team"]
    assert [s["name"] for s in got.json()["team"]["ranked"]] == ["alice", "bob"]


#: Text beyond the screen's right edge that is not inside a table's horizontal scroller (the
#: report's wide tables scroll on a phone; nothing else may run off the screen).
_OFF_SCREEN_JS = """() => [...document.querySelectorAll('main *')]
  .filter(e => !e.children.length && e.textContent.trim() && !e.closest('.scroll'))
  .filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
  .map(e => e.textContent.slice(0, 40))"""


@pytest.mark.skipif(_NO_BROWSER is not None, reason=_NO_BROWSER or "")
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_record_pages_in_chromium_at_phone_and_desktop_widths(
    site: tuple[TestClient, Any], app: FastAPI
) -> None:
    """Every record page at 390 and 1280 px: no overlapping or tiny chart text, nothing off the
    screen but the wide tables' scrollers, no console error (a CSP violation is one)."""
    from playwright.sync_api import sync_playwright

    client, _ = site
    cookies = [{"name": c.name, "value": c.value} for c in client.cookies.jar]
    paths = [*(path for path, _, _ in CASES), "/team?min_count=2", "/team"]
    console: list[str] = []
    with live_server(app) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        for width in (390, 1280):
            context = browser.new_context(viewport={"width": width, "height": 900})
            context.add_cookies([{**c, "url": base} for c in cookies])
            page = context.new_page()
            page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
            for path in paths:
                page.goto(base + path)
                assert page.url == base + path  # (signed in: no redirect to /login)
                found = [p for p in page.evaluate(_LAYOUT_JS) if not p.startswith("clipped: ")]
                assert found == [], (width, path)
                assert page.evaluate(_OFF_SCREEN_JS) == [], (width, path)
            context.close()
        browser.close()
    assert console == []
