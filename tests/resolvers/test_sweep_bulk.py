"""The sweep's bulk statements write exactly what SQLAlchemy's own executemany writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select, text, update
from sqlalchemy.engine import Engine

from predictions.db import write_session
from predictions.models import Check, Evidence, Forecast
from predictions.receipts import EVIDENCE_COLUMNS
from resolvers.sweep import _CHECK, _EVIDENCE, _bulk


def _evidence(check_id: int, n: int) -> dict[str, object]:
    return {
        "check_id": check_id,
        "forecast_id": 1,
        "checked_at": datetime(2025, 3, 4, 5, 6, 7, n),
        "kind": "page",
        "resolver_version": "1",
        "url": "https://example.org/新闻?q='x'",
        "http_status": 200 if n else None,
        "sha256": "ab" * 32,
        "bytes": 2**40 + n,
        "unchanged": bool(n % 2),
        "excerpt": '人工智能失控风险 "quoted" \\ ;',
        "value": None,
        "verdict": "yes",
        "error": None,
    }


def test_sweep_bulk_writes_what_core_writes(engine: Engine) -> None:
    at = datetime(2025, 1, 1)
    with write_session(engine) as session:
        session.execute(
            insert(Forecast),
            [{"id": 1, "title": "t", "criteria": "c", "due": at, "created_at": at,
              "author": "a", "status": "open"}],
        )  # fmt: skip
        session.execute(
            insert(Check),
            [
                {"id": i, "forecast_id": 1, "kind": "page", "params": {"url": "u"},
                 "mode": "propose", "enabled": True, "created_at": at, "next_check_at": at,
                 "failures": 0}
                for i in (1, 2)
            ],
        )  # fmt: skip
        conn = session.connection()
        conn.execute(insert(_EVIDENCE), [_evidence(1, 0), _evidence(1, 1)])
        _bulk(conn, _EVIDENCE, EVIDENCE_COLUMNS, [_evidence(2, 0), _evidence(2, 1)])
        aware = datetime(2025, 5, 6, 9, 0, tzinfo=UTC) + timedelta(hours=-2)
        changes = {"failures": 3, "next_check_at": aware, "etag": '"v"', "claimed_by": None}
        conn.execute(update(_CHECK).where(_CHECK.c.id == 1).values(changes))
        _bulk(conn, _CHECK, tuple(changes), [{**changes, "id": 2}], key="id")
    with engine.connect() as conn:
        columns = ", ".join(EVIDENCE_COLUMNS)
        raw = conn.exec_driver_sql(f"SELECT {columns} FROM evidence ORDER BY id").all()
        assert [r[1:] for r in raw[:2]] == [r[1:] for r in raw[2:]]
        checks = conn.execute(text("SELECT * FROM check_spec ORDER BY id")).all()
        assert checks[0][1:] == checks[1][1:]
        assert conn.scalar(select(Evidence.checked_at).where(Evidence.check_id == 2)) == datetime(
            2025, 3, 4, 5, 6, 7
        )
