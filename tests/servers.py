"""Real HTTP servers on 127.0.0.1 for integration tests, including hostile ones.

``LoopbackServer`` is a small threaded HTTP/1.1 server whose routes are plain
callables: a route gets the parsed ``Request`` and returns a ``Response`` (status,
headers, body chunks, an optional pause between chunks) or a ``Raw`` writer that
gets the socket file and may do anything (drip headers, never answer...).
Every handler thread gives up after ``max_handler_seconds`` so hostile routes never
outlive the test session.
"""

from __future__ import annotations

import contextlib
import gzip
import multiprocessing
import random
import re
import socket
import socketserver
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from email.utils import formatdate
from multiprocessing.connection import Connection
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    """Third-party test corpora: ``tests/data/corpora`` (feedparser, feedvalidator and
    defusedxml samples, each with its SOURCE.md and licence), or DEIREZZOR_SHARED_DIR."""
    import os

    override = os.environ.get("DEIREZZOR_SHARED_DIR")
    path = Path(override) if override else REPO_ROOT / "tests" / "data"
    if not (path / "corpora").is_dir():
        raise RuntimeError(f"test corpora not found at {path / 'corpora'}")
    return path


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names


@dataclass
class Response:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | Iterable[bytes] = b""
    pause: float = 0.0  # seconds between body chunks


@dataclass
class Raw:
    """Full control of the socket: the callable writes whatever it likes."""

    write: Callable[[BinaryIO], None]


Route = Callable[[Request], Response | Raw]

_REASONS = {
    200: "OK",
    204: "No Content",
    301: "Moved Permanently",
    302: "Found",
    304: "Not Modified",
    307: "Temporary Redirect",
    308: "Permanent Redirect",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        try:
            line = self.rfile.readline(65537).decode("latin-1").strip()
            if not line:
                return
            method, target, _version = line.split(" ", 2)
            headers: dict[str, str] = {}
            while True:
                raw = self.rfile.readline(65537).decode("latin-1")
                if raw in ("\r\n", "\n", ""):
                    break
                name, _, value = raw.partition(":")
                headers[name.strip().lower()] = value.strip()
            request = Request(method, target, headers)
            owner = self.server.owner
            owner.requests.append(request)
            route = owner.routes.get(target.split("?", 1)[0]) or owner.fallback
            result = route(request)
            if isinstance(result, Raw):
                result.write(self.wfile)
                return
            self._respond(result)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError):
            pass
        except OSError:
            pass

    def _respond(self, response: Response) -> None:
        deadline = time.monotonic() + self.server.owner.max_handler_seconds
        body = response.body
        head = [f"HTTP/1.1 {response.status} {_REASONS.get(response.status, 'Status')}"]
        names = {k.lower() for k in response.headers}
        for name, value in response.headers.items():
            head.append(f"{name}: {value}")
        if isinstance(body, bytes) and "content-length" not in names:
            head.append(f"Content-Length: {len(body)}")
        head.append("Connection: close")
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        self.wfile.flush()
        if response.status == 304 or not body:
            return
        chunks: Iterable[bytes] = [body] if isinstance(body, bytes) else body
        for chunk in chunks:
            if time.monotonic() > deadline:
                return
            self.wfile.write(chunk)
            self.wfile.flush()
            if response.pause:
                time.sleep(response.pause)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: LoopbackServer


class LoopbackServer:
    """A threaded HTTP/1.1 server on 127.0.0.1 with an ephemeral port."""

    def __init__(self, max_handler_seconds: float = 20.0) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[Request] = []
        self.max_handler_seconds = max_handler_seconds
        self.fallback: Route = lambda _req: Response(404, {"Content-Type": "text/plain"}, b"no")
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def route(self, path: str, handler: Route) -> None:
        self.routes[path] = handler

    def static(
        self,
        path: str,
        body: bytes,
        *,
        content_type: str = "application/rss+xml; charset=utf-8",
        etag: str | None = None,
        last_modified: float | None = None,
        extra_headers: dict[str, str] | None = None,
    ) -> None:
        """Serve ``body`` with optional validators and conditional-GET support."""

        def handler(request: Request) -> Response:
            headers = {"Content-Type": content_type, **(extra_headers or {})}
            if etag:
                headers["ETag"] = etag
            if last_modified is not None:
                headers["Last-Modified"] = formatdate(last_modified, usegmt=True)
            inm = request.headers.get("if-none-match")
            ims = request.headers.get("if-modified-since")
            if (etag and inm == etag) or (
                not etag and last_modified is not None and ims == headers["Last-Modified"]
            ):
                return Response(304, {k: v for k, v in headers.items() if k != "Content-Type"})
            return Response(200, headers, body)

        self.route(path, handler)

    def start(self) -> LoopbackServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ------------------------------------------------------------------- many feeds at once


