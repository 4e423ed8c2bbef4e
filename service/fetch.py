"""Guarded HTTP fetching over one injected ``httpx.Client`` (feeds, article pages, webhooks).

``Fetcher.fetch`` GETs feeds and pages; ``Fetcher.post`` sends one webhook attempt
through the same address guard and deadline, but never follows a redirect.

Every request goes through the same guards, because every URL we fetch came from
someone else's server (a feed, a redirect, an entry link):

* scheme: only ``http`` and ``https``;
* address: the host is resolved here (``getaddrinfo``) and every address must be a
  public unicast address (no loopback, private, link-local, multicast, unspecified,
  reserved, CGNAT ``100.64/10``; IPv4-mapped / 6to4 / Teredo / NAT64 IPv6 forms are
  unwrapped first) unless ``allow_private_networks`` is set or the address lies in
  ``allowed_networks``.  The connection is then *pinned* to the vetted address (the
  URL is rewritten to the IP, ``Host`` and the TLS SNI/certificate name stay the
  hostname), so a second DNS answer cannot swap in an internal address between check
  and connect.  The same check runs on every redirect hop;
* redirects: followed here, at most ``max_redirects``, each hop re-vetted;
* time: connect/read timeouts, plus a total wall-clock deadline per request.  httpx's
  read timeout is per ``recv`` so a server dripping one byte a second never trips it;
  a watchdog timer shuts the socket down at the deadline (which also covers a server
  dripping its *headers*), and the body loop checks the deadline after every chunk;
* size: the *decoded* body is capped (default 15 MiB), counted while decoding in
  bounded pieces: we decode ``gzip``/``deflate`` ourselves with ``max_length`` so a
  small compressed chunk cannot expand into one huge buffer; stacked
  (``gzip, gzip``) and unknown Content-Encodings are refused before decoding;
* politeness: a User-Agent naming the service, conditional GET, and a per-host
  concurrency limit;
* a 304 is "not modified" only as the answer to a conditional request: to a request
  that sent no validator it is a ``FetchError`` (``http_status``).

Each request sends ``Connection: close`` so that it owns a fresh connection whose
socket the watchdog can reach (a pooled connection gives no socket to the trace hook);
feed polling is not latency-sensitive, so the lost keep-alive is cheap.

The backoff / Retry-After / next-due helpers at the bottom are pure: ``now`` and the
random draw are parameters.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import enum
import heapq
import ipaddress
import itertools
import logging
import math
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from types import MappingProxyType
from typing import Any

import httpx

from service import clock
from service.errors import FetchError

log = logging.getLogger(__name__)

USER_AGENT = "deirezzor-ingest/0.1 (conflict-monitor report reader; feeds and article pages)"
DEFAULT_MAX_BYTES = 15 * 1024 * 1024
FEED_ACCEPT = (
    "application/atom+xml, application/rss+xml, application/rdf+xml, application/feed+json, "
    "application/xml;q=0.9, text/xml;q=0.9, application/json;q=0.5, */*;q=0.1"
)
HTML_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.1"

# Response headers kept on FetchResult; everything else is dropped at the boundary.
KEPT_HEADERS = (
    "content-type",
    "content-length",
    "content-encoding",
    "content-location",
    "etag",
    "last-modified",
    "retry-after",
    "date",
)
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_DECODE_PIECE = 64 * 1024
_SUPPORTED_CODINGS = frozenset({"gzip", "x-gzip", "deflate"})
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

# Host lookups run here so that a stalled resolver cannot outlast a request's deadline.
_RESOLVERS = concurrent.futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="resolve")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], list[str]]


class FetchKind(enum.StrEnum):
    """Why a fetch failed; stored as ``FetchError.kind``."""

    TIMEOUT = "timeout"
    TOO_LARGE = "too_large"
    ENCODING = "encoding"
    REDIRECTS = "redirects"
    BLOCKED_ADDRESS = "blocked_address"
    SCHEME = "scheme"
    DNS = "dns"
    HTTP_STATUS = "http_status"
    NETWORK = "network"


@dataclass(frozen=True, slots=True)
class FetchLimits:
    """The guard settings; one instance per service, built from Settings."""

    connect_timeout: float = 10.0
    read_timeout: float = 20.0
    total_timeout: float = 60.0
    max_bytes: int = DEFAULT_MAX_BYTES
    max_redirects: int = 5
    per_host_concurrency: int = 2
    allow_private_networks: bool = False
    # Exceptions to the address guard, e.g. the loopback test server.
    allowed_networks: tuple[IPNetwork, ...] = ()
    user_agent: str = USER_AGENT


@dataclass(frozen=True, slots=True)
class FetchResult:
    """One completed exchange: a 2xx body or a 304."""

    url: str
    final_url: str
    status: int
    headers: Mapping[str, str]
    body: bytes
    etag: str | None
    last_modified: str | None
    not_modified: bool
    retry_after: float | None = None
    duration_ms: int = 0

    @property
    def content_type(self) -> str | None:
        return self.headers.get("content-type")


# --------------------------------------------------------------------------- guards


def _unwrap(ip: IPAddress) -> list[IPAddress]:
    """The address plus any IPv4 address embedded in it (mapped, 6to4, Teredo, NAT64)."""
    found: list[IPAddress] = [ip]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            found.append(ip.ipv4_mapped)
        if ip.sixtofour is not None:
            found.append(ip.sixtofour)
        if ip.teredo is not None:
            found.extend(ip.teredo)
        if ip in _NAT64:
            found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


def _is_public(ip: IPAddress) -> bool:
    return (
        ip.is_global
        and not ip.is_multicast
        and not ip.is_reserved
        and not ip.is_unspecified
        and not ip.is_loopback
        and not ip.is_link_local
        and not ip.is_private
        and ip not in _CGNAT
    )


def address_allowed(address: str, allowed_networks: tuple[IPNetwork, ...] = ()) -> bool:
    """True when ``address`` may be connected to with private networks disallowed."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if any(ip in net for net in allowed_networks if net.version == ip.version):
        return True
    return all(_is_public(candidate) for candidate in _unwrap(ip))


