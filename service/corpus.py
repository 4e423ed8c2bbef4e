"""Corpus manifests: which text files make up a corpus, with their outlet and dates.

A manifest is a JSON object ``{"about": "...", "documents": [...]}``; each document is

    {"file": "000_x.txt", "outlet": "SouthFront", "reporting_source": "SOHR",
     "title": "...", "published": "2020-01-23", "published_is_estimate": true,
     "has_reader_comments": true, "url": "https://..."}

``file`` is relative to the manifest's directory. ``published`` is a day
(``YYYY-MM-DD``), a month (``YYYY-MM``), a year (``YYYY``) or null (unknown);
``title``, ``reporting_source`` and ``url`` (the article's address, kept as the
events' source link) may be missing or null; ``published_is_estimate`` and
``has_reader_comments`` default to false. Reading is strict: an unknown or missing
key, a wrong type, a bad date, a duplicate or missing file is a
:class:`~service.errors.ConfigError` naming the manifest and the entry.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path, PurePosixPath
from typing import Any

from service.errors import ConfigError
from service.events import DatePrecision

_TOP_KEYS = {"about", "documents"}
_REQUIRED = {"file": str, "outlet": str}
_OPTIONAL_STRINGS = ("title", "reporting_source", "url")
_OPTIONAL_BOOLS = ("published_is_estimate", "has_reader_comments")
_KNOWN = {*_REQUIRED, "published", *_OPTIONAL_STRINGS, *_OPTIONAL_BOOLS}


@dataclass(frozen=True, slots=True)
class ManifestDoc:
    """One document of a corpus manifest."""

    path: Path  # the text file (manifest directory / file)
    file: str  # as written in the manifest
    outlet: str
    reporting_source: str | None
    title: str | None
    # The first day of the period ``published`` names; None when it is unknown.
    published: date | None
    published_is_estimate: bool = False
    has_reader_comments: bool = False
    url: str | None = None
    # How much of ``published`` the manifest gives: DAY, MONTH, YEAR or UNKNOWN.
    published_precision: DatePrecision = DatePrecision.DAY


def read_manifest(path: Path) -> list[ManifestDoc]:
    """Read and check a manifest; the documents in manifest order."""
    shown = str(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(shown, None, "manifest not found") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(shown, None, f"cannot read manifest: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(shown, None, f"not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(shown, None, "expected a JSON object with a 'documents' list")
    for key in data:
        if key not in _TOP_KEYS:
            raise ConfigError(shown, key, "unknown key (expected 'about' and 'documents')")
    documents = data.get("documents")
    if not isinstance(documents, list):
        raise ConfigError(shown, "documents", "expected a list of document objects")

    docs: list[ManifestDoc] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(documents):
        doc = _document(path, index, entry)
        if doc.file in seen:
            raise ConfigError(
                shown,
                f"documents[{index}].file",
                f"duplicate file {doc.file!r} (also documents[{seen[doc.file]}])",
            )
        seen[doc.file] = index
        docs.append(doc)
    return docs


def read_text(doc: ManifestDoc) -> str:
    """The document's text, exactly as stored in its file (UTF-8)."""
    try:
        return doc.path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(doc.path), None, f"cannot read document: {exc}") from exc


def _document(manifest: Path, index: int, entry: Any) -> ManifestDoc:
    shown = str(manifest)
    where = f"documents[{index}]"
    if not isinstance(entry, dict):
        raise ConfigError(shown, where, f"expected an object, got {type(entry).__name__}")
    label = f" (entry {entry['file']!r})" if isinstance(entry.get("file"), str) else ""

    def fail(key: str, message: str) -> ConfigError:
        return ConfigError(shown, f"{where}.{key}", message + label)

    for key in entry:
        if key not in _KNOWN:
            raise fail(key, f"unknown key (known: {', '.join(sorted(_KNOWN))})")
    for key, kind in _REQUIRED.items():
        if key not in entry:
            raise fail(key, "required key is missing")
        if not isinstance(entry[key], kind) or not entry[key].strip():
            raise fail(key, f"expected a non-empty string, got {entry[key]!r}")
    strings: dict[str, str | None] = {}
    for key in _OPTIONAL_STRINGS:
        value = entry.get(key)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise fail(key, f"expected a non-empty string or null, got {value!r}")
        strings[key] = value.strip() if value else None
    flags: dict[str, bool] = {}
    for key in _OPTIONAL_BOOLS:
        value = entry.get(key, False)
        if not isinstance(value, bool):
            raise fail(key, f"expected true or false, got {value!r}")
        flags[key] = value
    if "published" not in entry:
        raise fail("published", "required key is missing (null when unknown)")
    parsed = parse_published(entry["published"])
    if parsed is None:
        raise fail(
            "published",
            f"expected YYYY-MM-DD, YYYY-MM, YYYY or null, got {entry['published']!r}",
        )
    published, precision = parsed

    file = entry["file"]
    relative = PurePosixPath(file)
    if relative.is_absolute() or ".." in relative.parts or "\\" in file:
        raise fail("file", f"must be a path inside the manifest's directory, got {file!r}")
    text_path = manifest.parent / relative
    if not text_path.is_file():
        raise fail("file", f"no such file {str(text_path)!r}")

    return ManifestDoc(
        path=text_path,
        file=file,
        outlet=entry["outlet"].strip(),
        reporting_source=strings["reporting_source"],
        title=strings["title"],
        published=published,
        published_is_estimate=flags["published_is_estimate"],
        has_reader_comments=flags["has_reader_comments"],
        url=strings["url"],
        published_precision=precision,
    )


_PUBLISHED = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?")


def parse_published(value: Any) -> tuple[date | None, DatePrecision] | None:
    """A manifest's ``published``: its first day and precision; None when malformed.

    ``null`` is an unknown date: ``(None, UNKNOWN)``.
    """
    if value is None:
        return None, DatePrecision.UNKNOWN
    if not isinstance(value, str):
        return None
    m = _PUBLISHED.fullmatch(value.strip())
    if m is None:
        return None
    year, month, day = m.groups()
    try:
        first = date(int(year), int(month or 1), int(day or 1))
    except ValueError:
        return None
    if day:
        return first, DatePrecision.DAY
    return first, DatePrecision.MONTH if month else DatePrecision.YEAR
