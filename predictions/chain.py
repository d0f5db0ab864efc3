"""The hash chain's pure parts: canonical JSON, entry hashes and event payloads (stdlib only).

Kept free of SQLAlchemy so that the fast SQLite path of ``tracker add`` (see
:mod:`predictions.lite`) writes exactly the entries the store writes. Each entry's hash is

    sha256(prev_hash | seq | at | kind | canonical JSON payload)

    >>> canonical({"b": 1, "a": "é"})
    '{"a":"é","b":1}'
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

__all__ = [
    "GENESIS",
    "ChainBuilder",
    "ChainHead",
    "canonical",
    "chain_hash",
    "estimate_json",
    "estimate_payload",
    "iso",
    "register_json",
    "register_payload",
]

GENESIS = "0" * 64


@functools.lru_cache(maxsize=4096)
def iso(value: datetime | None) -> str | None:
    """Canonical text of a naive-UTC datetime, to the microsecond, with a ``Z``.

    Cached: an entry's time appears in its payload and again in its hash, and a bulk import
    writes hundreds of thousands of entries.
    """
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.replace(tzinfo=None)
    return value.isoformat(timespec="microseconds") + "Z"


# One encoder for every entry: json.dumps with these options would build a new one per call,
# which costs more than the encoding itself on a bulk import.
_CANONICAL = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def canonical(payload: dict[str, Any]) -> str:
    """Canonical JSON: sorted keys, compact separators, UTF-8 kept as is, no NaN."""
    return _CANONICAL.encode(payload)


# The string encoder _CANONICAL uses for every string (the C one, as ensure_ascii=False picks it).
_string = json.encoder.encode_basestring


def _text_or_null(value: str | None) -> str:
    return "null" if value is None else _string(value)


def estimate_json(id: int, forecast: int, by: str, p: float, at: str, note: str | None) -> str:
    """``canonical(estimate_payload(...))`` for an estimate whose time ``at`` is already :func:`iso` text.

    The bulk import's hot path: the same bytes as :func:`canonical` (its keys in sorted order, the
    same string, number and null encodings), written without building the dict. Values of any
    other type than the expected ones go through :func:`canonical` itself.
    """
    if type(id) is int and type(forecast) is int and type(p) is float and math.isfinite(p):
        # sorted keys: at, by, forecast, id, note, p
        return (
            f'{{"at":{_string(at)},"by":{_string(by)},"forecast":{forecast},"id":{id},'
            f'"note":{_text_or_null(note)},"p":{p!r}}}'
        )
    return canonical({"id": id, "forecast": forecast, "by": by, "p": p, "at": at, "note": note})


def register_json(
    id: int,
    title: str,
    criteria: str,
    due: str,
    created_at: str,
    author: str,
    source: str | None,
    ref: str | None,
    tags: list[str],
) -> str:
    """``canonical(register_payload(...))`` with times already :func:`iso` text and tags sorted.

    Like :func:`estimate_json`, the same bytes as :func:`canonical` without building the dict.
    """
    if type(id) is int:
        # sorted keys: author, created_at, criteria, due, id, ref, source, tags, title
        return (
            f'{{"author":{_string(author)},"created_at":{_string(created_at)},'
            f'"criteria":{_string(criteria)},"due":{_string(due)},"id":{id},'
            f'"ref":{_text_or_null(ref)},"source":{_text_or_null(source)},'
            f'"tags":[{",".join([_string(t) for t in tags])}],"title":{_string(title)}}}'
        )
    return canonical(
        {
            "id": id,
            "title": title,
            "criteria": criteria,
            "due": due,
            "created_at": created_at,
            "author": author,
            "source": source,
            "ref": ref,
            "tags": tags,
        }
    )


def chain_hash(prev_hash: str, seq: int, at: datetime, kind: str, payload: str) -> str:
    """The hash of one entry, covering the previous hash and everything the entry says."""
    material = f"{prev_hash}|{seq}|{iso(at)}|{kind}|{payload}"
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


_sha256 = hashlib.sha256


@dataclass(frozen=True)
class ChainHead:
    """The last entry of the chain: how many entries and the hash of the last one."""

    seq: int
    hash: str


class ChainBuilder:
    """Builds ledger rows in memory for a bulk import, continuing from a given head."""

    def __init__(self, start: ChainHead) -> None:
        self.seq = start.seq
        self.hash = start.hash

    def row(
        self, kind: str, payload: dict[str, Any], forecast_id: int | None, at: datetime
    ) -> dict[str, Any]:
        """The next ledger row as a dict ready for an executemany insert."""
        body = canonical(payload)
        self.seq += 1
        digest = chain_hash(self.hash, self.seq, at, kind, body)
        row = {
            "seq": self.seq,
            "at": at,
            "kind": kind,
            "forecast_id": forecast_id,
            "payload": body,
            "prev_hash": self.hash,
            "hash": digest,
        }
        self.hash = digest
        return row

    def link(self, kind: str, at: str, body: str) -> tuple[int, str, str]:
        """Chain the next entry given its :func:`iso` time text and canonical JSON ``body``.

        Returns ``(seq, prev_hash, hash)``: :meth:`row` without the dict, for the bulk import.
        """
        prev = self.hash
        seq = self.seq = self.seq + 1
        self.hash = _sha256(f"{prev}|{seq}|{at}|{kind}|{body}".encode()).hexdigest()
        return seq, prev, self.hash


class _ForecastLike(Protocol):
    id: int
    title: str
    criteria: str
    due: datetime
    created_at: datetime
    author: str
    source: str | None
    ref: str | None


class _EstimateLike(Protocol):
    id: int
    forecast_id: int
    forecaster: str
    probability: float
    made_at: datetime
    note: str | None


def register_payload(f: _ForecastLike, tags: Iterable[str]) -> dict[str, Any]:
    """Payload of a registration: everything that is fixed about a forecast."""
    return {
        "id": f.id,
        "title": f.title,
        "criteria": f.criteria,
        "due": iso(f.due),
        "created_at": iso(f.created_at),
        "author": f.author,
        "source": f.source,
        "ref": f.ref,
        "tags": sorted(tags),
    }


def estimate_payload(e: _EstimateLike) -> dict[str, Any]:
    """Payload of an estimate."""
    return {
        "id": e.id,
        "forecast": e.forecast_id,
        "by": e.forecaster,
        "p": e.probability,
        "at": iso(e.made_at),
        "note": e.note,
    }
