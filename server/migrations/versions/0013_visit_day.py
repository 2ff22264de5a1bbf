"""kept aggregates of what counts: visit_day, visit_day_state, visit_day_stale

visit_day holds, per local day, record kind, event and stored place, the visits and roaring bitmaps of the
participants (services/rollup.py); visit_day_state says how far it goes; visit_day_stale lists events whose
check-ins changed after they were rolled up. They start empty: the first report fills them.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "visit_day",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("venue_id", sa.Integer(), nullable=False),
        sa.Column("venue_type", sa.String(length=32), nullable=False),
        sa.Column("commune_id", sa.Integer(), nullable=True),
        sa.Column("village_id", sa.Integer(), nullable=True),
        sa.Column("age_band", sa.String(length=32), nullable=True),
        sa.Column("gender", sa.String(length=32), nullable=True),
        sa.Column("weight", sa.Integer(), nullable=False),
        sa.Column("people", sa.LargeBinary(), nullable=True),
        sa.Column("ages", sa.LargeBinary(), nullable=True),
        sa.Column("genders", sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(["event_id"], ["event.id"]),
        sa.ForeignKeyConstraint(["venue_id"], ["venue.id"]),
        sa.ForeignKeyConstraint(["commune_id"], ["org_unit.id"]),
        sa.ForeignKeyConstraint(["village_id"], ["org_unit.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_visit_day_day", "visit_day", ["day", "venue_type"])
    op.create_index("ix_visit_day_event_id", "visit_day", ["event_id"])
    op.create_table(
        "visit_day_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tz", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("check_in_id", sa.Integer(), nullable=False),
        sa.Column("headcount_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "visit_day_stale",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["event_id"], ["event.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_visit_day_stale_event_id", "visit_day_stale", ["event_id"])


def downgrade() -> None:
    op.drop_index("ix_visit_day_stale_event_id", table_name="visit_day_stale")
    op.drop_table("visit_day_stale")
    op.drop_table("visit_day_state")
    op.drop_index("ix_visit_day_event_id", table_name="visit_day")
    op.drop_index("ix_visit_day_day", table_name="visit_day")
    op.drop_table("visit_day")
