"""Benchmark: `tracker serve` under concurrent clients, on a ledger of 100,000 forecasts.

Targets (issue 15), on SQLite and on PostgreSQL, each served by a real ``tracker serve --workers 2``
subprocess on loopback:

- a forecast page (``GET /forecasts/{id}``, signed in by session cookie) and
  ``GET /api/v1/forecasts/{id}`` (Bearer token), each at 20 concurrent clients: p95 latency under
  100 ms; the API at least 300 requests/s in all;
- the team track record pages (``/record/team`` and the team view ``/team``): under 500 ms, each
  measured after a write that changes the scores (a forecast added and resolved through the API:
  the pages' report cache cannot answer) and again at once (from that cache);
- ``tracker --server URL add ...`` (a subprocess, the token in ``$TRACKER_TOKEN``): under 300 ms end
  to end (beside it: the CLI process's CPU, ``python -c pass``, and the same POST from the bench).

The ledger: ``--forecasts`` binary questions (registered over five years, horizons of a day to two
years; those due more than two days ago mostly resolved, the rest open), three estimates each (the
first by the author at registration; later ones mostly by the author, some by another of six
people or by the ``manifold`` market), half of them tagged, and the hash-chained ledger entries
of it all (register, estimate, resolve), written with bare ``sqlite3`` into a file migrated by
``predictions.db.upgrade_schema`` (``--ledger PATH`` keeps it and reuses it next time). On
PostgreSQL (``--pg-url``; the bench creates the database ``bench_service`` beside the URL's
database and drops it at the end) the same rows are copied in with COPY, then ANALYZE.

The load: ``--clients`` asyncio tasks, each on its own kept-alive HTTP/1.1 connection, asking for
a random forecast as soon as its last answer came, for ``--seconds`` after a warm-up; ``--runs``
runs of each route, interleaved; each figure is the median over the runs. The client is bare
asyncio streams (about 0.1 ms of CPU a request); ``--client httpx`` uses one
``httpx.AsyncClient`` instead, which spent 3-3.5 ms of CPU a request here, more than the server,
and on 2 cores that CPU is taken from the server. Beside each figure: the 1-minute load average
before and after (other processes share the CPU), and the CPU per request of the server's
processes, of the PostgreSQL backends and of this client (on a quiet 2-core machine throughput
is bounded by about 2 cores / the sum). ``--breakdown`` adds two reference routes: the
stylesheet (the framework alone) and ``/api/v1/me`` (the token's lookup).

A route the service does not serve yet (404 "no such page") is skipped with a line saying so.
``--profile`` runs one server process in this folder's profiling wrapper (every endpoint on the
event loop's thread, under cProfile) and prints where a sequential request's time goes.

    python bench/service_bench.py [--forecasts 100000] [--servers sqlite:2,postgres:2] [--quick]
    python bench/service_bench.py --quick            # 20,000 forecasts, 1 run of 3 s each
    python bench/service_bench.py --profile api      # cProfile of GET /api/v1/forecasts/{id}
    python bench/service_bench.py --ledger /tmp/l.db # keep the built ledger for the next run
"""

from __future__ import annotations

import argparse
import asyncio
import compileall
import cProfile
import os
import pstats
import random
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from precompile import ROOT, compile_project

from predictions import accounts
from predictions.chain import GENESIS, ChainBuilder, ChainHead, canonical, iso
from predictions.db import make_engine, upgrade_schema

P95_TARGET_MS = 100.0
THROUGHPUT_TARGET = 300.0  # API requests/s
TEAM_TARGET_MS = 500.0
ADD_TARGET_MS = 300.0

PEOPLE = ("alice", "bob", "carol", "dave", "erin", "frank")
MARKET = "manifold"
TAGS = ("ai", "china", "markets", "policy", "us")
USER = "alice"  # the signed-in member (one of the forecasters)
PASSWORD = "bench-password-0123"
PG_DATABASE = "bench_service"
TEAM_PATHS = ("/record/team", "/team")
_CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')


# --- the ledger ------------------------------------------------------------------------------


def _text(value: datetime) -> str:
    """A datetime as SQLAlchemy stores it on SQLite."""
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")


