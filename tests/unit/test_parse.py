"""Feed parsing: identity chain, text cleaning, bozo handling, hostile XML."""

from __future__ import annotations

import json
import tracemalloc
from datetime import UTC, datetime

import pytest

from service.errors import ParseError
from service.parse import (
    MAX_DEPTH,
    EntryIdSource,
    canonical_link,
    check_nesting,
    fix_character_references,
    html_to_text,
    neutralise_dtd,
    parse_feed,
    reconcile_charset,
)
from service.sandbox import Sandbox
from tests.servers import shared_dir

URL = "https://outlet.example/feed.xml"
XML = {"content-type": "application/rss+xml; charset=utf-8"}

RSS = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel>
<title>Valley Monitor</title><link>https://outlet.example/</link>
<item>
  <title>Convoy seen near the river crossing</title>
  <guid isPermaLink="false">report-0001</guid>
  <link>/reports/1#top</link>
  <pubDate>Tue, 30 Apr 2024 08:15:00 +0300</pubDate>
  <description>&lt;p&gt;A convoy of &lt;b&gt;twelve&lt;/b&gt; trucks&lt;/p&gt;
  &lt;p&gt;moved east.&lt;/p&gt;</description>
</item>
<item>
  <title>Checkpoint handed over</title>
  <link>HTTPS://Outlet.Example:443/reports/2</link>
  <pubDate>not a date at all</pubDate>
  <description>Plain summary.</description>
</item>
<item>
  <title>Untitled bulletin</title>
  <description>Only text, no link, no guid.</description>
</item>
<item><title></title></item>
</channel></rss>
"""


def rss(items: bytes, title: bytes = b"t") -> bytes:
    return (
        b'<rss version="2.0"><channel><title>' + title + b"</title>" + items + b"</channel></rss>"
    )


def test_rss_entries_and_identity_chain() -> None:
    feed = parse_feed(RSS, URL, headers=XML)
    assert feed.title == "Valley Monitor"
    assert feed.version == "rss20"
    assert feed.warning is None
    first, second, third = feed.entries
    assert (first.entry_id, first.id_source) == ("report-0001", EntryIdSource.GUID)
    # Relative links resolve against the feed URL; the fragment is dropped.
    assert first.link == "https://outlet.example/reports/1"
    assert first.published == datetime(2024, 4, 30, 5, 15, tzinfo=UTC)
    assert first.summary == "A convoy of twelve trucks\n\nmoved east."
    assert first.text == first.summary
    assert (second.entry_id, second.id_source) == (
        "https://outlet.example/reports/2",
        EntryIdSource.LINK,
    )
    # An unparsable date is None and flagged with the raw string, never "now".
    assert second.published is None
    assert second.published_raw == "not a date at all"
    assert third.id_source == EntryIdSource.CONTENT_HASH
    assert third.entry_id.startswith("sha256:")
    # The empty item has no identity and no text: skipped, counted.
    assert feed.skipped_entries == 1


def test_content_hash_is_stable() -> None:
    a = parse_feed(RSS, URL, headers=XML).entries[2].entry_id
    b = parse_feed(RSS, "https://mirror.example/feed", headers=XML).entries[2].entry_id
    assert a == b


ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title type="html">Field &lt;i&gt;notes&lt;/i&gt;</title>
  <id>urn:uuid:feed</id>
  <entry>
    <id>urn:uuid:entry-1</id>
    <title>Night movements</title>
    <link href="https://outlet.example/n/1"/>
    <updated>2024-04-29T22:00:00Z</updated>
    <summary>Short.</summary>
    <content type="html">&lt;p&gt;Longer body with &amp;amp; and a NUL\x00 here.&lt;/p&gt;
      &lt;script&gt;alert(1)&lt;/script&gt;</content>
  </entry>
</feed>
"""


