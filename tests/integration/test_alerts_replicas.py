"""Two daemons sharing one PostgreSQL database claim different webhook deliveries."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy.orm import Session

from service import store
from service.enums import AlertKind
from tests.integration.test_alerts_store import add_event, hook

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.mark.postgres
@pytest.mark.parametrize("empty_database_url", ["postgresql"], indirect=True)
def test_replicas_skip_each_others_locked_deliveries(empty_database_url: str) -> None:
    store.upgrade(empty_database_url)
    engine = store.create_engine(empty_database_url)
    subs = [hook("a")]
    try:
        with store.session_scope(store.session_factory(engine)) as session:
            ids = [add_event(session, n=n) for n in range(4)]
            store.enqueue_deliveries(session, [(i, AlertKind.CREATED) for i in ids], subs, now=NOW)
        with Session(engine) as one, Session(engine) as two:
            # Replica one holds its claim open (mid-transaction); replica two is not blocked.
            first = store.claim_due_deliveries(
                one, now=NOW, subscriptions=subs, lease_seconds=60, limit=2
            )
            second = store.claim_due_deliveries(
                two, now=NOW, subscriptions=subs, lease_seconds=60, limit=10
            )
            one.commit()
            two.commit()
        assert len(first) == 2 and len(second) == 2
        assert {d.id for d in first}.isdisjoint({d.id for d in second})
        with store.session_scope(store.session_factory(engine)) as session:
            assert (
                store.claim_due_deliveries(
                    session, now=NOW, subscriptions=subs, lease_seconds=60, limit=10
                )
                == []
            )
    finally:
        engine.dispose()
