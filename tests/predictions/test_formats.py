"""Import and export in the tracker's own formats, on SQLite and PostgreSQL.

Round trips are byte for byte, bad files import nothing and name every problem, refs import once,
and `verify` passes after every import.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from predictions import chain, ledger, records, store
from predictions.bulk import ImportSummary, import_records
from predictions.db import read_session, write_session
from predictions.errors import ImportProblems, InputError, StateError
from predictions.formats import ReadContext, detect_format_from, export, open_records
from resolvers import validate_check

NOW = datetime(2026, 11, 23, 9, 0, 0)
FORMATS = ("json", "csv", "toml")


def _import(engine: Engine, path: Path, fmt: str | None = None, **kwargs: Any) -> ImportSummary:
    ctx = ReadContext(now=NOW, author="alice")
    resolutions = kwargs.pop("resolutions", None)
    with (
        open_records(path, fmt, ctx, resolutions=resolutions) as (meta, records),
        write_session(engine) as session,
    ):
        return import_records(
            session,
            records,
            source=path.name,
            meta=meta,
            validate_check=validate_check,
            now=NOW,
            **kwargs,
        )


def _export(engine: Engine, fmt: str) -> str:
    out = io.StringIO()
    with read_session(engine) as session:
        export(session, fmt, out)
    return out.getvalue()


def _verify(engine: Engine) -> ledger.VerifyReport:
    with read_session(engine) as session:
        return ledger.verify(session)


def _empty(engine: Engine) -> None:
    """Delete every row, leaving the schema: an empty database on the same server."""
    tables = (
        "receipt",
        "ledger",
        "proposal",
        "evidence",
        "check_spec",
        "amendment",
        "estimate",
        "tag",
    )
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(tables)}, forecast RESTART IDENTITY CASCADE"))
        else:
            for table in (*tables, "forecast"):
                conn.execute(text(f"DELETE FROM {table}"))


def _history(engine: Engine, tmp_path: Path) -> None:
    """A ledger with interleaved events of several kinds, as real use makes it."""
    checks = tmp_path / "checks.toml"
    checks.write_text(
        """
[[forecast]]
ref = "example:checked"
title = "Qwen4 open weights by 2027"
criteria = "Resolves YES if Alibaba publishes Qwen4 weights."
due = 2027-12-31
probability = "70%"
tags = ["china", "llm"]

