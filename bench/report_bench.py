"""Benchmark: `tracker report` on a SQLite ledger of 1,000,000 resolved forecasts.

Targets (issue #5), medians of ``--runs`` runs, each command a fresh subprocess:

- ``tracker report --format json``: under 3 s wall, and within 1.5x of a bare reference run in the
  same session: a Python process that reads the same two columns (probability, outcome) with
  ``sqlite3`` into numpy and computes the Brier score and a 10-bin calibration table;
- its peak memory (max RSS of the process) under 400 MB;
- ``tracker report --format html -o FILE``: under 5 s wall.

The ledger: one estimate per forecast (a whole percent from 1% to 99%, drawn so that the outcomes
are calibrated), five forecasters, due dates and resolutions spread over five years, horizons from
1 day to 2 years. It is built once with bare ``sqlite3`` ``executemany`` into a file migrated by
``predictions.db.upgrade_schema``, and reused when ``--db`` names an existing file.

    python bench/report_bench.py [--forecasts 1000000] [--runs 3] [--db PATH]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from precompile import compile_project

from predictions.db import make_engine, upgrade_schema

TARGET_JSON_S = 3.0
TARGET_RATIO = 1.5
TARGET_RSS_MB = 400.0
TARGET_HTML_S = 5.0
FORECASTERS = ("alice", "bob", "carol", "dave", "manifold")

REFERENCE = r"""
import sqlite3, sys
import numpy as np
conn = sqlite3.connect(sys.argv[1])
rows = conn.execute(
    "SELECT e.probability, f.outcome FROM estimate e JOIN forecast f ON f.id = e.forecast_id "
    "WHERE f.status = 'resolved'"
).fetchall()
a = np.array(rows, dtype=np.float64)
p, y = a[:, 0], a[:, 1]
brier = float(np.mean((p - y) ** 2))
bins = np.minimum((p * 10 + 1e-9).astype(np.int64), 9)
n = np.bincount(bins, minlength=10)
mean_p = np.bincount(bins, weights=p, minlength=10) / np.maximum(n, 1)
freq = np.bincount(bins, weights=y, minlength=10) / np.maximum(n, 1)
print(brier, n.tolist(), mean_p.round(4).tolist(), freq.round(4).tolist())
"""


def _stamps(seconds: np.ndarray) -> list[str]:
    """Epoch seconds as SQLAlchemy's SQLite text form 'YYYY-MM-DD HH:MM:SS.ffffff'."""
    text = np.datetime_as_string(seconds.astype("datetime64[s]").astype("datetime64[us]"))
    return np.char.replace(text, "T", " ").tolist()


def build(path: Path, n: int, seed: int = 7) -> None:
    """A migrated SQLite file with ``n`` resolved forecasts, one estimate each."""
    engine = make_engine(f"sqlite:///{path}")
    upgrade_schema(engine)
    engine.dispose()
    rng = np.random.default_rng(seed)
    start = np.datetime64("2020-01-01T00:00:00", "s").astype(np.int64)
    made = start + rng.integers(0, 5 * 365 * 86400, n)
    horizon = rng.integers(86400, 730 * 86400, n)
    due = made + horizon
    resolved = due + rng.integers(0, 30 * 86400, n)
    p = rng.integers(1, 100, n) / 100.0
    outcome = (rng.random(n) < p).astype(np.int64)
    who = np.array(FORECASTERS)[rng.integers(0, len(FORECASTERS), n)].tolist()
    ids = list(range(1, n + 1))
    made_s, due_s, resolved_s = _stamps(made), _stamps(due), _stamps(resolved)
    conn = sqlite3.connect(path)
    with conn:
        conn.executemany(
            "INSERT INTO forecast (id, title, criteria, due, created_at, author, status, outcome,"
            " resolved_at, resolved_by) VALUES (?, 'Benchmark question', 'Resolves YES if it"
            " happens.', ?, ?, ?, 'resolved', ?, ?, 'bench')",
            zip(ids, due_s, made_s, who, outcome.tolist(), resolved_s, strict=True),
        )
        conn.executemany(
            "INSERT INTO estimate (id, forecast_id, forecaster, probability, made_at)"
            " VALUES (?, ?, ?, ?, ?)",
            zip(ids, ids, who, p.tolist(), made_s, strict=True),
        )
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def run(cmd: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """Wall seconds, peak RSS (MB) and CPU seconds (user + system) of one subprocess."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {err}")
    return wall, usage.ru_maxrss / 1024.0, usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--forecasts", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--db", type=Path, help="SQLite file to build (or reuse, if it exists)")
    parser.add_argument("--build-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    compile_project()
    if args.build_only:
        build(args.db, args.forecasts)
        return 0

    folder = Path(tempfile.mkdtemp(prefix="report-bench-"))
    path = args.db or folder / "ledger.db"
    if not path.exists():
        # Built in a child process: the max RSS a child reports includes what it inherited from
        # this process at fork, so this process must stay small.
        t = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                __file__,
                "--build-only",
                "--db",
                str(path),
                "--forecasts",
                str(args.forecasts),
            ],
            check=True,
        )
        print(f"built {args.forecasts:,} forecasts in {time.perf_counter() - t:.1f} s: {path}")
    env = dict(os.environ, TRACKER_DB=f"sqlite:///{path}", NO_COLOR="1")
    env["TRACKER_CONFIG"] = str(folder / "config.toml")
    tracker = [sys.executable, "-m", "tracker"]
    commands = {
        "reference": [sys.executable, "-c", REFERENCE, str(path)],
        "json": [*tracker, "report", "--format", "json"],
        "html": [*tracker, "report", "--format", "html", "-o", str(folder / "report.html")],
    }
    run(commands["json"], env)  # warm the page cache once
    results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in commands}
    for _ in range(args.runs):
        for name, cmd in commands.items():  # interleaved, so load changes hit all alike
            results[name].append(run(cmd, env))
    wall = {name: statistics.median(r[0] for r in rs) for name, rs in results.items()}
    rss = {name: max(r[1] for r in rs) for name, rs in results.items()}
    cpu = {name: statistics.median(r[2] for r in rs) for name, rs in results.items()}
    ratio = wall["json"] / wall["reference"]
    load = os.getloadavg()[0]
    print(f"{args.forecasts:,} forecasts, medians of {args.runs} runs, load average {load:.2f}:")
    for name in commands:
        runs = ", ".join(f"{r[0]:.2f}" for r in results[name])
        print(
            f"  {name:9} {wall[name]:6.2f} s  (runs {runs})  CPU {cpu[name]:.2f} s"
            f"  peak RSS {rss[name]:.0f} MB"
        )
    # On a shared machine CPU time says more than wall time; printed beside it, not a target.
    print(f"  CPU-time ratio json/reference: {cpu['json'] / cpu['reference']:.2f}x")
    checks = [
        (f"json under {TARGET_JSON_S} s", wall["json"] < TARGET_JSON_S),
        (f"json within {TARGET_RATIO}x of the reference ({ratio:.2f}x)", ratio <= TARGET_RATIO),
        (f"json peak RSS under {TARGET_RSS_MB:.0f} MB", rss["json"] < TARGET_RSS_MB),
        (f"html under {TARGET_HTML_S} s", wall["html"] < TARGET_HTML_S),
    ]
    for label, ok in checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {label}")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
