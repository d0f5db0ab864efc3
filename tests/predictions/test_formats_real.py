"""Importers on real data: PredictionBook and ForecastBench files, and the project's examples."""

from __future__ import annotations

import io
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from predictions import ledger, records, store
from predictions.bulk import ImportSummary, import_records
from predictions.db import read_session, write_session
from predictions.errors import ImportProblems
from predictions.formats import ReadContext, export, open_records
from resolvers import validate_check

NOW = datetime(2026, 11, 23, 9, 0, 0)
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _import(engine: Engine, path: Path, **kwargs: Any) -> ImportSummary:
    ctx = ReadContext(now=NOW, author="alice")
    resolutions = kwargs.pop("resolutions", None)
    with (
        open_records(path, kwargs.pop("fmt", None), ctx, resolutions=resolutions) as (
            meta,
            records,
        ),
        write_session(engine) as session,
    ):
        return import_records(
            session, records, source=path.name, meta=meta, validate_check=validate_check, **kwargs
        )


def _verified(engine: Engine) -> ledger.VerifyReport:
    with read_session(engine) as session:
        report = ledger.verify(session)
    assert report.ok, report.problem
    return report


def _by_ref(engine: Engine, ref: str) -> dict[str, Any]:
    with read_session(engine) as s:
        fid = s.execute(text("SELECT id FROM forecast WHERE ref = :r"), {"r": ref}).scalar_one()
        return records.forecast_record(store.get_forecast(s, fid), full=True)


def test_predictionbook_sample_imports_every_question_and_credence(
    engine: Engine, shared_data: Path
) -> None:
    path = shared_data / "predictionbook-sample.json"
    raw = json.loads(path.read_text(encoding="utf-8"))
    credences = sum(1 for q in raw for r in q["responses"] if "credence" in r["actions"])

    summary = _import(engine, path)

    assert summary.format == "predictionbook"
    assert (summary.forecasts, summary.resolved) == (len(raw), len(raw))
    assert summary.estimates == credences
    report = _verified(engine)
    assert report.entries == len(raw) * 2 + credences
    first = _by_ref(engine, "predictionbook:177328")
    assert first["title"] == "I will give D some food tonight."
    assert (first["outcome"], first["resolved_by"], first["author"]) == (
        True,
        "splorridge",
        "splorridge",
    )
    assert first["due"] == "2016-02-22T12:00:00.000000Z" == first["resolved_at"]
    assert first["estimates"] == [
        {"probability": 0.6, "at": "2016-02-21T00:09:29.000000Z", "by": "splorridge", "note": None}
    ]
    politics = _by_ref(engine, "predictionbook:194113")
    assert politics["tags"] == ["politics", "predictionbook"]
    assert [(e["by"], e["probability"]) for e in politics["estimates"]] == [
        ("Cato", 0.65),
        ("pranomostro", 0.55),
        ("pranomostro", 0.5),
        ("Cato", 0.7),
    ]
    with engine.connect() as conn:
        extremes = conn.execute(
            text("SELECT COUNT(*) FROM estimate WHERE probability IN (0.0, 1.0)")
        ).scalar()
    assert extremes == sum(
        1 for q in raw for r in q["responses"] if r["actions"].get("credence") in (0, 100)
    )


def test_predictionbook_export_round_trip_streams_a_large_json(
    engine: Engine, shared_data: Path, tmp_path: Path
) -> None:
    _import(engine, shared_data / "predictionbook-sample.json")
    out = io.StringIO()
    with read_session(engine) as s:
        export(s, "json", out)
    path = tmp_path / "pb-export.json"
    path.write_text(out.getvalue(), encoding="utf-8")
    assert path.stat().st_size > 4 * 65536  # many read chunks of the streaming reader
    with engine.begin() as conn:
        for table in ("ledger", "estimate", "tag", "forecast"):
            conn.execute(text(f"DELETE FROM {table}"))
    summary = _import(engine, path)
    assert summary.file_head_verified is True
    again = io.StringIO()
    with read_session(engine) as s:
        export(s, "json", again)
    assert again.getvalue() == out.getvalue()


