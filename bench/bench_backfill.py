"""Pipeline throughput: the 110 real pages of the trafilatura test cache through the
whole pipeline, against trafilatura alone on the same pages with as many processes,
in one run.

Pipeline side, two ways, each as a user runs it minus the CLI, with ``--concurrency
N`` and a sandbox of N worker processes, into a fresh SQLite database:

* ``service backfill --dir`` (the figure): the pages are read from disk, extracted
  in the sandbox's boxed workers (RLIMIT_AS, deadline), then dedup, rules and
  storage: the stages the goal names;
* ``service backfill --urls``: the same, but each page is fetched through the
  guarded fetcher from a file server process on 127.0.0.1 (the outlet; its CPU is
  not counted, though it runs on the same cores).

Plain side: the same trafilatura call (``service.extract.extract_article``) on the
same page bytes in N plain processes (no box, nothing stored), each reading its
pages from disk.

Both sides get the same N processes' worth of extraction on the same cores; the
ratio of their pages per second is the figure (goal >= 0.9).  CPU seconds per page
of each side are printed too (pipeline: the main process and its sandbox workers;
plain: its N processes): their ratio is the same comparison per core, and less
sensitive to other work on the machine.  Rounds alternate the sides; the medians
are reported, and the median of the rounds' own ratios (each pipeline run against
the plain run beside it).  ``--stages`` also times each stage alone, serially, in
one process.

Run from the repository root:

    .venv/bin/python bench/bench_backfill.py [--cache DIR] [--concurrency 2] [--rounds 3] [--stages]

The cache is ``--cache DIR``, else ``$DEIREZZOR_SHARED_DIR/corpora/trafilatura/cache``,
else ``../shared/corpora/trafilatura/cache`` beside the repository.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import multiprocessing
import multiprocessing.pool
import os
import resource
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from bench.common import cpu_seconds, machine, tree  # noqa: E402
from service import clock, dedup, store  # noqa: E402
from service.backfill import Backfill, BackfillOptions, BackfillSource, SourceKind  # noqa: E402
from service.config import Settings, load_settings  # noqa: E402
from service.enums import ArticleOrigin  # noqa: E402
from service.extract import ExtractedArticle, extract_article  # noqa: E402
from service.pipeline import Pipeline, Report  # noqa: E402
from service.rules import PROJECT_RULES, RuleSet, load_rules  # noqa: E402
from service.sandbox import Sandbox  # noqa: E402
from tests.servers import FileServerProcess  # noqa: E402

WARM_PAGE = b"<html><body><article><p>warm-up</p></article></body></html>"


def default_cache() -> Path:
    shared = os.environ.get("DEIREZZOR_SHARED_DIR")
    base = Path(shared) if shared else ROOT.parent / "shared"
    return base / "corpora" / "trafilatura" / "cache"


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass(frozen=True)
class Run:
    seconds: float
    cpu: float  # CPU seconds of the side's processes
    main_cpu: float = 0.0  # pipeline: of which the main process (fetch, dedup, rules, store)
    detail: str = ""


# -- the pipeline side ---------------------------------------------------------------


def settings_for(workdir: Path, concurrency: int) -> Settings:
    db = workdir / "service.db"
    config = workdir / "service.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{db}"\n\n[http]\nallow_private_networks = true\n'
        f"per_host_concurrency = {max(2, concurrency)}\n",
        encoding="utf-8",
    )
    (workdir / "feeds.toml").write_text("", encoding="utf-8")
    return load_settings(config, environ={})


def pipeline_round(
    source: BackfillSource,
    sandbox: Sandbox,
    worker_pids: list[int],
    rules: RuleSet,
    concurrency: int,
) -> Run:
    with tempfile.TemporaryDirectory() as tmp:
        settings = settings_for(Path(tmp), concurrency)
        store.upgrade(settings.database_url)
        engine = store.create_engine(settings.database_url)
        pipeline = Pipeline(
            settings, session_factory=store.session_factory(engine), rules=rules, sandbox=sandbox
        )
        try:
            main_before, workers_before = own_cpu(), cpu_seconds(worker_pids)
            started = time.perf_counter()
            result = Backfill(pipeline).run(source, BackfillOptions(concurrency=concurrency))
            seconds = time.perf_counter() - started
            main_cpu = own_cpu() - main_before
            cpu = main_cpu + cpu_seconds(worker_pids) - workers_before
        finally:
            pipeline.close()
            engine.dispose()
    c = result.counts
    for failure in result.failures:
        print(f"  failed: {failure.item}: {failure.error}")
    return Run(
        seconds,
        cpu,
        main_cpu,
        f"stored {c.stored}, duplicates {c.duplicates}, no text {c.skipped}, "
        f"failed {c.failed}, events {c.events}",
    )


# -- the plain side ------------------------------------------------------------------


def _plain_warm() -> None:  # in each plain process
    extract_article(WARM_PAGE)


def _plain_extract(path: str) -> int:  # in each plain process
    try:
        article = extract_article(Path(path).read_bytes())
    except Exception:  # a page trafilatura chokes on costs its time here too
        return 0
    return len(article.text) if article is not None else 0


def plain_round(pool: Pool, pids: list[int], pages: list[Path]) -> Run:
    cpu_before = cpu_seconds(pids)
    started = time.perf_counter()
    pool.map(_plain_extract, [str(page) for page in pages], chunksize=1)
    seconds = time.perf_counter() - started
    return Run(seconds, cpu_seconds(pids) - cpu_before)


Pool = multiprocessing.pool.Pool


# -- stage by stage ------------------------------------------------------------------


def stages(pages: list[Path], cache: Path, rules: RuleSet) -> None:
    """Each stage alone, one page after another, in this process (ms per page)."""
    times: dict[str, float] = {}

    def timed(name: str, call: Callable[..., object], *args: object, **kwargs: object) -> object:
        started = time.perf_counter()
        value = call(*args, **kwargs)
        times[name] = times.get(name, 0.0) + time.perf_counter() - started
        return value

    server = FileServerProcess(cache)
    with tempfile.TemporaryDirectory() as tmp, Sandbox(workers=1, timeout=60) as sandbox:
        settings = settings_for(Path(tmp), 1)
        store.upgrade(settings.database_url)
        engine = store.create_engine(settings.database_url)
        pipeline = Pipeline(
            settings, session_factory=store.session_factory(engine), rules=rules, sandbox=sandbox
        )
        try:
            pipeline.extract_page(WARM_PAGE, None)
            extract_article(WARM_PAGE)
            articles: list[tuple[str, ExtractedArticle]] = []
            for page in pages:
                url = server.url("/" + quote(page.name))
                fetched = pipeline.fetcher.fetch(url)
                timed("fetch (guarded, loopback)", pipeline.fetcher.fetch, url)
                body = fetched.body
                article = timed("extract in the sandbox", pipeline.extract_page, body, url)
                with contextlib.suppress(Exception):
                    timed("extract in-process", extract_article, body, url)
                if isinstance(article, ExtractedArticle):
                    articles.append((url, article))
            now = clock.now()
            for url, article in articles:
                report = Report(
                    text=article.text,
                    title=article.title,
                    url=url,
                    outlet=None,
                    published=None,
                    published_is_estimate=True,
                    origin_kind=ArticleOrigin.BACKFILL,
                )
                timed("dedup signature", dedup.signature, report.text, settings.dedup)
                timed("rules", pipeline.events_for, report, now=now)
                timed("ingest (dedup, rules, store)", pipeline.ingest, report, now=now, alert=False)
        finally:
            pipeline.close()
            engine.dispose()
            server.stop()
    print(
        f"stages, one page after another in one process ({len(pages)} pages, "
        f"{len(articles)} with text):"
    )
    for name, seconds in times.items():
        print(f"  {name:30s} {seconds * 1000 / len(pages):6.2f} ms/page")


# -- main ----------------------------------------------------------------------------


def main() -> int:
    # Most cache pages are not in English; the pipeline's warning for each is not a figure.
    logging.getLogger("service.pipeline").setLevel(logging.ERROR)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=None, help="the trafilatura cache dir")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=2,
        help="backfill --concurrency, sandbox workers and plain processes",
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds per side (medians)")
    parser.add_argument("--stages", action="store_true", help="also time each stage alone")
    args = parser.parse_args()
    cache: Path = args.cache or default_cache()
    if not cache.is_dir():
        print(f"error: no page cache at {cache} (give --cache DIR)", file=sys.stderr)
        return 2
    n = max(1, args.concurrency)
    pages = sorted(p for p in cache.iterdir() if p.is_file())
    size = sum(p.stat().st_size for p in pages)
    print(f"pages: {len(pages)} from {cache} ({size / 1e6:.1f} MB)")
    print(f"machine: {machine()}")
    print(
        f"pipeline: Backfill.run --concurrency {n} (guarded fetch from 127.0.0.1, "
        f"extraction in {n} sandbox worker processes, dedup, rules, SQLite)"
    )
    print(f"plain: trafilatura alone in {n} processes, pages read from disk")
    rules = load_rules(PROJECT_RULES)
    server = FileServerProcess(cache)
    pool = multiprocessing.get_context("spawn").Pool(n, initializer=_plain_warm)
    sandbox = Sandbox(workers=n, timeout=60)
    try:
        pool.map(_plain_warm_task, range(n), chunksize=1)
        plain_pids = [p.pid for p in pool._pool if p.pid is not None]  # type: ignore[attr-defined]
        before = set(tree(os.getpid()))
        # Start every sandbox worker (and its trafilatura import) untimed.
        warm = [
            threading.Thread(target=sandbox.call, args=("extract", WARM_PAGE, None))
            for _ in range(n)
        ]
        for thread in warm:
            thread.start()
        for thread in warm:
            thread.join()
        worker_pids = sorted(set(tree(os.getpid())) - before)
        urls = tuple(server.url("/" + quote(page.name)) for page in pages)
        sources = {
            "backfill --dir": BackfillSource(SourceKind.DIR, str(cache)),
            "backfill --urls": BackfillSource(SourceKind.URLS, "bench", urls=urls),
        }
        piped: dict[str, list[Run]] = {name: [] for name in sources}
        plains: list[Run] = []
        for number in range(1, args.rounds + 1):
            for name, source in sources.items():
                p = pipeline_round(source, sandbox, worker_pids, rules, n)
                piped[name].append(p)
                print(
                    f"round {number}: {name:15s} {len(pages) / p.seconds:5.1f} pages/s "
                    f"({p.cpu * 1000 / len(pages):.1f} ms CPU/page, of which main process "
                    f"{p.main_cpu * 1000 / len(pages):.1f}, {p.cpu / p.seconds:.2f} cores "
                    f"busy; {p.detail})"
                )
            plains.append(q := plain_round(pool, plain_pids, pages))
            print(
                f"round {number}: {'plain':15s} {len(pages) / q.seconds:5.1f} pages/s "
                f"({q.cpu * 1000 / len(pages):.1f} ms CPU/page, {q.cpu / q.seconds:.2f} cores busy)"
            )
    finally:
        pool.close()
        pool.join()
        sandbox.close()
        server.stop()
    if plains:
        summarise(piped, plains, len(pages), n)
    if args.stages:
        stages(pages, cache, rules)
    return 0


def summarise(piped: dict[str, list[Run]], plains: list[Run], pages: int, n: int) -> None:
    q_rate = statistics.median(pages / run.seconds for run in plains)
    q_cpu = statistics.median(run.cpu for run in plains) / pages
    print(
        f"plain trafilatura ({n} processes): {q_rate:.1f} pages/s, {q_cpu * 1000:.1f} ms CPU/page"
    )
    for name, runs in piped.items():
        p_rate = statistics.median(pages / run.seconds for run in runs)
        p_cpu = statistics.median(run.cpu for run in runs) / pages
        p_main = statistics.median(run.main_cpu for run in runs) / pages
        print(
            f"pipeline, {name} ({n} processes): {p_rate:.1f} pages/s, "
            f"{p_cpu * 1000:.1f} ms CPU/page (main process {p_main * 1000:.1f}, "
            f"sandbox workers {(p_cpu - p_main) * 1000:.1f})"
        )
        print(
            f"  ratio pipeline/plain, pages/s with {n} processes each: {p_rate / q_rate:.2f}; "
            f"per core (plain CPU/page over pipeline CPU/page): {q_cpu / p_cpu:.2f}"
        )
        # Each round's pipeline run against the plain run next to it: the machine's
        # speed drifts from minute to minute, and a pair shares most of the drift.
        paired = sorted(q.seconds / p.seconds for p, q in zip(runs, plains, strict=True))
        per_core = sorted(q.cpu / p.cpu for p, q in zip(runs, plains, strict=True))
        print(
            f"  round by round: ratio {statistics.median(paired):.2f} "
            f"({paired[0]:.2f}-{paired[-1]:.2f}), per core {statistics.median(per_core):.2f} "
            f"({per_core[0]:.2f}-{per_core[-1]:.2f})"
        )


def _plain_warm_task(_: int) -> None:
    _plain_warm()


if __name__ == "__main__":
    sys.exit(main())
