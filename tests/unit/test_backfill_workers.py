"""`service backfill --concurrency N` extracts in at most one sandbox process per CPU."""

from __future__ import annotations

import pytest

from service.cli import extraction_workers


@pytest.mark.parametrize(
    ("concurrency", "cpus", "workers"),
    [(4, 2, 2), (1, 8, 1), (8, 8, 8), (4, None, 1), (3, 16, 3)],
)
def test_extraction_workers(concurrency: int, cpus: int | None, workers: int) -> None:
    assert extraction_workers(concurrency, cpus) == workers
