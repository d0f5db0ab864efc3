"""the time zone a date-only due date was entered in

Revision ID: 0002_due_zone
Revises: 0001_initial
Create Date: 2026-12-06 23:00:00

``forecast.due_zone`` holds the IANA name of the zone whose day a date-only due date ends
(``2030-12-31`` typed with ``timezone = "UTC"``), so that it is still shown as that date after the
user's ``timezone`` changes. NULL for a due typed with its time, and for forecasts registered
before this revision (shown as before: a date when it ends a day in the reader's zone).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_due_zone"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("forecast", schema=None) as batch_op:
        batch_op.add_column(sa.Column("due_zone", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("forecast", schema=None) as batch_op:
        batch_op.drop_column("due_zone")