def test_atom_content_preferred_and_cleaned() -> None:
    feed = parse_feed(ATOM.encode(), URL, headers={"content-type": "application/atom+xml"})
    (entry,) = feed.entries
    assert feed.title == "Field notes"
    assert entry.entry_id == "urn:uuid:entry-1"
    assert entry.published == datetime(2024, 4, 29, 22, 0, tzinfo=UTC)
    assert entry.content == "Longer body with & and a NUL here."
    assert entry.text == entry.content
    assert "\x00" not in (entry.content or "")


def test_entries_capped_and_duplicates_dropped() -> None:
    items = "".join(
        f'<item><guid isPermaLink="false">g{i % 30}</guid><title>t{i}</title></item>'
        for i in range(60)
    )
    body = f'<rss version="2.0"><channel><title>x</title>{items}</channel></rss>'.encode()
    feed = parse_feed(body, URL, headers=XML, max_entries=40)
    assert [e.entry_id for e in feed.entries] == [f"g{i}" for i in range(30)]
    assert feed.capped_entries == 20


@pytest.mark.parametrize(
    "body",
    [b"", b"   \n\t ", b"\xef\xbb\xbf  ", b"\x00\x00"],
    ids=["empty", "whitespace", "bom", "nuls"],
)
def test_empty_body(body: bytes) -> None:
    with pytest.raises(ParseError, match="empty"):
        parse_feed(body, URL)


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (b"<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>", {}),
        (b"\n<html><head><title>Login</title></head><body>Sign in</body></html>", {}),
        (b"<h1>Service unavailable</h1><p>try later</p>", {"content-type": "text/html"}),
    ],
    ids=["doctype", "html", "fragment-text-html"],
)
def test_html_error_pages(body: bytes, headers: dict[str, str]) -> None:
    with pytest.raises(ParseError, match=r"HTML|not a"):
        parse_feed(body, URL, headers=headers)


def test_garbage_is_parse_error_with_cause() -> None:
    with pytest.raises(ParseError) as info:
        parse_feed(b"\x89PNG\r\n\x1a\n\x00\x00binary", URL)
    assert info.value.url == URL


def test_body_that_names_a_local_file_is_not_opened(tmp_path) -> None:  # type: ignore[no-untyped-def]
    secret = tmp_path / "secret.xml"
    secret.write_text('<rss version="2.0"><channel><title>LEAKED</title></channel></rss>')
    with pytest.raises(ParseError):
        parse_feed(str(secret).encode(), URL)


def test_recovered_entries_kept_with_warning() -> None:
    body = rss(b'<item><guid isPermaLink="false">a</guid><title>x &bogus; y</title></item>')
    feed = parse_feed(body, URL, headers=XML)
    assert [e.entry_id for e in feed.entries] == ["a"]
    assert feed.warning


@pytest.mark.parametrize("headers", [{"content-type": "text/plain"}, {}])
def test_survivable_content_type_is_read_and_not_a_warning(headers: dict[str, str]) -> None:
    # Nothing is misread, so nothing to show on the feed (it is logged).
    body = (
        b'<rss version="2.0"><channel><title>t</title><item><guid>a</guid></item></channel></rss>'
    )
    feed = parse_feed(body, URL, headers=headers)
    assert feed.entries and feed.warning is None


@pytest.mark.parametrize(
    "ref", [b"&#xD800;", b"&#55296;", b"&#x110000;", b"&#0;", b"&#99999999999;"]
)
def test_bad_character_references_do_not_crash(ref: bytes) -> None:
    body = (
        b'<rss version="2.0"><channel><title>t</title><item><guid>a</guid><title>x'
        + ref
        + b"y</title></item></channel></rss>"
    )
    feed = parse_feed(body, URL, headers=XML)
    (entry,) = feed.entries
    assert entry.title is not None and entry.title.startswith("x") and entry.title.endswith("y")
    entry.title.encode("utf-8")  # no lone surrogate left


def test_fix_character_references_keeps_good_ones() -> None:
    assert fix_character_references(b"&#169; &#xD800; &#x41;") == b"&#169; &#xFFFD; &#x41;"


def test_raw_nul_and_controls_stripped() -> None:
    body = rss(b'<item><guid isPermaLink="false">a\x00b</guid></item>', title=b"a\x00b\x07c")
    feed = parse_feed(body, URL, headers=XML)
    assert feed.title == "abc"
    assert feed.entries[0].entry_id == "ab"


