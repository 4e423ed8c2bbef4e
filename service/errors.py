"""The one exception hierarchy of the service.

    IngestError                     anything the service raises on purpose
    ├── ConfigError                 a settings/feeds file is wrong (file, key, value)
    ├── FeedError                   one feed failed; the per-feed loop records it and moves on
    │   ├── FetchError              network, HTTP status, guard refusal (SSRF, size, time)
    │   └── ParseError              the body is not a usable feed
    ├── ExtractError                an article page could not be turned into text
    ├── RuleConfigError             config/rules/*.yaml is invalid (file, entry, problem)
    ├── StoreError                  the database refused or is out of date
    │   └── AlreadyStoredError      the article's URL or feed entry is stored already
    └── AlertError                  a webhook delivery failed (never fails ingestion)
        └── SignatureError          a webhook's signature headers do not verify

Context lives in attributes (``url``, ``path``, ``key``) and causes are always
chained with ``raise ... from exc``.
"""

from __future__ import annotations


class IngestError(Exception):
    """Base class of every error the service raises on purpose."""


class ConfigError(IngestError):
    """A configuration file or environment value is invalid."""

    def __init__(self, path: str, key: str | None, message: str) -> None:
        self.path = path
        self.key = key
        where = f"{path}: {key}" if key else path
        super().__init__(f"{where}: {message}")


class FeedError(IngestError):
    """One feed could not be polled; carries the feed URL."""

    def __init__(self, url: str, message: str) -> None:
        self.url = url
        super().__init__(f"{url}: {message}")


class FetchError(FeedError):
    """The HTTP exchange failed or a fetch guard refused it."""

    def __init__(
        self,
        url: str,
        message: str,
        *,
        kind: str = "network",
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.kind = kind
        self.status = status
        # Seconds the server asked us to wait (429/503 Retry-After), unclamped.
        self.retry_after = retry_after
        super().__init__(url, message)


class ParseError(FeedError):
    """The body was fetched but is not a usable feed."""


class ExtractError(IngestError):
    """An article page could not be turned into text."""


class RuleConfigError(IngestError):
    """A rule file is invalid; raised at load time, never ignored."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        super().__init__(f"{path}: {message}")


class StoreError(IngestError):
    """The database refused an operation or its schema is out of date."""


class AlreadyStoredError(StoreError):
    """An article was not stored because its URL or feed entry is stored already
    (another feed or replica stored it meanwhile): nothing is lost."""


class AlertError(IngestError):
    """A webhook delivery failed."""


class SignatureError(AlertError):
    """Webhook headers missing, malformed, out of the time tolerance, or not matching."""


def utf8_error_at(data: bytes, error: UnicodeDecodeError) -> str:
    """Where a UTF-8 decoding error is, as an editor shows it: the offending byte, its
    line and column (in characters), both counted from 1."""
    start = error.start
    line = data.count(b"\n", 0, start) + 1
    line_start = data.rfind(b"\n", 0, start) + 1
    column = len(data[line_start:start].decode("utf-8", "replace")) + 1
    return f"byte 0x{data[start]:02x} at line {line}, column {column}"
