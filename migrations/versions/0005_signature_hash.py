"""Dedup signatures hash shingles from word hashes: the stored ones are dropped.

A shingle's hash was the SHA-1 of its text; it is now combined from its words'
CRC-32s (``service.dedup.shingle_hashes``), so signatures made before cannot be
compared with new ones.  They are derived data: the daemon (or the first command
that ingests) signs every article without one again, in batches of 1,000, before
it loads the dedup index.  While a replica of the previous release still runs, its
index mixes the two kinds and finds fewer near-duplicate candidates; verdicts are
still taken on the texts.

Revision ID: 0005_signature_hash
Revises: 0004_dedup
Create Date: 2026-11-21 21:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005_signature_hash"
down_revision: str | Sequence[str] | None = "0004_dedup"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("DELETE FROM article_signatures")


def downgrade() -> None:
    # The previous release's hash differs just as much: it signs them again too.
    op.execute("DELETE FROM article_signatures")