def default_resolver(host: str, port: int) -> list[str]:
    """All addresses ``host`` resolves to (TCP), in resolver order, without duplicates."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    seen: list[str] = []
    for info in infos:
        addr = str(info[4][0])
        if addr not in seen:
            seen.append(addr)
    return seen


def _content_codings(value: str | None) -> list[str]:
    if not value:
        return []
    return [
        c.strip().lower() for c in value.split(",") if c.strip() and c.strip().lower() != "identity"
    ]


class _Decoder:
    """Incremental gzip/deflate decoding in pieces of at most ``_DECODE_PIECE`` bytes."""

    def __init__(self, coding: str | None) -> None:
        self._coding = coding
        self._obj: Any = None
        self._started = False
        if coding in ("gzip", "x-gzip"):
            self._obj = zlib.decompressobj(zlib.MAX_WBITS | 16)
        elif coding == "deflate":
            self._obj = zlib.decompressobj()

    def feed(self, data: bytes) -> Iterator[bytes]:
        if self._obj is None:
            if data:
                yield data
            return
        if self._coding == "deflate" and not self._started:
            self._started = True
            try:
                probe = zlib.decompressobj()
                first = probe.decompress(data, _DECODE_PIECE)
                self._obj = probe
                if first:
                    yield first
                data = probe.unconsumed_tail
            except zlib.error:
                # Some servers send raw deflate without the zlib wrapper (httpx does the same).
                self._obj = zlib.decompressobj(-zlib.MAX_WBITS)
        while data:
            try:
                out = self._obj.decompress(data, _DECODE_PIECE)
            except zlib.error as exc:
                raise ValueError(f"corrupt {self._coding} stream: {exc}") from exc
            if out:
                yield out
            if self._obj.eof:
                rest = self._obj.unused_data
                if not rest or self._coding == "deflate":
                    return
                # A further gzip member (concatenated gzip is legal).
                self._obj = zlib.decompressobj(zlib.MAX_WBITS | 16)
                data = rest
            else:
                data = self._obj.unconsumed_tail


class _Watchdog:
    """Shuts the request's socket down when the total deadline passes.

    The socket comes from httpcore's ``trace`` extension (connect_tcp / start_tls).
    ``shutdown`` wakes a blocked ``recv`` in another thread; ``close`` would not.
    One reaper thread serves every watchdog (a timer thread per request costs more
    than a loopback request).
    """

    def __init__(self, seconds: float) -> None:
        self.fired = False
        self.cancelled = False
        self._seconds = max(seconds, 0.0)
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()

    def __enter__(self) -> _Watchdog:
        _REAPER.watch(time.monotonic() + self._seconds, self)
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self.cancelled = True

    def trace(self, name: str, info: Mapping[str, Any]) -> None:
        if name not in ("connection.connect_tcp.complete", "connection.start_tls.complete"):
            return
        stream = info.get("return_value")
        sock = stream.get_extra_info("socket") if stream is not None else None
        if not isinstance(sock, socket.socket):
            return
        with self._lock:
            self._sock = sock
            if self.fired:
                self._shutdown()

    def fire(self) -> None:
        with self._lock:
            if self.cancelled:
                return
            self.fired = True
            self._shutdown()

    def _shutdown(self) -> None:
        if self._sock is None:
            return
        # OSError: already closed, the request finished in time.
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)


class _Reaper:
    """One daemon thread firing watchdogs at their deadlines (a heap of deadlines)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, _Watchdog]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def watch(self, when: float, dog: _Watchdog) -> None:
        with self._cond:
            heapq.heappush(self._heap, (when, next(self._order), dog))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="fetch-deadlines", daemon=True
                )
                self._thread.start()
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap:
                    self._cond.wait()
                when, _, dog = self._heap[0]
                delay = when - time.monotonic()
                if delay > 0 and not dog.cancelled:
                    self._cond.wait(delay)
                    continue
                heapq.heappop(self._heap)
            dog.fire()


