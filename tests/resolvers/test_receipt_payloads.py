"""The sweep's receipt payloads, written without building dicts, are the very bytes of
``canonical`` (the receipts chain's hashes depend on them)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from predictions.chain import canonical, iso
from predictions.receipts import (
    EVIDENCE_COLUMNS,
    _sha,
    evidence_digest,
    evidence_json,
    evidence_payload,
    proposal_json,
    proposal_payload,
)

texts = st.none() | st.text(alphabet=st.characters(codec="utf-8"), max_size=40)
ints = st.none() | st.integers(min_value=-(2**70), max_value=2**70)
times = st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1))

evidence_rows = st.fixed_dictionaries(
    {
        "check_id": ints,
        "forecast_id": st.integers(min_value=1, max_value=2**40),
        "checked_at": times,
        "kind": st.text(min_size=1, max_size=12),
        "resolver_version": st.text(max_size=8),
        "url": texts,
        "http_status": ints,
        "sha256": texts,
        "bytes": ints,
        "unchanged": st.booleans() | st.sampled_from([0, 1]),
        "excerpt": texts,
        "value": texts,
        "verdict": st.sampled_from(["yes", "no", "none", "annul", "error", 'ñ"\\\n\x00']),
        "error": texts,
    }
)


@given(row=evidence_rows, evidence_id=st.integers(min_value=1, max_value=2**50))
def test_receipt_evidence_json_is_canonical(row: dict[str, Any], evidence_id: int) -> None:
    values = [
        iso(row[name]) if name == "checked_at" else bool(row[name]) if name == "unchanged" else
        row[name]
        for name in EVIDENCE_COLUMNS
    ]  # fmt: skip
    assert evidence_digest(row) == _sha(*values)
    assert evidence_json(evidence_id, row) == canonical(evidence_payload(evidence_id, row))


def test_receipt_evidence_digest_with_other_types_falls_back_to_canonical() -> None:
    row: dict[str, Any] = {
        "check_id": 3,
        "forecast_id": 4,
        "checked_at": datetime(2025, 1, 2, 3, 4, 5, 6),
        "kind": "json",
        "value": 1.5,  # not a text: the generic encoder decides
        "verdict": "yes",
    }
    values = [
        3, 4, "2025-01-02T03:04:05.000006Z", "json", None, None, None, None, None, False,
        None, 1.5, "yes", None,
    ]  # fmt: skip
    assert evidence_digest(row) == _sha(*values)
    assert evidence_json(9, row) == canonical(evidence_payload(9, row))


@given(
    ids=st.tuples(st.integers(1, 2**40), st.integers(1, 2**40), ints, ints),
    kind=st.text(max_size=12),
    verdict=st.text(max_size=12),
    created_at=times,
)
def test_receipt_proposal_json_is_canonical(
    ids: tuple[int, int, int | None, int | None], kind: str, verdict: str, created_at: datetime
) -> None:
    pid, fid, cid, eid = ids
    assert proposal_json(pid, fid, cid, eid, kind, verdict, created_at) == canonical(
        proposal_payload(pid, fid, cid, eid, kind, verdict, created_at)
    )
