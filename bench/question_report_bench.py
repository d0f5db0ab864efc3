"""Benchmark: `tracker report --format json` on a SQLite ledger of resolved numeric forecasts, each
estimate a 201-point CDF.

Targets (issue #14), medians of ``--runs`` interleaved runs, each command a fresh subprocess:
100,000 resolved numeric forecasts under 2 s, and within 1.5x of a bare reference on the same
rows: a Python process that reads the estimates the scoring rule may score with ``sqlite3`` (the
range and bounds of each question by SQLite's ``json_extract``), picks each forecaster's last one
per question with numpy, decodes the picked CDFs with ``np.frombuffer`` and computes the mean
CRPS (exact, per bin) and the mean log score (minus the log density at the outcome). The bench
checks that the report's numeric CRPS and log score equal the reference's.

The ledger: per forecast ``--estimates`` estimates (by the author or another of five
forecasters), ranges of their own (a fifth of them logarithmic, a third with an open bound),
CDFs that are logistic in the scaled coordinate mixed with a little uniform mass (so each bin
holds the store's minimum), rounded as the store rounds; outcomes drawn near the forecasts,
some beyond an open bound; a quarter of the questions carry a tag. It is built once with bare
``sqlite3`` into a file migrated by ``predictions.db.upgrade_schema``, and reused when ``--db``
names an existing file.

    python bench/question_report_bench.py [--forecasts 100000] [--estimates 1] [--runs 5] [--db PATH]
"""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

import numpy as np
from report_bench import FORECASTERS, TAGS, _stamps, measure, prepare, verdict

from predictions.db import make_engine, upgrade_schema
from predictions.questions import DIGITS, GRID, Question

TARGET_S = 2.0
TARGET_RATIO = 1.5

REFERENCE = r"""
import json, sqlite3, sys
import numpy as np
conn = sqlite3.connect(sys.argv[1])
rows = conn.execute(
    "SELECT e.forecast_id, e.forecaster, e.id, f.resolution_value,"
    " json_extract(f.question, '$.lower'), json_extract(f.question, '$.upper'),"
    " json_extract(f.question, '$.log') FROM estimate e JOIN forecast f ON f.id = e.forecast_id"
    " WHERE f.status = 'resolved' AND f.kind = 'numeric' AND f.resolution_value IS NOT NULL"
    " AND e.made_at < f.due AND e.made_at < f.resolved_at"
    " ORDER BY e.forecast_id, e.forecaster, e.made_at, e.id"
).fetchall()
fid, who, eid, x, lo, hi, log = (np.array(c) for c in zip(*rows))
last = np.r_[(fid[1:] != fid[:-1]) | (who[1:] != who[:-1]), True]
eid, x, lo, hi, log = eid[last], x[last], lo[last], hi[last], log[last].astype(bool)
blobs = dict(conn.execute(
    "SELECT id, distribution FROM estimate WHERE id IN (%s)" % ",".join(map(str, eid.tolist()))
).fetchall())
v = np.frombuffer(b"".join(blobs[i] for i in eid.tolist()), "<f8").reshape(eid.size, -1)
with np.errstate(divide="ignore", invalid="ignore"):
    u = np.where(log, np.log(x / lo) / np.log(hi / lo), (x - lo) / (hi - lo))
n, bins = v.shape[0], v.shape[1] - 1
h, y, r = 1.0 / bins, np.clip(u, 0, 1), np.arange(n)
j = np.minimum((y * bins).astype(int), bins - 1)
t = y * bins - j
fy = v[r, j] + t * (v[r, j + 1] - v[r, j])
csum = np.cumsum(v, axis=1)
below = h * (csum[r, j] - v[:, 0] / 2 - v[r, j] / 2) + h * t * (v[r, j] + fy) / 2
total = h * (csum[:, -1] - v[:, 0] / 2 - v[:, -1] / 2)
a, c = v[:, :-1], v[:, 1:]
squares = h / 3 * (np.einsum("ij,ij->i", a, a) + np.einsum("ij,ij->i", a, c)
                   + np.einsum("ij,ij->i", c, c))
crps = squares - 2 * (total - below) + (1 - y)
b = np.where(u < 0, 0, np.where(u > 1, bins + 1, np.where(u == 1, bins,
             np.maximum((y * bins + 1 - 1e-10).astype(int), 1))))
upper = np.where(b > bins, 1.0, v[r, np.minimum(b, bins)])
lower = np.where(b == 0, 0.0, v[r, np.maximum(b - 1, 0)])
log_score = -np.log(bins * (upper - lower))
print(json.dumps({"count": n, "crps": float(crps.mean()), "log": float(log_score.mean())}))
"""


def _cdfs(rng: np.random.Generator, n: int, tails: np.ndarray) -> np.ndarray:
    """``n`` CDFs on the grid: logistic in ``u`` with a random centre and spread, 2% uniform,
    the given tail masses (lower, upper), rounded as the store rounds."""
    u = np.linspace(0.0, 1.0, GRID)
    centre = rng.uniform(0.1, 0.9, (n, 1))
    spread = rng.uniform(0.03, 0.3, (n, 1))
    logistic = 1.0 / (1.0 + np.exp(-(u - centre) / spread))
    shape = (logistic - logistic[:, :1]) / (logistic[:, -1:] - logistic[:, :1])
    inside = 1.0 - tails.sum(axis=1, keepdims=True)
    cdf = tails[:, :1] + inside * (0.98 * shape + 0.02 * u)
    return np.round(cdf, DIGITS) + 0.0


