"""Import the seed corpus as articles and events: idempotent, one call for the CLI and the daemon.

The seed reports are what analysts have already read.  Their events are extracted at
import (the rules' public entry point, ``RuleSet.extract``) and stored as seed events
(``EventProvenance.SEED``): listed by ``service events``, never alerted, and a later
report of the same real event (another outlet's rewrite) merges into them instead of
alerting (``store.store_events``, ``store.enqueue_deliveries``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Protocol

from sqlalchemy.orm import Session

from service import corpus, dedup, store
from service.config import DedupSettings
from service.corpus import ManifestDoc
from service.enums import ArticleOrigin, EventProvenance
from service.events import DatePrecision, Event
from service.hashing import content_hash
from service.rules import Document

DEFAULT_MANIFEST = Path("corpus/seeds/MANIFEST.json")

logger = logging.getLogger(__name__)


class Rules(Protocol):
    """What seeding needs of the rule set (``service.rules.RuleSet``)."""

    def extract(self, doc: Document) -> list[Event]: ...


@dataclass(frozen=True, slots=True)
class SeedResult:
    added: int  # seed articles stored by this import
    skipped: int  # already stored
    events: int = 0  # events the rules found in the seeds this import extracted


def import_seeds(
    session: Session,
    docs: Sequence[ManifestDoc],
    *,
    now: datetime,
    rules: Rules,
    settings: DedupSettings | None = None,
) -> SeedResult:
    """Store each document as a seed article unless a seed with the same text exists,
    with the events the rules find in it.

    "The same text" is the same content hash (normalised text), so re-running adds
    nothing and a re-saved file with different line endings is still recognised.
    Each seed's dedup signature is stored with it: the seeds are the baseline every
    report is compared with.  A seed stored without events (by a release that did
    not extract them, or whose rules found none) has its events extracted now.
    """
    dedup_settings = settings or DedupSettings()
    store.lock_for_dedup(session)
    added = skipped = events = 0
    for doc in docs:
        text = corpus.read_text(doc)
        digest = content_hash(text)
        # Midnight UTC stands for the manifest's day (the first of its month or year,
        # marked an estimate, when it gives no day).
        published = datetime.combine(doc.published, time(), tzinfo=UTC) if doc.published else None
        estimated = doc.published_is_estimate or doc.published_precision is not DatePrecision.DAY
        article_id = store.find_seed_by_hash(session, digest)
        if article_id is not None:
            skipped += 1
            logger.debug("Seed already stored", extra={"action": "skip", "entry_id": doc.file})
            if store.article_has_events(session, article_id):
                continue
            stored = store.get_article(session, article_id)
            if stored is not None:  # evidence offsets point into the stored text
                text = stored.text
        else:
            article_id = store.add_article(
                session,
                store.NewArticle(
                    text=text,
                    content_hash=digest,
                    origin_kind=ArticleOrigin.SEED,
                    fetched=now,
                    outlet=doc.outlet,
                    title=doc.title,
                    published=published,
                    published_is_estimate=estimated,
                    is_seed=True,
                ),
            )
            store.add_signature(session, article_id, dedup.signature(text, dedup_settings))
            added += 1
            logger.debug("Seed stored", extra={"action": "add", "entry_id": doc.file})
        found = _events(rules, text, doc, published)
        store.store_events(
            session,
            article_id,
            found,
            now=now,
            settings=dedup_settings,
            provenance=EventProvenance.SEED,
        )
        events += len(found)
    return SeedResult(added=added, skipped=skipped, events=events)


def _events(rules: Rules, text: str, doc: ManifestDoc, published: datetime | None) -> list[Event]:
    """The rules' events in a seed, read as ``backfill --reextract`` reads the stored
    article (so re-extraction with unchanged rules finds nothing to change)."""
    document = Document(
        text=text,
        published=published.date() if published else None,
        outlet=doc.outlet,
        url=None,
        published_is_estimate=doc.published_is_estimate,
        title=doc.title,
        published_precision=doc.published_precision,
    )
    try:
        return rules.extract(document)
    except Exception:  # a rule bug must not stop the import; the next one tries again
        logger.error("Rules failed on a seed", exc_info=True, extra={"entry_id": doc.file})
        return []
