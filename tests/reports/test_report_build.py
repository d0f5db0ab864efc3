"""Report building on real databases (SQLite and PostgreSQL): which forecasts count, which estimate
scores, filters, breakdowns, findings, and the real PredictionBook and ForecastBench data."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import insert
from sqlalchemy.engine import Engine

from predictions.db import read_session
from predictions.models import Estimate, Forecast, Tag
from reports import scored, scoring
from reports.build import ReportQuery, build_report, parse_since, parse_until

NOW = datetime(2026, 1, 1)
T0 = datetime(2025, 1, 1)


class Ledger:
    """A tiny loader: forecasts and estimates inserted directly (imported history may hold 0, 1)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.forecasts: list[dict[str, Any]] = []
        self.estimates: list[dict[str, Any]] = []
        self.tags: list[dict[str, Any]] = []

    def add(
        self,
        estimates: Iterable[tuple[str, float, datetime]],
        *,
        due: datetime,
        outcome: bool | None = None,
        status: str = "resolved",
        resolved_at: datetime | None = None,
        tags: Iterable[str] = (),
        title: str = "Q",
    ) -> int:
        fid = len(self.forecasts) + 1
        if status == "resolved" and resolved_at is None:
            resolved_at = due
        self.forecasts.append(
            {
                "id": fid,
                "title": title,
                "criteria": "c",
                "due": due,
                "created_at": T0 - timedelta(days=400),
                "author": "alice",
                "status": status,
                "outcome": outcome if status == "resolved" else None,
                "resolved_at": resolved_at,
            }
        )
        for who, p, at in estimates:
            self.estimates.append(
                {"forecast_id": fid, "forecaster": who, "probability": p, "made_at": at}
            )
        self.tags.extend({"forecast_id": fid, "name": t} for t in tags)
        return fid

    def save(self) -> None:
        with self.engine.begin() as conn:
            if self.forecasts:
                conn.execute(insert(Forecast.__table__), self.forecasts)
            if self.estimates:
                conn.execute(insert(Estimate.__table__), self.estimates)
            if self.tags:
                conn.execute(insert(Tag.__table__), self.tags)


def _report(engine: Engine, **kwargs: Any) -> dict[str, Any]:
    with read_session(engine) as session:
        return build_report(session, ReportQuery(**kwargs), now=NOW)


def _day(n: float) -> datetime:
    return T0 + timedelta(days=n)


def test_report_scores_last_estimate_before_due_and_resolution(engine: Engine) -> None:
    led = Ledger(engine)
    # 1: three estimates; the one after the due date does not count -> 0.8.
    led.add(
        [("alice", 0.3, _day(0)), ("alice", 0.8, _day(5)), ("alice", 0.1, _day(20))],
        due=_day(10),
        outcome=True,
        resolved_at=_day(30),
    )
    # 2: resolved early (day 4): the estimate of day 6 came after the resolution -> 0.4.
    led.add(
        [("alice", 0.4, _day(0)), ("alice", 0.9, _day(6))],
        due=_day(10),
        outcome=False,
        resolved_at=_day(4),
    )
    # 3: annulled: excluded. 4: open and past due: pending. 5: open, not yet due.
    led.add([("alice", 0.5, _day(0))], due=_day(10), status="annulled", resolved_at=_day(11))
    led.add([("alice", 0.5, _day(0))], due=_day(10), status="open")
    led.add([("alice", 0.5, _day(0))], due=NOW + timedelta(days=10), status="open")
    # 6: only estimate made after the due date: resolved but unscored.
    led.add([("alice", 0.7, _day(12))], due=_day(10), outcome=True, resolved_at=_day(13))
    # 7: two estimates at the same instant: the later-recorded one scores -> 0.6.
    led.add([("alice", 0.2, _day(1)), ("alice", 0.6, _day(1))], due=_day(10), outcome=True)
    led.save()
    r = _report(engine)
    assert r["counts"] == {
        "questions": 7,
        "resolved": 4,
        "annulled": 1,
        "open": 2,
        "pending": 1,
        "not_yet_due": 1,
        "scored": 3,
        "forecasters": 1,
    }
    p, y = np.array([0.8, 0.4, 0.6]), np.array([1, 0, 1])
    assert r["overall"]["brier"] == pytest.approx(scoring.brier_score(p, y), abs=1e-15)
    assert r["overall"]["log"] == pytest.approx(scoring.log_score(p, y), abs=1e-15)
    # Time-averaged: question 1 holds 0.3 for 5 days then 0.8 for 5 (to the due date);
    # question 2 holds 0.4 for 4 days (to the resolution); question 7: 0.6 for 9 days.
    tab = ((0.49 * 5 + 0.04 * 5) / 10 + 0.16 + 0.16) / 3
    assert r["overall"]["time_averaged_brier"] == pytest.approx(tab, abs=1e-12)


