"""library figures: monthly figures entered by hand, book rotations, school-library years, the library
standard, and their edit history

New tables library_figure (unique venue, year, month, metric), book_rotation, school_library_year (unique
venue, year), library_standard (one row per venue that meets TT 16/2022/TT-BGDĐT) and library_change.
Existing tables are untouched.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    text = sqlmodel.sql.sqltypes.AutoString
    when = sqlmodel.sql.sqltypes.UTCDateTime
    metric = sa.Enum(
        "titles_added",
        "copies_added",
        "materials_served",
        "desk_visits",
        name="librarymetric",
        native_enum=False,
        length=32,
    )
    source = sa.Enum("form", "import", name="changesource", native_enum=False, length=32)
    op.create_table(
        "library_figure",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("venue_id", sa.Integer(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("month", sa.Integer(), nullable=False),
        sa.Column("metric", metric, nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.Column("updated_at", when(), nullable=False),
        sa.Column("updated_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["venue_id"], ["venue.id"]),
        sa.ForeignKeyConstraint(["updated_by_id"], ["staff.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("venue_id", "year", "month", "metric", name="uq_library_figure"),
    )
    with op.batch_alter_table("library_figure", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_library_figure_venue_id"), ["venue_id"], unique=False)

    op.create_table(
        "book_rotation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("from_venue_id", sa.Integer(), nullable=False),
        sa.Column("to_venue_id", sa.Integer(), nullable=False),
        sa.Column("copies", sa.Integer(), nullable=False),
        sa.Column("sent_on", sa.Date(), nullable=False),
        sa.Column("note", text(length=300), nullable=False),
        sa.Column("recorded_by_id", sa.Integer(), nullable=True),
        sa.Column("recorded_at", when(), nullable=False),
        sa.ForeignKeyConstraint(["from_venue_id"], ["venue.id"]),
        sa.ForeignKeyConstraint(["to_venue_id"], ["venue.id"]),
        sa.ForeignKeyConstraint(["recorded_by_id"], ["staff.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("book_rotation", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_book_rotation_from_venue_id"), ["from_venue_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_book_rotation_to_venue_id"), ["to_venue_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_book_rotation_sent_on"), ["sent_on"], unique=False)

    op.create_table(
        "school_library_year",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("venue_id", sa.Integer(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("offers_lifelong_learning", sa.Boolean(), nullable=False),
        sa.Column("updated_at", when(), nullable=False),
        sa.Column("updated_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["venue_id"], ["venue.id"]),
        sa.ForeignKeyConstraint(["updated_by_id"], ["staff.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("venue_id", "year", name="uq_school_library_year"),
    )
    with op.batch_alter_table("school_library_year", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_school_library_year_venue_id"), ["venue_id"], unique=False)

    op.create_table(
        "library_standard",
        sa.Column("venue_id", sa.Integer(), nullable=False),
        sa.Column("met_since", sa.Date(), nullable=False),
        sa.Column("updated_at", when(), nullable=False),
        sa.Column("updated_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["venue_id"], ["venue.id"]),
        sa.ForeignKeyConstraint(["updated_by_id"], ["staff.id"]),
        sa.PrimaryKeyConstraint("venue_id"),
    )

    op.create_table(
        "library_change",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("venue_id", sa.Integer(), nullable=False),
        sa.Column("entity", text(length=16), nullable=False),
        sa.Column("key", text(length=32), nullable=False),
        sa.Column("field", text(length=32), nullable=False),
        sa.Column("old_value", text(length=300), nullable=True),
        sa.Column("new_value", text(length=300), nullable=True),
        sa.Column("staff_id", sa.Integer(), nullable=True),
        sa.Column("at", when(), nullable=False),
        sa.Column("source", source, nullable=False),
        sa.ForeignKeyConstraint(["venue_id"], ["venue.id"]),
        sa.ForeignKeyConstraint(["staff_id"], ["staff.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("library_change", schema=None) as batch_op:
        batch_op.create_index("ix_library_change_venue_at", ["venue_id", "at"], unique=False)


def downgrade() -> None:
    op.drop_table("library_change")
    op.drop_table("library_standard")
    op.drop_table("school_library_year")
    op.drop_table("book_rotation")
    op.drop_table("library_figure")