[[forecast.check]]
kind = "page"
url = "https://huggingface.co/Qwen"
contains = ["Qwen4", "通义千问4"]
otherwise = "no"
""",
        encoding="utf-8",
    )
    with write_session(engine) as s:
        a = store.add_forecast(
            s,
            title="Provincial AI clusters by 2030",
            criteria="Two provinces announce clusters.",
            due=datetime(2030, 12, 31, 23, 59, 59),
            author="alice",
            probability=0.7,
            tags=["china", "ai-policy"],
            source="https://example.org/a",
            created_at=datetime(2026, 1, 2, 3, 4, 5, 678901),
        )
        b = store.add_forecast(
            s,
            title="AI law by 2028",
            criteria="The NPC adopts an AI law.\nDrafts do not count.",
            due=datetime(2028, 12, 31, 23, 59, 59),
            author="bob",
            probability=0.3,
            note="slow legislature",
            created_at=datetime(2026, 1, 3),
        )
        store.add_estimate(
            s, a, "carol", 0.55, note="über-careful, 慎重", made_at=datetime(2026, 2, 1)
        )
    _import(engine, checks)
    with write_session(engine) as s:
        store.amend(
            s, b.id, "criteria", "The NPC or its Standing Committee adopts an AI law.", by="bob"
        )
        store.add_estimate(s, a.id, "alice", 0.62, made_at=datetime(2026, 3, 1))
        store.resolve(s, a.id, True, by="alice", note="done", evidence="https://example.org/n")
        c = store.add_forecast(
            s,
            title="Moot question",
            criteria="Something.",
            due=datetime(2029, 1, 1),
            author="alice",
            probability=0.5,
            created_at=datetime(2026, 4, 1),
        )
        store.annul(s, c.id, by="alice", note="withdrawn")
        store.amend(s, b.id, "due", datetime(2029, 6, 30, 23, 59, 59), by="bob", note="later")


@pytest.mark.parametrize("fmt", FORMATS)
def test_formats_export_import_export_is_byte_identical(
    engine: Engine, tmp_path: Path, fmt: str
) -> None:
    _history(engine, tmp_path)
    first = _export(engine, fmt)
    head = _verify(engine)
    path = tmp_path / f"export.{fmt}"
    path.write_text(first, encoding="utf-8")
    _empty(engine)

    summary = _import(engine, path)

    assert summary.restored is True
    assert summary.file_head_verified is True
    assert summary.head == head.head
    assert (summary.forecasts, summary.estimates, summary.amendments, summary.checks) == (
        4,
        6,
        2,
        1,
    )
    assert _export(engine, fmt) == first
    assert _verify(engine).ok
    # The sequences moved past the restored ids: the next forecast gets the next id.
    with write_session(engine) as s:
        new = store.add_forecast(
            s, title="After restore", criteria="c", due=datetime(2031, 1, 1), author="dan"
        )
        assert new.id == 5
        store.add_estimate(s, new, "dan", 0.4)
    assert _verify(engine).ok


@pytest.mark.parametrize("fmt", FORMATS)
def test_formats_export_imports_into_a_database_in_use_as_new_forecasts(
    engine: Engine, tmp_path: Path, fmt: str
) -> None:
    _history(engine, tmp_path)
    path = tmp_path / f"export.{fmt}"
    path.write_text(_export(engine, fmt), encoding="utf-8")
    _empty(engine)
    with write_session(engine) as s:
        store.add_forecast(s, title="First", criteria="c", due=datetime(2031, 1, 1), author="dan")

    summary = _import(engine, path)

    assert summary.restored is False
    assert summary.forecasts == 4
    assert _verify(engine).ok
    with read_session(engine) as s:
        amended = store.get_forecast(s, 3)
        assert amended.criteria == "The NPC or its Standing Committee adopts an AI law."
        assert [a.field for a in amended.amendments] == ["criteria", "due"]


def test_formats_restore_refuses_a_file_changed_after_export(
    engine: Engine, tmp_path: Path, counts: Callable[[], dict[str, int]]
) -> None:
    _history(engine, tmp_path)
    exported = _export(engine, "json")
    path = tmp_path / "export.json"
    path.write_text(exported.replace('"probability": 0.62', '"probability": 0.92'), "utf-8")
    _empty(engine)

    with pytest.raises(ImportProblems) as caught:
        _import(engine, path)

    assert "the file was changed after export" in caught.value.problems[-1]
    assert set(counts().values()) == {0}


def _corrections(engine: Engine) -> None:
    """Mistakes corrected on the record, after :func:`_history`: a resolution reopened and resolved
    the other way, an annulment withdrawn, a tag amended, a withdrawal reopened."""
    with write_session(engine) as s:
        store.reopen(s, 1, by="alice", note="the announcement was a draft")
        store.add_estimate(s, 1, "alice", 0.4, made_at=datetime(2026, 5, 1))
        store.resolve(s, 1, False, by="bob", note="no clusters", evidence="https://example.org/x")
        store.withdraw(s, 4, by="alice", note="a test entry after all")
        store.amend(s, 3, "tags", (["law", "china"], []), by="bob", note="filed")
        d = store.add_forecast(
            s, title="Duplicate?", criteria="c", due=datetime(2031, 1, 1), author="dan",
            probability=0.5, created_at=datetime(2026, 6, 1),
        )  # fmt: skip
        store.withdraw(s, d.id, by="dan", note="duplicate of 2")
        store.reopen(s, d.id, by="dan", note="not a duplicate: another region")


@pytest.mark.parametrize("fmt", FORMATS)
def test_formats_corrections_restore_into_an_empty_database_with_the_same_head(
    engine: Engine, tmp_path: Path, fmt: str
) -> None:
    _history(engine, tmp_path)
    _corrections(engine)
    first = _export(engine, fmt)
    head = _verify(engine)
    assert head.ok, head.problem
    path = tmp_path / f"export.{fmt}"
    path.write_text(first, encoding="utf-8")
    _empty(engine)

    summary = _import(engine, path)

    assert (summary.restored, summary.file_head_verified) == (True, True)
    assert (summary.head, summary.ledger_entries) == (head.head, head.entries)
    assert (summary.resolved, summary.annulled, summary.withdrawn, summary.corrections) == (
        1,
        0,
        1,
        5,
    )
    assert _export(engine, fmt) == first
    assert _verify(engine).ok
    with read_session(engine) as s:
        assert [(h["kind"], h["by"]) for h in store.closings(s, 1)] == [
            ("resolve", "alice"),
            ("reopen", "alice"),
            ("resolve", "bob"),
        ]
        assert [t.name for t in store.get_forecast(s, 3).tags] == ["china", "law", "llm"]
        assert store.get_forecast(s, 4).status == "withdrawn"
        assert store.get_forecast(s, 5).status == "open"


@pytest.mark.parametrize("fmt", FORMATS)
def test_formats_corrections_import_into_a_database_in_use(
    engine: Engine, tmp_path: Path, fmt: str
) -> None:
    _history(engine, tmp_path)
    _corrections(engine)
    path = tmp_path / f"export.{fmt}"
    path.write_text(_export(engine, fmt), encoding="utf-8")
    _empty(engine)
    with write_session(engine) as s:
        store.add_forecast(s, title="First", criteria="c", due=datetime(2031, 1, 1), author="dan")

    summary = _import(engine, path)

    assert (summary.restored, summary.forecasts, summary.corrections) == (False, 5, 5)
    assert _verify(engine).ok
    with read_session(engine) as s:
        resolved = store.get_forecast(s, 2)
        assert (resolved.status, resolved.outcome, resolved.resolved_by) == (
            "resolved",
            False,
            "bob",
        )
        assert [h["kind"] for h in store.closings(s, 2)] == ["resolve", "reopen", "resolve"]
        assert [t.name for t in store.get_forecast(s, 4).tags] == ["china", "law", "llm"]
        assert [store.get_forecast(s, i).status for i in (5, 6)] == ["withdrawn", "open"]


def test_formats_corrections_in_a_file_are_checked(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    record = {
        "title": "T", "criteria": "c", "due": "2030-01-01", "created_at": "2026-01-01T00:00:00Z",
        "estimates": [{"probability": 0.5}],
        "corrections": [
            {"kind": "unresolve", "at": "2026-02-01T00:00:00Z", "by": "a"},
            {"kind": "reopen", "at": "2026-02-01T00:00:00Z", "by": "a", "was": "open"},
        ],
    }  # fmt: skip
    path.write_text(json.dumps([record]), encoding="utf-8")
    with pytest.raises(ImportProblems) as caught:
        _import(engine, path)
    assert caught.value.problems == [
        "forecast 1 (line 1), correction 1: kind: got 'unresolve', expected one of resolve, "
        "annul, withdraw, reopen",
        "forecast 1 (line 1), correction 2: was: got 'open', expected one of resolved, "
        "annulled, withdrawn",
    ]


def _bad_file(fmt: str, tmp_path: Path) -> Path:
    if fmt == "toml":
        body = """
