"""attempt log bounds: repeats counted on one row, old rows folded into a summary

check_in_attempt gets `repeats` (1 for every existing row) and `last_at` (its `at`), and an index on
`nonce` to find the row a repeat counts on. New table check_in_attempt_summary.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("check_in_attempt", schema=None) as batch_op:
        batch_op.add_column(sa.Column("repeats", sa.Integer(), nullable=False, server_default="1"))
        batch_op.add_column(sa.Column("last_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
    op.execute("UPDATE check_in_attempt SET last_at = at")
    with op.batch_alter_table("check_in_attempt", schema=None) as batch_op:
        batch_op.alter_column("last_at", existing_type=sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False)
        batch_op.create_index(batch_op.f("ix_check_in_attempt_last_at"), ["last_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_check_in_attempt_nonce"), ["nonce"], unique=False)
    op.create_table(
        "check_in_attempt_summary",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=True),
        sa.Column("event_key", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        # The app's channels, as a VARCHAR like every enum here (no CHECK: a new channel needs no migration).
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("outcome", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_key", "day", "channel", "action", "outcome", name="uq_attempt_summary"),
    )


def downgrade() -> None:
    op.drop_table("check_in_attempt_summary")
    with op.batch_alter_table("check_in_attempt", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_check_in_attempt_nonce"))
        batch_op.drop_index(batch_op.f("ix_check_in_attempt_last_at"))
        batch_op.drop_column("last_at")
        batch_op.drop_column("repeats")
