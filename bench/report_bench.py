"""Benchmark: `tracker report --format json` on a SQLite ledger of resolved forecasts with an
estimate history.

Targets (issue #12), medians of ``--runs`` interleaved runs, each command a fresh subprocess:

- 100,000 resolved forecasts with 300,000 estimates: under 1 s, and within 1.5x of a bare
  reference on the same rows: a Python process that reads the estimates the scoring rule may
  score (made before the due date and the resolution) with ``sqlite3`` into numpy, picks each
  forecaster's last one per question, and computes the Brier score, the time-averaged Brier score
  and a 10-bin calibration table (the report's headline numbers);
- 1,000,000 resolved forecasts (3,000,000 estimates): under 6 s.

The bench checks that the report's Brier and time-averaged Brier equal the reference's.

The ledger: per forecast ``--estimates`` estimates (whole percents), 70% by the question's author
and the rest by one of four others (``manifold`` among them), spread from registration to a
little past the due date; 15% of the questions resolve before their due date, so that some
estimates come after the resolution; half of the questions carry a tag; due dates over five
years, horizons from 1 day to 2 years. It is built once with bare ``sqlite3`` into a file
migrated by ``predictions.db.upgrade_schema``, and reused when ``--db`` names an existing file.

    python bench/report_bench.py [--forecasts 100000] [--estimates 3] [--runs 5] [--db PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from precompile import compile_project

from predictions.db import make_engine, upgrade_schema

#: (most forecasts, wall-time target in seconds)
TARGETS_S = ((100_000, 1.0), (1_000_000, 6.0))
TARGET_RATIO = 1.5
RATIO_UP_TO = 100_000  # the ratio is a target at this size and below
FORECASTERS = ("alice", "bob", "carol", "dave", "manifold")
TAGS = ("ai", "china", "markets", "policy", "us")

REFERENCE = r"""
import json, sqlite3, sys
import numpy as np
conn = sqlite3.connect(sys.argv[1])
rows = conn.execute(
    "SELECT e.forecast_id, e.forecaster, e.probability, julianday(e.made_at), f.outcome,"
    " julianday(min(f.due, f.resolved_at)) FROM estimate e JOIN forecast f ON f.id = e.forecast_id"
    " WHERE f.status = 'resolved' AND e.made_at < f.due AND e.made_at < f.resolved_at"
    " ORDER BY e.forecast_id, e.forecaster, e.made_at, e.id"
).fetchall()
fid, who, p, t, y, close = (np.array(c) for c in zip(*rows))
first = np.r_[True, (fid[1:] != fid[:-1]) | (who[1:] != who[:-1])]
last = np.r_[first[1:], True]
group = np.cumsum(first) - 1
held = np.where(last, close, np.r_[t[1:], 0.0]) - t
tab = np.bincount(group, held * (p - y) ** 2) / np.bincount(group, held)
p, y = p[last], y[last]
bins = np.minimum((p * 10 + 1e-9).astype(np.int64), 9)
n = np.bincount(bins, minlength=10)
mean_p = np.bincount(bins, weights=p, minlength=10) / np.maximum(n, 1)
freq = np.bincount(bins, weights=y, minlength=10) / np.maximum(n, 1)
print(json.dumps({"brier": float(np.mean((p - y) ** 2)), "tab": float(tab.mean()),
                  "count": int(p.size), "bins": n.tolist(), "mean": mean_p.tolist(),
                  "observed": freq.tolist()}))
"""


def _stamps(seconds: np.ndarray) -> list[str]:
    """Epoch seconds as SQLAlchemy's SQLite text form 'YYYY-MM-DD HH:MM:SS.ffffff'."""
    text = np.datetime_as_string(seconds.astype("datetime64[s]").astype("datetime64[us]"))
    return np.char.replace(text, "T", " ").tolist()


