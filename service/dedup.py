"""Duplicate reports: canonical URLs, shingles, MinHash signatures, an LSH index, judgement.

Pure: values in, values out; the pipeline does the storage around it.

    report ─► canonical URL (courlan + mirrors) and text hash ─► exact match?
           ─► signature: MinHash of the lead (first ``lead_words`` words) and of the whole
           ─► LSH over lead signatures proposes stored articles (candidates)
           ─► judge each candidate on the texts: Jaccard, and containment of the
              shorter text in the longer ─► duplicate or new

Why the lead is indexed rather than the whole text: a seed scrape carrying 8 KB of
reader comments and the clean article it wraps share only ~10% of their shingles
(Jaccard), far below any LSH threshold, but they start with the same words.  Reposts
keep the start (trimmed copies lose the end, scrapes with comments gain an end), so
the lead's Jaccard stays high in every case the issue lists.  The verdict itself is
never taken on signatures: candidates are compared word for word, where containment
("95% of the short text is inside the long one") is exact.
"""

from __future__ import annotations

import functools
import re
import threading
import unicodedata
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import courlan
import numpy as np
from datasketch import LeanMinHash, MinHash  # type: ignore[import-untyped]

from service.config import DedupSettings
from service.lsh import BandedIndex, lsh_params
from service.rules.text import Zone, first_person, segment

SCHEME = "affine32"  # datasketch >= 2: uint32 hash values, stored as 4 bytes each
SEED = 1  # the permutations; changing it invalidates every stored signature
_DTYPE = np.dtype("<u4")
_WP_POST = re.compile(r"^p=\d+$")


# ---------------------------------------------------------------------------
# URLs


def mirror_map(settings: DedupSettings) -> dict[str, str]:
    return dict(settings.mirror_domains)


def canonical_url(
    url: str | None,
    mirrors: Mapping[str, str] | None = None,
    drop_params: Iterable[str] = ("doing_wp_cron",),
) -> str | None:
    """The URL two copies of one article share, or None for no usable http(s) URL.

    courlan lower-cases the host, drops tracking parameters (utm_*, fbclid ...) and
    sorts the rest; then: https for http, no ``www.``, a mirror host replaced by the
    host it mirrors, no fragment, no trailing slash, and ``drop_params`` removed.
    """
    if not url:
        return None
    try:
        normalised = courlan.normalize_url(url.strip(), strict=False)
        parts = urlsplit(normalised)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname.lower().removeprefix("www.")
    host = (mirrors or {}).get(host, host)
    if parts.port and parts.port not in (80, 443):
        host = f"{host}:{parts.port}"
    dropped = set(drop_params)
    query = urlencode(
        [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in dropped]
    )
    path = parts.path.rstrip("/") or "/"
    return urlunsplit(("https", host, path, query, ""))


def permalink_alias(
    guid: str | None,
    link_canonical: str | None,
    mirrors: Mapping[str, str] | None = None,
    drop_params: Iterable[str] = ("doing_wp_cron",),
) -> str | None:
    """A WordPress ``?p=N`` guid of the same site as the link: the article's other URL.

    WordPress feeds give the pretty path as ``link`` and ``https://site/?p=N`` as the
    guid; another feed (or a backfill) may give the article under either.
    """
    if not guid or not link_canonical:
        return None
    alias = canonical_url(guid, mirrors, drop_params)
    if alias is None or alias == link_canonical:
        return None
    alias_parts, link_parts = urlsplit(alias), urlsplit(link_canonical)
    if alias_parts.netloc != link_parts.netloc or not _WP_POST.match(alias_parts.query):
        return None
    return alias


def urls_for(
    url: str | None, guid: str | None, settings: DedupSettings
) -> tuple[str | None, str | None]:
    """(canonical URL, ``?p=N`` alias) of a report."""
    mirrors, drop = mirror_map(settings), settings.drop_query_params
    canonical = canonical_url(url, mirrors, drop)
    return canonical, permalink_alias(guid, canonical, mirrors, drop)