def test_report_scores_each_forecaster_on_their_own_estimates(engine: Engine) -> None:
    led = Ledger(engine)
    led.add(
        [
            ("alice", 0.9, _day(0)),
            ("bob", 0.2, _day(1)),
            ("manifold", 0.55, _day(2)),
            ("alice", 0.7, _day(3)),
        ],
        due=_day(10),
        outcome=True,
        tags=["china", "ai"],
    )
    led.add([("bob", 0.3, _day(0))], due=_day(20), outcome=False, tags=["china"])
    led.save()
    r = _report(engine, group_by="forecaster")
    by = {g["key"]: g for g in r["groups"]}
    assert sorted(by) == ["alice", "bob", "manifold"]
    assert by["alice"]["count"] == 1 and by["alice"]["brier"] == pytest.approx(0.09)
    assert by["bob"]["count"] == 2 and by["bob"]["brier"] == pytest.approx((0.64 + 0.09) / 2)
    assert by["manifold"]["brier"] == pytest.approx(0.2025)
    assert by["alice"]["time_averaged_brier"] == pytest.approx((0.01 * 3 + 0.09 * 7) / 10)
    assert r["counts"]["scored"] == 4 and r["counts"]["forecasters"] == 3
    tags = {g["key"]: g for g in r["breakdowns"]["tag"]}
    assert tags["china"]["count"] == 4 and tags["ai"]["count"] == 3
    assert tags["ai"]["brier"] == pytest.approx((0.09 + 0.64 + 0.2025) / 3)
    only_bob = _report(engine, by="bob")
    assert only_bob["counts"]["scored"] == 2
    assert only_bob["overall"]["brier"] == pytest.approx((0.64 + 0.09) / 2)


