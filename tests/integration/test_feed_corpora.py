"""Every feed of the feedparser and W3C feed-validator test corpora, served over loopback,
fetched and parsed: zero crashes and exactly one outcome (ParsedFeed or FeedError) each.

feedparser's ``http`` cases carry ``Header:`` lines in a leading comment; they are sent
as real response headers.  One server and one fetcher serve the whole run.  Sockets
other than loopback are blocked by pytest-socket (pyproject addopts), so a sample that
names a public host cannot reach it; an audit hook also records any attempt.
"""

from __future__ import annotations

import collections
import dataclasses
import ipaddress
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from service import store
from service.config import FeedSettings, load_settings
from service.errors import FeedError
from service.fetch import Fetcher, FetchLimits
from service.parse import ParsedFeed, parse_feed
from service.pipeline import Pipeline, PollLimits
from service.rules import load_rules
from tests.servers import REPO_ROOT, FileServerProcess, shared_dir

_SKIP = {"SOURCE.md", "LICENSE"}
_outbound: list[object] = []


def _audit(event: str, args: tuple[object, ...]) -> None:
    if event == "socket.connect":
        address = args[1]
        host = address[0] if isinstance(address, tuple) else address
        if host not in ("127.0.0.1", "::1"):
            _outbound.append(address)
    elif event == "urllib.Request":
        _outbound.append(args[0])


sys.addaudithook(_audit)


def corpus_files() -> list[Path]:
    root = shared_dir() / "corpora"
    files = [
        path
        for name in ("feedparser", "feedvalidator")
        for path in sorted((root / name).rglob("*"))
        if path.is_file() and path.name not in _SKIP
    ]
    assert len(files) > 4000, "the feed corpora look incomplete"
    return files


@pytest.fixture(scope="module")
def corpus_server() -> Iterator[tuple[FileServerProcess, Path]]:
    root = shared_dir() / "corpora"
    server = FileServerProcess(root)
    try:
        yield server, root
    finally:
        server.stop()


def test_every_corpus_feed_has_exactly_one_outcome(
    corpus_server: tuple[FileServerProcess, Path],
) -> None:
    server, root = corpus_server
    files = corpus_files()
    outcomes: dict[str, str] = {}
    crashes: list[str] = []
    kinds: collections.Counter[str] = collections.Counter()
    started = time.monotonic()
    limits = FetchLimits(
        total_timeout=10,
        per_host_concurrency=8,
        allowed_networks=(ipaddress.ip_network("127.0.0.1/32"),),
    )
    with httpx.Client(limits=httpx.Limits(max_connections=16)) as client:
        fetcher = Fetcher(client, limits)

        def poll(path: Path) -> tuple[str, str]:
            rel = path.relative_to(root).as_posix()
            url = server.url("/" + quote(rel))
            try:
                fetched = fetcher.fetch(url)
                result = parse_feed(fetched.body, url, headers=fetched.headers)
                assert isinstance(result, ParsedFeed)
                return rel, "parsed"
            except FeedError as exc:
                return rel, type(exc).__name__
            except Exception as exc:  # a crash: the thing this test exists to catch
                return rel, f"CRASH {type(exc).__name__}: {exc}"

        with ThreadPoolExecutor(max_workers=8) as pool:
            for rel, outcome in pool.map(poll, files):
                if outcome.startswith("CRASH"):
                    crashes.append(f"{rel}: {outcome}")
                    continue
                assert rel not in outcomes
                outcomes[rel] = outcome
                kinds[outcome] += 1
    elapsed = time.monotonic() - started
    print(f"\n{len(files)} feeds in {elapsed:.1f}s: {dict(kinds)}")
    assert crashes == []
    assert len(outcomes) == len(files)
    assert kinds["FetchError"] == 0  # every file was served; failures are the parser's
    assert kinds["parsed"] > len(files) // 2
    assert _outbound == []


def test_corpus_sample_polled_through_the_pipeline(
    corpus_server: tuple[FileServerProcess, Path], tmp_path: Path
) -> None:
    """Every 16th corpus feed polled by the real pipeline: one recorded outcome each.

    Article links in the corpus name public hosts; the resolver here knows none of
    them, so those pages fail fast (dns) and the entries' own text is stored.
    """
    server, root = corpus_server
    files = corpus_files()[::16]
    url = f"sqlite:///{tmp_path / 'service.db'}"
    config = tmp_path / "service.toml"
    config.write_text(f'[database]\nurl = "{url}"\n[scheduler]\nworkers = 4\n')
    (tmp_path / "feeds.toml").write_text("")
    base = load_settings(config, environ={})
    feeds = tuple(
        FeedSettings(f"f{i}", server.url("/" + quote(p.relative_to(root).as_posix())), "X", 600)
        for i, p in enumerate(files)
    )
    settings = dataclasses.replace(base, feeds=feeds)
    store.upgrade(url)
    engine = store.create_engine(url)

    def resolve(host: str, port: int) -> list[str]:
        if host in ("127.0.0.1", "localhost"):
            return ["127.0.0.1"]
        raise OSError(-2, "Name or service not known")

    limits = FetchLimits(
        total_timeout=10,
        per_host_concurrency=8,
        allowed_networks=(ipaddress.ip_network("127.0.0.1/32"),),
    )
    started = time.monotonic()
    with httpx.Client() as client:
        pipeline = Pipeline(
            settings,
            session_factory=store.session_factory(engine),
            rules=load_rules(REPO_ROOT / "config" / "rules"),
            fetcher=Fetcher(client, limits, resolver=resolve),
            limits=PollLimits(max_articles=3, sandbox_timeout=20),
        )
        try:
            pipeline.sync_feeds()
            outcomes = pipeline.poll_all(now=datetime(2024, 5, 1, tzinfo=UTC))
        finally:
            pipeline.close()
    with store.session_scope(store.session_factory(engine)) as session:
        states = store.list_feeds(session, feeds)
        articles = store.count_articles(session)
    engine.dispose()
    statuses = collections.Counter(o.status.value for o in outcomes)
    print(
        f"\n{len(files)} feeds through the pipeline in {time.monotonic() - started:.1f}s: "
        f"{dict(statuses)}, {articles} articles"
    )
    assert len(outcomes) == len(files)
    assert statuses["crashed"] == 0
    assert all(s.last_polled is not None for s in states)
    # An ok poll leaves no error; it may leave a warning (loose parsing, a charset
    # contradiction...), shown as "warning: ..." until a poll without one.
    assert all(
        (s.consecutive_errors == 0)
        == (s.last_error is None or s.last_error.startswith("warning: "))
        for s in states
    )
    assert _outbound == []
