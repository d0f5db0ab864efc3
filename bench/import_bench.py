"""Benchmark: `tracker import` of 100,000 forecasts with 3 estimates each into a fresh SQLite file.

Targets (issue 12): the import takes under 10 s (the median of the runs, wall clock, process start
to exit) and its peak memory (ru_maxrss of the child) stays under 500 MB, because the file is
streamed, not loaded. For scale, each run also times a bare ``sqlite3.executemany`` of the same
rows and prints the ratio (no target: the import also reads the file, checks every record and
hashes the chain).

Each run:

1. writes the forecasts as a tracker CSV file (history records: created_at, three estimates) in a
   temporary folder (once, reused by every run);
2. creates a fresh SQLite file at the current schema (``tracker db upgrade``, not timed);
3. times ``tracker import FILE`` in a subprocess (wall clock, process start to exit) and reads its
   peak RSS from ``os.wait4``;
4. in another child process, reads the rows the import wrote back from the database (forecast,
   tag, estimate, ledger) and times a bare ``sqlite3.executemany`` of exactly those rows, in one
   transaction, into another fresh file at the same schema and with the same connection settings
   (WAL, synchronous=NORMAL), reading them not timed.

Into the empty file of step 2 the import writes through a rollback journal instead of the WAL
(``predictions.db.write_session(bulk=True)``); the bare run keeps the WAL of the tracker's
connection settings, as a plain program writing to the tracker's file would.

Usage::

    .venv/bin/python bench/import_bench.py [--forecasts 100000] [--runs 3]

Prints each run and the medians, and exits 1 if a median misses a target.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from precompile import compile_project

TRACKER = [sys.executable, "-m", "tracker"]
TABLES = {
    "forecast": "id, title, criteria, due, created_at, author, source, ref, status, outcome, "
    "resolved_at, resolved_by, resolution_note, resolution_evidence",
    "tag": "forecast_id, name",
    "estimate": "id, forecast_id, forecaster, probability, made_at, note",
    "ledger": "id, seq, at, kind, forecast_id, payload, prev_hash, hash",
}
TARGET_SECONDS = 10.0
TARGET_MB = 500.0


def write_file(path: Path, n: int) -> None:
    """n forecasts, three estimates each, as a tracker CSV file."""
    columns = "ref title criteria due created_at author tags probability estimated_at forecaster"
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(columns.split())
        for i in range(1, n + 1):
            day = 1 + i % 28
            clock = f"{i % 24:02d}:{i // 24 % 60:02d}:{i // 1440 % 60:02d}"  # distinct times
            w.writerow(
                [
                    f"bench:{i}",
                    f"Benchmark question {i}: will metric {i % 97} exceed {i % 1000}?",
                    f"Resolves YES if metric {i % 97} is above {i % 1000} on 2030-01-{day:02d}.",
                    f"2030-01-{day:02d}",
                    f"2025-01-{day:02d}T{clock}Z",
                    f"user{i % 50}",
                    "bench" if i % 2 else "bench,odd",
                    f"{0.1 + (i % 80) / 100:.2f}",
                    f"2025-01-{day:02d}T{clock}Z",
                    f"user{i % 50}",
                ]
            )
            for k in (1, 2):
                w.writerow(
                    [
                        "",
                        "",
                        "",
                        "",
                        "",
                        "",
                        "",
                        f"{0.05 + ((i + 7 * k) % 90) / 100:.2f}",
                        f"2025-0{1 + k}-{day:02d}T{clock}Z",
                        f"user{(i + k) % 50}",
                    ]
                )


def fresh_db(path: Path, env: dict[str, str]) -> None:
    subprocess.run(
        [*TRACKER, "--db", f"sqlite:///{path}", "db", "upgrade"],
        env=env,
        check=True,
        capture_output=True,
    )


def timed_import(data: Path, db: Path, env: dict[str, str]) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user + system) and peak RSS (MB) of `tracker import`."""
    start = time.perf_counter()
    child = subprocess.Popen(
        [*TRACKER, "--db", f"sqlite:///{db}", "import", str(data), "--format", "csv"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    _pid, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    out = child.stdout.read().decode() if child.stdout else ""
    err = child.stderr.read().decode() if child.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"import failed:\n{out}\n{err}")
    peak_mb = usage.ru_maxrss / 1024  # Linux reports KiB
    return seconds, usage.ru_utime + usage.ru_stime, peak_mb


def bare_executemany(source: Path, target: Path, env: dict[str, str]) -> tuple[float, float]:
    """Seconds for plain sqlite3.executemany of the rows the import wrote, in a child process.

    A child of its own, so the rows it holds never swell this process: a forked child's
    ru_maxrss starts from its parent's size, which would inflate the next import's peak.
    """
    done = subprocess.run(
        [sys.executable, __file__, "--bare", str(source), str(target)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    wall, cpu = done.stdout.split()
    return float(wall), float(cpu)


def _bare(source: Path, target: Path) -> tuple[float, float]:
    with sqlite3.connect(source) as src:
        rows = {t: src.execute(f"SELECT {cols} FROM {t}").fetchall() for t, cols in TABLES.items()}
    conn = sqlite3.connect(target, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA synchronous=NORMAL")
    start, cpu = time.perf_counter(), time.process_time()
    conn.execute("BEGIN IMMEDIATE")
    for table, cols in TABLES.items():
        marks = ", ".join("?" for _ in cols.split(","))
        conn.executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks})", rows[table])
    conn.execute("COMMIT")
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    conn.close()
    return seconds, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--forecasts", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--bare", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    compile_project()
    if args.bare:
        print(*_bare(*args.bare))
        return 0
    env = dict(os.environ)
    env["TRACKER_CONFIG"] = os.devnull + "-tracker-bench.toml"
    env["TRACKER_FORECASTER"] = "bench"
    env.pop("TRACKER_DB", None)
    folder = Path(tempfile.mkdtemp(prefix="tracker-import-bench-"))
    try:
        data = folder / "forecasts.csv"
        write_file(data, args.forecasts)
        size_mb = data.stat().st_size / 1e6
        print(f"{args.forecasts:,} forecasts x 3 estimates, CSV {size_mb:.1f} MB, {args.runs} runs")
        imports, bares, peaks = [], [], []
        for run in range(1, args.runs + 1):
            db, bare_db = folder / f"import{run}.db", folder / f"bare{run}.db"
            fresh_db(db, env)
            fresh_db(bare_db, env)
            seconds, cpu, peak = timed_import(data, db, env)
            bare, bare_cpu = bare_executemany(db, bare_db, env)
            imports.append(seconds)
            bares.append(bare)
            peaks.append(peak)
            print(
                f"run {run}: import {seconds:.2f} s (CPU {cpu:.2f} s; load {os.getloadavg()[0]:.1f}), "
                f"bare executemany {bare:.2f} s (CPU {bare_cpu:.2f} s), "
                f"ratio {seconds / bare:.2f}x, peak {peak:.0f} MB"
            )
            for p in folder.glob(f"*{run}.db*"):
                p.unlink()
        imp, bare, peak = (statistics.median(x) for x in (imports, bares, peaks))
        ratio = statistics.median(i / b for i, b in zip(imports, bares, strict=True))
        print(
            f"median: import {imp:.2f} s (target < {TARGET_SECONDS:.0f} s), "
            f"bare executemany {bare:.2f} s, ratio (median of runs) {ratio:.2f}x, "
            f"peak memory {peak:.0f} MB (target < {TARGET_MB:.0f} MB)"
        )
        ok = imp < TARGET_SECONDS and peak < TARGET_MB
        print("targets met" if ok else "TARGETS MISSED")
        return 0 if ok else 1
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
