"""places history: unit versions linked to what they were made from, venue placements and past names,
venue closing dates, saved reporting groups

New tables unit_link, venue_placement, venue_name, report_group and report_group_member; venue gains
closed_on. Every existing venue gets one open placement at its current unit with no start date (it has
always been there, as far as we know), so "where was this venue on day D" has an answer from the start.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    text = sqlmodel.sql.sqltypes.AutoString
    when = sqlmodel.sql.sqltypes.UTCDateTime
    link_kind = sa.Enum("renamed", "moved", "merged", "split", name="linkkind", native_enum=False, length=32)
    op.create_table(
        "unit_link",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("from_unit_id", sa.Integer(), nullable=False),
        sa.Column("kind", link_kind, nullable=False),
        sa.Column("effective_on", sa.Date(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", when(), nullable=False),
        sa.ForeignKeyConstraint(["unit_id"], ["org_unit.id"]),
        sa.ForeignKeyConstraint(["from_unit_id"], ["org_unit.id"]),
        sa.ForeignKeyConstraint(["created_by_id"], ["staff.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("unit_link", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_unit_link_unit_id"), ["unit_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_unit_link_from_unit_id"), ["from_unit_id"], unique=False)

    op.create_table(
        "venue_placement",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("venue_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=True),
        sa.Column("valid_to", sa.Date(), nullable=True),
        sa.Column("created_at", when(), nullable=False),
        sa.ForeignKeyConstraint(["venue_id"], ["venue.id"]),
        sa.ForeignKeyConstraint(["unit_id"], ["org_unit.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("venue_placement", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_venue_placement_venue_id"), ["venue_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_venue_placement_unit_id"), ["unit_id"], unique=False)

    op.create_table(
        "venue_name",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("venue_id", sa.Integer(), nullable=False),
        sa.Column("name", text(length=200), nullable=False),
        sa.Column("valid_to", sa.Date(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", when(), nullable=False),
        sa.ForeignKeyConstraint(["venue_id"], ["venue.id"]),
        sa.ForeignKeyConstraint(["created_by_id"], ["staff.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("venue_name", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_venue_name_venue_id"), ["venue_id"], unique=False)

    op.create_table(
        "report_group",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", text(length=200), nullable=False),
        sa.Column("description", text(length=1000), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", when(), nullable=False),
        sa.ForeignKeyConstraint(["created_by_id"], ["staff.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "report_group_member",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["group_id"], ["report_group.id"]),
        sa.ForeignKeyConstraint(["unit_id"], ["org_unit.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("group_id", "unit_id", name="uq_report_group_member"),
    )
    with op.batch_alter_table("report_group_member", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_report_group_member_group_id"), ["group_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_report_group_member_unit_id"), ["unit_id"], unique=False)

    with op.batch_alter_table("venue", schema=None) as batch_op:
        batch_op.add_column(sa.Column("closed_on", sa.Date(), nullable=True))

    # One open placement per existing venue, at its current unit, with no start date.
    op.execute(
        "INSERT INTO venue_placement (venue_id, unit_id, valid_from, valid_to, created_at) "
        "SELECT id, unit_id, NULL, NULL, created_at FROM venue"
    )


def downgrade() -> None:
    with op.batch_alter_table("venue", schema=None) as batch_op:
        batch_op.drop_column("closed_on")
    op.drop_table("report_group_member")
    op.drop_table("report_group")
    op.drop_table("venue_name")
    op.drop_table("venue_placement")
    op.drop_table("unit_link")
