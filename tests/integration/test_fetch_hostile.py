"""Hostile HTTP servers on 127.0.0.1: each case ends in a clear per-feed error, in time,
with bounded memory.

The guard must let the test server itself through (``allowed_networks`` holds
127.0.0.1/32 only) while a redirect from it to any other private address is refused.
"""

from __future__ import annotations

import ipaddress
import time
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from service.errors import FetchError
from service.fetch import Fetcher, FetchKind, FetchLimits
from tests import servers
from tests.servers import LoopbackServer

DEADLINE = 1.0
READ_TIMEOUT = 0.5
CAP = 2 * 2**20
LOOPBACK = (ipaddress.ip_network("127.0.0.1/32"),)


@pytest.fixture(scope="module")
def server() -> Iterator[LoopbackServer]:
    srv = LoopbackServer(max_handler_seconds=15)
    bomb, _ = servers.gzip_bomb(1 << 28)
    srv.route("/drip", servers.slow_drip(0.2))
    srv.route("/header-drip", servers.header_drip(0.2))
    srv.route("/silent", servers.silent())
    srv.route("/endless", servers.endless_body())
    srv.route("/bomb", bomb)
    srv.route("/stacked", servers.stacked_gzip())
    srv.route("/loop-a", servers.redirect("/loop-b"))
    srv.route("/loop-b", servers.redirect("/loop-a"))
    for i in range(8):
        srv.route(f"/hop{i}", servers.redirect(f"/hop{i + 1}", status=307))
    srv.route("/to-metadata", servers.redirect("http://169.254.169.254/latest/meta-data/"))
    srv.route("/to-rfc1918", servers.redirect("http://10.0.0.1/admin"))
    srv.route("/to-mapped", servers.redirect("http://[::ffff:192.168.0.1]/"))
    srv.route("/to-localhost", servers.redirect("http://127.0.0.2/"))
    srv.route("/to-file", servers.redirect("file:///etc/passwd"))
    srv.static("/ok", b'<rss version="2.0"><channel><title>ok</title></channel></rss>')
    with srv:
        yield srv


@pytest.fixture(scope="module")
def fetcher() -> Iterator[Fetcher]:
    limits = FetchLimits(
        total_timeout=DEADLINE,
        read_timeout=READ_TIMEOUT,
        connect_timeout=READ_TIMEOUT,
        max_bytes=CAP,
        allowed_networks=LOOPBACK,
    )
    with httpx.Client() as client:
        yield Fetcher(client, limits)


@dataclass
class Outcome:
    error: FetchError
    seconds: float
    peak_bytes: int


def fail(fetcher: Fetcher, url: str, **kwargs: object) -> Outcome:
    tracemalloc.start()
    started = time.monotonic()
    try:
        fetcher.fetch(url, **kwargs)  # type: ignore[arg-type]
    except FetchError as exc:
        error = exc
    else:
        pytest.fail(f"{url} was fetched")
    finally:
        seconds = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    print(f"{url}: {error.kind} after {seconds:.2f}s, peak {peak / 2**20:.1f} MiB")
    return Outcome(error, seconds, peak)


def test_the_loopback_server_itself_is_allowed(server: LoopbackServer, fetcher: Fetcher) -> None:
    assert fetcher.fetch(server.url("/ok")).status == 200


@pytest.mark.parametrize(
    ("path", "kind", "max_seconds"),
    [
        ("/drip", FetchKind.TIMEOUT, DEADLINE + 1.0),
        ("/header-drip", FetchKind.TIMEOUT, DEADLINE + 1.0),
        ("/silent", FetchKind.TIMEOUT, READ_TIMEOUT + 1.0),
        ("/endless", FetchKind.TOO_LARGE, DEADLINE),
        ("/bomb", FetchKind.TOO_LARGE, DEADLINE),
        ("/stacked", FetchKind.ENCODING, 1.0),
        ("/loop-a", FetchKind.REDIRECTS, 1.0),
        ("/hop0", FetchKind.REDIRECTS, 1.0),
        ("/to-metadata", FetchKind.BLOCKED_ADDRESS, 1.0),
        ("/to-rfc1918", FetchKind.BLOCKED_ADDRESS, 1.0),
        ("/to-mapped", FetchKind.BLOCKED_ADDRESS, 1.0),
        ("/to-localhost", FetchKind.BLOCKED_ADDRESS, 1.0),
        ("/to-file", FetchKind.SCHEME, 1.0),
    ],
)
def test_hostile_server(
    server: LoopbackServer, fetcher: Fetcher, path: str, kind: FetchKind, max_seconds: float
) -> None:
    outcome = fail(fetcher, server.url(path))
    assert outcome.error.kind == kind, outcome.error
    assert outcome.error.url == server.url(path)
    assert outcome.seconds < max_seconds
    # Bounded: the cap plus decoding pieces and bookkeeping, never the bomb's size.
    assert outcome.peak_bytes < 2 * CAP + 4 * 2**20


def test_default_cap_holds_against_a_gigabyte_bomb(server: LoopbackServer) -> None:
    """The 15 MiB default against a body that decodes to 256 MiB."""
    with httpx.Client() as client:
        fetcher = Fetcher(client, FetchLimits(allowed_networks=LOOPBACK))
        outcome = fail(fetcher, server.url("/bomb"))
    assert outcome.error.kind == FetchKind.TOO_LARGE
    assert outcome.peak_bytes < 40 * 2**20


def test_connection_refused_is_a_network_error(fetcher: Fetcher) -> None:
    outcome = fail(fetcher, f"http://127.0.0.1:{servers.free_port()}/feed")
    assert outcome.error.kind == FetchKind.NETWORK


def test_private_target_refused_without_override() -> None:
    """With no override the loopback server itself is off limits, before any connect."""
    with httpx.Client() as client:
        fetcher = Fetcher(client, FetchLimits())
        outcome = fail(fetcher, "http://127.0.0.1:9/feed")
    assert outcome.error.kind == FetchKind.BLOCKED_ADDRESS


def test_conditional_get_over_the_wire(server: LoopbackServer, fetcher: Fetcher) -> None:
    server.static("/cond", b"<rss/>", etag='"abc"', last_modified=1714550400)
    first = fetcher.fetch(server.url("/cond"))
    assert first.etag == '"abc"' and first.last_modified
    second = fetcher.fetch(server.url("/cond"), etag=first.etag, last_modified=first.last_modified)
    assert second.not_modified and second.body == b""
    sent = server.requests[-1].headers
    assert sent["if-none-match"] == '"abc"'
    assert sent["user-agent"].startswith("deirezzor-ingest/")
