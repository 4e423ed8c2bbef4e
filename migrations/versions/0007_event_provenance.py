"""Events say where they were first found: news (alerts), the seed corpus, or history.

``events.provenance`` is ``news`` (a polled feed's report, or ``backfill --alert``),
``seed`` (the seed corpus: already seen, never alerted) or ``history`` (``service
backfill`` without ``--alert``, re-extraction: never alerted).  Only news alerts; a
later report of a seed or history event merges into it without an alert.

Events stored before this revision are news, as they were treated until now (no
data is rewritten: the column's server default fills them in).  The seed corpus's
events are extracted by the next ``service seed`` (``make run`` runs it).  The
previous release keeps working: its inserts leave the column to its default.

Revision ID: 0007_event_provenance
Revises: 0006_feed_backlog
Create Date: 2026-11-22 10:00:00+00:00
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

revision: str = "0007_event_provenance"
down_revision: str | Sequence[str] | None = "0006_feed_backlog"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A constant server default: PostgreSQL 11+ adds the column without rewriting
    # the table; SQLite's ADD COLUMN does not rewrite it either.
    op.add_column(
        "events",
        sa.Column("provenance", sa.String(length=32), server_default="news", nullable=False),
    )


def downgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.drop_column("provenance")
