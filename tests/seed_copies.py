"""Other outlets' copies of the seed corpus, for tests: mirrors and rewrites.

A *mirror* serves a seed's article (without its reader comments) on another domain,
inside that site's page furniture: a date banner ("OCTOBER 2024") and a donation
widget ("$ 2,500 5,000 100") injected above and below the article, a menu, share
buttons, related links and a footer.  Analysts have read the seed: a mirror is a
duplicate of it.

A *rewrite* reports a seed's dated movements again in other words (another outlet's
correspondent, published a day or two later): not a duplicate, but every event in it
is one the seed reported, so it corroborates the seed's events.  Each sentence names
its actor, place and a full date, so that it matches the seed's event under the
corroboration rules (an undated event never merges) whatever the wording.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from html import escape
from pathlib import Path
from xml.sax.saxutils import escape as xml_escape

from service.corpus import ManifestDoc, read_manifest, read_text
from tests.servers import LoopbackServer, Request, Response

SEED_MANIFEST = Path(__file__).resolve().parents[1] / "corpus" / "seeds" / "MANIFEST.json"

# Where the reader comments start in the seeds that carry them.
COMMENTS_START = {
    "000_86bcaa15ba192ac0.txt": "  • Jens Holm",
    "001_643cc20e54ec1169.txt": "These guys need to be careful",
}

BANNER = "OCTOBER 2024"
DONATION = "$ 2,500 5,000 100"


def seed_docs() -> list[ManifestDoc]:
    return read_manifest(SEED_MANIFEST)


def seed_doc(prefix: str) -> ManifestDoc:
    """The seed whose file name starts with ``prefix`` ("001")."""
    (doc,) = [doc for doc in seed_docs() if doc.file.startswith(prefix)]
    return doc


def article_text(doc: ManifestDoc) -> str:
    """The seed's article, without the reader comments its scrape carries."""
    text = read_text(doc)
    marker = COMMENTS_START.get(doc.file)
    return text[: text.index(marker)].rstrip() if marker else text


