"""The CLI as a client of a real ``tracker serve`` (uvicorn on loopback, real users and tokens):
``tracker login``/``logout``, every forecast command through the API printing what it prints
against a database, the ledger recording the signed-in user, roles, bad input, revoked tokens and
a server that is down. On SQLite and PostgreSQL (the server's database); the local runs compared
with use a SQLite file of their own."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result
from fastapi import FastAPI
from sqlalchemy import text

from service.app import Settings, create_app
from tests.resolvers.loopback import Loopback
from tests.service.support import add_user, free_port, live_server
from tracker.cli import main

CRITERIA = "Resolves YES if two provincial governments announce AI computing clusters."


@dataclass
class Server:
    """A live service: its URL, the app (its database) and the users' passwords."""

    url: str
    app: FastAPI
    passwords: dict[str, str]

    def token(self, name: str) -> str:
        made = httpx.post(
            self.url + "/api/v1/tokens", json={"name": name, "password": self.passwords[name]}
        )
        assert made.status_code == 201, made.text
        return str(made.json()["token"])

    def rows(self, sql: str) -> list[tuple[object, ...]]:
        with self.app.state.store.read() as session:
            return [tuple(r) for r in session.execute(text(sql)).all()]


@pytest.fixture
def server(db_url: str) -> Iterator[Server]:
    """``tracker serve``'s app over the test database under a real uvicorn, with an admin mei,
    a member bob and a viewer vic."""
    app = create_app(db_url, Settings())
    passwords = {name: add_user(app, name, role) for name, role in
                 (("mei", "admin"), ("bob", "member"), ("vic", "viewer"), ("mei2", "member"))}  # fmt: skip
    with live_server(app) as url:
        yield Server(url, app, passwords)
    app.state.store.engine.dispose()


Run = Callable[..., Result]


def _runner(env: dict[str, str | None]) -> Run:
    runner = CliRunner()

    def run(*args: str, input: str | None = None) -> Result:
        return runner.invoke(main, list(args), input=input, env=env, catch_exceptions=False)

    return run


