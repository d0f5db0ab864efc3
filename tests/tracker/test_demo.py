"""`tracker demo` runs the whole loop offline on a fresh folder, twice, well within 30 seconds."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _demo(folder: Path, cwd: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    env = {k: v for k, v in os.environ.items() if k not in ("TRACKER_DB",)}
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "tracker", "demo", "--dir", str(folder)],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    return result, time.perf_counter() - start


def test_demo_runs_the_whole_loop_offline_and_again(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    result, seconds = _demo(folder, ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert seconds < 30, f"demo took {seconds:.1f} s"
    out = result.stdout
    for command in ("$ tracker import", "$ tracker sweep", "$ tracker notify", "$ tracker report"):
        assert command in out
    assert "Traceback" not in out + result.stderr
    assert (folder / "demo.db").is_file()
    assert (folder / "report.html").stat().st_size > 10_000
    emails = list((folder / "outbox").rglob("*.eml"))
    assert emails, "the due-date report was not written as .eml"
    assert "Next, try" in out and "tracker run" in out and "tracker serve" in out
    verify = subprocess.run(
        [sys.executable, "-m", "tracker", "--db", f"sqlite:///{folder / 'demo.db'}", "verify"],
        capture_output=True, text=True, env={**os.environ, "TRACKER_CONFIG": str(folder / "config.toml")},
    )  # fmt: skip
    assert verify.returncode == 0, verify.stderr

    again, _ = _demo(folder, ROOT)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert "starts afresh" in again.stdout
