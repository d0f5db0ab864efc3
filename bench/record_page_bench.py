"""Benchmark: the team's track-record page (``GET /record/team``) and the team page (``/team``)
from ``tracker serve`` on a SQLite ledger of 100,000 resolved forecasts (report_bench's ledger).

Target (issue #15): the team track record page under 500 ms. The pages read the report through a
cache of files (service/record_pages.py), so the bench times the first request after the ledger
was written (``/record/team``'s builds the report and keeps it: not a target; ``/team`` reads the
same report from the cache) apart from the requests after it (each a real HTTP request of a
signed-in viewer over loopback, the server a separate process).
It checks that the page's team table holds the numbers of ``tracker report --format json
--group-by forecaster``.

    python bench/record_page_bench.py [--forecasts 100000] [--estimates 3] [--runs 9] [--db PATH]
"""

from __future__ import annotations

import json
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import httpx
from report_bench import build, prepare, verdict

TARGET_S = 0.5
PAGES = ("/record/team", "/team")


def _port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait(url: str, deadline: float = 30.0) -> None:
    end = time.monotonic() + deadline
    while True:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            if time.monotonic() > end:
                raise
            time.sleep(0.1)


def main() -> int:
    prepared = prepare(__file__, 3, build, "")
    if prepared is None:
        return 0
    args, _, commands, env = prepared
    env["TRACKER_CACHE_DIR"] = tempfile.mkdtemp(prefix="record-bench-cache-")
    tracker = [sys.executable, "-m", "tracker"]
    name = f"bench{time.time_ns()}"
    added = subprocess.run(
        [*tracker, "user", "add", name, "--role", "viewer"],
        env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    shown = re.search(r"Password \(shown once\): (\S+)", added.stdout)
    assert shown is not None, added.stdout
    password = shown.group(1)
    report = subprocess.run(
        [*commands["json"], "--group-by", "forecaster"],
        env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    team = json.loads(report.stdout)["team"]
    port = _port()
    server = subprocess.Popen([*tracker, "serve", "--port", str(port)], env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait(base + "/login")
        with httpx.Client(base_url=base, timeout=60) as client:
            form = client.get("/login").text
            csrf = re.search(r'name="csrf_token" value="([^"]*)"', form)
            assert csrf is not None
            data = {"name": name, "password": password, "csrf_token": csrf.group(1), "next": "/"}
            assert client.post("/login", data=data).status_code == 303
            timings: dict[str, tuple[float, list[float]]] = {}
            pages: dict[str, str] = {}
            for path in PAGES:
                start = time.perf_counter()
                first = client.get(path)
                cold = time.perf_counter() - start
                assert first.status_code == 200, first.text[:300]
                warm = []
                for _ in range(args.runs):
                    start = time.perf_counter()
                    page = client.get(path)
                    warm.append(time.perf_counter() - start)
                    assert page.status_code == 200
                timings[path], pages[path] = (cold, warm), page.text
    finally:
        server.terminate()
        server.wait(10)
    print(f"{args.forecasts:,} resolved forecasts; tracker serve, one worker, SQLite:")
    for path, (cold, warm) in timings.items():
        runs = ", ".join(f"{t * 1000:.0f}" for t in warm)
        print(
            f"  {path:13} first request {cold * 1000:.0f} ms, then median"
            f" {statistics.median(warm) * 1000:.0f} ms (runs {runs})"
        )
    same = all(
        f'data-name="{s["name"]}"><td>{s["rank"] or "-"}</td>' in pages["/team"]
        and f"<td>{s['count']}</td><td>{s['brier']:.3f}</td>" in pages["/team"]
        for kind in ("ranked", "unranked", "aggregates", "markets")
        for s in team[kind]
    )
    median = statistics.median(timings["/record/team"][1])
    return verdict(
        [
            ("the team table holds tracker report's numbers", same),
            (
                f"/record/team {median * 1000:.0f} ms, under {TARGET_S * 1000:.0f} ms",
                median < TARGET_S,
            ),
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
