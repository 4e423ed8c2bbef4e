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
  still recovered entries keeps them.  ``ParsedFeed.warning`` says what a user
  should see on the feed: loose parsing, an encoding override, a contradiction
  between the HTTP charset and the document (``reconcile_charset``); a non-XML
  content type is only logged (nothing is misread).
  feedparser itself raising (bad character references, lone surrogates) is a
  per-feed ``ParseError``, never a crash.
* **Pathological nesting** is refused before parsing (``check_nesting``).
* **JSON Feed** 1.0/1.1 is read here (``parse_json_feed``): feedparser 6 reads no JSON.
* **Dates** given as Unix timestamps are read as such (feedparser takes
  "1630946700" for an ISO 8601 ordinal date, 2016-11-04).
* Empty bodies and HTML pages (error pages, login walls) are ``ParseError``s.
* Entry identity: the guid, else the canonical link, else a content hash.  Entries
  are capped per poll; one bad entry is skipped with a warning, the rest kept.
* Text: NUL, control characters and lone surrogates stripped (PostgreSQL rejects NUL),
  entry HTML turned into plain text for the rules.
"""

from __future__ import annotations

import calendar
import codecs
import enum
import hashlib
import io
import json
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

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
    warning: str | None = None  # oddities to show on the feed: loose parsing, charset
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


# ---------------------------------------------------------------------- character set

# The encoding named in the XML declaration (of an ASCII-compatible document).
_XML_ENCODING = re.compile(
    rb"^(?:\xef\xbb\xbf)?[ \t\r\n]*<\?xml[^>]*?\bencoding[ \t\r\n]*=[ \t\r\n]*"
    rb"[\"']([A-Za-z][A-Za-z0-9._:-]{0,39})[\"']"
)
_XML_ENCODING_TEXT = re.compile(
    r"^(\ufeff?[ \t\r\n]*<\?xml[^>]*?\bencoding[ \t\r\n]*=[ \t\r\n]*[\"'])[^\"']*"
)
_CHARSET = re.compile(r";\s*charset\s*=\s*\"?([^\";\s]*)\"?", re.IGNORECASE)
_WIDE_BOMS = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")
# Labels that differ but read the same text: feedparser maps ISO-8859-1's C1 range
# to windows-1252's characters, and an ASCII document reads alike in either.
_FAMILY = {"iso8859-1": "cp1252", "ascii": "cp1252"}


def _codec(label: str | None) -> str | None:
    if not label:
        return None
    try:
        name = codecs.lookup(label).name
    except LookupError:
        return None
    return _FAMILY.get(name, name)


def _decodes(data: bytes, codec: str) -> bool:
    try:
        data.decode(codec)
    except (UnicodeDecodeError, LookupError):
        return False
    return True


def reconcile_charset(data: bytes, content_type: str) -> tuple[bytes, str, str | None]:
    """Settle the document's character set: (bytes, Content-Type for feedparser, warning).

    feedparser follows RFC 3023: the HTTP charset wins over the XML declaration, and
    any 8-bit charset decodes any bytes, so a UTF-8 document served as
    ``charset=iso-8859-2`` (or koi8-r, windows-1256...) was stored as mojibake with
    no word.  Here, when the HTTP charset and the document's own encoding (its XML
    declaration, else UTF-8, XML's default) disagree on a document that is not pure
    ASCII:

    * if one of them is UTF-8 and the bytes are valid UTF-8, they are read as UTF-8
      (text in a legacy 8-bit charset is practically never valid UTF-8);
    * otherwise the HTTP charset if the bytes decode under it, else the declared one;

    the document is handed to feedparser transcoded to UTF-8, and the decision is the
    warning (shown on the feed).  A document without a declaration whose bytes are
    not UTF-8 simply follows its HTTP charset, silently: that is how legacy feeds are
    labelled.  With no HTTP charset a ``text/*`` type reads as the document says
    (RFC 7303), not as US-ASCII (RFC 3023's default).
    """
    if data.startswith(_WIDE_BOMS) or data[:2] in (b"<\x00", b"\x00<"):
        return data, content_type, None  # UTF-16/32: the BOM or the zeros decide
    match = _XML_ENCODING.match(data)
    declared = match.group(1).decode("ascii") if match else None
    charset = _CHARSET.search(content_type)
    if charset is None or not charset.group(1):
        own = declared or "utf-8"
        if content_type.lower().lstrip().startswith("text/") and _decodes(data, own):
            return data, f"{content_type}; charset={own}", None
        return data, content_type, None
    http = charset.group(1)
    http_codec, own_codec = _codec(http), _codec(declared) if declared else "utf-8"
    if http_codec is None or own_codec is None or http_codec == own_codec or data.isascii():
        return data, content_type, None
    utf8 = _decodes(data, "utf-8")
    if declared is None and not utf8:
        return data, content_type, None
    if "utf-8" in (http_codec, own_codec) and utf8:
        chosen, label, why = "utf-8", "utf-8", "the bytes are valid UTF-8"
    elif _decodes(data, http_codec):
        chosen, label, why = http_codec, http, "the HTTP charset wins"
    elif _decodes(data, own_codec):
        chosen, label, why = own_codec, declared or "utf-8", f"the bytes are not valid {http}"
    else:
        return data, content_type, None  # feedparser's own fallbacks, and its warning
    text = data.decode(chosen)
    if declared is not None:
        text = _XML_ENCODING_TEXT.sub(r"\g<1>utf-8", text, count=1)
    said = f"declares {declared}" if declared else "has no XML declaration (UTF-8)"
    warning = f"charset: HTTP says {http}, the document {said}; read as {label} ({why})"
    fixed_type = content_type[: charset.start()] + "; charset=utf-8" + content_type[charset.end() :]
    return text.encode("utf-8"), fixed_type, warning


# ---------------------------------------------------------------------- nesting depth

# Deeper nesting is refused before feedparser sees the document.  feedparser spends
# some 30 µs of Python per element in each of several passes (SAX handlers, then its
# sanitiser and relative-URI resolver over embedded markup, then our HTML-to-text),
# so a 2 MB document of 200,000 nested elements took 7 to 20 s to parse.  Real feeds
# nest a few dozen levels at most, XHTML content included; libxml2 refuses beyond 256
# by default.
MAX_DEPTH = 512

# One start tag, end tag, comment, CDATA section or processing instruction.  A tag
# stops at the next "<" as well as ">", so no search runs past the next tag.
_MARKUP = re.compile(rb"<(?:(!--)|(!\[CDATA\[)|(\?)|(/)?([A-Za-z_][^\s/<>]*)[^<>]*?(/)?>)")
_CLOSERS = (b"-->", b"]]>", b"?>")
# HTML elements that never have an end tag: raw HTML in a loose feed leaves them open.
_VOID = frozenset(b"area base br col embed hr img input keygen meta param source track wbr".split())


def _markup_bytes(data: bytes) -> bytes:
    """The document in an ASCII-compatible encoding, so that byte patterns see its markup."""
    head = data[:4]
    for bom, codec in (
        (b"\xff\xfe\x00\x00", "utf-32"),
        (b"\x00\x00\xfe\xff", "utf-32"),
        (b"\xff\xfe", "utf-16"),
        (b"\xfe\xff", "utf-16"),
    ):
        if head.startswith(bom):
            return data.decode(codec, "replace").encode("utf-8")
    for pattern, codec in (
        (b"<\x00\x00\x00", "utf-32-le"),
        (b"\x00\x00\x00<", "utf-32-be"),
        (b"<\x00", "utf-16-le"),
        (b"\x00<", "utf-16-be"),
    ):
        if head.startswith(pattern):
            return data.decode(codec, "replace").encode("utf-8")
    return data


def check_nesting(data: bytes, limit: int = MAX_DEPTH) -> None:
    """Raise ``ValueError`` when elements nest deeper than ``limit``.

    One pass over the markup, skipping comments, CDATA sections and processing
    instructions.  An end tag closes the innermost open element of its name and
    everything opened inside it (as an HTML parser does), so unclosed tags in a loose
    feed do not pile up; an end tag with no open element of its name is ignored.
    """
    data = _markup_bytes(data)
    stack: list[bytes] = []
    open_names: dict[bytes, int] = {}
    search = _MARKUP.search
    pos = 0
    while (match := search(data, pos)) is not None:
        name = match.group(5)
        if name is None:  # a comment, CDATA section or processing instruction
            closer = _CLOSERS[0 if match.group(1) else 1 if match.group(2) else 2]
            end = data.find(closer, match.end())
            if end < 0:
                return
            pos = end + len(closer)
            continue
        pos = match.end()
        if match.group(4):  # an end tag
            if open_names.get(name):
                while True:
                    closed = stack.pop()
                    open_names[closed] -= 1
                    if closed == name:
                        break
        elif not match.group(6) and name.lower() not in _VOID:
            stack.append(name)
            open_names[name] = open_names.get(name, 0) + 1
            if len(stack) > limit:
                raise ValueError(f"elements nested more than {limit} deep")


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


# A date given as a Unix timestamp: 9 or 10 digits are seconds (1973 to 2286), 13
# are milliseconds; other runs of digits are dates (2021, 20210906, 2021249...).
_EPOCH_SECONDS = re.compile(r"[0-9]{9,10}(?:\.[0-9]{1,9})?")
_EPOCH_MILLISECONDS = re.compile(r"[0-9]{13}")


def _epoch(text: str) -> datetime | None:
    """The instant a Unix timestamp string names, else None (not a timestamp)."""
    text = text.strip()
    if _EPOCH_SECONDS.fullmatch(text):
        seconds = float(text)
    elif _EPOCH_MILLISECONDS.fullmatch(text):
        seconds = int(text) / 1000
    else:
        return None
    return datetime.fromtimestamp(seconds, UTC)


def _date_from_text(text: str) -> datetime | None:
    """A JSON Feed date: RFC 3339 (the spec), an RFC 822 date or a Unix timestamp."""
    text = text.strip()
    moment = _epoch(text)
    if moment is not None:
        return moment
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        try:
            moment = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except (OverflowError, ValueError):
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
    response_headers = {k.lower(): v for k, v in (headers or {}).items()}
    if _looks_like_json(body):
        return parse_json_feed(body, url, headers=response_headers, max_entries=max_entries)
    if _looks_like_html(body):
        raise ParseError(url, "an HTML page, not a feed")
    try:
        data = fix_character_references(neutralise_dtd(body))
        check_nesting(data)
    except ValueError as exc:
        raise ParseError(url, f"refused: {exc}") from exc
    # Relative links resolve against the feed's own URL, not the process's cwd.
    response_headers.setdefault("content-location", url)
    notes: list[str] = []
    if "content-type" in response_headers:
        data, response_headers["content-type"], charset_note = reconcile_charset(
            data, response_headers["content-type"]
        )
        if charset_note:
            notes.append(charset_note)
    try:
        # A stream, never bytes or str: see the module docstring.
        result = feedparser.parse(
            io.BytesIO(data),
            response_headers=response_headers,
            # Embedded markup becomes plain text here: its links are dropped anyway, so
            # resolving them would only cost a pass over every element (a fifth of the
            # parse of a large document).  Entry and feed links are still resolved.
            resolve_relative_uris=False,
            sanitize_html=True,
        )
    except Exception as exc:  # feedparser raises on some malformed input
        raise ParseError(url, f"feed parser failed: {type(exc).__name__}: {exc}") from exc

    raw_entries = list(result.get("entries") or ())
    if result.get("bozo"):
        bozo = result.get("bozo_exception")
        description = f"{type(bozo).__name__}: {bozo}"
        if isinstance(bozo, feedparser.NonXMLContentType):
            # Served as text/html, text/plain or with no type at all: read all the same,
            # nothing is misread, so not a warning on the feed.
            log.info(
                "Feed served with a non-XML type", extra={"feed_url": url, "bozo": description}
            )
        elif isinstance(bozo, _SURVIVABLE):
            log.info(
                "Feed not well-formed but usable", extra={"feed_url": url, "bozo": description}
            )
        elif not raw_entries:
            cause = bozo if isinstance(bozo, BaseException) else None
            raise ParseError(url, f"not a usable feed: {description}") from cause
        else:
            log.warning(
                "Feed recovered by loose parsing", extra={"feed_url": url, "bozo": description}
            )
        if not isinstance(bozo, feedparser.NonXMLContentType):
            notes.append(description)
    version = str(result.get("version") or "")
    content_type = response_headers.get("content-type", "")
    if not version and not raw_entries:
        if "html" in content_type.lower():
            raise ParseError(url, "an HTML page, not a feed")
        raise ParseError(url, "not a feed: no feed elements and no entries")

    feed_meta = result.get("feed") or {}
    return _collect(
        url,
        title=_short(_text(feed_meta.get("title"), _detail_type(feed_meta, "title_detail"))),
        link=canonical_link(str(feed_meta.get("link") or "")),
        version=version,
        raw_entries=raw_entries,
        read=_entry,
        notes=notes,
        max_entries=max_entries,
    )


def _collect(
    url: str,
    *,
    title: str | None,
    link: str | None,
    version: str,
    raw_entries: Sequence[Any],
    read: Callable[[Any, str], ParsedEntry | None],
    notes: Sequence[str],
    max_entries: int,
) -> ParsedFeed:
    """The feed's entries, read one by one (a bad one skipped, duplicates dropped, the
    first ``max_entries`` only); the same for every format."""
    entries: list[ParsedEntry] = []
    seen: set[str] = set()
    skipped = 0
    for raw in raw_entries[:max_entries]:
        try:
            entry = read(raw, url)
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
        title=title,
        link=link,
        version=version,
        entries=tuple(entries),
        warning="; ".join(notes) or None,
        skipped_entries=skipped,
        capped_entries=max(0, len(raw_entries) - max_entries),
    )


# ---------------------------------------------------------------------- JSON Feed

JSON_FEED_VERSIONS = {
    "https://jsonfeed.org/version/1": "json1",
    "https://jsonfeed.org/version/1.1": "json11",
}


def _looks_like_json(data: bytes) -> bool:
    return data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").startswith((b"{", b"["))


def parse_json_feed(
    body: bytes,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    max_entries: int = DEFAULT_MAX_ENTRIES,
) -> ParsedFeed:
    """A JSON Feed 1.0 or 1.1 document (https://jsonfeed.org/version/1.1) → ``ParsedFeed``.

    feedparser 6 reads no JSON.  The document must be UTF-8 JSON whose top level is
    an object with a JSON Feed ``version`` and an ``items`` array; anything else is
    a ``ParseError``.  Bounded like the XML path: the body is capped by the fetcher,
    the parse runs in the sandbox, JSON nested too deeply is refused, at most
    ``max_entries`` items are read, titles and ids are bounded, and text is cleaned
    the same way.  An item is read as an entry: ``id`` (a number is coerced to a
    string, as the spec says), ``url`` (else ``external_url``) resolved against the
    feed's URL, ``title``, ``summary``, the longer of ``content_html`` (as text)
    and ``content_text``, ``date_published`` (else ``date_modified``, RFC 3339).
    """
    headers = headers or {}
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ParseError(url, f"JSON Feed not valid UTF-8 (byte {exc.start})") from exc
    try:
        document = json.loads(text)
    except RecursionError as exc:
        raise ParseError(url, "refused: JSON nested too deeply") from exc
    except ValueError as exc:
        raise ParseError(url, f"not a usable feed: invalid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise ParseError(url, f"not a JSON Feed: the top level is {_json_type(document)}")
    version = document.get("version")
    if version not in JSON_FEED_VERSIONS:
        shown = repr(version)[:100] if version is not None else "missing"
        raise ParseError(url, f"not a JSON Feed: version {shown}")
    items = document.get("items")
    if not isinstance(items, list):
        raise ParseError(url, f"not a JSON Feed: items is {_json_type(items)}, not an array")
    home = document.get("home_page_url")
    return _collect(
        url,
        title=_short(_text(document.get("title"), "text/plain")),
        link=canonical_link(urljoin(url, home)) if isinstance(home, str) else None,
        version=JSON_FEED_VERSIONS[version],
        raw_entries=items,
        read=_json_entry,
        notes=(),
        max_entries=max_entries,
    )


def _json_type(value: Any) -> str:
    if value is None:
        return "missing"
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(
        type(value), "a number"
    )


def _json_entry(item: Any, feed_url: str) -> ParsedEntry | None:
    if not isinstance(item, dict):
        return None
    link: str | None = None
    for key in ("url", "external_url"):
        value = item.get(key)
        if isinstance(value, str) and value.strip():
            link = canonical_link(urljoin(feed_url, value.strip()))
            if link:
                break
    title = _short(_text(item.get("title"), "text/plain"))
    summary = _text(item.get("summary"), "text/plain")
    content: str | None = None
    for key, kind in (("content_html", "text/html"), ("content_text", "text/plain")):
        text = _text(item.get(key), kind)
        if text and (content is None or len(text) > len(content)):
            content = text
    published: datetime | None = None
    published_raw: str | None = None
    for key in ("date_published", "date_modified"):
        value = item.get(key)
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, int | float):
            value = str(value)
        if not isinstance(value, str) or not value.strip():
            continue
        published = _date_from_text(value)
        if published is None and published_raw is None:
            published_raw = clean_text(value).strip()[:200]
        if published is not None:
            published_raw = None
            break
    raw_id = item.get("id")
    if isinstance(raw_id, int | float) and not isinstance(raw_id, bool):
        raw_id = str(raw_id)
    guid = clean_text(raw_id).strip() if isinstance(raw_id, str) else ""
    return _identified(guid, link, title, summary, content, published, published_raw, feed_url)


# ---------------------------------------------------------------------- entries


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
    # read each key by key like reader does.
    published: datetime | None = None
    for key in ("published", "updated"):
        text = raw[key] if key in raw else None  # noqa: SIM401 (.get falls back)
        epoch = _epoch(text) if isinstance(text, str) else None
        if epoch is not None:
            # feedparser reads "1630946700" as an ISO 8601 ordinal date (2016-11-04).
            published = epoch
        elif f"{key}_parsed" in raw:
            published = _datetime(raw[f"{key}_parsed"])
        if published is not None:
            break
    published_raw: str | None = None
    if published is None:
        for key in ("published", "updated", "created"):
            if key in raw and isinstance(raw[key], str) and raw[key].strip():
                published_raw = clean_text(raw[key]).strip()[:200]
                break

    guid = raw.get("id")
    guid = clean_text(guid).strip() if isinstance(guid, str) else ""
    return _identified(guid, link, title, summary, content, published, published_raw, feed_url)


def _identified(
    guid: str,
    link: str | None,
    title: str | None,
    summary: str | None,
    content: str | None,
    published: datetime | None,
    published_raw: str | None,
    feed_url: str,
) -> ParsedEntry | None:
    """The entry with its identity: the guid, else the link, else a hash of its text."""
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