@pytest.fixture
def local_db(tmp_path: Path, _sqlite_template: Path) -> str:
    """A SQLite file of the local runs' own."""
    path = tmp_path / "local.db"
    shutil.copyfile(_sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def local(local_db: str) -> Run:
    """``tracker`` on a SQLite file of its own (the output the remote runs must match)."""
    return _runner({"TRACKER_DB": local_db, "TRACKER_FORECASTER": "mei"})


def remote_as(server: Server, name: str) -> Run:
    """``tracker --server URL`` signed in as ``name`` by ``$TRACKER_TOKEN``."""
    run = _runner({"TRACKER_TOKEN": server.token(name), "TRACKER_DB": None})
    return lambda *args, input=None: run("--server", server.url, *args, input=input)


_ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
_HASH = re.compile(r"\b[0-9a-f]{64}\b")
_SHOWN = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d [A-Z]+")


def _same(result: Result) -> tuple[int, str, str]:
    """Exit code, stdout and stderr with the moments of this run (to the microsecond, or the
    minute as shown) and the ledger's hashes (which hash those moments) masked: two runs differ
    only in when they ran."""
    mask = lambda s: _HASH.sub("<hash>", _SHOWN.sub("<time>", _ISO.sub("<iso>", s)))  # noqa: E731
    return result.exit_code, mask(result.stdout), mask(result.stderr)


def _unordered(result: Result) -> tuple[int, list[str], str]:
    """:func:`_same`, its lines in any order: a forecast's checks run at once, and their outcomes
    are printed as they finish."""
    code, out, err = _same(result)
    return code, sorted(out.splitlines()), err


SEQUENCE: list[tuple[str, ...]] = [
    ("add", "Provincial AI clusters by 2030", "-p", "70%", "--due", "2030-12-31", "--criteria",
     CRITERIA, "--tag", "china", "--tag", "ai-policy", "--source", "https://merics.org/x"),
    ("add", "Frontier labs in China", "--numeric", "0..34", "--quantiles", "10%=4,50%=8,90%=15",
     "--due", "2031-06-30", "--criteria", "Count of labs.", "--json"),
    ("add", "Leading open model", "--options", "DeepSeek,Alibaba Qwen,Other", "-p", "35,30,35",
     "--due", "2029-01-31", "--criteria", "Top of the leaderboard.", "--tag", "models"),
    ("add", "A date question", "--date", "2026-01-01..2035-12-31", "--distribution",
     "normal:2028-06,365", "--due", "+90d", "--criteria", "When it happens."),
    ("update", "1", "-p", "62%", "--note", "new data"),
    ("update", "2", "--quantiles", "10%=5,50%=9,90%=16"),
    ("update", "3", "-p", "30,40,30", "--json"),
    ("list",),
    ("list", "--json"),
    ("list", "--tag", "china"),
    ("list", "--search", "open model"),
    ("list", "--limit", "2"),
    ("show", "1"),
    ("show", "2"),
    ("show", "3", "--json"),
    ("amend", "1", "--title", "Provincial AI clusters by end of 2030", "--tag", "compute",
     "--note", "clearer"),
    ("amend", "1", "--due", "2031-12-31", "--json"),
    ("resolve", "1", "yes", "--note", "announced", "--evidence", "https://example.org/news"),
    ("resolve", "2", "11"),
    ("reopen", "1", "--note", "wrong source"),
    ("resolve", "1", "no"),
    ("annul", "3", "--note", "the leaderboard closed"),
    ("withdraw", "4", "--note", "a test entry", "--json"),
    ("show", "1"),
    ("list", "--status", "all"),
    ("list", "--status", "resolved", "--json"),
    ("list", "--status", "withdrawn"),
    # bad input and refused changes: the same one Error line, the same exit code
    ("add", "x", "-p", "170%", "--due", "2030-01-01", "--criteria", "c"),
    ("add", "x", "-p", "70%", "--due", "yesterday", "--criteria", "c"),
    ("add", "x", "--numeric", "0..34", "-p", "50%", "--due", "2030-01-01", "--criteria", "c"),
    ("update", "99", "-p", "50%"),
    ("update", "abc", "-p", "50%"),
    ("update", "1", "-p", "50%"),
    ("resolve", "1", "yes"),
    ("resolve", "3", "maybe"),
    ("reopen", "5", "--note", "x"),
    ("amend", "1"),
    ("show", "99"),
    ("list", "--status", "due"),
]  # fmt: skip


def test_every_forecast_command_prints_the_same_through_the_server(
    server: Server, local: Run
) -> None:
    remote = remote_as(server, "mei")
    for args in SEQUENCE:
        here, there = local(*args), remote(*args)
        assert _same(there) == _same(here), args
    # and the server's ledger holds what the local one does, recorded as the signed-in user
    kinds = server.rows("SELECT kind FROM ledger ORDER BY seq")
    assert len(kinds) == 20  # 4 registered, 7 estimates, 3 amendments, 6 closings and reopenings
    authors = server.rows("SELECT DISTINCT author FROM forecast")
    assert authors == [("mei",)]


def test_the_ledger_records_the_signed_in_user_and_by_must_be_them(server: Server) -> None:
    bob = remote_as(server, "bob")
    added = bob("add", "Q", "-p", "60%", "--due", "2030-01-01", "--criteria", "c", "--json")
    assert added.exit_code == 0, added.output
    assert json.loads(added.stdout)["author"] == "bob"
    assert remote_as(server, "mei")("update", "1", "-p", "40%").exit_code == 0
    entries = server.rows("SELECT kind, payload FROM ledger ORDER BY seq")
    assert [(k, json.loads(str(p))["by" if k == "estimate" else "author"]) for k, p in entries] == [
        ("register", "bob"), ("estimate", "bob"), ("estimate", "mei"),
    ]  # fmt: skip
    other = bob("update", "1", "-p", "50%", "--by", "mei")
    assert other.exit_code == 2
    assert other.stderr == (
        "Error: --by: got 'mei', expected your own name (bob): the server records who is signed "
        "in\n"
    )


def test_a_viewer_reads_but_a_write_is_refused_with_one_line(server: Server) -> None:
    assert remote_as(server, "bob")("add", "Q", "-p", "60%", "--due", "2030", "--criteria", "c")
    vic = remote_as(server, "vic")
    assert "Q" in vic("list").stdout
    refused = vic("add", "R", "-p", "60%", "--due", "2030", "--criteria", "c")
    assert refused.exit_code == 1
    assert refused.stderr.startswith("Error: ") and refused.stderr.count("\n") == 1
    assert "viewer" in refused.stderr
    # a member may not resolve a forecast they do not own
    other = remote_as(server, "mei2")("resolve", "1", "yes")
    assert other.exit_code == 1
    assert other.stderr == "Error: only bob (its owner) or an admin may change this forecast\n"
    assert server.rows("SELECT status FROM forecast") == [("open",)]


def test_login_keeps_the_token_0600_beside_the_config_and_logout_revokes_it(
    server: Server, tmp_path: Path
) -> None:
    run = _runner({"TRACKER_DB": None})
    signed = run("login", server.url, input=f"bob\n{server.passwords['bob']}\n")
    assert signed.exit_code == 0, signed.output
    path = Path(os.environ["TRACKER_CONFIG"]).parent / "credentials.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    stored = json.loads(path.read_text())
    assert stored["url"] == server.url and stored["name"] == "bob"
    assert server.passwords["bob"] not in path.read_text()
    assert not Path(os.environ["TRACKER_CONFIG"]).exists()  # nothing in config.toml
    # every command now goes through the server, as bob
    added = run("add", "Q", "-p", "60%", "--due", "2030-01-01", "--criteria", "c")
    assert added.exit_code == 0, added.output
    assert server.rows("SELECT author FROM forecast") == [("bob",)]
    assert "60%" in run("list").stdout
    token = stored["token"]
    out = run("logout")
    assert out.exit_code == 0 and "token revoked" in out.stdout
    assert not path.exists()
    me = httpx.get(server.url + "/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 401


def test_a_wrong_password_is_one_line_and_stores_nothing(server: Server) -> None:
    run = _runner({"TRACKER_DB": None})
    refused = run("login", server.url, "--name", "bob", input="wrong\n")
    assert refused.exit_code == 1
    assert refused.stderr.endswith("Error: wrong name or password\n")
    assert not (Path(os.environ["TRACKER_CONFIG"]).parent / "credentials.json").exists()


def test_a_revoked_token_fails_at_once(server: Server) -> None:
    token = server.token("bob")
    run = _runner({"TRACKER_TOKEN": token, "TRACKER_DB": None})
    assert run("--server", server.url, "list").exit_code == 0
    tokens = httpx.get(
        server.url + "/api/v1/tokens", headers={"Authorization": f"Bearer {token}"}
    ).json()["items"]
    mine = next(t for t in tokens if t["revoked_at"] is None)
    gone = httpx.delete(
        server.url + f"/api/v1/tokens/{mine['id']}", headers={"Authorization": f"Bearer {token}"}
    )
    assert gone.status_code == 200
    after = run("--server", server.url, "list")
    assert after.exit_code == 1
    assert after.stderr == (
        "Error: the API token is unknown, revoked or its user disabled "
        f"(`tracker login {server.url}` signs you in)\n"
    )


def test_a_server_that_is_down_is_exit_1_naming_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = _runner({"TRACKER_TOKEN": "x", "TRACKER_DB": None})("--server", url, "list")
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: cannot reach the server at {url}: connection refused (is `tracker serve` "
        "running there?)\n"
    )


@pytest.mark.parametrize(
    "args", [("sweep",), ("verify",), ("db", "current"), ("user", "list"), ("notify",)]
)
def test_commands_that_need_the_database_refuse_in_client_mode(args: tuple[str, ...]) -> None:
    run = _runner({"TRACKER_TOKEN": "x", "TRACKER_DB": None})
    result = run("--server", "http://127.0.0.1:9", *args)
    assert result.exit_code == 2
    assert result.stderr == (
        f"Error: `tracker {' '.join(args)}` runs where the database is (on the server), not "
        "through http://127.0.0.1:9: run it there, or give --db\n"
    )


def test_server_and_db_together_are_refused() -> None:
    result = _runner({})("--server", "http://x.example", "--db", "sqlite:///x.db", "list")
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: --server: got 'http://x.example', expected either --server or --db, not both\n"
    )


def test_the_client_path_loads_no_sqlalchemy_fastapi_or_numpy(server: Server) -> None:
    probe = (
        "import sys\nfrom tracker.cli import main\n"
        "try:\n    main()\nexcept SystemExit as e:\n    code = e.code\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'sqlalchemy', 'fastapi', "
        "'numpy', 'starlette', 'pydantic'})\nprint(code, heavy, file=sys.stderr)"
    )
    env = {k: v for k, v in os.environ.items() if k != "TRACKER_DB"}
    env["TRACKER_TOKEN"] = server.token("bob")
    for args in (
        ["add", "Q", "-p", "60%", "--due", "+90d", "--criteria", "c"],
        ["update", "1", "-p", "55%"],
        ["list"],
        ["show", "1"],
        ["resolve", "1", "yes"],
    ):
        done = subprocess.run(
            [sys.executable, "-c", probe, "--server", server.url, *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.stderr.splitlines()[-1] == "0 []", (args, done.stderr)


PAGE = "<html><body><p>关于人工智能失控风险的国家标准正式发布</p></body></html>"


def test_checks_review_and_evidence_print_the_same_through_the_server(
    server: Server, local: Run, local_db: str, db_url: str, tmp_path: Path
) -> None:
    """Checks attached, stopped, resumed and run (the server's runner, like a local one without
    resolvers.allow_private, refuses the loopback page), then a sweep on each database (the
    daemon's, beside the server), the proposals reviewed, confirmed and disputed, the evidence."""
    remote = remote_as(server, "mei")
    sweeper = tmp_path / "sweeper.toml"  # the daemon's config: loopback sources allowed
    sweeper.write_text("[resolvers]\nallow_private = true\nconcurrency = 1\n")
    with Loopback() as web:
        web.route("/n", PAGE)
        spec, other = f"page:url={web.url}/n,contains=失控", f"page:url={web.url}/n,contains=xyz"
        steps: list[tuple[str, ...]] = [
            ("add", "Q1", "-p", "35%", "--due", "2031-01-01", "--criteria", "c", "--check", spec,
             "--json"),
            ("add", "Q2", "-p", "60%", "--due", "2031-01-01", "--criteria", "c", "--check", spec),
            ("check", "1", "--stop", "1", "--note", "pause"),
            ("check", "1", "--stop", "1"),
            ("check", "1", "--resume", "1", "--json"),
            ("check", "2", "--add", other),
            ("check", "1", "--stop", "3"),  # forecast 2's
            ("check", "99", "--stop", "1"),
            ("check", "2", "--add", "page:contains=x"),
            ("check", "1", "--dry-run"),
            ("check", "2"),
            ("review",),
            ("evidence", "1"),
        ]  # fmt: skip
        for args in steps:
            assert _unordered(remote(*args)) == _unordered(local(*args)), args
        for database in (local_db, db_url):
            swept = _runner({"TRACKER_DB": database, "TRACKER_CONFIG": str(sweeper)})("sweep")
            assert swept.exit_code == 0, swept.output
        for args in [
            ("review",),
            ("review", "--json"),
            ("confirm", "1"),
            ("confirm", "1"),
            ("dispute", "2", "--note", "the page is about something else"),
            ("review",),
            ("evidence", "1"),
            ("evidence", "2"),
            ("show", "1"),
            ("check", "99"),
        ]:
            assert _unordered(remote(*args)) == _unordered(local(*args)), args
    stopped = remote("check", "1", "--stop", "99")
    assert stopped.exit_code == 2 and stopped.stderr.count("\n") == 1


def test_report_and_export_through_the_server_are_the_servers_database_as_locally(
    server: Server, db_url: str, tmp_path: Path
) -> None:
    remote = remote_as(server, "mei")
    for title, p, outcome in (("A", "80%", "yes"), ("B", "30%", "no"), ("C", "60%", "yes")):
        added = remote("add", title, "-p", p, "--due", "2030-01-01", "--criteria", "c", "--json")
        fid = json.loads(added.stdout)["id"]
        assert remote("resolve", str(fid), outcome).exit_code == 0
    on_server = _runner({"TRACKER_DB": db_url, "TRACKER_FORECASTER": "mei"})
    for args in [
        ("report",),
        ("report", "--json"),
        ("report", "--format", "md", "--group-by", "forecaster"),
        ("report", "--since", "2026-01-01", "--until", "2040-12-31", "--format", "html"),
        ("report", "--by", "nobody"),
        ("report", "--since", "someday"),
        ("export",),
        ("export", "--format", "csv"),
        ("export", "--format", "toml", "-o", str(tmp_path / "out.toml")),
    ]:
        assert _same(remote(*args)) == _same(on_server(*args)), args


def test_import_through_the_server_as_an_admin_as_locally(
    server: Server, local: Run, tmp_path: Path
) -> None:
    examples = Path(__file__).resolve().parents[2] / "examples"
    bad = tmp_path / "bad.toml"
    bad.write_text('[[forecast]]\ntitle = "x"\n', encoding="utf-8")
    remote = remote_as(server, "mei")
    for args in [
        ("import", str(examples / "china-ai-forecasts.toml"), "--dry-run"),
        ("import", str(examples / "china-ai-forecasts.toml")),
        ("import", str(examples / "china-ai-forecasts.toml")),
        ("import", str(examples / "china-ai-forecasts.toml"), "--skip-existing", "--json"),
        ("import", str(bad)),
        ("list", "--status", "all"),
    ]:
        assert _same(remote(*args)) == _same(local(*args)), args
    member = remote_as(server, "bob")("import", str(bad))
    assert member.exit_code == 1 and member.stderr.count("\n") == 1


def test_each_everyday_command_is_one_request_even_with_a_scripts_token(db_url: str) -> None:
    """With ``$TRACKER_TOKEN`` (no stored sign-in naming the user) the CLI learns who it is from
    the answers: add, update, show, list and resolve each make one request, no ``/me`` first."""
    app = create_app(db_url, Settings())
    password = add_user(app, "bob", "member")
    paths: list[str] = []

    async def counted(scope: dict[str, object], receive: object, send: object) -> None:
        if scope["type"] == "http":
            paths.append(f"{scope['method']} {scope['path']}")
        await app(scope, receive, send)  # type: ignore[arg-type]

    with live_server(counted) as url:  # type: ignore[arg-type]
        made = httpx.post(url + "/api/v1/tokens", json={"name": "bob", "password": password})
        run = _runner({"TRACKER_TOKEN": made.json()["token"], "TRACKER_DB": None})
        for args, path in [
            (
                ("add", "Q", "-p", "60%", "--due", "2030", "--criteria", "c"),
                "POST /api/v1/forecasts",
            ),
            (("update", "1", "-p", "55%"), "POST /api/v1/forecasts/1/estimates"),
            (("show", "1"), "GET /api/v1/forecasts/1"),
            (("list",), "GET /api/v1/forecasts"),
            (("resolve", "1", "yes"), "POST /api/v1/forecasts/1/resolution"),
        ]:
            paths.clear()
            result = run("--server", url, *args)
            assert result.exit_code == 0, result.output
            assert paths == [path], args
    app.state.store.engine.dispose()


def test_server_url_in_the_config_selects_the_server_and_dates_are_read_in_my_timezone(
    server: Server, local: Run, tmp_path: Path
) -> None:
    """``server.url`` makes the CLI a client without --server; the client sends its timezone,
    so a date-only due ends that day in Shanghai on the server as it does locally."""
    config = Path(os.environ["TRACKER_CONFIG"])
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f'timezone = "Asia/Shanghai"\n[server]\nurl = "{server.url}"\n')
    remote = _runner({"TRACKER_TOKEN": server.token("bob"), "TRACKER_DB": None})
    args = ("add", "Q", "-p", "60%", "--due", "2030-12-31", "--criteria", "c", "--json")
    there, here = json.loads(remote(*args).stdout), json.loads(local(*args).stdout)
    assert (there["due"], there["due_zone"]) == (here["due"], here["due_zone"])
    assert (there["due"], there["due_zone"]) == ("2030-12-31T15:59:59.000000Z", "Asia/Shanghai")
    assert server.rows("SELECT author FROM forecast") == [("bob",)]
    assert "2030-12-31" in remote("list").stdout


def test_login_from_a_script_and_logout_with_the_server_down_keeps_the_token(
    server: Server,
) -> None:
    run = _runner({"TRACKER_DB": None})
    signed = run(
        "login", server.url, "--name", "bob", "--password-stdin",
        input=server.passwords["bob"] + "\n",
    )  # fmt: skip
    assert signed.exit_code == 0, signed.output
    path = Path(os.environ["TRACKER_CONFIG"]).parent / "credentials.json"
    stored = json.loads(path.read_text())
    stored["url"] = f"http://127.0.0.1:{free_port()}"  # the server moved away
    path.write_text(json.dumps(stored))
    down = run("logout")
    assert down.exit_code == 1 and down.stderr.startswith("Error: cannot reach the server at ")
    assert path.exists()  # nothing forgotten while the token may still work
    assert run("config", "show").exit_code == 0  # the config is this machine's, server or not
