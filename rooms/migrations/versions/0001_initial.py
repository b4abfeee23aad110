"""Initial schema: rooms, their link tokens, every number ever allocated, settings.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "allocated_numbers",
        sa.Column("number", sa.String(length=10), nullable=False),
        sa.Column("allocated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("number", name="pk_allocated_numbers"),
    )
    op.create_table(
        "rooms",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("number", sa.String(length=10), nullable=False),
        sa.Column("pin", sa.String(length=10), nullable=True),
        sa.Column("host_pin", sa.String(length=10), nullable=True),
        sa.Column("permanent", sa.Boolean(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("utc_offset_minutes", sa.Integer(), nullable=True),
        sa.Column("ends_at_auto", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("waiting_room", sa.Boolean(), nullable=False),
        sa.Column("wait_for_host", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_rooms"),
        sa.ForeignKeyConstraint(
            ["number"], ["allocated_numbers.number"], name="fk_rooms_number", ondelete="RESTRICT"
        ),
        sa.UniqueConstraint("number", name="uq_rooms_number"),
    )
    op.create_table(
        "link_tokens",
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("room_id", sa.String(length=32), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("token", name="pk_link_tokens"),
        sa.ForeignKeyConstraint(
            ["room_id"], ["rooms.id"], name="fk_link_tokens_room", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("room_id", "role", name="uq_link_tokens_room_role"),
    )
    op.create_index("ix_link_tokens_room_id", "link_tokens", ["room_id"])
    op.create_table(
        "settings",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=500), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_settings"),
    )


def downgrade() -> None:
    op.drop_table("settings")
    op.drop_index("ix_link_tokens_room_id", table_name="link_tokens")
    op.drop_table("link_tokens")
    op.drop_table("rooms")
    op.drop_table("allocated_numbers")
