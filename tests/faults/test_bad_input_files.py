"""Bad import files, generated with hypothesis: the tracker's TOML, JSON and CSV, PredictionBook
and ForecastBench, with fields replaced by wrong types, huge strings, control characters, RTL and
CJK text, dates out of range and duplicate ids, and whole files corrupted byte by byte.

``tracker import`` must either import the file cleanly or refuse it whole: exit 2, an
``Error: ...`` first line, then one indented line per problem, never a traceback or an internal
error; a refused file leaves every table's row count as it was, and ``tracker verify`` passes
after every example.
"""

from __future__ import annotations

import csv
import io
import json
import re
import tempfile
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import CliInvoke

SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
PIECES = [
    "", " ", "\x00", "\x1b[2J", "\x07", "\x7f", "\u202e", "\u200f", "\ufeff", "\u2028",
    "مرحبا بالعالم", "שלום", "人工智能失控风险", "国家标准", "🙂", "e\u0301", "\\", '"', "'",
    "\n", "\r", "=", ",", "[[forecast]]", "0001-01-01", "9999-12-31T23:59:59Z", "yes", "75%",
]  # fmt: skip
TEXT = st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20),
    st.lists(st.sampled_from(PIECES), max_size=4).map("".join),
    st.builds(lambda ch, n: ch * n, st.sampled_from(["x", "人", "\u202e"]), st.integers(1, 60_000)),
)
DATE_TEXT = st.sampled_from(
    [
        "0000-01-01", "0001-01-01", "1900-02-29", "2030-02-30", "9999-12-31", "10000-01-01",
        "-0001-01-01", "2030-13-01", "2030", "2030-06", "2030-06-01T25:61:00Z",
        "2030-06-01T12:00:00+25:00", "1970-01-01T00:00:00Z", "+90d", "yesterday",
        "2025-10-16T00:00:00+00:00", "2008-06-20 04:37:13+00:00",
    ]
)  # fmt: skip
SCALAR = st.one_of(
    TEXT,
    DATE_TEXT,
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.booleans(),
)
VALUE = st.one_of(SCALAR, st.lists(SCALAR, max_size=3), st.dictionaries(TEXT, SCALAR, max_size=2))
JSON_VALUE = st.one_of(st.none(), VALUE)

_RAW_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f\x85\u2028\u2029]")
NATIVE = {
    "ref": "example:bad/1",
    "title": "Qwen4 is released as open weights",
    "criteria": "Resolves YES if Alibaba publishes the weights.",
    "due": "2030-12-31",
    "probability": "60%",
    "tags": ["ai", "china"],
    "source": "https://example.org/qwen",
    "note": "十分可能",
}
PB = {
    "number": 2,
    "event": "ASX will finish above 5440",
    "outcome": "wrong",
    "user": "Frank",
    "time_created": "2008-06-20 04:37:13+00:00",
    "time_known": "2008-06-23 12:00:00+00:00",
    "responses": [
        {"user": "Frank", "time": "2008-06-20 04:37:13+00:00", "actions": {"credence": 60}},
        {"user": "Anon", "time": "2008-08-01 09:18:01+00:00", "actions": {"outcome": "wrong"}},
    ],
}
FB = {
    "id": "K8qazyZJ3tXyuLlzkkyk",
    "source": "manifold",
    "question": "Will San Diego FC make the playoffs in 2025?",
    "resolution_criteria": "Resolves to the outcome of the market.",
    "background": "",
    "market_info_open_datetime": "2023-11-16T18:37:14+00:00",
    "market_info_close_datetime": "2026-01-01T04:59:00+00:00",
    "market_info_resolution_criteria": "N/A",
    "url": "https://manifold.markets/x/will-san-diego-fc-make-the-playoffs",
    "freeze_datetime": "2025-10-16T00:00:00+00:00",
    "freeze_datetime_value": "0.979920031255855",
    "freeze_datetime_value_explanation": "The market value.",
    "resolution_dates": "N/A",
}


@st.composite
def _records(
    draw: st.DrawFn, base: dict[str, Any], values: st.SearchStrategy[Any], ids: list[Any]
) -> list[dict[str, Any]]:
    """1-4 copies of ``base``, each with some fields replaced, removed or added; ids drawn from
    a small set so duplicates happen."""
    out = []
    id_key = next(k for k in ("ref", "number", "id") if k in base)
    for _ in range(draw(st.integers(1, 4))):
        record = dict(base)
        record[id_key] = draw(st.sampled_from(ids))
        for key in list(record):
            action = draw(st.sampled_from(["keep", "keep", "keep", "replace", "drop"]))
            if action == "replace":
                record[key] = draw(values)
            elif action == "drop":
                del record[key]
        if draw(st.booleans()):
            record[draw(TEXT)] = draw(values)
        out.append(record)
    return out


