"""Report files → rule input: ``.txt`` is read as text, ``.html``/``.htm`` goes through
the same trafilatura extraction as feed articles."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from service.corpus import ManifestDoc
from service.errors import ExtractError
from service.events import DatePrecision
from service.extract import clean_text, extract_article
from service.rules import Document

HTML_SUFFIXES = frozenset({".html", ".htm"})
TEXT_SUFFIXES = frozenset({".txt"})


def read_report(
    path: Path,
    *,
    published: date | None = None,
    outlet: str | None = None,
    published_is_estimate: bool = False,
    reporting_source: str | None = None,
    title: str | None = None,
    url: str | None = None,
    published_precision: DatePrecision = DatePrecision.DAY,
) -> Document:
    suffix = path.suffix.lower()
    if suffix not in HTML_SUFFIXES | TEXT_SUFFIXES:
        raise ExtractError(
            f"{path}: unsupported file type {suffix or '(none)'}; expected .txt, .html or .htm"
        )
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ExtractError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if suffix in TEXT_SUFFIXES:
        text = clean_text(raw.decode("utf-8", errors="replace"))
    else:
        article = extract_article(raw, url=None)
        if article is None:
            raise ExtractError(f"{path}: no article text found in the page")
        text = article.text
        title = title or article.title
        if published is None and article.published is not None:
            published, published_precision = article.published, DatePrecision.DAY
    if published is None:
        published_precision = DatePrecision.UNKNOWN
    return Document(
        text=text,
        published=published,
        outlet=outlet,
        published_is_estimate=published_is_estimate,
        reporting_source=reporting_source,
        title=title,
        url=url,
        published_precision=published_precision,
    )


def read_manifest_doc(doc: ManifestDoc) -> Document:
    return read_report(
        doc.path,
        published=doc.published,
        outlet=doc.outlet,
        published_is_estimate=doc.published_is_estimate,
        reporting_source=doc.reporting_source,
        title=doc.title,
        url=doc.url,
        published_precision=doc.published_precision,
    )
