"""Corpus manifests: which text files make up a corpus, with their outlet and dates.

A manifest is a JSON object ``{"about": "...", "documents": [...]}``; each document is

    {"file": "000_x.txt", "outlet": "SouthFront", "reporting_source": "SOHR",
     "title": "...", "published": "2020-01-23", "published_is_estimate": true,
     "has_reader_comments": true}

``file`` is relative to the manifest's directory; ``reporting_source`` may be null;
``published_is_estimate`` and ``has_reader_comments`` default to false. Reading is
strict: an unknown or missing key, a wrong type, a bad date, a duplicate or missing
file is a :class:`~service.errors.ConfigError` naming the manifest and the entry.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path, PurePosixPath
from typing import Any

from service.errors import ConfigError

_TOP_KEYS = {"about", "documents"}
_REQUIRED = {"file": str, "outlet": str, "title": str, "published": str}
_OPTIONAL_BOOLS = ("published_is_estimate", "has_reader_comments")
_KNOWN = {*_REQUIRED, "reporting_source", *_OPTIONAL_BOOLS}


@dataclass(frozen=True, slots=True)
class ManifestDoc:
    """One document of a corpus manifest."""

    path: Path  # the text file (manifest directory / file)
    file: str  # as written in the manifest
    outlet: str
    reporting_source: str | None
    title: str
    published: date
    published_is_estimate: bool = False
    has_reader_comments: bool = False


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
    source = entry.get("reporting_source")
    if source is not None and (not isinstance(source, str) or not source.strip()):
        raise fail("reporting_source", f"expected a non-empty string or null, got {source!r}")
    flags: dict[str, bool] = {}
    for key in _OPTIONAL_BOOLS:
        value = entry.get(key, False)
        if not isinstance(value, bool):
            raise fail(key, f"expected true or false, got {value!r}")
        flags[key] = value
    try:
        published = date.fromisoformat(entry["published"])
    except ValueError:
        raise fail(
            "published", f"expected an ISO date (YYYY-MM-DD), got {entry['published']!r}"
        ) from None

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
        reporting_source=source.strip() if source else None,
        title=entry["title"].strip(),
        published=published,
        published_is_estimate=flags["published_is_estimate"],
        has_reader_comments=flags["has_reader_comments"],
    )
