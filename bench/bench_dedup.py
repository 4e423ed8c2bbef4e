"""Dedup index: query latency and memory at 100k and 1M documents, rebuild from the database.

For each size, synthetic documents (``--words`` random words from a 50 000-word
vocabulary) are signed with ``service.dedup.signature`` (the service's own code,
settings from ``config/service.toml`` defaults) and indexed in a
``service.dedup.DedupIndex``.  Then ``--queries`` lookups are timed: half are
reposts of indexed documents (a few words changed and 8 KB of reader comments
appended), half are new documents.  Printed: signing and indexing time, the
resident memory the index added (and its peak while building, and what the
index's own arrays hold), query latency p50/p99 (goal: p99 <= 2 ms at 1M) and the
share of reposts whose original came first.

Rebuild: ``--rebuild N`` stores N signatures in a fresh SQLite database (or
``--database-url``, e.g. a PostgreSQL database you created; it is migrated and
filled) and times loading them back into a new index, as a restarted daemon does.
``--rebuild-random`` stores random signature values instead of signing documents:
loading costs the same, and filling a database with a million takes minutes
instead of a quarter of an hour.

Run from the repository root:

    .venv/bin/python bench/bench_dedup.py                       # 100k and 1M, rebuild at 100k
    .venv/bin/python bench/bench_dedup.py --sizes 100000 --rebuild 20000
    .venv/bin/python bench/bench_dedup.py --sizes 0 --rebuild 1000000 --rebuild-random
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from datasketch import MinHashLSH  # type: ignore[import-untyped]  # noqa: E402

from service import dedup, models, store  # noqa: E402
from service.config import DedupSettings  # noqa: E402
from service.lsh import lsh_params  # noqa: E402

GOAL_P99_MS = 2.0


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def rss_mb(field: str = "VmRSS") -> float:
    """Resident memory (``VmHWM``: its peak so far) of this process in MiB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Corpus:
    """Reproducible synthetic documents: document ``i`` is the same text on every call."""

    def __init__(self, words: int, seed: int = 5) -> None:
        rng = random.Random(seed)
        self.vocab = [
            "".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=rng.randint(3, 9)))
            for _ in range(50_000)
        ]
        self.words = words
        self.comments = " ".join(rng.choices(self.vocab, k=1400))  # about 8 KB

    def text(self, i: int) -> str:
        rng = random.Random(i)
        return " ".join(rng.choices(self.vocab, k=self.words))

    def repost(self, i: int) -> str:
        rng = random.Random(-i - 1)
        tokens = self.text(i).split()
        for _ in range(3):
            tokens[rng.randrange(len(tokens))] = rng.choice(self.vocab)
        return " ".join(tokens) + "\n\n" + self.comments


def signatures(corpus: Corpus, n: int, settings: DedupSettings) -> Iterator[dedup.Signature]:
    for i in range(n):
        yield dedup.signature(corpus.text(i), settings)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


class DatasketchIndex:
    """The index this one replaced (for ``--baseline``): MinHashLSH and a dict of signatures."""

    def __init__(self, settings: DedupSettings) -> None:
        self.settings = settings
        self.lsh = MinHashLSH(threshold=settings.lsh_threshold, num_perm=settings.num_perm)
        self.signatures: dict[int, dedup.Signature] = {}

    def add(self, article_id: int, sig: dedup.Signature) -> None:
        self.lsh.insert(article_id, sig.lead_minhash(), check_duplication=False)
        self.signatures[article_id] = sig

    def candidates(self, sig: dedup.Signature) -> list[int]:
        scored = [
            (
                max(
                    dedup.estimated_jaccard(sig.lead, self.signatures[key].lead),
                    dedup.estimated_jaccard(sig.whole, self.signatures[key].whole),
                ),
                key,
            )
            for key in self.lsh.query(sig.lead_minhash())
        ]
        scored.sort(key=lambda item: (-item[0], item[1]))
        return [key for _, key in scored[: self.settings.max_candidates]]


