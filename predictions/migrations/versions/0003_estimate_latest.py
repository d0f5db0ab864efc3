"""an index to read each forecaster's latest estimate

Revision ID: 0003_estimate_latest
Revises: 0002_due_zone
Create Date: 2026-12-06 23:30:00

``ix_estimate_latest`` on ``estimate (forecast_id, forecaster, made_at, id)``: ``list`` reads each
forecaster's latest estimate on a page of forecasts (yours beside the others' and the markets')
from this index alone, however long a market's price history grows.
"""

from __future__ import annotations

from alembic import op

revision = "0003_estimate_latest"
down_revision = "0002_due_zone"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("estimate", schema=None) as batch_op:
        batch_op.create_index(
            "ix_estimate_latest", ["forecast_id", "forecaster", "made_at", "id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("estimate", schema=None) as batch_op:
        batch_op.drop_index("ix_estimate_latest")
