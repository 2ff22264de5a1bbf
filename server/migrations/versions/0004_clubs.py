"""clubs: clubs, talent classes and interest groups with a weekly schedule and members; sessions are events

New tables club and club_member; event gains club_id (indexed) and club_slot (the schedule slot a session
was generated for), unique together. Existing events are untouched (both columns stay NULL).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    text = sqlmodel.sql.sqltypes.AutoString
    when = sqlmodel.sql.sqltypes.UTCDateTime
    club_type = sa.Enum(
        "club", "talent_class", "interest_group", name="clubtype", native_enum=False, length=32
    )
    op.create_table(
        "club",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("venue_id", sa.Integer(), nullable=False),
        sa.Column("name", text(length=200), nullable=False),
        sa.Column("type", club_type, nullable=False),
        sa.Column("leader_name", text(length=200), nullable=False),
        sa.Column("description", text(length=2000), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("weekdays", text(length=16), nullable=False),
        sa.Column("start_time", sa.Time(), nullable=True),
        sa.Column("duration_minutes", sa.Integer(), nullable=False),
        sa.Column("schedule_from", sa.Date(), nullable=True),
        sa.Column("schedule_until", sa.Date(), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", when(), nullable=False),
        sa.Column("updated_at", when(), nullable=False),
        sa.ForeignKeyConstraint(["venue_id"], ["venue.id"]),
        sa.ForeignKeyConstraint(["created_by_id"], ["staff.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("club", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_club_venue_id"), ["venue_id"], unique=False)

    op.create_table(
        "club_member",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("club_id", sa.Integer(), nullable=False),
        sa.Column("participant_id", sa.Integer(), nullable=False),
        sa.Column("joined_at", when(), nullable=False),
        sa.Column("added_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["club_id"], ["club.id"]),
        sa.ForeignKeyConstraint(["participant_id"], ["participant.id"]),
        sa.ForeignKeyConstraint(["added_by_id"], ["staff.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("club_id", "participant_id", name="uq_club_member"),
    )
    with op.batch_alter_table("club_member", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_club_member_club_id"), ["club_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_club_member_participant_id"), ["participant_id"], unique=False)

    with op.batch_alter_table("event", schema=None) as batch_op:
        batch_op.add_column(sa.Column("club_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("club_slot", when(), nullable=True))
        batch_op.create_foreign_key("fk_event_club_id", "club", ["club_id"], ["id"])
        batch_op.create_index(batch_op.f("ix_event_club_id"), ["club_id"], unique=False)
        batch_op.create_unique_constraint("uq_event_club_slot", ["club_id", "club_slot"])


def downgrade() -> None:
    with op.batch_alter_table("event", schema=None) as batch_op:
        batch_op.drop_constraint("uq_event_club_slot", type_="unique")
        batch_op.drop_index(batch_op.f("ix_event_club_id"))
        batch_op.drop_constraint("fk_event_club_id", type_="foreignkey")
        batch_op.drop_column("club_slot")
        batch_op.drop_column("club_id")
    op.drop_table("club_member")
    op.drop_table("club")
