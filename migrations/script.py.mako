"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
${imports if imports else ""}
# WARNING: migrations run while the previous release may still be serving (several
# daemon replicas share one PostgreSQL). Keep each one SHORT (no long table locks,
# no big data rewrites in one statement) and BACKWARDS-COMPATIBLE (the old code must
# keep working on the new schema): add nullable columns or ones with a server
# default, backfill in a later revision, drop columns only after no release reads
# them. Write them with op.* and plain SQLAlchemy types, never by importing
# service.models: a migration is a snapshot and must not change when models do.

revision: str = ${repr(up_revision)}
down_revision: str | Sequence[str] | None = ${repr(down_revision)}
branch_labels: str | Sequence[str] | None = ${repr(branch_labels)}
depends_on: str | Sequence[str] | None = ${repr(depends_on)}


def upgrade() -> None:
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    ${downgrades if downgrades else "pass"}
