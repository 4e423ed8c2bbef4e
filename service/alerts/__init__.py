"""Webhook alerts: from a stored event to a signed POST at each subscriber.

    pipeline.ingest ─► store.enqueue_deliveries (same transaction as the event: the outbox)
        uses filters.why_not (pure) and payload.build_body (pure)
    daemon job ─► delivery.Deliverer.deliver_due: claim due rows (lease, SKIP LOCKED)
        ─► signing.headers (pure) ─► Fetcher.post (guarded, 15 s, no redirects)
        ─► retry.decide (pure) ─► store.record_attempt

Pure modules (``signing``, ``filters``, ``payload``, ``retry``) import neither httpx
nor SQLAlchemy; ``delivery`` is the only one doing I/O.
"""
