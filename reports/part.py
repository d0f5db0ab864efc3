"""A part process of a calibration report: reads and groups the upper half of the questions of a
big SQLite file in parallel with the report's own process (see ``reports.build``).

It takes a JSON job as its one argument (and the rest of it on stdin, sent once the report knows
it) and writes an .npz file on stdout, then closes it; when it declines (the database moved on, or
values it cannot read) it writes nothing and exits with status 3, so that the report reads that
part itself.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys

from reports.build import PART_DECLINED, read_part


def main() -> int:
    job = json.loads(sys.argv[1])
    # The report sends the rest when it knows it (while this process was starting).
    rest = sys.stdin.buffer.read()
    if not rest:
        return PART_DECLINED
    job.update(json.loads(rest))
    conn = sqlite3.connect(job["path"], isolation_level=None)
    try:
        out = read_part(conn, job)
    finally:
        conn.close()
    if out is None:
        return PART_DECLINED
    sys.stdout.buffer.write(out)
    sys.stdout.buffer.flush()
    # Close the output now: the report reads up to its end and goes on while this interpreter
    # tears down.
    os.close(sys.stdout.fileno())
    sys.stdout = None  # nothing left to flush at exit
    return 0


if __name__ == "__main__":
    sys.exit(main())