def test_read_scored_gives_one_row_per_question_and_forecaster_in_name_order(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scored rows come by question, then forecaster in the order of the sorted names (upper
    case first, whatever the database's collation), each with its own time-averaged score; a
    forecaster's estimates read across two chunks of rows are still one group."""
    led = Ledger(engine)
    led.add(
        [
            ("bob", 0.2, _day(0)),
            ("Zed", 0.9, _day(1)),
            ("alice", 0.4, _day(2)),
            ("bob", 0.7, _day(3)),
            ("alice", 0.1, _day(2)),  # the same instant, recorded later: this one scores
        ],
        due=_day(10),
        outcome=True,
    )
    led.add([("alice", 0.6, _day(1))], due=_day(5), outcome=False)
    led.save()
    monkeypatch.setattr(scored, "_CHUNK", 2)
    with read_session(engine) as session:
        s = scored.read_scored(scored.executor(session))
    assert s.names == ["Zed", "alice", "bob"]
    rows = zip(s.forecast_id.tolist(), s.who.tolist(), s.probability.tolist(), strict=True)
    assert [(fid, s.names[who], p) for fid, who, p in rows] == [
        (1, "Zed", 0.9),
        (1, "alice", 0.1),
        (1, "bob", 0.7),
        (2, "alice", 0.6),
    ]
    # bob holds 0.2 for 3 days, then 0.7 for 7; alice's 0.4 holds no time at all.
    tab = [0.01, 0.81, (0.64 * 3 + 0.09 * 7) / 10, 0.36]
    assert s.time_averaged_brier.tolist() == pytest.approx(tab, abs=1e-12)
    assert s.made_at.tolist() == [_day(1), _day(2), _day(3), _day(1)]


def test_report_filters_by_tag_and_dates(engine: Engine) -> None:
    led = Ledger(engine)
    led.add([("alice", 0.9, _day(0))], due=_day(10), outcome=True, tags=["china"])
    led.add([("alice", 0.6, _day(0))], due=_day(40), outcome=False, tags=["us"])
    led.add([("alice", 0.2, _day(0))], due=_day(100), outcome=False, tags=["china"])
    led.save()
    assert _report(engine, tag="China")["counts"]["scored"] == 2  # tags are kept in lower case
    window = _report(engine, since=parse_since("2025-02"), until=parse_until("2025-04"))
    assert window["counts"]["scored"] == 2
    assert window["overall"]["brier"] == pytest.approx((0.36 + 0.04) / 2)
    assert _report(engine, until=parse_until("2025-01-11"))["counts"]["resolved"] == 1
    nothing = _report(engine, tag="none")
    assert nothing["counts"]["scored"] == 0 and nothing["overall"] == {"count": 0}


def test_report_groups_by_period_with_rolling_window(engine: Engine) -> None:
    led = Ledger(engine)
    # Resolved in Jan, Feb and Apr 2025 (no March): months and a 12-month rolling window.
    led.add([("alice", 0.9, _day(0))], due=datetime(2025, 1, 20), outcome=True)
    led.add([("alice", 0.6, _day(0))], due=datetime(2025, 2, 20), outcome=False)
    led.add([("alice", 0.2, _day(0))], due=datetime(2025, 4, 20), outcome=False)
    led.add(
        [("alice", 0.7, _day(0))],
        due=datetime(2026, 2, 20),
        outcome=True,
        resolved_at=datetime(2025, 12, 31),
    )
    led.save()
    months = _report(engine, group_by="month")["groups"]
    assert [g["key"] for g in months] == ["2025-01", "2025-02", "2025-04", "2025-12"]
    assert [g["rolling_count"] for g in months] == [1, 2, 3, 4]
    assert months[2]["rolling_brier"] == pytest.approx((0.01 + 0.36 + 0.04) / 3)
    quarters = _report(engine, group_by="quarter")["groups"]
    assert [(g["key"], g["count"]) for g in quarters] == [
        ("2025-Q1", 2),
        ("2025-Q2", 1),
        ("2025-Q4", 1),
    ]
    years = _report(engine, group_by="year")["groups"]
    assert [(g["key"], g["count"]) for g in years] == [("2025", 4)]


def test_report_groups_by_horizon(engine: Engine) -> None:
    led = Ledger(engine)
    due = datetime(2025, 6, 1)
    for days, p in ((1, 0.9), (6.9, 0.8), (7, 0.7), (45, 0.6), (200, 0.4), (400, 0.3), (2000, 0.2)):
        led.add([("alice", p, due - timedelta(days=days))], due=due, outcome=True)
    led.save()
    groups = _report(engine, group_by="horizon")["groups"]
    assert [(g["key"], g["count"]) for g in groups] == [
        ("under 1 week", 2),
        ("1 week - 1 month", 1),
        ("1-3 months", 1),
        ("3-12 months", 1),
        ("1-3 years", 1),
        ("over 3 years", 1),
    ]


def test_report_horizon_and_month_exact_to_the_microsecond(engine: Engine) -> None:
    """SQLite's julianday() keeps milliseconds; a span a microsecond short of a bucket bound, and a
    resolution a microsecond before midnight at a month's end, still land where the exact times
    say, on both databases."""
    led = Ledger(engine)
    due = datetime(2025, 6, 1, 12, 0, 0, 250)
    tiny = timedelta(microseconds=1)
    week, month = timedelta(days=7), timedelta(days=30)
    spans = (week - tiny, week, week + tiny, month - tiny, month - timedelta(microseconds=400))
    for span in spans:
        led.add([("alice", 0.6, due - span)], due=due, outcome=True)
    end_of_june = datetime(2025, 6, 30, 23, 59, 59, 999_999)
    led.add([("bob", 0.3, _day(1))], due=_day(100), outcome=False, resolved_at=end_of_june)
    led.save()
    horizon = _report(engine, group_by="horizon")["groups"]
    assert [(g["key"], g["count"]) for g in horizon] == [
        ("under 1 week", 1),
        ("1 week - 1 month", 4),
        ("3-12 months", 1),
    ]
    months = _report(engine, group_by="month")["groups"]
    assert [(g["key"], g["count"]) for g in months] == [("2025-06", 6)]


def test_report_finds_overconfidence_only_where_the_sample_supports_it(engine: Engine) -> None:
    led = Ledger(engine)
    # 31 forecasts at 90%, 23 came true (74%): Wilson 95% CI 57-86%.
    for i in range(31):
        led.add([("alice", 0.9, _day(0))], due=_day(10 + i), outcome=i < 23)
    # 10 forecasts at 10%, 5 came true: off, but too few to say anything.
    for i in range(10):
        led.add([("alice", 0.1, _day(0))], due=_day(50 + i), outcome=i < 5)
    led.save()
    findings = _report(engine)["findings"]
    assert findings[0] == (
        "Your 90%-100% forecasts (mean 90%) came true 74% of the time (n=31, 95% CI 57-86%): "
        "you are overconfident at the top end."
    )
    assert not any("10%-20%" in f for f in findings)


def test_report_names_no_bin_for_a_gap_too_small_to_act_on(engine: Engine) -> None:
    led = Ledger(engine)
    # 4000 forecasts at 65% of which 62% came true: far outside the Wilson interval (61-64%),
    # but 3 points: significant, and nothing to act on.
    for i in range(4000):
        led.add([("alice", 0.65, _day(0))], due=_day(10 + i % 300), outcome=i % 50 < 31)
    led.save()
    r = _report(engine)
    [bin_] = [b for b in r["overall"]["calibration"] if b["count"]]
    assert not bin_["ci_low"] <= bin_["mean_forecast"] <= bin_["ci_high"]
    assert not any("60%-70%" in f or "lean towards" in f for f in r["findings"])
    assert r["findings"][0].startswith("No calibration bin with at least 20 forecasts")


def test_text_report_shows_the_last_12_periods_and_says_so(engine: Engine) -> None:
    from reports.render import render

    led = Ledger(engine)
    for month in range(15):  # resolved in 15 different months of 2025-2026
        due = datetime(2025 + month // 12, month % 12 + 1, 15)
        led.add([("alice", 0.7, due - timedelta(days=40))], due=due, outcome=month % 3 > 0)
    led.save()
    text = render(_report(engine, group_by="month"), "text")
    assert "By month (the last 12 of 15; all of them in --format md, html or json):" in text
    assert "2025-01 " not in text and "2025-03 " not in text
    assert "2025-04 " in text and "2026-03 " in text
    assert "2025-01" in render(_report(engine, group_by="month"), "md")


def test_report_states_no_finding_for_a_small_sample(engine: Engine) -> None:
    led = Ledger(engine)
    led.add([("alice", 0.9, _day(0))], due=_day(10), outcome=False)
    led.save()
    assert _report(engine)["findings"][0].startswith("Only 1 scored forecast: too few")


# --- the real data ------------------------------------------------------------------------------


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC).replace(tzinfo=None)


def _load_predictionbook(engine: Engine, path: Path) -> list[tuple[float, int]]:
    """Load the sample; return the (p, y) pairs the rules say should be scored, computed here in
    plain Python as an independent check."""
    led = Ledger(engine)
    expected: list[tuple[float, int]] = []
    for q in json.loads(path.read_text(encoding="utf-8")):
        due = _utc(q["time_known"])
        outcomes = [_utc(r["time"]) for r in q["responses"] if "outcome" in r["actions"]]
        resolved_at = outcomes[-1] if outcomes else due
        y = 1 if q["outcome"] == "right" else 0
        estimates = [
            (r["user"], r["actions"]["credence"] / 100, _utc(r["time"]))
            for r in q["responses"]
            if "credence" in r["actions"]
        ]
        led.add(estimates, due=due, outcome=bool(y), resolved_at=resolved_at)
        last: dict[str, float] = {}
        for who, p, at in sorted(estimates, key=lambda e: e[2]):  # stable: ties keep file order
            if at < due and at < resolved_at:
                last[who] = p
        expected.extend((p, y) for p in last.values())
    led.save()
    return expected


def test_report_on_the_predictionbook_sample(engine: Engine, shared_data: Path) -> None:
    expected = _load_predictionbook(engine, shared_data / "predictionbook-sample.json")
    p = np.array([e[0] for e in expected])
    y = np.array([e[1] for e in expected])
    r = _report(engine)
    o = r["overall"]
    assert r["counts"]["resolved"] == 1202
    assert o["count"] == len(expected) > 1000
    assert (p == 0).any() and (p == 1).any()  # imported 0% and 100% credences are scored
    assert o["brier"] == pytest.approx(scoring.brier_score(p, y), abs=1e-12)
    assert o["log"] == pytest.approx(scoring.log_score(p, y), abs=1e-12)
    assert o["murphy"]["brier"] == pytest.approx(o["brier"], abs=1e-12)
    parts = o["murphy"]
    assert (
        parts["reliability"]
        - parts["resolution"]
        + parts["uncertainty"]
        + parts["within_bin_variance"]
        - parts["within_bin_covariance"]
    ) == pytest.approx(o["brier"], abs=1e-12)
    table = scoring.calibration_table(p, y)
    assert [b["count"] for b in o["calibration"]] == [b.count for b in table]
    assert o["corp"]["brier"]["miscalibration"] >= 0
    assert o["corp"]["log"]["discrimination"] >= 0
    assert len(r["breakdowns"]["forecaster"]) > 50
    json.dumps(r, allow_nan=False)  # JSON-clean: no NaN or infinity anywhere


def _load_forecastbench(engine: Engine, folder: Path) -> list[tuple[str, float, int]]:
    questions = json.loads((folder / "forecastbench-2025-10-26-questions.json").read_text())
    resolutions = json.loads((folder / "forecastbench-2025-10-26-resolutions.json").read_text())
    final = {
        r["id"]: (r["resolved_to"], r["resolution_date"])
        for r in resolutions["resolutions"]
        if r["resolved"] and r["resolved_to"] in (0.0, 1.0)
    }
    led = Ledger(engine)
    expected = []
    for q in questions["questions"]:
        if q["source"] not in ("manifold", "metaculus", "polymarket") or q["id"] not in final:
            continue
        outcome, day = final[q["id"]]
        due = datetime.fromisoformat(day) + timedelta(hours=23, minutes=59, seconds=59)
        p = float(q["freeze_datetime_value"])
        led.add(
            [(q["source"], p, _utc(q["freeze_datetime"]))],
            due=due,
            outcome=bool(outcome),
            tags=[q["source"]],
            title=q["question"],
        )
        expected.append((q["source"], p, int(outcome)))
    led.save()
    return expected


def test_report_on_the_forecastbench_market_questions(engine: Engine, shared_data: Path) -> None:
    expected = _load_forecastbench(engine, shared_data)
    r = _report(engine, group_by="forecaster")
    assert r["counts"]["scored"] == len(expected) > 100
    for market in ("manifold", "metaculus", "polymarket"):
        rows = [(p, y) for s, p, y in expected if s == market]
        group = next(g for g in r["groups"] if g["key"] == market)
        assert group["count"] == len(rows)
        assert group["brier"] == pytest.approx(
            scoring.brier_score([a for a, _ in rows], [b for _, b in rows]), abs=1e-12
        )
    tags = {g["key"]: g["count"] for g in r["breakdowns"]["tag"]}
    assert tags == {g["key"]: g["count"] for g in r["groups"]}


def _mixed_ledger(engine: Engine) -> None:
    """400 single-estimate questions (four forecasters, horizons on and near the bucket bounds)
    and one with a history."""
    rng = np.random.default_rng(5)
    led = Ledger(engine)
    names = ["alice", "bob", "Zoë", "市场"]
    for i in range(400):
        made = _day(float(rng.integers(0, 600)) + rng.random())
        due = made + timedelta(days=float(rng.choice([0.5, 6.99, 7, 29.9, 30, 90, 91, 400, 1200])))
        p = float(rng.choice([0.0, 0.05, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0, rng.random()]))
        led.add(
            [(names[i % 4], p, made)],
            due=due,
            outcome=bool(rng.random() < p),
            resolved_at=due + timedelta(days=float(rng.integers(0, 40))),
            tags=["even"] if i % 2 == 0 else [],
        )
    # and a few questions with a history, read the other way
    led.add([("alice", 0.2, _day(1)), ("bob", 0.6, _day(2))], due=_day(30), outcome=True)
    led.save()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_report_through_a_bare_sqlite3_connection_equals_the_session(engine: Engine) -> None:
    """``tracker report`` reads a SQLite file through the standard library's sqlite3 (no
    SQLAlchemy import); the report is the very one a session gives, with and without filters."""
    from predictions import lite

    _mixed_ledger(engine)
    conn = lite.connect(Path(engine.url.database or ""))
    assert conn is not None
    filters: dict[str, Any]
    try:
        for filters in (
            {},
            {"by": "alice"},
            {"since": _day(300)},
            {"group_by": "horizon"},
            {"tag": "even", "group_by": "horizon"},
        ):
            bare = build_report(conn, ReportQuery(**filters), now=NOW)
            assert bare == _report(engine, **filters)
    finally:
        conn.close()
    assert bare["counts"]["scored"] == 200  # the even ones, tagged
    assert _report(engine)["counts"]["scored"] == 402


def test_tag_breakdown_counts_the_scored_questions_of_each_tag(engine: Engine) -> None:
    """Tags are read one list of question ids per name: a question with two tags counts in both,
    tags of open, annulled or unscored questions count nowhere, and the tags come in name order."""
    led = Ledger(engine)
    led.add([("alice", 0.5, _day(0))], due=_day(10), status="open", tags=["open-only", "us"])
    led.add([("bob", 0.5, _day(0))], due=_day(10), status="annulled", tags=["us", "void"])
    led.add([("carol", 0.7, _day(12))], due=_day(10), outcome=True, tags=["late"])
    led.add(
        [("alice", 0.9, _day(0)), ("bob", 0.2, _day(1))],
        due=_day(10),
        outcome=True,
        tags=["us", "ai"],
    )
    led.add([("bob", 0.3, _day(0))], due=_day(20), outcome=False, tags=["us"])
    led.add([("alice", 0.6, _day(0))], due=_day(30), outcome=False, tags=["ai"])
    led.save()
    r = _report(engine)
    tags = r["breakdowns"]["tag"]
    assert [g["key"] for g in tags] == ["ai", "us"]
    by = {g["key"]: g for g in tags}
    assert by["ai"]["count"] == 3 and by["us"]["count"] == 3
    assert by["ai"]["brier"] == pytest.approx((0.01 + 0.64 + 0.36) / 3)
    assert by["us"]["brier"] == pytest.approx((0.01 + 0.64 + 0.09) / 3)
    for name in ("ai", "us"):
        alone = _report(engine, tag=name)["overall"]
        assert by[name]["count"] == alone["count"]
        assert by[name]["brier"] == pytest.approx(alone["brier"], abs=1e-15)


@pytest.mark.parametrize(
    "values",
    [
        np.array([], dtype=np.int64),
        np.array([7, 3, 3, 9, 7, 7], dtype=np.int64),
        np.array([-5, 2, -5, 40], dtype=np.int64),
        np.array([0, 10**12, 5, 10**12], dtype=np.int64),  # a wide range: np.unique itself
        np.random.default_rng(1).integers(0, 3000, 10_000),
    ],
)
def test_distinct_is_np_unique(values: np.ndarray) -> None:
    from reports.build import _distinct

    got = _distinct(values)
    want = np.unique(values, return_inverse=True, return_counts=True)
    for a, b in zip(got, want, strict=True):
        assert a.dtype.kind == "i" and np.array_equal(a, b)