def build(path: Path, n: int, seed: int = 15) -> None:
    """A migrated SQLite file holding ``n`` forecasts, their estimates, tags and ledger, and the
    bench's user (:data:`USER`)."""
    engine = make_engine(f"sqlite:///{path}")
    upgrade_schema(engine)
    engine.dispose()
    rng = np.random.default_rng(seed)
    now = datetime.utcnow().replace(microsecond=0)  # noqa: DTZ003 (naive UTC, as stored)
    day = 86400
    age = rng.integers(10 * day, 5 * 365 * day, n)
    horizon = rng.integers(day, 730 * day, n)
    closes = rng.random(n) < 0.9
    later = rng.integers(0, 30 * day, n)
    author = rng.integers(0, len(PEOPLE), n)
    truth = rng.random(n)
    spread = np.sort(rng.random((n, 3)), axis=1)
    spread[:, 0] = 0.0
    who = rng.random((n, 3))
    other = rng.integers(0, len(PEOPLE), (n, 3))
    noise = rng.normal(0, 0.2, (n, 3))
    outcome_draw = rng.random(n)
    tag = rng.integers(0, len(TAGS) * 2, n)  # half of them untagged
    forecasts: list[tuple[Any, ...]] = []
    estimates: list[tuple[Any, ...]] = []
    tags: list[tuple[int, str]] = []
    events: list[tuple[datetime, int, str, int, dict[str, Any]]] = []
    estimate_id = 0
    for i in range(n):
        fid = i + 1
        created = now - timedelta(seconds=int(age[i]))
        due = created + timedelta(seconds=int(horizon[i]))
        name = PEOPLE[author[i]]
        resolved = closes[i] and due < now - timedelta(days=2)
        resolved_at = min(due + timedelta(seconds=int(later[i])), now - timedelta(hours=1))
        outcome = bool(outcome_draw[i] < truth[i]) if resolved else None
        until = min(due, resolved_at if resolved else now)
        title = f"Benchmark question {fid}: will event {fid % 977} happen by its date?"
        forecasts.append(
            (fid, title, "Resolves YES if a reliable source reports it.", _text(due),
             _text(created), name, "resolved" if resolved else "open", outcome,
             _text(resolved_at) if resolved else None, name if resolved else None)
        )  # fmt: skip
        names = [TAGS[tag[i]]] if tag[i] < len(TAGS) else []
        tags.extend((fid, t) for t in names)
        register = {
            "id": fid, "title": title, "criteria": forecasts[-1][2], "due": iso(due),
            "created_at": iso(created), "author": name, "source": None, "ref": None,
            "tags": names,
        }  # fmt: skip
        events.append((created, 0, "register", fid, register))
        for k in range(3):
            estimate_id += 1
            made = created + timedelta(
                seconds=int(spread[i, k] * (until - created).total_seconds())
            )
            by = name if k == 0 or who[i, k] < 0.7 else (
                MARKET if who[i, k] > 0.9 else PEOPLE[other[i, k]]
            )  # fmt: skip
            p = round(float(np.clip(truth[i] + noise[i, k], 0.01, 0.99)), 2)
            estimates.append((estimate_id, fid, by, p, _text(made)))
            payload = {"id": estimate_id, "forecast": fid, "by": by, "p": p, "at": iso(made),
                       "note": None}  # fmt: skip
            events.append((made, 1, "estimate", fid, payload))
        if resolved:
            payload = {"forecast": fid, "at": iso(resolved_at), "by": name, "note": None,
                       "outcome": outcome, "evidence": None}  # fmt: skip
            events.append((resolved_at, 2, "resolve", fid, payload))
    events.sort(key=lambda e: (e[0], e[1], e[3]))
    chain = ChainBuilder(ChainHead(0, GENESIS))
    ledger = []
    for at, _, kind, fid, payload in events:
        body = canonical(payload)
        seq, prev, digest = chain.link(kind, iso(at) or "", body)
        ledger.append((seq, _text(at), kind, fid, body, prev, digest))
    conn = sqlite3.connect(path)
    with conn:
        conn.executemany(
            "INSERT INTO forecast (id, title, criteria, due, created_at, author, status, outcome,"
            " resolved_at, resolved_by) VALUES (?,?,?,?,?,?,?,?,?,?)",
            forecasts,
        )
        conn.executemany(
            "INSERT INTO estimate (id, forecast_id, forecaster, probability, made_at)"
            " VALUES (?,?,?,?,?)",
            estimates,
        )
        conn.executemany("INSERT INTO tag (forecast_id, name) VALUES (?,?)", tags)
        conn.executemany(
            "INSERT INTO ledger (seq, at, kind, forecast_id, payload, prev_hash, hash)"
            " VALUES (?,?,?,?,?,?,?)",
            ledger,
        )
        for name in PEOPLE:
            accounts.add_user(
                conn, name, email=f"{name}@example.org", role="member", by="bench",
                password=PASSWORD,
            )  # fmt: skip
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def copy_to_postgres(sqlite_path: Path, url: str) -> None:
    """The SQLite file's rows into the (migrated, empty) PostgreSQL database ``url``, by COPY;
    then the id sequences moved past the copied ids, and ANALYZE."""
    from sqlalchemy import Boolean

    from predictions.models import Base

    engine = make_engine(url)
    upgrade_schema(engine)
    source = sqlite3.connect(sqlite_path)
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        for table in Base.metadata.sorted_tables:
            columns = [c.name for c in table.columns]
            flags = [isinstance(c.type, Boolean) for c in table.columns]
            rows = source.execute(f"SELECT {', '.join(columns)} FROM {table.name}")
            with cur.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    if any(flags):
                        row = tuple(
                            bool(v) if flag and v is not None else v
                            for v, flag in zip(row, flags, strict=True)
                        )
                    copy.write_row(row)
            if "id" in table.columns and table.columns["id"].type.python_type is int:
                cur.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'),"
                    f" (SELECT COALESCE(MAX(id), 0) + 1 FROM {table.name}), false)"
                )
        cur.execute("ANALYZE")  # the planner's statistics, as autovacuum would gather them
        raw.commit()
    finally:
        raw.close()
        source.close()
        engine.dispose()


