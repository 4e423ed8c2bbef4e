"""Text preparation for the rules: match-form normalisation, zones, paragraphs, sentences.

Everything here keeps offsets into the original text, because an event's evidence
is reported as ``start``/``end`` into the stored article text.

Zones. Scraped pages carry more than the report: banners ("JULY 2020"), "close
button", "6 min read", bylines, photo captions, reader comments (bulleted under
commenter names, or unmarked after the article) and teasers for other articles.
``segment`` classifies each line:

* ``furniture``: dropped (navigation, reading time, banners, share buttons);
* ``head``: short unpunctuated lines before the body starts (title, sub-title,
  captions); they may yield events, which only survive if the body does not
  report the same movement;
* ``body``: the report;
* everything from the first comment or teaser marker after the body started is
  cut: a bulleted short name line, a bare commenter-name line, "comments",
  "Related articles", "Leave a reply", …
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from enum import StrEnum

_APOSTROPHES = "'’‘`ʼʿʾ´"
# Double quotation marks vanish too: 'the "Local Defence" militia' reads like the name.
_QUOTES = '"“”„«»‹›'
_SEPARATORS = "-‐‑‒–—_/"


_MATCH_WORD = re.compile(r"[^\W_]+")


@dataclass(frozen=True, slots=True)
class Tokens:
    """The words of a match-form text and their spans, as parallel lists."""

    words: list[str]
    starts: list[int]
    ends: list[int]
    at: dict[str, list[int]]  # word -> the indexes where it occurs


@dataclass(frozen=True)
class MatchText:
    """Lower-cased, accent-free text for matching, with a map back to original offsets.

    Hyphens and slashes become spaces, apostrophes and double quotes disappear (a
    possessive "'s" becomes a separate "s"), whitespace runs collapse to one space:
    "Deir Al-Zour" and "deir al zour" read the same, "Liwa' Al-Quds" reads "liwa al
    quds", 'the "Local Defence" militia' reads "the local defence militia".
    """

    text: str
    offsets: tuple[int, ...]  # offsets[i] = index in the original of text[i]; one extra at the end
    _tokens: list[Tokens] = field(default_factory=list, init=False, repr=False, compare=False)

    @property
    def tokens(self) -> Tokens:
        """The words of ``text``, tokenised once and shared by every phrase lookup."""
        if not self._tokens:
            found = list(_MATCH_WORD.finditer(self.text))
            words = [m.group() for m in found]
            at: dict[str, list[int]] = {}
            for i, word in enumerate(words):
                at.setdefault(word, []).append(i)
            self._tokens.append(
                Tokens(words, [m.start() for m in found], [m.end() for m in found], at)
            )
        return self._tokens[0]

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Original (start, end) of the match-form slice [start, end)."""
        if end <= start:
            return self.offsets[start], self.offsets[start]
        return self.offsets[start], self.offsets[end - 1] + 1


def normalise(text: str) -> str:
    """The match form of a short string (aliases, gold names): see MatchText."""
    return to_match_text(text).text.strip()


def _fold(ch: str) -> str:
    if ch in _APOSTROPHES or ch in _QUOTES:
        return ""
    if ch in _SEPARATORS or ch.isspace():
        return " "
    if ord(ch) < 128:
        return ch.lower()
    decomposed = unicodedata.normalize("NFKD", ch)
    base = "".join(c for c in decomposed if not unicodedata.combining(c))
    return base.lower() if base else ""


_FOLDED: dict[str, str] = {}
_POSSESSIVE = re.compile(r"[" + _APOSTROPHES + r"](?=[sS](?![^\W\d_]))")


