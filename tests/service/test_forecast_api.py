"""The forecast API (/api/v1) with tokens, on SQLite and PostgreSQL: every endpoint, every question
type; bad input gets the CLI's Error line for the same input (422) and changes nothing; the
ledger records the signed-in user; owners and roles on a few routes (the full matrix walks the
route table in test_routes)."""

from __future__ import annotations

import json
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from freezegun import freeze_time
from sqlalchemy import create_engine

from predictions import accounts
from tests.conftest import CliInvoke, table_counts
from tests.service.support import add_user

CRITERIA = "Resolves YES if at least two provincial governments announce AI computing clusters."
NOW = "2026-03-01 12:00:00"

#: One question of each type, as the API's body gives it: question fields and a forecast.
TYPES: dict[str, dict[str, Any]] = {
    "binary": {"probability": "70%"},
    "numeric": {"numeric": "0..34", "open": "upper", "quantiles": "10%=4,50%=8,90%=15"},
    "date": {"date": "2026-01-01..2035-12-31", "quantiles": "25%=2027-06,50%=2028-06,75%=2030"},
    "choice": {
        "options": "DeepSeek,Alibaba Qwen,Moonshot",
        "ordered": True,
        "probability": "50,30,20",
    },
}
#: The same questions as ``tracker add`` options.
CLI_TYPES: dict[str, list[str]] = {
    "binary": ["-p", "70%"],
    "numeric": ["--numeric", "0..34", "--open", "upper", "--quantiles", "10%=4,50%=8,90%=15"],
    "date": ["--date", "2026-01-01..2035-12-31", "--quantiles", "25%=2027-06,50%=2028-06,75%=2030"],
    "choice": ["--options", "DeepSeek,Alibaba Qwen,Moonshot", "--ordered", "-p", "50,30,20"],
}
#: A second forecast and an outcome of each type.
UPDATES = {
    "binary": ({"probability": "0.6"}, "yes", "YES"),
    "numeric": ({"distribution": "normal:9,3"}, "11", "11"),
    "date": ({"quantiles": "10%=2027,50%=2028-06-30,90%=2031"}, "2028-06-30", "2028-06-30"),
    "choice": ({"probability": "20,30,50"}, "Moonshot", "Moonshot"),
}