# ---------------------------------------------------------------------------
# Shingles and signatures


# Characters that are not word characters (``\w``) become spaces: a regex for the
# non-ASCII ones (few, and rare), one bytes.translate of the UTF-8 for the ASCII
# ones; then bytes.split.  A regex match per word cost 2.5 times as much.
_NON_ASCII_NON_WORD = re.compile(r"[^\x00-\x7f\w]")
_ASCII_NON_WORD = bytes(
    b if b >= 0x80 or chr(b).isalnum() or chr(b) == "_" else ord(" ") for b in range(256)
)


def word_bytes(text: str) -> list[bytes]:
    """The words (runs of word characters) of the text after NFKC and case folding,
    as UTF-8: punctuation, spacing and case do not count."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    if not folded.isascii():
        folded = _NON_ASCII_NON_WORD.sub(" ", folded)
    return folded.encode("utf-8", "surrogatepass").translate(_ASCII_NON_WORD).split()


def words(text: str) -> list[str]:
    """``word_bytes`` as strings."""
    return [word.decode("utf-8", "surrogatepass") for word in word_bytes(text)]


def shingles(tokens: Sequence[str], k: int) -> set[str]:
    """Runs of ``k`` consecutive words (one shingle for a text shorter than ``k``)."""
    if len(tokens) <= k:
        return {" ".join(tokens)} if tokens else set()
    # zip of k shifted views: one join per run, no slice per run (2x faster).
    return set(map(" ".join, zip(*(tokens[i:] for i in range(k)), strict=False)))


@dataclass(frozen=True, slots=True)
class Signature:
    """What is stored per article: MinHash values (uint32 little-endian) and sizes."""

    lead: bytes
    whole: bytes
    words: int
    shingles: int

    def lead_minhash(self) -> LeanMinHash:
        return _lean(self.lead)


def _lean(values: bytes) -> LeanMinHash:
    return LeanMinHash(seed=SEED, hashvalues=np.frombuffer(values, dtype=_DTYPE), scheme=SCHEME)


# A shingle's hash.  Each word is hashed once (CRC-32 of its UTF-8, one C call),
# and each run of k word hashes is combined in numpy: a polynomial modulo 2^64 with
# an odd multiplier, MurmurHash3's 64-bit finaliser, the top 32 bits.  Hashing every
# shingle's string instead (SHA-1, datasketch's default) cost twice the whole rest
# of the signature.  Changing any constant here invalidates every stored signature.
_U64 = np.uint64
_RUN_MULTIPLIER = _U64(0x9E3779B97F4A7C15)
_FMIX64 = (_U64(33), _U64(0xFF51AFD7ED558CCD), _U64(0xC4CEB9FE1A85EC53))
_TOP = _U64(32)
# MurmurHash3's 32-bit finaliser: datasketch's affine32 scheme premixes with it.
_FMIX32 = (np.uint32(16), np.uint32(0x85EBCA6B), np.uint32(13), np.uint32(0xC2B2AE35))
_CHUNK = 4096  # shingles per permutation matrix (64 perms: 1 MiB)


def word_hashes(tokens: Sequence[bytes]) -> np.ndarray:
    """CRC-32 of each (UTF-8) token, as uint64 for the arithmetic of ``shingle_hashes``."""
    return np.fromiter(map(zlib.crc32, tokens), dtype=np.uint64, count=len(tokens))


def shingle_hashes(hashes: np.ndarray, k: int) -> np.ndarray:
    """A uint32 hash per run of ``k`` consecutive words, in order (one for a text of
    fewer than ``k`` words, none for no words): as ``shingles`` gives the runs."""
    n = len(hashes)
    if not n:
        return np.empty(0, dtype=np.uint32)
    runs = max(1, n - k + 1)
    x = hashes[:runs].copy()
    for offset in range(1, min(k, n)):
        x *= _RUN_MULTIPLIER  # wraps modulo 2^64
        x += hashes[offset : offset + runs]
    shift, m1, m2 = _FMIX64
    x ^= x >> shift
    x *= m1
    x ^= x >> shift
    x *= m2
    x ^= x >> shift
    return (x >> _TOP).astype(np.uint32)


@functools.cache
def _permutations(num_perm: int) -> tuple[np.ndarray, np.ndarray]:
    """The permutations SEED gives (drawn anew for every MinHash otherwise)."""
    a, b = MinHash(num_perm=num_perm, seed=SEED, scheme=SCHEME).permutations
    return a, b


def _minhash(hashes: np.ndarray, num_perm: int) -> np.ndarray:
    """datasketch's affine32 MinHash of the (already hashed) items, without its
    per-object set-up: premix, ``a * h + b`` modulo 2^32, minimum per permutation."""
    a, b = _permutations(num_perm)
    values = np.full(num_perm, np.iinfo(np.uint32).max, dtype=np.uint32)
    s1, m1, s2, m2 = _FMIX32
    for start in range(0, len(hashes), _CHUNK):
        h = hashes[start : start + _CHUNK]
        h = h ^ (h >> s1)
        h *= m1
        h ^= h >> s2
        h *= m2
        h ^= h >> s1
        np.minimum(values, (h[:, None] * a + b).min(axis=0), out=values)
    return values


def _bytes(values: np.ndarray) -> bytes:
    return values.astype(_DTYPE, copy=False).tobytes()


def _distinct(values: np.ndarray) -> int:
    """How many different values (np.unique's hash table cost 5x this sort)."""
    if not len(values):
        return 0
    ordered = np.sort(values)
    return 1 + int(np.count_nonzero(ordered[1:] != ordered[:-1]))


def signature(text: str, settings: DedupSettings) -> Signature:
    """MinHash of the shingles of the lead (first ``lead_words`` words) and of the whole."""
    tokens = word_bytes(text)
    k, n = settings.shingle_words, settings.num_perm
    hashes = word_hashes(tokens)
    whole = shingle_hashes(hashes, k)
    distinct = _distinct(whole)
    if len(tokens) <= settings.lead_words:
        values = _bytes(_minhash(whole, n))
        return Signature(values, values, words=len(tokens), shingles=distinct)
    lead = shingle_hashes(hashes[: settings.lead_words], k)
    lead_values = _minhash(lead, n)
    if settings.lead_words >= k:
        # The lead's runs are the first ones of the whole text's, and a MinHash is a
        # minimum per permutation: the whole text's is the lead's with the rest added.
        whole_values = np.minimum(lead_values, _minhash(whole[len(lead) :], n))
    else:
        whole_values = _minhash(whole, n)
    return Signature(
        _bytes(lead_values), _bytes(whole_values), words=len(tokens), shingles=distinct
    )


def estimated_jaccard(a: bytes, b: bytes) -> float:
    """Share of equal MinHash values: an estimate of the Jaccard similarity."""
    x, y = np.frombuffer(a, dtype=_DTYPE), np.frombuffer(b, dtype=_DTYPE)
    if x.shape != y.shape or not len(x):
        return 0.0
    return float(np.count_nonzero(x == y)) / len(x)


# ---------------------------------------------------------------------------
# Judgement


@dataclass(frozen=True, slots=True)
class Similarity:
    jaccard: float
    containment: float  # share of the shorter text's shingles found in the longer

    @property
    def score(self) -> float:
        return max(self.jaccard, self.containment)


def similarity(a: str, b: str, k: int) -> Similarity:
    """Exact shingle Jaccard and containment of two texts."""
    sa, sb = shingles(words(a), k), shingles(words(b), k)
    if not sa or not sb:
        return Similarity(0.0, 0.0)
    common = len(sa & sb)
    return Similarity(jaccard=common / len(sa | sb), containment=common / min(len(sa), len(sb)))


def is_duplicate(sim: Similarity, settings: DedupSettings) -> bool:
    return (
        sim.jaccard >= settings.jaccard_threshold
        or sim.containment >= settings.containment_threshold
    )


@dataclass(frozen=True, slots=True)
class Verdict:
    """A near-duplicate found: the stored article and how alike the texts are."""

    article_id: int
    similarity: Similarity


def judge(text: str, candidates: Mapping[int, str], settings: DedupSettings) -> Verdict | None:
    """The candidate ``text`` duplicates best, if any; ties go to the oldest (lowest id)."""
    if len(words(text)) < settings.min_words:
        return None
    best: Verdict | None = None
    for article_id in sorted(candidates):
        sim = similarity(text, candidates[article_id], settings.shingle_words)
        if (
            is_duplicate(sim, settings)
            and same_facts(text, candidates[article_id])
            and (best is None or sim.score > best.similarity.score)
        ):
            best = Verdict(article_id, sim)
    return best


_FACT = re.compile(
    r"\d+|\b(?:january|february|march|april|may|june|july|august|september|october|"
    r"november|december|monday|tuesday|wednesday|thursday|friday|saturday|sunday|"
    r"yesterday|today)\b",
    re.IGNORECASE,
)


def same_facts(a: str, b: str) -> bool:
    """The shorter text's report states no number, month or day that the longer does not.

    Outlets publish templated bulletins ("... arrived in al-Mayadin on June 20" and, a
    week later, the same words with "June 25"): alike enough to pass any similarity
    threshold, yet two reports.  A repost, a trimmed copy or a clean copy inside a
    scrape with comments states nothing the original does not.

    Only the report's body counts (``report_body``): a mirror's page furniture (a date
    banner "OCTOBER 2024", a donation widget "$ 2,500 5,000 100", a byline and date
    line) is not a fact of the report.  The longer text's facts are all of its text.
    """
    short, long_ = (a, b) if len(a) <= len(b) else (b, a)
    facts = {m.group().lower() for m in _FACT.finditer(long_)}
    return all(m.group().lower() in facts for m in _FACT.finditer(report_body(short)))


def report_body(text: str) -> str:
    """The sentences of ``text`` that report, one a line: its body as the extraction
    rules segment it (``service.rules.text.segment``: no furniture, no head lines
    such as banners, titles and captions, no reader comments), less reader-voice
    sentences (which the rules skip too) and lines that are not prose (fewer than
    ``_PROSE_WORDS`` words with letters and no full stop: "$ 2,500 5,000 100").

    A text the rules find no body in (all of it furniture) is judged on its lines of
    at least ``_PROSE_WORDS`` words.
    """
    kept = [
        s.text
        for s in segment(text)
        if s.zone is Zone.BODY and not first_person(s.text) and _is_prose(s.text)
    ]
    if kept:
        return "\n".join(kept)
    return "\n".join(line for line in text.splitlines() if len(line.split()) >= _PROSE_WORDS)


def _is_prose(sentence: str) -> bool:
    if _FULL_STOP.search(sentence):
        return True
    return sum(1 for word in sentence.split() if _LETTER.search(word)) >= _PROSE_WORDS


_PROSE_WORDS = 8
_FULL_STOP = re.compile(r"[.!?][\"\u201d\u2019)\]]*\s*$")
_LETTER = re.compile(r"[^\W\d_]")


# ---------------------------------------------------------------------------
# The index


class DedupIndex:
    """Signatures of every stored article, LSH-banded on the lead; thread-safe.

    Candidates are the articles sharing at least one LSH band with the query's lead
    (bands and rows as datasketch's ``MinHashLSH`` picks them for
    ``dedup.lsh_threshold`` and ``num_perm``), ranked by the larger of the estimated
    lead and whole Jaccard.  The storage is ``service.lsh.BandedIndex``: numpy arrays,
    about 650 bytes per article.

    ``last_id`` is the highest article id folded in; ``refresh`` in the pipeline asks
    the store for signatures above it (minus an overlap, since ids are taken at
    insert but become visible at commit, not necessarily in order).
    """

    BATCH = 65_536  # signatures converted to arrays at once by ``add_many``

    def __init__(self, settings: DedupSettings, *, buffer_rows: int = 8192) -> None:
        self.settings = settings
        bands, rows = lsh_params(settings.lsh_threshold, settings.num_perm)
        self._index = BandedIndex(settings.num_perm, bands, rows, buffer_rows=buffer_rows)
        self._lock = threading.Lock()
        self.last_id = 0

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, article_id: object) -> bool:
        with self._lock:
            return article_id in self._index

    def count_above(self, article_id: int) -> int:
        """How many indexed articles have an id above ``article_id``."""
        with self._lock:
            return self._index.count_above(article_id)

    def add(self, article_id: int, sig: Signature) -> bool:
        """Index an article; False when it was already there."""
        row = np.frombuffer(self._checked(article_id, sig).lead + sig.whole, dtype=_DTYPE)
        with self._lock:
            if not self._index.add_one(article_id, row.astype(np.uint32, copy=False)):
                return False
            self.last_id = max(self.last_id, article_id)
            return True

    def _checked(self, article_id: int, sig: Signature) -> Signature:
        size = self.settings.num_perm * _DTYPE.itemsize
        if len(sig.lead) != size or len(sig.whole) != size:
            raise ValueError(
                f"article {article_id}: signature has {len(sig.lead) // _DTYPE.itemsize} lead "
                f"and {len(sig.whole) // _DTYPE.itemsize} whole values, the index "
                f"{self.settings.num_perm} (dedup.num_perm changed?)"
            )
        return sig

    def add_many(self, items: Iterable[tuple[int, Signature]]) -> int:
        """Index articles (ids already indexed are skipped); return how many were new.

        A signature of the wrong size raises ``ValueError`` naming the article; the
        ones before it are indexed.
        """
        added = 0
        ids: list[int] = []
        values: list[bytes] = []
        try:
            for article_id, sig in items:
                self._checked(article_id, sig)
                ids.append(article_id)
                values.append(sig.lead)
                values.append(sig.whole)
                if len(ids) == self.BATCH:
                    added += self._add(ids, values)
                    ids, values = [], []
        finally:
            added += self._add(ids, values)
            with self._lock:
                self._index.flush()
        return added

    def _add(self, ids: list[int], values: list[bytes]) -> int:
        if not ids:
            return 0
        matrix = np.frombuffer(b"".join(values), dtype=_DTYPE).astype(np.uint32, copy=False)
        with self._lock:
            added = self._index.add(
                np.asarray(ids, dtype=np.int64),
                matrix.reshape(len(ids), 2 * self.settings.num_perm),
            )
            self.last_id = max(self.last_id, *ids)
        return added

    def candidates(self, sig: Signature, limit: int | None = None) -> list[int]:
        """Stored articles whose lead resembles ``sig``'s, most alike first (then by id)."""
        lead = np.frombuffer(sig.lead, dtype=_DTYPE).astype(np.uint32, copy=False)
        whole = np.frombuffer(sig.whole, dtype=_DTYPE).astype(np.uint32, copy=False)
        if len(lead) != self.settings.num_perm:
            raise ValueError(
                f"query signature has {len(lead)} values, the index "
                f"{self.settings.num_perm} (dedup.num_perm changed?)"
            )
        with self._lock:
            rows, stored = self._index.query(lead)
            ids = self._index.ids_of(rows)
        if not len(ids):
            return []
        n = self.settings.num_perm
        score = np.count_nonzero(stored[:, :n] == lead, axis=1) / n
        if len(whole) == n:
            score = np.maximum(score, np.count_nonzero(stored[:, n:] == whole, axis=1) / n)
        order = np.lexsort((ids, -score))
        wanted = self.settings.max_candidates if limit is None else limit
        ranked: list[int] = ids[order].tolist()
        return ranked[:wanted]