_REAPER = _Reaper()


@dataclass(frozen=True, slots=True)
class _Target:
    url: httpx.URL  # what is sent (pinned to an IP when guarding)
    host: str  # the hostname, for Host/SNI and the per-host limit
    pinned: bool


@dataclass(slots=True)
class _HostSlots:
    limit: int
    lock: threading.Lock = field(default_factory=threading.Lock)
    slots: dict[str, threading.BoundedSemaphore] = field(default_factory=dict)

    def get(self, host: str) -> threading.BoundedSemaphore:
        with self.lock:
            sem = self.slots.get(host)
            if sem is None:
                sem = self.slots[host] = threading.BoundedSemaphore(self.limit)
            return sem


# --------------------------------------------------------------------------- fetcher


class Fetcher:
    """Guarded GETs over one shared ``httpx.Client``; thread-safe."""

    def __init__(
        self,
        client: httpx.Client,
        limits: FetchLimits | None = None,
        *,
        resolver: Resolver = default_resolver,
        now: Callable[[], datetime] = clock.now,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.limits = limits or FetchLimits()
        self._resolver = resolver
        self._now = now
        self._monotonic = monotonic
        self._hosts = _HostSlots(max(1, self.limits.per_host_concurrency))

    def fetch(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        accept: str = FEED_ACCEPT,
        max_bytes: int | None = None,
    ) -> FetchResult:
        """GET ``url`` through every guard; raise ``FetchError(kind=...)`` on any refusal."""
        limits = self.limits
        cap = limits.max_bytes if max_bytes is None else max_bytes
        started = self._monotonic()
        deadline = started + limits.total_timeout
        current = url
        visited = {url}
        for hop in range(limits.max_redirects + 1):
            target = self._vet(url, current, deadline)
            outcome = self._exchange(
                url, current, target, etag, last_modified, accept, cap, deadline
            )
            if isinstance(outcome, FetchResult):
                duration = int((self._monotonic() - started) * 1000)
                log.debug(
                    "Fetched",
                    extra={
                        "url": url,
                        "status": outcome.status,
                        "duration_ms": duration,
                        "hops": hop,
                    },
                )
                return _with_duration(outcome, duration)
            nxt = outcome
            if nxt in visited:
                raise FetchError(url, f"redirect loop at {nxt}", kind=FetchKind.REDIRECTS)
            visited.add(nxt)
            current = nxt
        raise FetchError(
            url, f"more than {limits.max_redirects} redirects", kind=FetchKind.REDIRECTS
        )

    # -- one hop --------------------------------------------------------------

    def _resolve(self, host: str, port: int, deadline: float) -> list[str]:
        """The resolver under the request's deadline.

        ``getaddrinfo`` has no timeout of its own; a stalled lookup is left to finish
        in its thread while this request fails in time.
        """
        future = _RESOLVERS.submit(self._resolver, host, port)
        try:
            return future.result(timeout=max(deadline - self._monotonic(), 0.001))
        except concurrent.futures.TimeoutError as exc:
            raise TimeoutError(host) from exc

    def _vet(self, origin: str, url: str, deadline: float) -> _Target:
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, TypeError, ValueError) as exc:
            raise FetchError(origin, f"invalid URL {url!r}", kind=FetchKind.SCHEME) from exc
        if parsed.scheme not in ("http", "https"):
            raise FetchError(
                origin, f"scheme not allowed: {parsed.scheme!r}", kind=FetchKind.SCHEME
            )
        if not parsed.host:
            raise FetchError(origin, f"URL has no host: {url!r}", kind=FetchKind.SCHEME)
        host = parsed.raw_host.decode("ascii").lower()
        if self.limits.allow_private_networks:
            return _Target(parsed, host, pinned=False)
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        literal = parsed.host
        try:
            ipaddress.ip_address(literal)
            addresses = [literal]
        except ValueError:
            try:
                addresses = self._resolve(host, port, deadline)
            except TimeoutError as exc:
                raise FetchError(
                    origin, f"cannot resolve {host}: timed out", kind=FetchKind.TIMEOUT
                ) from exc
            except (OSError, UnicodeError) as exc:
                raise FetchError(
                    origin, f"cannot resolve {host}: {exc}", kind=FetchKind.DNS
                ) from exc
        if not addresses:
            raise FetchError(origin, f"cannot resolve {host}: no address", kind=FetchKind.DNS)
        for address in addresses:
            if not address_allowed(address, self.limits.allowed_networks):
                raise FetchError(
                    origin,
                    f"{host} resolves to a non-public address {address}",
                    kind=FetchKind.BLOCKED_ADDRESS,
                )
        return _Target(parsed.copy_with(host=addresses[0]), host, pinned=literal != addresses[0])

    def _exchange(
        self,
        origin: str,
        current: str,
        target: _Target,
        etag: str | None,
        last_modified: str | None,
        accept: str,
        cap: int,
        deadline: float,
    ) -> FetchResult | str:
        remaining = deadline - self._monotonic()
        if remaining <= 0:
            raise FetchError(origin, "total deadline exceeded", kind=FetchKind.TIMEOUT)
        sem = self._hosts.get(target.host)
        if not sem.acquire(timeout=remaining):
            raise FetchError(
                origin, f"waited too long for a slot on {target.host}", kind=FetchKind.TIMEOUT
            )
        try:
            return self._exchange_locked(
                origin, current, target, etag, last_modified, accept, cap, deadline
            )
        finally:
            sem.release()

    def _exchange_locked(
        self,
        origin: str,
        current: str,
        target: _Target,
        etag: str | None,
        last_modified: str | None,
        accept: str,
        cap: int,
        deadline: float,
    ) -> FetchResult | str:
        limits = self.limits
        remaining = max(deadline - self._monotonic(), 0.001)
        headers = {
            "User-Agent": limits.user_agent,
            "Accept": accept,
            "Accept-Encoding": "gzip, deflate",
            "Connection": "close",
        }
        if target.pinned:
            # The URL now names the vetted IP; the server still sees its own hostname.
            headers["Host"] = httpx.URL(current).netloc.decode("ascii")
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        timeout = httpx.Timeout(
            connect=min(limits.connect_timeout, remaining),
            read=min(limits.read_timeout, remaining),
            write=min(limits.read_timeout, remaining),
            pool=min(limits.connect_timeout, remaining),
        )
        with _Watchdog(remaining) as dog:
            extensions: dict[str, Any] = {"trace": dog.trace}
            if target.pinned and target.url.scheme == "https":
                extensions["sni_hostname"] = target.host
            request = self.client.build_request(
                "GET", target.url, headers=headers, timeout=timeout, extensions=extensions
            )
            response = self._send(request, origin, dog)
            try:
                return self._handle(
                    origin, current, response, etag, last_modified, cap, deadline, dog
                )
            finally:
                response.close()

    def _send(self, request: httpx.Request, url: str, dog: _Watchdog) -> httpx.Response:
        """Send one request (streamed, no redirects), its failures as ``FetchError``s."""
        try:
            return self.client.send(request, stream=True, follow_redirects=False)
        except httpx.TimeoutException as exc:
            raise FetchError(
                url, f"timed out: {exc or type(exc).__name__}", kind=FetchKind.TIMEOUT
            ) from exc
        except (httpx.TransportError, OSError) as exc:
            if dog.fired:
                raise FetchError(url, "total deadline exceeded", kind=FetchKind.TIMEOUT) from exc
            raise FetchError(
                url, f"network error: {exc or type(exc).__name__}", kind=FetchKind.NETWORK
            ) from exc

    def _handle(
        self,
        origin: str,
        current: str,
        response: httpx.Response,
        etag: str | None,
        last_modified: str | None,
        cap: int,
        deadline: float,
        dog: _Watchdog,
    ) -> FetchResult | str:
        status = response.status_code
        kept = MappingProxyType(
            {name: response.headers[name] for name in KEPT_HEADERS if name in response.headers}
        )
        retry_after = parse_retry_after(kept.get("retry-after"), now=self._now())
        if status in REDIRECT_STATUSES:
            location = response.headers.get("location")
            if not location:
                raise FetchError(
                    origin,
                    f"HTTP {status} without Location",
                    kind=FetchKind.REDIRECTS,
                    status=status,
                )
            try:
                return str(httpx.URL(current).join(location.strip()))
            except (httpx.InvalidURL, ValueError) as exc:
                raise FetchError(
                    origin, f"invalid redirect Location {location!r}", kind=FetchKind.REDIRECTS
                ) from exc
        if status == 304:
            if not etag and not last_modified:
                # "Not modified" since what?  Nothing was asked, so nothing can be
                # unchanged: a misbehaving server or cache, not an ordinary 304.
                raise FetchError(
                    origin,
                    "HTTP 304 Not Modified to a request that sent no validator "
                    "(no If-None-Match, no If-Modified-Since)",
                    kind=FetchKind.HTTP_STATUS,
                    status=status,
                    retry_after=retry_after,
                )
            return FetchResult(
                url=origin,
                final_url=current,
                status=status,
                headers=kept,
                body=b"",
                etag=kept.get("etag") or etag,
                last_modified=kept.get("last-modified") or last_modified,
                not_modified=True,
                retry_after=retry_after,
            )
        if not 200 <= status < 300:
            raise FetchError(
                origin,
                f"HTTP {status}",
                kind=FetchKind.HTTP_STATUS,
                status=status,
                retry_after=retry_after,
            )
        body = self._read_body(origin, response, cap, deadline, dog)
        return FetchResult(
            url=origin,
            final_url=current,
            status=status,
            headers=kept,
            body=body,
            etag=kept.get("etag"),
            last_modified=kept.get("last-modified"),
            not_modified=False,
            retry_after=retry_after,
        )

    def _read_body(
        self, origin: str, response: httpx.Response, cap: int, deadline: float, dog: _Watchdog
    ) -> bytes:
        codings = _content_codings(response.headers.get("content-encoding"))
        if len(codings) > 1:
            raise FetchError(
                origin,
                f"stacked Content-Encoding refused: {', '.join(codings)}",
                kind=FetchKind.ENCODING,
            )
        coding = codings[0] if codings else None
        if coding is not None and coding not in _SUPPORTED_CODINGS:
            raise FetchError(
                origin, f"unsupported Content-Encoding {coding!r}", kind=FetchKind.ENCODING
            )
        declared = response.headers.get("content-length", "")
        if coding is None and declared.isdigit() and int(declared) > cap:
            raise FetchError(
                origin, f"Content-Length {declared} exceeds {cap} bytes", kind=FetchKind.TOO_LARGE
            )
        decoder = _Decoder(coding)
        pieces: list[bytes] = []
        total = 0
        raw_total = 0
        try:
            for raw in _raw_chunks(response):
                if self._monotonic() > deadline:
                    raise FetchError(
                        origin,
                        "total deadline exceeded while reading the body",
                        kind=FetchKind.TIMEOUT,
                    )
                raw_total += len(raw)
                if raw_total > cap + _DECODE_PIECE:
                    raise FetchError(origin, f"body exceeds {cap} bytes", kind=FetchKind.TOO_LARGE)
                for piece in decoder.feed(raw):
                    total += len(piece)
                    if total > cap:
                        raise FetchError(
                            origin, f"decoded body exceeds {cap} bytes", kind=FetchKind.TOO_LARGE
                        )
                    pieces.append(piece)
        except ValueError as exc:
            raise FetchError(origin, str(exc), kind=FetchKind.ENCODING) from exc
        except httpx.TimeoutException as exc:
            raise FetchError(origin, "timed out reading the body", kind=FetchKind.TIMEOUT) from exc
        except (httpx.TransportError, OSError) as exc:
            if dog.fired or self._monotonic() > deadline:
                raise FetchError(
                    origin, "total deadline exceeded while reading the body", kind=FetchKind.TIMEOUT
                ) from exc
            raise FetchError(
                origin, f"network error reading the body: {exc}", kind=FetchKind.NETWORK
            ) from exc
        if dog.fired:
            # The watchdog's shutdown looks like a clean EOF to a body without a length.
            raise FetchError(
                origin, "total deadline exceeded while reading the body", kind=FetchKind.TIMEOUT
            )
        return b"".join(pieces)

    # -- one POST (webhooks) ---------------------------------------------------

    def post(
        self, url: str, *, body: bytes, headers: Mapping[str, str], timeout: float
    ) -> PostResult:
        """POST ``body`` once through the address guard, within ``timeout`` seconds in all.

        Any HTTP answer is returned, whatever its status: redirects are *not* followed
        (a webhook must not be bounced to another address) and the response body is not
        read.  A refused address, a network failure or the deadline raise ``FetchError``.
        """
        started = self._monotonic()
        deadline = started + timeout
        target = self._vet(url, url, deadline)
        remaining = deadline - self._monotonic()
        sem = self._hosts.get(target.host)
        if remaining <= 0 or not sem.acquire(timeout=remaining):
            raise FetchError(
                url, f"waited too long for a slot on {target.host}", kind=FetchKind.TIMEOUT
            )
        try:
            status, kept = self._post_locked(url, target, body, headers, deadline)
        finally:
            sem.release()
        return PostResult(
            url=url,
            status=status,
            headers=kept,
            retry_after=parse_retry_after(kept.get("retry-after"), now=self._now()),
            duration_ms=int((self._monotonic() - started) * 1000),
        )

    def _post_locked(
        self,
        url: str,
        target: _Target,
        body: bytes,
        headers: Mapping[str, str],
        deadline: float,
    ) -> tuple[int, Mapping[str, str]]:
        limits = self.limits
        remaining = max(deadline - self._monotonic(), 0.001)
        sent = {"User-Agent": limits.user_agent, **headers, "Connection": "close"}
        if target.pinned:
            sent["Host"] = httpx.URL(url).netloc.decode("ascii")
        timeout = httpx.Timeout(
            connect=min(limits.connect_timeout, remaining),
            read=remaining,
            write=remaining,
            pool=min(limits.connect_timeout, remaining),
        )
        with _Watchdog(remaining) as dog:
            extensions: dict[str, Any] = {"trace": dog.trace}
            if target.pinned and target.url.scheme == "https":
                extensions["sni_hostname"] = target.host
            request = self.client.build_request(
                "POST",
                target.url,
                content=body,
                headers=sent,
                timeout=timeout,
                extensions=extensions,
            )
            response = self._send(request, url, dog)
            try:
                kept = MappingProxyType(
                    {
                        n: response.headers[n]
                        for n in (*KEPT_HEADERS, "location")
                        if n in response.headers
                    }
                )
                return response.status_code, kept
            finally:
                response.close()