_DELETED = "\x00"  # an apostrophe or a combining mark, in the one-to-one form
_EXPANDED = "\x01"  # stands in the one-to-one form for a fold of several characters
_PLACEHOLDER = re.compile(_EXPANDED)
_ONE_TO_ONE: dict[str, str | None] = {}  # non-ASCII character -> its one-character fold
_EXPANSIONS: dict[str, str] = {}  # non-ASCII character -> its fold of several characters
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
_ASCII_SPACE = re.compile(
    "["
    + re.escape("".join(ch for ch in map(chr, range(128)) if ch.isspace() and ch != " "))
    + re.escape("".join(ch for ch in _SEPARATORS if ch.isascii()))
    + "]"
)
_ASCII_APOSTROPHE = re.compile(r"['`\"]")
# The three folds of ASCII characters (lower case; spacing and separators as spaces;
# apostrophes and quotes as _DELETED) as one bytes.translate of the UTF-8, which
# leaves the bytes of every other character alone.
_ASCII_FOLD = bytes.maketrans(
    bytes(range(128)),
    _ASCII_APOSTROPHE.sub(
        _DELETED, _ASCII_SPACE.sub(" ", "".join(map(chr, range(128))).lower())
    ).encode("ascii"),
)
# Gaps that do not map one to one: runs of spaces and apostrophes, a lone apostrophe.
_EDITS = re.compile("[ \x00]{2,}|\x00")


class _NotOneToOne(Exception):
    pass


def _one_to_one(m: re.Match[str], expansions: list[str]) -> str:
    ch = m.group()
    f = _ONE_TO_ONE.get(ch, "")
    if f == "":
        folded = _fold(ch)
        if len(folded) <= 1:
            f = folded or _DELETED
        elif " " in folded:
            f = None
        else:
            f, _EXPANSIONS[ch] = _EXPANDED, folded
        _ONE_TO_ONE[ch] = f
    if f is None:
        raise _NotOneToOne
    if f == _EXPANDED:
        expansions.append(_EXPANSIONS[ch])
    return f


def _expand(text: str, offsets: list[int], expansions: list[str]) -> tuple[str, list[int]]:
    """Each placeholder, in order, replaced by its fold; each character of a fold maps
    to the placeholder's original offset (as the character loop maps them)."""
    out: list[str] = []
    mapped: list[int] = []
    at = 0
    places = [m.start() for m in _PLACEHOLDER.finditer(text)]
    for i, fold in zip(places, expansions, strict=True):
        out += (text[at:i], fold)
        mapped += offsets[at:i]
        mapped += [offsets[i]] * len(fold)
        at = i + 1
    out.append(text[at:])
    mapped += offsets[at:]  # with the extra one at the end
    return "".join(out), mapped


def _one_to_one_form(text: str) -> tuple[str, list[str]] | None:
    """``text`` folded character for character (same length): lower case, spacing as
    spaces, apostrophes and combining marks as ``_DELETED``, each fold of several
    characters as ``_EXPANDED`` (their folds, in order, are the list).  None when
    only the character loop can fold it."""
    form = _one_to_one_utf8(text)
    if form is None:
        return None
    data, expansions = form
    return data.decode("utf-8", "surrogatepass"), expansions


def _one_to_one_utf8(text: str) -> tuple[bytes, list[str]] | None:
    """``_one_to_one_form`` as UTF-8."""
    if _DELETED in text or _EXPANDED in text:  # a marker itself: only the loop can tell
        return None
    work = text
    # A possessive "'s" becomes a separate "s": "Hezbollah's" reads "hezbollah s".
    possessive = [m.start() for m in _POSSESSIVE.finditer(text)]
    if possessive:
        chars = list(text)
        for i in possessive:
            chars[i] = " "
        work = "".join(chars)
    expansions: list[str] = []  # folds of several characters ("…" -> "..."), in order
    if not work.isascii():
        try:
            work = _NON_ASCII.sub(lambda m: _one_to_one(m, expansions), work)
        except _NotOneToOne:
            return None
    # The other characters are folded (lower case) already: only ASCII is left to do.
    return work.encode("utf-8", "surrogatepass").translate(_ASCII_FOLD), expansions


def _leading_gap(work: str) -> int:
    return len(work) - len(work.lstrip(" " + _DELETED))  # nothing comes of a leading gap