[[forecast]]
title = "Good one"
criteria = "Fine."
due = 2030-01-01
probability = 0.4

[[forecast]]
title = "Bad probability"
criteria = "Fine."
due = 2030-01-01
probability = "150%"

[[forecast]]
title = "No criteria and a past due"
due = 2020-01-01
probability = 0.5
"""
    elif fmt == "json":
        body = json.dumps(
            [
                {"title": "Good one", "criteria": "Fine.", "due": "2030-01-01", "probability": 0.4},
                {"title": "Bad probability", "criteria": "Fine.", "due": "2030", "probability": 1},
                {"title": "No criteria and a past due", "due": "2020-01-01", "probability": 0.5},
            ],
            indent=1,
        )
    else:
        body = (
            "title,criteria,due,probability\n"
            "Good one,Fine.,2030-01-01,0.4\n"
            "Bad probability,Fine.,2030,1\n"
            "No criteria and a past due,,2020-01-01,0.5\n"
        )
    path = tmp_path / f"bad.{fmt}"
    path.write_text(body, encoding="utf-8")
    return path


@pytest.mark.parametrize("fmt", FORMATS)
def test_formats_bad_file_imports_nothing_and_names_every_problem(
    engine: Engine, tmp_path: Path, fmt: str, counts: Callable[[], dict[str, int]]
) -> None:
    with write_session(engine) as s:
        store.add_forecast(s, title="Kept", criteria="c", due=datetime(2031, 1, 1), author="dan")
    before = counts()

    with pytest.raises(ImportProblems) as caught:
        _import(engine, _bad_file(fmt, tmp_path))

    problems = caught.value.problems
    assert len(problems) == 3, problems
    where = (
        ("line 3", "line 4") if fmt == "csv" else ("forecast 2 (line 8)", "forecast 3 (line 14)")
    )
    assert problems[0].startswith(where[0]) and "probability" in problems[0]
    assert problems[1].startswith(where[1]) and "criteria" in problems[1]
    assert problems[2].startswith(where[1]) and "due" in problems[2]
    assert counts() == before
    assert _verify(engine).ok


def test_formats_refs_import_once_or_are_skipped(
    engine: Engine, tmp_path: Path, counts: Callable[[], dict[str, int]]
) -> None:
    path = tmp_path / "refs.csv"
    path.write_text(
        "ref,title,criteria,due,probability\nx:1,One,c,2030,0.3\nx:2,Two,c,2030,0.4\n",
        encoding="utf-8",
    )
    assert _import(engine, path).forecasts == 2
    before = counts()
    with pytest.raises(StateError) as caught:
        _import(engine, path)
    assert str(caught.value) == (
        "refs.csv: 2 of its forecasts are already in this database, nothing imported "
        "(--skip-existing skips them): line 2 is ref 'x:1'; line 3 is ref 'x:2'"
    )
    path.write_text(
        "ref,title,criteria,due,probability\nx:1,One,c,2030,0.3\nx:3,Three,c,2030,abc\n",
        encoding="utf-8",
    )
    with pytest.raises(ImportProblems) as listed:
        _import(engine, path)
    assert listed.value.problems == [
        "line 3, estimate 1: probability: got 'abc', expected a probability strictly between "
        "0 and 1, written 0.7, 70% or 70",
        "1 of its forecasts are already in this database, nothing imported "
        "(--skip-existing skips them): line 2 is ref 'x:1'",
    ]
    assert counts() == before
    path.write_text(
        "ref,title,criteria,due,probability\nx:1,One,c,2030,0.3\nx:3,Three,c,2030,0.5\n",
        encoding="utf-8",
    )
    summary = _import(engine, path, skip_existing=True)
    assert (summary.forecasts, summary.skipped) == (1, 1)
    assert _verify(engine).ok


def test_formats_duplicate_refs_in_one_file_are_refused(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "dup.csv"
    path.write_text(
        "ref,title,criteria,due,probability\nx:1,One,c,2030,0.3\nx:1,Again,c,2030,0.3\n",
        encoding="utf-8",
    )
    with pytest.raises(ImportProblems) as caught:
        _import(engine, path)
    assert caught.value.problems == ["line 3: ref 'x:1' appears twice in the file"]


def test_formats_toml_checks_are_validated_by_the_resolvers(
    engine: Engine, tmp_path: Path, counts: Callable[[], dict[str, int]]
) -> None:
    path = tmp_path / "checks.toml"
    body = """
