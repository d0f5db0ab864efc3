"""Numeric, date and multiple-choice questions in the tracker's own formats (TOML, JSON, CSV), on
SQLite and PostgreSQL: exports restore byte for byte with the same ledger head, import into a
database in use, and a file with a bad question, forecast or resolution imports nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from predictions import chain, ledger, store
from predictions.db import read_session, write_session
from predictions.errors import ImportProblems
from predictions.questions import GRID, Question, rounded
from tests.predictions.test_formats import FORMATS, _empty, _export, _import, _verify


def _seconds(at: str) -> float:
    return datetime.fromisoformat(at).replace(tzinfo=UTC).timestamp()


def _cdf(low: float = 0.0, high: float = 1.0, bend: float = 1.0) -> tuple[float, ...]:
    us = [k / (GRID - 1) for k in range(GRID)]
    return rounded(low + (high - low) * (u + u**bend) / 2 for u in us)


NUMERIC = Question("numeric", lower=0.0, upper=34.0)
LOG = Question("numeric", lower=1.0, upper=1e6, open_lower=True, open_upper=True, log=True)
DATE = Question("date", lower=_seconds("2026-01-01"), upper=_seconds("2036-01-01"), open_upper=True)
CHOICE = Question("choice", options=("DeepSeek", "Alibaba Qwen", "Zhipu ✓", "Other"), ordered=True)


def _add(s: Any, title: str, question: Question | None, made: datetime, **kwargs: Any) -> int:
    f = store.add_forecast(
        s, title=title, criteria=f"How {title} resolves.", due=datetime(2035, 12, 31, 23, 59, 59),
        author="alice", question=question, created_at=made, allow_past_due=True, **kwargs,
    )  # fmt: skip
    return f.id


def _typed_history(engine: Engine) -> None:
    """Every type, open and resolved, with estimates by several people, an amendment, and a
    resolution reopened and resolved again (a correction carrying a resolution value)."""
    with write_session(engine) as s:
        n = _add(s, "provinces", NUMERIC, datetime(2026, 1, 2), values=_cdf(), tags=["china"])
        store.add_estimate(s, n, "bob", _cdf(bend=0.5), made_at=datetime(2026, 2, 1), note="é")
        d = _add(s, "standard", DATE, datetime(2026, 1, 3), values=_cdf(high=0.9))
        c = _add(s, "lab", CHOICE, datetime(2026, 1, 4), values=(0.35, 0.3, 0.25, 0.1))
        store.add_estimate(
            s, c, "bob", (0.1234567, 0.5, 0.2765433, 0.1), made_at=datetime(2026, 3, 1)
        )
        b = _add(s, "binary", None, datetime(2026, 1, 5), probability=0.7)
        g = _add(s, "parameters", LOG, datetime(2026, 1, 6), values=_cdf(low=0.01, high=0.98))
        store.amend(s, n, "criteria", "Count the NDRC list.", by="alice")
        store.resolve(s, d, _seconds("2040-06-01"), by="alice", note="beyond the open bound")
        store.resolve(s, c, 2, by="alice", evidence="https://example.org/c")
        store.reopen(s, c, by="alice", note="misread")
        store.resolve(s, c, 1, by="bob")
        store.resolve(s, b, True, by="alice")
        store.annul(s, g, by="alice", note="moot")
        store.resolve(s, n, 11.0, by="alice")


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_type_restores_byte_for_byte_with_the_same_head(
    engine: Engine, tmp_path: Path, fmt: str
) -> None:
    _typed_history(engine)
    first = _export(engine, fmt)
    head = _verify(engine)
    assert head.ok, head.problem
    with read_session(engine) as s:
        before = [store.get_forecast(s, fid) for fid in range(1, 6)]
    path = tmp_path / f"export.{fmt}"
    path.write_text(first, encoding="utf-8")
    _empty(engine)

    summary = _import(engine, path)

    assert (summary.restored, summary.file_head_verified) == (True, True)
    assert (summary.head, summary.ledger_entries) == (head.head, head.entries)
    assert _export(engine, fmt) == first
    assert _verify(engine).ok
    with read_session(engine) as s:
        after = [store.get_forecast(s, fid) for fid in range(1, 6)]
        assert [h["value"] for h in store.closings(s, 3) if h["kind"] == "resolve"] == [2.0, 1.0]
    assert after == before
    assert [(f.kind, f.resolution_value) for f in after] == [
        ("numeric", 11.0), ("date", _seconds("2040-06-01")), ("choice", 1.0), ("binary", None),
        ("numeric", None),
    ]  # fmt: skip
    assert after[2].estimates[1].values == (0.123457, 0.5, 0.276543, 0.1)


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_type_imports_into_a_database_in_use(
    engine: Engine, tmp_path: Path, fmt: str
) -> None:
    _typed_history(engine)
    with read_session(engine) as s:
        before = [store.get_forecast(s, fid) for fid in range(1, 6)]
    path = tmp_path / f"export.{fmt}"
    path.write_text(_export(engine, fmt), encoding="utf-8")
    _empty(engine)
    with write_session(engine) as s:
        _add(s, "first", CHOICE, datetime(2026, 1, 1), values=(0.25, 0.25, 0.25, 0.25))

    summary = _import(engine, path)

    assert (summary.restored, summary.forecasts, summary.corrections) == (False, 5, 2)
    assert _verify(engine).ok
    with read_session(engine) as s:
        after = [store.get_forecast(s, fid) for fid in range(2, 7)]
    for old, new in zip(before, after, strict=True):
        assert (new.kind, new.question, new.status, new.outcome, new.resolution_value) == (
            old.kind, old.question, old.status, old.outcome, old.resolution_value,
        )  # fmt: skip
        assert [(e.forecaster, e.probability, e.values) for e in new.estimates] == [
            (e.forecaster, e.probability, e.values) for e in old.estimates
        ]


def test_the_export_carries_the_type_and_the_full_forecast(engine: Engine) -> None:
    _typed_history(engine)
    exported = json.loads(_export(engine, "json"))["forecasts"]
    numeric, date, choice, binary = exported[:4]
    assert (numeric["kind"], numeric["question"]) == ("numeric", NUMERIC.spec())
    assert numeric["resolution_value"] == 11.0 and numeric["outcome"] is None
    assert [e["cdf"] for e in numeric["estimates"]] == [list(_cdf()), list(_cdf(bend=0.5))]
    assert date["question"]["lower"] == "2026-01-01T00:00:00Z"
    assert choice["estimates"][0]["probabilities"] == [0.35, 0.3, 0.25, 0.1]
    assert [c.get("value") for c in choice["corrections"]] == [2.0, None]
    assert not {"kind", "question", "resolution_value"} & binary.keys()
    assert "probability" not in numeric["estimates"][0]
    csv = _export(engine, "csv").splitlines()
    assert csv[1].endswith(",kind,question,resolution_value,checks,amendments,corrections,"
                           "estimate_id,estimate_seq,probability,estimated_at,forecaster,note,"
                           "cdf,probabilities")  # fmt: skip


def test_a_changed_cdf_in_an_export_is_refused(
    engine: Engine, tmp_path: Path, counts: Callable[[], dict[str, int]]
) -> None:
    _typed_history(engine)
    exported = _export(engine, "json")
    value = _cdf()[100]
    changed = exported.replace(f", {value}, ", f", {round(value + 0.0001, 6)}, ", 1)
    assert changed != exported
    path = tmp_path / "export.json"
    path.write_text(changed, "utf-8")
    _empty(engine)

    with pytest.raises(ImportProblems) as caught:
        _import(engine, path)

    assert "the file was changed after export" in caught.value.problems[-1]
    assert set(counts().values()) == {0}


def test_hand_written_toml_questions(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "typed.toml"
    path.write_text(
        """
