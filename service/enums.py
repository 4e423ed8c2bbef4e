"""Lifecycle and provenance states shared by storage, pipeline and alerts.

Plain enums with no database import, so pure stages can use them; ``models.py``
stores them by value.
"""

from __future__ import annotations

import enum


class ArticleOrigin(enum.StrEnum):
    """How an article entered the service."""

    SEED = "seed"  # the seed corpus (corpus/seeds)
    FEED = "feed"  # an entry of a polled feed, article page fetched
    BACKFILL = "backfill"  # an archive page walked by `service backfill`
    FILE = "file"  # a local file given to `service extract`
    ENTRY_FALLBACK = "entry_fallback"  # the feed entry's own content (article page unusable)


class EventProvenance(enum.StrEnum):
    """Where an event was first found, and so whether it is news.

    Only a ``news`` event alerts.  An event first found in the seed corpus or in
    history (``service backfill`` without ``--alert``, ``backfill --reextract``) was
    never alerted and never will be: a later report of the same event merges into
    it (``sources_count`` goes up, details are added) without any webhook alert.
    """

    NEWS = "news"  # a polled feed's report, or `backfill --alert`: alerts go out
    SEED = "seed"  # the seed corpus (`service seed`): already seen, never alerted
    HISTORY = "history"  # `service backfill` without --alert, re-extraction: never alerted

    @property
    def alerts(self) -> bool:
        return self is EventProvenance.NEWS


class DeliveryStatus(enum.StrEnum):
    """Where one webhook delivery of one event stands."""

    PENDING = "pending"  # waiting for its first or next attempt
    DELIVERED = "delivered"  # the subscriber answered 2xx
    FAILED = "failed"  # the last attempt failed; another is scheduled
    DEAD = "dead"  # attempts exhausted; no further tries


class BackfillItemStatus(enum.StrEnum):
    """What ``service backfill`` did with one item (a URL or a file) of a run."""

    STORED = "stored"  # stored through the pipeline
    DUPLICATE = "duplicate"  # the pipeline recognised it (ingest said anything but stored)
    KNOWN = "known"  # already in the database before this run (same URL or same text)
    EMPTY = "empty"  # no article text
    OUT_OF_RANGE = "out_of_range"  # published outside --since/--until
    FAILED = "failed"  # fetch or extraction failed; retried on the next run
    DEAD = "dead"  # the dead letter: refused (4xx, 410) or attempts exhausted; no further tries


class EntryStatus(enum.StrEnum):
    """Where a feed entry that could not be stored stands (``entry_failures``)."""

    RETRYING = "retrying"  # tried again by a poll once its backoff has passed
    GAVE_UP = "gave_up"  # attempts exhausted; never tried again


class AlertKind(enum.StrEnum):
    """What a webhook delivery announces; the payload ``type`` is ``event.<kind>``."""

    CREATED = "created"  # a new event (or one that now passes the subscriber's filters)
    CORROBORATED = "corroborated"  # another report confirms an event already sent

    @property
    def payload_type(self) -> str:
        return f"event.{self.value}"