[[forecast]]
title = "Checked"
criteria = "c"
due = 2030-01-01
probability = "60%"

[[forecast.check]]
kind = "page"
mode = "auto"
url = "https://example.org/"
contains = "AI"

[[forecast.check]]
kind = "deadline"

[[forecast]]
title = "Badly checked"
criteria = "c"
due = 2030-01-01

[[forecast.check]]
kind = "page"
contains = "AI"

[[forecast.check]]
kind = "no-such-kind"
"""
    path.write_text(body, encoding="utf-8")
    with pytest.raises(ImportProblems) as caught:
        _import(engine, path)
    problems = caught.value.problems
    assert len(problems) == 2
    assert problems[0].startswith("forecast 2 (line 17), check 1: page check url")
    assert problems[1].startswith("forecast 2 (line 17), check 2: ")
    assert set(counts().values()) == {0}

    path.write_text(body.split('[[forecast]]\ntitle = "Badly')[0], encoding="utf-8")
    summary = _import(engine, path)
    assert summary.checks == 2
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT kind, mode, params FROM check_spec ORDER BY id")).all()
    assert [(r.kind, r.mode) for r in rows] == [("page", "auto"), ("deadline", "propose")]
    params = rows[0].params if isinstance(rows[0].params, dict) else json.loads(rows[0].params)
    assert params["url"] == "https://example.org/"


def test_formats_history_keeps_zero_and_one_but_new_forecasts_do_not(
    engine: Engine, tmp_path: Path
) -> None:
    history = tmp_path / "history.json"
    history.write_text(
        json.dumps(
            [
                {
                    "title": "Past",
                    "criteria": "c",
                    "due": "2019-01-01",
                    "created_at": "2018-01-01T00:00:00Z",
                    "estimates": [
                        {"probability": 0, "at": "2018-01-01T00:00:00Z", "by": "a"},
                        {"probability": 1.0, "at": "2018-02-01T00:00:00Z", "by": "b"},
                    ],
                    "status": "resolved",
                    "outcome": "yes",
                    "resolved_at": "2019-01-02T00:00:00Z",
                    "resolved_by": "a",
                }
            ]
        ),
        encoding="utf-8",
    )
    summary = _import(engine, history)
    assert (summary.forecasts, summary.estimates, summary.resolved) == (1, 2, 1)
    with read_session(engine) as s:
        record = records.forecast_record(store.get_forecast(s, 1))
    assert [e["probability"] for e in record["estimates"]] == [0.0, 1.0]
    assert record["outcome"] is True
    assert _verify(engine).ok

    fresh = tmp_path / "fresh.json"
    fresh.write_text(
        json.dumps(
            [{"title": "New", "criteria": "c", "due": "2030", "estimates": [{"probability": 0}]}]
        ),
        encoding="utf-8",
    )
    with pytest.raises(ImportProblems) as caught:
        _import(engine, fresh)
    assert "strictly between 0 and 1" in caught.value.problems[0]


def test_formats_csv_rows_without_title_add_estimates(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "long.csv"
    path.write_text(
        "title,criteria,due,created_at,probability,estimated_at,forecaster,note\n"
        "Q,c,2030,2025-01-01T00:00:00Z,0.2,2025-01-01T00:00:00Z,ann,first\n"
        ",,,,0.3,2025-02-01T00:00:00Z,ben,\n"
        ',,,,0.4,2025-03-01T00:00:00Z,ann,"later, with a comma"\n',
        encoding="utf-8",
    )
    assert _import(engine, path).estimates == 3
    with read_session(engine) as s:
        record = records.forecast_record(store.get_forecast(s, 1))
    assert [(e["by"], e["probability"], e["note"]) for e in record["estimates"]] == [
        ("ann", 0.2, "first"),
        ("ben", 0.3, None),
        ("ann", 0.4, "later, with a comma"),
    ]
    assert record["author"] == "alice"


def test_formats_unreadable_files_are_problems_not_crashes(engine: Engine, tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text(
        '{"forecasts": [{"title": "A", "criteria": "c", "due": "2030"},\n  {"ti', "utf-8"
    )
    with pytest.raises(ImportProblems) as caught:
        _import(engine, broken)
    assert caught.value.problems[-1].startswith("not a readable JSON file: line 2")
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"title,criteria,due\nA,\xff\xfe,2030\n")
    with pytest.raises(ImportProblems) as caught:
        _import(engine, binary)
    assert caught.value.problems[-1].startswith("not UTF-8 text")
    toml = tmp_path / "x.toml"
    toml.write_text("[[forecast]\n", encoding="utf-8")
    with pytest.raises(ImportProblems) as caught:
        _import(engine, toml)
    assert caught.value.problems[0].startswith("not a readable TOML file")


def test_formats_detect_format_from_name_and_content() -> None:
    assert detect_format_from("a.toml", "") == "toml"
    assert detect_format_from("a.csv", "") == "csv"
    assert detect_format_from("a.json", '{"format": "forecast-tracker"}') == "json"
    assert detect_format_from("a", '[{"number": 5, "event": "x"}]') == "predictionbook"
    assert (
        detect_format_from("a", '{"forecast_due_date": "x", "question_set": "q", "questions": []}')
        == "forecastbench"
    )
    with pytest.raises(InputError, match="resolution set goes with it"):
        detect_format_from("r.json", '{"question_set": "q", "resolutions": []}')
    with pytest.raises(InputError, match="one of toml, json, csv"):
        detect_format_from("x.bin", "\x00\x01")


_CELL_VARIANTS: dict[str, list[str]] = {
    "title": ["Q", "  Q  ", "", "   ", "a\nb", "x" * 501, "é 多个"],
    "criteria": ["c", "", "line\nline", "bad\x00", "  c  "],
    "due": ["2030-01-31", "2030", "2030-06", "2020-01-01", "+90d", "bad", "", "2030-01-31T12:00Z"],
    "created_at": ["", "2025-01-01T00:00:00Z", "2025-01-01T01:02:03.5+02:00", "bad"],
    "author": ["", "ann", "a\nb"],
    "source": ["", "https://x", "  "],
    "ref": ["", "r:1", "r" * 301, "  "],
    "tags": ["", "a,b", "a b  C", "bad tag!"],
    "id": ["", "5", "0", "x"],
    "seq": ["", "3"],
}
_ESTIMATE_VARIANTS: dict[str, list[str]] = {
    "probability": ["0.3", "70%", "0", "1", "1.5", "", "abc", "nan", " 0.25 "],
    "at": ["", "2025-02-01T00:00:00Z", "2025-01-01T00:00:00Z", "bad"],
    "by": ["", "ben"],
    "note": ["", "n", "  ", "\x01"],
    "id": ["", "9", "-1"],
    "seq": ["", "4"],
}


def test_formats_csv_fast_path_reads_what_the_careful_path_reads() -> None:
    """forecast_from_cells gives forecast_from_mapping's record, or declines (None)."""
    import random

    from predictions.formats.records import (
        ESTIMATE_CELLS,
        FORECAST_CELLS,
        forecast_from_cells,
        forecast_from_mapping,
    )

    rng = random.Random(2)
    ctx = ReadContext(now=NOW, author="alice")
    fast_reads = 0
    for n in range(4000):
        # Every other case from the valid values only, so the fast path is taken often.
        pick = (lambda v: v[0] if v[0] else v[1]) if n % 2 else rng.choice
        cells = {k: pick(v) for k, v in _CELL_VARIANTS.items()}
        if n % 2:
            cells["created_at"] = rng.choice(["", "2025-01-01T00:00:00Z"])
        estimates = []
        for _ in range(rng.randrange(4)):
            e = {k: pick(v) for k, v in _ESTIMATE_VARIANTS.items()}
            if n % 2:
                e["at"] = rng.choice(["", "2025-02-01T00:00:00Z"])
            if any(e.values()):
                estimates.append(e)
        mapping: dict[str, Any] = {k: v for k, v in cells.items() if v != ""}
        mapping["estimates"] = [{k: v for k, v in e.items() if v != ""} for e in estimates]
        careful = forecast_from_mapping(mapping, "line 2", ctx)
        fast = forecast_from_cells(
            "line 2",
            ctx,
            # Empty cells as "" or as None: both read as absent.
            [cells[k] if n % 3 else cells[k] or None for k in FORECAST_CELLS],
            [[e[k] if n % 3 else e[k] or None for k in ESTIMATE_CELLS] for e in estimates],
        )
        if fast is not None:
            fast_reads += 1
            assert fast == careful, (cells, estimates)
            assert not careful.problems
    assert fast_reads > 1000


