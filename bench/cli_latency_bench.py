"""Benchmark: wall time of the everyday commands on a ledger of 100,000 forecasts.

Target (issue 12): `tracker add`, `update`, `list`, `show` and `resolve` under 300 ms wall each;
(issue 14) the same for `add` and `update` of a numeric forecast (quantiles made into a 201-point
CDF). Builds the ledger once (forecasts, one estimate each, their hash-chained ledger entries)
straight into a migrated SQLite file, adds one numeric forecast through the CLI, then runs each
command as a subprocess several times (interleaved, one round of all of them after another) and
prints the medians; `tracker verify` checks the ledger at the end.

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
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from precompile import compile_project

from predictions.chain import GENESIS, ChainBuilder, ChainHead, iso, stored
from predictions.db import make_engine, upgrade_schema

TARGET_MS = 300


def build(path: Path, n: int) -> None:
    """A migrated SQLite file holding ``n`` open forecasts with one estimate each, chain intact."""
    engine = make_engine(f"sqlite:///{path}")
    upgrade_schema(engine)
    engine.dispose()
    chain = ChainBuilder(ChainHead(0, GENESIS))
    created = datetime(2026, 1, 1)
    forecasts, estimates, entries = [], [], []
    for i in range(1, n + 1):
        due = created + timedelta(days=400 + i % 1500)
        f = {
            "id": i,
            "title": f"Benchmark question {i}",
            "criteria": "Resolves YES if it happens.",
            "due": iso(due),
            "created_at": iso(created),
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
                    "at": iso(created),
                    "note": None,
                },
                i,
                created,
            )
        )

    def text(value: datetime) -> str:  # as SQLAlchemy stores a datetime on SQLite
        return str(stored({"t": value})["t"])

    conn = sqlite3.connect(path)
    with conn:
        conn.executemany(
            "INSERT INTO forecast (id, title, criteria, due, created_at, author, status) VALUES (?,?,?,?,?,?,?)",
            [(a, b, c, text(d), text(e), f, g) for a, b, c, d, e, f, g in forecasts],
        )
        conn.executemany(
            "INSERT INTO estimate (id, forecast_id, forecaster, probability, made_at) VALUES (?,?,?,?,?)",
            [(a, b, c, d, text(e)) for a, b, c, d, e in estimates],
        )
        conn.executemany(
            "INSERT INTO ledger (seq, at, kind, forecast_id, payload, prev_hash, hash) VALUES (?,?,?,?,?,?,?)",
            [
                (r["seq"], text(r["at"]), r["kind"], r["forecast_id"], r["payload"],
                 r["prev_hash"], r["hash"])
                for r in entries
            ],
        )  # fmt: skip
    conn.close()


def timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    return (time.perf_counter() - start) * 1000


def run_commands(
    commands: dict[str, Callable[[int], list[str]]], runs: int, env: dict[str, str]
) -> None:
    """Time each command ``runs`` times, interleaved (one round of all of them after another),
    and print each median beside the target (the ``python ...`` floors without one)."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    for i in range(runs):
        for name, cmd in commands.items():
            times[name].append(timed(cmd(i), env))
    width = max(map(len, commands))
    for name, taken in times.items():
        print(
            f"{name:{width}s} median {statistics.median(taken):6.0f} ms over {runs} runs "
            f"(min {min(taken):.0f}, max {max(taken):.0f})"
            + ("" if name.startswith("python") else f"; target < {TARGET_MS} ms")
        )


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
        middle = str(args.forecasts // 2)
        numeric = str(args.forecasts + 1)  # the forecast the numeric add below registers
        add_numeric = [tracker, "add", "Benchmark numeric", "--numeric", "0..34", "--quantiles",
                       "10%=4,50%=8,90%=15", "--due", "+90d", "--criteria", "c"]  # fmt: skip
        subprocess.run(add_numeric, env=env, check=True, stdout=subprocess.DEVNULL)
        commands = {
            "tracker add": lambda i: [tracker, "add", "Benchmark add", "-p", "0.6", "--due",
                                      "+90d", "--criteria", "c"],
            "tracker update": lambda i: [tracker, "update", middle, "-p", f"0.{10 + i}"],
            "tracker add --numeric": lambda i: add_numeric,
            "tracker update (numeric)": lambda i: [tracker, "update", numeric, "--quantiles",
                                                   f"10%=4,50%=8.{i},90%=15"],
            "tracker show (numeric)": lambda i: [tracker, "show", numeric],
            "tracker list": lambda i: [tracker, "list"],
            "tracker show": lambda i: [tracker, "show", middle],
            "tracker resolve": lambda i: [tracker, "resolve", str(i + 1), "yes"],
            "tracker reopen": lambda i: [tracker, "reopen", str(i + 1), "--note", "bench"],
            "tracker withdraw": lambda i: [tracker, "withdraw", str(args.forecasts - i), "--note",
                                           "bench"],
            "python -c pass (floor)": lambda i: [sys.executable, "-c", "pass"],
        }  # fmt: skip
        run_commands(commands, args.runs, env)
        check = subprocess.run([tracker, "verify"], env=env, capture_output=True, text=True)
        print("verify after the runs:", check.stdout.strip() or check.stderr.strip())
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
