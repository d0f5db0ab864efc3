"""Fixtures of the service's tests: the app over the test database, and a client."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from service.app import Settings, create_app


@pytest.fixture
def app(db_url: str) -> Iterator[FastAPI]:
    """The service over the test database (SQLite file, or PostgreSQL)."""
    application = create_app(db_url, Settings())
    yield application
    application.state.store.engine.dispose()


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    """A browser-like client (keeps cookies; follows no redirect unless asked)."""
    with TestClient(app, follow_redirects=False) as c:
        yield c


@pytest.fixture
def free_port() -> int:
    """A TCP port free on loopback just now."""
    from tests.service.support import free_port as pick

    return pick()