def test_formats_bulk_ledger_entries_are_the_canonical_payloads_of_the_rows(
    engine: Engine, tmp_path: Path
) -> None:
    """The ledger entries of a bulk import are ``canonical(register_payload / estimate_payload)``
    of the rows written, for names and notes that JSON must escape, and the chain verifies."""
    from predictions.models import Estimate, Forecast, LedgerEntry, Tag

    path = tmp_path / "escapes.csv"
    names = ['O"Brien', "back\\slash", "Zoë 多", "tab\tname", "emoji 🙂", "plain"]
    notes = ["", 'say "hi"', "line\nbreak", "\\", "é", "🙂 ok"]
    lines = ["title,criteria,due,created_at,author,tags,probability,estimated_at,forecaster,note"]
    for i in range(24):
        name, note = names[i % len(names)], notes[i % len(notes)]
        lines.append(
            f'"Q {i} ""quoted"" ✓","C {i}\nsecond line",2031-0{1 + i % 9}-15,'
            f'2025-01-0{1 + i % 9}T10:00:00Z,"{names[(i + 1) % len(names)].replace(chr(34), chr(34) * 2)}",'
            f'"t{i % 3},x",0.{10 + i},2025-01-0{1 + i % 9}T10:00:00Z,"{name.replace(chr(34), chr(34) * 2)}",'
            f'"{note.replace(chr(34), chr(34) * 2)}"'
        )
        lines.append(f",,,,,,0.5,2025-03-0{1 + i % 9}T11:30:00.250000Z,plain,{i}")
        lines.append(
            f',,,,,,{i % 2},2025-04-0{1 + i % 9}T12:00:00Z,"{name.replace(chr(34), chr(34) * 2)}",'
        )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    summary = _import(engine, path)
    assert summary.forecasts == 24 and summary.estimates == 72
    with read_session(engine) as session:
        entries = {
            (e.kind, json.loads(e.payload)["id"]): e.payload
            for e in session.query(LedgerEntry).order_by(LedgerEntry.seq)
        }
        for f in session.query(Forecast):
            tags = [t.name for t in session.query(Tag).filter_by(forecast_id=f.id)]
            assert entries["register", f.id] == chain.canonical(chain.register_payload(f, tags))
        estimates = session.query(Estimate).all()
        assert len(estimates) == 72
        assert {e.forecaster for e in estimates} >= set(names)
        assert {f.author for f in session.query(Forecast)} == set(names)
        for e in estimates:
            assert entries["estimate", e.id] == chain.canonical(chain.estimate_payload(e))
        assert ledger.verify(session).ok


