"""Benchmark: wall time of `tracker add` and `tracker list` on a ledger of 100,000 forecasts.

Target (issue #2): under 300 ms wall each. Builds the ledger once (forecasts, one estimate each,
their hash-chained ledger entries) straight into a migrated SQLite file, then runs each command as
a subprocess several times and prints the median.

    python bench/cli_latency_bench.py [--forecasts 100000] [--runs 7]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from precompile import compile_project

from predictions import ledger
from predictions.db import make_engine, upgrade_schema

TARGET_MS = 300


def build(path: Path, n: int) -> None:
    """A migrated SQLite file holding ``n`` open forecasts with one estimate each, chain intact."""
    engine = make_engine(f"sqlite:///{path}")
    upgrade_schema(engine)
    engine.dispose()
    chain = ledger.ChainBuilder(ledger.ChainHead(0, ledger.GENESIS))
    created = datetime(2026, 1, 1)
    forecasts, estimates, entries = [], [], []
    for i in range(1, n + 1):
        due = created + timedelta(days=400 + i % 1500)
        f = {
            "id": i,
            "title": f"Benchmark question {i}",
            "criteria": "Resolves YES if it happens.",
            "due": ledger.iso(due),
            "created_at": ledger.iso(created),
            "author": "bench",
            "source": None,
            "ref": None,
            "tags": [],
        }
        forecasts.append((i, f["title"], f["criteria"], due, created, "bench", "open"))
        entries.append(chain.row("register", f, i, created))
        p = 0.05 + (i % 90) / 100
        estimates.append((i, i, "bench", p, created))
        entries.append(
            chain.row(
                "estimate",
                {
                    "id": i,
                    "forecast": i,
                    "by": "bench",
                    "p": p,
                    "at": ledger.iso(created),
                    "note": None,
                },
                i,
                created,
            )
        )
    conn = sqlite3.connect(path)
    with conn:
        conn.executemany(
            "INSERT INTO forecast (id, title, criteria, due, created_at, author, status) VALUES (?,?,?,?,?,?,?)",
            [
                (a, b, c, d.isoformat(sep=" "), e.isoformat(sep=" "), f, g)
                for a, b, c, d, e, f, g in forecasts
            ],
        )
        conn.executemany(
            "INSERT INTO estimate (id, forecast_id, forecaster, probability, made_at) VALUES (?,?,?,?,?)",
            [(a, b, c, d, e.isoformat(sep=" ")) for a, b, c, d, e in estimates],
        )
        conn.executemany(
            "INSERT INTO ledger (seq, at, kind, forecast_id, payload, prev_hash, hash) VALUES (?,?,?,?,?,?,?)",
            [
                (
                    r["seq"],
                    r["at"].isoformat(sep=" "),
                    r["kind"],
                    r["forecast_id"],
                    r["payload"],
                    r["prev_hash"],
                    r["hash"],
                )
                for r in entries
            ],
        )
    conn.close()


def timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    return (time.perf_counter() - start) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--forecasts", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    compile_project()
    folder = Path(tempfile.mkdtemp(prefix="tracker-bench-"))
    try:
        db = folder / "bench.db"
        t0 = time.perf_counter()
        build(db, args.forecasts)
        print(f"built {args.forecasts:,} forecasts in {time.perf_counter() - t0:.1f} s")
        env = dict(
            os.environ,
            TRACKER_DB=f"sqlite:///{db}",
            TRACKER_CONFIG=str(folder / "c.toml"),
            TRACKER_FORECASTER="bench",
        )
        tracker = shutil.which("tracker", path=str(Path(sys.executable).parent)) or "tracker"
        subprocess.run(
            [tracker, "list"], env=env, check=True, stdout=subprocess.DEVNULL
        )  # warm the page cache
        results = {}
        for name, cmd in {
            "tracker add": [
                tracker,
                "add",
                "Benchmark add",
                "-p",
                "0.6",
                "--due",
                "+90d",
                "--criteria",
                "c",
            ],
            "tracker list": [tracker, "list"],
            "python -c pass (floor)": [sys.executable, "-c", "pass"],
        }.items():
            runs = [timed(cmd, env) for _ in range(args.runs)]
            results[name] = statistics.median(runs)
            print(
                f"{name:24s} median {results[name]:6.0f} ms over {args.runs} runs (min {min(runs):.0f}, max {max(runs):.0f})"
                + ("" if "floor" in name else f"; target < {TARGET_MS} ms")
            )
        check = subprocess.run([tracker, "verify"], env=env, capture_output=True, text=True)
        print("verify after the runs:", check.stdout.strip() or check.stderr.strip())
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
