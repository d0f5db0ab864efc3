"""Sweep benchmark: 10,000 due checks against a loopback source answering each request after 20 ms.

Targets (issue #3):

- at the default concurrency (``resolvers.concurrency``, 16) a sweep of N checks takes at most
  1.5 x the bound N x 20 ms / concurrency, and is at least 10 x faster than one check at a time;
- a second sweep over unchanged sources, answered by 304s, costs less than half the bytes.

How it runs:

- the source is an asyncio HTTP/1.1 server in its own process, listening on 16 loopback
  addresses (127.0.0.1 ... 127.0.0.16) so that the checks spread over 16 hosts as a real sweep
  spreads over many sites (the per-host limit, 4, is then not the bottleneck); each answer is an
  8 KB HTML page with an ETag, or a 304 to a matching ``If-None-Match``, after 20 ms;
- the database is a fresh SQLite file (or ``--db URL``) holding N forecasts with one ``page``
  check each (inserted in bulk: the setup is not what is measured);
- each sweep is a separate ``tracker sweep --json`` process; the time is the sweep's own
  (``seconds`` in its report, from the first claim to the last record, excluding interpreter
  start-up); peak memory is that process's maximum resident set size and its CPU time (user +
  system, start-up included) comes from ``wait4``: on a shared machine the wall time follows the
  load, the CPU time much less;
- one-at-a-time is measured, not assumed: ``resolvers.concurrency = 1`` on a sample of
  ``--sample`` checks (default 300), and its time per check multiplied by N;
- the whole is repeated ``--runs`` times (default 3) on fresh databases; medians are reported.

    .venv/bin/python bench/sweep_bench.py [--checks 10000] [--runs 3] [--db postgresql://...]
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

DELAY = 0.020
HOSTS = [f"127.0.0.{i}" for i in range(1, 17)]
BODY = (
    "<!DOCTYPE html><html><head><meta charset='utf-8'><title>公告</title></head><body>"
    + "<p>" + "国家标准化管理委员会发布多项人工智能标准。" * 60 + "</p>"
    + "<p>人工智能失控风险评估要求正式发布。</p></body></html>"
).encode("utf-8")  # fmt: skip
ETAG = '"bench-v1"'


# --- the source -------------------------------------------------------------------------------


async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            fresh = f"if-none-match: {ETAG}".encode() in head.lower()
            await asyncio.sleep(DELAY)
            if fresh:
                writer.write(
                    b"HTTP/1.1 304 Not Modified\r\nETag: " + ETAG.encode() + b"\r\n"
                    b"Content-Length: 0\r\n\r\n"
                )
            else:
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


def _prepare(db_url: str, n: int, port: int) -> None:
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
                        "url": f"http://{HOSTS[i % len(HOSTS)]}:{port}/news/{i}",
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


def _make_due(db_url: str) -> None:
    from sqlalchemy import update

    from predictions.clock import now
    from predictions.db import make_engine, write_session
    from predictions.models import Check

    engine = make_engine(db_url)
    with write_session(engine) as session:
        session.execute(update(Check).values(next_check_at=now() - timedelta(seconds=1)))
    engine.dispose()


def _sweep(db_url: str, config: Path, *args: str) -> dict[str, Any]:
    """One ``tracker sweep --json`` process: its report plus its peak resident memory."""
    env = dict(os.environ, TRACKER_DB=db_url, TRACKER_CONFIG=str(config), PYTHONPATH=str(ROOT))
    with tempfile.TemporaryFile() as err_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tracker", "sweep", "--json", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=err_file,
        )
        assert proc.stdout is not None
        out = proc.stdout.read()
        _pid, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        err_file.seek(0)
        err = err_file.read().decode(errors="replace")
    report: dict[str, Any] = json.loads(out)
    report["peak_rss_mb"] = round(usage.ru_maxrss / 1024, 1)
    report["cpu_seconds"] = round(usage.ru_utime + usage.ru_stime, 2)
    report["returncode"] = proc.returncode
    if err.strip():
        report["stderr"] = err[-500:]
    report.pop("outcomes", None)
    return report


def _run_once(n: int, sample: int, port: int, db: str | None, folder: Path) -> dict[str, Any]:
    if db:
        from sqlalchemy import create_engine, text

        engine = create_engine(db)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        engine.dispose()
        db_url = db
    else:
        db_url = f"sqlite:///{folder / f'bench-{time.monotonic_ns()}.db'}"
    _prepare(db_url, n, port)
    config = folder / "config.toml"
    config.write_text("[resolvers]\nallow_private = true\n", encoding="utf-8")
    first = _sweep(db_url, config)
    _make_due(db_url)
    second = _sweep(db_url, config)
    _make_due(db_url)
    serial_config = folder / "serial.toml"
    serial_config.write_text(
        "[resolvers]\nallow_private = true\nconcurrency = 1\n", encoding="utf-8"
    )
    # A fresh sample (cold bodies, not 304s) for one-at-a-time: reset validators first.
    _reset_validators(db_url)
    serial = _sweep(db_url, serial_config, "--limit", str(sample))
    return {"first": first, "second": second, "serial": serial}


def _reset_validators(db_url: str) -> None:
    from sqlalchemy import update

    from predictions.db import make_engine, write_session
    from predictions.models import Check

    engine = make_engine(db_url)
    with write_session(engine) as session:
        session.execute(update(Check).values(etag=None, last_modified=None))
    engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checks", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sample", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=16, help="the default, for the bound")
    parser.add_argument("--db", help="a PostgreSQL URL to use instead of a SQLite file (wiped)")
    args = parser.parse_args()
    compile_project()

    ctx = multiprocessing.get_context("spawn")
    ports = ctx.Queue()
    server = ctx.Process(target=_serve, args=(ports,), daemon=True)
    server.start()
    port = ports.get(timeout=30)
    runs = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for i in range(args.runs):
                result = _run_once(args.checks, args.sample, port, args.db, Path(tmp))
                runs.append(result)
                f, s, z = result["first"], result["second"], result["serial"]
                print(
                    f"run {i + 1}: sweep {f['checked']} in {f['seconds']:.2f}s "
                    f"({f['checked'] / f['seconds']:.0f}/s, {f['errors']} errors, "
                    f"process CPU {f['cpu_seconds']:.1f}s, load {os.getloadavg()[0]:.1f}, "
                    f"peak {f['peak_rss_mb']} MB, {f['wire_bytes']:,} bytes); "
                    f"304 sweep {s['seconds']:.2f}s, {s['wire_bytes']:,} bytes; "
                    f"one-at-a-time {z['seconds'] / max(z['checked'], 1) * 1000:.1f} ms/check",
                    file=sys.stderr,
                )
    finally:
        server.terminate()

    def med(key: str, field: str) -> float:
        return statistics.median(r[key][field] for r in runs)

    n = args.checks
    seconds = med("first", "seconds")
    bound = n * DELAY / args.concurrency
    serial_per_check = statistics.median(
        r["serial"]["seconds"] / max(r["serial"]["checked"], 1) for r in runs
    )
    serial_total = serial_per_check * n
    bytes_first = med("first", "wire_bytes")
    bytes_second = med("second", "wire_bytes")
    summary = {
        "checks": n,
        "runs": args.runs,
        "concurrency": args.concurrency,
        "sweep_seconds_median": round(seconds, 2),
        "checks_per_second": round(n / seconds, 1),
        "bound_seconds": round(bound, 2),
        "ratio_to_bound": round(seconds / bound, 3),
        "one_at_a_time_ms_per_check": round(serial_per_check * 1000, 2),
        "one_at_a_time_seconds_extrapolated": round(serial_total, 1),
        "speedup_over_one_at_a_time": round(serial_total / seconds, 1),
        "peak_rss_mb_median": med("first", "peak_rss_mb"),
        "sweep_process_cpu_seconds_median": med("first", "cpu_seconds"),
        "cpu_ms_per_check": round(med("first", "cpu_seconds") / n * 1000, 3),
        "load_average_at_end": round(os.getloadavg()[0], 2),
        "bytes_first_sweep": int(bytes_first),
        "bytes_304_sweep": int(bytes_second),
        "bytes_ratio": round(bytes_second / bytes_first, 3),
        "errors": [r["first"]["errors"] + r["second"]["errors"] for r in runs],
        "targets_met": {
            "within_1.5x_bound": seconds <= 1.5 * bound,
            "10x_one_at_a_time": serial_total / seconds >= 10,
            "304_under_half_bytes": bytes_second < bytes_first / 2,
        },
    }
    print(json.dumps(summary, indent=2))
    return 0 if all(summary["targets_met"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