PLACES = (
    "al-Mayadin",
    "al-Bukamal",
    "al-Quriyah",
    "Hajin",
    "Dhiban",
    "al-Ashara",
    "Muhassan",
    "al-Busayrah",
    "Khasham",
    "al-Tayana",
)


def movement_text(feed: int, number: int) -> str:
    """A short in-region movement report, different for every (feed, number)."""
    place = PLACES[(feed + number) % len(PLACES)]
    vehicles = 3 + (feed * 7 + number) % 40
    # Words of its own, so no two reports are near-duplicates of each other.
    rng = random.Random(feed * 100_003 + number)
    own = " ".join(rng.choice(_FILLER) for _ in range(30))
    return (
        f"Iranian-backed militias sent reinforcements to {place} on Monday, local sources "
        f"said. A convoy of {vehicles} vehicles carrying fighters arrived in the town "
        f"(report {feed}-{number}). Residents described {own}."
    )


_FILLER = [
    "bread",
    "market",
    "river",
    "bridge",
    "school",
    "clinic",
    "tent",
    "well",
    "tractor",
    "orchard",
    "wheat",
    "cotton",
    "sheep",
    "pump",
    "generator",
    "roof",
    "street",
    "mosque",
    "bakery",
    "pharmacy",
    "radio",
    "phone",
    "fuel",
    "canal",
    "harvest",
    "shop",
    "road",
    "field",
    "lamp",
    "window",
    "door",
    "carpet",
    "kettle",
    "rope",
    "bicycle",
]


class FeedFarm:
    """``count`` RSS feeds on one loopback server, ``/feeds/<n>.xml``, with ETags.

    Entries carry their text in the feed; with ``pages`` each also links to an
    article page (``/pages/<n>/<k>``) the pipeline fetches and extracts, as on a
    real outlet.  ``publish(n)`` adds an entry to feed ``n``; ``polls[n]`` are the
    monotonic times of the full or conditional GETs of feed ``n``, ``served[n]``
    the (time, entries) of its full answers.
    """

    def __init__(
        self, server: LoopbackServer, count: int, entries: int = 1, *, pages: bool = False
    ) -> None:
        self.server = server
        self.count = count
        self.pages = pages
        self.entries: list[list[int]] = [list(range(entries)) for _ in range(count)]
        self.polls: list[list[float]] = [[] for _ in range(count)]
        self.served: list[list[tuple[float, int]]] = [[] for _ in range(count)]
        self._lock = threading.Lock()
        server.fallback = self._serve

    def url(self, n: int) -> str:
        return self.server.url(f"/feeds/{n}.xml")

    def publish(self, n: int) -> None:
        with self._lock:
            self.entries[n].append(len(self.entries[n]))

    def published(self) -> int:
        with self._lock:
            return sum(len(e) for e in self.entries)

    def _page(self, n: int, k: int) -> Response:
        text = movement_text(n, k)
        html = (
            f"<html><head><title>Report {n}-{k}</title></head><body>"
            '<nav><a href="/">Home</a></nav>'
            f"<article><h1>Report {n}-{k}</h1><p>{text}</p><p>{text}</p></article>"
            "<footer>Outlet</footer></body></html>"
        ).encode()
        return Response(200, {"Content-Type": "text/html; charset=utf-8"}, html)

    def _serve(self, request: Request) -> Response:
        page = re.fullmatch(r"/pages/(\d+)/(\d+)", request.path)
        if page is not None:
            return self._page(int(page.group(1)), int(page.group(2)))
        match = re.fullmatch(r"/feeds/(\d+)\.xml", request.path)
        if match is None or int(match.group(1)) >= self.count:
            return Response(404, {"Content-Type": "text/plain"}, b"no such feed")
        n = int(match.group(1))
        with self._lock:
            self.polls[n].append(time.monotonic())
            numbers = list(self.entries[n])
        etag = f'"{n}-{len(numbers)}"'
        if request.headers.get("if-none-match") == etag:
            return Response(304, {"ETag": etag})
        with self._lock:
            self.served[n].append((time.monotonic(), len(numbers)))
        items = "".join(
            f'<item><title>Report {n}-{k}</title><guid isPermaLink="false">f{n}-e{k}</guid>'
            + (f"<link>{self.server.url(f'/pages/{n}/{k}')}</link>" if self.pages else "")
            + f"<pubDate>{formatdate(1714550400 + k * 3600, usegmt=True)}</pubDate>"
            f"<description>{movement_text(n, k)}</description></item>"
            for k in reversed(numbers)
        )
        body = (
            '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
            f"<title>Outlet {n}</title><link>{self.server.url('/')}</link>{items}"
            "</channel></rss>"
        ).encode()
        return Response(200, {"Content-Type": "application/rss+xml", "ETag": etag}, body)