def build(index: Any, n: int, corpus: Corpus, settings: DedupSettings) -> tuple[float, float]:
    """Sign and add documents 1..n; (signing seconds, indexing seconds)."""
    sign_s = index_s = 0.0
    for i in range(n):
        t = time.perf_counter()
        sig = dedup.signature(corpus.text(i), settings)
        t2 = time.perf_counter()
        index.add(i + 1, sig)
        sign_s += t2 - t
        index_s += time.perf_counter() - t2
        if (i + 1) % 100_000 == 0:
            print(f"  ... {i + 1} indexed", file=sys.stderr, flush=True)
    return sign_s, index_s


def bench_size(
    n: int, queries: int, corpus: Corpus, settings: DedupSettings, baseline: bool
) -> None:
    before = rss_mb()
    index = dedup.DedupIndex(settings)
    sign_s, index_s = build(index, n, corpus, settings)
    added = rss_mb() - before
    peak = rss_mb("VmHWM") - before
    arrays = index._index.nbytes() / 1024 / 1024
    print(
        f"{n:>9} docs: signed+indexed in {sign_s + index_s:.1f} s (signing {sign_s:.1f} s, "
        f"indexing {index_s:.1f} s: {index_s / n * 1e6:.0f} us/doc); index memory: RSS "
        f"+{added:.0f} MiB ({added * 1024 * 1024 / n:.0f} B/doc), peak +{peak:.0f} MiB, "
        f"its arrays {arrays:.0f} MiB ({arrays * 1024 * 1024 / n:.0f} B/doc)",
        flush=True,
    )
    old: DatasketchIndex | None = None
    if baseline:
        before = rss_mb()
        old = DatasketchIndex(settings)
        _, old_s = build(old, n, corpus, settings)
        old_added = rss_mb() - before
        print(
            f"{'':>9}       datasketch index: indexing {old_s:.1f} s "
            f"({old_s / n * 1e6:.0f} us/doc), RSS +{old_added:.0f} MiB "
            f"({old_added * 1024 * 1024 / n:.0f} B/doc)",
            flush=True,
        )

    rng = random.Random(n)
    latencies: list[float] = []
    cpu_times: list[float] = []
    old_latencies: list[float] = []
    found = reposts = differ = 0
    for q in range(queries):
        if q % 2 == 0:
            original = rng.randrange(n)
            sig = dedup.signature(corpus.repost(original), settings)
        else:
            original = -1
            sig = dedup.signature(corpus.text(n + q), settings)
        t, cpu = time.perf_counter(), time.thread_time()
        candidates = index.candidates(sig)
        latencies.append((time.perf_counter() - t) * 1000)
        cpu_times.append((time.thread_time() - cpu) * 1000)
        if old is not None:  # the same query right after: the same machine load
            t = time.perf_counter()
            differ += old.candidates(sig) != candidates
            old_latencies.append((time.perf_counter() - t) * 1000)
        if original >= 0:
            reposts += 1
            found += bool(candidates) and candidates[0] == original + 1
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    verdict = "meets" if p99 <= GOAL_P99_MS else "MISSES"
    print(
        f"{'':>9}       query p50 {p50:.3f} ms, p99 {p99:.3f} ms ({verdict} the "
        f"{GOAL_P99_MS:g} ms p99 goal), max {max(latencies):.3f} ms over {queries} queries "
        f"(CPU time of the thread: p50 {percentile(cpu_times, 50):.3f} ms, p99 "
        f"{percentile(cpu_times, 99):.3f} ms); repost's original ranked first {found}/{reposts}"
    )
    if old_latencies:
        print(
            f"{'':>9}       datasketch index, same queries interleaved: p50 "
            f"{percentile(old_latencies, 50):.3f} ms, p99 {percentile(old_latencies, 99):.3f} "
            f"ms, max {max(old_latencies):.3f} ms; answers that differ: {differ}/{queries}"
        )