# ------------------------------------------------------------------ hostile XML


def _measure(body: bytes) -> tuple[object, int]:
    tracemalloc.start()
    try:
        outcome: object = parse_feed(body, URL, headers=XML)
    except ParseError as exc:
        outcome = exc
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return outcome, peak


def _rss_with_dtd(subset: str, title: str) -> bytes:
    return (
        f'<?xml version="1.0"?>\n<!DOCTYPE rss [\n{subset}\n]>\n'
        f'<rss version="2.0"><channel><title>{title}</title>'
        f"<item><guid>g</guid><description>{title}</description></item></channel></rss>"
    ).encode()


def test_quadratic_blowup_does_not_expand() -> None:
    body = _rss_with_dtd(f'<!ENTITY a "{"B" * 100_000}">', "&a;" * 5_000)
    outcome, peak = _measure(body)  # would expand to 500 MB
    assert peak < 32 * 2**20
    if not isinstance(outcome, ParseError):
        assert "B" * 1000 not in repr(outcome)


def test_billion_laughs_does_not_expand() -> None:
    levels = ['<!ENTITY l0 "lol">'] + [
        f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10)
    ]
    outcome, peak = _measure(_rss_with_dtd("\n".join(levels), "&l9;"))
    assert peak < 32 * 2**20
    if not isinstance(outcome, ParseError):
        assert "lollollol" not in repr(outcome)


def test_external_entities_not_resolved(tmp_path) -> None:  # type: ignore[no-untyped-def]
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    subset = f'<!ENTITY ff SYSTEM "file://{secret}">\n<!ENTITY % pe SYSTEM "http://127.0.0.1:9/x.dtd">\n%pe;'
    outcome, _ = _measure(_rss_with_dtd(subset, "x &ff; y"))
    assert "TOP-SECRET" not in repr(outcome)


def test_single_character_entities_survive() -> None:
    feed = parse_feed(_rss_with_dtd('<!ENTITY c "&#169;">', "a &c; b"), URL, headers=XML)
    assert feed.title == "a \u00a9 b"


def test_entities_in_utf16_refused() -> None:
    body = _rss_with_dtd('<!ENTITY a "x">', "&a;").decode().encode("utf-16")
    with pytest.raises(ParseError, match="UTF-16"):
        parse_feed(body, URL)


def test_neutralise_dtd_keeps_external_id() -> None:
    public = b'PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN" "x.dtd"'
    body = b"<!DOCTYPE rss " + public + b' [<!ENTITY a "]>">]><rss/>'
    out = neutralise_dtd(body)
    assert out == b"<!DOCTYPE rss " + public + b"><rss/>"


def test_neutralise_dtd_refuses_what_it_cannot_parse() -> None:
    with pytest.raises(ValueError):
        neutralise_dtd(b"<!DOCTYPE r [ <!-- it's --> <!ENTITY a 'x'> ]><r/>")


@pytest.mark.parametrize(
    "name",
    [
        "xmlbomb.xml",
        "xmlbomb2.xml",
        "quadratic.xml",
        "cyclic.xml",
        "external.xml",
        "external_file.xml",
        "dtd.xml",
        "dtd_element.xml",
    ],
)
def test_defusedxml_samples(name: str) -> None:
    body = (shared_dir() / "corpora" / "defusedxml" / name).read_bytes()
    outcome, peak = _measure(body)
    assert peak < 16 * 2**20
    # None of these is a feed; all must fail cleanly.
    assert isinstance(outcome, ParseError)


# ------------------------------------------------------------------ helpers


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        ("HTTP://Example.COM:80/a?b=1#frag", "http://example.com/a?b=1"),
        ("https://example.com:8443", "https://example.com:8443/"),
        ("https://[2001:db8::1]:443/x", "https://[2001:db8::1]/x"),
        ("javascript:alert(1)", None),
        ("mailto:a@b.example", None),
        ("/relative", None),
        ("http://bad:port/", None),
    ],
)
def test_canonical_link(link: str, expected: str | None) -> None:
    assert canonical_link(link) == expected


