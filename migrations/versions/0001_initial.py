"""Initial schema: feeds and poll state, articles, events, event-article links, deliveries.

Revision ID: 0001
Revises:
Create Date: 2026-11-21 16:41:13+00:00
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

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _json() -> sa.types.TypeEngine[object]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _enum() -> sa.String:
    # Enums are stored by value in a VARCHAR without CHECK: new values need no migration.
    return sa.String(length=32)


def _created_at() -> sa.Column[object]:
    return sa.Column("created_at", _utc(), server_default=sa.func.now(), nullable=False)


def upgrade() -> None:
    op.create_table(
        "feeds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("outlet", sa.String(length=255), nullable=False),
        sa.Column("interval_seconds", sa.Integer(), nullable=False),
        sa.Column("etag", sa.Text(), nullable=True),
        sa.Column("last_modified", sa.Text(), nullable=True),
        sa.Column("next_due", _utc(), nullable=True),
        sa.Column("last_polled", _utc(), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("consecutive_errors", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("entries_seen", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("events_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
        _created_at(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feeds")),
        sa.UniqueConstraint("name", name=op.f("uq_feeds_name")),
    )
    op.create_index(op.f("ix_feeds_next_due"), "feeds", ["next_due"])

    op.create_table(
        "articles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("canonical_url", sa.Text(), nullable=True),
        sa.Column("outlet", sa.String(length=255), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("published", _utc(), nullable=True),
        sa.Column("published_is_estimate", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("fetched", _utc(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("is_seed", sa.Boolean(), server_default=sa.false(), nullable=False),
        # seed, feed, backfill, file, entry_fallback
        sa.Column("origin_kind", _enum(), nullable=False),
        sa.Column("guid", sa.Text(), nullable=True),
        sa.Column("feed_id", sa.Integer(), nullable=True),
        sa.Column("duplicate_of", sa.Integer(), nullable=True),
        sa.Column("similarity", sa.Double(), nullable=True),
        _created_at(),
        sa.ForeignKeyConstraint(
            ["duplicate_of"],
            ["articles.id"],
            name=op.f("fk_articles_duplicate_of_articles"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["feed_id"], ["feeds.id"], name=op.f("fk_articles_feed_id_feeds"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_articles")),
        sa.UniqueConstraint("feed_id", "guid", name=op.f("uq_articles_feed_id_guid")),
        sa.UniqueConstraint("url", name=op.f("uq_articles_url")),
    )
    op.create_index(op.f("ix_articles_canonical_url"), "articles", ["canonical_url"])
    op.create_index(op.f("ix_articles_content_hash"), "articles", ["content_hash"])
    op.create_index(op.f("ix_articles_duplicate_of"), "articles", ["duplicate_of"])
    op.create_index(op.f("ix_articles_feed_id"), "articles", ["feed_id"])

    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("type", _enum(), nullable=False),
        sa.Column("movement", sa.Boolean(), nullable=False),
        sa.Column("actor_name", sa.String(length=255), nullable=False),
        sa.Column("actor_affiliation", _enum(), nullable=False),
        sa.Column("location_name", sa.String(length=255), nullable=False),
        sa.Column("location_lat", sa.Double(), nullable=True),
        sa.Column("location_lon", sa.Double(), nullable=True),
        sa.Column("location_admin2", sa.String(length=255), nullable=True),
        sa.Column("location_precision", _enum(), nullable=False),
        sa.Column("origin_name", sa.String(length=255), nullable=True),
        sa.Column("origin_lat", sa.Double(), nullable=True),
        sa.Column("origin_lon", sa.Double(), nullable=True),
        sa.Column("origin_admin2", sa.String(length=255), nullable=True),
        sa.Column("origin_precision", _enum(), nullable=True),
        sa.Column("date", sa.String(length=32), nullable=True),
        sa.Column("date_precision", _enum(), nullable=False),
        sa.Column("quantities", _json(), nullable=False),
        sa.Column("equipment", _json(), nullable=False),
        sa.Column("hedged", sa.Boolean(), nullable=False),
        sa.Column("source_name", sa.String(length=255), nullable=True),
        sa.Column("source_outlet", sa.String(length=255), nullable=True),
        sa.Column("source_url", sa.Text(), nullable=True),
        sa.Column("in_region", sa.Boolean(), nullable=False),
        sa.Column("evidence_text", sa.Text(), nullable=False),
        sa.Column("evidence_start", sa.Integer(), nullable=False),
        sa.Column("evidence_end", sa.Integer(), nullable=False),
        sa.Column("sources_count", sa.Integer(), server_default=sa.text("1"), nullable=False),
        _created_at(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    op.create_index(op.f("ix_events_actor_affiliation"), "events", ["actor_affiliation"])
    op.create_index(op.f("ix_events_date"), "events", ["date"])
    op.create_index(op.f("ix_events_in_region"), "events", ["in_region"])
    op.create_index(op.f("ix_events_type"), "events", ["type"])

    op.create_table(
        "event_articles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("evidence_start", sa.Integer(), nullable=False),
        sa.Column("evidence_end", sa.Integer(), nullable=False),
        _created_at(),
        sa.ForeignKeyConstraint(
            ["article_id"],
            ["articles.id"],
            name=op.f("fk_event_articles_article_id_articles"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["events.id"],
            name=op.f("fk_event_articles_event_id_events"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_articles")),
        sa.UniqueConstraint(
            "event_id", "article_id", name=op.f("uq_event_articles_event_id_article_id")
        ),
    )
    op.create_index(op.f("ix_event_articles_article_id"), "event_articles", ["article_id"])

    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("subscriber", sa.String(length=255), nullable=False),
        sa.Column("webhook_id", sa.String(length=64), nullable=False),
        # pending, delivered, failed, dead
        sa.Column("status", _enum(), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("next_attempt_at", _utc(), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        _created_at(),
        sa.Column("delivered_at", _utc(), nullable=True),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["events.id"],
            name=op.f("fk_deliveries_event_id_events"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deliveries")),
        sa.UniqueConstraint(
            "event_id", "subscriber", name=op.f("uq_deliveries_event_id_subscriber")
        ),
        sa.UniqueConstraint("webhook_id", name=op.f("uq_deliveries_webhook_id")),
    )
    op.create_index(
        op.f("ix_deliveries_status_next_attempt_at"), "deliveries", ["status", "next_attempt_at"]
    )


def downgrade() -> None:
    op.drop_table("deliveries")
    op.drop_table("event_articles")
    op.drop_table("events")
    op.drop_table("articles")
    op.drop_table("feeds")