def random_signatures(n: int, settings: DedupSettings) -> Iterator[dedup.Signature]:
    """Signatures of random values: as costly to store and load as real ones, free to make."""
    rng = np.random.default_rng(n)
    for start in range(0, n, 10_000):
        values = rng.integers(0, 2**32, (min(10_000, n - start), 2, settings.num_perm), "<u4")
        for lead, whole in values:
            yield dedup.Signature(lead.tobytes(), whole.tobytes(), 150, 148)


def bench_rebuild(
    n: int, corpus: Corpus, settings: DedupSettings, url: str | None, random_values: bool
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        store.upgrade(url)
        engine = store.create_engine(url)
        now = datetime.now(UTC)
        t = time.perf_counter()
        batch = 5000
        sigs = random_signatures(n, settings) if random_values else signatures(corpus, n, settings)
        with engine.begin() as conn:
            first = (conn.scalar(sa.select(sa.func.max(models.Article.id))) or 0) + 1
        for start in range(0, n, batch):
            rows = range(first + start, first + min(n, start + batch))
            with engine.begin() as conn:
                conn.execute(
                    sa.insert(models.Article),
                    [
                        {
                            "id": i,
                            "text": "-",
                            "content_hash": f"{i:064d}",
                            "origin_kind": "feed",
                            "fetched": now,
                        }
                        for i in rows
                    ],
                )
                conn.execute(
                    sa.insert(models.ArticleSignature),
                    [
                        {
                            "article_id": i,
                            "num_perm": settings.num_perm,
                            "words": s.words,
                            "shingles": s.shingles,
                            "lead": s.lead,
                            "whole": s.whole,
                        }
                        for i, s in zip(rows, sigs, strict=False)
                    ],
                )
        fill_s = time.perf_counter() - t
        backend = engine.url.get_backend_name()
        del sigs
        before = rss_mb()
        t = time.perf_counter()
        index = dedup.DedupIndex(settings)
        with store.session_scope(store.session_factory(engine)) as session:
            loaded = index.add_many(store.iter_signatures(session, num_perm=settings.num_perm))
        rebuild_s = time.perf_counter() - t
        added = rss_mb() - before
        engine.dispose()
    kind = "random" if random_values else "stored"
    print(
        f"rebuild from {backend}: {loaded} {kind} signatures loaded into a new index in "
        f"{rebuild_s:.1f} s ({loaded / rebuild_s:,.0f}/s), RSS +{added:.0f} MiB; "
        f"filling the database took {fill_s:.1f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--words", type=int, default=150, help="words per synthetic document")
    parser.add_argument("--rebuild", type=int, default=100_000, help="0 to skip")
    parser.add_argument(
        "--baseline",
        action="store_true",
        help="also build the datasketch index this one replaced and time both on the same "
        "queries (needs about 4.8 KB per document more memory)",
    )
    parser.add_argument("--database-url", help="database for the rebuild (default: temp SQLite)")
    parser.add_argument(
        "--rebuild-random",
        action="store_true",
        help="fill the rebuild's database with random signature values instead of signing "
        "documents (loading costs the same; saves the signing time at 1M)",
    )
    args = parser.parse_args()
    settings = DedupSettings()
    bands, rows = lsh_params(settings.lsh_threshold, settings.num_perm)
    print(
        f"machine: {platform.platform()}, {platform.python_implementation()} "
        f"{platform.python_version()}, {cpu_model()}, {os.cpu_count()} logical CPUs"
    )
    print(
        f"settings: num_perm={settings.num_perm}, shingle_words={settings.shingle_words}, "
        f"lead_words={settings.lead_words}, lsh_threshold={settings.lsh_threshold} "
        f"({bands} bands of {rows}); documents of {args.words} words"
    )
    corpus = Corpus(args.words)
    for n in filter(None, args.sizes):
        bench_size(n, args.queries, corpus, settings, args.baseline)
    if args.rebuild:
        bench_rebuild(args.rebuild, corpus, settings, args.database_url, args.rebuild_random)


if __name__ == "__main__":
    main()