def build(path: Path, n: int, k: int, seed: int = 14) -> None:
    """A migrated SQLite file with ``n`` resolved numeric forecasts of ``k`` estimates each."""
    engine = make_engine(f"sqlite:///{path}")
    upgrade_schema(engine)
    engine.dispose()
    rng = np.random.default_rng(seed)
    start = np.datetime64("2020-01-01T00:00:00", "s").astype(np.int64)
    created = start + rng.integers(0, 5 * 365 * 86400, n)
    horizon = rng.integers(86400, 730 * 86400, n)
    due = created + horizon
    resolved = due + rng.integers(0, 30 * 86400, n)
    log = rng.random(n) < 0.2
    lower = np.where(log, rng.uniform(1, 100, n), rng.uniform(-100, 100, n)).round(2)
    upper = np.where(log, lower * rng.uniform(10, 1000, n), lower + rng.uniform(1, 500, n))
    upper = upper.round(2)
    opened = rng.random((n, 2)) < 0.33
    questions = [
        json.dumps(Question("numeric", *q).spec())
        for q in zip(
            lower.tolist(),
            upper.tolist(),
            opened[:, 0].tolist(),
            opened[:, 1].tolist(),
            log.tolist(),
            strict=True,
        )
    ]
    # Outcomes near a forecast's centre, some beyond an open bound.
    u = np.clip(
        rng.normal(0.5, 0.3, n), np.where(opened[:, 0], -0.2, 0), np.where(opened[:, 1], 1.2, 1)
    )
    with np.errstate(invalid="ignore", divide="ignore"):  # (the log branch on linear rows)
        value = np.where(log, lower * (upper / lower) ** u, lower + u * (upper - lower))
    author = rng.integers(0, len(FORECASTERS), n)
    spread = np.sort(rng.random((n, k)), axis=1)
    spread[:, 0] = 0.0  # the first estimate at registration
    made = created[:, None] + (spread * horizon[:, None] * 0.9).astype(np.int64)
    other = rng.integers(0, len(FORECASTERS), (n, k))
    who = np.where(rng.random((n, k)) < 0.7, author[:, None], other)
    tails = rng.uniform(0.01, 0.08, (n * k, 2)) * np.repeat(opened, k, axis=0)
    cdf = _cdfs(rng, n * k, tails).astype("<f8")
    names = np.array(FORECASTERS)
    ids = np.arange(1, n + 1)
    tagged = ids[rng.random(n) < 0.25]
    conn = sqlite3.connect(path)
    with conn:
        conn.executemany(
            "INSERT INTO forecast (id, title, criteria, due, created_at, author, status, kind,"
            " question, resolution_value, resolved_at, resolved_by) VALUES (?, 'Benchmark"
            " question', 'Resolves to the count.', ?, ?, ?, 'resolved', 'numeric', ?, ?, ?,"
            " 'bench')",
            zip(
                ids.tolist(),
                _stamps(due),
                _stamps(created),
                names[author].tolist(),
                questions,
                value.tolist(),
                _stamps(resolved),
                strict=True,
            ),
        )
        conn.executemany(
            "INSERT INTO estimate (id, forecast_id, forecaster, made_at, distribution)"
            " VALUES (?, ?, ?, ?, ?)",
            zip(
                range(1, n * k + 1),
                np.repeat(ids, k).tolist(),
                names[who.ravel()].tolist(),
                _stamps(made.ravel()),
                (row.tobytes() for row in cdf),
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


def main() -> int:
    prepared = prepare(__file__, 1, build, REFERENCE)
    if prepared is None:
        return 0
    args, path, commands, env = prepared
    [(rows,)] = sqlite3.connect(path).execute("SELECT COUNT(*) FROM estimate").fetchall()
    heading = f"{args.forecasts:,} resolved numeric forecasts, {rows:,} estimates of {GRID} points"
    outputs, wall = measure(commands, env, args.runs, heading)
    ratio = wall["json"] / wall["reference"]
    reference = json.loads(outputs["reference"])
    numeric = json.loads(outputs["json"])["types"]["numeric"]["overall"]
    checks = [
        (
            f"same CRPS and log score as the reference ({numeric['crps']:.6f},"
            f" {numeric['log']:.6f})",
            numeric["count"] == reference["count"]
            and abs(numeric["crps"] - reference["crps"]) < 1e-9
            and abs(numeric["log"] - reference["log"]) < 1e-9,
        ),
        (f"json {wall['json']:.2f} s, under {TARGET_S} s", wall["json"] < TARGET_S),
        (f"json within {TARGET_RATIO}x of the reference ({ratio:.2f}x)", ratio <= TARGET_RATIO),
    ]
    return verdict(checks)


if __name__ == "__main__":
    sys.exit(main())
