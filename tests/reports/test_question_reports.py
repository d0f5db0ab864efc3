"""Reports of numeric, date and multiple-choice questions on real databases (SQLite and
PostgreSQL), forecasts made through the store: which estimate scores (the one rule of
reports.scored), each type's own scores and breakdowns, the renderings (text, Markdown, JSON,
HTML in Chromium), the CLI and the sqlite3 fast path."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from freezegun import freeze_time
from sqlalchemy.engine import Engine

from predictions import lite, store
from predictions.db import read_session, write_session
from predictions.questions import GRID, Question, rounded
from reports import distributions, scored, scoring
from reports.build import ReportQuery, build_report
from reports.render import render
from tests.reports.test_report_html import (
    _CHARTS_JS,
    DESKTOP,
    PHONE,
    _check_readable,
    _open,
    browser,  # noqa: F401 (the fixture)
    browser_test,
)

T0 = datetime(2026, 1, 5, 12, 0)
DUE = datetime(2026, 6, 1)
NOW = datetime(2027, 1, 1)


def _seconds(at: str) -> float:
    return datetime.fromisoformat(at).replace(tzinfo=UTC).timestamp()


def _cdf(low: float = 0.0, high: float = 1.0, bend: float = 1.0) -> tuple[float, ...]:
    """A valid CDF on the grid: ``low`` at or below the range, ``1 - high`` above it, the mass
    between spread as ``(u + u ** bend) / 2`` (every bin holds its minimum)."""
    return rounded(
        low + (high - low) * (k / (GRID - 1) + (k / (GRID - 1)) ** bend) / 2 for k in range(GRID)
    )


NUMERIC = Question("numeric", lower=0.0, upper=34.0, open_upper=True)
LOG = Question("numeric", lower=1.0, upper=1000.0, log=True, open_lower=True)
DATE = Question("date", lower=_seconds("2026-01-01"), upper=_seconds("2036-01-01"), open_upper=True)
ORDERED = Question("choice", options=("low", "mid", "high"), ordered=True)
NAMED = Question("choice", options=("DeepSeek", "Qwen", "Moonshot", "Other"))


def _at(days: float) -> datetime:
    return T0 + timedelta(days=days)


def _ledger(engine: Engine) -> dict[str, int]:
    """Forecasts of every type by alice and bob, with histories that test the scoring rule."""
    ids: dict[str, int] = {}

    def add(name: str, question: Question | None, first: Any, tags: list[str]) -> None:
        with freeze_time(T0), write_session(engine) as s:
            kwargs: dict[str, Any] = {"probability": first}
            if question is not None:
                kwargs = {"question": question, "values": first}
            f = store.add_forecast(
                s, title=name, criteria="c", due=DUE, author="alice", tags=tags, **kwargs
            )
        ids[name] = f.id

    def estimate(name: str, who: str, values: Any, days: float) -> None:
        with freeze_time(_at(days)), write_session(engine) as s:
            store.add_estimate(s, ids[name], who, values)

    def resolve(name: str, value: Any, days: float) -> None:
        with freeze_time(_at(days)), write_session(engine) as s:
            store.resolve(s, ids[name], value, by="alice")

    add("numeric", NUMERIC, _cdf(high=0.9), ["ai"])
    estimate("numeric", "bob", _cdf(high=0.95, bend=0.5), 10)
    estimate("numeric", "alice", _cdf(high=0.97, bend=2.0), 20)  # alice's scored one
    add("log", LOG, _cdf(low=0.05, bend=3.0), ["ai", "china"])
    add("date", DATE, _cdf(high=0.9, bend=2.0), ["china"])
    estimate("date", "bob", _cdf(high=0.8), 30)
    add("ordered", ORDERED, (0.2, 0.5, 0.3), [])
    estimate("ordered", "bob", (0.1, 0.3, 0.6), 5)
    add("named", NAMED, (0.4, 0.3, 0.2, 0.1), ["ai"])
    add("binary", None, 0.7, ["ai"])
    # numeric: resolved on day 40 at 11; an estimate at that very instant does not count.
    estimate("numeric", "bob", _cdf(high=0.92, bend=3.0), 40)
    resolve("numeric", 11.0, 40)
    resolve("log", 0.5, 50)  # beyond the open lower bound
    resolve("date", _seconds("2036-06-01"), 60)  # beyond the open upper bound
    resolve("ordered", 2.0, 70)
    resolve("named", 1.0, 80)
    resolve("binary", True, 90)
    return ids


def _report(source: Any, **kwargs: Any) -> dict[str, Any]:
    if isinstance(source, Engine):
        with read_session(source) as session:
            return build_report(session, ReportQuery(**kwargs), now=NOW)
    return build_report(source, ReportQuery(**kwargs), now=NOW)


def _expected_numeric() -> dict[str, np.ndarray]:
    """The rows the rule scores for the numeric type, in (question, forecaster) order: numeric
    (alice's day-20 CDF, bob's day-10 one), then log (alice)."""
    cdf = np.array([_cdf(high=0.97, bend=2.0), _cdf(high=0.95, bend=0.5), _cdf(low=0.05, bend=3.0)])
    u = np.array([NUMERIC.scaled(11.0), NUMERIC.scaled(11.0), LOG.scaled(0.5)])
    return {"cdf": cdf, "u": u}


def test_question_report_scores_the_last_estimate_before_due_and_resolution(
    engine: Engine,
) -> None:
    ids = _ledger(engine)
    with read_session(engine) as session:
        found = scored.read_scored_types(scored.executor(session))
    numeric = found["numeric"]
    assert numeric.forecast_id.tolist() == [ids["numeric"], ids["numeric"], ids["log"]]
    assert [numeric.names[w] for w in numeric.who] == ["alice", "bob", "alice"]
    expected = _expected_numeric()
    np.testing.assert_array_equal(numeric.values, expected["cdf"])
    assert numeric.outcome.tolist() == [11.0, 11.0, 0.5]
    assert numeric.spec["log"].tolist() == [False, False, True]
    assert numeric.spec["open_lower"].tolist() == [False, False, True]
    date = found["date"]
    assert [date.names[w] for w in date.who] == ["alice", "bob"]
    assert date.spec["lower"].tolist() == [DATE.lower, DATE.lower]
    assert date.spec["upper"].tolist() == [DATE.upper, DATE.upper]
    choice = found["choice"]
    assert [choice.names[w] for w in choice.who] == ["alice", "bob", "alice"]
    assert choice.options.tolist() == [3, 3, 4]
    np.testing.assert_array_equal(
        choice.values, [[0.2, 0.5, 0.3, 0], [0.1, 0.3, 0.6, 0], [0.4, 0.3, 0.2, 0.1]]
    )
    assert choice.spec["ordered"].tolist() == [True, True, False]
    # Binary reads its own questions only.
    with read_session(engine) as session:
        binary = scored.read_scored(scored.executor(session))
    assert binary.forecast_id.tolist() == [ids["binary"]]


def test_question_report_each_type_with_its_own_scores(engine: Engine) -> None:
    _ledger(engine)
    r = _report(engine)
    assert r["counts"]["scored"] == 1 and r["overall"]["count"] == 1  # binary alone
    types = r["types"]
    assert {k: t["count"] for k, t in types.items()} == {"numeric": 3, "date": 2, "choice": 3}
    e = _expected_numeric()
    o = types["numeric"]["overall"]
    assert o["crps"] == pytest.approx(distributions.crps(e["cdf"], e["u"]).mean(), abs=1e-15)
    assert o["log"] == pytest.approx(distributions.log_score(e["cdf"], e["u"]).mean(), abs=1e-15)
    baseline = distributions.baseline_score(e["cdf"], e["u"], [0, 0, 1], [1, 1, 0])
    assert o["baseline"] == pytest.approx(baseline.mean(), abs=1e-12)
    pit = distributions.pit(e["cdf"], e["u"])
    assert pit[2] == pytest.approx(0.025)  # in the mass below the open lower bound: its middle
    assert o["pit_histogram"] == distributions.pit_histogram(pit).tolist()
    for interval in o["intervals"]:
        hits = distributions.covered(e["cdf"], e["u"], interval["level"])
        assert interval["covered"] == hits.sum()
        assert o["coverage"][str(round(100 * interval["level"]))] == hits.mean()
    # Dates: the CRPS in days too; the outcome beyond the open upper bound.
    d = types["date"]["overall"]
    cdf = np.array([_cdf(high=0.9, bend=2.0), _cdf(high=0.8)])
    u = np.full(2, DATE.scaled(_seconds("2036-06-01")))
    crps = distributions.crps(cdf, u)
    assert d["crps"] == pytest.approx(crps.mean(), abs=1e-15)
    days = (DATE.upper - DATE.lower) / 86400
    assert d["crps_days"] == pytest.approx(crps.mean() * days, rel=1e-12)
    assert d["pit_histogram"][9] == 2  # (0.9 + 1) / 2 and (0.8 + 1) / 2
    # Choice: Brier and log over all three, RPS over the two ordered ones.
    c = types["choice"]["overall"]
    p = np.array([[0.2, 0.5, 0.3, 0], [0.1, 0.3, 0.6, 0], [0.4, 0.3, 0.2, 0.1]])
    n, k = np.array([3, 3, 4]), np.array([2, 2, 1])
    assert c["brier"] == pytest.approx(distributions.choice_brier(p, n, k).mean(), abs=1e-15)
    assert c["log"] == pytest.approx(distributions.choice_log_score(p, n, k).mean(), abs=1e-15)
    rps = distributions.ranked_probability_score(p[:2], n[:2], k[:2])
    assert c["rps"] == pytest.approx(rps.mean(), abs=1e-15) and c["rps_count"] == 2
    table = distributions.option_calibration(p, n, k)
    assert [b["count"] for b in c["calibration"]] == [b.count for b in table]
    assert sum(b["count"] for b in c["calibration"]) == 10  # every option of every forecast
    json.dumps(r, allow_nan=False)


def test_question_report_breakdowns_and_over_time(engine: Engine) -> None:
    _ledger(engine)
    numeric = _report(engine, group_by="forecaster")["types"]["numeric"]
    by_who = {g["key"]: g for g in numeric["breakdowns"]["forecaster"]}
    assert {k: g["count"] for k, g in by_who.items()} == {"alice": 2, "bob": 1}
    e = _expected_numeric()
    crps = distributions.crps(e["cdf"], e["u"])
    assert by_who["alice"]["crps"] == pytest.approx(crps[[0, 2]].mean(), abs=1e-15)
    assert numeric["groups"] == numeric["breakdowns"]["forecaster"]
    by_tag = {g["key"]: g["count"] for g in numeric["breakdowns"]["tag"]}
    assert by_tag == {"ai": 3, "china": 1}  # the log question has both tags
    assert [g["key"] for g in numeric["breakdowns"]["horizon"]] == ["3-12 months"]
    months = _report(engine, group_by="month")["types"]["numeric"]
    # (resolved on days 40 and 50: both in February)
    assert [(p["key"], p["count"]) for p in months["over_time"]["periods"]] == [("2026-02", 3)]
    assert months["groups"] == months["over_time"]["periods"]
    choice = _report(engine, by="bob")["types"]["choice"]
    assert choice["count"] == 1 and choice["overall"]["rps_count"] == 1
    assert _report(engine, tag="china")["types"]["choice"] == {"count": 0}


def test_question_report_without_binary_questions_says_so(engine: Engine) -> None:
    with freeze_time(T0), write_session(engine) as s:
        f = store.add_forecast(
            s,
            title="n",
            criteria="c",
            due=DUE,
            author="alice",
            question=NUMERIC,
            values=_cdf(high=0.9),
        )
    with freeze_time(_at(200)), write_session(engine) as s:
        store.resolve(s, f.id, 34.0, by="alice")
    r = _report(engine)
    assert r["overall"] == {"count": 0} and r["findings"] == []
    assert r["types"]["numeric"]["count"] == 1
    text = render(r, "text")
    assert "No binary forecasts to score." in text and "Numeric questions" in text
    assert "No resolved forecasts" not in text
    empty = _report(engine, by="nobody")
    assert empty["findings"] == ["No resolved forecasts to score yet."]
    assert "No resolved forecasts to score yet." in render(empty, "md")


def test_question_report_renders_every_type(engine: Engine) -> None:
    _ledger(engine)
    r = _report(engine, group_by="forecaster")
    text = render(r, "text")
    for line in (
        "Binary questions",
        "Numeric questions",
        "Date questions",
        "Multiple-choice questions",
        "PIT histogram",
        "RPS",
        "days",
    ):
        assert line in text, line
    md = render(r, "md")
    assert "## Numeric questions" in md and "### By forecaster" in md
    assert "| 90% | " in md and "PIT histogram (10 bins" in md
    html = render(r, "html")
    for marker in ('id="numeric"', 'id="date"', 'id="choice"', 'class="pit"', 'class="coverage"'):
        assert marker in html, marker
    assert json.loads(render(r, "json"))["types"]["date"]["count"] == 2


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_question_report_through_a_bare_sqlite3_connection_equals_the_session(
    engine: Engine,
) -> None:
    _ledger(engine)
    conn = lite.connect(Path(engine.url.database or ""))
    assert conn is not None
    try:
        for filters in ({}, {"by": "bob"}, {"tag": "ai", "group_by": "tag"}):
            assert _report(conn, **filters) == _report(engine, **filters)
    finally:
        conn.close()


def test_question_report_from_the_cli(engine: Engine, cli: Any) -> None:
    _ledger(engine)
    result = cli("report", "--format", "json", "--group-by", "tag")
    assert result.exit_code == 0, result.output
    types = json.loads(result.output)["types"]
    assert [g["key"] for g in types["numeric"]["groups"]] == ["ai", "china"]
    text = cli("report")
    assert "Numeric questions" in text.output and "coverage" in text.output


def test_question_report_option_calibration_is_the_binary_rule(engine: Engine) -> None:
    _ledger(engine)
    c = _report(engine)["types"]["choice"]["overall"]["calibration"]
    flat_p = [0.2, 0.5, 0.3, 0.1, 0.3, 0.6, 0.4, 0.3, 0.2, 0.1]
    flat_y = [0, 0, 1, 0, 0, 1, 0, 1, 0, 0]
    table = scoring.calibration_table(flat_p, flat_y)
    assert [(b["count"], b["yes"]) for b in c] == [(b.count, b.yes) for b in table]


@browser_test
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("width", [PHONE, DESKTOP])
def test_question_report_html_charts_are_readable(
    engine: Engine,
    browser: Any,  # noqa: F811 (the fixture)
    tmp_path: Path,
    width: int,
) -> None:
    _ledger(engine)
    r = _report(engine)
    with _open(browser, tmp_path, render(r, "html"), width) as page:
        charts = page.page.evaluate(_CHARTS_JS)
        overflow = page.page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert page.console == []
    assert overflow[0] <= overflow[1], f"the page scrolls sideways at {width} px"
    kinds = [c["cls"] for c in charts]
    assert kinds[-5:] == ["pit", "coverage", "pit", "coverage", "rel"]
    for chart in charts:
        _check_readable(chart)
    pit = charts[-5]
    counts = r["types"]["numeric"]["overall"]["pit_histogram"]
    assert [int(b["data"]["count"]) for b in pit["bars"]] == counts
    tallest = max(b["box"]["bottom"] - b["box"]["top"] for b in pit["bars"])
    for bar, count in zip(pit["bars"], counts, strict=True):
        height = bar["box"]["bottom"] - bar["box"]["top"]
        assert height == pytest.approx(tallest * count / max(counts), abs=1.0)
    coverage = charts[-4]
    intervals = r["types"]["numeric"]["overall"]["intervals"]
    area = coverage["area"]
    for point, interval in zip(coverage["points"], intervals, strict=True):
        assert float(point["data"]["share"]) == interval["share"]
        x = (point["dot"]["left"] + point["dot"]["right"]) / 2
        left, right = area["left"], area["right"]
        assert x == pytest.approx(left + interval["share"] * (right - left), abs=0.75)


def test_question_report_daily_email_snapshot_covers_every_type(engine: Engine) -> None:
    from zoneinfo import ZoneInfo

    from reports.facts import load_facts
    from reports.mail import make_message
    from reports.notify import LastReport, daily_context

    _ledger(engine)
    with read_session(engine) as session:
        facts = load_facts(session)
    now = _at(91)
    ctx = daily_context(
        ["alice"],
        facts,
        now=now,
        today=now.date(),
        tz=ZoneInfo("UTC"),
        last=LastReport(T0.date(), T0),  # (every resolution since is new)
        overdue_interval_days=1,
    )
    assert ctx is not None
    resolved = {r["title"]: r for r in ctx["resolved"]}
    numeric = resolved["numeric"]
    assert numeric["outcome"] == "11"
    [said] = numeric["said"]
    e = _expected_numeric()
    crps = distributions.crps(e["cdf"], e["u"])
    assert said["score_name"] == "CRPS" and said["brier"] == f"{crps[0]:.3f}"
    assert said["probability"].startswith("median ")
    assert resolved["named"]["outcome"] == "Qwen"
    assert resolved["named"]["said"][0]["probability"] == "DeepSeek 40%"
    assert resolved["binary"]["outcome"] == "YES"
    [calibration] = ctx["calibration"]
    assert calibration["all_time"] == {"brier": "0.090", "count": 1}  # binary alone
    types = {t["kind"]: t for t in calibration["types"]}
    assert types["numeric"]["score"] == "CRPS"
    assert types["numeric"]["all_time"] == {"value": f"{crps[[0, 2]].mean():.3f}", "count": 2}
    assert types["choice"]["score"] == "Brier" and types["choice"]["all_time"]["count"] == 2
    text = make_message("daily", ctx).text
    assert "numeric questions: CRPS" in text and "(CRPS " in text


def test_question_report_daily_email_shows_an_open_typed_forecast_as_list_does(
    engine: Engine,
) -> None:
    """A numeric or choice question falling due shows each forecaster's latest forecast as
    ``tracker list`` does (``median 8``, ``DeepSeek 35%``), not a blank."""
    from zoneinfo import ZoneInfo

    from predictions.questions import parse_forecast, parse_options, parse_range
    from reports.facts import load_facts
    from reports.notify import daily_context

    numeric = parse_range("numeric", "0..34", open_bounds=None, log=False)
    choice = parse_options("DeepSeek,Alibaba Qwen,Other", ordered=False)
    with write_session(engine) as s:
        for title, question, text in (
            ("provinces", numeric, "10%=4,50%=8,90%=15"),
            ("lab", choice, "35,40,25"),
        ):
            store.add_forecast(
                s, title=title, criteria="c", due=_at(1), author="alice", question=question,
                values=parse_forecast(question, text), created_at=T0, allow_past_due=True,
            )  # fmt: skip
    with read_session(engine) as session:
        facts = load_facts(session)
    now = _at(0.5)
    ctx = daily_context(
        ["alice"], facts, now=now, today=now.date(), tz=ZoneInfo("UTC"), last=None,
        overdue_interval_days=1,
    )  # fmt: skip
    assert ctx is not None
    shown = {f["title"]: f["said"][0]["probability"] for f in ctx["due_today"]}
    assert shown == {"provinces": "median 8", "lab": "Alibaba Qwen 40%"}
