"""kiosk devices: an organizer's phone enrolled at one venue, paired by a short code, revocable

A new table only; nothing existing changes.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    text = sqlmodel.sql.sqltypes.AutoString
    when = sqlmodel.sql.sqltypes.UTCDateTime
    op.create_table(
        "kiosk_device",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", text(length=60), nullable=False),
        sa.Column("venue_id", sa.Integer(), nullable=False),
        sa.Column("enrolled_by_id", sa.Integer(), nullable=False),
        sa.Column("created_at", when(), nullable=False),
        sa.Column("pairing_hash", text(length=64), nullable=True),
        sa.Column("pairing_expires_at", when(), nullable=True),
        sa.Column("token_hash", text(length=64), nullable=True),
        sa.Column("paired_at", when(), nullable=True),
        sa.Column("last_seen_at", when(), nullable=True),
        sa.Column("revoked_at", when(), nullable=True),
        sa.Column("revoked_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["venue_id"], ["venue.id"]),
        sa.ForeignKeyConstraint(["enrolled_by_id"], ["staff.id"]),
        sa.ForeignKeyConstraint(["revoked_by_id"], ["staff.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    with op.batch_alter_table("kiosk_device", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_kiosk_device_venue_id"), ["venue_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_kiosk_device_pairing_hash"), ["pairing_hash"], unique=False)


def downgrade() -> None:
    op.drop_table("kiosk_device")