def test_html_to_text() -> None:
    html = "<div>One&nbsp;two<br>three</div><style>x{}</style><ul><li>a</li><li>b</li></ul>"
    assert html_to_text(html) == "One two\nthree\n\na\n\nb"


# -------------------------------------------------------- nesting depth (issue 16, item 8)


DEEP = 200_000


def _atom(inside_feed: bytes = b"", content: bytes = b"<div>x</div>") -> bytes:
    return (
        b'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        b"<title>t</title>" + inside_feed + b"<entry><id>e</id><title>x</title>"
        b'<content type="xhtml">' + content + b"</content></entry></feed>"
    )


@pytest.mark.parametrize(
    "body",
    [
        _atom(content=b"<div>" * DEEP + b"x" + b"</div>" * DEEP),
        _atom(inside_feed=b"<x>" * DEEP + b"</x>" * DEEP),
        _atom(inside_feed=b"<entry>" * DEEP + b"</entry>" * DEEP),
        _atom(inside_feed=b"<x>" * DEEP),  # never closed
        _atom(content=b"<div>" * DEEP + b"</div>" * DEEP).decode().encode("utf-16"),
    ],
    ids=["xhtml-content", "unknown-elements", "entries", "unclosed", "utf-16"],
)
def test_pathological_nesting_is_refused(body: bytes) -> None:
    """200,000-deep Atom took feedparser 7 to 20 s; it is refused before parsing."""
    with pytest.raises(ParseError, match=r"refused: elements nested more than 512 deep"):
        parse_feed(body, URL, headers={"content-type": "application/atom+xml"})


def test_nesting_at_the_limit_parses() -> None:
    depth = MAX_DEPTH - 10  # feed, entry, content... take the rest
    body = _atom(content=b"<div>" * depth + b"deep text" + b"</div>" * depth)
    (entry,) = parse_feed(body, URL, headers={"content-type": "application/atom+xml"}).entries
    assert entry.content == "deep text"


@pytest.mark.parametrize(
    "body",
    [
        # Comments, CDATA and processing instructions hold no elements.
        b"<a>" + b"<!-- <b> -->" * 1000 + b"<![CDATA[" + b"<c>" * 1000 + b"]]></a>",
        b"<a>" + b"<?pi <d> ?>" * 1000 + b"</a>",
        # Raw HTML in a loose feed: void elements and unclosed tags closed by their parent.
        b"<rss><channel>"
        + b"<item><description>"
        + b"<br><img src=x><p>para" * 400
        + b"</description></item>" * 5
        + b"</channel></rss>",
        # An end tag without its start tag is ignored.
        b"<a>" + b"</b>" * 10_000 + b"<c/>" * 10_000 + b"</a>",
        # Attributes with ">" and "/" in them.
        b"<a href=\"x/>y\" title='<'>" * 400 + b"</a>" * 400,
    ],
    ids=["comments-cdata", "pi", "loose-html", "stray-end-tags", "attributes"],
)
def test_check_nesting_counts_only_open_elements(body: bytes) -> None:
    check_nesting(body)


def test_check_nesting_limit() -> None:
    check_nesting(b"<a>" * 5, limit=5)
    with pytest.raises(ValueError, match="more than 5 deep"):
        check_nesting(b"<a>" * 6, limit=5)


def test_parse_time_box_is_the_parse_bound() -> None:
    """A parse that overruns the sandbox's parse_timeout is a ParseError, not a hang."""
    box = Sandbox(workers=1, timeout=30, parse_timeout=0.001)
    with box, pytest.raises(ParseError, match=r"parse took longer than 0.001s"):
        box.parse_feed(RSS, URL, headers=XML, max_entries=10)


# -------------------------------------------------------------- charset (issue 16, item 9)


UTF8_RSS = (
    '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>café</title>'
    "<item><guid>1</guid><title>Qūriyah — “x”</title></item></channel></rss>"
).encode()


