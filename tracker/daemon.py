"""The daemon behind ``tracker run``: APScheduler is the clock, the database decides what is due.

Two jobs with fixed ids on an in-memory job store: ``notify`` every ``notify.interval_minutes``
(queue the reports due, deliver the outbox) and ``sweep`` every ``resolvers.interval_minutes``.
Each runs once at start-up, then on its interval; a missed tick is coalesced into one run and
never dropped (``misfire_grace_time=None``), and since the work is decided by the database, a
restart loses nothing. Only the daemon holding the notify lock of the database runs the notify
job (:class:`reports.notify.NotifyLock`); sweeps may run in any number of daemons, as the runner
leases each check. SIGTERM and SIGINT let the job in hand finish, then the daemon exits 0.

Every job run logs one line to stderr.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from datetime import UTC, datetime
from types import FrameType

from tracker.cli import App

__all__ = ["Daemon", "run_daemon"]

NOTIFY_JOB = "notify"
SWEEP_JOB = "sweep"

log = logging.getLogger("tracker.daemon")


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Daemon:
    """The jobs of one daemon process, callable directly (tests call them with a frozen clock)."""

    def __init__(self, app: App, worker: str | None = None) -> None:
        from reports.notify import NotifyLock
        from tracker.mail_commands import worker_id

        self.app = app
        self.worker = worker or worker_id()
        self.lock = NotifyLock(app.engine)

    def notify_job(self) -> None:
        """Queue the reports due now and deliver the outbox, if this daemon holds the lock."""
        from reports.notify import run_notify
        from tracker.mail_commands import make_transport, notify_settings

        started = time.monotonic()
        try:
            if not self.lock.acquire():
                log.info("notify: skipped, another daemon holds the notify lock of this database")
                return
            result = run_notify(
                self.app.engine,
                notify_settings(self.app),
                make_transport(self.app),
                worker=self.worker,
            )
        except Exception as exc:  # a job never takes the daemon down; the next tick retries
            log.error("notify: failed: %s", _one_line(exc))
            return
        d = result.delivery
        problems = "; ".join(f"#{k}: {v}" for k, v in sorted(d.errors.items()))
        log.info(
            "notify: queued %d, sent %d, retrying %d, failed %d in %.2fs%s",
            len(result.queued),
            len(d.sent),
            len(d.retrying),
            len(d.failed),
            time.monotonic() - started,
            f" ({problems})" if problems else "",
        )

    def sweep_job(self) -> None:
        """Run the resolver checks that are due (leased, so several daemons may sweep at once)."""
        from resolvers.sweep import sweep
        from tracker.check_commands import sweep_settings

        started = time.monotonic()
        try:
            report = sweep(self.app.engine, settings=sweep_settings(self.app), worker=self.worker)
        except Exception as exc:  # a job never takes the daemon down; the next tick retries
            log.error("sweep: failed: %s", _one_line(exc))
            return
        log.info(
            "sweep: checked %d, %d action(s), %d error(s), %d lost lease(s) in %.2fs",
            report.checked,
            len(report.actions),
            len(report.errors),
            report.lost,
            time.monotonic() - started,
        )

    def close(self) -> None:
        """Release the notify lock and the database connections."""
        self.lock.release()
        self.app.engine.dispose()


def run_daemon(
    app: App, *, notify_seconds: float | None = None, sweep_seconds: float | None = None
) -> int:
    """Run until SIGTERM/SIGINT; returns the exit code (0 after a clean stop)."""
    stop = threading.Event()

    def _stop(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s; finishing the job in hand", signal.Signals(signum).name)
        stop.set()

    # First of all, so a signal during start-up also ends in a clean stop.
    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.jobstores.memory import MemoryJobStore
        from apscheduler.schedulers.background import BackgroundScheduler

        logging.basicConfig(
            level=logging.INFO,
            format="%(asctime)s %(levelname)s %(message)s",
            stream=sys.stderr,
            force=True,
        )
        logging.getLogger("apscheduler").setLevel(logging.WARNING)

        daemon = Daemon(app)
        notify_every = notify_seconds or 60.0 * max(
            1, int(app.config.get("notify.interval_minutes"))
        )
        sweep_every = sweep_seconds or 60.0 * max(
            1, int(app.config.get("resolvers.interval_minutes"))
        )
        scheduler = BackgroundScheduler(
            jobstores={"default": MemoryJobStore()},
            executors={"default": ThreadPoolExecutor(2)},
            job_defaults={"coalesce": True, "misfire_grace_time": None, "max_instances": 1},
            timezone=UTC,
        )
        start = datetime.now(UTC)
        scheduler.add_job(
            daemon.notify_job,
            "interval",
            seconds=notify_every,
            id=NOTIFY_JOB,
            name=NOTIFY_JOB,
            next_run_time=start,
            replace_existing=True,
        )
        scheduler.add_job(
            daemon.sweep_job,
            "interval",
            seconds=sweep_every,
            id=SWEEP_JOB,
            name=SWEEP_JOB,
            next_run_time=start,
            replace_existing=True,
        )
        log.info(
            "started: notify every %gs, sweep every %gs (worker %s, database %s)",
            notify_every,
            sweep_every,
            daemon.worker,
            app.engine.url.render_as_string(hide_password=True),
        )
        scheduler.start()
        try:
            while not stop.wait(0.5):
                pass
        finally:
            scheduler.shutdown(wait=True)
            daemon.close()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    log.info("stopped")
    return 0