@contextmanager
def postgres_database(url: str) -> Iterator[str]:
    """A fresh database :data:`PG_DATABASE` beside ``url``'s; dropped on the way out."""
    import psycopg

    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {PG_DATABASE}")
    try:
        yield url.rsplit("/", 1)[0] + f"/{PG_DATABASE}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)")


# --- the server ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def tree_cpu(*pids: int) -> float:
    """CPU seconds (user + system) of processes ``pids`` and their live descendants, from /proc."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        parents[int(entry.name)] = int(fields[1])
        times[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    total, todo = 0.0, list(pids)
    while todo:
        p = todo.pop()
        total += times.get(p, 0.0)
        todo.extend(child for child, parent in parents.items() if parent == p)
    return total


@dataclass
class Server:
    """A ``tracker serve`` subprocess (or the profiling wrapper) on a free loopback port."""

    db_url: str
    workers: int
    folder: Path
    profile_to: Path | None = None
    base: str = ""
    proc: subprocess.Popen[bytes] | None = None
    log: Path = field(default_factory=Path)

    def __enter__(self) -> Server:
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        env = dict(os.environ, TRACKER_DB=self.db_url, TRACKER_CONFIG=str(self.folder / "c.toml"))
        env["TRACKER_CACHE_DIR"] = str(self.folder / "cache")  # the record pages' reports
        if self.profile_to is None:
            cmd = [tracker(), "serve", "--port", str(port), "--workers", str(self.workers)]
        else:
            cmd = [sys.executable, __file__, "--serve-profiled", str(self.profile_to),
                   "--port", str(port)]  # fmt: skip
        self.log = self.folder / f"serve-{port}.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(self.base + "/login", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                raise SystemExit(f"the server did not start:\n{self.log.read_text()[-2000:]}")
            time.sleep(0.1)

    def __exit__(self, *_: object) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)  # the group this bench started
            self.proc.wait()

    def cpu(self) -> tuple[float, dict[int, float]]:
        """CPU seconds so far of the server's processes, and of each PostgreSQL backend serving
        its database (none on SQLite: SQLite runs inside the server's processes)."""
        assert self.proc is not None
        backends: dict[int, float] = {}
        if self.db_url.startswith("postgresql"):
            import psycopg

            with psycopg.connect(self.db_url) as conn:
                for (pid,) in conn.execute(
                    "SELECT pid FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                ):
                    backends[pid] = tree_cpu(pid)
        return tree_cpu(self.proc.pid), backends


def tracker() -> str:
    return shutil.which("tracker", path=str(Path(sys.executable).parent)) or "tracker"


def sign_in(base: str) -> tuple[str, str]:
    """A session cookie (through the login form) and an API token for :data:`USER`."""
    with httpx.Client(base_url=base, timeout=30) as client:
        page = client.get("/login")
        found = _CSRF.search(page.text)
        if found is None:
            raise SystemExit("the login page has no csrf_token field")
        answer = client.post(
            "/login",
            data={"name": USER, "password": PASSWORD, "csrf_token": found.group(1), "next": "/"},
        )
        cookie = client.cookies.get("tracker_session")
        if answer.status_code != 303 or not cookie:
            raise SystemExit(f"signing in failed: {answer.status_code} {answer.text[:300]}")
        answer = client.post(
            "/api/v1/tokens", json={"name": USER, "password": PASSWORD, "label": "bench"}
        )
        if answer.status_code != 201:
            raise SystemExit(f"no API token: {answer.status_code} {answer.text[:300]}")
        return cookie, str(answer.json()["token"])


# --- the load --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """A route under load: its name, the path of forecast ``{id}``, and how it signs in."""

    name: str
    path: str
    headers: dict[str, str]
    target: bool = True  # False: a reference row (where the CPU goes), no target


@dataclass
class Run:
    """One timed run: each request's latency (s), the statuses, the wall time and CPU spent."""

    latencies: list[float]
    statuses: Counter[int]
    wall: float
    server_cpu: float
    db_cpu: float
    client_cpu: float
    opened: int = 0  # PostgreSQL backends that came during the run
    closed: int = 0  # and that went (their CPU is not counted)

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.wall

    def percentile(self, q: float) -> float:
        return float(np.percentile(np.array(self.latencies), q)) * 1000


async def _httpx_load(base: str, route: Route, ids: int, clients: int, seconds: float) -> Run:
    """The load through one ``httpx.AsyncClient``: ``clients`` tasks, a kept-alive connection
    each."""
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(
        base_url=base, headers=route.headers, limits=limits, timeout=60
    ) as client:
        start = time.perf_counter()
        deadline = start + seconds

        async def one_client(seed: int) -> None:
            pick = random.Random(seed)
            while time.perf_counter() < deadline:
                path = route.path.format(id=pick.randint(1, ids))
                t = time.perf_counter()
                answer = await client.get(path)
                latencies.append(time.perf_counter() - t)
                statuses[answer.status_code] += 1

        await asyncio.gather(*(one_client(random.randrange(2**32)) for _ in range(clients)))
        wall = time.perf_counter() - start
    return Run(latencies, statuses, wall, 0.0, 0.0, 0.0)


async def _raw_load(base: str, route: Route, ids: int, clients: int, seconds: float) -> Run:
    """The same load through bare asyncio streams speaking HTTP/1.1 (kept alive, one connection
    per client): about 0.15 ms of CPU a request where ``httpx.AsyncClient`` spent 3-3.5 ms on
    this machine, more than the server; on 2 cores the client's CPU is taken from the server's."""
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    host, port = base.removeprefix("http://").split(":")
    head = "".join(f"{name}: {value}\r\n" for name, value in route.headers.items())
    start = time.perf_counter()
    deadline = start + seconds

    async def one_client(seed: int) -> None:
        pick = random.Random(seed)
        reader, writer = await asyncio.open_connection(host, int(port))
        while time.perf_counter() < deadline:
            path = route.path.format(id=pick.randint(1, ids))
            t = time.perf_counter()
            try:
                writer.write(f"GET {path} HTTP/1.1\r\nhost: {host}:{port}\r\n{head}\r\n".encode())
                headers = (await reader.readuntil(b"\r\n\r\n")).lower()
                found = re.search(rb"\r\ncontent-length: *(\d+)", headers)
                if found:
                    await reader.readexactly(int(found.group(1)))
                else:  # chunked
                    while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
                        await reader.readexactly(size + 2)
                    await reader.readuntil(b"\r\n")
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                statuses[0] += 1  # counted as a failed request (status 0); connect again
                writer.close()
                reader, writer = await asyncio.open_connection(host, int(port))
                continue
            latencies.append(time.perf_counter() - t)
            statuses[int(headers[9:12])] += 1
        writer.close()

    await asyncio.gather(*(one_client(random.randrange(2**32)) for _ in range(clients)))
    return Run(latencies, statuses, time.perf_counter() - start, 0.0, 0.0, 0.0)


def load(server: Server, route: Route, ids: int, args: argparse.Namespace, seconds: float) -> Run:
    """``--clients`` concurrent clients asking ``route`` for random forecasts for ``seconds``."""
    (server_cpu, backends), client_cpu = server.cpu(), time.process_time()
    run_load = _raw_load if args.client == "raw" else _httpx_load
    run = asyncio.run(run_load(server.base, route, ids, args.clients, seconds))
    run.client_cpu = time.process_time() - client_cpu
    server_after, backends_after = server.cpu()
    run.server_cpu = server_after - server_cpu
    run.db_cpu = sum(t - backends.get(pid, 0.0) for pid, t in backends_after.items())
    run.opened = len(backends_after.keys() - backends.keys())
    run.closed = len(backends.keys() - backends_after.keys())
    return run


def missing(answer: httpx.Response) -> str | None:
    """Why a probe's answer means the route cannot be measured (None: it can)."""
    if answer.status_code == 200:
        return None
    if answer.status_code == 404 and "no such page" in answer.text:
        return "not served yet (404 no such page)"
    detail = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", answer.text)).strip()
    return f"answered {answer.status_code}: {detail[:200]}"


def load_average() -> str:
    return f"{os.getloadavg()[0]:.2f}"


@dataclass
class Verdicts:
    """The targets checked so far: ``(label, met)``; skipped measurements are only printed."""

    checks: list[tuple[str, bool]] = field(default_factory=list)

    def check(self, label: str, ok: bool) -> None:
        self.checks.append((label, ok))
        print(f"  {'PASS' if ok else 'FAIL'}  {label}")


def measure_routes(
    server: Server, routes: list[Route], args: argparse.Namespace, where: str, verdicts: Verdicts
) -> None:
    """The load runs of each route (interleaved), then each route's medians against targets."""
    live = []
    for route in routes:
        with httpx.Client(base_url=server.base, headers=route.headers, timeout=60) as client:
            why = missing(client.get(route.path.format(id=args.forecasts // 2)))
        if why:
            print(f"  SKIP  {route.name}: {why}")
        else:
            live.append(route)
    if not live:
        return
    for route in live:  # warm-up: connections, caches, the workers' first imports
        load(server, route, args.forecasts, args, args.warmup)
    runs: dict[str, list[Run]] = {route.name: [] for route in live}
    before = load_average()
    for _ in range(args.runs):
        for route in live:
            runs[route.name].append(load(server, route, args.forecasts, args, args.seconds))
    after = load_average()
    for route in live:
        rs = runs[route.name]
        p50, p95, p99, rate = (
            statistics.median(v)
            for v in zip(
                *((r.percentile(50), r.percentile(95), r.percentile(99), r.rate) for r in rs),
                strict=True,
            )
        )
        count = sum(len(r.latencies) for r in rs)
        server_ms = 1000 * sum(r.server_cpu for r in rs) / count
        client_ms = 1000 * sum(r.client_cpu for r in rs) / count
        db_ms = 1000 * sum(r.db_cpu for r in rs) / count
        bad = sum(n for r in rs for status, n in r.statuses.items() if status != 200)
        print(
            f"  {route.name}, {args.clients} clients, {args.runs} x {args.seconds:g} s"
            f" (load average {before} -> {after}):\n"
            f"    p50 {p50:.1f} ms  p95 {p95:.1f} ms  p99 {p99:.1f} ms  {rate:.0f} req/s"
            f"  (per run: p95 {', '.join(f'{r.percentile(95):.0f}' for r in rs)} ms;"
            f" {', '.join(f'{r.rate:.0f}' for r in rs)} req/s)\n"
            f"    CPU per request: server {server_ms:.2f} ms"
            + (
                f", PostgreSQL {db_ms:.2f} ms (backends alive at the end; connections opened"
                f" {sum(r.opened for r in rs)}, closed {sum(r.closed for r in rs)})"
                if server.db_url.startswith("postgresql")
                else ""
            )
            + f", this client ({args.client}) {client_ms:.2f} ms;"
            f" {count:,} requests, {bad} not 200"
            + (f" ({dict(sum((r.statuses for r in rs), Counter()))})" if bad else "")
        )
        if not route.target:
            continue
        verdicts.check(
            f"{where}: {route.name} p95 {p95:.1f} ms < {P95_TARGET_MS:.0f} ms",
            p95 < P95_TARGET_MS and not bad,
        )
        if route.name.startswith("API"):
            verdicts.check(
                f"{where}: {route.name} {rate:.0f} req/s >= {THROUGHPUT_TARGET:.0f} req/s",
                rate >= THROUGHPUT_TARGET,
            )


#: A forecast the bench adds through the API (the CLI's text forms).
NEW_FORECAST = {
    "title": "Benchmark add through the API",
    "probability": "60%",
    "due": "+90d",
    "criteria": "Resolves YES if it happens.",
    "timezone": "UTC",
}


def resolve(client: httpx.Client, token: str) -> None:
    """A write that changes the scores: a forecast added and resolved through the API (a
    closing moves the key under which the record pages keep their report)."""
    bearer = {"authorization": f"Bearer {token}"}  # a token wins over the client's cookie
    added = client.post("/api/v1/forecasts", json=NEW_FORECAST, headers=bearer)
    done = added.status_code == 201 and client.post(
        f"/api/v1/forecasts/{added.json()['id']}/resolution", json={"outcome": "yes"},
        headers=bearer,
    ).status_code in (200, 201)  # fmt: skip
    if not done:
        print("  (adding and resolving a forecast failed: the page may come from its cache)")


def measure_team(
    server: Server, cookie: str, token: str, runs: int, where: str, verdicts: Verdicts
) -> None:
    """Each team track record page (:data:`TEAM_PATHS`), one request at a time, ``runs`` times:
    each time first after a write that changes the scores (:func:`resolve`: no report computed
    before it may be reused), then again at once (what the pages' cache answers)."""
    with httpx.Client(
        base_url=server.base, cookies={"tracker_session": cookie}, timeout=120
    ) as client:
        for path in TEAM_PATHS:
            why = missing(client.get(path))
            if why is not None:
                print(f"  SKIP  team page {path}: {why}")
                continue
            before = load_average()
            cold: list[float] = []
            warm: list[float] = []
            cpu: list[float] = []  # the server's CPU for each request after a write
            for _ in range(runs):
                resolve(client, token)
                for times in (cold, warm):
                    used, t = server.cpu()[0], time.perf_counter()
                    answer = client.get(path)
                    times.append((time.perf_counter() - t) * 1000)
                    if times is cold:
                        cpu.append((server.cpu()[0] - used) * 1000)
                    if answer.status_code != 200:
                        print(f"  team page {path} answered {answer.status_code}")
                        verdicts.check(f"{where}: team page {path} answers 200", False)
                        return
            median = statistics.median(cold)
            print(
                f"  team page GET {path} ({len(answer.content):,} bytes), one at a time, {runs}"
                f" runs (load average {before} -> {load_average()}): after a write median"
                f" {median:.0f} ms (runs {', '.join(f'{t:.0f}' for t in cold)}; the server's"
                f" CPU {statistics.median(cpu):.0f} ms); again at once"
                f" median {statistics.median(warm):.0f} ms"
                f" (runs {', '.join(f'{t:.0f}' for t in warm)})"
            )
            verdicts.check(
                f"{where}: team page {path} after a write {median:.0f} ms"
                f" < {TEAM_TARGET_MS:.0f} ms",
                median < TEAM_TARGET_MS,
            )
            again = statistics.median(warm)
            verdicts.check(
                f"{where}: team page {path} again (cached) {again:.0f} ms < {TEAM_TARGET_MS:.0f} ms",
                again < TEAM_TARGET_MS,
            )


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU (user + system) milliseconds of one subprocess (it must succeed)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = (time.perf_counter() - start) * 1000
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"{' '.join(cmd)} failed")
    return wall, (usage.ru_utime + usage.ru_stime) * 1000


def measure_add(
    server: Server, token: str, runs: int, folder: Path, where: str, verdicts: Verdicts
) -> None:
    """``tracker --server URL add ...`` as a subprocess, ``runs`` times after one."""
    env = {k: v for k, v in os.environ.items() if k not in ("TRACKER_DB", "TRACKER_SERVER")}
    env.update(TRACKER_TOKEN=token, TRACKER_CONFIG=str(folder / "client.toml"), NO_COLOR="1")
    cmd = [tracker(), "--server", server.base, "add", "Benchmark add through the API",
           "-p", "60%", "--due", "+90d", "--criteria", "Resolves YES if it happens."]  # fmt: skip
    first = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if first.returncode != 0:
        line = (first.stderr.strip() or first.stdout.strip()).splitlines()[-1:]
        print(f"  SKIP  tracker --server URL add: exit {first.returncode}: {' '.join(line)}")
        return
    before = load_average()
    times, cpu, floor = [], [], []
    for _ in range(runs):
        wall, used = timed(cmd, env)
        times.append(wall)
        cpu.append(used)
        floor.append(timed([sys.executable, "-c", "pass"], env)[0])
    posts = []
    for _ in range(runs):  # the server's part: the same request, a new connection each
        t = time.perf_counter()
        answer = httpx.post(
            server.base + "/api/v1/forecasts",
            json=NEW_FORECAST,
            headers={"authorization": f"Bearer {token}"},
        )
        posts.append((time.perf_counter() - t) * 1000)
    median = statistics.median(times)
    print(
        f"  tracker --server URL add, {runs} runs (load average {before} -> {load_average()}):"
        f" median {median:.0f} ms (runs {', '.join(f'{t:.0f}' for t in times)}), CPU of the CLI"
        f" process {statistics.median(cpu):.0f} ms; python -c pass {statistics.median(floor):.0f}"
        f" ms; the same POST /api/v1/forecasts from this process"
        f" {statistics.median(posts):.0f} ms (status {answer.status_code})"
    )
    verdicts.check(
        f"{where}: tracker add through the API {median:.0f} ms < {ADD_TARGET_MS:.0f} ms",
        median < ADD_TARGET_MS,
    )


def bench_server(
    db_url: str, workers: int, label: str, args: argparse.Namespace, folder: Path,
    verdicts: Verdicts,
) -> None:  # fmt: skip
    where = f"{label}, {workers} worker(s)"
    print(f"\n== {where}: tracker serve --workers {workers}, {args.forecasts:,} forecasts ==")
    with Server(db_url, workers, folder) as server:
        cookie, token = sign_in(server.base)
        routes = [
            Route("API GET /api/v1/forecasts/{id}", "/api/v1/forecasts/{id}",
                  {"authorization": f"Bearer {token}"}),
            Route("page GET /forecasts/{id}", "/forecasts/{id}",
                  {"cookie": f"tracker_session={cookie}"}),
        ]  # fmt: skip
        if args.breakdown:
            routes += [
                Route("reference GET /static/tracker.css (no sign-in, no database)",
                      "/static/tracker.css?{id}", {}, target=False),
                Route("reference GET /api/v1/me (the token's lookup only)", "/api/v1/me?{id}",
                      {"authorization": f"Bearer {token}"}, target=False),
            ]  # fmt: skip
        measure_routes(server, routes, args, where, verdicts)
        measure_team(server, cookie, token, args.team_runs, where, verdicts)
        measure_add(server, token, args.add_runs, folder, where, verdicts)


# --- profiling -------------------------------------------------------------------------------


def serve_profiled(out: Path, port: int) -> None:
    """One uvicorn process over ``$TRACKER_DB`` with every sync endpoint and dependency run on
    the event loop's thread (so cProfile sees them), profiled until SIGINT; stats to ``out``."""
    import starlette.concurrency

    async def inline(func: Any, *args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)

    starlette.concurrency.run_in_threadpool = inline  # before fastapi imports it
    import fastapi.concurrency
    import fastapi.dependencies.utils
    import fastapi.routing
    import uvicorn

    for module in (fastapi.concurrency, fastapi.routing, fastapi.dependencies.utils):
        if hasattr(module, "run_in_threadpool"):
            module.run_in_threadpool = inline  # type: ignore[attr-defined]
    import service.auth

    service.auth.run_in_threadpool = inline
    from service.app import create_app

    app = create_app()
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
    finally:
        profiler.disable()
        profiler.dump_stats(out)


def profile(args: argparse.Namespace, db_url: str, folder: Path) -> None:
    """Sequential requests to one route of a profiled server; the top of the profile. The
    record pages are asked after a closing each (:func:`resolve`: their report computed anew)."""
    out = folder / "serve.prof"
    with Server(db_url, 1, folder, profile_to=out) as server:
        cookie, token = sign_in(server.base)
        bearer = {"authorization": f"Bearer {token}"}
        path, headers, count = {
            "api": ("/api/v1/forecasts/{id}", bearer, 2000),
            "page": ("/forecasts/{id}", {"cookie": f"tracker_session={cookie}"}, 1000),
            "record": ("/record/team", {"cookie": f"tracker_session={cookie}"}, 10),
            "team": ("/team", {"cookie": f"tracker_session={cookie}"}, 10),
        }[args.profile]
        with httpx.Client(base_url=server.base, headers=headers, timeout=120) as client:
            pick = random.Random(1)
            start = time.perf_counter()
            for _ in range(count):
                if args.profile in ("record", "team"):
                    resolve(client, token)
                answer = client.get(path.format(id=pick.randint(1, args.forecasts)))
            wall = time.perf_counter() - start
            print(
                f"profile: {count} sequential GET {path}, last status {answer.status_code},"
                f" {1000 * wall / count:.2f} ms each (under cProfile, load average {load_average()});"
                " cProfile's overhead weighs on the many small calls"
            )
    stats = pstats.Stats(str(out))
    stats.sort_stats("cumulative").print_stats(50)
    stats.sort_stats("tottime").print_stats(30)


# --- main ------------------------------------------------------------------------------------


def options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--forecasts", type=int, default=100_000)
    parser.add_argument(
        "--servers",
        default="sqlite:2,postgres:2",
        help="databases and worker counts to serve, e.g. sqlite:1,sqlite:2,postgres:2",
    )
    parser.add_argument("--clients", type=int, default=20, help="concurrent clients")
    parser.add_argument(
        "--client",
        choices=("httpx", "raw"),
        default="raw",
        help="the load's HTTP client: bare asyncio streams (default: little CPU), or httpx",
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="length of one load run")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of warm-up per route")
    parser.add_argument("--runs", type=int, default=3, help="load runs per route (medians)")
    parser.add_argument("--team-runs", type=int, default=5)
    parser.add_argument("--add-runs", type=int, default=7)
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="also load two reference routes (the stylesheet; /api/v1/me): the CPU of the"
        " framework alone, and with the token's lookup",
    )
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--ledger", type=Path, help="SQLite ledger to build, or reuse if it exists")
    parser.add_argument(
        "--quick", action="store_true", help="20,000 forecasts, 1 run of 3 s, 3 team runs, 3 adds"
    )
    parser.add_argument(
        "--profile",
        choices=("api", "page", "record", "team"),
        help="profile one route (SQLite, one process) instead of the load: the API, the"
        " forecast page, /record/team or /team",
    )
    parser.add_argument("--serve-profiled", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        if "--forecasts" not in sys.argv:
            args.forecasts = 20_000
        args.seconds, args.warmup, args.runs = 3.0, 1.0, 1
        args.team_runs, args.add_runs = 3, 3
    return args


def main() -> int:
    args = options()
    if args.serve_profiled:
        serve_profiled(args.serve_profiled, args.port)
        return 0
    compile_project()
    compileall.compile_dir(ROOT / "service", quiet=1)
    folder = Path(tempfile.mkdtemp(prefix="service-bench-"))
    try:
        path = args.ledger or folder / "ledger.db"
        if not path.exists():
            t = time.perf_counter()
            build(path, args.forecasts)
            print(f"built {args.forecasts:,} forecasts in {time.perf_counter() - t:.1f} s: {path}")
        with sqlite3.connect(path) as conn:  # the built ones (a reused file holds bench adds)
            (args.forecasts,) = conn.execute(
                "SELECT COUNT(*) FROM forecast WHERE title LIKE 'Benchmark question %'"
            ).fetchone()
        sqlite_url = f"sqlite:///{path}"
        if args.profile:
            profile(args, sqlite_url, folder)
            return 0
        verdicts = Verdicts()
        for spec in args.servers.split(","):
            kind, _, workers = spec.partition(":")
            if kind == "sqlite":
                bench_server(sqlite_url, int(workers or 2), "SQLite", args, folder, verdicts)
            elif kind == "postgres":
                import psycopg

                try:
                    psycopg.connect(args.pg_url, connect_timeout=5).close()
                except psycopg.OperationalError as exc:
                    print(f"\n  SKIP  PostgreSQL at {args.pg_url}: {str(exc).strip()[:200]}"
                          " (start it with `bash ../shared/pg-up.sh`)")  # fmt: skip
                    continue
                with postgres_database(args.pg_url) as url:
                    t = time.perf_counter()
                    copy_to_postgres(path, url)
                    print(f"\ncopied the ledger into PostgreSQL in {time.perf_counter() - t:.1f} s")
                    bench_server(url, int(workers or 2), "PostgreSQL", args, folder, verdicts)
            else:
                raise SystemExit(f"Error: --servers: {spec!r} is not sqlite:N or postgres:N")
        print(f"\nsummary (load average now {load_average()}):")
        for label, ok in verdicts.checks:
            print(f"  {'PASS' if ok else 'FAIL'}  {label}")
        return 0 if all(ok for _, ok in verdicts.checks) else 1
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