@pytest.mark.parametrize(
    ("body", "content_type", "title", "warning"),
    [
        pytest.param(
            UTF8_RSS,
            "application/rss+xml; charset=ISO-8859-2",
            "Qūriyah — “x”",
            "charset: HTTP says ISO-8859-2, the document declares UTF-8; "
            "read as utf-8 (the bytes are valid UTF-8)",
            id="utf8-served-as-latin2",
        ),
        pytest.param(
            UTF8_RSS.replace(b' encoding="UTF-8"', b""),
            'text/xml; charset="windows-1256"',
            "Qūriyah — “x”",
            "charset: HTTP says windows-1256, the document has no XML declaration (UTF-8); "
            "read as utf-8 (the bytes are valid UTF-8)",
            id="undeclared-utf8-served-as-cp1256",
        ),
        pytest.param(
            UTF8_RSS.decode()
            .replace("UTF-8", "ISO-8859-1")
            .replace("Qūriyah", "Quriyah")
            .encode("cp1252"),
            "application/rss+xml; charset=utf-8",
            "Quriyah — “x”",
            "charset: HTTP says utf-8, the document declares ISO-8859-1; "
            "read as ISO-8859-1 (the bytes are not valid utf-8)",
            id="latin1-served-as-utf8",
        ),
        pytest.param(UTF8_RSS, "application/rss+xml; charset=utf-8", "Qūriyah — “x”", None),
        pytest.param(UTF8_RSS, "text/xml", "Qūriyah — “x”", None, id="text-xml-no-charset"),
        pytest.param(
            UTF8_RSS.decode().replace("Qūriyah", "Quriyah").encode(),
            "application/rss+xml; charset=us-ascii",
            "Quriyah — “x”",
            "charset: HTTP says us-ascii, the document declares UTF-8; "
            "read as utf-8 (the bytes are valid UTF-8)",
            id="utf8-served-as-ascii",
        ),
        pytest.param(
            UTF8_RSS.decode()
            .replace("UTF-8", "iso-8859-1")
            .replace("Qūriyah", "Quriyah")
            .encode("cp1252"),
            "application/rss+xml; charset=windows-1252",
            "Quriyah — “x”",
            None,
            id="latin1-family-agrees",
        ),
    ],
)
def test_charset_contradictions(
    body: bytes, content_type: str, title: str, warning: str | None
) -> None:
    feed = parse_feed(body, URL, headers={"content-type": content_type})
    assert feed.entries[0].title == title
    assert feed.warning == warning


def test_legacy_charset_without_declaration_follows_http_silently() -> None:
    body = (
        '<rss version="2.0"><channel><title>t</title><item><guid>1</guid>'
        "<title>Колонна</title></item></channel></rss>"
    ).encode("koi8-r")
    feed = parse_feed(body, URL, headers={"content-type": "application/rss+xml; charset=koi8-r"})
    assert feed.entries[0].title == "Колонна"
    assert feed.warning is None


def test_reconcile_charset_leaves_utf16_alone() -> None:
    body = UTF8_RSS.decode().replace("UTF-8", "UTF-16").encode("utf-16")
    assert reconcile_charset(body, "application/xml; charset=iso-8859-2") == (
        body,
        "application/xml; charset=iso-8859-2",
        None,
    )


# ---------------------------------------------------------------- dates (issue 16, item 9)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1630946700", datetime(2021, 9, 6, 16, 45, tzinfo=UTC)),
        (" 1630946700 ", datetime(2021, 9, 6, 16, 45, tzinfo=UTC)),
        ("1630946700.5", datetime(2021, 9, 6, 16, 45, 0, 500000, tzinfo=UTC)),
        ("1630946700000", datetime(2021, 9, 6, 16, 45, tzinfo=UTC)),
        ("999999999", datetime(2001, 9, 9, 1, 46, 39, tzinfo=UTC)),
        # Runs of digits that are dates, as before.
        ("20210906", datetime(2021, 9, 6, tzinfo=UTC)),
        ("2021", datetime(2021, 1, 1, tzinfo=UTC)),
    ],
)
def test_entry_dates_as_unix_timestamps(value: str, expected: datetime) -> None:
    feed = parse_feed(
        rss(f"<item><guid>a</guid><pubDate>{value}</pubDate></item>".encode()), URL, headers=XML
    )
    assert feed.entries[0].published == expected