def test_formats_csv_groups_read_the_same_on_either_path(tmp_path: Path) -> None:
    """Open forecasts (fast path) and the rest (careful path) of one file, with their problems."""
    path = tmp_path / "mixed.csv"
    path.write_text(
        "title,criteria,due,created_at,status,outcome,resolved_at,probability,estimated_at,note\n"
        "A,c,2030,2025-01-01T00:00:00Z,,,,0.2,2025-01-01T00:00:00Z,n\n"
        ",,,,,,,0.3,2025-02-01T00:00:00Z,\n"
        "B,c,2030,2025-01-01T00:00:00Z,resolved,yes,2025-06-01T00:00:00Z,0.4,,\n"
        "C,c,2030,2025-01-01T00:00:00Z,open,,,0.5,,\n"
        ",,,,,,,0.6\n"
        ",x,,,,,,0.7,,\n",
        encoding="utf-8",
    )
    ctx = ReadContext(now=NOW, author="alice")
    with open_records(path, "csv", ctx) as (meta, records):
        got = list(records)
    assert [r.title for r in got] == ["A", "B", "C"]
    assert [[e.probability for e in r.estimates] for r in got] == [[0.2, 0.3], [0.4], [0.5, 0.7]]
    assert got[0].estimates[0].note == "n" and got[0].estimates[0].at == datetime(2025, 1, 1)
    assert got[1].status == "resolved" and got[1].outcome is True
    assert got[2].problems == [
        "line 6: 8 cells, the header has 10",
        "line 7: criteria given on an estimate row",
    ]
    assert not got[0].problems and not got[1].problems


def test_formats_parse_time_reads_utc_and_offsets_but_not_both() -> None:
    from predictions.formats.records import parse_time

    assert parse_time("2025-01-01T12:00:00Z") == datetime(2025, 1, 1, 12)
    assert parse_time("2025-01-01T12:00:00+02:00") == datetime(2025, 1, 1, 10)
    with pytest.raises(InputError, match="ISO date-time"):
        parse_time("2025-01-01T12:00:00+02:00Z")
