"""check, sweep, review, confirm, dispute, evidence and ``add --check`` through the real CLI,
against a real loopback server and database."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from predictions.db import read_session
from predictions.models import Check, Receipt
from tests.conftest import CliInvoke
from tests.resolvers.loopback import Loopback

PAGE = "<html><body><p>关于人工智能失控风险的国家标准正式发布</p></body></html>"


@pytest.fixture
def web() -> Iterator[Loopback]:
    with Loopback() as server:
        yield server


@pytest.fixture
def tracker(cli: CliInvoke) -> CliInvoke:
    """The CLI with loopback sources allowed (as on an intranet)."""
    assert cli("config", "set", "resolvers.allow_private", "true").exit_code == 0
    return cli


def _add(tracker: CliInvoke, *checks: str) -> int:
    args = ["add", "AI loss-of-control standard", "-p", "35%", "--due", "+1y"]
    args += ["--criteria", "Resolves YES if a national standard is published.", "--json"]
    for spec in checks:
        args += ["--check", spec]
    result = tracker(*args)
    assert result.exit_code == 0, result.output
    return int(json.loads(result.output)["id"])


def test_add_check_stores_validated_specs(tracker: CliInvoke, web: Loopback) -> None:
    result = tracker(
        "add",
        "AI standard",
        "-p",
        "35%",
        "--due",
        "+1y",
        "--criteria",
        "c",
        "--check",
        f"page:url={web.url}/n,contains=失控,contains=loss of control",
        "--check",
        '{"kind": "deadline"}',
    )
    assert result.exit_code == 0 and "with 2 checks" in result.output
    report = json.loads(tracker("check", "1", "--dry-run", "--json").output)
    assert [o["kind"] for o in report["outcomes"]] == ["page", "deadline"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nope:url=https://x.org", "check kind: got 'nope', expected one of"),
        ("page:contains=x", "page check url: missing, expected an http:// or https:// URL"),
        ("page:url=ftp://x.org/a,contains=x", "expected an http:// or https:// URL"),
        ("page:url=https://x.org,regex=((", "page check regex"),
        ("json:url=https://x.org,path=a..b", "json check path"),
        ("page:url=https://x.org,contains=x,mode=later", "page check mode"),
        ("{not json", "a valid JSON object"),
    ],
)
def test_add_check_refuses_bad_specs_and_stores_nothing(
    tracker: CliInvoke, counts: Callable[[], dict[str, int]], spec: str, message: str
) -> None:
    before = counts()
    result = tracker("add", "x", "-p", "50%", "--due", "+1y", "--criteria", "c", "--check", spec)
    assert result.exit_code == 2
    assert result.output.startswith("Error: ") and message in result.output
    assert "Traceback" not in result.output
    assert counts() == before


def test_check_prints_verdict_and_receipt(tracker: CliInvoke, web: Loopback) -> None:
    web.route("/n", PAGE)
    fid = _add(tracker, f"page:url={web.url}/n,contains=失控")
    result = tracker("check", str(fid))
    assert result.exit_code == 0, result.output
    assert f"check 1 (page) on forecast {fid}: YES -> proposed YES" in result.output
    assert "HTTP 200" in result.output and f"{web.url}/n" in result.output
    assert "excerpt: 关于人工智能失控风险的国家标准正式发布" in result.output


def test_sweep_review_confirm_evidence(tracker: CliInvoke, web: Loopback) -> None:
    web.route("/n", PAGE)
    fid = _add(tracker, f"page:url={web.url}/n,contains=失控")
    swept = tracker("sweep")
    assert swept.exit_code == 0
    assert swept.output.startswith("Checked 1 in ")
    assert f"forecast {fid}: proposed YES (page, check 1)" in swept.output
    assert "Checking" not in swept.output  # no progress bar when not on a terminal
    listed = json.loads(tracker("review", "--json").output)
    assert [(i["forecast"]["id"], i["verdict"]) for i in listed] == [(fid, "yes")]
    text = tracker("review").output
    assert "proposal 1: YES  (from page)" in text and f"url:     {web.url}/n" in text
    confirmed = tracker("confirm", str(fid))
    assert confirmed.output.strip() == f"Forecast {fid} resolved YES (proposal 1)."
    shown = json.loads(tracker("show", str(fid), "--json").output)
    assert (shown["status"], shown["outcome"], shown["resolution_evidence"]) == (
        "resolved",
        True,
        f"{web.url}/n",
    )
    [ev] = json.loads(tracker("evidence", str(fid), "--json").output)
    assert (ev["verdict"], ev["http_status"], ev["kind"], ev["url"]) == (
        "yes",
        200,
        "page",
        f"{web.url}/n",
    )
    assert len(ev["sha256"]) == 64
    table = tracker("evidence", str(fid)).output
    assert "checked" in table and ev["sha256"][:12] in table
    assert tracker("review").output.strip() == "Nothing to review."


def test_dispute_needs_a_note_and_sets_the_proposal_aside(
    tracker: CliInvoke, web: Loopback
) -> None:
    web.route("/n", PAGE)
    fid = _add(tracker, f"page:url={web.url}/n,contains=失控")
    tracker("sweep")
    assert tracker("dispute", str(fid)).exit_code == 2
    result = tracker("dispute", str(fid), "--note", "a draft, not the standard", "--json")
    assert json.loads(result.output)["status"] == "disputed"
    assert json.loads(tracker("show", str(fid), "--json").output)["status"] == "open"
    again = tracker("confirm", str(fid))
    assert again.exit_code == 2 and "has no pending proposal" in again.output


def test_sweep_exits_1_and_lists_errors(tracker: CliInvoke, web: Loopback) -> None:
    web.route("/ok", PAGE)
    web.route("/broken", "oops", status=503, headers={"Retry-After": "3600"})
    _add(tracker, f"page:url={web.url}/ok,contains=失控")
    fid = _add(tracker, f"page:url={web.url}/broken,contains=失控")
    result = tracker("sweep")
    assert result.exit_code == 1
    assert "Checked 2 in" in result.output and "1 yes, 1 error" in result.output
    assert f"check 2 (page) on forecast {fid}: HTTP 503 from {web.url}/broken" in result.output
    report = json.loads(tracker("sweep", "--json").output)  # nothing due now
    assert (report["checked"], report["errors"]) == (0, 0)


def test_sweep_json_lists_every_outcome(tracker: CliInvoke, web: Loopback) -> None:
    web.route("/n", PAGE)
    _add(tracker, f"page:url={web.url}/n,contains=失控", "deadline")
    result = tracker("sweep", "--json", "--limit", "5")
    report = json.loads(result.output)
    assert report["checked"] == 2 and result.exit_code == 0
    assert {o["verdict"] for o in report["outcomes"]} == {"yes", "none"}


def test_check_unknown_forecast_exits_2(tracker: CliInvoke) -> None:
    result = tracker("check", "99")
    assert result.exit_code == 2 and result.output.startswith("Error: forecast")


def test_ssrf_guard_on_by_default(cli: CliInvoke, web: Loopback) -> None:
    web.route("/n", PAGE)
    _add(cli, f"page:url={web.url}/n,contains=失控")
    result = cli("sweep")
    assert result.exit_code == 1 and "refused to connect to 127.0.0.1" in result.output
    assert "tracker config set resolvers.allowed_networks 127.0.0.1/32" in result.output
    assert web.hits["/n"] == 0


def test_check_add_attaches_a_check_to_a_registered_forecast_and_runs_it(
    tracker: CliInvoke, web: Loopback
) -> None:
    web.route("/news", PAGE)
    fid = _add(tracker)  # registered without checks
    assert tracker("check", str(fid)).output.startswith(f"Forecast {fid} has no checks to run")
    result = tracker("check", str(fid), "--add", f"page:url={web.url}/news,contains=失控")
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Forecast {fid}: added check 1 (page).\n")
    assert "YES" in result.output and "proposed YES" in result.output
    evidence = json.loads(tracker("evidence", str(fid), "--json").output)
    assert [(e["kind"], e["verdict"]) for e in evidence] == [("page", "yes")]
    # a second one, as JSON: the new id is in the report, and both checks run
    report = json.loads(
        tracker("check", str(fid), "--add", '{"kind": "deadline"}', "--json").output
    )
    assert report["added"] == [2]
    assert sorted(o["kind"] for o in report["outcomes"]) == ["deadline", "page"]
    verified = tracker("verify")  # each attached check has its receipt in the chain
    assert verified.exit_code == 0 and "receipts verify" in verified.output, verified.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--add", "page:url=https://x.org,contains=x", "--add", "page:contains=x"],
            "page check url",
        ),
        (["--add", "nope:url=https://x.org"], "check kind: got 'nope'"),
        (["--add", '{"kind": "deadline"}', "--dry-run"], "--add: got"),
    ],
)
def test_check_add_refuses_bad_specs_and_attaches_none(
    tracker: CliInvoke, counts: Callable[[], dict[str, int]], args: list[str], message: str
) -> None:
    fid = _add(tracker)
    before = counts()
    result = tracker("check", str(fid), *args)
    assert result.exit_code == 2 and result.output.startswith("Error: ")
    assert message in result.output and "Traceback" not in result.output
    assert counts() == before


def test_check_add_to_an_unknown_forecast_is_refused(
    tracker: CliInvoke, counts: Callable[[], dict[str, int]]
) -> None:
    before = counts()
    result = tracker("check", "77", "--add", '{"kind": "deadline"}')
    assert result.exit_code == 2
    assert result.output == "Error: forecast: got 77, expected the id of an existing forecast\n"
    assert counts() == before


def test_check_stop_and_resume_a_check_with_receipts(
    tracker: CliInvoke, web: Loopback, engine: Engine
) -> None:
    web.route("/news", PAGE)
    fid = _add(tracker, f"page:url={web.url}/news,contains=失控", '{"kind": "deadline"}')
    result = tracker("check", str(fid), "--stop", "1", "--note", "the site moved")
    assert result.exit_code == 0, result.output
    assert result.output == f"Forecast {fid}: check 1 (page) stopped.\n"
    assert not web.seen  # --stop runs nothing
    # a sweep and tracker check pass the stopped check by
    sweep = json.loads(tracker("sweep", "--json").output)
    assert [o["kind"] for o in sweep["outcomes"]] == ["deadline"]
    report = json.loads(tracker("check", str(fid), "--json").output)
    assert [o["kind"] for o in report["outcomes"]] == ["deadline"]
    assert not web.seen
    # the stop is in the receipts chain, with who and why
    with read_session(engine) as session:
        stop = session.scalars(select(Receipt).where(Receipt.kind == "stop")).one()
    assert json.loads(stop.payload) == {"by": "alice", "check": 1, "note": "the site moved"}
    assert tracker("verify").exit_code == 0
    # show lists the checks, with the stopped one and how to set it going again
    shown = json.loads(tracker("show", str(fid), "--json").output)["checks"]
    assert [(c["id"], c["kind"], c["running"]) for c in shown] == [
        (1, "page", False),
        (2, "deadline", True),
    ]
    assert shown[0]["next_check_at"] is None and shown[1]["last_checked_at"] is not None
    text = tracker("show", str(fid)).output
    assert f"    1  page (propose)  stopped (tracker check {fid} --resume 1)" in text
    resumed = json.loads(tracker("check", str(fid), "--resume", "1", "--json").output)
    assert resumed == {"forecast": fid, "check": 1, "kind": "page", "running": True}
    sweep = json.loads(tracker("sweep", "--json").output)  # due at once again
    assert [o["kind"] for o in sweep["outcomes"]] == ["page"]
    assert tracker("verify").exit_code == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--stop", "9"], "check of forecast 1: got 9, expected the id of an existing check"),
        (["--resume", "1"], "check 1 of forecast 1 is running already"),
        (["--stop", "1", "--resume", "1"], "--resume: got 1, expected either --stop or --resume"),
        (["--stop", "1", "--dry-run"], "--stop: got 1, expected no --add or --dry-run with it"),
        (["--stop", "1", "--note", "a\x00b"], "note: got"),
    ],
)
def test_check_stop_and_resume_refuse_bad_input_and_change_nothing(
    tracker: CliInvoke, counts: Callable[[], dict[str, int]], args: list[str], message: str
) -> None:
    fid = _add(tracker, '{"kind": "deadline"}')
    assert fid == 1
    before = counts()
    result = tracker("check", str(fid), *args)
    assert result.exit_code == 2 and result.output.startswith("Error: "), result.output
    assert message in result.output and "Traceback" not in result.output
    assert counts() == before


def test_check_stopped_behind_the_tools_back_fails_verify(
    tracker: CliInvoke, engine: Engine
) -> None:
    _add(tracker, '{"kind": "deadline"}')
    with engine.begin() as conn:
        conn.execute(update(Check).values(enabled=False))
    result = tracker("verify")
    assert result.exit_code == 1
    assert "check 1: enabled is False in the table, the receipts chain says True" in result.output


@pytest.mark.parametrize("fmt", ["json", "toml", "csv"])
def test_check_a_stopped_check_survives_export_and_import(
    tracker: CliInvoke, tmp_path: Path, db_url: str, fmt: str
) -> None:
    fid = _add(tracker, '{"kind": "deadline"}', "page:url=https://example.org/a,contains=x")
    assert tracker("check", str(fid), "--stop", "2").exit_code == 0
    first = tmp_path / f"first.{fmt}"
    assert tracker("export", "--format", fmt, "-o", str(first)).exit_code == 0
    other = tmp_path / "other.db"
    env = {"TRACKER_DB": f"sqlite:///{other}"}
    imported = tracker("import", str(first), env=env)
    assert imported.exit_code == 0, imported.output
    second = tmp_path / f"second.{fmt}"
    assert tracker("export", "--format", fmt, "-o", str(second), env=env).exit_code == 0
    assert second.read_bytes() == first.read_bytes()
    report = json.loads(tracker("check", "1", "--dry-run", "--json", env=env).output)
    assert [o["kind"] for o in report["outcomes"]] == ["deadline"]  # the page check stays stopped
    verified = tracker("verify", env=env)
    assert verified.exit_code == 0, verified.output


def test_check_an_import_refuses_a_stopped_flag_that_is_not_true_or_false(
    tracker: CliInvoke, tmp_path: Path, counts: Callable[[], dict[str, int]]
) -> None:
    path = tmp_path / "f.toml"
    path.write_text(
        '[[forecast]]\ntitle = "T"\ncriteria = "C"\ndue = 2031-01-01\nprobability = 0.5\n'
        '  [[forecast.check]]\n  kind = "deadline"\n  stopped = "yes"\n',
        encoding="utf-8",
    )
    before = counts()
    result = tracker("import", str(path))
    assert result.exit_code == 2
    assert "check 1: stopped: got 'yes', expected true or false" in result.output
    assert counts() == before