[[forecast]]
title = "Which lab ships first?"
criteria = "The first open-weight model above 90 on MMLU-Pro."
due = 2027-12-31
kind = "choice"
question = { options = ["DeepSeek", "Alibaba Qwen", "Other"] }

[[forecast.estimate]]
probabilities = [0.5, 0.3, 0.2]

[[forecast]]
title = "How many provinces?"
criteria = "The NDRC list."
due = 2030-12-31
kind = "numeric"
question = { lower = 0, upper = 34, open_upper = true }
estimates = [{ cdf = CDF, by = "bob" }]
""".replace("CDF", json.dumps(list(_cdf(high=0.95)))),
        encoding="utf-8",
    )
    summary = _import(engine, path)
    assert summary.forecasts == 2 and summary.estimates == 2
    with read_session(engine) as s:
        choice, numeric = store.get_forecast(s, 1), store.get_forecast(s, 2)
        assert ledger.verify(s).ok
    assert choice.question == Question("choice", options=("DeepSeek", "Alibaba Qwen", "Other"))
    assert [(e.forecaster, e.values) for e in choice.estimates] == [("alice", (0.5, 0.3, 0.2))]
    assert numeric.question == Question("numeric", lower=0.0, upper=34.0, open_upper=True)
    assert numeric.estimates[0].values == _cdf(high=0.95)


def _bad_records() -> list[tuple[dict[str, Any], str]]:
    """Hand-written JSON records, each with one problem, and the words that name it."""
    base = {"title": "T", "criteria": "C", "due": "2030-12-31"}
    numeric = {**base, "kind": "numeric", "question": NUMERIC.spec()}
    choice = {**base, "kind": "choice", "question": CHOICE.spec()}
    flat = list(_cdf())
    flat[50] = flat[49]
    return [
        ({**base, "kind": "ordinal", "question": {}}, "kind: got 'ordinal'"),
        ({**base, "kind": "numeric"}, "question: missing"),
        ({**base, "kind": "numeric", "question": {"lower": 5, "upper": 1}}, "range:"),
        ({**base, "kind": "numeric", "question": {"lower": 0, "upper": 1, "bins": 3}}, "question:"),
        ({**base, "kind": "choice", "question": {"options": ["A"]}}, "options:"),
        ({**base, "kind": "choice", "question": {"options": ["A, B", "C"]}}, "options:"),
        ({**base, "question": NUMERIC.spec()}, "kind: missing"),
        ({**numeric, "probability": "60%"}, "probability: a numeric question's forecast"),
        ({**numeric, "estimates": [{"cdf": flat}]}, "bins to hold at least"),
        ({**numeric, "estimates": [{"cdf": flat[:100]}]}, "cdf: got '100 values'"),
        ({**numeric, "estimates": [{"cdf": "0.5"}]}, "cdf: got 0.5, expected a list"),
        ({**numeric, "estimates": [{"probability": 0.5}]}, "cdf: missing"),
        ({**choice, "estimates": [{"probabilities": [0.5, 0.3, 0.3, 0.1]}]}, "summing to 1"),
        ({**choice, "estimates": [{"cdf": list(_cdf())}]}, "cdf: not for a choice question"),
        ({**base, "estimates": [{"cdf": list(_cdf())}]}, "cdf: not for a binary question"),
        ({**numeric, "created_at": "2026-01-01T00:00:00Z", "status": "resolved",
          "resolved_at": "2026-02-01T00:00:00Z", "resolution_value": 35}, "value: got"),
        ({**numeric, "status": "resolved", "outcome": "yes", "resolution_value": 3},
         "outcome: not for a numeric question"),
        ({**base, "status": "resolved", "outcome": "yes", "resolution_value": 3},
         "resolution_value: not for a binary question"),
        ({**choice, "status": "resolved", "resolution_value": 4}, "an option's index"),
        ({**choice, "status": "resolved", "resolution_value": "x"}, "resolution_value: got 'x'"),
        ({**choice, "resolution_value": 1, "status": "open"}, "resolution_value: given for an open"),
    ]  # fmt: skip


def test_a_file_with_a_bad_question_imports_nothing_and_names_every_problem(
    engine: Engine, tmp_path: Path, counts: Callable[[], dict[str, int]]
) -> None:
    bad = _bad_records()
    good = {"title": "Fine", "criteria": "C", "due": "2030-12-31", "kind": "choice",
            "question": CHOICE.spec(), "estimates": [{"probabilities": [0.25] * 4}]}  # fmt: skip
    path = tmp_path / "bad.json"
    path.write_text(json.dumps([good, *(record for record, _ in bad)]), "utf-8")
    before = counts()

    with pytest.raises(ImportProblems) as caught:
        _import(engine, path)

    assert counts() == before
    problems = caught.value.problems
    for i, (_, words) in enumerate(bad):
        mine = [p for p in problems if p.startswith(f"forecast {i + 2} ")]
        assert any(words in p for p in mine), (words, mine)
    assert not [p for p in problems if p.startswith("forecast 1 ")]


def test_bad_csv_cells_of_a_question_are_problems(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(
        "title,criteria,due,kind,question,probability,cdf,probabilities\n"
        'A,c,2030,choice,"{""options"": [""x"", ""y""]}",,,"[0.5, 0.5]"\n'
        ',,,,,,,"[0.4, 0.4]"\n'
        "B,c,2030,numeric,{not json,,,\n"
        'C,c,2030,,,0.5,"[0.5]",\n'
        ",,,,,0.5,[0.1],\n",
        encoding="utf-8",
    )
    with pytest.raises(ImportProblems) as caught:
        _import(engine, path)
    problems = caught.value.problems
    assert any(p.startswith("line 2, estimate 2: probabilities:") for p in problems), problems
    assert any(p.startswith("line 4: question: got '{not json'") for p in problems), problems
    assert any(p.startswith("line 5, estimate 2: cdf: not for a binary") for p in problems)


def test_bulk_ledger_entries_of_every_type_are_the_payloads_of_the_rows(
    engine: Engine, tmp_path: Path
) -> None:
    """An import writes each typed forecast's entries through the store's payload functions."""
    _typed_history(engine)
    with read_session(engine) as s:
        entries = [(e.kind, e.payload) for e in _ledger(s)]
    path = tmp_path / "export.csv"
    path.write_text(_export(engine, "csv"), encoding="utf-8")
    _empty(engine)
    with write_session(engine) as s:  # append mode: the import is linked after this forecast
        _add(s, "first", None, datetime(2026, 1, 1), probability=0.5)
    _import(engine, path)
    with read_session(engine) as s:
        imported = _ledger(s)[2:]
        forecasts = {f: store.get_forecast(s, f) for f in range(2, 7)}
    register = [json.loads(e.payload) for e in imported if e.kind == "register"]
    for payload in register:
        f = forecasts[payload["id"]]
        if f.amendments:  # registered with its first criteria
            continue
        tags = [t.name for t in f.tags]
        assert chain.canonical(payload) == chain.canonical(chain.register_payload(f, tags))
    estimates = {e.id: (f.kind, e) for f in forecasts.values() for e in f.estimates}
    for entry in imported:
        if entry.kind == "estimate":
            kind, e = estimates[json.loads(entry.payload)["id"]]
            assert entry.payload == chain.canonical(chain.estimate_payload(e, kind))
    # the same events as the original ledger, but for their ids
    assert sorted(kind for kind, _ in entries) == sorted(e.kind for e in imported)


def _ledger(session: Any) -> list[Any]:
    from predictions.models import LedgerEntry

    return list(session.query(LedgerEntry).order_by(LedgerEntry.seq))


def test_hand_written_forecast_as_typed_on_the_command_line(
    engine: Engine, tmp_path: Path, counts: Callable[[], dict[str, int]]
) -> None:
    """``forecast = "..."`` gives a typed question's first estimate as the CLI reads it
    (quantiles, a named distribution, option probabilities); a TOML date bounds a date question."""
    path = tmp_path / "typed.toml"
    path.write_text(
        """
