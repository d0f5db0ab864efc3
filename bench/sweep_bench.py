"""Sweep benchmark: ``tracker sweep`` of 10,000 due checks against a loopback source that answers
each request after 100 ms, then after 20 ms.

Targets (issue #12), at the default concurrency (``resolvers.concurrency``, 16): at 100 ms the
sweep takes at most 1.2 x the bound N x 100 ms / concurrency; at 20 ms at most 2 x the bound
N x 20 ms / concurrency; its peak memory is reported.

How it runs:

- the source is an asyncio HTTP/1.1 server in its own process, listening on 16 loopback
  addresses (127.0.0.1 ... 127.0.0.16) so that the checks spread over 16 hosts as a real sweep
  spreads over many sites (the per-host limit, 4, is then not the bottleneck); each answer is an
  8 KB HTML page with an ETag, sent after the delay the URL names (``/<ms>/news/<i>``);
- the database is a fresh SQLite file (or ``--db URL``, wiped first) holding N forecasts with one
  ``page`` check each, inserted in bulk (the setup is not what is measured);
- each sweep is a separate ``tracker sweep --json`` process; the time is the sweep's own
  (``seconds`` in its report, from the first claim to the last record, excluding interpreter
  start-up); peak memory is that process's maximum resident set size, and its CPU time (user +
  system, start-up included) comes from ``wait4``: on a shared machine the wall time follows the
  load, the CPU time much less;
- each delay is measured ``--runs`` times (default 3) on fresh databases; medians are reported.

    .venv/bin/python bench/sweep_bench.py [--checks 10000] [--runs 3] [--delays 100,20]
        [--db postgresql://...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from precompile import compile_project

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

HOSTS = [f"127.0.0.{i}" for i in range(1, 17)]
BODY = (
    "<!DOCTYPE html><html><head><meta charset='utf-8'><title>公告</title></head><body>"
    + "<p>" + "国家标准化管理委员会发布多项人工智能标准。" * 60 + "</p>"
    + "<p>人工智能失控风险评估要求正式发布。</p></body></html>"
).encode("utf-8")  # fmt: skip
ETAG = '"bench-v1"'
#: The ratio to the bound each delay (ms) must stay within.
TARGETS = {100: 1.2, 20: 2.0}


# --- the source -------------------------------------------------------------------------------


async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            path = head.split(b" ", 2)[1]
            await asyncio.sleep(int(path.split(b"/")[1]) / 1000)
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
                b"ETag: " + ETAG.encode() + b"\r\n"
                b"Content-Length: " + str(len(BODY)).encode() + b"\r\n\r\n" + BODY
            )
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


def _serve(port_queue: Any) -> None:
    async def main() -> None:
        first = await asyncio.start_server(_handle, host=HOSTS[0], port=0, backlog=1024)
        port = first.sockets[0].getsockname()[1]
        others = [
            await asyncio.start_server(_handle, host=h, port=port, backlog=1024) for h in HOSTS[1:]
        ]
        port_queue.put(port)
        await asyncio.gather(*(s.serve_forever() for s in [first, *others]))

    asyncio.run(main())


# --- the database -----------------------------------------------------------------------------


def _prepare(db_url: str, n: int, port: int, delay_ms: int) -> None:
    from sqlalchemy import insert

    from predictions.clock import now
    from predictions.db import make_engine, upgrade_schema, write_session
    from predictions.models import Check, Forecast

    engine = make_engine(db_url)
    upgrade_schema(engine)
    at = now() - timedelta(minutes=1)
    with write_session(engine) as session:
        session.execute(
            insert(Forecast),
            [
                {
                    "id": i,
                    "title": f"Benchmark forecast {i}",
                    "criteria": "Resolves YES if the page reports the standard.",
                    "due": at + timedelta(days=365),
                    "created_at": at,
                    "author": "bench",
                    "status": "open",
                }
                for i in range(1, n + 1)
            ],
        )
        session.execute(
            insert(Check),
            [
                {
                    "forecast_id": i,
                    "kind": "page",
                    "params": {
                        "url": f"http://{HOSTS[i % len(HOSTS)]}:{port}/{delay_ms}/news/{i}",
                        "contains": ["失控"],
                        "match": "any",
                    },
                    "mode": "propose",
                    "enabled": True,
                    "created_at": at,
                    "next_check_at": at,
                    "failures": 0,
                }
                for i in range(1, n + 1)
            ],
        )
    engine.dispose()


def _sweep(db_url: str, config: Path) -> dict[str, Any]:
    """One ``tracker sweep --json`` process: its report plus its peak resident memory."""
    env = dict(os.environ, TRACKER_DB=db_url, TRACKER_CONFIG=str(config), PYTHONPATH=str(ROOT))
    with tempfile.TemporaryFile() as err_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tracker", "sweep", "--json"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=err_file,
        )
        assert proc.stdout is not None
        out = proc.stdout.read()
        _pid, status, usage = os.wait4(proc.pid, 0)
        err_file.seek(0)
        err = err_file.read().decode(errors="replace")
    if not out.strip():
        raise SystemExit(f"tracker sweep printed nothing (exit {status}): {err[-2000:]}")
    report: dict[str, Any] = json.loads(out)
    report.pop("outcomes", None)
    report["peak_rss_mb"] = round(usage.ru_maxrss / 1024, 1)
    report["cpu_seconds"] = round(usage.ru_utime + usage.ru_stime, 2)
    report["returncode"] = os.waitstatus_to_exitcode(status)
    if err.strip():
        report["stderr"] = err[-500:]
    return report


def _run_once(n: int, delay_ms: int, port: int, db: str | None, folder: Path) -> dict[str, Any]:
    if db:
        from sqlalchemy import create_engine, text

        engine = create_engine(db)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        engine.dispose()
        db_url = db
    else:
        db_url = f"sqlite:///{folder / f'bench-{time.monotonic_ns()}.db'}"
    _prepare(db_url, n, port, delay_ms)
    config = folder / "config.toml"
    config.write_text("[resolvers]\nallow_private = true\n", encoding="utf-8")
    return _sweep(db_url, config)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checks", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--delays", default="100,20", help="source delays in ms, comma-separated")
    parser.add_argument("--concurrency", type=int, default=16, help="the default, for the bound")
    parser.add_argument("--db", help="a PostgreSQL URL to use instead of a SQLite file (wiped)")
    args = parser.parse_args()
    delays = [int(d) for d in args.delays.split(",")]
    compile_project()

    ctx = multiprocessing.get_context("spawn")
    ports = ctx.Queue()
    server = ctx.Process(target=_serve, args=(ports,), daemon=True)
    server.start()
    port = ports.get(timeout=30)
    n = args.checks
    summary: dict[str, Any] = {"checks": n, "runs": args.runs, "concurrency": args.concurrency}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for delay_ms in delays:
                runs = []
                for i in range(args.runs):
                    r = _run_once(n, delay_ms, port, args.db, Path(tmp))
                    runs.append(r)
                    print(
                        f"{delay_ms} ms, run {i + 1}: {r['checked']} checks in {r['seconds']:.2f}s "
                        f"({r['errors']} errors, exit {r['returncode']}), process CPU "
                        f"{r['cpu_seconds']:.1f}s, peak {r['peak_rss_mb']} MB, "
                        f"load {os.getloadavg()[0]:.1f}",
                        file=sys.stderr,
                    )
                seconds = statistics.median(r["seconds"] for r in runs)
                bound = n * delay_ms / 1000 / args.concurrency
                target = TARGETS.get(delay_ms)
                summary[f"{delay_ms}ms"] = {
                    "sweep_seconds_median": round(seconds, 2),
                    "bound_seconds": round(bound, 2),
                    "ratio_to_bound": round(seconds / bound, 3),
                    "target_ratio": target,
                    "target_met": None if target is None else seconds <= target * bound,
                    "checks_per_second": round(n / seconds, 1),
                    "peak_rss_mb_median": statistics.median(r["peak_rss_mb"] for r in runs),
                    "cpu_ms_per_check": round(
                        statistics.median(r["cpu_seconds"] for r in runs) / n * 1000, 3
                    ),
                    "errors": [r["errors"] for r in runs],
                    "checked": [r["checked"] for r in runs],
                }
    finally:
        server.terminate()
    summary["load_average_at_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(summary, indent=2))
    for delay_ms in delays:
        d = summary[f"{delay_ms}ms"]
        print(
            f"sweep of {n:,} at {delay_ms} ms: {d['sweep_seconds_median']} s = "
            f"{d['ratio_to_bound']}x the {d['bound_seconds']} s bound (target: <= "
            f"{d['target_ratio']}x: {'met' if d['target_met'] else 'NOT met'}); "
            f"peak {d['peak_rss_mb_median']} MB"
        )
    met = all(
        summary[f"{d}ms"]["target_met"] and not any(summary[f"{d}ms"]["errors"]) for d in delays
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
