"""The report's team view (``tracker report --group-by forecaster``): the numbers of
:func:`reports.team.team` on the same scored estimates, in JSON, text, Markdown and HTML; a ledger
written through the CLI (every question type), on SQLite and PostgreSQL; the report cache."""

from __future__ import annotations

import json
import re
from datetime import datetime
from html import unescape
from typing import Any

import pytest
from freezegun import freeze_time
from sqlalchemy.engine import Engine

from predictions.db import read_session
from reports.build import ReportQuery, build_report
from reports.scored import executor, read_scored
from reports.team import team

T0 = datetime(2025, 1, 1, 9)
RESOLVED = datetime(2025, 3, 15, 9)
NOW = datetime(2025, 6, 1)
MIN_COUNT = 2

#: Binary questions: (outcome, tags, each forecaster's probability; the first one asks it).
#: carol has one question (not ranked at a minimum of two), manifold is a market.
BINARY = [
    ("yes", ["policy"], {"alice": "90%", "bob": "60%", "carol": "20%", "manifold": "80%"}),
    ("no", ["policy"], {"alice": "20%", "bob": "50%"}),
    ("yes", [], {"bob": "40%", "alice": "70%", "manifold": "50%"}),
    ("no", ["china"], {"alice": "30%", "bob": "10%"}),
]
#: Numeric, date and choice questions: how each is asked, alice's forecast, bob's, the outcome.
TYPED = [
    (["--numeric", "0..34"], "--quantiles", "10%=4,50%=8,90%=15", "10%=2,50%=5,90%=9", "11"),
    (
        ["--date", "2025-01-01..2030-12-31"],
        "--quantiles",
        "25%=2026-06,50%=2027-06,75%=2029",
        "25%=2025-06,50%=2025-12,75%=2026-06",
        "2027-01-15",
    ),
    (["--options", "Ada,Bo,Cy"], "-p", "50,30,20", "20,30,50", "Bo"),
]


def _ok(cli: Any, *args: str) -> str:
    result = cli(*args)
    assert result.exit_code == 0, result.output
    return str(result.output)


def make_ledger(cli: Any) -> None:
    """The ledger the team tests read, written through ``tracker`` (so on the hash chain):
    binary questions of :data:`BINARY`, a numeric, a date and a choice question
    (:data:`TYPED`) forecast by alice and bob, all resolved."""
    ids: list[tuple[str, str]] = []
    with freeze_time(T0):
        for outcome, tags, said in BINARY:
            (first, p), *others = said.items()
            tagged = [arg for tag in tags for arg in ("--tag", tag)]
            fid = _ok(
                cli, "add", "Binary?", "-p", p, "--due", "2025-03-01", "--criteria", "c",
                "--by", first, *tagged, "--json",
            )  # fmt: skip
            forecast_id = str(json.loads(fid)["id"])
            for who, q in others:
                _ok(cli, "update", forecast_id, "-p", q, "--by", who)
            ids.append((forecast_id, outcome))
        for asked, flag, alice, bob, outcome in TYPED:
            fid = _ok(
                cli, "add", "Typed?", *asked, flag, alice, "--due", "2025-03-01",
                "--criteria", "c", "--by", "alice", "--tag", "policy", "--json",
            )  # fmt: skip
            forecast_id = str(json.loads(fid)["id"])
            _ok(cli, "update", forecast_id, flag, bob, "--by", "bob")
            ids.append((forecast_id, outcome))
    with freeze_time(RESOLVED):
        for forecast_id, outcome in ids:
            _ok(cli, "resolve", forecast_id, outcome, "--by", "alice")


@pytest.fixture
def ledger(cli: Any) -> Any:
    make_ledger(cli)
    return cli


def _report(cli: Any, fmt: str, *extra: str) -> str:
    with freeze_time(NOW):
        return _ok(cli, "report", "--format", fmt, "--min-count", str(MIN_COUNT), *extra)


def _expected(engine: Engine) -> dict[str, Any]:
    with read_session(engine) as session:
        view = team(read_scored(executor(session)), min_count=MIN_COUNT)
    return json.loads(json.dumps(view.as_dict()))


