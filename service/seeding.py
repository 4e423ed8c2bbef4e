"""Import the seed corpus as articles: idempotent, one call for the CLI and the daemon."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time
from pathlib import Path

from sqlalchemy.orm import Session

from service import corpus, dedup, store
from service.config import DedupSettings
from service.corpus import ManifestDoc
from service.enums import ArticleOrigin
from service.events import DatePrecision
from service.hashing import content_hash

DEFAULT_MANIFEST = Path("corpus/seeds/MANIFEST.json")

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SeedResult:
    added: int
    skipped: int


def import_seeds(
    session: Session,
    docs: Sequence[ManifestDoc],
    *,
    now: datetime,
    settings: DedupSettings | None = None,
) -> SeedResult:
    """Store each document as a seed article unless a seed with the same text exists.

    "The same text" is the same content hash (normalised text), so re-running adds
    nothing and a re-saved file with different line endings is still recognised.
    Each seed's dedup signature is stored with it: the seeds are the baseline every
    report is compared with.
    """
    dedup_settings = settings or DedupSettings()
    store.lock_for_dedup(session)
    added = skipped = 0
    for doc in docs:
        text = corpus.read_text(doc)
        digest = content_hash(text)
        if store.find_seed_by_hash(session, digest) is not None:
            skipped += 1
            logger.debug("Seed already stored", extra={"action": "skip", "entry_id": doc.file})
            continue
        article_id = store.add_article(
            session,
            store.NewArticle(
                text=text,
                content_hash=digest,
                origin_kind=ArticleOrigin.SEED,
                fetched=now,
                outlet=doc.outlet,
                title=doc.title,
                # Midnight UTC stands for the manifest's day (the first of its month or
                # year, marked an estimate, when it gives no day).
                published=(
                    datetime.combine(doc.published, time(), tzinfo=UTC) if doc.published else None
                ),
                published_is_estimate=doc.published_is_estimate
                or doc.published_precision is not DatePrecision.DAY,
                is_seed=True,
            ),
        )
        store.add_signature(session, article_id, dedup.signature(text, dedup_settings))
        added += 1
        logger.debug("Seed stored", extra={"action": "add", "entry_id": doc.file})
    return SeedResult(added=added, skipped=skipped)
