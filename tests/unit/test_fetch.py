"""The guarded fetcher against httpx.MockTransport: no sockets, injected resolver and clock."""

from __future__ import annotations

import gzip
import ipaddress
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.errors import FetchError
from service.fetch import (
    USER_AGENT,
    BackoffPolicy,
    Fetcher,
    FetchKind,
    FetchLimits,
    address_allowed,
    backoff_seconds,
    next_due,
    parse_retry_after,
)

PUBLIC = "93.184.215.14"
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

Handler = Callable[[httpx.Request], httpx.Response]


def resolver_for(table: dict[str, list[str]]) -> Callable[[str, int], list[str]]:
    def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise OSError(-2, "Name or service not known")
        return table[host]

    return resolve


def make_fetcher(
    handler: Handler,
    *,
    hosts: dict[str, list[str]] | None = None,
    monotonic: Callable[[], float] = time.monotonic,
    **limits: object,
) -> Fetcher:
    client = httpx.Client(transport=httpx.MockTransport(handler))
    table = {"feeds.example": [PUBLIC], "other.example": ["93.184.215.15"]}
    table.update(hosts or {})
    return Fetcher(
        client,
        FetchLimits(**limits),  # type: ignore[arg-type]
        resolver=resolver_for(table),
        now=lambda: NOW,
        monotonic=monotonic,
    )


def host_of(request: httpx.Request) -> str:
    return request.headers["host"]


# ------------------------------------------------------------------ requests and validators


def test_request_headers_and_pinning() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            200, content=b"<rss/>", headers={"Content-Type": "application/rss+xml"}
        )

    result = make_fetcher(handler).fetch("https://feeds.example/rss?x=1")
    request = seen[0]
    assert request.headers["user-agent"] == USER_AGENT
    assert request.headers["accept-encoding"] == "gzip, deflate"
    assert request.headers["connection"] == "close"
    # Pinned: the connection goes to the vetted address, the server sees its own name.
    assert request.url.host == PUBLIC
    assert request.headers["host"] == "feeds.example"
    assert request.extensions["sni_hostname"] == "feeds.example"
    assert result.status == 200
    assert result.body == b"<rss/>"
    assert result.final_url == "https://feeds.example/rss?x=1"
    assert result.content_type == "application/rss+xml"
    assert not result.not_modified


def test_conditional_get_round_trip() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.headers.get("if-none-match") == '"v1"':
            return httpx.Response(304, headers={"ETag": '"v1"'})
        return httpx.Response(
            200,
            content=b"<rss/>",
            headers={"ETag": '"v1"', "Last-Modified": "Wed, 01 May 2024 10:00:00 GMT"},
        )

    fetcher = make_fetcher(handler)
    first = fetcher.fetch("http://feeds.example/rss")
    assert (first.etag, first.last_modified) == ('"v1"', "Wed, 01 May 2024 10:00:00 GMT")
    second = fetcher.fetch(
        "http://feeds.example/rss", etag=first.etag, last_modified=first.last_modified
    )
    assert second.not_modified and second.status == 304 and second.body == b""
    # Validators the 304 did not repeat are kept.
    assert second.last_modified == first.last_modified


def test_if_modified_since_sent() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(304)

    result = make_fetcher(handler).fetch("http://feeds.example/rss", last_modified="X-date")
    assert seen[0].headers["if-modified-since"] == "X-date"
    assert "if-none-match" not in seen[0].headers
    assert result.not_modified and result.last_modified == "X-date"


# ------------------------------------------------------------------ redirects


def redirect_chain(length: int) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        n = int(request.url.path.strip("/") or 0)
        if n < length:
            return httpx.Response(302, headers={"Location": f"/{n + 1}"})
        return httpx.Response(200, content=b"done")

    return handler


def test_five_redirects_followed() -> None:
    result = make_fetcher(redirect_chain(5)).fetch("http://feeds.example/0")
    assert result.body == b"done"
    assert result.final_url == "http://feeds.example/5"


