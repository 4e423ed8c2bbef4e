"""Prometheus metrics, all defined here, incremented at the stage boundaries.

The pipeline counts polls (by outcome), fetch errors (by kind), stored articles (by
origin), duplicates (by where they were caught), events; the delivery worker counts
attempts (by outcome).  Poll and webhook-attempt durations are histograms.  They live
in prometheus-client's default registry, one per process: each replica is scraped
on its own ``/metrics`` (``service.observe``).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

POLLS = Counter(
    "service_polls", "Feed polls, by outcome (ok, not_modified, failed, crashed).", ["outcome"]
)
FETCH_ERRORS = Counter(
    "service_fetch_errors",
    "Failed feed polls, by kind (dns, connect, timeout, status, too_large, parse, internal...).",
    ["kind"],
)
ARTICLES = Counter(
    "service_articles",
    "Articles stored, by origin (feed, entry_fallback, backfill...).",
    ["origin"],
)
DUPLICATES = Counter(
    "service_duplicates",
    "Reports dropped as already seen: known feed entries (entry), the same URL or text as "
    "a stored article (exact), a near-duplicate of one (near), or refused by the store "
    "(store: same URL stored meanwhile).",
    ["stage"],
)
EVENTS = Counter("service_events", "Events extracted from stored articles.")
DELIVERIES = Counter(
    "service_deliveries",
    "Webhook attempts, by outcome (delivered, failed, dead).",
    ["outcome"],
)
POLL_SECONDS = Histogram(
    "service_poll_duration_seconds",
    "Time to poll one feed through every stage.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
DELIVERY_SECONDS = Histogram(
    "service_delivery_duration_seconds",
    "Time of one webhook attempt, sending to recording.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15, 60),
)
LAST_SUCCESS = Gauge(
    "service_last_successful_poll_timestamp_seconds",
    "Unix time of the last poll that ended ok or not_modified (0: none yet).",
)
