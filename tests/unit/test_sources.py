"""Backfill item sources: archive page URLs, sitemaps (hostile ones too), URL lists,
report directories and the date window."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from service.errors import ConfigError, ParseError
from service.sources import (
    DateWindow,
    SitemapEntry,
    archive_page_url,
    gunzip,
    parse_sitemap,
    parse_url_list,
    report_files,
)
from tests.servers import shared_dir


@pytest.mark.parametrize(
    ("feed_url", "page", "expected"),
    [
        ("https://o.example/feed/", 1, "https://o.example/feed/"),
        ("https://o.example/feed/", 2, "https://o.example/feed/?paged=2"),
        ("https://o.example/?feed=rss2", 3, "https://o.example/?feed=rss2&paged=3"),
        ("https://o.example/feed/?paged=9&lang=en", 4, "https://o.example/feed/?lang=en&paged=4"),
    ],
    ids=["first-page-is-the-feed", "paged", "keeps-query", "replaces-paged"],
)
def test_archive_page_url(feed_url: str, page: int, expected: str) -> None:
    assert archive_page_url(feed_url, page) == expected


def test_archive_pages_start_at_one() -> None:
    with pytest.raises(ValueError, match="start at 1"):
        archive_page_url("https://o.example/feed/", 0)


URLSET = b"""<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"
        xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">
  <url><loc>https://o.example/a</loc><lastmod>2024-03-02T10:00:00+00:00</lastmod></url>
  <url><loc> https://o.example/b </loc></url>
  <url><loc>https://o.example/a</loc></url>
  <url><loc>javascript:alert(1)</loc></url>
  <url><loc>https://o.example/n</loc><lastmod>2024-05-09</lastmod>
    <news:news><news:publication_date>2024-05-01</news:publication_date></news:news></url>
</urlset>"""

INDEX = b"""<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
  <sitemap><loc>https://o.example/sitemap-1.xml</loc><lastmod>2024-01-01</lastmod></sitemap>
  <sitemap><loc>https://o.example/sitemap-2.xml.gz</loc></sitemap>
</sitemapindex>"""


def test_urlset_entries_in_order_without_repeats_or_other_schemes() -> None:
    sitemap = parse_sitemap(URLSET, "https://o.example/sitemap.xml")
    assert sitemap.sitemaps == ()
    assert sitemap.urls == (
        SitemapEntry("https://o.example/a", date(2024, 3, 2)),
        SitemapEntry("https://o.example/b", None),
        SitemapEntry("https://o.example/n", date(2024, 5, 1)),  # news date over lastmod
    )


def test_sitemap_index_lists_child_sitemaps() -> None:
    sitemap = parse_sitemap(INDEX, "https://o.example/index.xml")
    assert [s.url for s in sitemap.sitemaps] == [
        "https://o.example/sitemap-1.xml",
        "https://o.example/sitemap-2.xml.gz",
    ]
    assert sitemap.urls == ()


def test_gzipped_sitemap_is_read() -> None:
    sitemap = parse_sitemap(gzip.compress(URLSET), "https://o.example/s.xml.gz")
    assert len(sitemap.urls) == 3


def test_gzip_is_capped() -> None:
    with pytest.raises(ValueError, match="larger than"):
        gunzip(gzip.compress(b"\0" * 100_000), max_bytes=1000)


def test_sitemap_cap() -> None:
    body = (
        "<urlset>"
        + "".join(f"<url><loc>https://o.example/{i}</loc></url>" for i in range(10))
        + "</urlset>"
    ).encode()
    sitemap = parse_sitemap(body, "https://o.example/s.xml", max_urls=4)
    assert len(sitemap.urls) == 4
    assert sitemap.capped


@pytest.mark.parametrize(
    "name", ["xmlbomb.xml", "xmlbomb2.xml", "quadratic.xml", "external.xml", "external_file.xml"]
)
def test_hostile_xml_is_refused_not_expanded(name: str) -> None:
    body = (shared_dir() / "corpora" / "defusedxml" / name).read_bytes()
    with pytest.raises(ParseError, match="sitemap refused") as info:
        parse_sitemap(body, "https://o.example/evil.xml")
    assert info.value.url == "https://o.example/evil.xml"


@pytest.mark.parametrize(
    "body", [b"", b"<html><body>Not found</body></html>", b"<urlset><url>", b"\x1f\x8bnot gzip"]
)
def test_not_a_sitemap(body: bytes) -> None:
    with pytest.raises(ParseError, match="not a sitemap"):
        parse_sitemap(body, "https://o.example/s.xml")


def test_url_list() -> None:
    text = (
        "# reports a colleague sent\n"
        "https://o.example/a\n\n"
        "  https://o.example/b  \n"
        "https://o.example/a\n"
    )
    assert parse_url_list(text, "list.txt") == ["https://o.example/a", "https://o.example/b"]


@pytest.mark.parametrize(
    ("line", "number"),
    [("ftp://o.example/a", 2), ("o.example/a", 2), ("https:///nohost", 2), ("https://a b", 2)],
)
def test_url_list_bad_line_is_named(line: str, number: int) -> None:
    with pytest.raises(ConfigError) as info:
        parse_url_list(f"https://o.example/ok\n{line}\n", "list.txt")
    assert str(info.value).startswith(f"list.txt: line {number}: not an http(s) URL")


def test_report_files_with_manifest(tmp_path: Path) -> None:
    (tmp_path / "b.txt").write_text("Report B", encoding="utf-8")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.html").write_text("<p>A</p>", encoding="utf-8")
    (tmp_path / "notes.md").write_text("ignored", encoding="utf-8")
    (tmp_path / "MANIFEST.json").write_text(
        json.dumps(
            {
                "documents": [
                    {
                        "file": "b.txt",
                        "outlet": "SOHR",
                        "title": "B",
                        "published": "2021-09-10",
                        "published_is_estimate": True,
                    }
                ]
            }
        ),
        encoding="utf-8",
    )
    files = report_files(tmp_path)
    assert [f.name for f in files] == ["b.txt", "sub/a.html"]
    assert (files[0].outlet, files[0].title, files[0].published) == ("SOHR", "B", date(2021, 9, 10))
    assert files[0].published_is_estimate
    assert (files[1].outlet, files[1].published) == (None, None)


def test_report_files_bad_manifest_is_named(tmp_path: Path) -> None:
    (tmp_path / "MANIFEST.json").write_text('{"documents": [{"file": "x.txt"}]}', "utf-8")
    with pytest.raises(ConfigError, match=r"MANIFEST\.json"):
        report_files(tmp_path)


def test_report_files_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a directory"):
        report_files(tmp_path / "nope")


def test_date_window() -> None:
    window = DateWindow(since=date(2024, 1, 1), until=date(2024, 1, 31))
    assert window.contains(None)
    assert window.contains(date(2024, 1, 1)) and window.contains(date(2024, 1, 31))
    assert window.contains(datetime(2024, 1, 31, 23, 59, tzinfo=UTC))
    assert not window.contains(date(2023, 12, 31)) and not window.contains(date(2024, 2, 1))
    assert window.is_before(date(2023, 12, 31)) and not window.is_before(None)
    assert not DateWindow().is_before(date(1990, 1, 1))