def test_sixth_redirect_refused() -> None:
    with pytest.raises(FetchError) as info:
        make_fetcher(redirect_chain(6)).fetch("http://feeds.example/0")
    assert info.value.kind == FetchKind.REDIRECTS
    assert info.value.url == "http://feeds.example/0"


def test_redirect_loop_refused() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        target = "/b" if request.url.path == "/a" else "/a"
        return httpx.Response(301, headers={"Location": target})

    with pytest.raises(FetchError, match="redirect loop") as info:
        make_fetcher(handler).fetch("http://feeds.example/a")
    assert info.value.kind == FetchKind.REDIRECTS


def test_redirect_without_location() -> None:
    with pytest.raises(FetchError) as info:
        make_fetcher(lambda r: httpx.Response(302)).fetch("http://feeds.example/a")
    assert info.value.kind == FetchKind.REDIRECTS


@pytest.mark.parametrize(
    ("location", "kind"),
    [
        ("http://169.254.169.254/latest/meta-data/", FetchKind.BLOCKED_ADDRESS),
        ("http://10.0.0.1/", FetchKind.BLOCKED_ADDRESS),
        ("http://internal.example/", FetchKind.BLOCKED_ADDRESS),
        ("http://[::1]/", FetchKind.BLOCKED_ADDRESS),
        ("file:///etc/passwd", FetchKind.SCHEME),
        ("ftp://feeds.example/x", FetchKind.SCHEME),
        ("gopher://feeds.example/x", FetchKind.SCHEME),
    ],
    ids=["metadata", "rfc1918", "dns-to-private", "ipv6-loopback", "file", "ftp", "gopher"],
)
def test_every_redirect_hop_is_vetted(location: str, kind: FetchKind) -> None:
    hits: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        hits.append(str(request.url))
        return httpx.Response(302, headers={"Location": location})

    fetcher = make_fetcher(handler, hosts={"internal.example": ["192.168.1.20"]})
    with pytest.raises(FetchError) as info:
        fetcher.fetch("http://feeds.example/start")
    assert info.value.kind == kind
    assert len(hits) == 1  # the refused hop was never requested


def test_redirect_to_other_public_host_followed() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if host_of(request) == "feeds.example":
            return httpx.Response(308, headers={"Location": "https://other.example/moved"})
        assert request.url.host == "93.184.215.15"
        return httpx.Response(200, content=b"moved")

    result = make_fetcher(handler).fetch("http://feeds.example/start")
    assert result.final_url == "https://other.example/moved"
    assert result.body == b"moved"


# ------------------------------------------------------------------ address and scheme guards


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.8.9.10",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.0.1",
        "169.254.169.254",
        "100.64.0.1",
        "100.127.255.254",
        "0.0.0.0",
        "224.0.0.1",
        "239.255.255.250",
        "240.0.0.1",
        "255.255.255.255",
        "192.0.0.1",
        "198.18.0.1",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "fd12:3456::1",
        "ff02::1",
        "::ffff:10.0.0.1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "2002:a00:1::1",  # 6to4 wrapping 10.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64 wrapping 169.254.169.254
        "2001:db8::1",
        "not-an-ip",
    ],
)
def test_non_public_addresses_refused(address: str) -> None:
    assert not address_allowed(address)


@pytest.mark.parametrize("address", ["8.8.8.8", "93.184.215.14", "2606:4700:4700::1111"])
def test_public_addresses_allowed(address: str) -> None:
    assert address_allowed(address)


def test_allowed_networks_override() -> None:
    nets = (ipaddress.ip_network("127.0.0.1/32"),)
    assert address_allowed("127.0.0.1", nets)
    assert not address_allowed("127.0.0.2", nets)
    assert not address_allowed("10.0.0.1", nets)


def test_any_private_answer_refuses_the_host() -> None:
    fetcher = make_fetcher(
        lambda r: httpx.Response(200), hosts={"mixed.example": [PUBLIC, "10.0.0.7"]}
    )
    with pytest.raises(FetchError) as info:
        fetcher.fetch("http://mixed.example/")
    assert info.value.kind == FetchKind.BLOCKED_ADDRESS
    assert "10.0.0.7" in str(info.value)


