"""The daemon behind ``tracker run``: APScheduler is the clock, the database decides what is due.

Two jobs with fixed ids on an in-memory job store: ``notify`` every ``notify.interval_minutes``
(queue the reports due, deliver the outbox) and ``sweep`` every ``resolvers.interval_minutes``.
Each runs once at start-up, then on its interval; a missed tick is coalesced into one run and
never dropped (``misfire_grace_time=None``), and since the work is decided by the database, a
restart loses nothing. Any number of daemons may share a database: a report is queued once
(the outbox's UNIQUE dedupe key), and messages and checks are leased
(:mod:`predictions.leases`), so none is sent or run twice. SIGTERM and SIGINT let the job in hand
finish, then the daemon exits 0.

Every job run logs one line to stderr.

Also the translations from configuration to the notify library, which ``tracker notify`` shares:
:func:`notify_settings` and :func:`make_transport` (SMTP when ``smtp.host`` is set, else ``.eml``
files in a folder).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from predictions.errors import InputError
from predictions.leases import worker_name
from predictions.wording import plural
from tracker.cli import App

if TYPE_CHECKING:
    from reports.notify import NotifySettings
    from reports.outbox import Transport

__all__ = ["Daemon", "make_transport", "notify_settings", "outbox_dir", "run_daemon"]

NOTIFY_JOB = "notify"
SWEEP_JOB = "sweep"

log = logging.getLogger("tracker.daemon")


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def outbox_dir(app: App) -> Path:
    """Where ``.eml`` files go: ``email.outbox_dir``, else ``outbox`` in the user data dir."""
    configured = app.config.get("email.outbox_dir")
    if configured:
        return Path(configured).expanduser()
    folder = os.environ.get("TRACKER_DATA_DIR")
    if not folder:
        import platformdirs

        folder = platformdirs.user_data_dir("tracker")
    return Path(folder).expanduser() / "outbox"


def notify_settings(app: App) -> NotifySettings:
    """Recipients, each forecaster's address, sender, time zone, send time and frequency from the
    configuration (each value checked by its key's rule, :mod:`tracker.config`).

    With ``smtp.host`` set, ``email.to`` is required; ``.eml`` files may go without one.
    """
    from reports.mail import parse_addresses
    from reports.notify import NotifySettings
    from tracker.config import parse_clock

    config = app.config
    recipients = parse_addresses(config.get("email.to"), "email.to")
    if config.get("smtp.host") and not recipients:
        raise InputError(
            "email.to", None, "an address to send reports to: tracker config set email.to ADDRESS"
        )
    lease = config.get("email.lease_seconds")
    return NotifySettings(
        recipients=tuple(recipients),
        sender=config.get("email.from"),
        tz=app.tz,
        send_at=parse_clock(config.get("notify.time")),
        overdue_interval_days=config.get("notify.overdue_interval_days"),
        lease=timedelta(seconds=lease) if lease else None,
        addresses=config.addresses(),
        frequency=config.get("notify.frequency"),
        base_url=config.get("server.base_url"),
    )


def make_transport(app: App) -> Transport:
    """SMTP when ``smtp.host`` is set (password from ``$TRACKER_SMTP_PASSWORD``), else .eml files."""
    from reports.outbox import EmlTransport, SmtpTransport

    host = app.config.get("smtp.host")
    if not host:
        return EmlTransport(outbox_dir(app))
    return SmtpTransport(
        host,
        app.config.get("smtp.port"),
        security=app.config.get("smtp.security"),
        username=app.config.get("smtp.username"),
        password=app.config.smtp_password,
        timeout=app.config.get("smtp.timeout"),
        cafile=app.config.get("smtp.cafile"),
    )


class Daemon:
    """The jobs of one daemon process, callable directly (tests call them with a frozen clock)."""

    def __init__(self, app: App, worker: str | None = None) -> None:
        self.app = app
        self.worker = worker or worker_name()

    def notify_job(self) -> None:
        """Queue the reports due now and deliver the outbox."""
        from reports.notify import run_notify

        started = time.monotonic()
        try:
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
            "sweep: checked %d, %s, %s, %s in %.2fs",
            report.checked,
            plural(len(report.actions), "action"),
            plural(len(report.errors), "error"),
            plural(report.lost, "lost lease"),
            time.monotonic() - started,
        )

    def close(self) -> None:
        """Release the database connections."""
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
        notify_every = notify_seconds or 60.0 * app.config.get("notify.interval_minutes")
        sweep_every = sweep_seconds or 60.0 * app.config.get("resolvers.interval_minutes")
        scheduler = BackgroundScheduler(
            jobstores={"default": MemoryJobStore()},
            executors={"default": ThreadPoolExecutor(2)},
            job_defaults={"coalesce": True, "misfire_grace_time": None, "max_instances": 1},
            timezone=UTC,
        )
        start = datetime.now(UTC)
        jobs = (
            (NOTIFY_JOB, daemon.notify_job, notify_every),
            (SWEEP_JOB, daemon.sweep_job, sweep_every),
        )
        for name, job, every in jobs:
            scheduler.add_job(
                job, "interval", seconds=every, id=name, name=name, next_run_time=start,
                replace_existing=True,
            )  # fmt: skip
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
