"""Hostile-input stages (feed parsing, article extraction) boxed in worker processes.

One 8 MB page took trafilatura 69 s and 1.5 GiB; a feed is attacker-shaped XML.
Each call runs in a long-lived worker process whose address space is capped with
``RLIMIT_AS`` and is killed (then replaced on the next call) when it overruns its
time.  Workers are started with the ``spawn`` method: the daemon has threads
(scheduler, HTTP), and forking a threaded process can copy a held lock.

Results come back as values (``ExtractedArticle``, ``ParsedFeed``); failures as
``ExtractError`` (the caller maps them to its own stage's error).  The task table is
fixed: a worker only ever runs the functions named in ``TASKS``.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
from collections.abc import Callable, Mapping
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from service.errors import ExtractError, ParseError
from service.extract import extract_article
from service.parse import parse_feed

log = logging.getLogger(__name__)

DEFAULT_MEMORY_BYTES = 1024 * 1024 * 1024
# A feed's parse reaches its outcome within this (a parsed feed or a ParseError);
# ordinary feeds take well under a second, and nesting too deep to parse in time is
# refused before parsing (``parse.check_nesting``).
PARSE_TIMEOUT = 10.0


def _parse(body: bytes, url: str, headers: Mapping[str, str], max_entries: int) -> Any:
    try:
        return parse_feed(body, url, headers=headers, max_entries=max_entries)
    except ParseError as exc:
        # FeedError's signature does not survive pickling; send the parts.
        return _ParseFailure(str(exc).removeprefix(f"{url}: "))


class _ParseFailure:
    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message

    def __reduce__(self) -> tuple[type[_ParseFailure], tuple[str]]:
        return (_ParseFailure, (self.message,))


def _probe(action: str, amount: float) -> Any:
    """Exercise the box itself: sleep, allocate or die (tests and start-up checks)."""
    if action == "sleep":
        import time

        time.sleep(amount)
        return "slept"
    if action == "allocate":
        block = bytearray(int(amount))
        return len(block)
    if action == "exit":
        import os

        os._exit(int(amount))
    return action


TASKS: Mapping[str, Callable[..., Any]] = {
    "extract": extract_article,
    "parse": _parse,
    "probe": _probe,
}


def _worker_main(conn: Connection, memory_bytes: int) -> None:  # pragma: no cover - child
    import resource

    # The parent logs what matters from the returned values; without a handler the
    # child's warnings would reach stderr through logging's last-resort handler.
    logging.getLogger().addHandler(logging.NullHandler())
    if memory_bytes > 0:
        _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = memory_bytes if hard == resource.RLIM_INFINITY else min(memory_bytes, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    while True:
        try:
            name, args = conn.recv()
        except (EOFError, OSError):
            return
        try:
            reply: tuple[str, Any] = ("ok", TASKS[name](*args))
        except MemoryError:
            reply = ("memory", "memory limit exceeded")
        except BaseException as exc:  # report everything; the parent decides
            reply = ("error", f"{type(exc).__name__}: {exc}")
        try:
            conn.send(reply)
        except Exception as exc:  # e.g. an unpicklable result
            conn.send(("error", f"cannot return the result: {type(exc).__name__}: {exc}"))


class _Worker:
    def __init__(self, memory_bytes: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.process: BaseProcess = ctx.Process(
            target=_worker_main, args=(child, memory_bytes), daemon=True, name="sandbox-worker"
        )
        self.process.start()
        child.close()

    def kill(self) -> None:
        self.process.kill()
        self.process.join(timeout=5)
        self.conn.close()


class Sandbox:
    """A small pool of boxed worker processes; thread-safe; ``close()`` when done."""

    def __init__(
        self,
        *,
        workers: int = 2,
        timeout: float = 30.0,
        memory_bytes: int = DEFAULT_MEMORY_BYTES,
        parse_timeout: float = PARSE_TIMEOUT,
    ) -> None:
        self.timeout = timeout
        self.parse_timeout = parse_timeout
        self.memory_bytes = memory_bytes
        self._slots = threading.BoundedSemaphore(max(1, workers))
        self._idle: list[_Worker] = []
        self._lock = threading.Lock()
        self._closed = False

    def call(self, task: str, *args: Any, timeout: float | None = None) -> Any:
        """Run ``TASKS[task](*args)`` in a worker; ExtractError on timeout, memory or crash."""
        if task not in TASKS:
            raise ValueError(f"unknown sandbox task {task!r}")
        limit = self.timeout if timeout is None else timeout
        with self._slots:
            worker = self._take()
            try:
                worker.conn.send((task, args))
                if not worker.conn.poll(limit):
                    raise ExtractError(f"{task} took longer than {limit:g}s; worker stopped")
                status, value = worker.conn.recv()
            except ExtractError:
                worker.kill()
                raise
            except (EOFError, OSError) as exc:
                worker.kill()
                raise ExtractError(
                    f"{task} worker died (exit code {worker.process.exitcode}); "
                    "memory limit or crash"
                ) from exc
            self._give_back(worker)
        if status == "ok":
            return value
        raise ExtractError(f"{task} failed in worker: {value}")

    def parse_feed(
        self, body: bytes, url: str, *, headers: Mapping[str, str], max_entries: int
    ) -> Any:
        """``parse.parse_feed`` in a worker; ParseError for bad feeds and boxed failures.

        The parse has ``parse_timeout`` seconds (or ``timeout``, if shorter).
        """
        try:
            result = self.call(
                "parse",
                body,
                url,
                dict(headers),
                max_entries,
                timeout=min(self.timeout, self.parse_timeout),
            )
        except ExtractError as exc:
            raise ParseError(url, str(exc)) from exc
        if isinstance(result, _ParseFailure):
            raise ParseError(url, result.message)
        return result

    def _take(self) -> _Worker:
        with self._lock:
            if self._closed:
                raise ExtractError("sandbox is closed")
            while self._idle:
                worker = self._idle.pop()
                if worker.process.is_alive():
                    return worker
                worker.kill()
        return _Worker(self.memory_bytes)

    def _give_back(self, worker: _Worker) -> None:
        with self._lock:
            if self._closed:
                worker.kill()
            else:
                self._idle.append(worker)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.kill()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
