"""The Alembic revision this version of the code expects (stdlib only: read on every start).

A test keeps it equal to the head of ``predictions/migrations``.
"""

__all__ = ["SCHEMA_REVISION"]

SCHEMA_REVISION = "0005_accounts"