def test_private_allowed_when_configured() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=b"ok")

    fetcher = make_fetcher(handler, allow_private_networks=True)
    assert fetcher.fetch("http://10.0.0.1/feed").body == b"ok"
    assert fetcher.fetch("http://localhost:8080/feed").body == b"ok"
    assert seen[1].url.host == "localhost"  # not resolved, not pinned


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://feeds.example/", "javascript:alert(1)", "data:,x"]
)
def test_scheme_refused(url: str) -> None:
    with pytest.raises(FetchError) as info:
        make_fetcher(lambda r: httpx.Response(200)).fetch(url)
    assert info.value.kind == FetchKind.SCHEME


def test_unresolvable_host() -> None:
    with pytest.raises(FetchError) as info:
        make_fetcher(lambda r: httpx.Response(200)).fetch("http://nowhere.invalid/feed")
    assert info.value.kind == FetchKind.DNS
    assert "nowhere.invalid" in str(info.value)


# ------------------------------------------------------------------ encodings and size


def respond(body: bytes, **headers: str) -> Handler:
    # An iterator keeps the response streaming, as from a real server.
    return lambda request: httpx.Response(
        200, content=iter([body]), headers={k.replace("_", "-"): v for k, v in headers.items()}
    )


PAYLOAD = b"<rss>" + b"report " * 2000 + b"</rss>"


@pytest.mark.parametrize(
    ("body", "coding"),
    [
        (gzip.compress(PAYLOAD), "gzip"),
        (gzip.compress(PAYLOAD), "x-gzip"),
        (gzip.compress(PAYLOAD[:5000]) + gzip.compress(PAYLOAD[5000:]), "gzip"),  # two members
        (zlib.compress(PAYLOAD), "deflate"),
        (zlib.compress(PAYLOAD)[2:-4], "deflate"),  # raw deflate, no zlib wrapper
        (PAYLOAD, "identity"),
        (gzip.compress(PAYLOAD), "identity, gzip"),
    ],
    ids=["gzip", "x-gzip", "gzip-members", "deflate", "raw-deflate", "identity", "identity-gzip"],
)
def test_supported_encodings_decoded(body: bytes, coding: str) -> None:
    result = make_fetcher(respond(body, Content_Encoding=coding)).fetch("http://feeds.example/")
    assert result.body == PAYLOAD


@pytest.mark.parametrize(
    ("coding", "message"),
    [
        ("gzip, gzip", "stacked"),
        ("deflate, gzip", "stacked"),
        ("br", "unsupported"),
        ("compress", "unsupported"),
        ("zstd", "unsupported"),
    ],
)
def test_stacked_and_unknown_encodings_refused(coding: str, message: str) -> None:
    body = gzip.compress(gzip.compress(b"\0" * 100_000))
    with pytest.raises(FetchError, match=message) as info:
        make_fetcher(respond(body, Content_Encoding=coding)).fetch("http://feeds.example/")
    assert info.value.kind == FetchKind.ENCODING


def test_corrupt_gzip_is_an_encoding_error() -> None:
    body = b"\x1f\x8b\x08\x00" + b"garbage" * 10
    with pytest.raises(FetchError) as info:
        make_fetcher(respond(body, Content_Encoding="gzip")).fetch("http://feeds.example/")
    assert info.value.kind == FetchKind.ENCODING


def test_decoded_size_capped_on_gzip() -> None:
    body = gzip.compress(b"\0" * (4 << 20))  # 4 MiB decoded, ~4 KB on the wire
    fetcher = make_fetcher(respond(body, Content_Encoding="gzip"), max_bytes=1 << 20)
    with pytest.raises(FetchError) as info:
        fetcher.fetch("http://feeds.example/")
    assert info.value.kind == FetchKind.TOO_LARGE


def test_declared_length_over_cap_refused_before_reading() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        def never() -> Iterator[bytes]:
            raise AssertionError("body must not be read")
            yield b""

        return httpx.Response(200, headers={"Content-Length": "2000"}, content=never())

    with pytest.raises(FetchError) as info:
        make_fetcher(handler, max_bytes=1000).fetch("http://feeds.example/")
    assert info.value.kind == FetchKind.TOO_LARGE


