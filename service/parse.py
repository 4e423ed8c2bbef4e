"""Feed bytes → ``ParsedFeed``, via feedparser (the only module that imports it).

Values in, values out: no HTTP, no database.  What this wrapper adds to feedparser:

* **Hostile XML.**  feedparser's SAX parser has external entities off, and Expat
  (>= 2.4) refuses billion-laughs amplification; but when the strict parse fails
  feedparser re-parses with its loose parser and hands it the document's "safe"
  entity declarations, which it expands itself: one 100 KB entity referenced a
  thousand times costs hundreds of MB (defusedxml's ``quadratic.xml``).  So the
  DOCTYPE's internal subset is dropped before feedparser sees the bytes; only
  declarations whose value is a single character reference (``&#169;``) survive.
  A DOCTYPE we cannot take apart, or entity declarations in a UTF-16/32 document,
  make the feed a ``ParseError`` rather than a risk.
* **Bytes go in as a stream.**  ``feedparser.parse(bytes)`` first tries ``open()`` on
  its argument, so a body reading ``/etc/passwd`` would be read as a local file;
  and a ``str`` that looks like a URL is fetched.  We always pass ``io.BytesIO``.
* **Bozo, as lemon24/reader does it.**  Encoding overrides and non-XML content types
  are logged and survived; any other failure with no entries is a ``ParseError``
  (``raise ... from`` the bozo exception); a failure after which the loose parser
  still recovered entries keeps them and is reported in ``ParsedFeed.warning``.
  feedparser itself raising (bad character references, lone surrogates) is a
  per-feed ``ParseError``, never a crash.
* Empty bodies and HTML pages (error pages, login walls) are ``ParseError``s.
* Entry identity: the guid, else the canonical link, else a content hash.  Entries
  are capped per poll; one bad entry is skipped with a warning, the rest kept.
* Text: NUL, control characters and lone surrogates stripped (PostgreSQL rejects NUL),
  entry HTML turned into plain text for the rules.
"""

from __future__ import annotations

import calendar
import enum
import hashlib
import io
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import feedparser  # type: ignore[import-untyped]

from service.errors import ParseError
from service.extract import clean_text

log = logging.getLogger(__name__)

DEFAULT_MAX_ENTRIES = 100
MAX_ID_CHARS = 2048
MAX_TITLE_CHARS = 1000

# feedparser's survivable bozo cases (reader's _SURVIVABLE_EXCEPTION_TYPES).
_SURVIVABLE = (feedparser.CharacterEncodingOverride, feedparser.NonXMLContentType)


class EntryIdSource(enum.StrEnum):
    """Where an entry's identity came from, strongest first."""

    GUID = "guid"
    LINK = "link"
    CONTENT_HASH = "content_hash"


@dataclass(frozen=True, slots=True)
class ParsedEntry:
    entry_id: str
    id_source: EntryIdSource
    link: str | None
    title: str | None
    published: datetime | None
    # The date string as the feed gave it, kept when it could not be parsed
    # (``published`` is then None): unparsable dates are flagged, never "now".
    published_raw: str | None
    summary: str | None  # plain text
    content: str | None  # plain text of the fullest <content>, if any

    @property
    def text(self) -> str:
        """The entry's own text: content if present, else summary (may be empty)."""
        return self.content or self.summary or ""


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    url: str
    title: str | None
    link: str | None
    version: str
    entries: tuple[ParsedEntry, ...]
    warning: str | None = None  # a survived bozo condition
    skipped_entries: int = 0  # entries that could not be read
    capped_entries: int = 0  # entries left out by the per-poll cap


# ---------------------------------------------------------------------- hostile XML

_ELEMENT_START = re.compile(rb"<[A-Za-z_]")
_DOCTYPE_START = re.compile(rb"<!DOCTYPE", re.IGNORECASE)
# A DOCTYPE with quoted literals and an optional internal subset, also quote-aware.
_QUOTED = rb'"[^"]*"|\'[^\']*\''
_DOCTYPE = re.compile(
    rb"<!DOCTYPE(?P<ext>(?:[^\[>\"']|" + _QUOTED + rb")*)"
    rb"(?:\[(?P<subset>(?:[^\]\"']|" + _QUOTED + rb")*)\])?\s*>",
    re.IGNORECASE,
)
_CHARREF_ENTITY = re.compile(rb'<!ENTITY\s+(\w+)\s+(["\'])(&#x?[0-9A-Fa-f]+;)\2\s*>')
_WIDE_ENTITY = tuple(
    "<!ENTITY".encode(codec) for codec in ("utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be")
)


_NUMERIC_REF = re.compile(rb"&#(?:[xX]([0-9A-Fa-f]{1,16})|([0-9]{1,20}));")


