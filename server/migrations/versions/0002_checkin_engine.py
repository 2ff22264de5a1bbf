"""check-in engine: credentials, channels, claimed and received times, headcounts, rotating codes

Moves existing data over without loss: every participant's device hash becomes a device credential,
each check-in's method becomes its channel (qr -> page, manual -> staff_form, api -> staff_api) and its
received time is its check-in time, names get their search form, and every event keeps its printed poster.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

import unicodedata
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHANNELS = ("page", "public_api", "staff_form", "staff_api", "kiosk", "batch")
METHOD_TO_CHANNEL = {"qr": "page", "manual": "staff_form", "api": "staff_api"}
AGE_BANDS = ("0-5", "6-11", "12-15", "16-24", "25-59", "60+")
GENDERS = ("female", "male", "unspecified")
VENUE_TYPES = (
    "provincial_library",
    "commune_library",
    "school_library",
    "armed_forces_library",
    "culture_sport_centre",
    "village_cultural_house",
    "community_learning_centre",
    "post_culture_point",
    "legal_bookcase",
)


def _enum(name: str, values: Sequence[str]) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, length=32)


def _search_name(name: str) -> str:
    # The same folding as server.services.identities.search_form, frozen here as migrations must be.
    plain = unicodedata.normalize("NFD", name).replace("đ", "d").replace("Đ", "D")
    return " ".join("".join(c for c in plain if not unicodedata.combining(c)).casefold().split())


def upgrade() -> None:
    text = sqlmodel.sql.sqltypes.AutoString
    when = sqlmodel.sql.sqltypes.UTCDateTime
    op.create_table(
        "credential",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("participant_id", sa.Integer(), nullable=False),
        sa.Column("kind", _enum("credentialkind", ("device", "card")), nullable=False),
        sa.Column("lookup", text(length=64), nullable=False),
        sa.Column("venue_id", sa.Integer(), nullable=True),
        sa.Column("issued_by_id", sa.Integer(), nullable=True),
        sa.Column("issued_at", when(), nullable=False),
        sa.Column("revoked_at", when(), nullable=True),
        sa.Column("revoked_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["participant_id"], ["participant.id"]),
        sa.ForeignKeyConstraint(["venue_id"], ["venue.id"]),
        sa.ForeignKeyConstraint(["issued_by_id"], ["staff.id"]),
        sa.ForeignKeyConstraint(["revoked_by_id"], ["staff.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("kind", "lookup", name="uq_credential_kind_lookup"),
    )
    with op.batch_alter_table("credential", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_credential_participant_id"), ["participant_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_credential_venue_id"), ["venue_id"], unique=False)

    op.create_table(
        "headcount",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("delta", sa.Integer(), nullable=False),
        sa.Column("age_band", _enum("ageband", AGE_BANDS), nullable=True),
        sa.Column("gender", _enum("gender", GENDERS), nullable=True),
        sa.Column("nonce", text(length=64), nullable=False),
        sa.Column("fingerprint", text(length=64), nullable=False),
        sa.Column("channel", _enum("channel", CHANNELS), nullable=False),
        sa.Column("counted_at", when(), nullable=False),
        sa.Column("received_at", when(), nullable=False),
        sa.Column("recorded_by_id", sa.Integer(), nullable=True),
        sa.Column("venue_id", sa.Integer(), nullable=False),
        sa.Column("venue_type", _enum("venuetype", VENUE_TYPES), nullable=False),
        sa.Column("commune_id", sa.Integer(), nullable=True),
        sa.Column("village_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["event_id"], ["event.id"]),
        sa.ForeignKeyConstraint(["recorded_by_id"], ["staff.id"]),
        sa.ForeignKeyConstraint(["venue_id"], ["venue.id"]),
        sa.ForeignKeyConstraint(["commune_id"], ["org_unit.id"]),
        sa.ForeignKeyConstraint(["village_id"], ["org_unit.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("nonce"),
    )
    with op.batch_alter_table("headcount", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_headcount_event_id"), ["event_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_headcount_counted_at"), ["counted_at"], unique=False)

    with op.batch_alter_table("event", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "checkin_mode",
                _enum("checkinmode", ("poster", "rotating", "both")),
                nullable=False,
                server_default="poster",
            )
        )

    # Participants: device hashes become credentials; names get their search form.
    with op.batch_alter_table("participant", schema=None) as batch_op:
        batch_op.add_column(sa.Column("search_name", text(length=200), nullable=False, server_default=""))
    bind = op.get_bind()
    bind.execute(
        sa.text(
            "INSERT INTO credential (participant_id, kind, lookup, issued_at) "
            "SELECT id, 'device', device_hash, created_at FROM participant WHERE device_hash IS NOT NULL"
        )
    )
    named = bind.execute(sa.text("SELECT id, name FROM participant WHERE name IS NOT NULL")).all()
    for participant_id, name in named:
        bind.execute(
            sa.text("UPDATE participant SET search_name = :key WHERE id = :id"),
            {"key": _search_name(name)[:200], "id": participant_id},
        )
    with op.batch_alter_table("participant", schema=None) as batch_op:
        batch_op.drop_column("device_hash")
        batch_op.create_index(batch_op.f("ix_participant_search_name"), ["search_name"], unique=False)

    # Check-ins: the method becomes the channel; the claimed time stays, the received time is added.
    with op.batch_alter_table("check_in", schema=None) as batch_op:
        batch_op.add_column(sa.Column("fingerprint", text(length=64), nullable=True))
        batch_op.add_column(sa.Column("channel", _enum("channel", CHANNELS), nullable=True))
        batch_op.add_column(sa.Column("credential_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("received_at", when(), nullable=True))
        batch_op.add_column(sa.Column("late", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.create_foreign_key("fk_check_in_credential_id", "credential", ["credential_id"], ["id"])
    with op.batch_alter_table("check_in_attempt", schema=None) as batch_op:
        batch_op.add_column(sa.Column("channel", _enum("channel", CHANNELS), nullable=True))
        batch_op.add_column(sa.Column("action", text(length=16), nullable=False, server_default="check_in"))
        batch_op.add_column(sa.Column("staff_id", sa.Integer(), nullable=True))
    for table in ("check_in", "check_in_attempt"):
        for method, channel in METHOD_TO_CHANNEL.items():
            bind.execute(
                sa.text(f"UPDATE {table} SET channel = :channel WHERE method = :method"),
                {"channel": channel, "method": method},
            )
    bind.execute(sa.text("UPDATE check_in SET received_at = checked_in_at"))
    # A device check-in names the credential it used (the participant's only device credential).
    bind.execute(
        sa.text(
            "UPDATE check_in SET credential_id = (SELECT c.id FROM credential c "
            "WHERE c.participant_id = check_in.participant_id AND c.kind = 'device') "
            "WHERE channel <> 'staff_form'"
        )
    )
    with op.batch_alter_table("check_in", schema=None) as batch_op:
        batch_op.alter_column("channel", existing_type=_enum("channel", CHANNELS), nullable=False)
        batch_op.alter_column("received_at", existing_type=when(), nullable=False)
        batch_op.drop_column("method")
    with op.batch_alter_table("check_in_attempt", schema=None) as batch_op:
        batch_op.alter_column("channel", existing_type=_enum("channel", CHANNELS), nullable=False)
        batch_op.drop_column("method")


def downgrade() -> None:
    raise RuntimeError("0002 cannot be undone: restore the backup taken before upgrading")