# ---------------------------------------------------------------------- hostile routes


def slow_drip(pause: float = 1.0) -> Route:
    """A valid head, then one byte of body per ``pause`` seconds, forever."""

    def handler(_req: Request) -> Response:
        return Response(200, {"Content-Type": "application/rss+xml"}, _forever(b"<"), pause=pause)

    return handler


def header_drip(pause: float = 1.0) -> Route:
    """The status line and headers themselves, one byte per ``pause`` seconds."""

    def write(wfile: BinaryIO) -> None:
        head = b"HTTP/1.1 200 OK\r\n" + b"X-Filler: " + b"a" * 100_000
        for i in range(len(head)):
            wfile.write(head[i : i + 1])
            wfile.flush()
            time.sleep(pause)

    return lambda _req: Raw(write)


def endless_body(chunk: bytes = b"<item>" * 10_000) -> Route:
    """A 200 with no Content-Length that never ends."""
    return lambda _req: Response(200, {"Content-Type": "application/rss+xml"}, _forever(chunk))


def _forever(chunk: bytes) -> Iterator[bytes]:
    while True:
        yield chunk


def gzip_bomb(decoded_size: int = 1 << 28) -> tuple[Route, int]:
    """Gzip of ``decoded_size`` zero bytes (about 1/1000 of it on the wire)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    block = b"\0" * (1 << 20)
    parts = [compressor.compress(block) for _ in range(decoded_size // len(block))]
    parts.append(compressor.flush())
    payload = b"".join(parts)

    def handler(_req: Request) -> Response:
        return Response(
            200, {"Content-Type": "application/rss+xml", "Content-Encoding": "gzip"}, payload
        )

    return handler, len(payload)


def stacked_gzip(inner: bytes = b"\0" * (1 << 24), layers: int = 2) -> Route:
    """``Content-Encoding: gzip, gzip``: a small body that decodes to something huge."""
    payload = inner
    for _ in range(layers):
        payload = gzip.compress(payload, 9)
    coding = ", ".join(["gzip"] * layers)

    def handler(_req: Request) -> Response:
        return Response(
            200, {"Content-Type": "application/rss+xml", "Content-Encoding": coding}, payload
        )

    return handler


def redirect(location: str, status: int = 302) -> Route:
    return lambda _req: Response(status, {"Location": location})


def silent() -> Route:
    """Accept the connection and never say anything."""

    def write(_wfile: BinaryIO) -> None:
        time.sleep(30)

    return lambda _req: Raw(write)


def free_port() -> int:
    """A port with nothing listening (for connection-refused cases)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ---------------------------------------------------------------------- a file server process

_HEADER_LINE = re.compile(rb"^Header:\s*([^:\r\n]+):\s*(.*?)\s*$", re.MULTILINE)


def file_route(root: Path) -> Route:
    """Serve files under ``root``; feedparser's ``http`` cases get their ``Header:`` lines."""
    resolved_root = root.resolve()

    def serve(request: Request) -> Response:
        path = root / unquote(request.path.lstrip("/"))
        if not path.resolve().is_relative_to(resolved_root) or not path.is_file():
            return Response(404)
        body = path.read_bytes()
        headers = {"Content-Type": "application/xml"}
        if "http" in path.name:
            for name, value in _HEADER_LINE.findall(body[:4096]):
                headers[name.decode("latin-1").strip()] = value.decode("latin-1")
        return Response(200, headers, body)

    return serve


def _file_server_main(root: str, conn: Connection) -> None:  # pragma: no cover - child
    server = LoopbackServer()
    server.fallback = file_route(Path(root))
    server.start()
    conn.send(server.port)
    with contextlib.suppress(EOFError):
        conn.recv()  # blocks until the parent closes its end
    server.stop()


class FileServerProcess:
    """A file server in its own process, so serving does not compete for this one's GIL."""

    def __init__(self, root: Path) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._process = ctx.Process(target=_file_server_main, args=(str(root), child), daemon=True)
        self._process.start()
        child.close()
        self.port = int(self._conn.recv())

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        self._conn.close()
        self._process.join(timeout=5)
        if self._process.is_alive():
            self._process.kill()


# ---------------------------------------------------------------------- a database outage


class TcpProxy:
    """A loopback TCP relay to ``target`` that can be cut and restored: a database outage.

    ``cut()`` closes the listening socket and every relayed connection (clients see
    connection refused, or a connection dropped mid-query); ``restore()`` listens on
    the same port again.
    """

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> TcpProxy:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        self._thread = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._thread.start()
        return self

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            conns, self._conns = self._conns, []
        for sock in conns:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def restore(self) -> None:
        self.start()

    def stop(self) -> None:
        self.cut()

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