@dataclass(frozen=True, slots=True)
class PostResult:
    """The answer to one POST: any status (redirects are not followed)."""

    url: str
    status: int
    headers: Mapping[str, str]
    retry_after: float | None  # seconds, from Retry-After, unclamped
    duration_ms: int

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def _raw_chunks(response: httpx.Response) -> Iterator[bytes]:
    """The undecoded body, as it arrives.

    A transport that hands back an already-buffered response (``MockTransport`` with
    ``content=bytes``) has its stream consumed; its raw bytes are still in the stream.
    """
    if response.is_stream_consumed:
        yield from response.stream  # type: ignore[misc]
        return
    # No chunk_size: httpx would buffer up to it, hiding a dripping server from the
    # deadline check between chunks.
    yield from response.iter_raw()


def _with_duration(result: FetchResult, duration_ms: int) -> FetchResult:
    return FetchResult(
        url=result.url,
        final_url=result.final_url,
        status=result.status,
        headers=result.headers,
        body=result.body,
        etag=result.etag,
        last_modified=result.last_modified,
        not_modified=result.not_modified,
        retry_after=result.retry_after,
        duration_ms=duration_ms,
    )


# ------------------------------------------------------------------ pure scheduling helpers


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    """Retry spacing after failures; seconds."""

    base: float = 60.0
    ceiling: float = 4 * 3600.0
    retry_after_min: float = 30.0
    retry_after_max: float = 6 * 3600.0