def test_body_exactly_at_cap_accepted() -> None:
    result = make_fetcher(respond(b"x" * 1000), max_bytes=1000).fetch("http://feeds.example/")
    assert len(result.body) == 1000
    with pytest.raises(FetchError):
        make_fetcher(respond(b"x" * 1001), max_bytes=1000).fetch("http://feeds.example/")


def test_per_call_cap_overrides_default() -> None:
    fetcher = make_fetcher(respond(b"x" * 5000))
    with pytest.raises(FetchError) as info:
        fetcher.fetch("http://feeds.example/", max_bytes=100)
    assert info.value.kind == FetchKind.TOO_LARGE


# ------------------------------------------------------------------ statuses, errors, time


def test_http_error_status() -> None:
    with pytest.raises(FetchError) as info:
        make_fetcher(lambda r: httpx.Response(404)).fetch("http://feeds.example/")
    assert (info.value.kind, info.value.status, info.value.retry_after) == (
        "http_status",
        404,
        None,
    )


def test_retry_after_seconds_and_date() -> None:
    fetcher = make_fetcher(lambda r: httpx.Response(429, headers={"Retry-After": "120"}))
    with pytest.raises(FetchError) as info:
        fetcher.fetch("http://feeds.example/")
    assert (info.value.status, info.value.retry_after) == (429, 120.0)
    date = "Wed, 01 May 2024 13:00:00 GMT"  # an hour after NOW
    fetcher = make_fetcher(lambda r: httpx.Response(503, headers={"Retry-After": date}))
    with pytest.raises(FetchError) as info:
        fetcher.fetch("http://feeds.example/")
    assert (info.value.status, info.value.retry_after) == (503, 3600.0)


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (httpx.ConnectError("refused"), FetchKind.NETWORK),
        (httpx.RemoteProtocolError("garbage"), FetchKind.NETWORK),
        (httpx.ReadTimeout("slow"), FetchKind.TIMEOUT),
        (httpx.ConnectTimeout("slow"), FetchKind.TIMEOUT),
        (httpx.PoolTimeout("busy"), FetchKind.TIMEOUT),
    ],
)
def test_transport_errors_mapped(exc: Exception, kind: FetchKind) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    with pytest.raises(FetchError) as info:
        make_fetcher(handler).fetch("http://feeds.example/")
    assert info.value.kind == kind
    assert info.value.__cause__ is exc


def test_total_deadline_checked_while_streaming() -> None:
    ticks = iter(range(1000))

    def monotonic() -> float:
        return float(next(ticks))  # one second per look at the clock

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=iter([b"x"] * 100))

    fetcher = make_fetcher(handler, monotonic=monotonic, total_timeout=10.0)
    with pytest.raises(FetchError, match="deadline") as info:
        fetcher.fetch("http://feeds.example/")
    assert info.value.kind == FetchKind.TIMEOUT