class Api:
    """A client holding each user's token: ``api.post("ana", path, json=...)``."""

    def __init__(self, client: TestClient, tokens: dict[str, str]) -> None:
        self.client = client
        self.tokens = tokens

    def __call__(self, who: str, method: str, path: str, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        return self.client.request(method, path, headers=headers, **kwargs)

    def get(self, who: str, path: str, **kwargs: Any) -> Any:
        return self(who, "GET", path, **kwargs)

    def post(self, who: str, path: str, **kwargs: Any) -> Any:
        return self(who, "POST", path, **kwargs)

    def ok(self, who: str, method: str, path: str, status: int = 200, **kwargs: Any) -> Any:
        response = self(who, method, path, **kwargs)
        assert response.status_code == status, response.text
        return response.json()


@pytest.fixture
def api(app: FastAPI, client: TestClient) -> Api:
    """Users mei (admin), ana and bo (members), vic (viewer), each with a token."""
    tokens = {}
    for name, role in (("mei", "admin"), ("ana", "member"), ("bo", "member"), ("vic", "viewer")):
        add_user(app, name, role, password="correct horse battery")
        with app.state.store.write() as session:
            tokens[name] = accounts.create_token(session, name, "test", by=name)[1]
    return Api(client, tokens)


def _body(kind: str, **extra: Any) -> dict[str, Any]:
    return {
        "title": f"A {kind} question",
        "criteria": CRITERIA,
        "due": "2030-12-31",
        "tags": ["china"],
        **TYPES[kind],
        **extra,
    }


def _add(api: Api, kind: str, who: str = "ana", **extra: Any) -> dict[str, Any]:
    return api.ok(who, "POST", "/api/v1/forecasts", 201, json=_body(kind, **extra))  # type: ignore[no-any-return]


def _cli_json(cli: CliInvoke, *args: str) -> Any:
    result = cli(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _cli_error(cli: CliInvoke, *args: str) -> str:
    result = cli(*args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert len(lines) == 1, result.output
    return lines[0].removeprefix("Error: ")


# --- add, show, list --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(TYPES))
def test_api_add_of_every_type_is_the_cli_add(api: Api, cli: CliInvoke, kind: str) -> None:
    with freeze_time(NOW):
        record = _add(api, kind)
        cli_record = _cli_json(
            cli, "add", f"A {kind} question", *CLI_TYPES[kind], "--due", "2030-12-31",
            "--criteria", CRITERIA, "--tag", "china", "--by", "ana",
        )  # fmt: skip
    assert record["author"] == "ana" and record["forecaster"] == "ana"
    assert record["kind"] == kind and record["estimates"][0]["by"] == "ana"
    # the same input gives the same forecast (but its id)
    assert {**record, "id": 0} == {**cli_record, "id": 0}
    shown = api.ok("vic", "GET", f"/api/v1/forecasts/{record['id']}", params={"by": "ana"})
    assert shown == _cli_json(cli, "show", str(record["id"]), "--by", "ana")
    assert shown["checks"] == [] and shown["history"] == [] and shown["amendments"] == []
    mine = api.ok("vic", "GET", f"/api/v1/forecasts/{record['id']}")
    assert mine["forecaster"] == "vic" and mine["estimates"] == shown["estimates"]


def test_api_add_with_checks_and_a_timezone(api: Api, cli: CliInvoke) -> None:
    with freeze_time(NOW):
        record = _add(
            api, "date", due="2030-12-31", timezone="Asia/Shanghai",
            checks=["deadline", {"kind": "json", "url": "https://example.org/x.json", "path": "n"}],
        )  # fmt: skip
    assert record["due"] == "2030-12-31T15:59:59.000000Z"  # the end of that day in Shanghai
    assert [c["kind"] for c in record["checks"]] == ["deadline", "json"]
    shown = api.ok("ana", "GET", f"/api/v1/forecasts/{record['id']}")
    assert [(c["kind"], c["running"]) for c in shown["checks"]] == [
        ("deadline", True),
        ("json", True),
    ]


def test_api_list_pages_and_filters(api: Api, cli: CliInvoke) -> None:
    with freeze_time(NOW):
        ids = [_add(api, kind)["id"] for kind in TYPES]
        _add(api, "binary", who="bo", title="Something else", tags=["eu"], due="2027-01-01")
        listed = api.ok("vic", "GET", "/api/v1/forecasts", params={"limit": 2})
        assert (listed["total"], listed["limit"], listed["offset"]) == (5, 2, 0)
        assert listed["items"][0]["title"] == "Something else"  # soonest due first
        rest = api.ok("vic", "GET", "/api/v1/forecasts", params={"limit": 2, "offset": 2})
        assert [f["id"] for f in rest["items"]] == ids[1:3]
        china = api.ok("vic", "GET", "/api/v1/forecasts", params={"tag": "china", "by": "ana"})
        assert [f["id"] for f in china["items"]] == ids and china["total"] == 4
        assert all(f["forecaster"] == "ana" for f in china["items"])
        assert china["items"] == _cli_json(cli, "list", "--tag", "china", "--by", "ana")
        found = api.ok("vic", "GET", "/api/v1/forecasts", params={"search": "ELSE"})
        assert [f["title"] for f in found["items"]] == ["Something else"]
        none = api.ok("vic", "GET", "/api/v1/forecasts", params={"status": "resolved"})
        assert none == {"items": [], "total": 0, "limit": 100, "offset": 0}


# --- estimates, resolution, corrections -------------------------------------------------------


@pytest.mark.parametrize("kind", list(TYPES))
def test_api_estimates_and_resolution_of_every_type(api: Api, cli: CliInvoke, kind: str) -> None:
    update, outcome, said = UPDATES[kind]
    with freeze_time(NOW):
        fid = _add(api, kind)["id"]
        # bo forecasts ana's question: members add estimates on any forecast
        record = api.ok("bo", "POST", f"/api/v1/forecasts/{fid}/estimates", 201, json=update)
        assert record["forecaster"] == "bo" and record["estimate"]["by"] == "bo"
        assert record["previous"] is None and record["scored"] is True
        again = api.ok("bo", "POST", f"/api/v1/forecasts/{fid}/estimates", 201, json=update)
        assert again["previous"] == record["estimate"]
    with freeze_time("2031-01-02"):
        late = api.ok("ana", "POST", f"/api/v1/forecasts/{fid}/estimates", 201, json=update)
        assert late["scored"] is False
        resolved = api.ok(
            "ana", "POST", f"/api/v1/forecasts/{fid}/resolution",
            json={"outcome": outcome, "note": "announced", "evidence": "https://example.org"},
        )  # fmt: skip
    assert resolved["status"] == "resolved" and resolved["resolved_by"] == "ana"
    assert resolved["resolution"] == said
    assert resolved["resolution_evidence"] == "https://example.org"
    shown = api.ok("vic", "GET", f"/api/v1/forecasts/{fid}", params={"by": "ana"})
    assert [e["by"] for e in shown["estimates"]] == ["ana", "bo", "bo", "ana"]
    assert shown == _cli_json(cli, "show", str(fid), "--by", "ana")
    assert f"status:   resolved ({said})" in cli("show", str(fid)).stdout
    again = api.post("ana", f"/api/v1/forecasts/{fid}/resolution", json={"outcome": outcome})
    assert again.status_code == 409 and "already" in again.json()["detail"]


def test_api_amend_annul_withdraw_reopen(api: Api, cli: CliInvoke) -> None:
    with freeze_time(NOW):
        fid = _add(api, "binary")["id"]
        amended = api.ok(
            "ana", "PATCH", f"/api/v1/forecasts/{fid}",
            json={"title": "New title", "due": "2031-06-30", "timezone": "Europe/Berlin",
                  "tags": ["eu"], "untags": ["china"], "note": "clearer"},
        )  # fmt: skip
        assert amended["title"] == "New title" and amended["tags"] == ["eu"]
        assert amended["due"] == "2031-06-30T21:59:59.000000Z"
        assert [(a["field"], a["by"]) for a in amended["amendments"]] == [
            ("title", "ana"),
            ("due", "ana"),
            ("tags", "ana"),
        ]
        annulled = api.ok(
            "ana", "POST", f"/api/v1/forecasts/{fid}/annulment", json={"note": "moot"}
        )
        assert annulled["status"] == "annulled" and annulled["resolved_by"] == "ana"
        reopened = api.ok(
            "ana", "POST", f"/api/v1/forecasts/{fid}/reopening", json={"note": "oops"}
        )
        assert reopened["status"] == "open" and reopened["was"] == "annulled"
        assert reopened["auto_checks"] == []
        gone = api.ok("mei", "POST", f"/api/v1/forecasts/{fid}/withdrawal", json={"note": "dup"})
        assert gone["status"] == "withdrawn" and gone["resolved_by"] == "mei"  # an admin may
    shown = api.ok("vic", "GET", f"/api/v1/forecasts/{fid}")
    assert [(h["kind"], h["by"]) for h in shown["history"]] == [
        ("annul", "ana"),
        ("reopen", "ana"),
        ("withdraw", "mei"),
    ]
    assert shown == _cli_json(cli, "show", str(fid), "--by", "vic")
    assert cli("verify").exit_code == 0


# --- bad input: the CLI's line, nothing changed -----------------------------------------------


def _cli_add(kind: str, *extra: str) -> list[str]:
    base = ["add", "A question", "--due", "2030-12-31", "--criteria", CRITERIA]
    return base + CLI_TYPES[kind] + list(extra)


#: (the CLI's arguments, the API's method, path and body) giving the same bad input.
BAD: list[tuple[list[str], str, str, dict[str, Any]]] = [
    (["add", "T", "-p", "170%", "--due", "2030", "--criteria", "c"], "POST", "/api/v1/forecasts",
     {"title": "T", "probability": "170%", "due": "2030", "criteria": "c"}),
    (["add", "T", "-p", "70%", "--due", "yesterday", "--criteria", "c"], "POST",
     "/api/v1/forecasts", {"title": "T", "probability": "70%", "due": "yesterday", "criteria": "c"}),
    (["add", "T", "-p", "70%", "--due", "someday", "--criteria", "c"], "POST",
     "/api/v1/forecasts", {"title": "T", "probability": "70%", "due": "someday", "criteria": "c"}),
    (["add", "T", "-p", "70%", "--due", "2030", "--criteria", "  "], "POST",
     "/api/v1/forecasts", {"title": "T", "probability": "70%", "due": "2030", "criteria": "  "}),
    (["add", "T", "--quantiles", "10%=1,50%=2,90%=3", "--due", "2030", "--criteria", "c"], "POST",
     "/api/v1/forecasts",
     {"title": "T", "quantiles": "10%=1,50%=2,90%=3", "due": "2030", "criteria": "c"}),
    (["add", "T", "--numeric", "0..34", "--quantiles", "10%=9,50%=8,90%=15", "--due", "2030",
      "--criteria", "c"], "POST", "/api/v1/forecasts",
     {"title": "T", "numeric": "0..34", "quantiles": "10%=9,50%=8,90%=15", "due": "2030",
      "criteria": "c"}),
    (["add", "T", "--numeric", "34..0", "--quantiles", "10%=9,50%=8,90%=15", "--due", "2030",
      "--criteria", "c"], "POST", "/api/v1/forecasts",
     {"title": "T", "numeric": "34..0", "quantiles": "10%=9,50%=8,90%=15", "due": "2030",
      "criteria": "c"}),
    (["add", "T", "--date", "2026-01-01..2035-12-31", "-p", "70%", "--due", "2030",
      "--criteria", "c"], "POST", "/api/v1/forecasts",
     {"title": "T", "date": "2026-01-01..2035-12-31", "probability": "70%", "due": "2030",
      "criteria": "c"}),
    (["add", "T", "--options", "A,B,C", "-p", "50,30,30", "--due", "2030", "--criteria", "c"],
     "POST", "/api/v1/forecasts",
     {"title": "T", "options": "A,B,C", "probability": "50,30,30", "due": "2030",
      "criteria": "c"}),
    (["add", "T", "--options", "A", "-p", "100", "--due", "2030", "--criteria", "c"],
     "POST", "/api/v1/forecasts",
     {"title": "T", "options": "A", "probability": "100", "due": "2030", "criteria": "c"}),
    (["add", "T", "-p", "70%", "--open", "upper", "--due", "2030", "--criteria", "c"],
     "POST", "/api/v1/forecasts",
     {"title": "T", "probability": "70%", "open": "upper", "due": "2030", "criteria": "c"}),
    (["add", "T", "-p", "70%", "--due", "2030", "--criteria", "c", "--check", "nosuch:x=1"],
     "POST", "/api/v1/forecasts",
     {"title": "T", "probability": "70%", "due": "2030", "criteria": "c",
      "checks": ["nosuch:x=1"]}),
    (["add", "T", "-p", "70%", "--due", "2030", "--criteria", "c", "--tag", "a b"],
     "POST", "/api/v1/forecasts",
     {"title": "T", "probability": "70%", "due": "2030", "criteria": "c", "tags": ["a b"]}),
    (["update", "1", "-p", "0"], "POST", "/api/v1/forecasts/1/estimates", {"probability": "0"}),
    (["update", "2", "-p", "70%"], "POST", "/api/v1/forecasts/2/estimates", {"probability": "70%"}),
    (["update", "2", "--quantiles", "10%=40,50%=8,90%=15"], "POST",
     "/api/v1/forecasts/2/estimates", {"quantiles": "10%=40,50%=8,90%=15"}),
    (["update", "3", "--distribution", "normal:2028-06"], "POST", "/api/v1/forecasts/3/estimates",
     {"distribution": "normal:2028-06"}),
    (["update", "4", "-p", "50,50"], "POST", "/api/v1/forecasts/4/estimates",
     {"probability": "50,50"}),
    (["resolve", "1", "maybe"], "POST", "/api/v1/forecasts/1/resolution", {"outcome": "maybe"}),
    (["resolve", "2", "many"], "POST", "/api/v1/forecasts/2/resolution", {"outcome": "many"}),
    (["resolve", "3", "2040-01-01"], "POST", "/api/v1/forecasts/3/resolution",
     {"outcome": "2040-01-01"}),
    (["resolve", "4", "Zhipu"], "POST", "/api/v1/forecasts/4/resolution", {"outcome": "Zhipu"}),
    (["amend", "1"], "PATCH", "/api/v1/forecasts/1", {}),
    (["amend", "1", "--due", "2020-01-01"], "PATCH", "/api/v1/forecasts/1", {"due": "2020-01-01"}),
    (["amend", "1", "--due", "2031", "--title", ""], "PATCH", "/api/v1/forecasts/1",
     {"due": "2031", "title": ""}),
    (["withdraw", "1", "--note", ""], "POST", "/api/v1/forecasts/1/withdrawal", {"note": ""}),
]  # fmt: skip


def test_api_bad_input_reads_as_the_cli_and_changes_nothing(
    app: FastAPI, api: Api, cli: CliInvoke, db_url: str
) -> None:
    with freeze_time(NOW):
        for kind in TYPES:  # forecasts 1 to 4: binary, numeric, date, choice
            _add(api, kind)
        engine = create_engine(db_url)
        try:
            before = table_counts(engine)
            for args, method, path, body in BAD:
                expected = _cli_error(cli, *args, "--by", "ana")
                response = api("ana", method, path, json=body)
                assert response.status_code == 422, (args, response.text)
                assert response.headers["content-type"] == "application/problem+json"
                problem = response.json()
                assert problem["detail"] == expected, args
                assert problem["status"] == 422 and problem["title"] == HTTPStatus(422).phrase
            assert table_counts(engine) == before
        finally:
            engine.dispose()


def test_api_bodies_name_no_forecaster_and_ids_must_exist(api: Api) -> None:
    with freeze_time(NOW):
        fid = _add(api, "binary")["id"]
        as_bo = api.post(
            "ana", f"/api/v1/forecasts/{fid}/estimates", json={"probability": "60%", "by": "bo"}
        )
        assert as_bo.status_code == 422 and as_bo.json()["detail"].startswith("by: extra")
        missing = api.post("ana", "/api/v1/forecasts", json={"title": "T", "probability": "1%"})
        assert missing.status_code == 422 and missing.json()["detail"] == "criteria: field required"
        assert api.get("vic", "/api/v1/forecasts/999").status_code == 404
        nothing = api.post("ana", "/api/v1/forecasts/999/estimates", json={"probability": "5%"})
        assert nothing.status_code == 404 and nothing.json()["detail"] == (
            "forecast: got 999, expected the id of an existing forecast"
        )
        bad_status = api.get("vic", "/api/v1/forecasts", params={"status": "closed"})
        assert bad_status.status_code == 422
        assert bad_status.json()["detail"].startswith("status: ")


# --- who may -----------------------------------------------------------------------------------


def test_api_roles_and_owners(api: Api) -> None:
    with freeze_time(NOW):
        fid = _add(api, "binary")["id"]
        assert api.post("vic", "/api/v1/forecasts", json=_body("binary")).status_code == 403
        assert (
            api.post("vic", f"/api/v1/forecasts/{fid}/estimates", json={"probability": "5%"})
        ).status_code == 403
        for method, path, body in (
            ("POST", f"/api/v1/forecasts/{fid}/resolution", {"outcome": "yes"}),
            ("PATCH", f"/api/v1/forecasts/{fid}", {"title": "Mine now"}),
            ("POST", f"/api/v1/forecasts/{fid}/annulment", {"note": "n"}),
            ("POST", f"/api/v1/forecasts/{fid}/withdrawal", {"note": "n"}),
        ):
            refused = api("bo", method, path, json=body)
            assert refused.status_code == 403, path
            assert "forecast" in refused.json()["detail"]
        assert api.ok("vic", "GET", f"/api/v1/forecasts/{fid}")["status"] == "open"
        assert api.client.get(f"/api/v1/forecasts/{fid}").status_code == 401
        resolved = api.ok(
            "mei", "POST", f"/api/v1/forecasts/{fid}/resolution", json={"outcome": "no"}
        )
        assert resolved["resolved_by"] == "mei"


def test_api_forecast_routes_are_in_the_openapi_document(client: TestClient) -> None:
    doc = client.get("/api/v1/openapi.json").json()
    assert set(doc["paths"]["/api/v1/forecasts"]) == {"get", "post"}
    assert set(doc["paths"]["/api/v1/forecasts/{forecast_id}"]) == {"get", "patch"}
    for action in ("estimates", "resolution", "annulment", "withdrawal", "reopening"):
        assert "post" in doc["paths"][f"/api/v1/forecasts/{{forecast_id}}/{action}"]
    fields = doc["components"]["schemas"]["NewForecast"]["properties"]
    assert {"probability", "quantiles", "distribution", "numeric", "date", "options"} <= set(fields)
    assert "by" not in fields and "author" not in fields


# --- checks, evidence, proposals -------------------------------------------------------------


def test_api_checks_run_propose_and_are_confirmed(api: Api, cli: CliInvoke) -> None:
    with freeze_time(NOW):
        fid = _add(api, "binary", due="2027-01-01")["id"]
        other = _add(
            api,
            "date",
            due="2027-01-01",
            date="2026-01-01..2027-01-01",
            quantiles="10%=2026-03,50%=2026-06,90%=2026-10",
        )["id"]
        added = api.ok("ana", "POST", f"/api/v1/forecasts/{fid}/checks", 201,
                       json={"checks": ["deadline"]})  # fmt: skip
        assert added["forecast"] == fid and added["checks"] == [
            {"kind": "deadline", "params": {}, "mode": "propose"}
        ]
        (check,) = added["added"]
        bad = api.post("ana", f"/api/v1/forecasts/{fid}/checks", json={"checks": ["nosuch"]})
        assert bad.status_code == 422
        assert bad.json()["detail"] == _cli_error(cli, "check", str(fid), "--add", "nosuch")
        refused = api.post("bo", f"/api/v1/forecasts/{fid}/checks", json={"checks": ["deadline"]})
        assert refused.status_code == 403
        assert api.post("bo", f"/api/v1/checks/{check}/stop").status_code == 403
        stopped = api.ok("ana", "POST", f"/api/v1/checks/{check}/stop", json={"note": "wait"})
        assert stopped == {"forecast": fid, "check": check, "kind": "deadline", "running": False}
        again = api.post("ana", f"/api/v1/checks/{check}/stop")
        assert again.status_code == 409
        assert again.json()["detail"] == f"check {check} of forecast {fid} is stopped already"
        assert api.ok("ana", "POST", f"/api/v1/checks/{check}/resume")["running"] is True
        assert api.post("ana", "/api/v1/checks/999/resume").status_code == 404
        api.ok(
            "ana", "POST", f"/api/v1/forecasts/{other}/checks", 201, json={"checks": ["deadline"]}
        )
    with freeze_time("2027-02-01"):
        dry = api.ok("ana", "POST", f"/api/v1/forecasts/{fid}/check", json={"dry_run": True})
        assert dry["checked"] == 1 and dry["outcomes"][0]["verdict"] == "no"
        assert api.ok("vic", "GET", f"/api/v1/forecasts/{fid}/evidence")["total"] == 0
        ran = api.ok("ana", "POST", f"/api/v1/forecasts/{fid}/check")
        assert ran["outcomes"][0]["action"] == "proposed NO"
        api.ok("ana", "POST", f"/api/v1/forecasts/{other}/check")
    evidence = api.ok("vic", "GET", f"/api/v1/forecasts/{fid}/evidence")
    assert evidence["total"] == 1 and evidence["items"] == _cli_json(cli, "evidence", str(fid))
    pending = api.ok("vic", "GET", "/api/v1/proposals")
    assert pending["items"] == _cli_json(cli, "review") and pending["total"] == 2
    mine = api.ok("vic", "GET", "/api/v1/proposals", params={"forecast": other})
    (item,) = mine["items"]
    assert item["said"] == "2027-01-01"  # a date question: the range end (closed)
    assert api.post("bo", f"/api/v1/proposals/{item['proposal']}/confirm").status_code == 403
    disputed = api.ok(
        "ana", "POST", f"/api/v1/proposals/{item['proposal']}/dispute", json={"note": "it happened"}
    )
    assert disputed["status"] == "disputed" and disputed["decided_by"] == "ana"
    no_note = api.post("ana", f"/api/v1/forecasts/{fid}/dispute", json={"note": " "})
    assert no_note.status_code == 422
    assert no_note.json()["detail"] == _cli_error(cli, "dispute", str(fid), "--note", " ")
    with freeze_time("2027-02-02"):
        confirmed = api.ok("ana", "POST", f"/api/v1/forecasts/{fid}/confirm", json={})
    assert confirmed["status"] == "confirmed" and confirmed["resolution"] == "NO"
    shown = api.ok("vic", "GET", f"/api/v1/forecasts/{fid}")
    assert shown["status"] == "resolved" and shown["resolved_by"] == "ana"
    none_left = api.post("ana", f"/api/v1/forecasts/{fid}/confirm")
    assert none_left.status_code == 409
    assert none_left.json()["detail"] == f"forecast {fid} has no pending proposal"
    assert api.ok("vic", "GET", "/api/v1/proposals")["total"] == 0
    assert cli("verify").exit_code == 0


# --- report, export, import ------------------------------------------------------------------


def test_api_report_is_the_cli_report(api: Api, cli: CliInvoke) -> None:
    with freeze_time(NOW):
        for kind in TYPES:
            _add(api, kind, due="2026-06-30")
    with freeze_time("2026-07-02"):
        for fid, (kind, (_, outcome, _)) in enumerate(UPDATES.items(), start=1):
            if kind == "date":
                outcome = "2026-06-30"
            api.ok("ana", "POST", f"/api/v1/forecasts/{fid}/resolution", json={"outcome": outcome})
        as_json = api.get("vic", "/api/v1/report", params={"by": "ana"})
        assert as_json.headers["content-type"] == "application/json"
        assert as_json.text == cli("report", "--format", "json", "--by", "ana").stdout
        filters = {"format": "md", "tag": "china", "since": "2026", "group_by": "tag"}
        md = api.get("vic", "/api/v1/report", params={**filters, "timezone": "Asia/Tokyo"})
        assert md.headers["content-type"].startswith("text/markdown")
        assert cli("config", "set", "timezone", "Asia/Tokyo").exit_code == 0
        assert md.text == cli(
            "report", "--format", "md", "--tag", "china", "--since", "2026", "--group-by", "tag"
        ).stdout  # fmt: skip
        html = api.get("vic", "/api/v1/report", params={"format": "html", "title": "Ours"})
        assert html.text.startswith("<!DOCTYPE html>") and "Ours" in html.text
    bad = api.get("vic", "/api/v1/report", params={"since": "someday"})
    assert bad.status_code == 422
    assert bad.json()["detail"] == _cli_error(cli, "report", "--since", "someday")
    assert api.get("vic", "/api/v1/report", params={"format": "pdf"}).status_code == 422


@pytest.mark.parametrize("fmt", ["json", "toml", "csv"])
def test_api_export_then_import_elsewhere_restores_exactly(
    api: Api, cli: CliInvoke, fmt: str, tmp_path: Any
) -> None:
    with freeze_time(NOW):
        for kind in TYPES:
            _add(api, kind)
        api.ok("bo", "POST", "/api/v1/forecasts/2/estimates", 201, json=UPDATES["numeric"][0])
        api.ok("ana", "POST", "/api/v1/forecasts/4/resolution", json={"outcome": "DeepSeek"})
    exported = api.get("mei", "/api/v1/export", params={"format": fmt})
    assert exported.status_code == 200
    assert exported.text == cli("export", "--format", fmt).stdout
    assert f"tracker-export.{fmt}" in exported.headers["content-disposition"]
    assert exported.headers["x-tracker-count"] == "4"
    # importing it again here: refused whole, or skipped
    files = {"file": (f"forecasts.{fmt}", exported.content)}
    assert api.post("ana", "/api/v1/import", files=files).status_code == 403  # admin only
    again = api.post("mei", "/api/v1/import", files=files)
    assert again.status_code == 409 and "already in this database" in again.json()["detail"]
    skipped = api.ok("mei", "POST", "/api/v1/import", files=files, data={"skip_existing": "true"})
    assert (skipped["forecasts"], skipped["skipped"]) == (0, 4)
    # into an empty database: the same ledger, exported again byte for byte
    from service.app import Settings, create_app

    other = create_app(f"sqlite:///{tmp_path / 'other.db'}", Settings())
    try:
        add_user(other, "mei", "admin", password="correct horse battery")
        with other.state.store.write() as session:
            secret = accounts.create_token(session, "mei", "test", by="mei")[1]
        with TestClient(other) as client:
            there = Api(client, {"mei": secret})
            dry = there.ok("mei", "POST", "/api/v1/import", files=files, data={"dry_run": "true"})
            assert dry["dry_run"] is True and dry["forecasts"] == 4
            assert there.ok("mei", "GET", "/api/v1/forecasts")["total"] == 0
            summary = there.ok("mei", "POST", "/api/v1/import", files=files)
            assert summary["forecasts"] == 4 and summary["file_head_verified"] is True
            assert there.get("mei", "/api/v1/export", params={"format": fmt}).text == exported.text
    finally:
        other.state.store.engine.dispose()


def test_api_import_lists_every_problem_and_writes_nothing(
    api: Api, cli: CliInvoke, db_url: str, tmp_path: Any
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "title,criteria,due,probability\nFine,c,2030,0.5\nBroken,c,yesterday,abc\n",
        encoding="utf-8",
    )
    engine = create_engine(db_url)
    try:
        before = table_counts(engine)
        with freeze_time(NOW):
            expected = _cli_error(cli, "import", str(bad))
            refused = api.post(
                "mei", "/api/v1/import", files={"file": (str(bad), bad.read_bytes())}
            )
        assert refused.status_code == 422
        assert refused.json()["detail"] == expected  # the name as the CLI was given it
        assert expected.endswith("2 problems, nothing imported")
        problems = refused.json()["problems"]
        assert len(problems) == 2 and problems[0].startswith("line 3: due: got 'yesterday'")
        assert table_counts(engine) == before
    finally:
        engine.dispose()
    hand = tmp_path / "mine.csv"
    hand.write_text("title,criteria,due,probability\nFine,c,2030-06-30,0.5\n", encoding="utf-8")
    with freeze_time(NOW):
        summary = api.ok(
            "mei", "POST", "/api/v1/import",
            files={"file": (hand.name, hand.read_bytes())},
            data={"by": "ana", "timezone": "Asia/Shanghai"},
        )  # fmt: skip
    assert summary["forecasts"] == 1 and summary["format"] == "csv"
    (row,) = api.ok("vic", "GET", "/api/v1/forecasts")["items"]
    assert row["author"] == "ana" and row["due"] == "2030-06-30T15:59:59.000000Z"


def test_api_data_routes_are_in_the_openapi_document(client: TestClient) -> None:
    paths = client.get("/api/v1/openapi.json").json()["paths"]
    for path, method in (
        ("/api/v1/report", "get"),
        ("/api/v1/export", "get"),
        ("/api/v1/import", "post"),
        ("/api/v1/forecasts/{forecast_id}/checks", "post"),
        ("/api/v1/checks/{check_id}/stop", "post"),
        ("/api/v1/checks/{check_id}/resume", "post"),
        ("/api/v1/forecasts/{forecast_id}/check", "post"),
        ("/api/v1/forecasts/{forecast_id}/evidence", "get"),
        ("/api/v1/proposals", "get"),
        ("/api/v1/proposals/{proposal_id}/confirm", "post"),
        ("/api/v1/proposals/{proposal_id}/dispute", "post"),
        ("/api/v1/forecasts/{forecast_id}/confirm", "post"),
        ("/api/v1/forecasts/{forecast_id}/dispute", "post"),
    ):
        assert method in paths[path], path


def test_api_a_blind_forecast_hides_the_others_estimates_until_you_forecast(api: Api) -> None:
    """Tagged ``blind``: while open, a member who has not forecast it reads it (show and list)
    without the others' estimates, as on its page; once they forecast, they see them all. The
    export, which holds every estimate, is for admins."""
    with freeze_time(NOW):
        fid = _add(api, "binary", tags=["blind"])["id"]
        before = api.ok("bo", "GET", f"/api/v1/forecasts/{fid}")
        listed = api.ok("bo", "GET", "/api/v1/forecasts")["items"]
        own = api.ok("ana", "GET", f"/api/v1/forecasts/{fid}")
        api.ok("bo", "POST", f"/api/v1/forecasts/{fid}/estimates", 201, json={"probability": "40%"})
        after = api.ok("bo", "GET", f"/api/v1/forecasts/{fid}")
        refused = api.get("bo", "/api/v1/export")
    assert before["estimates"] == [] and listed[0]["estimates"] == []
    assert [e["by"] for e in own["estimates"]] == ["ana"]
    assert sorted(e["by"] for e in after["estimates"]) == ["ana", "bo"]
    assert refused.status_code == HTTPStatus.FORBIDDEN
    assert api.get("mei", "/api/v1/export").status_code == HTTPStatus.OK


def test_api_check_runs_with_the_servers_resolver_settings(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A check run through the API runs as ``tracker check`` does on the server: with the
    ``resolvers.*`` settings of the server's configuration (here, loopback allowed), as every
    ``tracker serve`` worker builds its app (:func:`tracker.serve_commands.app_from_config`)."""
    from tests.resolvers.loopback import Loopback
    from tracker.serve_commands import app_from_config

    config = tmp_path / "config.toml"
    config.write_text('[resolvers]\nallowed_networks = "127.0.0.0/8"\n', encoding="utf-8")
    monkeypatch.setenv("TRACKER_CONFIG", str(config))
    monkeypatch.setenv("TRACKER_SERVICE_DB", db_url)
    served = app_from_config()
    add_user(served, "ana", "member", password="correct horse battery")
    with served.state.store.write() as session:
        token = accounts.create_token(session, "ana", "test", by="ana")[1]
    headers = {"Authorization": f"Bearer {token}"}
    with Loopback() as web, TestClient(served) as client:
        web.route("/news", b"<p>The standard is published.</p>")
        body = {**_body("binary"), "checks": [f"page:url={web.url}/news,contains=standard"]}
        added = client.post("/api/v1/forecasts", json=body, headers=headers)
        assert added.status_code == 201, added.text
        ran = client.post(f"/api/v1/forecasts/{added.json()['id']}/check", headers=headers)
    served.state.store.engine.dispose()
    assert ran.status_code == 200, ran.text
    (outcome,) = ran.json()["outcomes"]
    assert outcome["error"] is None and outcome["action"] == "proposed YES"
