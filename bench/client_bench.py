"""Benchmark: wall time of the everyday commands through ``tracker serve`` on a ledger of 100,000
forecasts (the CLI as the service's client).

Target (issue 15): `tracker add` through the API under 300 ms end to end (the process starting,
the request, the server's write, the answer printed). Builds the ledger as
bench/cli_latency_bench.py does (straight into a migrated SQLite file), starts `tracker serve` on
it in its own process, adds a member with `tracker user add` and signs in with `tracker login`
(the token kept as a person's CLI keeps it), then runs each command as a subprocess several
times, interleaved, and prints the medians; beside them the same `tracker add` on the database
directly (`--db`), the import of httpx alone, and `python -c pass` (the floor).

    python bench/client_bench.py [--forecasts 100000] [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cli_latency_bench import build, run_commands
from precompile import compile_project


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(url: str, server: subprocess.Popen[bytes], seconds: float = 60) -> None:
    """Poll ``url`` until the server answers."""
    import httpx

    deadline = time.monotonic() + seconds
    while True:
        if server.poll() is not None:
            raise SystemExit(f"tracker serve exited with {server.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--forecasts", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    compile_project()
    folder = Path(tempfile.mkdtemp(prefix="tracker-client-bench-"))
    server = None
    try:
        db = folder / "bench.db"
        t0 = time.perf_counter()
        build(db, args.forecasts)
        print(f"built {args.forecasts:,} forecasts in {time.perf_counter() - t0:.1f} s")
        tracker = shutil.which("tracker", path=str(Path(sys.executable).parent)) or "tracker"
        server_env = dict(
            os.environ, TRACKER_DB=f"sqlite:///{db}", TRACKER_CONFIG=str(folder / "s.toml")
        )
        made = subprocess.run(
            [tracker, "user", "add", "bench", "--role", "member", "--json"],
            env=server_env, check=True, capture_output=True, text=True,
        )  # fmt: skip
        password = json.loads(made.stdout)["password"]
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [tracker, "serve", "--port", str(port)], env=server_env, stdout=subprocess.DEVNULL
        )
        wait_for(url + "/login", server)
        env = {k: v for k, v in os.environ.items() if k not in ("TRACKER_DB", "TRACKER_TOKEN")}
        env["TRACKER_CONFIG"] = str(folder / "client" / "config.toml")
        subprocess.run(
            [tracker, "login", url, "--name", "bench", "--password-stdin"],
            env=env, input=password + "\n", check=True, capture_output=True, text=True,
        )  # fmt: skip
        middle = str(args.forecasts // 2)
        first = str(args.forecasts + 1)  # the forecast the first add registers
        commands = {
            "tracker add (API)": lambda i: [tracker, "add", "Benchmark add", "-p", "0.6",
                                            "--due", "+90d", "--criteria", "c"],
            "tracker update (API)": lambda i: [tracker, "update", middle, "-p", f"0.{10 + i}"],
            "tracker add --numeric (API)": lambda i: [
                tracker, "add", "Benchmark numeric", "--numeric", "0..34", "--quantiles",
                "10%=4,50%=8,90%=15", "--due", "+90d", "--criteria", "c"],
            "tracker list (API)": lambda i: [tracker, "list"],
            "tracker show (API)": lambda i: [tracker, "show", middle],
            "tracker resolve (API)": lambda i: [tracker, "resolve", first, "yes"],
            "tracker reopen (API)": lambda i: [tracker, "reopen", first, "--note", "bench"],
            "tracker --db add (local)": lambda i: [tracker, "--db", f"sqlite:///{db}", "add",
                                                   "Benchmark local add", "-p", "0.6", "--due",
                                                   "+90d", "--criteria", "c", "--by", "bench"],
            "python -c import httpx": lambda i: [sys.executable, "-c", "import httpx"],
            "python -c pass (floor)": lambda i: [sys.executable, "-c", "pass"],
        }  # fmt: skip
        subprocess.run(commands["tracker add (API)"](0), env=env, check=True, capture_output=True)
        run_commands(commands, args.runs, env)
        server.terminate()
        server.wait(10)
        server = None
        check = subprocess.run([tracker, "verify"], env=server_env, capture_output=True, text=True)
        print("verify after the runs:", check.stdout.strip() or check.stderr.strip())
    finally:
        if server is not None:
            server.terminate()
            server.wait(10)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
