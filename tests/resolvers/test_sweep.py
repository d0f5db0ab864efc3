"""The runner on real databases and a real loopback server: receipts, "by date" rules, backoff,
304s, disagreements, leases, review. Time is frozen with freezegun."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from freezegun import freeze_time
from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from predictions import ledger, store
from predictions.checks import add_checks, checks_of, evidence_of, proposals_of
from predictions.db import read_session, write_session
from predictions.errors import StateError
from predictions.models import Check
from resolvers import validate_check
from resolvers.http import HttpSettings
from resolvers.review import confirm, dispute, review
from resolvers.rules import decide
from resolvers.sweep import SweepSettings, check_forecast, sweep
from tests.conftest import table_counts
from tests.resolvers.loopback import Loopback

SETTINGS = SweepSettings(
    http=HttpSettings(timeout=5, allowed_networks=("127.0.0.0/8",), retries=0), concurrency=4
)
T0 = datetime(2026, 1, 10, 12, 0)
DUE = datetime(2026, 6, 30, 23, 59, 59)
PAGE = "<html><body><p>国务院发布人工智能失控风险国家标准</p></body></html>"


@pytest.fixture
def web() -> Iterator[Loopback]:
    with Loopback() as server:
        yield server


def _forecast(engine: Engine, *specs: dict[str, Any], due: datetime = DUE) -> int:
    with write_session(engine) as session:
        f = store.add_forecast(
            session,
            title="China issues a national standard on AI loss-of-control risk",
            criteria="Resolves YES if a national standard is published by the due date.",
            due=due,
            author="alice",
            probability=0.35,
        )
        add_checks(session, f, [validate_check(dict(s)) for s in specs])
        return f.id


def _state(engine: Engine, fid: int) -> tuple[Any, list[Any], list[Any], list[Any]]:
    with read_session(engine) as session:
        return (
            store.get_forecast(session, fid),
            list(checks_of(session, fid)),
            list(evidence_of(session, fid)),
            list(proposals_of(session, fid)),
        )


def test_sweep_page_match_proposes_yes_with_a_receipt(engine: Engine, web: Loopback) -> None:
    web.route("/news", PAGE)
    with freeze_time(T0):
        fid = _forecast(engine, {"kind": "page", "url": web.url + "/news", "contains": "失控"})
        report = sweep(engine, settings=SETTINGS)
    assert report.checked == 1 and not report.errors
    [outcome] = report.outcomes
    assert (outcome.verdict, outcome.action) == ("yes", "proposed YES")
    forecast, [check], [ev], [proposal] = _state(engine, fid)
    assert forecast.status == "open"
    assert (ev.kind, ev.resolver_version, ev.verdict, ev.value) == ("page", "1", "yes", "失控")
    assert (ev.url, ev.http_status, ev.bytes) == (web.url + "/news", 200, len(PAGE.encode()))
    assert ev.sha256 is not None and len(ev.sha256) == 64 and ev.checked_at == T0
    assert "人工智能失控风险" in (ev.excerpt or "")
    assert (proposal.kind, proposal.verdict, proposal.status) == ("resolve", "yes", "pending")
    assert proposal.evidence_id == ev.id
    assert check.claimed_by is None and check.failures == 0
    assert check.next_check_at == T0 + timedelta(days=1) and check.last_checked_at == T0


def test_sweep_auto_final_json_resolves_directly(engine: Engine, web: Loopback) -> None:
    web.route("/api", '{"standard": {"published": true}}', content_type="application/json")
    spec = {
        "kind": "json",
        "url": web.url + "/api",
        "path": "standard.published",
        "op": "==",
        "threshold": "true",
        "mode": "auto",
    }
    with freeze_time(T0):
        fid = _forecast(engine, spec)
        report = sweep(engine, settings=SETTINGS)
    assert report.outcomes[0].action == "resolved YES"
    forecast, [check], [ev], proposals = _state(engine, fid)
    assert (forecast.status, forecast.outcome) == ("resolved", True)
    assert forecast.resolved_by == "resolver:json" and forecast.resolved_at == T0
    assert forecast.resolution_evidence == web.url + "/api"
    assert proposals == [] and ev.verdict == "yes"
    assert check.next_check_at == T0 + timedelta(days=30)  # resolved: the slow schedule
    with read_session(engine) as session:
        assert ledger.verify(session).ok


def test_sweep_text_match_in_auto_mode_still_only_proposes(engine: Engine, web: Loopback) -> None:
    web.route("/news", PAGE)
    with freeze_time(T0):
        fid = _forecast(
            engine, {"kind": "page", "url": web.url + "/news", "contains": "失控", "mode": "auto"}
        )
        sweep(engine, settings=SETTINGS)
    forecast, _, _, [proposal] = _state(engine, fid)
    assert forecast.status == "open" and proposal.verdict == "yes"


def test_sweep_no_waits_for_due_plus_grace(engine: Engine, web: Loopback) -> None:
    web.route("/api", '{"clusters": 1}', content_type="application/json")
    spec = {"kind": "json", "url": web.url + "/api", "path": "clusters", "op": ">=", "threshold": 2}
    with freeze_time(T0):
        fid = _forecast(engine, spec)
        first = sweep(engine, settings=SETTINGS)
    assert first.outcomes[0].verdict == "no"
    assert first.outcomes[0].action == "(NO counts from due + grace (2026-07-07))"
    with freeze_time(DUE + timedelta(days=6, hours=12)):
        sweep(engine, settings=SETTINGS)
    assert _state(engine, fid)[3] == []
    _, [check], _, _ = _state(engine, fid)
    assert check.next_check_at == DUE + timedelta(days=7)  # lands exactly on due + grace
    with freeze_time(DUE + timedelta(days=7)):
        late = sweep(engine, settings=SETTINGS)
    assert late.outcomes[0].action == "proposed NO"
    forecast, _, evidence, [proposal] = _state(engine, fid)
    assert forecast.status == "open" and proposal.verdict == "no" and len(evidence) == 3


def test_sweep_yes_applies_before_the_due_date(engine: Engine, web: Loopback) -> None:
    web.route("/api", '{"clusters": 5}', content_type="application/json")
    spec = {"kind": "json", "url": web.url + "/api", "path": "clusters", "threshold": 2}
    with freeze_time(T0):
        fid = _forecast(engine, {**spec, "mode": "auto"})
        sweep(engine, settings=SETTINGS)
    assert _state(engine, fid)[0].outcome is True


def test_sweep_grace_is_configurable(engine: Engine) -> None:
    settings = SweepSettings(http=SETTINGS.http, grace=timedelta(days=1))
    with freeze_time(T0):
        fid = _forecast(engine, {"kind": "deadline"})
    with freeze_time(DUE + timedelta(days=1)):
        report = sweep(engine, settings=settings)
    assert report.outcomes[0].action == "proposed NO"
    assert _state(engine, fid)[3][0].verdict == "no"


def test_sweep_deadline_then_confirm_resolves_no(engine: Engine) -> None:
    with freeze_time(T0):
        fid = _forecast(engine, {"kind": "deadline"})
        assert sweep(engine, settings=SETTINGS).outcomes[0].verdict == "none"
    with freeze_time(DUE + timedelta(days=8)):
        report = sweep(engine, settings=SETTINGS)
        assert report.outcomes[0].action == "proposed NO"
        with read_session(engine) as session:
            [item] = review(session)
        assert item["forecast"]["id"] == fid and item["verdict"] == "no"
        with write_session(engine) as session:
            confirm(session, fid, by="bob")
    forecast, _, _, [proposal] = _state(engine, fid)
    assert (forecast.status, forecast.outcome, forecast.resolved_by) == ("resolved", False, "bob")
    assert (proposal.status, proposal.decided_by) == ("confirmed", "bob")


def test_sweep_otherwise_no_proposes_no_when_nothing_was_found(
    engine: Engine, web: Loopback
) -> None:
    web.route("/news", "<p>nothing yet</p>")
    spec = {"kind": "page", "url": web.url + "/news", "contains": "失控", "otherwise": "no"}
    with freeze_time(T0):
        fid = _forecast(engine, spec)
        assert sweep(engine, settings=SETTINGS).outcomes[0].action == ""
    with freeze_time(DUE + timedelta(days=7, seconds=1)):
        assert sweep(engine, settings=SETTINGS).outcomes[0].action == "proposed NO"
    assert [p.verdict for p in _state(engine, fid)[3]] == ["no"]


def test_sweep_errors_back_off_exponentially_and_never_touch_the_forecast(
    engine: Engine, web: Loopback
) -> None:
    web.route("/news", "down", status=500)
    with freeze_time(T0) as clock:
        fid = _forecast(engine, {"kind": "page", "url": web.url + "/news", "contains": "x"})
        before = table_counts(engine)
        waits = []
        for _ in range(4):
            report = sweep(engine, settings=SETTINGS)
            assert len(report.errors) == 1
            [check] = _state(engine, fid)[1]
            waits.append(check.next_check_at - clock.time_to_freeze)
            assert sweep(engine, settings=SETTINGS).checked == 0  # not due while backing off
            clock.move_to(check.next_check_at)
    assert waits == [timedelta(minutes=m) for m in (5, 10, 20, 40)]
    forecast, [check], evidence, proposals = _state(engine, fid)
    assert forecast.status == "open" and proposals == [] and check.failures == 4
    assert [e.verdict for e in evidence] == ["error"] * 4
    assert evidence[0].http_status == 500 and "HTTP 500" in (evidence[0].error or "")
    after = table_counts(engine)
    assert {k: after[k] - before[k] for k in after if after[k] != before[k]} == {
        "evidence": 4,
        "receipt": 4,
    }


def test_sweep_backoff_is_capped_and_permanent_errors_wait_longer() -> None:
    s = SweepSettings()
    assert s.backoff(1, True, None) == timedelta(minutes=5)
    assert s.backoff(40, True, None) == timedelta(days=1)
    assert s.backoff(1, False, None) == timedelta(hours=6)
    assert s.backoff(1, True, 7200) == timedelta(hours=2)


def test_sweep_honours_retry_after(engine: Engine, web: Loopback) -> None:
    web.route("/busy", status=429, headers={"Retry-After": "7200"})
    with freeze_time(T0):
        fid = _forecast(engine, {"kind": "page", "url": web.url + "/busy", "contains": "x"})
        report = sweep(engine, settings=SETTINGS)
    assert report.errors and report.errors[0].temporary
    [check] = _state(engine, fid)[1]
    assert check.next_check_at == T0 + timedelta(hours=2)


def test_sweep_unchanged_source_records_304_and_does_not_repeat_the_proposal(
    engine: Engine, web: Loopback
) -> None:
    web.route("/news", PAGE, etag='"v7"')
    with freeze_time(T0) as clock:
        fid = _forecast(engine, {"kind": "page", "url": web.url + "/news", "contains": "失控"})
        sweep(engine, settings=SETTINGS)
        clock.tick(timedelta(days=1))
        second = sweep(engine, settings=SETTINGS)
    assert second.outcomes[0].unchanged and second.outcomes[0].verdict == "yes"
    assert second.outcomes[0].action.startswith("(already proposed")
    _, [check], [first_ev, second_ev], proposals = _state(engine, fid)
    assert check.etag == '"v7"' and web.seen[-1].headers["If-None-Match"] == '"v7"'
    assert (second_ev.unchanged, second_ev.http_status, second_ev.bytes) == (True, 304, 0)
    assert second_ev.sha256 == first_ev.sha256 and second_ev.excerpt == first_ev.excerpt
    assert len(proposals) == 1


@pytest.mark.parametrize(("kind", "flagged"), [("metaculus", True), ("json", False)])
def test_sweep_a_304_carries_the_finality_of_the_earlier_verdict(
    engine: Engine, web: Loopback, monkeypatch: pytest.MonkeyPatch, kind: str, flagged: bool
) -> None:
    """A market that resolved NO is unchanged (304) when a person has since resolved the forecast
    YES: its NO is still final, so the disagreement is flagged at once (not from due + grace). The
    json kind's NO (a value below its threshold) carried over by a 304 stays what it was: not
    final, so it waits for due + grace."""
    from resolvers.metaculus import TOKEN_ENV
    from tests.resolvers.recorded_sources import fixture

    monkeypatch.delenv(TOKEN_ENV, raising=False)
    if kind == "metaculus":
        web.route(
            "/api/posts/35181/",
            fixture("metaculus", "post_resolved_no.json"),
            content_type="application/json",
            etag='"m1"',
        )
        spec: dict[str, Any] = {"kind": "metaculus", "post": "35181", "base_url": web.url}
    else:
        web.route("/api", '{"standards": 1}', content_type="application/json", etag='"j1"')
        spec = {"kind": "json", "url": web.url + "/api", "path": "standards", "threshold": 2}
    with freeze_time(T0) as clock:
        fid = _forecast(engine, spec)
        first = sweep(engine, settings=SETTINGS)
        assert not first.errors
        with write_session(engine) as session:
            store.resolve(session, fid, True, by="alice", note="I read it otherwise")
        [check] = _state(engine, fid)[1]
        clock.move_to(check.next_check_at)
        second = sweep(engine, settings=SETTINGS)
    [outcome] = second.outcomes
    assert outcome.unchanged and web.seen[-1].headers["If-None-Match"] in ('"m1"', '"j1"')
    assert outcome.verdict == "no"
    disagreements = [p for p in _state(engine, fid)[3] if p.kind == "disagreement"]
    assert bool(disagreements) is flagged, outcome.action
    forecast = _state(engine, fid)[0]
    assert (forecast.status, forecast.outcome) == ("resolved", True)  # never flipped


def test_sweep_resolved_forecast_that_disagrees_is_flagged_never_flipped(
    engine: Engine, web: Loopback
) -> None:
    web.route("/news", PAGE)
    with freeze_time(T0):
        fid = _forecast(engine, {"kind": "page", "url": web.url + "/news", "contains": "失控"})
        with write_session(engine) as session:
            store.resolve(session, fid, False, by="alice", note="nothing published")
        report = sweep(engine, settings=SETTINGS)
    assert report.outcomes[0].action == "disagreement: resolved NO, source says YES"
    forecast, [check], _, [proposal] = _state(engine, fid)
    assert (forecast.status, forecast.outcome) == ("resolved", False)
    assert (proposal.kind, proposal.verdict) == ("disagreement", "yes")
    assert check.next_check_at == T0 + timedelta(days=30)
    with write_session(engine) as session:
        assert confirm(session, fid, by="alice").status == "acknowledged"
    assert _state(engine, fid)[0].outcome is False


def test_sweep_absence_never_disagrees_with_a_yes(engine: Engine, web: Loopback) -> None:
    web.route("/news", "<p>page rewritten</p>")
    with freeze_time(T0):
        fid = _forecast(engine, {"kind": "page", "url": web.url + "/news", "contains": "失控"})
        with write_session(engine) as session:
            store.resolve(session, fid, True, by="alice")
        sweep(engine, settings=SETTINGS)
    assert _state(engine, fid)[3] == []


def test_sweep_disputed_proposal_not_repeated_for_the_same_body(
    engine: Engine, web: Loopback
) -> None:
    web.route("/news", PAGE)
    with freeze_time(T0) as clock:
        fid = _forecast(engine, {"kind": "page", "url": web.url + "/news", "contains": "失控"})
        sweep(engine, settings=SETTINGS)
        with write_session(engine) as session:
            dispute(session, fid, by="bob", note="that is a draft, not a standard")
        clock.tick(timedelta(days=1))
        again = sweep(engine, settings=SETTINGS)
        assert again.outcomes[0].action.startswith("(disputed before")
        web.route("/news", PAGE.replace("</p>", "（正式发布）</p>"))
        clock.tick(timedelta(days=1))
        changed = sweep(engine, settings=SETTINGS)
    assert changed.outcomes[0].action == "proposed YES"
    assert [p.status for p in _state(engine, fid)[3]] == ["disputed", "pending"]


def test_sweep_confirm_picks_among_several_pending_proposals(engine: Engine, web: Loopback) -> None:
    web.route("/news", PAGE)
    web.route("/api", '{"n": 0}', content_type="application/json")
    with freeze_time(T0):
        fid = _forecast(
            engine,
            {"kind": "page", "url": web.url + "/news", "contains": "失控"},
            {"kind": "json", "url": web.url + "/api", "path": "n", "op": ">", "threshold": 0},
        )
    with freeze_time(DUE + timedelta(days=8)):
        sweep(engine, settings=SETTINGS)
        with write_session(engine) as session, pytest.raises(StateError, match="--proposal"):
            confirm(session, fid, by="bob")
        no = next(p for p in _state(engine, fid)[3] if p.verdict == "no")
        with write_session(engine) as session:
            confirm(session, fid, by="bob", proposal_id=no.id)
    forecast, _, _, proposals = _state(engine, fid)
    assert forecast.outcome is False
    assert sorted(p.status for p in proposals) == ["confirmed", "superseded"]


def test_sweep_one_broken_check_does_not_stop_the_others(engine: Engine, web: Loopback) -> None:
    web.route("/news", PAGE)
    with freeze_time(T0):
        fid = _forecast(engine, {"kind": "page", "url": web.url + "/news", "contains": "失控"})
        with write_session(engine) as session:  # a spec whose kind was uninstalled since
            session.add(
                Check(
                    forecast_id=fid,
                    kind="uninstalled",
                    params={},
                    mode="propose",
                    created_at=T0,
                    next_check_at=T0,
                )
            )
        report = sweep(engine, settings=SETTINGS)
    assert report.checked == 2 and len(report.errors) == 1
    [error] = report.errors
    assert "uninstalled" in (error.error or "") and error.temporary is False
    assert error.next_check_at == T0 + timedelta(hours=6)
    assert len(_state(engine, fid)[3]) == 1


def test_sweep_respects_live_leases_and_takes_expired_ones(engine: Engine, web: Loopback) -> None:
    web.route("/news", PAGE)
    with freeze_time(T0) as clock:
        fid = _forecast(engine, {"kind": "page", "url": web.url + "/news", "contains": "失控"})
        with write_session(engine) as session:
            session.execute(
                update(Check).values(claimed_by="other", claimed_until=T0 + timedelta(minutes=5))
            )
        assert sweep(engine, settings=SETTINGS).checked == 0
        clock.tick(timedelta(minutes=5, seconds=1))
        assert sweep(engine, settings=SETTINGS).checked == 1
    assert len(_state(engine, fid)[2]) == 1


def test_sweep_limit_checks_at_most_n(engine: Engine, web: Loopback) -> None:
    web.route("/news", PAGE)
    with freeze_time(T0):
        for _ in range(5):
            _forecast(engine, {"kind": "page", "url": web.url + "/news", "contains": "失控"})
        assert sweep(engine, settings=SETTINGS, limit=3).checked == 3
        assert sweep(engine, settings=SETTINGS).checked == 2


def test_check_forecast_dry_run_writes_nothing(engine: Engine, web: Loopback) -> None:
    web.route("/news", PAGE)
    with freeze_time(T0):
        fid = _forecast(engine, {"kind": "page", "url": web.url + "/news", "contains": "失控"})
        before = table_counts(engine)
        report = check_forecast(engine, fid, dry_run=True, settings=SETTINGS)
    assert report.outcomes[0].action == "would propose YES"
    assert table_counts(engine) == before


def test_check_forecast_runs_checks_that_are_not_due(engine: Engine, web: Loopback) -> None:
    web.route("/news", PAGE)
    with freeze_time(T0):
        fid = _forecast(engine, {"kind": "page", "url": web.url + "/news", "contains": "失控"})
        sweep(engine, settings=SETTINGS)
        report = check_forecast(engine, fid, settings=SETTINGS)
    assert report.checked == 1 and len(_state(engine, fid)[2]) == 2


def test_decide_rules_table() -> None:
    common: dict[str, Any] = {
        "otherwise": None,
        "outcome": None,
        "due": DUE,
        "grace": timedelta(days=7),
    }
    early, late = T0, DUE + timedelta(days=8)

    def d(verdict: str, final: bool, mode: str, now: datetime, status: str = "open") -> str:
        return decide(
            verdict=verdict, final=final, mode=mode, status=status, now=now, **common
        ).action

    assert d("yes", False, "auto", early) == "propose"
    assert d("yes", True, "auto", early) == "resolve"
    assert d("yes", True, "propose", early) == "propose"
    assert d("no", False, "auto", early) == ""
    assert d("no", True, "auto", early) == "resolve"
    assert d("no", False, "auto", late) == "propose"
    assert d("annul", True, "auto", early) == "annul"
    assert d("annul", False, "auto", early) == "propose"
    assert d("none", False, "auto", late) == ""
    assert d("yes", True, "auto", early, status="annulled") == "disagree"


def test_sweep_claims_rows_in_the_database_not_in_memory(engine: Engine, web: Loopback) -> None:
    """A claim is visible to other workers while the checks run."""
    web.route("/slow", PAGE, delay=1.0)
    seen: list[Any] = []
    with freeze_time(T0):
        _forecast(engine, {"kind": "page", "url": web.url + "/slow", "contains": "失控"})
    t = threading.Thread(target=lambda: seen.append(sweep(engine, settings=SETTINGS)))
    t.start()
    deadline = datetime.now() + timedelta(seconds=5)
    claimed: list[Any] = []
    while not claimed and datetime.now() < deadline:
        with read_session(engine) as session:
            claimed = list(
                session.scalars(select(Check.claimed_by).where(Check.claimed_by.is_not(None)))
            )
    t.join()
    assert claimed and ":" in claimed[0]
    assert seen[0].checked == 1
