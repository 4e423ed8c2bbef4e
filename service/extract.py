"""Article HTML → clean text and metadata, via trafilatura (the only module that imports it).

Comments, navigation and teasers are left out; what comes back is the text the
rules read and the offsets of evidence point into.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date

import trafilatura

from service.errors import ExtractError


@dataclass(frozen=True, slots=True)
class ExtractedArticle:
    text: str
    title: str | None
    published: date | None
    author: str | None
    site_name: str | None


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|[\ud800-\udfff]")


def clean_text(text: str) -> str:
    """Strip NUL, other C0 controls and lone surrogates (PostgreSQL rejects NUL), NFC-normalise."""
    return unicodedata.normalize("NFC", _CONTROL.sub("", text))


def _parse_date(value: str | None) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def extract_article(html: str | bytes, url: str | None = None) -> ExtractedArticle | None:
    """Main text and metadata of an article page; None when the page has no article text."""
    try:
        doc = trafilatura.bare_extraction(
            html,
            url=url,
            include_comments=False,
            include_tables=False,
            with_metadata=True,
            favor_precision=True,
        )
    except Exception as exc:  # trafilatura/lxml raise a wide variety on corrupt input
        raise ExtractError(f"{url or '<html>'}: cannot extract article text: {exc}") from exc
    if doc is None:
        return None
    text = clean_text(getattr(doc, "text", None) or "")
    if not text.strip():
        return None
    return ExtractedArticle(
        text=text,
        title=getattr(doc, "title", None),
        published=_parse_date(getattr(doc, "date", None)),
        author=getattr(doc, "author", None),
        site_name=getattr(doc, "sitename", None),
    )