def build(path: Path, n: int, k: int, seed: int = 7) -> None:
    """A migrated SQLite file with ``n`` resolved forecasts of ``k`` estimates each."""
    engine = make_engine(f"sqlite:///{path}")
    upgrade_schema(engine)
    engine.dispose()
    rng = np.random.default_rng(seed)
    start = np.datetime64("2020-01-01T00:00:00", "s").astype(np.int64)
    created = start + rng.integers(0, 5 * 365 * 86400, n)
    horizon = rng.integers(86400, 730 * 86400, n)
    due = created + horizon
    early = created + (horizon * rng.random(n)).astype(np.int64) + 1
    resolved = np.where(rng.random(n) < 0.85, due + rng.integers(0, 30 * 86400, n), early)
    author = rng.integers(0, len(FORECASTERS), n)
    spread = np.sort(rng.random((n, k)), axis=1)
    spread[:, 0] = 0.0  # the first estimate at registration
    made = created[:, None] + (spread * horizon[:, None] * 1.1).astype(np.int64)
    other = rng.integers(0, len(FORECASTERS), (n, k))
    who = np.where(rng.random((n, k)) < 0.7, author[:, None], other)
    p = rng.integers(1, 100, (n, k)) / 100.0
    outcome = (rng.random(n) < p[:, -1]).astype(np.int64)
    names = np.array(FORECASTERS)
    ids = np.arange(1, n + 1)
    tagged = ids[rng.random(n) < 0.5]
    conn = sqlite3.connect(path)
    with conn:
        conn.executemany(
            "INSERT INTO forecast (id, title, criteria, due, created_at, author, status, outcome,"
            " resolved_at, resolved_by) VALUES (?, 'Benchmark question', 'Resolves YES if it"
            " happens.', ?, ?, ?, 'resolved', ?, ?, 'bench')",
            zip(
                ids.tolist(),
                _stamps(due),
                _stamps(created),
                names[author].tolist(),
                outcome.tolist(),
                _stamps(resolved),
                strict=True,
            ),
        )
        conn.executemany(
            "INSERT INTO estimate (id, forecast_id, forecaster, probability, made_at)"
            " VALUES (?, ?, ?, ?, ?)",
            zip(
                range(1, n * k + 1),
                np.repeat(ids, k).tolist(),
                names[who.ravel()].tolist(),
                p.ravel().tolist(),
                _stamps(made.ravel()),
                strict=True,
            ),
        )
        conn.executemany(
            "INSERT INTO tag (forecast_id, name) VALUES (?, ?)",
            zip(
                tagged.tolist(),
                np.array(TAGS)[rng.integers(0, len(TAGS), tagged.size)].tolist(),
                strict=True,
            ),
        )
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def run(cmd: list[str], env: dict[str, str]) -> tuple[float, float, float, str]:
    """Wall seconds, peak RSS (MB), CPU seconds (user + system) and output of one subprocess."""
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {err}")
        out.seek(0)
        text = out.read().decode()
    return wall, usage.ru_maxrss / 1024.0, usage.ru_utime + usage.ru_stime, text