def to_match_text(text: str) -> MatchText:
    """The match form of ``text`` (see MatchText) with its offset map.

    Text whose every character folds to at most one character (nearly all of it) is
    folded with whole-string operations; the character loop is the fallback.
    """
    form = _one_to_one_form(text)
    if form is None:
        return _to_match_text_slow(text, {m.start() for m in _POSSESSIVE.finditer(text)})
    work, expansions = form
    out: list[str] = []
    offsets: list[int] = []
    at = _leading_gap(work)
    for m in _EDITS.finditer(work, at):
        start, end = m.span()
        if start > at:
            out.append(work[at:start])
            offsets.extend(range(at, start))
        space = work.find(" ", start, end)
        if space != -1 and out:
            out.append(" ")
            offsets.append(space)
        at = end
    if at < len(work):
        out.append(work[at:])
        offsets.extend(range(at, len(work)))
    offsets.append(len(text))
    folded = "".join(out)
    if expansions:
        folded, offsets = _expand(folded, offsets, expansions)
    return MatchText(folded, tuple(offsets))


def fold(text: str) -> str:
    """``to_match_text(text).text`` without the offset map, which is most of its cost:
    enough to ask whether a text names anything at all."""
    form = _one_to_one_utf8(text)
    if form is None:
        return to_match_text(text).text
    data, expansions = form
    # As the edits of to_match_text: a deleted character goes, a run of spaces is one
    # (spaces are the only white space left), none leads, one may end the text.
    kept = data.replace(_DELETED.encode(), b"")
    folded = b" ".join(kept.split()).decode("utf-8", "surrogatepass")
    if folded and kept.endswith(b" "):
        folded += " "
    if expansions:
        folds = iter(expansions)
        folded = _PLACEHOLDER.sub(lambda _: next(folds), folded)
    return folded


def _to_match_text_slow(text: str, possessive: set[int]) -> MatchText:
    """Character by character, for text with characters that fold to several (or none)."""
    folded = _FOLDED
    out: list[str] = []
    offsets: list[int] = []
    append_char = out.append
    append_offset = offsets.append
    last_space = True
    for i, ch in enumerate(text):
        f = folded.get(ch)
        if f is None:
            f = folded[ch] = _fold(ch)
        if i in possessive:
            f = " "
        if f == " ":
            if last_space:
                continue
            last_space = True
            append_char(f)
            append_offset(i)
        elif len(f) == 1:
            last_space = False
            append_char(f)
            append_offset(i)
        else:
            for c in f:
                last_space = c == " "
                append_char(c)
                append_offset(i)
    offsets.append(len(text))
    return MatchText("".join(out), tuple(offsets))


class Zone(StrEnum):
    HEAD = "head"
    BODY = "body"


@dataclass(frozen=True, slots=True)
class Sentence:
    text: str
    start: int
    end: int
    paragraph: int
    zone: Zone
    quoted: bool  # the whole sentence sits inside quotation marks


