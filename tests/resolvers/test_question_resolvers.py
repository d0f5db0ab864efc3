"""Numeric, date and choice questions through real sweeps: each kind reads its source (a real HTTP
server on loopback serving the recorded payloads of tests/resolvers/fixtures), the runner records
the market's forecast as an estimate and resolves or proposes the outcome, and ``tracker confirm``
(:func:`resolvers.review.confirm`) applies a proposed outcome. Time is frozen with freezegun."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from freezegun import freeze_time
from sqlalchemy.engine import Engine

from predictions import store
from predictions.checks import add_checks, evidence_of, proposals_of
from predictions.db import read_session, write_session
from predictions.errors import InputError
from predictions.questions import (
    GRID,
    Question,
    parse_date,
    parse_forecast,
    parse_options,
    parse_range,
    rounded,
)
from predictions.records import ForecastRow
from resolvers.http import HttpSettings
from resolvers.metaculus import TOKEN_ENV
from resolvers.registry import validate_check
from resolvers.review import confirm, review
from resolvers.rules import decide
from resolvers.sweep import SweepReport, SweepSettings, check_forecast, sweep
from tests.conftest import CliInvoke
from tests.resolvers.loopback import Loopback
from tests.resolvers.recorded_sources import RecordedSource, fixture, serve

SETTINGS = SweepSettings(http=HttpSettings(timeout=5, allow_private=True, retries=0))
T0 = datetime(2025, 1, 10)
DUE = datetime(2026, 12, 31, 23, 59, 59)
KARIBA = parse_range("numeric", "460..488.5", open_bounds="both")  # Metaculus post 34278
SPACE = parse_options("Less than 10,10,Greater than 10")  # post 34280
LABS = parse_options("DeepSeek,Alibaba Qwen,Moonshot,Zhipu,Other")  # the Manifold market
PROVINCES = parse_range("numeric", "0..34")


@pytest.fixture
def source(monkeypatch: pytest.MonkeyPatch) -> Iterator[RecordedSource]:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    yield from serve()


def _add(
    engine: Engine, question: Question, forecast: str, *specs: dict[str, Any], due: datetime = DUE
) -> int:
    """A forecast of ``question`` with checks ``specs``, registered at the frozen time."""
    with write_session(engine) as session:
        row = store.add_forecast(
            session,
            title=f"A {question.kind} question",
            criteria="Resolves as the source says.",
            due=due,
            author="alice",
            question=question,
            values=parse_forecast(question, forecast),
        )
        add_checks(session, row, [validate_check(s, question_kind=question.kind) for s in specs])
        return row.id


def _read(engine: Engine, fid: int) -> ForecastRow:
    with read_session(engine) as session:
        return store.get_forecast(session, fid)


def _market(engine: Engine, fid: int, name: str) -> list[tuple[float, ...] | None]:
    return [e.values for e in _read(engine, fid).estimates if e.forecaster == name]


def _run(engine: Engine) -> SweepReport:
    report = sweep(engine, settings=SETTINGS)
    return report


def _metaculus(source: RecordedSource, name: str, **spec: Any) -> dict[str, Any]:
    source.route("/api/posts/1/", fixture("metaculus", name))
    return {"kind": "metaculus", "post": 1, "base_url": source.url, **spec}


def _manifold(source: RecordedSource, name: str, **spec: Any) -> dict[str, Any]:
    source.route("/v0/market/Mc4LbQ2nZr", fixture("manifold", name))
    return {"kind": "manifold", "id": "Mc4LbQ2nZr", "base_url": source.url, **spec}


def _community(name: str) -> list[Any]:
    post = json.loads(fixture("metaculus", name))
    values = post["question"]["aggregations"]["recency_weighted"]["latest"]["forecast_values"]
    assert isinstance(values, list)
    return values


# --- metaculus --------------------------------------------------------------------------------


def test_metaculus_numeric_community_cdf_is_the_estimate_on_the_same_grid(
    engine: Engine, source: RecordedSource
) -> None:
    with freeze_time(T0):
        fid = _add(
            engine,
            KARIBA,
            "10%=465,50%=475,90%=485",
            _metaculus(source, "post_numeric_closed.json"),
        )
        report = _run(engine)

    assert not report.errors
    assert _market(engine, fid, "metaculus") == [rounded(_community("post_numeric_closed.json"))]
    with read_session(engine) as session:
        [evidence] = evidence_of(session, fid)
        assert (evidence.verdict, evidence.value) == ("none", "closed")
        assert "community forecast" in (evidence.excerpt or "")
        assert proposals_of(session, fid) == []


def test_metaculus_numeric_resolution_resolves_in_auto_mode(
    engine: Engine, source: RecordedSource
) -> None:
    spec = _metaculus(source, "post_numeric_resolved.json", mode="auto")
    with freeze_time(T0):
        fid = _add(engine, KARIBA, "10%=465,50%=475,90%=485", spec)
        report = _run(engine)

    assert [o.action for o in report.outcomes] == [
        "estimate median 476.3 by metaculus; resolved 473.9"
    ]
    forecast = _read(engine, fid)
    assert (forecast.status, forecast.outcome, forecast.resolution_value) == (
        "resolved",
        None,
        473.9,
    )
    assert forecast.resolved_by == "resolver:metaculus"


def test_metaculus_above_upper_bound_resolves_just_beyond_an_open_bound(
    engine: Engine, source: RecordedSource
) -> None:
    spec = _metaculus(source, "post_numeric_above_upper_bound.json", mode="auto")
    with freeze_time(T0):
        fid = _add(engine, KARIBA, "10%=465,50%=475,90%=485", spec)
        _run(engine)

    value = _read(engine, fid).resolution_value
    assert value is not None and 488.5 < value < 488.5 + 28.5 / 200


def test_metaculus_refuses_a_question_whose_range_differs(
    engine: Engine, source: RecordedSource
) -> None:
    question = parse_range("numeric", "450..500", open_bounds="both")
    with freeze_time(T0):
        fid = _add(
            engine,
            question,
            "10%=465,50%=475,90%=485",
            _metaculus(source, "post_numeric_closed.json"),
        )
        report = _run(engine)

    [error] = report.errors
    assert error.error is not None
    assert "its range is 460..488.5 (open lower and upper), this question's 450..500" in error.error
    assert error.temporary is False
    assert _market(engine, fid, "metaculus") == []


def test_metaculus_log_scale_question_reads_a_zero_point_of_zero(
    engine: Engine, source: RecordedSource
) -> None:
    question = parse_range("numeric", "1..1000", open_bounds="both", log=True)
    with freeze_time(T0):
        fid = _add(
            engine, question, "lognormal:3,1", _metaculus(source, "post_numeric_log_closed.json")
        )
        report = _run(engine)

    assert not report.errors
    assert _market(engine, fid, "metaculus") == [
        rounded(_community("post_numeric_log_closed.json"))
    ]


def test_metaculus_date_question_estimate_then_a_proposed_date_a_person_confirms(
    engine: Engine, source: RecordedSource
) -> None:
    question = parse_range(
        "date", "2025-01-01T05:00:00Z..2075-12-31T05:00:00Z", open_bounds="upper"
    )
    spec = _metaculus(source, "post_date_open.json")
    with freeze_time(T0):
        fid = _add(engine, question, "25%=2030,50%=2035,75%=2045", spec, due=datetime(2075, 12, 31))
        _run(engine)
    assert _market(engine, fid, "metaculus") == [rounded(_community("post_date_open.json"))]

    source.route("/api/posts/1/", fixture("metaculus", "post_date_resolved.json"))
    with freeze_time(T0 + timedelta(days=2)):
        check_forecast(engine, fid, settings=SETTINGS)
        with read_session(engine) as session:
            [item] = review(session)
        assert (item["verdict"], item["said"]) == ("yes", "2031-03-14")
        with write_session(engine) as session:
            confirm(session, fid, by="alice")

    forecast = _read(engine, fid)
    assert forecast.resolution_value == parse_date("2031-03-14", "value")
    assert forecast.resolved_by == "alice"


def test_metaculus_discrete_cdf_is_interpolated_onto_the_grid(
    engine: Engine, source: RecordedSource
) -> None:
    question = parse_range("numeric", "-0.5..7.5", open_bounds="upper")  # post 38880
    with freeze_time(T0):
        fid = _add(
            engine, question, "10%=0,50%=2,90%=6", _metaculus(source, "post_discrete_open.json")
        )
        _run(engine)

    [values] = _market(engine, fid, "metaculus")
    theirs = _community("post_discrete_open.json")
    assert values is not None and len(values) == GRID
    assert [values[25 * i] for i in range(9)] == list(rounded(theirs))  # the 9 points, kept
    assert values[10] == pytest.approx(theirs[0] + 0.4 * (theirs[1] - theirs[0]), abs=1e-6)


def test_metaculus_choice_probabilities_are_matched_by_option_name(
    engine: Engine, source: RecordedSource
) -> None:
    question = parse_options("greater than 10, LESS THAN 10, 10")
    with freeze_time(T0):
        fid = _add(
            engine, question, "30,40,30", _metaculus(source, "post_multiple_choice_closed.json")
        )
        _run(engine)

    less, ten, greater = _community("post_multiple_choice_closed.json")
    [values] = _market(engine, fid, "metaculus")
    assert values == pytest.approx((greater, less, ten), abs=1e-6)


def test_metaculus_choice_resolution_is_the_option_named(
    engine: Engine, source: RecordedSource
) -> None:
    spec = _metaculus(source, "post_multiple_choice_resolved.json", mode="auto")
    with freeze_time(T0):
        fid = _add(engine, SPACE, "30,40,30", spec)
        _run(engine)

    forecast = _read(engine, fid)
    assert (forecast.status, forecast.resolution_value) == ("resolved", 1.0)  # "10"


def test_metaculus_deleted_option_is_left_out_by_name(
    engine: Engine, source: RecordedSource
) -> None:
    question = parse_options("Greater than 10,Less than 10")
    with freeze_time(T0):
        fid = _add(
            engine,
            question,
            "50,50",
            _metaculus(source, "post_multiple_choice_option_deleted.json"),
        )
        _run(engine)

    assert _market(engine, fid, "metaculus") == [(0.59, 0.41)]


def test_metaculus_refuses_different_options_and_a_mismatched_type(
    engine: Engine, source: RecordedSource
) -> None:
    question = parse_options("Less than 10,10,11,More")
    with freeze_time(T0):
        _add(
            engine, question, "25,25,25,25", _metaculus(source, "post_multiple_choice_closed.json")
        )
        _add(
            engine,
            PROVINCES,
            "10%=4,50%=8,90%=15",
            _metaculus(source, "post_multiple_choice_closed.json"),
        )
        report = _run(engine)

    options, kind = sorted((o.error or "" for o in report.errors), key=lambda e: "options" not in e)
    assert "not at the source: 11, More; only at the source: Greater than 10" in options
    assert (
        "a multiple_choice question; a metaculus check on a numeric question needs a numeric"
        in kind
    )


# --- manifold ---------------------------------------------------------------------------------


def test_manifold_multiple_choice_open_records_answer_probabilities(
    engine: Engine, source: RecordedSource
) -> None:
    with freeze_time(T0):
        fid = _add(engine, LABS, "35,30,15,10,10", _manifold(source, "multiple_choice_open.json"))
        report = _run(engine)

    assert not report.errors
    assert _market(engine, fid, "manifold") == [(0.38, 0.31, 0.12, 0.09, 0.1)]
    with read_session(engine) as session:
        [evidence] = evidence_of(session, fid)
        assert evidence.verdict == "none" and "DeepSeek 38%" in (evidence.excerpt or "")


def test_manifold_multiple_choice_resolves_to_the_winning_answer(
    engine: Engine, source: RecordedSource
) -> None:
    question = parse_options("Other,Zhipu,Moonshot,Alibaba Qwen,deepseek")
    with freeze_time(T0):
        fid = _add(
            engine,
            question,
            "10,10,15,30,35",
            _manifold(source, "multiple_choice_resolved.json", mode="auto"),
        )
        _run(engine)

    forecast = _read(engine, fid)
    assert (forecast.status, forecast.resolution_value) == ("resolved", 4.0)


@pytest.mark.parametrize(
    ("name", "verdict", "proposed"),
    [
        ("multiple_choice_choose_multiple.json", "none", []),
        ("multiple_choice_cancel.json", "annul", ["annul"]),
    ],
)
def test_manifold_multiple_choice_split_is_left_to_a_person_and_cancel_annuls(
    engine: Engine, source: RecordedSource, name: str, verdict: str, proposed: list[str]
) -> None:
    with freeze_time(T0):
        fid = _add(engine, LABS, "35,30,15,10,10", _manifold(source, name))
        _run(engine)

    with read_session(engine) as session:
        [evidence] = evidence_of(session, fid)
        assert evidence.verdict == verdict
        assert [p.verdict for p in proposals_of(session, fid)] == proposed
    assert _read(engine, fid).status == "open"


@pytest.mark.parametrize(
    ("name", "said"),
    [
        ("multiple_choice_independent.json", "its answers resolve independently"),
        ("multi_numeric_open.json", "is a MULTI_NUMERIC market"),
    ],
)
def test_manifold_refuses_independent_answers_and_bucketed_markets(
    engine: Engine, source: RecordedSource, name: str, said: str
) -> None:
    with freeze_time(T0):
        _add(engine, LABS, "35,30,15,10,10", _manifold(source, name))
        [error] = _run(engine).errors
    assert said in (error.error or "")


@pytest.mark.parametrize(
    ("name", "question", "value"),
    [
        ("pseudo_numeric_resolved.json", PROVINCES, 11.0),
        (
            "pseudo_numeric_log_resolved.json",
            parse_range("numeric", "1000..2000000", log=True),
            250000.0,
        ),
    ],
)
def test_manifold_pseudo_numeric_resolution_value_is_mapped_back(
    engine: Engine, source: RecordedSource, name: str, question: Question, value: float
) -> None:
    with freeze_time(T0):
        fid = _add(engine, question, "uniform", _manifold(source, name, mode="auto"))
        _run(engine)

    forecast = _read(engine, fid)
    assert (forecast.status, forecast.resolution_value) == ("resolved", value)
    assert _market(engine, fid, "manifold") == []  # one number, not a distribution


def test_manifold_pseudo_numeric_open_is_no_verdict_and_no_estimate(
    engine: Engine, source: RecordedSource
) -> None:
    with freeze_time(T0):
        fid = _add(
            engine, PROVINCES, "10%=4,50%=8,90%=15", _manifold(source, "pseudo_numeric_open.json")
        )
        _run(engine)

    with read_session(engine) as session:
        [evidence] = evidence_of(session, fid)
    assert evidence.verdict == "none" and "market value 9.18" in (evidence.excerpt or "")
    assert _market(engine, fid, "manifold") == []


def test_kinds_that_read_no_such_question_are_refused_when_registered() -> None:
    date = parse_range("date", "2026..2036", open_bounds="upper")
    for kind, question in [("polymarket", PROVINCES), ("manifold", date), ("deadline", LABS)]:
        spec = {"kind": kind, "id": 512345} if kind == "polymarket" else {"kind": kind}
        if kind == "manifold":
            spec["id"] = "Mc4LbQ2nZr"
        with pytest.raises(InputError, match=f"{kind} check: got 'a {question.kind} question'"):
            validate_check(spec, question_kind=question.kind)


# --- json, page, wikipedia, deadline ----------------------------------------------------------


def test_json_value_at_the_path_resolves_numeric_and_date_questions(engine: Engine) -> None:
    date = parse_range("date", "2026..2036")
    with Loopback() as web:
        web.route(
            "/stats",
            b'{"data": {"hubs": 12, "when": "2028-06-30"}}',
            content_type="application/json",
        )
        with freeze_time(T0):
            count = _add(engine, PROVINCES, "10%=4,50%=8,90%=15",
                         {"kind": "json", "url": web.url + "/stats", "path": "data.hubs", "mode": "auto"})  # fmt: skip
            when = _add(engine, date, "25%=2027,50%=2028,75%=2030",
                        {"kind": "json", "url": web.url + "/stats", "path": "data.when"},
                        due=datetime(2036, 1, 1))  # fmt: skip
            report = _run(engine)

    assert not report.errors
    assert _read(engine, count).resolution_value == 12.0
    with read_session(engine) as session:
        [item] = review(session)
    assert (item["forecast"]["id"], item["said"]) == (when, "2028-06-30")


def test_json_on_a_numeric_question_takes_no_threshold(engine: Engine) -> None:
    with Loopback() as web:
        web.route("/stats", b'{"hubs": 12}', content_type="application/json")
        with freeze_time(T0):
            _add(engine, PROVINCES, "10%=4,50%=8,90%=15",
                 {"kind": "json", "url": web.url + "/stats", "path": "hubs", "threshold": 3})  # fmt: skip
            [error] = _run(engine).errors
    assert "takes no op or threshold" in (error.error or "")


def test_page_regex_group_is_read_as_a_number_and_confirmed(engine: Engine, cli: CliInvoke) -> None:
    page = (
        "<html><body><p>National AI computing hubs now operate in 1,234 counties.</p></body></html>"
    )
    question = parse_range("numeric", "0..5000")
    spec = {
        "kind": "page",
        "url": "",
        "contains": "computing hubs",
        "regex": r"in ([\d,]+) counties",
    }
    with Loopback() as web:
        web.route("/news", page.encode())
        spec["url"] = web.url + "/news"
        with freeze_time(T0):
            fid = _add(engine, question, "10%=100,50%=1000,90%=3000", spec)
            [dry] = check_forecast(engine, fid, dry_run=True, settings=SETTINGS).outcomes
            report = _run(engine)
            shown = cli("review").output
            confirmed = cli("confirm", str(fid), "--by", "alice")

    assert (dry.action, dry.value) == ("would propose 1234", "1234")
    assert [o.action for o in report.outcomes] == ["proposed 1234"]
    assert "proposal 1: 1234  (from page)" in shown
    assert confirmed.stdout == f"Forecast {fid} resolved 1234 (proposal 1).\n", confirmed.output
    assert _read(engine, fid).resolution_value == 1234.0


def test_page_on_a_numeric_question_needs_a_capture_group(engine: Engine) -> None:
    with Loopback() as web:
        web.route("/news", b"<p>12 provinces</p>")
        with freeze_time(T0):
            _add(engine, PROVINCES, "10%=4,50%=8,90%=15",
                 {"kind": "page", "url": web.url + "/news", "regex": r"\d+ provinces"})  # fmt: skip
            [error] = _run(engine).errors
    assert "needs a regex whose capture group holds the outcome" in (error.error or "")


def test_wikipedia_regex_group_gives_the_outcome_with_the_revision_in_the_excerpt(
    engine: Engine, source: RecordedSource
) -> None:
    source.route("/w/api.php", fixture("wikipedia", "page_current.json"))
    question = parse_range("numeric", "2000..2100")
    spec = {"kind": "wikipedia", "title": "15th Five-Year Plan", "regex": r"for (\d{4}) to 2030",
            "api": f"{source.url}/w/api.php"}  # fmt: skip
    with freeze_time(T0):
        fid = _add(engine, question, "uniform", spec)
        _run(engine)

    with read_session(engine) as session:
        [evidence] = evidence_of(session, fid)
        [proposal] = proposals_of(session, fid)
    assert (evidence.verdict, evidence.value, proposal.verdict) == ("yes", "2026", "yes")
    assert (evidence.excerpt or "").startswith("[rev 1268540127, 2025-11-20T09:14:52Z] ")


@pytest.mark.parametrize(("open_bounds", "after"), [("upper", True), (None, False)])
def test_deadline_date_question_not_before_the_range_end(
    engine: Engine, open_bounds: str | None, after: bool
) -> None:
    question = parse_range("date", "2025..2026-01-01", open_bounds=open_bounds)
    end = datetime(2026, 1, 1)
    with freeze_time(T0):
        fid = _add(engine, question, "25%=2025-04,50%=2025-07,75%=2025-10", {"kind": "deadline"},
                   due=end)  # fmt: skip
        _run(engine)
    with freeze_time(end + timedelta(days=1)):
        report = _run(engine)
    assert [o.action for o in report.outcomes] == ["(NO counts from due + grace (2026-01-08))"]
    with freeze_time(end + timedelta(days=7)):
        report = _run(engine)
        [proposal] = [p for p in review_items(engine)]
        with write_session(engine) as session:
            confirm(session, fid, by="alice")

    upper = end.replace(tzinfo=UTC).timestamp()
    value = _read(engine, fid).resolution_value
    assert value is not None
    assert (value > upper) if after else (value == upper)
    assert proposal["said"] == "2026-01-01"


def review_items(engine: Engine) -> list[dict[str, Any]]:
    with read_session(engine) as session:
        return review(session)


def test_a_numeric_question_without_an_outcome_is_never_proposed(engine: Engine) -> None:
    with Loopback() as web:
        web.route("/news", b"<p>nothing yet</p>")
        with freeze_time(T0):
            fid = _add(engine, PROVINCES, "10%=4,50%=8,90%=15",
                       {"kind": "page", "url": web.url + "/news", "regex": r"(\d+) provinces",
                        "otherwise": "no"})  # fmt: skip
        with freeze_time(DUE + timedelta(days=8)):
            report = _run(engine)

    assert [o.action for o in report.outcomes] == ["(no outcome given for a numeric question)"]
    with read_session(engine) as session:
        assert proposals_of(session, fid) == []


def test_a_source_giving_another_outcome_flags_a_disagreement(
    engine: Engine, cli: CliInvoke
) -> None:
    with Loopback() as web:
        web.route("/stats", b'{"hubs": 12}', content_type="application/json")
        with freeze_time(T0):
            fid = _add(engine, PROVINCES, "10%=4,50%=8,90%=15",
                       {"kind": "json", "url": web.url + "/stats", "path": "hubs"})  # fmt: skip
            with write_session(engine) as session:
                store.resolve(session, fid, 10.0, by="alice")
            report = _run(engine)

    assert [o.action for o in report.outcomes] == ["disagreement: resolved 10, source says 12"]
    [item] = review_items(engine)
    assert (item["kind"], item["said"]) == ("disagreement", "12")
    assert "DISAGREEMENT: source says 12, forecast is 10" in cli("review").output


@pytest.mark.parametrize(
    ("verdict", "final", "value", "action"),
    [
        ("yes", True, 12.0, "disagree"),  # a market resolved otherwise
        ("yes", False, 12.0, "disagree"),  # a page found another outcome
        ("yes", True, 10.0, ""),  # the same outcome
        ("no", False, 12.0, ""),  # a deadline's absence of evidence never disagrees
        ("annul", True, None, "disagree"),
    ],
)
def test_rules_a_resolved_question_disagrees_only_with_another_outcome_found(
    verdict: str, final: bool, value: float | None, action: str
) -> None:
    decision = decide(
        verdict=verdict, final=final, mode="auto", otherwise=None, status="resolved",
        outcome=None, due=T0, now=T0 + timedelta(days=30), grace=timedelta(days=7),
        value=value, resolved_value=10.0,
    )  # fmt: skip
    assert decision.action == action