def _toml_safe(value: Any) -> Any:
    if value is None:
        return "null"
    if isinstance(value, int) and not -(2**63) <= value < 2**63:
        return str(value)
    if isinstance(value, list):
        return [_toml_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _toml_safe(v) for k, v in value.items()}
    return value


def _toml(records: list[dict[str, Any]]) -> bytes:
    return tomli_w.dumps({"forecast": [_toml_safe(r) for r in records]}).encode("utf-8")


def _csv(records: list[dict[str, Any]]) -> bytes:
    columns = list(dict.fromkeys(k for r in records for k in r))
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    for r in records:
        writer.writerow([_cell(r.get(c)) for c in columns])
    return buffer.getvalue().encode("utf-8", "surrogatepass")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ",".join(map(str, value))
    return str(value)


def _json(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False).encode("utf-8", "surrogatepass")


def _seed(cli: CliInvoke, counts: Callable[[], dict[str, int]]) -> None:
    if counts()["forecast"]:
        return
    result = cli("add", "Already here", "-p", "40%", "--due", "+1y", "--criteria", "c")
    assert result.exit_code == 0, result.output


def _import_holds(
    cli: CliInvoke, counts: Callable[[], dict[str, int]], content: bytes, name: str, fmt: str | None
) -> str:
    """Import ``content``; assert the all-or-nothing contract; return "imported" or "refused"."""
    _seed(cli, counts)
    before = counts()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(content)
        args = ["import", str(path)] + (["--format", fmt] if fmt else [])
        result = cli(*args)
    assert "Traceback" not in result.output
    assert "internal error" not in result.output, result.output
    assert result.exit_code in (0, 2), (result.exit_code, result.output)
    if result.exit_code == 2:
        assert not _RAW_CONTROL.search(result.stderr), result.stderr  # no escape injection
        lines = result.stderr.split("\n")[:-1]
        assert lines and lines[0].startswith("Error: "), result.stderr
        if lines[0].endswith(", nothing imported"):
            count = int(lines[0].rsplit(": ", 1)[1].split()[0])
            assert len(lines) == count + 1 and all(line.startswith("  ") for line in lines[1:])
        else:
            assert len(lines) == 1, result.stderr
        assert counts() == before
    verified = cli("verify")
    assert verified.exit_code == 0 and verified.stdout.startswith("OK: "), verified.output
    return "refused" if result.exit_code else "imported"


@SETTINGS
@given(records=_records(NATIVE, JSON_VALUE, ["example:bad/1", "example:bad/2", None]))
def test_bad_input_files_native_json(
    cli: CliInvoke, counts: Callable[[], dict[str, int]], records: list[dict[str, Any]]
) -> None:
    _import_holds(cli, counts, _json({"forecasts": records}), "bad.json", "json")


@SETTINGS
@given(
    records=_records(
        NATIVE,
        st.one_of(VALUE, st.dates(min_value=date(1, 1, 1)), st.datetimes()),
        ["example:bad/1", "example:bad/2"],
    )
)
def test_bad_input_files_native_toml(
    cli: CliInvoke, counts: Callable[[], dict[str, int]], records: list[dict[str, Any]]
) -> None:
    _import_holds(cli, counts, _toml(records), "bad.toml", "toml")


@SETTINGS
@given(records=_records(NATIVE, st.one_of(TEXT, DATE_TEXT), ["example:bad/1", "example:bad/2"]))
def test_bad_input_files_native_csv(
    cli: CliInvoke, counts: Callable[[], dict[str, int]], records: list[dict[str, Any]]
) -> None:
    _import_holds(cli, counts, _csv(records), "bad.csv", "csv")


@SETTINGS
@given(records=_records(PB, JSON_VALUE, [2, 2, 3, -1, "2", 2**70]))
def test_bad_input_files_predictionbook(
    cli: CliInvoke, counts: Callable[[], dict[str, int]], records: list[dict[str, Any]]
) -> None:
    _import_holds(cli, counts, _json(records), "pb.json", "predictionbook")


@SETTINGS
@given(
    records=_records(FB, JSON_VALUE, ["K8qazyZJ3tXyuLlzkkyk", "abc", 7]),
    due=st.one_of(DATE_TEXT, JSON_VALUE),
)
def test_bad_input_files_forecastbench(
    cli: CliInvoke, counts: Callable[[], dict[str, int]], records: list[dict[str, Any]], due: Any
) -> None:
    data = {"forecast_due_date": due, "question_set": "2025-10-26-llm.json", "questions": records}
    _import_holds(cli, counts, _json(data), "questions.json", "forecastbench")


