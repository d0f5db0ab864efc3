"""numeric, date and multiple-choice questions

Revision ID: 0004_question_types
Revises: 0003_estimate_latest
Create Date: 2026-12-07 01:00:00

``forecast.kind`` (binary, numeric, date or choice; every forecast before this revision is
binary), ``forecast.question`` (the spec of a non-binary question, as JSON) and
``forecast.resolution_value`` (a non-binary question's resolution). ``estimate.probability``
becomes nullable (a non-binary estimate has none) and ``estimate.distribution`` holds a non-binary
estimate's values (:func:`predictions.questions.encode`). ``ix_forecast_status_kind`` lets the
report read each type's resolved questions apart.

On SQLite only ``estimate`` is copied (to drop its NOT NULL); ``forecast`` gains its columns in
place, so its children (tags, estimates, amendments, checks) are never cascaded away.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_question_types"
down_revision = "0003_estimate_latest"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("forecast", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("kind", sa.String(length=16), nullable=False, server_default="binary")
        )
        batch_op.add_column(sa.Column("question", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("resolution_value", sa.Float(), nullable=True))
    # the report reads each type's resolved questions apart (reports.scored)
    op.create_index("ix_forecast_status_kind", "forecast", ["status", "kind"], unique=False)
    with op.batch_alter_table("estimate", schema=None) as batch_op:
        batch_op.alter_column("probability", existing_type=sa.Float(), nullable=True)
        batch_op.add_column(sa.Column("distribution", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    """Back to binary only: refused while a non-binary forecast exists (its estimates have no
    probability to keep)."""
    bind = op.get_bind()
    if bind.execute(sa.text("SELECT 1 FROM forecast WHERE kind <> 'binary' LIMIT 1")).first():
        raise RuntimeError("the database holds non-binary forecasts: no downgrade below 0004")
    with op.batch_alter_table("estimate", schema=None) as batch_op:
        batch_op.drop_column("distribution")
        batch_op.alter_column("probability", existing_type=sa.Float(), nullable=False)
    op.drop_index("ix_forecast_status_kind", table_name="forecast")
    # Not a copy of the table (batch mode's way on SQLite): dropping the old forecast table would
    # delete its tags, estimates and amendments (ON DELETE CASCADE). SQLite drops a column itself.
    with op.batch_alter_table("forecast", schema=None, recreate="never") as batch_op:
        batch_op.drop_column("resolution_value")
        batch_op.drop_column("question")
        batch_op.drop_column("kind")
