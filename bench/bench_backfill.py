"""Backfill throughput: the 110 real pages of the trafilatura test cache, served on
127.0.0.1, backfilled through the whole pipeline, against plain trafilatura
extraction of the same pages in the same run.

The backfill side is ``service backfill --urls`` as a user runs it, minus the CLI:
guarded fetch, boxed extraction in worker processes, rules, storage in a fresh
SQLite database.  The plain side calls the same trafilatura extraction
(``service.extract.extract_article``) on the same bytes, in this process, one page
after another.  The ratio (backfill / plain) is the figure: how much of trafilatura's
own speed survives the pipeline.

Run from the repository root:

    .venv/bin/python bench/bench_backfill.py [--cache DIR] [--concurrency 2]

The cache is ``--cache DIR``, else ``$DEIREZZOR_SHARED_DIR/corpora/trafilatura/cache``,
else ``../shared/corpora/trafilatura/cache`` beside the repository.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from service import store  # noqa: E402
from service.backfill import Backfill, BackfillOptions, BackfillSource, SourceKind  # noqa: E402
from service.config import load_settings  # noqa: E402
from service.extract import extract_article  # noqa: E402
from service.pipeline import Pipeline  # noqa: E402
from service.rules import PROJECT_RULES, load_rules  # noqa: E402
from service.sandbox import Sandbox  # noqa: E402
from tests.servers import FileServerProcess  # noqa: E402


def default_cache() -> Path:
    shared = os.environ.get("DEIREZZOR_SHARED_DIR")
    base = Path(shared) if shared else ROOT.parent / "shared"
    return base / "corpora" / "trafilatura" / "cache"


def backfill(pages: list[Path], cache: Path, concurrency: int, workdir: Path) -> tuple[float, str]:
    db = workdir / "service.db"
    config = workdir / "service.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{db}"\n\n[http]\nallow_private_networks = true\n'
        f"per_host_concurrency = {max(2, concurrency)}\n",
        encoding="utf-8",
    )
    (workdir / "feeds.toml").write_text("", encoding="utf-8")
    store.upgrade(f"sqlite:///{db}")
    engine = store.create_engine(f"sqlite:///{db}")
    server = FileServerProcess(cache)
    sandbox = Sandbox(workers=concurrency, timeout=60)
    pipeline = Pipeline(
        load_settings(config, environ={}),
        session_factory=store.session_factory(engine),
        rules=load_rules(PROJECT_RULES),
        sandbox=sandbox,
    )
    try:
        # Warm-up: start every worker process (and its trafilatura import) untimed.
        warm = [
            threading.Thread(target=pipeline.extract_page, args=(b"<html><p>x</p></html>", None))
            for _ in range(concurrency)
        ]
        for thread in warm:
            thread.start()
        for thread in warm:
            thread.join()
        urls = tuple(server.url("/" + quote(page.name)) for page in pages)
        source = BackfillSource(SourceKind.URLS, "bench", urls=urls)
        started = time.perf_counter()
        result = Backfill(pipeline).run(source, BackfillOptions(concurrency=concurrency))
        seconds = time.perf_counter() - started
        c = result.counts
        detail = (
            f"stored {c.stored}, duplicates {c.duplicates}, no text {c.skipped}, "
            f"failed {c.failed}, events {c.events}"
        )
        for failure in result.failures:
            print(f"  failed: {failure.item}: {failure.error}")
        return seconds, detail
    finally:
        pipeline.close()
        sandbox.close()
        server.stop()
        engine.dispose()


def plain(pages: list[Path]) -> float:
    bodies = [page.read_bytes() for page in pages]
    extract_article(bodies[0])  # warm-up
    started = time.perf_counter()
    for body in bodies:
        # A page trafilatura chokes on costs its time here too; the backfill lists it.
        with contextlib.suppress(Exception):
            extract_article(body)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=None, help="the trafilatura cache dir")
    parser.add_argument("--concurrency", type=int, default=2, help="backfill --concurrency")
    args = parser.parse_args()
    cache: Path = args.cache or default_cache()
    if not cache.is_dir():
        print(f"error: no page cache at {cache} (give --cache DIR)", file=sys.stderr)
        return 2
    pages = sorted(p for p in cache.iterdir() if p.is_file())
    size = sum(p.stat().st_size for p in pages)
    print(f"pages: {len(pages)} from {cache} ({size / 1e6:.1f} MB)")
    print(f"machine: {platform.platform()}, {platform.python_implementation()} "
          f"{platform.python_version()}, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        seconds, detail = backfill(pages, cache, args.concurrency, Path(tmp))
    plain_seconds = plain(pages)
    backfill_rate = len(pages) / seconds
    plain_rate = len(pages) / plain_seconds
    print(f"backfill (concurrency {args.concurrency}): {seconds:.2f} s, "
          f"{backfill_rate:.1f} pages/s ({detail})")
    print(f"plain trafilatura (1 thread):  {plain_seconds:.2f} s, {plain_rate:.1f} pages/s")
    print(f"ratio backfill/plain: {backfill_rate / plain_rate:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
