"""names outside their commune: participant.name_unit_id

participant.name_unit_id is the unit where a participant first told us who they are; staff of that unit
(or of their home unit) may see their name and act for them (services/names.py). Existing participants
get the unit of the venue of their first check-in, else the unit of the venue that issued their first card,
else their home unit; erased participants, and those with none of these, stay without one (only an
administrator, or staff of a home unit given later, then sees their name).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FK = "fk_participant_name_unit_id_org_unit"


def upgrade() -> None:
    with op.batch_alter_table("participant") as batch:
        batch.add_column(sa.Column("name_unit_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(FK, "org_unit", ["name_unit_id"], ["id"])
    op.execute(
        "UPDATE participant SET name_unit_id = COALESCE("
        " (SELECT v.unit_id FROM check_in c JOIN venue v ON v.id = c.venue_id"
        "  WHERE c.participant_id = participant.id ORDER BY c.checked_in_at, c.id LIMIT 1),"
        " (SELECT v.unit_id FROM credential k JOIN venue v ON v.id = k.venue_id"
        "  WHERE k.participant_id = participant.id AND k.kind = 'card' ORDER BY k.issued_at, k.id LIMIT 1),"
        " home_unit_id)"
        " WHERE erased_at IS NULL"
    )


def downgrade() -> None:
    with op.batch_alter_table("participant") as batch:
        batch.drop_constraint(FK, type_="foreignkey")
        batch.drop_column("name_unit_id")
