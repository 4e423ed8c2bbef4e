"""Deduplication: stored MinHash signatures per article, and an article's alternate URL.

Revision ID: 0004_dedup
Revises: 0003_webhooks
Create Date: 2026-11-21 18:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# WARNING: migrations run while the previous release may still be serving (several
# daemon replicas share one PostgreSQL). Keep each one SHORT and BACKWARDS-COMPATIBLE:
# add nullable columns or ones with a server default, never import service.models.

revision: str = "0004_dedup"
down_revision: str | Sequence[str] | None = "0003_webhooks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("articles", sa.Column("alternate_url", sa.Text(), nullable=True))
    op.create_index(op.f("ix_articles_alternate_url"), "articles", ["alternate_url"])
    op.create_table(
        "article_signatures",
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("num_perm", sa.Integer(), nullable=False),
        sa.Column("words", sa.Integer(), nullable=False),
        sa.Column("shingles", sa.Integer(), nullable=False),
        sa.Column("lead", sa.LargeBinary(), nullable=False),
        sa.Column("whole", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["article_id"],
            ["articles.id"],
            name=op.f("fk_article_signatures_article_id_articles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("article_id", name=op.f("pk_article_signatures")),
    )


def downgrade() -> None:
    op.drop_table("article_signatures")
    with op.batch_alter_table("articles") as batch:
        batch.drop_index(batch.f("ix_articles_alternate_url"))
        batch.drop_column("alternate_url")