def test_atom_updated_timestamp() -> None:
    body = _atom().replace(b"<title>x</title>", b"<title>x</title><updated>1630946700</updated>")
    (entry,) = parse_feed(body, URL, headers={"content-type": "application/atom+xml"}).entries
    assert entry.published == datetime(2021, 9, 6, 16, 45, tzinfo=UTC)


# ------------------------------------------------------------ JSON Feed (issue 16, item 6)


def json_feed(items: list[object], version: str = "https://jsonfeed.org/version/1.1") -> bytes:
    return json.dumps({"version": version, "title": "J", "items": items}).encode()


JSON = {"content-type": "application/feed+json"}


def test_json_feed_entries() -> None:
    body = json_feed(
        [
            {
                "id": "1",
                "url": "/r/1#c",
                "title": " A &amp; B ",
                "content_html": "<p>One</p><p>Two\x00</p>",
                "content_text": "One",
                "summary": "S",
                "date_published": "2024-04-30T08:15:00+03:00",
            },
            {"id": 2.0, "external_url": "https://elsewhere.example/x", "content_text": "T"},
            {"id": "3", "content_text": "U", "date_published": "soon"},
            {"url": "https://outlet.example/4", "content_text": "V"},
            {"content_text": "W"},
            "not an item",
            {},
        ]
    )
    feed = parse_feed(body, URL, headers=JSON)
    assert (feed.version, feed.title, feed.warning, feed.skipped_entries) == (
        "json11",
        "J",
        None,
        2,
    )
    one, two, three, four, five = feed.entries
    assert one.link == "https://outlet.example/r/1"
    assert one.title == "A &amp; B"  # JSON Feed titles are plain text
    assert one.content == "One\n\nTwo" and one.summary == "S"
    assert one.published == datetime(2024, 4, 30, 5, 15, tzinfo=UTC)
    assert (two.entry_id, two.link) == ("2.0", "https://elsewhere.example/x")
    assert three.published is None and three.published_raw == "soon"
    assert (four.entry_id, four.id_source) == ("https://outlet.example/4", EntryIdSource.LINK)
    assert five.id_source is EntryIdSource.CONTENT_HASH


def test_json_feed_is_bounded_like_xml() -> None:
    items = [{"id": f"i{n}", "content_text": f"t{n}", "title": "x" * 5000} for n in range(30)]
    items.append({"id": "g" * 5000, "content_text": "long id"})
    feed = parse_feed(json_feed(items), URL, headers=JSON, max_entries=10)
    assert len(feed.entries) == 10 and feed.capped_entries == 21
    assert all(len(e.title or "") == 1000 for e in feed.entries)
    long_id = parse_feed(json_feed(items[-1:]), URL, headers=JSON).entries[0]
    assert long_id.entry_id.startswith("sha256:")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"version": "https://jsonfeed.org/version/1", "items": ' + b"[" * 100_000, "too deeply"),
        (b'{"version": 1, "items": []}', "not a JSON Feed: version 1"),
        (b'{"version": "https://jsonfeed.org/version/1", "items": [', "invalid JSON"),
        (b'{"version": "https://jsonfeed.org/version/1", "items": ["\xff"]}', "not valid UTF-8"),
        (b"[]", "the top level is an array"),
    ],
    ids=["deep", "version", "truncated", "utf8", "array"],
)
def test_json_that_is_not_a_usable_json_feed(body: bytes, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parse_feed(body, URL, headers=JSON)


@pytest.mark.parametrize("headers", [XML, {}, {"content-type": "application/json"}])
def test_json_feed_served_as_something_else_is_read(headers: dict[str, str]) -> None:
    feed = parse_feed(json_feed([{"id": "1", "content_text": "x"}]), URL, headers=headers)
    assert feed.entries[0].entry_id == "1"
    assert feed.warning is None