def test_per_host_concurrency_limit() -> None:
    active: dict[str, int] = {}
    peak: dict[str, int] = {}
    lock = threading.Lock()

    def handler(request: httpx.Request) -> httpx.Response:
        host = host_of(request)
        with lock:
            active[host] = active.get(host, 0) + 1
            peak[host] = max(peak.get(host, 0), active[host])
        time.sleep(0.05)
        with lock:
            active[host] -= 1
        return httpx.Response(200, content=b"ok")

    fetcher = make_fetcher(handler, per_host_concurrency=2)
    urls = ["http://feeds.example/"] * 6 + ["http://other.example/"] * 6
    threads = [threading.Thread(target=fetcher.fetch, args=(u,)) for u in urls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak == {"feeds.example": 2, "other.example": 2}


# ------------------------------------------------------------------ pure scheduling helpers


@given(
    n=st.integers(min_value=1, max_value=10_000),
    base=st.floats(min_value=1, max_value=3600),
    ceiling=st.floats(min_value=1, max_value=7 * 86400),
    rand=st.floats(min_value=0, max_value=1),
)
def test_backoff_bounds(n: int, base: float, ceiling: float, rand: float) -> None:
    delay = backoff_seconds(n, base=base, ceiling=ceiling, rand=rand)
    full = min(ceiling, base * 2 ** min(n - 1, 64))
    assert full / 2 - 1e-6 <= delay <= full + 1e-6
    assert 0 < delay <= ceiling + 1e-6


@given(n=st.integers(min_value=1, max_value=200), rand=st.floats(min_value=0, max_value=1))
def test_backoff_monotone_in_errors(n: int, rand: float) -> None:
    kwargs = {"base": 60.0, "ceiling": 4 * 3600.0, "rand": rand}
    assert backoff_seconds(n, **kwargs) <= backoff_seconds(n + 1, **kwargs)


def test_backoff_none_without_errors() -> None:
    assert backoff_seconds(0, base=60, ceiling=3600, rand=0.5) == 0.0


@given(
    errors=st.integers(min_value=0, max_value=100_000),
    interval=st.integers(min_value=60, max_value=86400),
    retry_after=st.one_of(st.none(), st.floats(min_value=-1e9, max_value=1e9)),
    rand=st.floats(min_value=0, max_value=1),
)
def test_next_due_bounds(
    errors: int, interval: int, retry_after: float | None, rand: float
) -> None:
    policy = BackoffPolicy()
    due = next_due(
        NOW,
        interval=interval,
        consecutive_errors=errors,
        retry_after=retry_after,
        policy=policy,
        rand=rand,
    )
    wait = (due - NOW).total_seconds()
    assert wait >= interval  # never sooner than the feed's own interval
    upper = max(interval, policy.ceiling, policy.retry_after_max)
    assert wait <= upper + 1e-6  # a feed failing for days is still tried


def test_failing_feed_settles_at_ceiling() -> None:
    policy = BackoffPolicy(base=60, ceiling=3600)
    waits = [
        (
            next_due(
                NOW,
                interval=300,
                consecutive_errors=n,
                retry_after=None,
                policy=policy,
                rand=1.0,
            )
            - NOW
        ).total_seconds()
        for n in (1, 2, 3, 4, 5, 6, 7, 500)
    ]
    assert waits == [300, 300, 300, 480, 960, 1920, 3600, 3600]


def test_retry_after_honoured_but_clamped() -> None:
    policy = BackoffPolicy(retry_after_min=30, retry_after_max=3600)

    def wait(retry_after: float) -> float:
        due = next_due(
            NOW,
            interval=60,
            consecutive_errors=1,
            retry_after=retry_after,
            policy=policy,
            rand=0.0,
        )
        return (due - NOW).total_seconds()

    assert wait(900) == 900
    assert wait(10**9) == 3600
    assert wait(-5) == 60  # never shorter than the interval


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        (" 0 ", 0.0),
        ("Wed, 01 May 2024 12:10:00 GMT", 600.0),
        ("Wed, 01 May 2024 11:00:00 GMT", 0.0),  # in the past: clamped to the minimum
        ("soon", None),
        ("", None),
        (None, None),
        ("-5", None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == expected


def test_parse_retry_after_clamps() -> None:
    assert parse_retry_after("5", now=NOW, minimum=30, maximum=60) == 30
    assert parse_retry_after("86400", now=NOW, minimum=30, maximum=60) == 60
    later = (NOW + timedelta(days=3)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert parse_retry_after(later, now=NOW, maximum=3600) == 3600


def test_stalled_resolver_bounded_by_deadline() -> None:
    def slow(host: str, port: int) -> list[str]:
        time.sleep(2)
        return [PUBLIC]

    fetcher = Fetcher(
        httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(200))),
        FetchLimits(total_timeout=0.3),
        resolver=slow,
    )
    started = time.monotonic()
    with pytest.raises(FetchError) as info:
        fetcher.fetch("http://feeds.example/")
    assert info.value.kind == FetchKind.TIMEOUT
    assert time.monotonic() - started < 1.0
