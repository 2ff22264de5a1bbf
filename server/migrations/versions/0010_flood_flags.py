"""flood flags: where a new person's check-in came from, whether it was over its budget, and exclusions

New table check_in_exclusion (who took which suspicious check-ins out of the counts, and who undid it);
check_in gains source, suspicious and excluded_by_id, with an index for counting a source's new people
at an event in a minute (services/flood.py). Existing check-ins are not suspicious and count.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    text = sqlmodel.sql.sqltypes.AutoString
    when = sqlmodel.sql.sqltypes.UTCDateTime
    op.create_table(
        "check_in_exclusion",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("source", text(length=16), nullable=True),
        sa.Column("minute", when(), nullable=True),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("excluded_by_id", sa.Integer(), nullable=False),
        sa.Column("excluded_at", when(), nullable=False),
        sa.Column("undone_by_id", sa.Integer(), nullable=True),
        sa.Column("undone_at", when(), nullable=True),
        sa.ForeignKeyConstraint(["event_id"], ["event.id"]),
        sa.ForeignKeyConstraint(["excluded_by_id"], ["staff.id"]),
        sa.ForeignKeyConstraint(["undone_by_id"], ["staff.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("check_in_exclusion", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_check_in_exclusion_event_id"), ["event_id"], unique=False)

    with op.batch_alter_table("check_in", schema=None) as batch_op:
        batch_op.add_column(sa.Column("source", text(length=16), nullable=True))
        batch_op.add_column(sa.Column("suspicious", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("excluded_by_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            "fk_check_in_excluded_by_id", "check_in_exclusion", ["excluded_by_id"], ["id"]
        )
        batch_op.create_index(batch_op.f("ix_check_in_excluded_by_id"), ["excluded_by_id"], unique=False)
        batch_op.create_index("ix_check_in_flood", ["event_id", "source", "received_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("check_in", schema=None) as batch_op:
        batch_op.drop_index("ix_check_in_flood")
        batch_op.drop_index(batch_op.f("ix_check_in_excluded_by_id"))
        batch_op.drop_constraint("fk_check_in_excluded_by_id", type_="foreignkey")
        batch_op.drop_column("excluded_by_id")
        batch_op.drop_column("suspicious")
        batch_op.drop_column("source")
    with op.batch_alter_table("check_in_exclusion", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_check_in_exclusion_event_id"))
    op.drop_table("check_in_exclusion")
