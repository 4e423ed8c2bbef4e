"""Backfill runs and their items, so that an interrupted `service backfill` resumes.

Revision ID: 0002_backfill
Revises: 0001
Create Date: 2026-11-24 10:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# WARNING: migrations run while the previous release may still be serving (several
# daemon replicas share one PostgreSQL). Keep each one SHORT (no long table locks,
# no big data rewrites in one statement) and BACKWARDS-COMPATIBLE (the old code must
# keep working on the new schema): add nullable columns or ones with a server
# default, backfill in a later revision, drop columns only after no release reads
# them. Write them with op.* and plain SQLAlchemy types, never by importing
# service.models: a migration is a snapshot and must not change when models do.

revision: str = "0002_backfill"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _json() -> sa.types.TypeEngine[object]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "backfill_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_key", sa.String(length=64), nullable=False),
        sa.Column("source_kind", sa.String(length=32), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("options", _json(), nullable=False),
        sa.Column("started_at", _utc(), nullable=False),
        sa.Column("updated_at", _utc(), nullable=False),
        sa.Column("finished_at", _utc(), nullable=True),
        sa.Column("created_at", _utc(), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_backfill_runs")),
        sa.UniqueConstraint("run_key", name=op.f("uq_backfill_runs_run_key")),
    )
    op.create_table(
        "backfill_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("item_key", sa.String(length=64), nullable=False),
        sa.Column("item", sa.Text(), nullable=False),
        # stored, duplicate, known, empty, out_of_range, failed
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("article_id", sa.Integer(), nullable=True),
        sa.Column("events", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("updated_at", _utc(), nullable=False),
        sa.ForeignKeyConstraint(
            ["article_id"],
            ["articles.id"],
            name=op.f("fk_backfill_items_article_id_articles"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["backfill_runs.id"],
            name=op.f("fk_backfill_items_run_id_backfill_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_backfill_items")),
        sa.UniqueConstraint("run_id", "item_key", name=op.f("uq_backfill_items_run_id_item_key")),
    )
    op.create_index(op.f("ix_backfill_items_article_id"), "backfill_items", ["article_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_backfill_items_article_id"), table_name="backfill_items")
    op.drop_table("backfill_items")
    op.drop_table("backfill_runs")