def _replace_bad_ref(match: re.Match[bytes]) -> bytes:
    hexa, dec = match.group(1), match.group(2)
    value = int(hexa, 16) if hexa is not None else int(dec)
    if value == 0 or 0xD800 <= value <= 0xDFFF or value > 0x10FFFF:
        return b"&#xFFFD;"
    return match.group(0)


def fix_character_references(data: bytes) -> bytes:
    """Replace references to NUL, surrogates and beyond U+10FFFF with U+FFFD.

    feedparser raises (UnicodeEncodeError, ValueError) on such references instead
    of flagging the feed; replacing them keeps the rest of the feed readable.
    """
    if b"&#" not in data:
        return data
    return _NUMERIC_REF.sub(_replace_bad_ref, data)


def neutralise_dtd(data: bytes) -> bytes:
    """Drop the DOCTYPE's internal subset (entity declarations); keep char-ref entities.

    Raises ``ValueError`` when entity declarations are present but cannot be
    removed safely.
    """
    if any(pattern in data for pattern in _WIDE_ENTITY):
        # UTF-16/32 documents: bytes patterns cannot see the markup reliably.
        raise ValueError("entity declarations in a UTF-16/32 document are refused")
    first = _ELEMENT_START.search(data)
    doctype = _DOCTYPE_START.search(data)
    if doctype is None or (first is not None and first.start() < doctype.start()):
        return data
    match = _DOCTYPE.match(data, doctype.start())
    if match is None:
        if b"<!ENTITY" in data[doctype.start() :].upper():
            raise ValueError("malformed DOCTYPE with entity declarations")
        return data
    subset = match.group("subset")
    if subset is None:
        return data
    keep = [
        b'<!ENTITY %s "%s">' % (m.group(1), m.group(3)) for m in _CHARREF_ENTITY.finditer(subset)
    ]
    replacement = b"<!DOCTYPE" + match.group("ext").rstrip()
    if keep:
        replacement += b" [\n" + b"\n".join(keep) + b"\n]"
    replacement += b">"
    cleaned = data[: match.start()] + replacement + data[match.end() :]
    head_end = _ELEMENT_START.search(cleaned, match.start() + len(replacement))
    head = cleaned[: head_end.start() if head_end else len(cleaned)]
    if head.upper().count(b"<!ENTITY") > len(keep):
        raise ValueError("entity declarations outside the DOCTYPE")
    return cleaned


# ---------------------------------------------------------------------- text helpers