def test_forecastbench_questions_and_resolutions(engine: Engine, shared_data: Path) -> None:
    questions = shared_data / "forecastbench-2025-10-26-questions.json"
    resolutions = shared_data / "forecastbench-2025-10-26-resolutions.json"
    qs = json.loads(questions.read_text(encoding="utf-8"))["questions"]
    rs = json.loads(resolutions.read_text(encoding="utf-8"))["resolutions"]
    markets = [q for q in qs if not isinstance(q["resolution_dates"], list)]
    horizons = sum(
        len(q["resolution_dates"]) for q in qs if isinstance(q["resolution_dates"], list)
    )
    final = [r for r in rs if r["resolved"] is True and r["resolved_to"] in (0, 1)]

    summary = _import(engine, questions, resolutions=resolutions)

    assert summary.format == "forecastbench"
    assert summary.forecasts == len(markets) + horizons
    assert summary.estimates == len(markets)
    assert summary.resolved == len(final)
    _verified(engine)
    market = _by_ref(engine, "forecastbench:K8qazyZJ3tXyuLlzkkyk")
    assert market["estimates"] == [
        {
            "probability": 0.979920031255855,
            "at": "2025-10-16T00:00:00.000000Z",
            "by": "manifold",
            "note": "The market value.",
        }
    ]
    assert (
        market["source"]
        == "https://manifold.markets/UniversalFC/will-san-diego-fc-make-the-playoffs"
    )
    assert market["tags"] == ["forecastbench", "manifold"]
    row = next(r for r in final if r["source"] == "acled")
    dataset = _by_ref(engine, f"forecastbench:{row['id']}:{row['resolution_date']}")
    assert dataset["outcome"] is (row["resolved_to"] == 1)
    assert dataset["resolved_by"] == "forecastbench"
    assert "{resolution_date}" not in dataset["criteria"]
    assert row["resolution_date"] in dataset["criteria"]
    unresolved = next(r for r in rs if not r["resolved"])
    ref = f"forecastbench:{unresolved['id']}"
    if unresolved["source"] not in ("manifold", "metaculus", "polymarket", "infer"):
        ref += f":{unresolved['resolution_date']}"
    assert _by_ref(engine, ref)["status"] == "open"


def test_forecastbench_questions_alone_stay_open(engine: Engine, shared_data: Path) -> None:
    summary = _import(engine, shared_data / "forecastbench-2025-10-26-questions.json")
    assert summary.resolved == 0
    assert summary.forecasts > 2000
    _verified(engine)


def test_examples_import_and_verify(engine: Engine) -> None:
    china = _import(engine, EXAMPLES / "china-ai-forecasts.toml")
    assert china.forecasts >= 10
    assert china.checks >= 10
    pb = _import(engine, EXAMPLES / "predictionbook-excerpt.json")
    assert (pb.forecasts, pb.resolved) == (300, 300)
    _verified(engine)
    with read_session(engine) as s:
        for f in store.list_forecasts(s, records.ForecastQuery(status="open", limit=None)):
            assert f.due.year >= 2027
            assert f.source and f.criteria and [t.name for t in f.tags]


def test_forecastbench_ids_the_database_cannot_hold_are_problems(
    engine: Engine, tmp_path: Path
) -> None:
    question = {
        "source": "manifold",
        "question": "Will it happen?",
        "resolution_criteria": "Resolves to the outcome of the market.",
        "market_info_close_datetime": "2026-01-01T04:59:00+00:00",
        "freeze_datetime": "2025-10-16T00:00:00+00:00",
        "freeze_datetime_value": "0.5",
        "resolution_dates": "N/A",
    }
    path = tmp_path / "questions.json"
    path.write_text(
        json.dumps(
            {
                "forecast_due_date": "2025-10-16",
                "question_set": "q",
                "questions": [{**question, "id": "\x00"}, {**question, "id": "x" * 290}],
            }
        ),
        encoding="utf-8",
    )
    with pytest.raises(ImportProblems) as caught:
        _import(engine, path)
    assert [p.split(": ", 1)[1][:3] for p in caught.value.problems] == ["id:", "id:"]
    assert "control characters" in caught.value.problems[0]
    assert "at most 300 characters" in caught.value.problems[1]