VALID = {
    "bad.json": _json({"forecasts": [NATIVE, {**NATIVE, "ref": "example:bad/2"}]}),
    "bad.toml": _toml([NATIVE, {**NATIVE, "ref": "example:bad/2"}]),
    "bad.csv": _csv([NATIVE, {**NATIVE, "ref": "example:bad/2"}]),
    "pb.json": _json([PB, {**PB, "number": 3}]),
    "questions.json": _json(
        {
            "forecast_due_date": "2025-10-26",
            "question_set": "2025-10-26-llm.json",
            "questions": [FB],
        }
    ),
}


@SETTINGS
@given(
    name=st.sampled_from(sorted(VALID)),
    edits=st.lists(
        st.tuples(
            st.sampled_from(["flip", "insert", "delete", "truncate"]),
            st.floats(0, 1, exclude_max=True),
            st.integers(0, 255),
        ),
        min_size=1,
        max_size=4,
    ),
    detect=st.booleans(),
)
def test_bad_input_files_corrupted_bytes(
    cli: CliInvoke,
    counts: Callable[[], dict[str, int]],
    name: str,
    edits: list[tuple[str, float, int]],
    detect: bool,
) -> None:
    data = bytearray(VALID[name])
    for op, where, byte in edits:
        at = int(where * len(data))
        if op == "flip" and data:
            data[at] = byte
        elif op == "insert":
            data[at:at] = bytes([byte])
        elif op == "delete" and data:
            del data[at]
        elif op == "truncate":
            del data[at:]
    fmt = None if detect else {"bad.json": "json", "bad.toml": "toml", "bad.csv": "csv",
                               "pb.json": "predictionbook", "questions.json": "forecastbench"}[name]  # fmt: skip
    _import_holds(cli, counts, bytes(data), name, fmt)


@pytest.mark.parametrize("name", sorted(VALID))
def test_bad_input_files_valid_bases_import(
    cli: CliInvoke, counts: Callable[[], dict[str, int]], name: str
) -> None:
    """The uncorrupted files import, so the corruption tests start from something that works."""
    assert _import_holds(cli, counts, VALID[name], name, None) == "imported"


def test_bad_input_files_one_line_per_problem(
    cli: CliInvoke, counts: Callable[[], dict[str, int]]
) -> None:
    records = [
        {**NATIVE, "ref": "example:bad/1", "probability": "150%"},
        {**NATIVE, "ref": "example:bad/2", "due": "10000-01-01"},
        {**NATIVE, "ref": "example:bad/2", "title": "x\x00y"},
        {**NATIVE, "ref": "example:bad/4", "title": "人" * 600},
    ]
    _seed(cli, counts)
    before = counts()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "four.json"
        path.write_bytes(_json({"forecasts": records}))
        result = cli("import", str(path))
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert lines[0] == f"Error: {path}: 5 problems, nothing imported", result.stderr
    assert len(lines) == 6
    assert "probability: got '150%'" in lines[1] and "due: got '10000-01-01'" in lines[2]
    assert "title: got 'x\\x00y'" in lines[3] and "ref 'example:bad/2' appears twice" in lines[4]
    assert "title" in lines[5] and "at most 500 characters" in lines[5]
    assert counts() == before


def test_bad_input_files_unknown_csv_column_is_shown_escaped(
    cli: CliInvoke, counts: Callable[[], dict[str, int]], tmp_path: Path
) -> None:
    path = tmp_path / "escape.csv"
    path.write_bytes(b"title,criteria,due,probability,\x1b[2J\x1e\n t,c,2030,50%,x\n")
    before = counts()
    result = cli("import", str(path))
    assert result.exit_code == 2
    assert result.stderr.split("\n") == [
        f"Error: {path}: 1 problem, nothing imported",
        "  line 1: unknown column(s) '\\x1b[2J'",
        "",
    ]
    assert counts() == before


def test_bad_input_files_forecastbench_missing_field_and_odd_id_are_named_plainly(
    cli: CliInvoke, counts: Callable[[], dict[str, int]], tmp_path: Path
) -> None:
    question = {k: v for k, v in FB.items() if k != "source"}
    data = {"question_set": "x.json", "questions": [{**question, "id": "\x1b[2J"}]}
    path = tmp_path / "questions.json"
    path.write_bytes(_json(data))
    result = cli("import", str(path))
    assert result.exit_code == 2
    assert result.stderr.split("\n")[1] == "  question 1 ('\\x1b[2J'): source: missing"


def test_bad_input_files_predictionbook_missing_field_is_named(
    cli: CliInvoke, counts: Callable[[], dict[str, int]], tmp_path: Path
) -> None:
    path = tmp_path / "pb.json"
    path.write_bytes(_json([{k: v for k, v in PB.items() if k != "outcome"}]))
    result = cli("import", str(path))
    assert result.exit_code == 2
    assert result.stderr.split("\n")[1] == "  question 1 (number 2): outcome: missing"
