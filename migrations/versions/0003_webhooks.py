"""Webhooks: alert kind, source count and exact payload on deliveries; subscriber state.

Revision ID: 0003_webhooks
Revises: 0002_backfill
Create Date: 2026-11-21 17:30:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# WARNING: migrations run while the previous release may still be serving (several
# daemon replicas share one PostgreSQL). Keep each one SHORT (no long table locks,
# no big data rewrites in one statement) and BACKWARDS-COMPATIBLE (the old code must
# keep working on the new schema): add nullable columns or ones with a server
# default, backfill in a later revision, drop columns only after no release reads
# them. Write them with op.* and plain SQLAlchemy types, never by importing
# service.models: a migration is a snapshot and must not change when models do.

revision: str = "0003_webhooks"
down_revision: str | Sequence[str] | None = "0002_backfill"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # New columns have server defaults (or are nullable): the previous release keeps
    # inserting rows without them. The unique key widens, so it refuses nothing the
    # old one accepted.
    with op.batch_alter_table("deliveries") as batch:
        # created, corroborated
        batch.add_column(
            sa.Column("kind", sa.String(length=32), server_default="created", nullable=False)
        )
        batch.add_column(
            sa.Column("sources_count", sa.Integer(), server_default=sa.text("1"), nullable=False)
        )
        batch.add_column(sa.Column("payload", sa.Text(), nullable=True))
        batch.drop_constraint("uq_deliveries_event_id_subscriber", type_="unique")
        batch.create_unique_constraint(
            "uq_deliveries_event_id_subscriber_kind_sources_count",
            ["event_id", "subscriber", "kind", "sources_count"],
        )

    op.create_table(
        "subscriptions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("disabled_reason", sa.Text(), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscriptions")),
        sa.UniqueConstraint("name", name=op.f("uq_subscriptions_name")),
    )


def downgrade() -> None:
    op.drop_table("subscriptions")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_constraint(
            "uq_deliveries_event_id_subscriber_kind_sources_count", type_="unique"
        )
        batch.create_unique_constraint(
            "uq_deliveries_event_id_subscriber", ["event_id", "subscriber"]
        )
        batch.drop_column("payload")
        batch.drop_column("sources_count")
        batch.drop_column("kind")
