"""Alembic migrations of the tracker's schema (script location ``predictions:migrations``)."""