_FURNITURE = [
    re.compile(p, re.IGNORECASE)
    for p in (
        r"^\d+\s*min(ute)?s?\s+read$",
        r"^close( button)?$",
        r"^switch to\b.*\?$",
        r"^it looks like you.re having trouble loading\b.*",
        r"^(click|tap)\b.*\b(to|for)\b.*",
        r"^(source|photo|image|credit|caption|file photo|photo credit)\s*[:»|].*",
        r"^source$",
        r"^(share|tweet|email|print|follow us|subscribe|advertisement|sponsored|features?|news"
        r"|home|menu|search|skip to content|listen|download)\b.{0,30}$",
        r"^(by|written by|posted by|edited by)\s+\S+(\s+\S+){0,3}$",
        r"^(updated|published|posted)\s*:?.{0,40}$",
        r"^(tags?|categories|category|filed under)\s*:.*",
        r"^(read (more|also)|related|see also|also read)\s*:.+",
        # A teaser for another article: "Continue reading <its headline>".
        r"^(continue reading|keep reading|read the full (story|article|report)|"
        r"read full (story|article))\b.*",
        r"^\W+$",
        r"^[\d\s:/.,-]+$",
        # Channel posts: a line of hashtags, a views-and-time counter ("👁 6.3K  09:12")
        r"^(\W*#\w+\W*)+$",
        r"^\W*comments?\s+(are|is)\s+(closed|disabled|off)\b.*",
        r"^\W*\d+(\.\d+)?\s*[kKmM]?\s+(views?\s+)?\d{1,2}:\d{2}(\s*[aApP][mM])?\W*$",
    )
]
_MONTHS = (
    "january|february|march|april|may|june|july|august|september|october|november|december|"
    "jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec"
)
_DATE_LINE = re.compile(
    rf"^(?:(?:mon|tues|wednes|thurs|fri|satur|sun)day,?\s*)?"
    rf"(?:(?:{_MONTHS})\.?\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}|\d{{1,2}}\s+(?:{_MONTHS})\.?,?\s+\d{{4}}|(?:{_MONTHS})\s+\d{{4}})"
    rf"(?:\s*[-–|,]?\s*\d{{1,2}}:\d{{2}}\s*(?:am|pm)?)?$",
    re.IGNORECASE,
)
_END_MARKERS = re.compile(
    r"^(\d+\s+)?(comments?|responses?|replies|reply|leave a (reply|comment)|post a comment|"
    r"comments are closed\.?|related( articles| posts| stories| news| content)?|"
    r"read (more|also|next)|you (may|might) also like|more (stories|from\b.*|news)|"
    r"recommended( for you)?|most (read|popular|viewed)|latest (news|stories)|"
    r"also on\b.*|trending|join the (discussion|conversation)|\d+ thoughts? on\b.*|"
    r"share this( article)?:?)$",
    re.IGNORECASE,
)
_BULLET = re.compile(r"^\s*[•◦▪●·\*]\s*")
_SENTENCE_END = re.compile(r"[.!?…:;\"”’)]\s*$")
# Words that make a short line a heading about the story rather than a commenter's name.
_TOPIC = re.compile(
    r"\b(syria\w*|iran\w*|iraq\w*|russia\w*|israel\w*|turk\w*|kurd\w*|us|u\.s\.|american|"
    r"isis|daesh|hezbollah|militia\w*|forces?|army|regime|coalition|deir|euphrates|"
    r"war|attack\w*|strike\w*|convoy\w*|oil|border|pact|conflict|soldiers?|troops|"
    r"refuses?|report\w*|news|analysis|features?|the|of|in|and|to|for|on|with|as|a|an|"
    r"moscow|tehran|damascus|washington|ankara|desert|badia|front\w*|river|bank|town|city|"
    r"village|region|province|ambitions?|power|control|influence)\b|\w[’']s\b",
    re.IGNORECASE,
)
_WORD = re.compile(r"[^\W\d_][\w'’.-]*|\w+")
_BODY_MIN_WORDS = 25
_SENTENCE_MIN_WORDS = 10  # a shorter line ending in a full stop may still be a caption
_PROSE_END = re.compile(r"[.!?][\"”’)]*\s*$")
_FIRST_PERSON = re.compile(r"\b(I|I'm|I’m|I've|I’ve|LOL|lol|you|your|you're|you’re|IMHO|imho)\b")

# Sentence boundary: terminal punctuation (and closing quotes), then space, then a
# capital, digit or opening quote. Abbreviations that end in a period are protected.
_ABBREV = re.compile(
    r"\b(?:U\.S|U\.N|U\.K|Mr|Mrs|Ms|Dr|Gen|Lt|Col|Maj|Capt|Sgt|Brig|St|No|Jr|Sr|vs|etc|approx|Lt\.Col|e\.g|i\.e)\.$"
)
_SPLIT = re.compile(r"(?<=[.!?…])(?P<close>[\"”’)\]]*)\s+(?=[\"“‘(\[]?[A-Z0-9\u0600-\u06FF])")


def _is_name_line(line: str) -> bool:
    """A commenter's name: a short line without sentence punctuation and without story words."""
    stripped = line.strip()
    if not stripped or len(stripped) > 40 or _SENTENCE_END.search(stripped):
        return False
    if "#" in stripped:  # hashtags tag a channel's post; a commenter signs with a name
        return False
    words = _WORD.findall(stripped)
    if not 1 <= len(words) <= 5:
        return False
    return not _TOPIC.search(stripped)