class _TextCollector(HTMLParser):
    _BLOCK = frozenset(
        [
            "p",
            "br",
            "div",
            "li",
            "ul",
            "ol",
            "h1",
            "h2",
            "h3",
            "h4",
            "h5",
            "h6",
            "tr",
            "blockquote",
            "pre",
            "section",
            "article",
        ]
    )
    _SKIP = frozenset({"script", "style"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skipping += 1
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self._skipping = max(0, self._skipping - 1)
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")


def html_to_text(html: str) -> str:
    """Plain text of an HTML fragment: tags dropped, entities decoded, paragraphs kept."""
    collector = _TextCollector()
    collector.feed(html)
    collector.close()
    text = "".join(collector.parts)
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def _text(value: Any, content_type: str | None = None) -> str | None:
    if not isinstance(value, str):
        return None
    value = clean_text(value)
    if content_type is None or "html" in content_type or "xml" in content_type:
        value = html_to_text(value)
    value = clean_text(value).strip()
    return value or None


def canonical_link(link: str) -> str | None:
    """An http(s) link with scheme and host lower-cased, default port and fragment dropped."""
    try:
        parts = urlsplit(link.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    scheme = parts.scheme.lower()
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    if port is not None and (scheme, port) not in (("http", 80), ("https", 443)):
        host = f"{host}:{port}"
    return urlunsplit((scheme, host, parts.path or "/", parts.query, ""))


def _datetime(value: Any) -> datetime | None:
    if not isinstance(value, time.struct_time):
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(value), UTC)
    except (OverflowError, ValueError, OSError):
        return None


# ---------------------------------------------------------------------- the parser


def _looks_like_html(data: bytes) -> bool:
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return head.startswith((b"<!doctype html", b"<html"))


def parse_feed(
    body: bytes,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    max_entries: int = DEFAULT_MAX_ENTRIES,
) -> ParsedFeed:
    """Parse a fetched feed body; raise ``ParseError`` when it is not a usable feed."""
    if not body.strip(b" \t\r\n\x00\xef\xbb\xbf\xfe\xff"):
        raise ParseError(url, "empty body")
    if _looks_like_html(body):
        raise ParseError(url, "an HTML page, not a feed")
    try:
        data = fix_character_references(neutralise_dtd(body))
    except ValueError as exc:
        raise ParseError(url, f"refused: {exc}") from exc
    response_headers = {k.lower(): v for k, v in (headers or {}).items()}
    # Relative links resolve against the feed's own URL, not the process's cwd.
    response_headers.setdefault("content-location", url)
    try:
        # A stream, never bytes or str: see the module docstring.
        result = feedparser.parse(
            io.BytesIO(data),
            response_headers=response_headers,
            resolve_relative_uris=True,
            sanitize_html=True,
        )
    except Exception as exc:  # feedparser raises on some malformed input
        raise ParseError(url, f"feed parser failed: {type(exc).__name__}: {exc}") from exc

    raw_entries = list(result.get("entries") or ())
    warning: str | None = None
    if result.get("bozo"):
        bozo = result.get("bozo_exception")
        description = f"{type(bozo).__name__}: {bozo}"
        if isinstance(bozo, _SURVIVABLE):
            log.info(
                "Feed not well-formed but usable", extra={"feed_url": url, "bozo": description}
            )
            warning = description
        elif not raw_entries:
            cause = bozo if isinstance(bozo, BaseException) else None
            raise ParseError(url, f"not a usable feed: {description}") from cause
        else:
            log.warning(
                "Feed recovered by loose parsing", extra={"feed_url": url, "bozo": description}
            )
            warning = description
    version = str(result.get("version") or "")
    content_type = response_headers.get("content-type", "")
    if not version and not raw_entries:
        if "html" in content_type.lower():
            raise ParseError(url, "an HTML page, not a feed")
        raise ParseError(url, "not a feed: no feed elements and no entries")

    feed_meta = result.get("feed") or {}
    entries: list[ParsedEntry] = []
    seen: set[str] = set()
    skipped = 0
    for raw in raw_entries[:max_entries]:
        try:
            entry = _entry(raw, url)
        except Exception as exc:  # one bad entry never sinks the feed
            log.warning(
                "Feed entry skipped",
                extra={"feed_url": url, "reason": f"{type(exc).__name__}: {exc}"},
            )
            entry = None
        if entry is None:
            skipped += 1
            continue
        if entry.entry_id in seen:
            continue
        seen.add(entry.entry_id)
        entries.append(entry)
    if raw_entries and not entries:
        raise ParseError(url, f"none of the {len(raw_entries)} entries could be read")
    return ParsedFeed(
        url=url,
        title=_short(_text(feed_meta.get("title"), _detail_type(feed_meta, "title_detail"))),
        link=canonical_link(str(feed_meta.get("link") or "")),
        version=version,
        entries=tuple(entries),
        warning=warning,
        skipped_entries=skipped,
        capped_entries=max(0, len(raw_entries) - max_entries),
    )


def _detail_type(thing: Any, key: str) -> str | None:
    detail: Any = thing.get(key) if hasattr(thing, "get") else None
    kind: Any = detail.get("type") if hasattr(detail, "get") else None
    return kind if isinstance(kind, str) else None


def _short(value: str | None) -> str | None:
    return value[:MAX_TITLE_CHARS] if value else value


def _entry(raw: Any, feed_url: str) -> ParsedEntry | None:
    link = canonical_link(str(raw.get("link") or ""))
    title = _short(_text(raw.get("title"), _detail_type(raw, "title_detail")))
    summary = _text(raw.get("summary"), _detail_type(raw, "summary_detail"))
    content: str | None = None
    for part in raw.get("content") or ():
        if not hasattr(part, "get"):
            continue
        text = _text(part.get("value"), part.get("type"))
        if text and (content is None or len(text) > len(content)):
            content = text
    # "published" first; feedparser's .get("updated") silently falls back to it, so
    # read updated_parsed by key like reader does.
    published = _datetime(raw.get("published_parsed")) or (
        _datetime(raw["updated_parsed"]) if "updated_parsed" in raw else None
    )
    published_raw: str | None = None
    if published is None:
        for key in ("published", "updated", "created"):
            if key in raw and isinstance(raw[key], str) and raw[key].strip():
                published_raw = clean_text(raw[key]).strip()[:200]
                break

    guid = raw.get("id")
    guid = clean_text(guid).strip() if isinstance(guid, str) else ""
    if guid:
        entry_id, source = guid, EntryIdSource.GUID
        if len(entry_id) > MAX_ID_CHARS:
            entry_id = "sha256:" + hashlib.sha256(entry_id.encode("utf-8")).hexdigest()
    elif link:
        entry_id, source = link, EntryIdSource.LINK
    else:
        basis = "\n".join(part for part in (title, content or summary) if part)
        if not basis:
            log.debug("Feed entry without identity or text", extra={"feed_url": feed_url})
            return None
        entry_id = "sha256:" + hashlib.sha256(basis.encode("utf-8")).hexdigest()
        source = EntryIdSource.CONTENT_HASH
    return ParsedEntry(
        entry_id=entry_id,
        id_source=source,
        link=link,
        title=title,
        published=published,
        published_raw=published_raw,
        summary=summary,
        content=content,
    )