def prepare(
    script: str, estimates: int, build: Callable[[Path, int, int], None], reference: str
) -> tuple[argparse.Namespace, Path, dict[str, list[str]], dict[str, str]] | None:
    """A report benchmark's (``script``'s) options (``--estimates`` per forecast by default), its SQLite file
    (``--db``, or built by ``script --build-only`` in a process of its own when absent; None once
    ``--build-only`` has built it), the commands it times (the ``reference`` script and
    ``tracker report --format json``) and their environment."""
    parser = argparse.ArgumentParser(description=f"{Path(script).stem}: see its docstring")
    parser.add_argument("--forecasts", type=int, default=100_000)
    parser.add_argument("--estimates", type=int, default=estimates, help="estimates per forecast")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--db", type=Path, help="SQLite file to build (or reuse, if it exists)")
    parser.add_argument("--build-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    compile_project()
    if args.build_only:
        build(args.db, args.forecasts, args.estimates)
        return None
    folder = Path(tempfile.mkdtemp(prefix="report-bench-"))
    path = args.db or folder / "ledger.db"
    if not path.exists():
        t = time.perf_counter()
        subprocess.run(
            [sys.executable, script, "--build-only", "--db", str(path)]
            + ["--forecasts", str(args.forecasts), "--estimates", str(args.estimates)],
            check=True,
        )
        print(f"built {args.forecasts:,} forecasts in {time.perf_counter() - t:.1f} s: {path}")
    env = dict(os.environ, TRACKER_DB=f"sqlite:///{path}", NO_COLOR="1")
    env["TRACKER_CONFIG"] = str(folder / "config.toml")
    commands = {
        "reference": [sys.executable, "-c", reference, str(path)],
        "json": [sys.executable, "-m", "tracker", "report", "--format", "json"],
    }
    return args, path, commands, env


def measure(
    commands: dict[str, list[str]], env: dict[str, str], runs: int, heading: str
) -> tuple[dict[str, str], dict[str, float]]:
    """Each command once (warming the page cache; its output is returned), then ``runs`` times,
    interleaved so load changes hit all alike; prints ``heading`` and each command's median wall
    and CPU time and peak RSS, and returns the outputs and the median wall times."""
    outputs = {name: run(cmd, env)[3] for name, cmd in commands.items()}
    results: dict[str, list[tuple[float, float, float, str]]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, cmd in commands.items():
            results[name].append(run(cmd, env))
    wall = {name: statistics.median(r[0] for r in rs) for name, rs in results.items()}
    cpu = {name: statistics.median(r[2] for r in rs) for name, rs in results.items()}
    print(f"{heading}; medians of {runs} runs, load average {os.getloadavg()[0]:.2f}:")
    for name in commands:
        times = ", ".join(f"{r[0]:.2f}" for r in results[name])
        rss = max(r[1] for r in results[name])
        print(
            f"  {name:9} {wall[name]:6.2f} s  (runs {times})  CPU {cpu[name]:.2f} s  peak RSS {rss:.0f} MB"
        )
    # On a shared machine CPU time says more than wall time; printed beside it, not a target.
    print(f"  CPU-time ratio json/reference: {cpu['json'] / cpu['reference']:.2f}x")
    return outputs, wall


def main() -> int:
    prepared = prepare(__file__, 3, build, REFERENCE)
    if prepared is None:
        return 0
    args, path, commands, env = prepared
    [(rows,)] = sqlite3.connect(path).execute("SELECT COUNT(*) FROM estimate").fetchall()
    heading = f"{args.forecasts:,} resolved forecasts, {rows:,} estimates"
    outputs, wall = measure(commands, env, args.runs, heading)
    ratio = wall["json"] / wall["reference"]
    reference = json.loads(outputs["reference"])
    overall = json.loads(outputs["json"])["overall"]
    target_s = next((s for most, s in TARGETS_S if args.forecasts <= most), None)
    checks = [
        (
            f"same Brier and time-averaged Brier as the reference ({overall['brier']:.6f},"
            f" {overall['time_averaged_brier']:.6f})",
            overall["count"] == reference["count"]
            and abs(overall["brier"] - reference["brier"]) < 1e-9
            and abs(overall["time_averaged_brier"] - reference["tab"]) < 1e-9,
        )
    ]
    if target_s is not None:
        checks.append((f"json {wall['json']:.2f} s, under {target_s} s", wall["json"] < target_s))
    if args.forecasts <= RATIO_UP_TO:
        label = f"json within {TARGET_RATIO}x of the reference ({ratio:.2f}x)"
        checks.append((label, ratio <= TARGET_RATIO))
    else:
        print(f"  json/reference: {ratio:.2f}x (a target up to {RATIO_UP_TO:,} forecasts)")
    return verdict(checks)


def verdict(checks: list[tuple[str, bool]]) -> int:
    """Print each check PASS or FAIL; the exit status (1 if any failed)."""
    for label, ok in checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {label}")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
