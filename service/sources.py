"""Where ``service backfill`` finds its items, as pure functions (no HTTP, no database).

* **Archive pages** of a WordPress-style feed: page 1 is the feed itself, page N adds
  ``paged=N`` to its query (``/feed/?paged=2``).
* **Sitemaps** (``<urlset>`` and ``<sitemapindex>``, plain or gzipped): untrusted XML,
  parsed with defusedxml, so a DOCTYPE declaring entities or external references is
  refused rather than expanded.  A Google News ``publication_date`` wins over
  ``lastmod`` as the item's date.
* **URL lists**: one http(s) URL per line; blank lines and ``#`` comments ignored,
  repeats dropped; anything else is an error naming the line.
* **Report directories**: ``.html``/``.htm``/``.txt`` files (recursively, in name
  order) with an optional ``MANIFEST.json`` in the seed-corpus format giving outlet,
  title and publication date per file.
* **The date window** of ``--since``/``--until``: both ends included; an item whose
  date is unknown is kept (its page may still give one).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
from xml.etree.ElementTree import Element
from xml.etree.ElementTree import ParseError as XMLSyntaxError

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from service.corpus import ManifestDoc, read_manifest
from service.errors import ConfigError, ParseError
from service.events import DatePrecision

MAX_SITEMAP_URLS = 50_000  # the sitemaps.org limit per file
REPORT_SUFFIXES = frozenset({".html", ".htm", ".txt"})
MANIFEST_NAME = "MANIFEST.json"


@dataclass(frozen=True, slots=True)
class DateWindow:
    """Publication dates from ``since`` to ``until``, both included; None: open."""

    since: date | None = None
    until: date | None = None

    def contains(self, day: date | datetime | None) -> bool:
        if day is None:
            return True
        if isinstance(day, datetime):
            day = day.date()
        if self.since is not None and day < self.since:
            return False
        return self.until is None or day <= self.until

    def is_before(self, day: date | datetime | None) -> bool:
        """True when ``day`` is known and earlier than ``since`` (an archive walk can stop)."""
        if day is None or self.since is None:
            return False
        if isinstance(day, datetime):
            day = day.date()
        return day < self.since


def archive_page_url(feed_url: str, page: int) -> str:
    """The URL of page ``page`` (1-based) of a WordPress-style paged feed."""
    if page < 1:
        raise ValueError(f"archive pages start at 1, got {page}")
    if page == 1:
        return feed_url
    parts = urlsplit(feed_url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "paged"]
    query.append(("paged", str(page)))
    return urlunsplit(parts._replace(query=urlencode(query)))


# ----------------------------------------------------------------------------- sitemaps


@dataclass(frozen=True, slots=True)
class SitemapEntry:
    url: str
    published: date | None  # news:publication_date, else lastmod


@dataclass(frozen=True, slots=True)
class Sitemap:
    """A parsed sitemap: page URLs (``urlset``) or further sitemaps (``sitemapindex``)."""

    urls: tuple[SitemapEntry, ...]
    sitemaps: tuple[SitemapEntry, ...]
    capped: bool = False  # more than MAX_SITEMAP_URLS entries: the rest were dropped


def gunzip(body: bytes, *, max_bytes: int) -> bytes:
    """``body`` itself, or its gzip-decoded content when it is a gzip file (``.xml.gz``).

    Decoded in bounded steps: more than ``max_bytes`` is an error, never a huge buffer.
    """
    if not body.startswith(b"\x1f\x8b"):
        return body
    decoder = zlib.decompressobj(zlib.MAX_WBITS | 16)
    try:
        out = decoder.decompress(body, max_bytes + 1)
    except zlib.error as exc:
        raise ValueError(f"not a valid gzip file: {exc}") from exc
    if len(out) > max_bytes or decoder.unconsumed_tail:
        raise ValueError(f"gzip content larger than {max_bytes} bytes")
    return out


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _date(value: str | None) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value.strip()[:10])
    except ValueError:
        return None


def _entry(element: Element) -> SitemapEntry | None:
    loc: str | None = None
    lastmod: date | None = None
    news_date: date | None = None
    for child in element.iter():
        name = _local(child.tag)
        if name == "loc" and loc is None and child.text:
            loc = child.text.strip()
        elif name == "lastmod":
            lastmod = _date(child.text)
        elif name == "publication_date":
            news_date = _date(child.text)
    if not loc or urlsplit(loc).scheme not in ("http", "https"):
        return None
    return SitemapEntry(url=loc, published=news_date or lastmod)


def parse_sitemap(body: bytes, url: str, *, max_urls: int = MAX_SITEMAP_URLS) -> Sitemap:
    """Parse a sitemap or sitemap index; ``ParseError(url)`` when it is neither."""
    try:
        root = SafeET.fromstring(gunzip(body, max_bytes=50 * 1024 * 1024))
    except DefusedXmlException as exc:
        raise ParseError(url, f"sitemap refused: {type(exc).__name__}: {exc}") from exc
    except (XMLSyntaxError, ValueError) as exc:
        raise ParseError(url, f"not a sitemap: {exc}") from exc
    kind = _local(root.tag)
    if kind not in ("urlset", "sitemapindex"):
        raise ParseError(url, f"not a sitemap: root element <{kind}>")
    child_tag = "url" if kind == "urlset" else "sitemap"
    entries: list[SitemapEntry] = []
    seen: set[str] = set()
    capped = False
    for element in root:
        if _local(element.tag) != child_tag:
            continue
        entry = _entry(element)
        if entry is None or entry.url in seen:
            continue
        if len(entries) >= max_urls:
            capped = True
            break
        seen.add(entry.url)
        entries.append(entry)
    if kind == "urlset":
        return Sitemap(urls=tuple(entries), sitemaps=(), capped=capped)
    return Sitemap(urls=(), sitemaps=tuple(entries), capped=capped)


# ----------------------------------------------------------------------------- URL lists


def parse_url_list(text: str, source: str) -> list[str]:
    """The URLs of a list, in order, repeats dropped; ``ConfigError`` naming a bad line."""
    urls: list[str] = []
    seen: set[str] = set()
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = urlsplit(line)
        if parts.scheme not in ("http", "https") or not parts.netloc or " " in line:
            raise ConfigError(source, f"line {number}", f"not an http(s) URL: {line!r}")
        if line not in seen:
            seen.add(line)
            urls.append(line)
    return urls


# ----------------------------------------------------------------------------- directories


@dataclass(frozen=True, slots=True)
class ReportFile:
    """A report file with what its manifest entry (if any) says about it."""

    path: Path
    name: str  # relative to the directory, with forward slashes
    outlet: str | None = None
    title: str | None = None
    published: date | None = None
    published_is_estimate: bool = False


def report_files(directory: Path) -> list[ReportFile]:
    """The report files under ``directory``, in name order, with manifest metadata.

    ``ConfigError`` when the directory is missing or its manifest is invalid.
    """
    if not directory.is_dir():
        raise ConfigError(str(directory), None, "not a directory")
    listed: dict[Path, ManifestDoc] = {}
    manifest = directory / MANIFEST_NAME
    if manifest.is_file():
        listed = {entry.path.resolve(): entry for entry in read_manifest(manifest)}
    files: list[ReportFile] = []
    for path in sorted(directory.rglob("*")):
        if not path.is_file() or path.suffix.lower() not in REPORT_SUFFIXES:
            continue
        name = path.relative_to(directory).as_posix()
        doc = listed.get(path.resolve())
        if doc is None:
            files.append(ReportFile(path=path, name=name))
        else:
            files.append(
                ReportFile(
                    path=path,
                    name=name,
                    outlet=doc.outlet,
                    title=doc.title,
                    published=doc.published,
                    published_is_estimate=doc.published_is_estimate
                    or doc.published_precision is not DatePrecision.DAY,
                )
            )
    return files
