"""Every feed of the feedparser and W3C feed-validator test corpora, served over loopback,
fetched and parsed: zero crashes and exactly one outcome (ParsedFeed or FeedError) each.

feedparser's ``http`` cases carry ``Header:`` lines in a leading comment; they are sent
as real response headers.  One server and one fetcher serve the whole run.  Sockets
other than loopback are blocked by pytest-socket (pyproject addopts), so a sample that
names a public host cannot reach it; an audit hook also records any attempt.
"""

from __future__ import annotations

import collections
import ipaddress
import re
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote, unquote

import httpx
import pytest

from service.errors import FeedError
from service.fetch import Fetcher, FetchLimits
from service.parse import ParsedFeed, parse_feed
from tests.servers import LoopbackServer, Request, Response, shared_dir

_HEADER = re.compile(rb"^Header:\s*([^:\r\n]+):\s*(.*?)\s*$", re.MULTILINE)
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
def corpus_server() -> Iterator[tuple[LoopbackServer, Path]]:
    root = shared_dir() / "corpora"

    def serve(request: Request) -> Response:
        path = root / unquote(request.path.lstrip("/"))
        if not path.resolve().is_relative_to(root.resolve()) or not path.is_file():
            return Response(404)
        body = path.read_bytes()
        headers = {"Content-Type": "application/xml"}
        if "http" in path.name:
            for name, value in _HEADER.findall(body[:4096]):
                headers[name.decode("latin-1").strip()] = value.decode("latin-1")
        return Response(200, headers, body)

    server = LoopbackServer()
    server.fallback = serve
    with server:
        yield server, root


def test_every_corpus_feed_has_exactly_one_outcome(
    corpus_server: tuple[LoopbackServer, Path],
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
