"""indicator targets: the office's targets by indicator, year and unit (the plan's own apply where none)

New table indicator_target. The reporting cut-off and the "regularly active" rule live in meta.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "indicator_target",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("indicator", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=True),
        sa.Column("unit_key", sa.Integer(), nullable=False),
        sa.Column("low", sa.Float(), nullable=True),
        sa.Column("high", sa.Float(), nullable=True),
        sa.Column("updated_by_id", sa.Integer(), nullable=True),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["unit_id"], ["org_unit.id"]),
        sa.ForeignKeyConstraint(["updated_by_id"], ["staff.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("indicator", "year", "unit_key", name="uq_indicator_target"),
    )


def downgrade() -> None:
    op.drop_table("indicator_target")
