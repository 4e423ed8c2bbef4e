"""Corpus manifests are read strictly; every mistake names the manifest and the entry."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from service.corpus import read_manifest, read_text
from service.errors import ConfigError
from service.events import DatePrecision

SEEDS = Path(__file__).resolve().parents[2] / "corpus" / "seeds" / "MANIFEST.json"

GOOD = {
    "file": "a.txt",
    "outlet": "SOHR",
    "reporting_source": "SOHR",
    "title": "A report",
    "published": "2021-09-10",
    "published_is_estimate": True,
    "has_reader_comments": False,
}


def test_seed_manifest() -> None:
    docs = read_manifest(SEEDS)
    assert len(docs) == 5
    first = docs[0]
    assert first.outlet == "SouthFront"
    assert first.reporting_source == "SOHR"
    assert first.published == date(2020, 1, 23)
    assert first.published_is_estimate is True
    assert first.has_reader_comments is True
    assert first.path == SEEDS.parent / first.file
    assert docs[4].published_is_estimate is False
    assert all(read_text(doc).strip() for doc in docs)


def write(tmp_path: Path, data: Any, files: tuple[str, ...] = ("a.txt", "b.txt")) -> Path:
    for name in files:
        (tmp_path / name).write_text("Some report text.", encoding="utf-8")
    path = tmp_path / "MANIFEST.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def test_optional_fields_default(tmp_path: Path) -> None:
    entry = {k: v for k, v in GOOD.items() if k in ("file", "outlet", "title", "published")}
    (doc,) = read_manifest(write(tmp_path, {"documents": [entry]}))
    assert doc.reporting_source is None
    assert doc.published_is_estimate is False and doc.has_reader_comments is False


def entry(**changes: Any) -> dict[str, Any]:
    data = dict(GOOD)
    for key, value in changes.items():
        if value is ...:
            del data[key]
        else:
            data[key] = value
    return data


BAD = [
    ("not-json", "{", None, "not valid JSON"),
    ("not-object", [], None, "JSON object"),
    ("unknown-top-key", {"documents": [], "extra": 1}, "extra", "unknown key"),
    ("documents-not-list", {"documents": {}}, "documents", "list"),
    ("entry-not-object", {"documents": ["a.txt"]}, "documents[0]", "object"),
    ("unknown-key", {"documents": [entry(lang="en")]}, "documents[0].lang", "'a.txt'"),
    ("missing-outlet", {"documents": [entry(outlet=...)]}, "documents[0].outlet", "missing"),
    ("empty-title", {"documents": [entry(title=" ")]}, "documents[0].title", "non-empty"),
    (
        "bad-date",
        {"documents": [entry(published="2021-13-01")]},
        "documents[0].published",
        "'2021-13-01'",
    ),
    (
        "bool-type",
        {"documents": [entry(published_is_estimate="yes")]},
        "documents[0].published_is_estimate",
        "'yes'",
    ),
    (
        "source-type",
        {"documents": [entry(reporting_source=3)]},
        "documents[0].reporting_source",
        "3",
    ),
    ("missing-file", {"documents": [entry(file="zzz.txt")]}, "documents[0].file", "zzz.txt"),
    ("escaping-file", {"documents": [entry(file="../a.txt")]}, "documents[0].file", "'../a.txt'"),
    (
        "duplicate-file",
        {"documents": [entry(), entry(title="again")]},
        "documents[1].file",
        "duplicate",
    ),
]


@pytest.mark.parametrize(("data", "key", "text"), [pytest.param(*c[1:], id=c[0]) for c in BAD])
def test_bad_manifest(tmp_path: Path, data: Any, key: str | None, text: str) -> None:
    path = write(tmp_path, data)
    with pytest.raises(ConfigError) as info:
        read_manifest(path)
    message = str(info.value)
    assert message.startswith(str(path)), message
    if key is not None:
        assert info.value.key == key, message
    assert text in message


def test_missing_manifest(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="manifest not found"):
        read_manifest(tmp_path / "MANIFEST.json")


@pytest.mark.parametrize(
    ("published", "first", "precision"),
    [
        pytest.param("2021-09-10", date(2021, 9, 10), DatePrecision.DAY, id="day"),
        pytest.param("2021-09", date(2021, 9, 1), DatePrecision.MONTH, id="month"),
        pytest.param("2021", date(2021, 1, 1), DatePrecision.YEAR, id="year"),
        pytest.param(None, None, DatePrecision.UNKNOWN, id="unknown"),
    ],
)
def test_publication_date_to_the_day_month_year_or_unknown(
    tmp_path: Path, published: str | None, first: date | None, precision: DatePrecision
) -> None:
    (doc,) = read_manifest(write(tmp_path, {"documents": [entry(published=published)]}))
    assert doc.published == first
    assert doc.published_precision is precision


def test_title_may_be_missing_or_null_and_url_is_kept(tmp_path: Path) -> None:
    data = {
        "documents": [
            entry(title=..., url="https://example.org/news/1"),
            entry(file="b.txt", title=None),
        ]
    }
    first, second = read_manifest(write(tmp_path, data))
    assert first.title is None and second.title is None
    assert first.url == "https://example.org/news/1"
    assert second.url is None


@pytest.mark.parametrize("published", ["21-09", "2021-9", "Sept 2021", "2021-02-30", 2021])
def test_malformed_publication_date_is_named(tmp_path: Path, published: Any) -> None:
    path = write(tmp_path, {"documents": [entry(published=published)]})
    with pytest.raises(ConfigError) as info:
        read_manifest(path)
    assert info.value.key == "documents[0].published"
    assert repr(published) in str(info.value)