[[forecast]]
title = "Provinces"
criteria = "Count them."
due = 2030-12-31
kind = "numeric"
question = { lower = 0, upper = 34 }
forecast = "10%=3,50%=8,90%=15"

[[forecast]]
title = "Standard"
criteria = "When."
due = 2032-12-31
kind = "date"
question = { lower = 2026-01-01, upper = 2032-12-31, open_upper = true }
forecast = "normal:2028-06,365"

[[forecast]]
title = "Lab"
criteria = "Which."
due = 2027-12-31
kind = "choice"
question = { options = ["DeepSeek", "Qwen", "Other"] }
forecast = "50,30,20"
""",
        "utf-8",
    )
    _import(engine, path)
    with read_session(engine) as s:
        numeric, date, choice = (store.get_forecast(s, i) for i in (1, 2, 3))
    from predictions.questions import median, parse_forecast

    assert numeric.question is not None and numeric.estimates[0].values is not None
    assert numeric.estimates[0].values == parse_forecast(numeric.question, "10%=3,50%=8,90%=15")
    assert round(median(numeric.question, numeric.estimates[0].values)) == 8
    assert date.question is not None and date.question.open_upper
    assert choice.estimates[0].values == (0.5, 0.3, 0.2)

    bad = tmp_path / "bad.toml"
    bad.write_text(
        """
[[forecast]]
title = "Binary with a typed forecast"
criteria = "x"
due = 2030-12-31
forecast = "10%=3,50%=8,90%=15"

[[forecast]]
title = "Quantiles out of order"
criteria = "x"
due = 2030-12-31
kind = "numeric"
question = { lower = 0, upper = 34 }
forecast = "10%=9,50%=8,90%=15"
""",
        "utf-8",
    )
    before = counts()
    with pytest.raises(ImportProblems) as caught:
        _import(engine, bad)
    problems = caught.value.problems
    assert any("forecast: a numeric, date or choice question's forecast" in p for p in problems)
    assert any("quantiles" in p for p in problems)
    assert counts() == before