def _is_furniture(line: str) -> bool:
    s = line.strip()
    if not s:
        return True
    if _DATE_LINE.match(s):
        return True
    return any(p.match(s) for p in _FURNITURE)


def _word_count(s: str) -> int:
    return len(_WORD.findall(s))


def _split_sentences(para: str, base: int) -> list[tuple[str, int, int]]:
    out: list[tuple[str, int, int]] = []
    start = 0
    for m in _SPLIT.finditer(para):
        head = para[start : m.start()].rstrip()
        if _ABBREV.search(head) or re.search(r"\b[A-Z]\.$", head):
            continue
        piece = para[start : m.start() + len(m.group("close"))]  # keep a closing quote
        if piece.strip():
            lead = len(piece) - len(piece.lstrip())
            out.append(
                (piece.strip(), base + start + lead, base + start + lead + len(piece.strip()))
            )
        start = m.end()
    piece = para[start:]
    if piece.strip():
        lead = len(piece) - len(piece.lstrip())
        out.append((piece.strip(), base + start + lead, base + start + lead + len(piece.strip())))
    return out


def _quoted(s: str) -> bool:
    return bool(re.match(r"^[\"“].*[\"”]$|^[\"“][^\"”]*$", s.strip()))


# A teaser for another article run into the text: "... Continue reading <its headline>".
_TEASER = re.compile(r"^(?:continue reading|keep reading|read more)\b", re.IGNORECASE)


def segment(text: str) -> list[Sentence]:
    """Sentences of the report proper (head and body), furniture and comments removed."""
    sentences = [s for s in _segment(text) if not _TEASER.match(s.text)]
    if sentences and all(s.zone is Zone.HEAD for s in sentences):
        # Only short lines (a feed summary, a brief): they are the report.
        return [
            Sentence(t, a, b, s.paragraph, Zone.BODY, _quoted(t))
            for s in sentences
            for t, a, b in _split_sentences(s.text, s.start)
            if not _TEASER.match(t)
        ]
    return sentences


def _segment(text: str) -> list[Sentence]:
    sentences: list[Sentence] = []
    body_started = False
    paragraph = 0
    previous_line = None
    pos = 0
    lines = text.split("\n")
    for idx, raw in enumerate(lines):
        line_start = pos
        pos += len(raw) + 1
        line = raw.strip()
        if not line:
            paragraph += 1
            continue
        if line == previous_line:  # captions and titles repeated by the page template
            continue
        previous_line = line
        if _is_furniture(line):
            continue
        if body_started:
            if _END_MARKERS.match(line):
                break
            if _BULLET.match(line) and _is_name_line(_BULLET.sub("", line)):
                break
            if _is_name_line(line) and _following_text(lines, idx):
                break
        words = _word_count(line)
        offset = line_start + (len(raw) - len(raw.lstrip()))
        looks_body = (
            words >= _BODY_MIN_WORDS
            or (body_started and words >= 4)
            or (words >= _SENTENCE_MIN_WORDS and _PROSE_END.search(line))
        )
        if not body_started and looks_body and _SENTENCE_END.search(line):
            body_started = True
        zone = Zone.BODY if body_started else Zone.HEAD
        if zone is Zone.HEAD:
            sentences.append(Sentence(line, offset, offset + len(line), paragraph, zone, False))
            paragraph += 1
            continue
        for s, a, b in _split_sentences(line, offset):
            sentences.append(Sentence(s, a, b, paragraph, zone, _quoted(s)))
    return sentences


def _following_text(lines: list[str], idx: int) -> bool:
    """True when a comment's text follows the line (its next non-empty line is prose)."""
    for nxt in lines[idx + 1 : idx + 4]:
        if nxt.strip():
            return _word_count(nxt) >= 2
    return False


def first_person(sentence: str) -> bool:
    """Reader voice ("I", "you", "LOL") outside a quotation: not a report sentence."""
    if _quoted(sentence):
        return False
    return bool(_FIRST_PERSON.search(sentence))
