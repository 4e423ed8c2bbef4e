"""Nothing a feed offers is lost: URLs of any length, entry retry state, claim heartbeats.

* ``articles``: URLs and guids are kept unique and looked up by the SHA-256 (hex) of
  their UTF-8 (``url_hash``, ``canonical_url_hash``, ``alternate_url_hash``,
  ``guid_hash``), filled here for the stored rows.  The btree indexes on the texts
  themselves go: on PostgreSQL an index entry must stay under 2704 bytes, and a long
  tracking URL that does not compress could not be stored at all.
* ``entry_failures``: a feed entry that could not be stored (its page failed and it
  has no text of its own, or the store refused it), with its attempts, last error and
  next attempt (backoff), or given up.
* ``feeds.claimed_by``/``heartbeat_at``: the process polling a feed says it is alive;
  a claim whose heartbeat stops (the process died) is taken over at once, not after
  the lease.

While a replica of the previous release still runs, the articles it stores carry no
hashes; ``service db upgrade`` and the first ingest of this release fill them in
(``store.hash_unhashed_articles``).  Downgrading on PostgreSQL fails while an article
has a URL or guid too long for the old indexes.

Revision ID: 0006_feed_backlog
Revises: 0005_signature_hash
Create Date: 2026-11-22 10:00:00+00:00
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# WARNING: migrations run while the previous release may still be serving (several
# daemon replicas share one PostgreSQL). Keep each one SHORT and BACKWARDS-COMPATIBLE:
# add nullable columns or ones with a server default, never import service.models.

revision: str = "0006_feed_backlog"
down_revision: str | Sequence[str] | None = "0005_signature_hash"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (text column, its hash column)
HASHED = (
    ("url", "url_hash"),
    ("canonical_url", "canonical_url_hash"),
    ("alternate_url", "alternate_url_hash"),
    ("guid", "guid_hash"),
)
BATCH = 1000


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _key_hash(value: str | None) -> str | None:
    return None if value is None else hashlib.sha256(value.encode("utf-8")).hexdigest()


def _fill_hashes() -> None:
    """Hash the stored URLs and guids: in SQL on PostgreSQL, in batches on SQLite."""
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute(
            "UPDATE articles SET "
            + ", ".join(
                f"{hashed} = encode(sha256(convert_to({text}, 'UTF8')), 'hex')"
                for text, hashed in HASHED
            )
        )
        return
    texts = ", ".join(text for text, _ in HASHED)
    select = sa.text(f"SELECT id, {texts} FROM articles WHERE id > :after ORDER BY id LIMIT :n")
    update = sa.text(
        "UPDATE articles SET "
        + ", ".join(f"{hashed} = :{hashed}" for _, hashed in HASHED)
        + " WHERE id = :id"
    )
    after = 0
    while True:
        rows = bind.execute(select, {"after": after, "n": BATCH}).all()
        if not rows:
            return
        bind.execute(
            update,
            [
                {
                    "id": row[0],
                    **{h: _key_hash(v) for (_, h), v in zip(HASHED, row[1:], strict=True)},
                }
                for row in rows
            ],
        )
        after = rows[-1][0]


def upgrade() -> None:
    for _, hashed in HASHED:
        op.add_column("articles", sa.Column(hashed, sa.String(length=64), nullable=True))
    _fill_hashes()
    with op.batch_alter_table("articles") as batch:
        batch.drop_constraint("uq_articles_url", type_="unique")
        batch.drop_constraint("uq_articles_feed_id_guid", type_="unique")
        batch.drop_index("ix_articles_canonical_url")
        batch.drop_index("ix_articles_alternate_url")
        batch.create_unique_constraint("uq_articles_url_hash", ["url_hash"])
        batch.create_unique_constraint("uq_articles_feed_id_guid_hash", ["feed_id", "guid_hash"])
        batch.create_index("ix_articles_canonical_url_hash", ["canonical_url_hash"])
        batch.create_index("ix_articles_alternate_url_hash", ["alternate_url_hash"])

    op.add_column("feeds", sa.Column("claimed_by", sa.String(length=255), nullable=True))
    op.add_column("feeds", sa.Column("heartbeat_at", _utc(), nullable=True))

    op.create_table(
        "entry_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("feed_id", sa.Integer(), nullable=False),
        sa.Column("entry_key", sa.String(length=64), nullable=False),
        sa.Column("entry_id", sa.Text(), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("published", _utc(), nullable=True),
        # retrying, gave_up
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("first_failed_at", _utc(), nullable=False),
        sa.Column("last_attempt_at", _utc(), nullable=False),
        sa.Column("next_attempt_at", _utc(), nullable=True),
        sa.ForeignKeyConstraint(
            ["feed_id"],
            ["feeds.id"],
            name=op.f("fk_entry_failures_feed_id_feeds"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_entry_failures")),
        sa.UniqueConstraint(
            "feed_id", "entry_key", name=op.f("uq_entry_failures_feed_id_entry_key")
        ),
    )


def downgrade() -> None:
    op.drop_table("entry_failures")
    with op.batch_alter_table("feeds") as batch:
        batch.drop_column("heartbeat_at")
        batch.drop_column("claimed_by")
    with op.batch_alter_table("articles") as batch:
        batch.drop_index("ix_articles_alternate_url_hash")
        batch.drop_index("ix_articles_canonical_url_hash")
        batch.drop_constraint("uq_articles_feed_id_guid_hash", type_="unique")
        batch.drop_constraint("uq_articles_url_hash", type_="unique")
        batch.create_unique_constraint("uq_articles_url", ["url"])
        batch.create_unique_constraint("uq_articles_feed_id_guid", ["feed_id", "guid"])
        batch.create_index("ix_articles_canonical_url", ["canonical_url"])
        batch.create_index("ix_articles_alternate_url", ["alternate_url"])
        for _, hashed in reversed(HASHED):
            batch.drop_column(hashed)