def _lines(view: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every line of the view with the kind of row it is."""
    return [
        (kind, s) for kind in ("ranked", "unranked", "aggregates", "markets") for s in view[kind]
    ]


def _signed(value: float | None) -> str:
    if value is None:
        return "-"
    text = f"{value:+.3f}"
    return "0.000" if float(text) == 0 else text


def test_team_report_json_is_reports_team(ledger: Any, engine: Engine) -> None:
    got = json.loads(_report(ledger, "json", "--group-by", "forecaster"))["team"]
    assert got == _expected(engine)
    assert [s["name"] for s in got["ranked"]] == ["alice", "bob"]
    assert [s["rank"] for s in got["ranked"]] == [1, 2]
    assert [(s["name"], s["count"], s["rank"]) for s in got["unranked"]] == [("carol", 1, None)]
    assert [s["name"] for s in got["aggregates"]] == ["team median", "team geometric mean of odds"]
    assert [s["name"] for s in got["markets"]] == ["manifold"]
    assert got["min_count"] == MIN_COUNT


@pytest.mark.parametrize("fmt", ["text", "md"])
def test_team_report_text_and_markdown_show_every_line(
    ledger: Any, engine: Engine, fmt: str
) -> None:
    out = _report(ledger, fmt, "--group-by", "forecaster")
    section = out[out.index("Team (" if fmt == "text" else "## Team") :]
    for kind, s in _lines(_expected(engine)):
        numbers = [str(s["count"]), f"{s['brier']:.3f}", _signed(s["relative_brier"])]
        numbers.append(str(s["relative_count"]))
        rank = {"ranked": str(s["rank"]), "unranked": "-" if fmt == "text" else "not ranked"}
        rank |= {"aggregates": "-" if fmt == "text" else "aggregate"}
        rank |= {"markets": "-" if fmt == "text" else "market"}
        cells = [rank[kind], s["name"], *numbers]
        line = next(x for x in section.splitlines() if re.search(rf"\b{s['name']}\b", x))
        words = [w for w in re.split(r"\s*\|\s*|\s{2,}", line.strip()) if w]
        assert words == cells, line


def test_team_report_html_table_is_reports_team(ledger: Any, engine: Engine) -> None:
    html = _report(ledger, "html", "--group-by", "forecaster")
    rows = dict(re.findall(r'<tr class="\w+" data-name="([^"]+)">(.*?)</tr>', html))
    for kind, s in _lines(_expected(engine)):
        cells = [
            unescape(re.sub("<[^>]+>", "", c))
            for c in re.findall(r"<td[^>]*>(.*?)</td>", rows[s["name"]])
        ]
        rank = str(s["rank"]) if kind == "ranked" else "-"
        numbers = [str(s["count"]), f"{s['brier']:.3f}", _signed(s["relative_brier"])]
        assert cells == [rank, s["name"], *numbers, str(s["relative_count"])]
    assert html.index('id="team"') > html.index('id="grouped"')


def test_team_report_only_grouped_by_forecaster(ledger: Any) -> None:
    assert json.loads(_report(ledger, "json"))["team"] is None
    assert "Team (" not in _report(ledger, "text")
    assert 'id="team"' not in _report(ledger, "html", "--group-by", "tag")


def test_team_report_min_count_moves_the_line(ledger: Any) -> None:
    view = json.loads(_report(ledger, "json", "--group-by", "forecaster", "--min-count", "5"))
    assert view["team"]["ranked"] == []
    assert [s["name"] for s in view["team"]["unranked"]] == ["alice", "bob", "carol"]


@pytest.mark.parametrize("bad", ["0", "-3"])
def test_team_report_refuses_a_bad_min_count(ledger: Any, bad: str) -> None:
    result = ledger("report", "--group-by", "forecaster", "--min-count", bad)
    assert result.exit_code == 2
    assert result.output.splitlines() == [
        f"Error: min-count: got {bad}, expected a whole number of questions, at least 1"
    ]


class _JsonCache:
    """A cache as the service's pages keep it: JSON text by key."""

    def __init__(self) -> None:
        self.kept: dict[str, str] = {}

    def get(self, key: str) -> dict[str, Any] | None:
        text = self.kept.get(key)
        return None if text is None else dict(json.loads(text))

    def put(self, key: str, value: dict[str, Any]) -> None:
        self.kept[key] = json.dumps(value, allow_nan=False)


def test_report_cache_returns_the_same_report_until_a_write(ledger: Any, engine: Engine) -> None:
    query = ReportQuery(group_by="forecaster", min_count=MIN_COUNT)
    cache = _JsonCache()
    with read_session(engine) as session:
        fresh = build_report(session, query, now=NOW)
        first = build_report(session, query, now=NOW, cache=cache)
        again = build_report(session, query, now=NOW, cache=cache)
    assert len(cache.kept) == 1
    assert first == fresh and again == fresh
    # a new question and an estimate on it change no score: the kept parts serve, counts move
    with freeze_time(NOW):
        _ok(ledger, "add", "Open?", "-p", "50%", "--due", "2030", "--criteria", "c")
        _ok(ledger, "update", str(len(BINARY) + len(TYPED) + 1), "-p", "60%", "--by", "bob")
    with read_session(engine) as session:
        grown = build_report(session, query, now=NOW, cache=cache)
        assert grown == build_report(session, query, now=NOW)
    assert len(cache.kept) == 1
    assert grown["counts"]["questions"] == fresh["counts"]["questions"] + 1
    assert grown["team"] == fresh["team"]
    # a reopening can change every score: a new entry
    with freeze_time(NOW):
        _ok(ledger, "reopen", "1", "--note", "the source was wrong")
    with read_session(engine) as session:
        changed = build_report(session, query, now=NOW, cache=cache)
        assert changed == build_report(session, query, now=NOW)
    assert len(cache.kept) == 2
    assert changed["counts"]["scored"] == fresh["counts"]["scored"] - len(BINARY[0][2])
    assert changed["team"] != fresh["team"]