def mirror_page(doc: ManifestDoc, site: str = "Deir Ezzor Mirror") -> bytes:
    """The seed's article as a mirror site serves it, page furniture and all."""
    paragraphs = [
        line.strip()
        for line in article_text(doc).split("\n")
        if line.strip() and line.strip() != doc.title
    ]
    body = "\n".join(f"<p>{escape(p)}</p>" for p in paragraphs)
    amounts = " ".join(
        f'<a class="amount" href="/donate?amount={a.replace(",", "")}">{a}</a>'
        for a in DONATION.split()[1:]
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{escape(doc.title)} | {site}</title>
<meta property="og:site_name" content="{site}">
<meta property="og:type" content="article">
</head><body class="single-post">
<header class="site-header">
  <div class="top-bar"><span class="today">{BANNER}</span>
    <a class="donate-button" href="/donate">Donate</a></div>
  <nav class="main-menu"><ul><li><a href="/">Home</a></li><li><a href="/news">News</a></li>
    <li><a href="/analysis">Analysis</a></li><li><a href="/maps">Maps</a></li>
    <li><a href="/donate">Support us</a></li></ul></nav>
</header>
<main id="content"><article class="post">
  <h1 class="entry-title">{escape(doc.title)}</h1>
  <div class="entry-content">
    <p class="mirror-strip"><strong>{BANNER}</strong> · Keep this mirror online, donate:
      <b>$</b> {amounts}</p>
{body}
    <p class="donation-amounts">{DONATION}</p>
  </div>
  <div class="share-buttons">Share <a href="#fb">Facebook</a> <a href="#tw">Twitter</a>
    <a href="#tg">Telegram</a> <a href="#mail">Email</a></div>
</article></main>
<aside class="related-posts"><h3>Related</h3><ul>
  <li><a href="/news/1">Clashes reported near the river crossing</a></li>
  <li><a href="/news/2">Weekly map update</a></li></ul></aside>
<footer class="site-footer"><p>© 2024 {site}. Mirrors are run by volunteers.</p>
  <p><a href="/privacy">Privacy</a> · <a href="/contact">Contact</a></p></footer>
</body></html>""".encode()


@dataclass(frozen=True)
class Rewrite:
    """Another outlet's report of a seed's movements, in its own words."""

    seed: str  # the seed's file name prefix ("001")
    slug: str
    title: str
    paragraphs: tuple[str, ...]
    published: datetime

    @property
    def text(self) -> str:
        return "\n\n".join(self.paragraphs)


REWRITES = (
    Rewrite(
        "000",
        "militia-offices-moved-out-of-al-tmuo",
        "Pro-Iranian groups leave their security zone",
        (
            "Pro-Iranian militias moved their offices, weapons and furniture out of the "
            "al-Tmuo district of al-Mayadin to new headquarters on the edge of the city on "
            "January 21, 2020, sources of the Syrian Observatory for Human Rights said.",
            "Residents said the district had been closed to civilians since the militias "
            "made it their base, and that families hoped to go back to their houses there.",
        ),
        datetime(2020, 1, 24, 10, 0, tzinfo=UTC),
    ),
    Rewrite(
        "001",
        "afghan-fighters-reach-al-mayadin",
        "Afghan fighters reach the Euphrates valley",
        (
            "Fighters of the Afghan Liwa Fatemiyoun, loyal to Iran, reached al-Mayadin on "
            "June 3, 2020 in a column of 30 vehicles that had set out from al-Heri near the "
            "Iraqi border, the Syrian Observatory for Human Rights reported.",
            "The men unloaded supplies and weapons in the orchards around the town, which "
            "the militias use as their main assembly area in the region, witnesses said.",
        ),
        datetime(2020, 6, 5, 8, 30, tzinfo=UTC),
    ),
    Rewrite(
        "002",
        "hezbollah-commander-tours-al-mayadin",
        "Hezbollah commander tours the eastern countryside",
        (
            "A commander of the Lebanese Hezbollah visited al-Mayadin on August 31, 2021 "
            "and met officers of the allied militias stationed in the city, according to "
            "Observatory sources.",
            "The sources did not say how long he stayed or whether he went on to the "
            "border crossing, and the group did not comment on the trip.",
        ),
        datetime(2021, 9, 11, 12, 0, tzinfo=UTC),
    ),
    Rewrite(
        "003",
        "militias-hold-eastern-deir-ezzor",
        "Who holds the east of the province",
        (
            "In July, the militias backed by Iran moved their main positions in Deir Ezzor "
            "province after their locations were leaked to the press.",
            "They answer to officers of the Revolutionary Guards, who pay and arm them, "
            "local activists told our reporter.",
        ),
        datetime(2019, 9, 27, 9, 0, tzinfo=UTC),
    ),
    Rewrite(
        "004",
        "russian-convoys-arrive-at-talaia-camp",
        "Russian columns on the move in the east",
        (
            "Three large Russian military convoys carrying 60 vehicles arrived at the "
            "al-Talaia camp on July 10, 2020, coming from Raqqa province, a correspondent "
            "in the area confirmed.",
            "Farmers on the road said the trucks drove through the night with their lights "
            "off and that helicopters escorted them for part of the way.",
        ),
        datetime(2020, 7, 22, 7, 0, tzinfo=UTC),
    ),
)


def rewrite_page(rewrite: Rewrite, site: str = "Euphrates Wire") -> bytes:
    body = "\n".join(f"<p>{escape(p)}</p>" for p in rewrite.paragraphs)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(rewrite.title)} | {site}</title>
<meta property="og:site_name" content="{site}"></head><body>
<nav><a href="/">Home</a> | <a href="/syria">Syria</a> | <a href="/about">About</a></nav>
<main><article><h1>{escape(rewrite.title)}</h1>
<p class="byline">By our correspondent | {rewrite.published:%B %d, %Y}</p>
{body}
</article></main>
<aside>Related: market prices in the valley</aside>
<footer>© {site}</footer></body></html>""".encode()


MIRRORED = datetime(2024, 10, 12, 6, 0, tzinfo=UTC)  # when the mirror reposted the seeds


@dataclass(frozen=True)
class _Item:
    slug: str
    title: str
    summary: str
    published: datetime
    page: bytes


class CopySite:
    """A loopback site whose feed (``/feed.xml``) lists mirrors and rewrites of seeds,
    each with its page under ``/posts/<slug>``; the feed lists the last added first."""

    def __init__(self, server: LoopbackServer) -> None:
        self.server = server
        self.items: list[_Item] = []
        server.route("/feed.xml", self._feed)

    @property
    def feed_url(self) -> str:
        return self.server.url("/feed.xml")

    def url(self, slug: str) -> str:
        return self.server.url(f"/posts/{slug}")

    def add_mirror(self, doc: ManifestDoc) -> str:
        slug = "mirror-" + doc.file.removesuffix(".txt")
        first = next(
            line.strip()
            for line in article_text(doc).split("\n")
            if len(line.split()) > 12 and line.strip() != doc.title
        )
        self._add(_Item(slug, doc.title, first, MIRRORED, mirror_page(doc)))
        return slug

    def add_rewrite(self, rewrite: Rewrite) -> str:
        self._add(
            _Item(
                rewrite.slug,
                rewrite.title,
                rewrite.paragraphs[0],
                rewrite.published,
                rewrite_page(rewrite),
            )
        )
        return rewrite.slug

    def _add(self, item: _Item) -> None:
        self.items.insert(0, item)
        self.server.route(
            f"/posts/{item.slug}",
            lambda _r, page=item.page: Response(
                200, {"Content-Type": "text/html; charset=utf-8"}, page
            ),
        )

    def _feed(self, _request: Request) -> Response:
        entries = "".join(
            "<item><title>{t}</title><link>{link}</link><guid>{link}</guid>"
            "<pubDate>{d}</pubDate><description>{s}</description></item>".format(
                t=xml_escape(item.title),
                link=self.url(item.slug),
                d=format_datetime(item.published),
                s=xml_escape(item.summary),
            )
            for item in self.items
        )
        body = (
            '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
            f"<title>Copies</title><link>{self.server.url('/')}</link>{entries}"
            "</channel></rss>"
        ).encode()
        return Response(200, {"Content-Type": "application/rss+xml; charset=utf-8"}, body)
