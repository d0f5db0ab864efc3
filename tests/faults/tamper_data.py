"""A database with a row in every table, made through the library as real use makes it: forecasts
with estimates, an amendment, resolver checks (added and imported), a sweep against a loopback
server (evidence, proposals), a confirmed, a disputed and a pending proposal, and an outbox with
sent and queued mail. Shared by the tampering tests."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlalchemy.engine import Engine

from predictions import store
from predictions.bulk import import_records
from predictions.checks import add_checks
from predictions.clock import now as clock_now
from predictions.db import write_session
from predictions.formats import open_records
from predictions.formats.records import ReadContext
from reports.mail import Rendered
from reports.outbox import EmlTransport, deliver, queue
from resolvers import validate_check
from resolvers.http import HttpSettings
from resolvers.review import confirm, dispute
from resolvers.sweep import SweepSettings, sweep
from tests.resolvers.loopback import Loopback

__all__ = ["populate"]

SETTINGS = SweepSettings(
    http=HttpSettings(timeout=5, allowed_networks=("127.0.0.0/8",), retries=0), concurrency=2
)
PAGE = "<html><body><p>国务院发布人工智能失控风险国家标准</p></body></html>"
IMPORT = """
[[forecast]]
ref = "example:imported"
title = "Imported with a check"
criteria = "Resolves YES if the page says so."
due = 2027-12-31
probability = "40%"
tags = ["import"]

[[forecast.check]]
kind = "page"
url = "{url}/down"
contains = ["never"]
"""


def populate(engine: Engine, web: Loopback, folder: Path) -> None:
    """Fill every table; ids are fixed (forecasts 1-5, checks 1-5, evidence 1-5, proposals 1-3,
    messages 1-3)."""
    web.route("/news", PAGE)
    web.route("/down", "down", status=500)
    page = {"kind": "page", "url": web.url + "/news", "contains": "失控"}
    with write_session(engine) as s:
        for i in range(4):
            f = store.add_forecast(
                s,
                title=f"Forecast {i + 1}",
                criteria="Resolves YES if a national standard is published.",
                due=datetime(2027, 6, 30),
                author="alice",
                probability=0.3 + i / 10,
                tags=["china", "ai"],
            )
            add_checks(s, f, [validate_check(dict(page))])
        store.add_estimate(s, 1, "bob", 0.45)
        store.amend(s, 2, "title", "Forecast two", by="alice")
    source = folder / "import.toml"
    source.write_text(IMPORT.format(url=web.url), encoding="utf-8")
    ctx = ReadContext(now=clock_now(), author="alice")
    with open_records(source, None, ctx) as (meta, records), write_session(engine) as s:
        import_records(s, records, source=source.name, meta=meta, validate_check=validate_check)
    sweep(engine, settings=SETTINGS)
    with write_session(engine) as s:
        confirm(s, 1, by="alice", note="checked")
        dispute(s, 2, by="alice", note="not the national one")
    for n in range(3):
        with write_session(engine) as s:
            queue(
                s,
                dedupe_key=f"daily:alice:2026-03-0{n + 1}",
                kind="daily",
                recipients=["alice@example.org"],
                sender="tracker@example.org",
                message=Rendered(subject=f"report {n}", text=f"text {n}", html=f"<p>{n}</p>"),
            )
        if n < 2:
            deliver(engine, EmlTransport(folder / "mail"), sender="tracker@example.org", worker="w")