def backoff_seconds(consecutive_errors: int, *, base: float, ceiling: float, rand: float) -> float:
    """Exponential backoff with "equal jitter": a value in [d/2, d], d = min(ceiling, base·2^(n-1)).

    ``rand`` is a draw from [0, 1); a feed failing for days settles between ceiling/2
    and the ceiling, so it keeps being tried.
    """
    if consecutive_errors <= 0:
        return 0.0
    exponent = min(consecutive_errors - 1, 64)  # 2**64·base is beyond any ceiling
    delay = min(ceiling, base * math.pow(2.0, exponent))
    rand = min(max(rand, 0.0), 1.0)
    return delay / 2.0 + (delay / 2.0) * rand


def parse_retry_after(
    value: str | None, *, now: datetime, minimum: float = 0.0, maximum: float = math.inf
) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), clamped."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    seconds: float
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - now).total_seconds()
    return min(max(seconds, minimum), maximum)


def next_due(
    now: datetime,
    *,
    interval: float,
    consecutive_errors: int,
    retry_after: float | None,
    policy: BackoffPolicy,
    rand: float,
) -> datetime:
    """When a feed is next polled: the interval when healthy, backoff (≥ interval) after errors.

    A server's Retry-After is honoured, clamped to the policy's bounds, and never
    shortens the wait.
    """
    delay = float(interval)
    if consecutive_errors > 0:
        delay = max(
            delay,
            backoff_seconds(
                consecutive_errors, base=policy.base, ceiling=policy.ceiling, rand=rand
            ),
        )
    if retry_after is not None:
        clamped = min(max(retry_after, policy.retry_after_min), policy.retry_after_max)
        delay = max(delay, clamped)
    return now + timedelta(seconds=delay)
