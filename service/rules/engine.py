"""The extraction engine: a report's text in, Deir Ezzor movement events out.

Order of evaluation, per document:

1. ``text.segment`` keeps the report's head (title, sub-title, captions) and body
   and drops furniture, reader comments and teasers.
2. Places (gazetteer), actors (dictionary, minus ``ignore`` phrases) and trigger
   words (action frames) are looked up once over the match form of the text.
3. Each body sentence in order, skipping reader-voice sentences and denials:
   a trigger counts unless negated, framed as intent, plan or condition, stative
   ("are deployed in"), inside a relative clause ("launchers which had been
   installed"), or an infinitive that does not report an act ("efforts to
   expel"; but "started last week to withdraw" counts). A frame that requires a
   force, site or equipment word needs one in the clause ("sent convoys").
   One event per type per sentence; a strike and an attack in one sentence are
   one strike.
4. Arguments, from the trigger's clause: the actor is the nearest actor before
   the trigger, the agent after "by" in the passive, or the group joined for
   recruitment; the location is the first place after the trigger introduced by
   one of the frame's prepositions ("arrived in X", "expelled Z from X"), skipping
   reference points ("south of X") and qualifiers ("X in Y"), else a place
   before the trigger, else a pointer back ("there", "the said district"); the
   origin follows "from". "withdrew from X to new positions" is a relocation.
   Where the sentence's dependency parse (``syntax``) says more, it decides: the
   doer is the trigger's subject or passive agent (the force moved, for "X sent
   Y's fighters"); each place's role (destination, place, origin, route, or a
   reference point such as "east of X") comes from the prepositions between it
   and the trigger, and a place that belongs to another verb is not the
   trigger's; a trigger negated, under a modal, or the complement of "plan to",
   "deny" is not an act. Only sentences with a trigger and a place or an actor
   are parsed, in one batch per report.
5. Discourse: a sentence whose subject points back ("The convoy, which came from
   al-Heri, consisted of 30 vehicles", "The incoming forces stationed themselves")
   enriches the previous event instead of making a new one. "Another convoy" or
   "similar reinforcements" make a new event that inherits the previous actor and
   town. An actor-less sentence takes the actor of the paragraph's last event,
   else the previous sentence's subject, else the report's main actor; a
   location-less movement takes the place named in the report's title.
6. Dates: the sentence's own date expression (see ``dates``), else the month of
   an earlier dated sentence in the paragraph, else the publication month when
   the publication date is known (not estimated), else none. Relative
   expressions resolve against the report's own date when the text gives one
   ("SOHR reported on January 22 … yesterday").
7. One event per real event: headline events fold into the body event of the
   same type and affiliation (a headline event the body does not support is
   dropped, unless the body reports nothing at all); an event whose every detail is contained in
   another's (wider place, wider or no date, no extra quantity, equipment or
   origin) folds into it. The evidence is the most informative sentence.
8. Events outside Deir Ezzor province are kept (``in_region`` false) only when
   their sentence dates them: undated background elsewhere is not news here. A
   move the report dates more than half a year before its own date is history
   ("in 2017 the army took X"), background to the news: no event.
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from service.events import (
    Actor,
    Affiliation,
    DatePrecision,
    Event,
    EventType,
    Evidence,
    Location,
    Precision,
    Source,
)
from service.rules import dates as dates_mod
from service.rules.actions import PREPOSITIONS, ActionRules, Frame, load_actions
from service.rules.actors import ActorDictionary, ActorMention
from service.rules.gazetteer import Gazetteer, Place
from service.rules.quantities import QuantityReader
from service.rules.syntax import Parse, Parser, Role
from service.rules.text import (
    MatchText,
    Sentence,
    Zone,
    first_person,
    fold,
    segment,
    to_match_text,
)

_TOKEN = re.compile(r"[^\W_]+")
_CLAUSE_BREAK = re.compile(
    r";|\b(?:while|whereas|but|meanwhile|however|in retaliation for|in response to|after)\b|"
    # "since the regime took control" opens a clause; "since 2018", "since early May" do not
    r"\bsince\b(?!\s+(?:\d|early|mid|late|last|then|the (?:start|beginning|end)|"
    r"january|february|march|april|may|june|july|august|september|october|november|"
    r"december))|\s[-–—]\s"
)
_RELATIVE = frozenset({"which", "where", "who", "whom", "whose"})
# Before an actor: it supports, accompanies, holds ground or is targeted; not the agent.
_SUPPORTING = re.compile(
    r"\b(?:with(?: the)?(?: support| help| backing| cover)?(?: of)?|alongside|backed by|"
    r"supported by|assisted by|held by|controlled by|run by|loyal to|affiliated with|"
    r"funded by|financed by|armed by|trained by|founded by|formed by|established by|"
    r"against|targeting|targeted|on an?)\s+(?:the\s+)?$"
)
_ADVERB = re.compile(r"[a-z]+ly|also|then|again|later|already|just|twice|once|repeatedly")
# "believed to be Israeli", "thought to have been carried out by the coalition".
_ATTRIBUTION = re.compile(r"(?:believed|thought|suspected|said|likely|reported)\s+to\b")
_THAT_REPORT = frozenset(
    {
        "reported",
        "said",
        "stated",
        "confirmed",
        "confimed",
        "added",
        "noted",
        "indicated",
        "revealed",
        "announced",
        "claimed",
        "learned",
        "learnt",
        "informed",
        "told",
        "noting",
        "known",
        "fact",
        "so",
        "such",
        "now",
        "given",
        "mentioned",
        "explained",
        "reports",
        "says",
        "sources",
        "sohr",
        "observed",
        "documented",
        "clear",
        "believed",
        "alleged",
        "shown",
        "show",
        "shows",
        "showed",
        "reveal",
        "reveals",
        "report",
        "news",
        "saying",
        "stating",
        "adding",
        "believes",
        "thinks",
        "think",
        "pointed",
        "out",
        "warned",
        "expected",
        "likely",
        "evident",
        "obvious",
    }
)
_PASSIVE_AUX = frozenset({"was", "were", "been", "being", "is", "are", "be", "got"})
_IRREGULAR_PARTICIPLES = frozenset(
    {
        "sent",
        "brought",
        "built",
        "dug",
        "set",
        "taken",
        "driven",
        "overrun",
        "withdrawn",
        "hit",
        "struck",
        "left",
        "held",
        "made",
        "seen",
        "given",
        "put",
        "shot",
    }
)
_PREPS = frozenset(PREPOSITIONS - {"direct"})
# Which preposition wins when several introduce places: a destination beats a position,
# which beats a neighbourhood ("brought missiles through al-Sikak to Imam Ali base").
_PREP_RANK = {
    "to": 0,
    "into": 0,
    "towards": 0,
    "toward": 0,
    "from": 1,
    "in": 1,
    "at": 1,
    "inside": 1,
    "within": 1,
    "on": 1,
    "of": 1,
    "targeting": 1,
    "against": 1,
    "near": 2,
    "around": 2,
    "outside": 2,
    "across": 3,
    "through": 3,
    "via": 3,
}
_ROUTE_RANK = 3
_QUALIFIER_GAP = re.compile(r"\s*(?:[^\W_]+\s+){0,2}?(?:in|of|near|at)\s+(?:the\s+)?")
_UNCONFIRMED = re.compile(
    r"\s+not\s+(?:confirm|verify|be\s+(?:independently\s+)?verified|independently)"
)
_UNNAMED_SUBJECT = re.compile(
    r"\b(?:gunmen|assailants|attackers|armed men|masked men|unknown persons)\s+"
    r"(?:[^\W_]+ly\s+)?$"
)
# A channel post's opening tag: "🔴 #al-Mayadin |", "📍 #AlBukamal |"
_POST_TAG = re.compile(r"(?m)^[^\w\n]*#\w")
_STATIVE_PARTICIPLES = frozenset({"stationed", "based", "positioned", "entrenched"})
_REPELLED = re.compile(
    r"\b(?:repel|repels|repelled|repelling|repulsed|repulse|thwarted|foiled|confronted)\s+"
    r"(?:[^\W_]+\s+){0,4}$"
)
# "came days after a wave of", "following a series of": another event's circumstance
_AFTER_A_WAVE = re.compile(
    r"\b(?:after|following|amid|despite)\s+(?:(?:a|an|the|days|weeks|hours|shortly|wave|"
    r"series|string|round|spate|number|of|new|recent|heavy|several|two|three)\s+){1,5}$"
)
# Endings of trigger nouns: "deployment", "withdrawal", "relocation", "expulsion".
_NOMINAL = r"(?:ment|al|tion|sion)"
_NOUN_EVENT = re.compile(
    r"(?:attack|strike|airstrike|raid|assault|bombardment|bombing|shelling|ambush)s?|"
    rf"[a-z]+{_NOMINAL}"
)
_AREA_OF = re.compile(
    r"\b(?:desert|badia|countryside|outskirts|surroundings)\s+of\s+(?:the\s+)?(?:[^\W_]+\s+)?$"
)
# An air vehicle nobody is named for: "a drone targeted", "drones of unknown identity".
_UNATTRIBUTED_AIR = re.compile(
    r"\b(?:a|an|two|three|several)\s+(?:[^\W_]+\s+)?(?:drones?|aircraft|warplanes?|jets?|"
    r"helicopters?|planes?)\b"
)
_OUR_FORCES = re.compile(r"\b(?:our forces|our fighters|our units|we)\b")
_COMPASS = re.compile(
    r"\b(?:north|south|east|west|northeast|northwest|southeast|southwest|north east|"
    r"north west|south east|south west)(?:ern)?\s+(?:countryside\s+)?of\b|\bkm\b|kilomet"
)
# A place the gazetteer does not know, named as such: "in Al-Abbas village", "the village
# of Buqrus", "Al-Kattaa neighbourhood".
_UNKNOWN_PLACE = re.compile(
    r"\b(?:village|town|neighbourhood|neighborhood|hamlet|farms|area|district)\s+of\s+"
    r"[^\W\d_]|\b[^\W\d_]+\s+(?:village|neighbourhood|neighborhood|hamlet)\b|"
    r"\bthe\s+desert(?:\s+area)?\b"
)
_SAME_GROUP = re.compile(r"\s*(?:s\s+|\(\s*)")
# Between two coordinated actors: "X and Y", "X, Y and members of Z", "X and the regime's Y".
_COORDINATED = re.compile(
    r"\s*(?:\)\s*)?(?:,|,?\s*and|,?\s*together with)\s+(?:(?:members|fighters|forces|units|"
    r"elements)\s+of\s+)?(?:the\s+)?(?:[^\W_]+\s+s\s+)?(?:[^\W_]+\s+){0,1}?"
)
_TARGET_OWNER = re.compile(
    r"\b(?:checkpoints?|positions?|posts?|bases?|headquarters|depots?|convoys?|vehicles?|"
    r"patrols?|points?|barracks|warehouses?)\s+(?:belonging\s+to|of)\s+(?:the\s+)?$"
)
# Before a dateline's place, on its line: nothing but symbols ("📍 #", "- ").
_TAG_BAR = re.compile(r"\s*\|")
_DATELINE_LEAD = re.compile(r"[^\w]*")
_DATELINE_TAIL = re.compile(r"\s*(?:,\s*Syria\s*)?(?:\([^)]{0,40}\))?\s*(?:[:|–—-]|\s-\s)")
_MILITIA_POINTER = re.compile(
    r"\b(?:(?:the|these|those) (?:militias|militia|militiamen)|militia (?:members|fighters|men))\b"
)
_VAGUE_KINDS = frozenset({"region", "province", "river", "district", "subdistrict"})
_MEASURED = re.compile(r"\bkm\b|\bkilomet|\bmiles?\b|border with|opposite|facing|oriented|directed")
_BRACKETS = re.compile(r"[()\[\]]")
_PLACE_KIND_OF = re.compile(
    r"(?:\bthe\s+(?:[^\W_]+\s+){0,3}?|\b)(?:village|town|city|area|district|neighbourhood|"
    r"neighborhood|region|countryside|outskirts|province|desert|countryside)\s+of\s*$"
)
_NOUN_TRIGGER = re.compile(rf"{_NOMINAL}$")
_NEXT_PREDICATE = re.compile(r",\s+(?:and|then)\s+(?:[^\W_]+ly\s+)?[^\W_]+ed\b")
# Verbs with no passive: "the convoy arrived in X" is never a reduced relative.
_INTRANSITIVE = frozenset(
    {"arrived", "headed", "retreated", "settled", "massed", "advanced", "returned", "crossed"}
)
_NOT_A_NOUN = frozenset(
    {
        "a",
        "an",
        "the",
        "their",
        "its",
        "his",
        "her",
        "our",
        "some",
        "two",
        "three",
        "four",
        "five",
        "several",
        "dozens",
        "new",
        "more",
        "additional",
        "all",
        "most",
    }
    | PREPOSITIONS
)
_VIOLENT = frozenset({EventType.STRIKE, EventType.ATTACK})
_VICTIM_PASSIVE = frozenset(
    {EventType.STRIKE, EventType.ATTACK, EventType.TAKEOVER, EventType.HANDOVER}
)
_LEADING = re.compile(
    r"^(?:(?:moreover|meanwhile|additionally|in addition|also|furthermore|besides|then|later|"
    r"subsequently|afterwards|according to [^,]{1,80}|on [^,]{1,30}|in [^,]{1,30}|"
    r"earlier [^,]{0,30}|"
    r"last [^,]{1,20}|yesterday|today|finally),?\s+)+"
)
_CAME_FROM = re.compile(
    r"\b(?:came|come|coming|arriving|arrived|sent|brought|moved|transferred)?\s*from"
    r"(?: the (?:direction|town|city|village|area|countryside) of)?(?: the)?\s*$"
)
_SPAN = re.compile(r"\b(?:stretching|extending|ranging|running|between|area from|areas from)\b")


@dataclass(frozen=True, slots=True)
class Document:
    """What the rules read: text plus what the outlet told us about it."""

    text: str
    published: date | None = None
    outlet: str | None = None
    url: str | None = None
    published_is_estimate: bool = False
    reporting_source: str | None = None
    title: str | None = None
    # How much of ``published`` is known (a manifest may give only a month or a year;
    # ``published`` is then the period's first day). Relative words ("yesterday",
    # "on Tuesday") resolve no finer than this.
    published_precision: DatePrecision = DatePrecision.DAY


@dataclass(slots=True)
class _PlaceHit:
    start: int  # match-form offsets
    end: int
    place: Place


@dataclass(slots=True)
class _Candidate:
    type: EventType
    actor: Actor
    place: Place
    origin: Place | None
    date: str | None
    precision: DatePrecision
    explicit_date: bool
    quantities: dict[str, int]
    equipment: list[str]
    hedged: bool
    start: int
    end: int
    sentence: int
    paragraph: int
    headline: bool
    source: str | None
    score: int = 0
    parts: list[int] = field(default_factory=list)
    near: bool = False  # the place is a nearby town the report relates to, not the spot

    def informativeness(self) -> int:
        score = 8 - self.place.width
        score += 3 if self.precision is DatePrecision.DAY else (1 if self.explicit_date else 0)
        score += 2 * bool(self.origin) + 2 * bool(self.quantities) + bool(self.equipment)
        score += 2 if not self.headline else -5
        return score


class RuleSet:
    """Loaded, validated rules; ``extract`` is pure and safe to call from many threads."""

    def __init__(
        self,
        gazetteer: Gazetteer,
        actors: ActorDictionary,
        actions: ActionRules,
        parser: Parser | None = None,
    ) -> None:
        self.gazetteer = gazetteer
        self.actors = actors
        self.actions = actions
        self.quantities = QuantityReader(actions.quantities)
        # The dependency parser, shared by every rule set of the process (the model is
        # loaded on the first sentence that needs it).
        self.parser = parser if parser is not None else _shared_parser()

    @classmethod
    def load(cls, directory: Path) -> RuleSet:
        return cls(
            Gazetteer.load(directory / "gazetteer.yaml"),
            ActorDictionary.load(directory / "actors.yaml"),
            load_actions(directory / "actions.yaml"),
        )

    def extract(self, doc: Document) -> list[Event]:
        return _Extraction(self, doc).run()


def load_rules(directory: Path) -> RuleSet:
    return RuleSet.load(directory)


@functools.cache
def _shared_parser() -> Parser:
    return Parser()


# Verbs that move a force someone else commands: "X sent Y's fighters to Z" moves Y.
_CAUSATIVE = frozenset(
    {
        "sent",
        "send",
        "sends",
        "sending",
        "dispatched",
        "dispatch",
        "dispatching",
        "brought",
        "bring",
        "bringing",
        "transported",
        "transporting",
        "transferred",
        "transferring",
        "moved",
        "moving",
        "pushed",
        "pushing",
        "deployed",
        "deploying",
        "redeployed",
        "withdrew",
        "withdrawn",
        "pulled",
    }
)
# A move the report dates as over this long before its own date is background
# (the guideline's "background and history"): an analyst has it from its own time.
_HISTORY_DAYS = 180
_FORCE_MOVES = frozenset({EventType.DEPLOYMENT, EventType.RELOCATION, EventType.WITHDRAWAL})


def _first(*groups: list[Place]) -> Place | None:
    """The first place of the first group that has one."""
    for group in groups:
        if group:
            return group[0]
    return None


_TROOP_MOVES = frozenset({EventType.DEPLOYMENT, EventType.WITHDRAWAL, EventType.RELOCATION})


def _same_kind(a: EventType, b: EventType) -> bool:
    """Types a follow-up sentence may give of the same movement.

    "removed … from the said district" after "withdrew … to new headquarters".
    """
    return a is b or (a in _TROOP_MOVES and b in _TROOP_MOVES)


def _kept_text(text: str, sentences: list[Sentence]) -> str:
    """``text`` with everything outside ``sentences`` blanked, same length.

    A gap that held words becomes a pilcrow and spaces, so no phrase reads across it.
    """
    parts: list[str] = []
    at = 0
    for s in sentences:
        if s.start > at:
            gap = text[at : s.start]
            parts.append(" " * len(gap) if gap.isspace() else "\u00b6" + " " * (len(gap) - 1))
        if s.end > at:
            parts.append(text[max(at, s.start) : s.end])
            at = s.end
    if at < len(text):
        parts.append(" " * (len(text) - at))
    return "".join(parts)


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text)


class _Extraction:
    def __init__(self, rules: RuleSet, doc: Document) -> None:
        self.r = rules
        self.ctx = rules.actions.context
        self.cls = rules.actions.classes
        self.doc = doc
        self.text = doc.text
        self.placeless = not self._names_a_place()
        if self.placeless:
            return
        self.sentences = segment(doc.text)
        # Furniture, comments and teasers are blanked out of the match form (offsets still
        # point into the original text), so no lookup spends time on them.
        kept = _kept_text(doc.text, self.sentences)
        self.mt: MatchText = to_match_text(kept)
        self._title_mts = [
            to_match_text(t)
            for t in [doc.title, *(s.text for s in self.sentences if s.zone is Zone.HEAD)]
            if t
        ]
        blocked = rules.actors.ignored_spans(self.mt)
        self.actor_mentions = rules.actors.find(self.mt, blocked)
        # A place inside an actor's name ("Deir Ezzor Military Council") is not a place.
        named = blocked + [(a.start, a.end) for a in self.actor_mentions]
        self.places = [
            _PlaceHit(h.start, h.end, rules.gazetteer.resolve(h, self.mt))
            for h in rules.gazetteer.index.find(self.mt, named)
        ]
        # Actor phrases may contain the trigger ("Israeli airstrikes"); place names may not.
        taken = blocked + [(p.start, p.end) for p in self.places]
        self.triggers = list(rules.actions.triggers.find(self.mt, taken))
        self._dates: dict[int, list[dates_mod.DateMention]] = {}
        spans = [(s.start, s.end) for s in self.sentences]
        self._scanned = dict(
            zip(
                [s.start for s in self.sentences],
                dates_mod.scan_spans(kept, spans),
                strict=True,
            )
        )
        para_at = [(self._m(x.start), x.paragraph) for x in self.sentences]
        self.source_mentions: list[tuple[int, str, int]] = [
            (h.start, h.keys[0], next((p for a, p in reversed(para_at) if a <= h.start), -1))
            for h in rules.actions.sources.find(self.mt)
        ]
        self.candidates: list[_Candidate] = []
        self._parses: dict[int, Parse] = {}
        # A trigger's head word, looked up once: context checks, actor and places use it.
        self._triggers: dict[tuple[int, int, int], tuple[Parse, Any] | None] = {}
        self.last_event: _Candidate | None = None
        self.ref, self.ref_precision = self._reference_date()
        self.title_place, self.title_actor = self._title_context()
        self._headings = self._find_headings()

    # ------------------------------------------------------------------ helpers
    def _m(self, original: int) -> int:
        return bisect.bisect_left(self.mt.offsets, original)

    def _in(self, items: list, start: int, end: int) -> list:  # type: ignore[type-arg]
        return [x for x in items if start <= x.start < end]

    def _reference_date(self) -> tuple[date | None, DatePrecision]:
        """The report's own date when the text gives one near publication, else publication.

        "SOHR reported on January 22 that …" dates the report even when the page's
        publication date is unknown or known only to the month.
        """
        pub, precision = self.doc.published, self.doc.published_precision
        if pub is None:
            precision = DatePrecision.UNKNOWN
        for s in self.sentences:
            for d in dates_mod.resolve_all(self._scan_dates(s), pub, precision):
                day = d.day()
                if not (d.report and day and d.precision is DatePrecision.DAY):
                    continue
                if pub is None or precision is DatePrecision.UNKNOWN:
                    return day, DatePrecision.DAY
                if precision is DatePrecision.DAY and 0 <= (pub - day).days <= 14:
                    return day, DatePrecision.DAY
                if precision is not DatePrecision.DAY and dates_mod.contains(
                    dates_mod.period(pub, precision), day.isoformat()
                ):
                    return day, DatePrecision.DAY
        return pub, precision

    def _names_a_place(self) -> bool:
        """Whether the text or the title names a place the gazetteer knows.

        Every event is placed at a place named in the report's kept sentences, its
        title or its headings (or at a previous event's), so a report naming none
        has no events: most pages of an outlet's archive are about something else,
        and this check, before the text is even segmented, is all they cost.
        """
        places = self.r.gazetteer.index
        title = self.doc.title
        return places.occurs_in(fold(self.text)) or bool(title and places.occurs_in(fold(title)))

    @functools.cached_property
    def _title_place(self) -> Place | None:
        """The first place in the province named by the title or a heading."""
        for mt in self._title_mts:
            for h in self.r.gazetteer.index.find(mt):
                p = self.r.gazetteer.resolve(h, mt)
                if p.in_region:
                    return p
        return None

    def _title_context(self) -> tuple[Place | None, Actor | None]:
        place = self._title_place
        actor = None
        for mt in self._title_mts:
            found = self.r.actors.find(mt, self.r.actors.ignored_spans(mt))
            if found:
                actor = found[0].entry.actor()
                break
        if actor is None:
            counts: dict[Affiliation, int] = {}
            for a in self.actor_mentions:
                counts[a.entry.affiliation] = counts.get(a.entry.affiliation, 0) + 1
            if counts:
                actor = self.r.actors.generic(max(counts, key=lambda k: counts[k]))
        return place, actor

    def _scan_dates(self, s: Sentence) -> tuple[dates_mod.Expression, ...]:
        found = self._scanned.get(s.start)
        if found is None:  # not one of the report's sentences
            found = self._scanned[s.start] = dates_mod.scan(s.text)
        return found

    def _find_dates(self, s: Sentence) -> list[dates_mod.DateMention]:
        if s.start not in self._dates:
            self._dates[s.start] = dates_mod.resolve_all(
                self._scan_dates(s), self.ref, self.ref_precision
            )
        return self._dates[s.start]

    def _clause(self, s_start: int, s_end: int, pos: int) -> tuple[int, int]:
        start, end = s_start, s_end
        for m in _CLAUSE_BREAK.finditer(self.mt.text, s_start, s_end):
            if m.end() <= pos:
                start = m.end()
            elif m.start() >= pos:
                end = m.start()
                break
        return start, end

    # --------------------------------------------------------- trigger context
    def _blocked_by_context(
        self, clause_start: int, ts: int, te: int, s: Sentence, word: str
    ) -> bool:
        mt = self.mt.text
        before = mt[clause_start:ts]
        toks = _tokens(before)
        last4 = " ".join(toks[-4:])
        if self.ctx["negations"].search(last4):
            return True
        win_start = clause_start
        if len(toks) > 6:
            win_start = ts - len(" ".join(toks[-6:])) - 2
        window = mt[max(win_start, clause_start) : ts]
        for m in self.ctx["intent"].finditer(window):
            if _UNCONFIRMED.match(window, m.end()):
                continue  # "information which Furat Post could not confirm": a hedge, no plan
            if m.group(0) == "may":
                orig = self.mt.offsets[max(win_start, clause_start) + m.start()]
                if self.text[orig : orig + 3] == "May" and orig != s.start:
                    continue  # the month, not the modal
            return True
        if toks and toks[-1] == "to" and not self.ctx["inchoatives"].search(" ".join(toks[-6:-1])):
            return True  # "efforts to expel", but not "started last week to withdraw"
        first = word.split()[0]
        following = _tokens(mt[te : te + 30])[:1]
        if (
            (first.endswith("ed") or first in _IRREGULAR_PARTICIPLES)
            and following
            and following[0] not in _NOT_A_NOUN
            and not any(a.end >= ts - 1 and a.end <= ts for a in self.actor_mentions)
            and re.search(
                r"\b(?:the|a|an|their|its|his|her|our|newly|recently|previously|already)"
                r"\s+(?:[^\W_]+ly\s+)?$",
                before,
            )
            and not re.search(r"\b(?:has|have|had|was|were|been)\s+(?:[^\W_]+\s+)?$", before)
        ):
            return True  # "the newly-built headquarters": a description, not an act
        if self.ctx["conditional"].search(mt[self._m(s.start) : ts]):
            return True
        if (
            toks
            and (toks[-1] == "had" or toks[-2:-1] == ["had"])
            and not any(d.precision is DatePrecision.DAY for d in self._find_dates(s))
        ):
            return True  # "had arrived in late August": background to the news
        # The sentence's words, not the clause's: "after" itself opens a clause.
        lead = _tokens(mt[self._m(s.start) : ts])
        if (
            self.ctx["circumstance"].ends(" ".join(lead[-3:]))
            or self.ctx["circumstance"].ends(" ".join(lead[-2:-1]))
            or _AFTER_A_WAVE.search(" ".join(lead[-7:]) + " ")
        ):
            return True  # "withdrew after heavy clashes": the clashes are the circumstance
        if word in _STATIVE_PARTICIPLES and any(a.end in (ts - 1, ts) for a in self.actor_mentions):
            return True  # "Government forces stationed in al-Mayadin targeted ...": a description
        stative = self.ctx["stative"]
        for m in stative.finditer(mt[max(clause_start, ts - 40) : te]):
            if max(clause_start, ts - 40) + m.end() == te:
                return True
        # Inside a relative clause with no comma closing it: background, not the event.
        # ", where 120 young men joined" adds a new fact, the event.
        syn = self._syntax(s, ts, te)
        for i in range(len(toks) - 1, -1, -1):
            tok = toks[i]
            if tok in _RELATIVE or (tok == "that" and i > 0 and toks[i - 1] not in _THAT_REPORT):
                at = before.rfind(tok)
                if tok == "that" and syn is not None:
                    start, _ = self.mt.span(clause_start + at, clause_start + at + 4)
                    if syn[0].complementizer_at(start - s.start):
                        break  # "revealed to the network that forces sent": what was told
                tail = before[at:]
                if tok == "where" and before[:at].rstrip().endswith(","):
                    break
                if "," not in tail:
                    return True
                break
        # "In the side of the recruitment, ...": a noun naming the topic, not an act.
        return bool(_NOUN_TRIGGER.search(word) and re.match(r"\s*(?:[,.;:]|$)", mt[te : te + 3]))

    def _participial(self, ts: int, word: str, clause_start: int) -> bool:
        """A reduced relative ("personnel stationed within"): describes, does not report."""
        first = word.split()[0]
        if not (first.endswith("ed") or first in _IRREGULAR_PARTICIPLES) or first in _INTRANSITIVE:
            return False
        before = self.mt.text[clause_start:ts]
        toks = _tokens(before)
        if not toks or before.rstrip().endswith(","):
            return False
        following = _tokens(self.mt.text[ts + len(word) : ts + len(word) + 20])[:1]
        if not following or following[0] not in _PREPS | {"by"}:
            return False  # "jets struck a depot": a finite verb with its object
        if toks[-1] in self.ctx["auxiliaries"].words or toks[-1] in _PASSIVE_AUX:
            return False
        # "Russian forces deployed in X" (a headline): the subject opens the clause.
        subject = [a for a in self.actor_mentions if clause_start <= a.start and a.end <= ts]
        opening = _tokens(self.mt.text[clause_start : subject[0].start]) if subject else None
        return not (subject and len(opening or []) <= 1 and subject[-1].end >= ts - 1)

    def _passive(self, clause_start: int, ts: int, word: str) -> bool:
        toks = _tokens(self.mt.text[clause_start:ts])[-3:]
        first = word.split()[0]
        participle = first.endswith("ed") or first in _IRREGULAR_PARTICIPLES
        if not participle:
            return False
        # "was targeted", "were reportedly targeted"; not "believed to be Israeli, targeted".
        while toks and toks[-1] not in _PASSIVE_AUX and _ADVERB.fullmatch(toks[-1]):
            toks.pop()
        return bool(toks) and toks[-1] in _PASSIVE_AUX

    # --------------------------------------------------------------- arguments
    def _actor_for(
        self, frame: Frame, etype: EventType, clause: tuple[int, int], ts: int, te: int, word: str
    ) -> tuple[ActorMention | None, bool]:
        """(actor mention, victim_passive)."""
        mentions = self._in(self.actor_mentions, clause[0], clause[1])
        after = [a for a in mentions if a.start >= te]
        if frame.actor_is_object:
            # "joined the Local Defence Forces"; "Liwa al-Quds enlisted 150 young men"
            before_trigger = [a for a in mentions if a.end <= ts]
            chosen_object = after[0] if after else (before_trigger[-1] if before_trigger else None)
            return chosen_object, False
        # The agent: "installed by X"; for a movement noun also "the withdrawal of X".
        agent = r"by" if etype in _VICTIM_PASSIVE or not etype.is_movement else r"by|of"
        by = re.match(
            rf"\s*(?:[^\W_]+\s+){{0,6}}?(?:{agent})\s+(?:the\s+)?", self.mt.text[te : clause[1]]
        )
        by_agent = None
        if by:
            agent_start = te + by.end()
            by_agent = next((a for a in after if a.start == agent_start), None)
            if by_agent is None:
                # "the arrival of 40 Afghan fighters of Fatemiyoun militia"
                by_agent = next(
                    (
                        a
                        for a in after
                        if a.start - agent_start <= 40
                        and re.search(
                            rf"\b(?:{agent})\s+(?:[^\W_]+\s+){{0,3}}$", self.mt.text[te : a.start]
                        )
                    ),
                    None,
                )
        before = [a for a in mentions if a.start < ts]
        if etype in _VIOLENT:
            # "On Monday, gunmen attacked ...": an unnamed subject, not the last one named
            subject = _UNNAMED_SUBJECT.search(self.mt.text[clause[0] : ts])
            if subject and not any(
                a.end >= clause[0] + subject.start() - 1 and a.start < ts for a in before
            ):
                return None, True
        if self._passive(clause[0], ts, word):
            if by_agent is not None:
                return by_agent, False
            if etype in _VICTIM_PASSIVE:
                return None, True
        # "repelled an attack by ISIS cells": a noun's own agent outranks the sentence subject
        if by_agent is not None and _NOUN_EVENT.fullmatch(word.split()[-1]):
            return by_agent, False
        repelled = _REPELLED.search(self.mt.text[max(clause[0], ts - 40) : ts])
        if repelled:
            # The subject defended; the attacker is the attack's own modifier ("an IS
            # attack") or unnamed.
            since = max(clause[0], ts - 40) + repelled.start()
            own = [a for a in before if a.start >= since]
            return (own[-1], False) if own else (None, True)
        # "U.S. forces, with SDF support, carried out": a supporting or mentioned group
        # is not the agent when another group stands before it.
        agents = [a for a in before if not self._supporting(clause[0], a)] or before
        if etype in _VIOLENT:
            # "gunmen attacked a checkpoint of regime forces": the target's owner
            agents = [
                a
                for a in agents
                if not _TARGET_OWNER.search(self.mt.text[max(clause[0], a.start - 30) : a.start])
            ]
            if before and not agents and by_agent is None:
                return None, True  # only the target is named: the attacker is unknown
        chosen = agents[-1] if agents else by_agent
        # "an unidentified drone, believed to be Israeli, targeted": the attribution names
        # the author the report could not.
        if chosen is None or chosen.entry.affiliation is Affiliation.UNKNOWN:
            attributed = next(
                (
                    a
                    for a in mentions
                    if a.start >= (chosen.end if chosen else ts)
                    and _ATTRIBUTION.match(self.mt.text, a.start)
                ),
                None,
            )
            if attributed is not None:
                return attributed, False
        return chosen, False

    def _partners(self, mention: ActorMention, clause_start: int) -> list[Actor]:
        """Groups of other sides acting with the agent: "Kataib Hezbollah and the regime's
        Military Security took over", "the Coalition and the SDF carried out a raid"."""
        found: list[Actor] = []
        seen = {mention.entry.affiliation}
        right = mention
        for a in reversed(self._in(self.actor_mentions, clause_start, mention.start)):
            gap = self.mt.text[a.end : right.start]
            if _SAME_GROUP.fullmatch(gap):  # "the regime's Military Security", "the SDF (SDF)"
                right = a
                continue
            if not _COORDINATED.fullmatch(gap):
                break
            if a.entry.affiliation not in seen and a.entry.affiliation is not Affiliation.UNKNOWN:
                seen.add(a.entry.affiliation)
                found.append(a.entry.actor())
            right = a
        return found

    def _outlet_actor(self) -> Actor | None:
        """The group an outlet speaks for ("SDF Press Center", "Hezbollah's Media Office")."""
        for name in (self.doc.outlet, self.doc.reporting_source):
            if name:
                mt = to_match_text(name)
                found = self.r.actors.find(mt, self.r.actors.ignored_spans(mt))
                if found:
                    return found[0].entry.actor()
        return None

    def _militia_pointer(self, clause_start: int, until: int) -> Actor | None:
        """ "the militias moved ...", "joined the ranks of the militia": the militias last
        named before, not the last subject."""
        if not _MILITIA_POINTER.search(self.mt.text[clause_start:until]):
            return None
        for a in reversed(self.actor_mentions):
            if a.end <= clause_start and (
                a.entry.kind == "group" or "militia" in self.mt.text[a.start : a.end]
            ):
                return self.r.actors.generic(a.entry.affiliation)
        return None

    def _supporting(self, clause_start: int, mention: ActorMention) -> bool:
        lead = self.mt.text[max(clause_start, mention.start - 30) : mention.start]
        return bool(_SUPPORTING.search(lead))

    def _is_reference(self, gap: str) -> bool:
        """True when ``gap`` (the text before a place) makes the place a reference point:
        "10 km north of", "opposite", "on the road connecting it with".

        "in the north of X" is a part of X, not a reference.  Brackets and a trailing
        "the ... town of" do not hide the cue ("10 kilometres (six miles) from the",
        "overlooking the road to the SDF-held village of").
        """
        cues = [gap]
        cue = _PLACE_KIND_OF.sub("", " ".join(_BRACKETS.sub(" ", gap).split()) + " ")
        cue = re.sub(r"\b(?:the|a|an)\s*$", "", cue.rstrip())
        if cue:
            cues.append(cue + " ")
        for text in cues:
            if not self.ctx["reference_before"].ends(text):
                continue
            if _MEASURED.search(text):
                return True
            stripped = text.rstrip()
            if stripped.endswith(" of") and re.search(
                r"\bthe\s+(?:[^\W_]+\s+){0,2}$", stripped[:-3] + " "
            ):
                continue  # "in the north of X": part of X
            return True
        return False

    def _locate(
        self, frame: Frame, clause: tuple[int, int], ts: int, te: int
    ) -> tuple[Place | None, Place | None, bool, bool, bool]:
        """(location, origin, destination is "new positions", deictic, near: the location is
        only the compass reference of a place the gazetteer does not know)."""
        mt = self.mt.text
        places = [p for p in self._in(self.places, te, clause[1])]
        deictic_match = self.ctx["deictic_places"].search(mt[te : clause[1]])
        loc: Place | None = None
        loc_rank = 99
        origin: Place | None = None
        dest: Place | None = None
        river: Place | None = None
        compass: Place | None = None
        around: set[str] = set()
        prev: _PlaceHit | None = None
        prev_end = te
        skip_next = False
        for p in places:
            gap = mt[prev_end : p.start]
            gtoks = _tokens(gap)
            if len(gtoks) > 24 or _NEXT_PREDICATE.search(gap):
                break  # "entered X, and unloaded near Y": Y is the second act's place
            if self._is_reference(gap):
                # "near Al-Abbas village, south of Albukamal": when nothing nearer is
                # known, the compass reference is the closest place the report gives.
                if compass is None and _COMPASS.search(gap) and p.place.kind != "river":
                    compass = p.place
                prev_end = p.end
                continue
            if skip_next:
                skip_next = False
                prev, prev_end = p, p.end
                continue
            if (
                prev is not None
                and gtoks[:1] in (["in"], ["of"], ["near"], ["at"])
                and len(gtoks) <= 4
                and self.r.gazetteer.contains(p.place, prev.place)
                and not (loc is prev.place and loc_rank == _ROUTE_RANK)
            ):
                prev_end = p.end
                continue
            if p.place.kind == "river":
                river = river or p.place
                prev, prev_end = p, p.end
                continue
            preps = [t for t in gtoks if t in _PREPS]
            # The governing preposition is the last one that is not "of": "in the town of X".
            prep = next((t for t in reversed(preps) if t != "of"), preps[-1] if preps else None)
            if _SPAN.search(gap) and (prep in frame.location or prep == "from"):
                if loc is None:
                    loc, loc_rank = p.place, 0
                skip_next = True
            elif prep == "from" and "from" in frame.origin and _CAME_FROM.search(gap):
                origin = origin or p.place
            elif prep is not None and prep in frame.destination:
                dest = dest or p.place
            elif prep is not None and prep in frame.location:
                rank = _PREP_RANK.get(prep, 2)
                if _AREA_OF.search(gap):
                    around.add(p.place.id)  # "in the desert of al-Mayadin": around the town
                # A destination wins; otherwise a wider place later on ("near Albukamal on
                # the border with Iraq") does not displace a narrower one.
                # A route ("through the al-Sikak crossing near Albukamal") is where the force
                # passed, not where it went: any other place wins over it.
                if rank < loc_rank and (
                    loc is None
                    or rank == 0
                    or loc_rank == _ROUTE_RANK
                    or p.place.width <= loc.width
                ):
                    loc, loc_rank = p.place, rank
            elif prep is None and "direct" in frame.location and len(gtoks) <= 3 and loc is None:
                loc, loc_rank = p.place, 1
            prev, prev_end = p, p.end
        new_positions = False
        if frame.destination:
            tail = mt[te : clause[1]]
            dest_words = "|".join(frame.destination)
            m = re.search(rf"\b(?:{dest_words})\b\s+(?:[^\W_]+\s+){{0,3}}?", tail)
            if m and self.cls["new_positions"].search(tail[m.start() : m.end() + 40]):
                new_positions = True
        if dest is not None or new_positions:
            if dest is not None:
                origin, loc = loc, dest
            elif loc is not None:
                origin, loc = loc, self.r.gazetteer.town_of(loc)
        if loc is None:
            before = [
                p
                for p in self._in(self.places, clause[0], ts)
                if p.place.kind != "river" and not self._dateline(p)
            ]
            for i in range(len(before) - 1, -1, -1):
                p = before[i]
                gap = mt[max(clause[0], p.start - 40) : p.start]
                if self._is_reference(gap):
                    continue
                # "from Al-Kishmah village in Al-Mayadeen countryside": the narrower place
                inner = before[i - 1] if i else None
                if (
                    inner is not None
                    and _QUALIFIER_GAP.fullmatch(mt[inner.end : p.start])
                    and self.r.gazetteer.contains(p.place, inner.place)
                ):
                    p = inner
                loc = p.place
                break
        deictic = near = False
        if loc is None:
            if compass is not None and _UNKNOWN_PLACE.search(mt[te : clause[1]]):
                loc, near = compass, True
            elif deictic_match:
                deictic = True
            elif river is not None:
                loc = river
        near = near or (loc is not None and loc.id in around)
        return loc, origin, new_positions, deictic, near

    def _dateline(self, p: _PlaceHit) -> bool:
        """A dateline: where the report was filed or which place a post is tagged with.

        "DEIR EZZOR, Syria (North Press) –", "Beirut (AFP) -", "Al-Boukamal:",
        "#Albukamal |", "📍 #AlBukamal |".  Read on the original text: the match form
        has turned dashes into spaces.
        """
        start, end = self.mt.span(p.start, p.end)
        line_start = self.text.rfind("\n", 0, start) + 1
        if not _DATELINE_LEAD.fullmatch(self.text[line_start:start]):
            return False
        return bool(_DATELINE_TAIL.match(self.text, end))

    def _tag_place(self, s: Sentence) -> Place | None:
        """The place a local network's post is tagged with ("📍 #AlBukamal | ..."), for the
        sentences of that paragraph: the post's events happened there or near it."""
        for p in self.places:
            if p.place.kind == "river":
                continue
            orig, end = self.mt.span(p.start, p.end)
            if self._paragraph_of(orig) != s.paragraph or not self._dateline(p):
                continue
            # A tag ("#Place", "🔴 Place |"), not a wire dateline ("BEIRUT (AFP) -").
            if "#" in self.text[max(0, orig - 3) : orig] or _TAG_BAR.match(self.text, end):
                return p.place
        return None

    def _paragraph_of(self, orig: int) -> int:
        for x in self.sentences:
            if x.start <= orig < x.end:
                return x.paragraph
        return -1

    def _sentence_origin(self, s_start: int, s_end: int) -> Place | None:
        for p in self._in(self.places, s_start, s_end):
            if _CAME_FROM.search(self.mt.text[max(s_start, p.start - 50) : p.start]):
                place: Place = p.place
                return place
        return None

    def _source(self, s: Sentence, paragraph: int) -> str | None:
        """The reporting source named in the sentence, else its paragraph, else the report."""
        start, end = self._m(s.start), self._m(s.end)
        in_paragraph = None
        for pos, name, para in self.source_mentions:
            if start <= pos < end:
                return name
            if in_paragraph is None and para == paragraph:
                in_paragraph = name
        if in_paragraph:
            return in_paragraph
        if self.source_mentions:
            return self.source_mentions[0][1]
        return self.doc.reporting_source or self.doc.outlet

    # ------------------------------------------------------------------ syntax
    def _parse_candidates(self) -> None:
        """Parse, in one batch, the sentences that hold a trigger and a place or actor."""
        wanted: list[Sentence] = []
        for s in self.sentences:
            a, b = self._m(s.start), self._m(s.end)
            if self._in(self.triggers, a, b) and (
                self._in(self.places, a, b) or self._in(self.actor_mentions, a, b)
            ):
                wanted.append(s)
        parsed = self.r.parser.parse([s.text for s in wanted])
        self._parses = {s.start: p for s, p in zip(wanted, parsed, strict=True)}

    def _syntax(self, s: Sentence, ts: int, te: int) -> tuple[Parse, Any] | None:
        """The parse of ``s`` and the trigger's head word in it (match-form offsets)."""
        key = (s.start, ts, te)
        if key not in self._triggers:
            parse = self._parses.get(s.start)
            token = None
            if parse is not None:
                start, end = self.mt.span(ts, te)
                token = parse.trigger(start - s.start, end - s.start)
            self._triggers[key] = None if parse is None or token is None else (parse, token)
        return self._triggers[key]

    def _parsed_actor(
        self,
        syn: tuple[Parse, Any],
        s: Sentence,
        etype: EventType,
        mention: ActorMention | None,
    ) -> ActorMention | None:
        """The doer the parse gives: the subject (active), the agent (passive), or for a
        force moved by another ("X sent Y's fighters", "Y's fighters were sent") the
        force moved. ``mention`` (found by nearness) stands when the parse agrees or
        names no actor."""
        parse, token = syn
        args = parse.arguments(token)
        in_sentence = self._in(self.actor_mentions, self._m(s.start), self._m(s.end))

        def within(span: tuple[int, int] | None) -> list[ActorMention]:
            found: list[ActorMention] = []
            for a in in_sentence:
                start, end = self.mt.span(a.start, a.end)
                if args.holds(span, start - s.start, end - s.start):
                    found.append(a)
            return found

        if (
            etype in _VIOLENT
            and mention is not None
            and not args.passive
            and mention in within(args.patient)
            and not within(args.subject)
        ):
            return None  # "an explosion hit a depot of the SDF": the SDF is the target
        if etype in _FORCE_MOVES and args.patient is not None:
            moved = within(args.patient)
            causative = token.lower_ in _CAUSATIVE and not args.patient_is_own
            if moved and ((args.passive and args.subject is None) or causative):
                return moved[0]
        doers = within(args.subject)
        if doers and (mention is None or mention not in doers):
            if (
                mention is not None
                and doers[0].entry.affiliation is Affiliation.UNKNOWN
                and mention.entry.affiliation is not Affiliation.UNKNOWN
            ):
                return mention  # "an unidentified drone, believed to be Israeli"
            return doers[0]
        return mention

    def _history(self, value: str | None) -> bool:
        """A date that ended long before the report: what it tells is background."""
        if value is None or self.ref is None or _HISTORY_DAYS <= 0:
            return False
        end = dates_mod.period_end(value)
        return end is not None and (self.ref - end).days > _HISTORY_DAYS

    def _deployment_kind(
        self, syn: tuple[Parse, Any], s: Sentence, loc: Place | None
    ) -> tuple[EventType, Place | None]:
        """A deployment read more closely: a commander or delegation arriving is a visit;
        a force entering a neighbouring country ("entered Iraq through the al-Qaim
        crossing") is leaving Syria, a withdrawal placed at the crossing if one is named."""
        parse, token = syn
        args = parse.arguments(token)
        if args.subject is not None and not args.passive:
            start, end = args.subject
            subject = to_match_text(s.text[start:end]).text
            if self.cls["leader"].search(subject) and not self.cls["force"].search(subject):
                return EventType.VISIT, loc
        if loc is not None and loc.country not in ("SY", None) and loc.kind == "region":
            crossings = [
                p.place
                for p in self._in(self.places, self._m(s.start), self._m(s.end))
                if p.place.kind == "border_crossing"
            ]
            return EventType.WITHDRAWAL, (crossings[0] if crossings else loc)
        return EventType.DEPLOYMENT, loc

    def _names_other_place(self, syn: tuple[Parse, Any] | None, s: Sentence) -> bool:
        """The trigger's place is a name the gazetteer does not know (nor an actor's)."""
        if syn is None:
            return False
        known = [
            (start - s.start, end - s.start)
            for x in (
                *self._in(self.places, self._m(s.start), self._m(s.end)),
                *self._in(self.actor_mentions, self._m(s.start), self._m(s.end)),
            )
            for start, end in [self.mt.span(x.start, x.end)]
        ]
        return syn[0].names_other_place(syn[1], known)

    def _parsed_places(
        self, syn: tuple[Parse, Any], s: Sentence, frame: Frame
    ) -> tuple[Place | None, Place | None, bool, set[str]]:
        """(location, origin, moved to a destination, ids of reference points) from the
        roles the parse gives the sentence's places."""
        parse, token = syn
        roles: dict[Role, list[Place]] = {role: [] for role in Role}
        rivers: list[Place] = []
        for p in self._in(self.places, self._m(s.start), self._m(s.end)):
            start, end = self.mt.span(p.start, p.end)
            role = parse.place_role(token, start - s.start, end - s.start)
            if self._dateline(p):
                continue
            if role is None:
                continue  # another verb's argument
            if p.place.kind == "river" and role is not Role.REFERENCE:
                rivers.append(p.place)
                continue
            roles[role].append(p.place)
        dest, place, origin = roles[Role.DESTINATION], roles[Role.PLACE], roles[Role.ORIGIN]
        # "through the al-Sikak crossing near Albukamal": the town the route is placed by.
        route = roles[Role.ROUTE][-1:]
        refs = {p.id for p in roles[Role.REFERENCE]}
        loc: Place | None
        moved_to = False
        if frame.destination:  # withdrawal: "from X" is the place left; "to Y" relocates
            if dest:
                loc, moved_to = dest[0], True
                start_place = origin[0] if origin else (place[0] if place else None)
                return loc, start_place, moved_to, refs
            loc = _first(origin, place, route)
            return loc, None, False, refs
        if "from" in frame.origin:  # deployment, relocation: "from X" is the origin
            loc = _first(dest, place, route)
            return loc, (origin[0] if origin else None), False, refs
        loc = _first(place, dest, origin, route, rivers)
        return loc, None, False, refs

    # -------------------------------------------------------------------- main
    def run(self) -> list[Event]:
        if self.placeless:
            return []
        self._parse_candidates()
        prev_subject: Actor | None = None
        prev_paragraph = -1
        para_date: str | None = None
        dismissed_from = 0
        for idx, s in enumerate(self.sentences):
            if s.paragraph != prev_paragraph:
                para_date = None
                prev_paragraph = s.paragraph
            s_start, s_end = self._m(s.start), self._m(s.end)
            smt = self.mt.text[s_start:s_end]
            dismissed = bool(self.ctx["dismissals"].search(smt))
            if dismissed:
                for c in self.candidates[dismissed_from:]:
                    if c.sentence >= idx - 2:
                        c.hedged = True
            # "reports about the withdrawal of X ... turned out to be fake": nothing happened.
            if dismissed or first_person(s.text) or self.ctx["denials"].search(smt):
                continue
            sdates = [d for d in self._find_dates(s) if not d.report and d.value]
            made = self._sentence(idx, s, s_start, s_end, sdates, para_date, prev_subject)
            if sdates:
                para_date = sdates[0].value
            subjects = [
                a
                for a in self._in(self.actor_mentions, s_start, s_end)
                if not re.search(
                    r"(?:\b(?:by|from|against|on|of|to|with)\s+(?:the\s+)?|\(\s*)$",
                    self.mt.text[max(s_start, a.start - 12) : a.start],
                )
            ]  # "(SDF)" glosses the name before it; it is not a subject of its own
            if made:
                prev_subject = made[-1].actor
            elif subjects and s.zone is Zone.BODY:
                prev_subject = subjects[0].entry.actor()
            dismissed_from = len(self.candidates) - len(made)
        return [self._event(c) for c in self._merge()]

    def _sentence(
        self,
        idx: int,
        s: Sentence,
        s_start: int,
        s_end: int,
        sdates: list[dates_mod.DateMention],
        para_date: str | None,
        prev_subject: Actor | None,
    ) -> list[_Candidate]:
        mt = self.mt.text
        body = s.zone is Zone.BODY
        stripped = _LEADING.sub("", mt[s_start:s_end].lstrip(' "“[('))
        anaphoric = bool(self.ctx["anaphora"].pattern.match(stripped))
        last = self.last_event if body else None
        if last is not None and s.paragraph - last.paragraph > 1:
            last = None

        chosen: dict[EventType, tuple[Frame, int, int, str, tuple[int, int], bool]] = {}
        for hit in self._in(self.triggers, s_start, s_end):
            frame_idx, word = hit.keys[0]
            frame = self.r.actions.frames[frame_idx]
            clause = self._clause(s_start, s_end, hit.start)
            if self._blocked_by_context(clause[0], hit.start, hit.end, s, word):
                continue
            syn = self._syntax(s, hit.start, hit.end)
            if syn is not None and syn[0].arguments(syn[1]).not_an_act:
                continue  # negated, modal, planned, denied or conditional
            if (
                syn is not None
                and s.zone is Zone.BODY
                and frame.type.is_movement
                and syn[0].describes(syn[1])
            ):
                continue  # "has 900 troops deployed in": a description (headlines drop "were")
            need = frame.requirement(word)
            clause_text = mt[clause[0] : clause[1]]
            if need and not self.cls[need].search(clause_text):
                continue
            etype = frame.type
            obj = mt[hit.end : min(clause[1], hit.end + 60)]
            # The direct object: the words before any preposition ("deployed an observation
            # post near X"; not "arrived yesterday at the base").
            object_words: list[str] = []
            for tok in _tokens(obj)[:5]:
                if tok in _PREPS:
                    break
                object_words.append(tok)
            # "fought their way to an air base": what follows is where they went; "entered
            # al-Tala'i camp": a named site entered, not one set up.
            ends_with_prep = word.split()[-1] in _PREPS
            names_site = any(
                hit.end <= p.start < hit.end + 40 and not _tokens(mt[hit.end : p.start])[3:]
                for p in self._in(self.places, hit.end, clause[1])
            )
            for cls_name, override in frame.object_types.items():
                if ends_with_prep or names_site:
                    break
                head = " ".join(object_words)
                if self.cls[cls_name].search(head) and not self.cls["force"].search(head):
                    etype = override
            if (
                etype is EventType.TAKEOVER
                and self.cls["arrests"].search(word)
                and self.cls["captives"].search(" ".join(_tokens(obj)[:4]))
            ):
                continue  # "the capture of the cell's leader": an arrest
            before = mt[clause[0] : hit.start]
            if self.cls["non_combatants"].search(before) and not self._in(
                self.actor_mentions, clause[0], hit.start
            ):
                continue
            participial = self._participial(hit.start, word, clause[0])
            if etype not in chosen or (chosen[etype][5] and not participial):
                chosen[etype] = (frame, hit.start, hit.end, word, clause, participial)
        if any(not v[5] for v in chosen.values()):
            chosen = {k: v for k, v in chosen.items() if not v[5]}
        if EventType.STRIKE in chosen and EventType.ATTACK in chosen:
            del chosen[EventType.ATTACK]
        relocation = chosen.get(EventType.RELOCATION)
        if (
            relocation is not None
            and EventType.WITHDRAWAL not in chosen
            and self.cls["dispersal"].search(relocation[3])
        ):
            del chosen[EventType.RELOCATION]
        for kept in (EventType.HANDOVER, EventType.RELOCATION):
            if kept in chosen and EventType.WITHDRAWAL in chosen:
                # "evacuated the houses and handed them to X"; "evacuated its headquarters
                # and distributed its members among houses": one act, not a withdrawal.
                del chosen[EventType.WITHDRAWAL]

        quantities = self.r.quantities.quantities(s.text) if chosen or anaphoric else {}
        equipment = list(self.r.quantities.equipment(s.text)) if chosen or anaphoric else []
        if not chosen:
            if anaphoric and last is not None:
                self._enrich(
                    last,
                    None,
                    self._sentence_origin(s_start, s_end),
                    sdates,
                    quantities,
                    equipment,
                    idx,
                )
            return []
        hedged = bool(self.ctx["hedges"].search(mt[s_start:s_end]))
        another = bool(self.ctx["another"].search(mt[s_start:s_end])) and bool(
            self.cls["force"].search(mt[s_start:s_end])
        )

        made: list[_Candidate] = []
        for etype, (frame, ts, te, word, clause, _p) in sorted(
            chosen.items(), key=lambda kv: kv[1][1]
        ):
            mention, victim_passive = self._actor_for(frame, etype, clause, ts, te, word)
            loc, origin, relocated, deictic, near = self._locate(frame, clause, ts, te)
            syn = self._syntax(s, ts, te)
            if syn is not None:
                parsed = self._parsed_actor(syn, s, etype, mention)
                if parsed is None and mention is not None and etype in _VIOLENT:
                    victim_passive = True  # the only group named is the target
                mention = parsed
                p_loc, p_origin, p_moved, refs = self._parsed_places(syn, s, frame)
                if p_loc is not None:
                    loc, near, deictic = p_loc, False, False
                    relocated = p_moved or (relocated and syn[0].has_destination(syn[1]))
                    if p_origin is not None and p_origin.id != p_loc.id:
                        origin = p_origin
                    elif frame.destination and not relocated:
                        origin = None  # "withdrew from X": X is the place, not an origin
                    elif origin is not None and origin.id == p_loc.id:
                        origin = None
                elif loc is not None and loc.id in refs:
                    if self._names_other_place(syn, s):
                        continue  # "in the town of X, south of Y", X unknown: not at Y
                    near = True  # only a reference point: the area around it
            if relocated or (
                origin is not None and frame.destination and loc is not None and origin is not loc
            ):
                etype = frame.destination_type or etype
            if syn is not None and etype is EventType.DEPLOYMENT:
                etype, loc = self._deployment_kind(syn, s, loc)
            if origin is None and etype.is_movement:
                origin = self._sentence_origin(s_start, s_end)
                if origin is loc:
                    origin = None
            actor: Actor | None = mention.entry.actor() if mention else None
            # Elaboration of the previous event: enrich it, make nothing new.
            if (
                last is not None
                and _same_kind(etype, last.type)
                and (anaphoric or (deictic and loc is None))
                and not another
                and (actor is None or actor.affiliation is last.actor.affiliation)
                and (
                    not sdates
                    or not last.explicit_date
                    or dates_mod.compatible(sdates[0].value, last.date)
                )
            ):
                self._enrich(last, loc, origin, sdates, quantities, equipment, idx)
                continue
            if actor is None:
                actor = self._militia_pointer(clause[0], clause[1] if frame.actor_is_object else ts)
            if actor is None and _OUR_FORCES.search(mt[clause[0] : ts]):
                actor = self._outlet_actor()  # an SDF statement's "our forces"
            if actor is None and etype in _VIOLENT and _UNATTRIBUTED_AIR.search(mt[clause[0] : ts]):
                actor = self.r.actors.generic(Affiliation.UNKNOWN)
            if actor is None:
                if victim_passive and etype in _VIOLENT:
                    actor = self.r.actors.generic(Affiliation.UNKNOWN)
                elif (anaphoric or another) and last is not None:
                    # "The reinforcements ..." points back to the last movement, not to an
                    # attack reported in between.
                    ref = next(
                        (c for c in reversed(self.candidates) if _same_kind(c.type, etype)), last
                    )
                    actor = ref.actor if anaphoric else self.r.actors.generic(ref.actor.affiliation)
                elif last is not None and last.paragraph == s.paragraph:
                    actor = self.r.actors.generic(last.actor.affiliation)
                elif prev_subject is not None:
                    actor = self.r.actors.generic(prev_subject.affiliation)
                elif self.title_actor is not None and etype.is_movement:
                    actor = self.r.actors.generic(self.title_actor.affiliation)
                elif etype in _VIOLENT:
                    actor = self.r.actors.generic(Affiliation.UNKNOWN)
                else:
                    continue
            if loc is None:
                # A tagged post ("📍 #AlBukamal | ...") starts its own story: its tag comes
                # before a pointer back to the previous post's place.
                loc = self._tag_place(s)
                near = loc is not None
            follows_dated = False  # "reinforcements to the area" of a dated event
            if loc is None and (deictic or another) and self.last_event is not None:
                loc = self.r.gazetteer.town_of(self.last_event.place)
                follows_dated = self.last_event.explicit_date
            if loc is None and etype.is_movement and body and not self._names_other_place(syn, s):
                loc = self.title_place
            if loc is None or loc.kind == "river":
                continue  # a river is where nothing is placed: the annotation needs a place
            if not loc.in_region and not sdates and not follows_dated:
                continue
            if (
                etype is EventType.RELOCATION
                and self.cls["reinforce"].search(mt[s_start:s_end])
                and self.cls["force"].search(mt[s_start:s_end])
            ):
                etype = EventType.DEPLOYMENT  # fighters moved to reinforce: sent, not moved
            partners = self._partners(mention, clause[0]) if mention is not None else []
            for value, precision, explicit in self._dates_for(ts, s, sdates, para_date):
                if explicit and self._history(value):
                    continue  # "in 2017 the army took X": background to this report
                for who in [actor, *partners]:
                    cand = _Candidate(
                        type=etype,
                        actor=who,
                        place=loc,
                        origin=origin,
                        date=value,
                        precision=precision,
                        explicit_date=explicit,
                        quantities=dict(quantities),
                        equipment=list(equipment),
                        hedged=hedged,
                        start=s.start,
                        end=s.end,
                        sentence=idx,
                        paragraph=s.paragraph,
                        headline=not body,
                        source=self._source(s, s.paragraph),
                        near=near,
                    )
                    cand.score = cand.informativeness()
                    cand.parts.append(idx)
                    self.candidates.append(cand)
                    made.append(cand)
                    if body and who is actor:
                        self.last_event = cand
        return made

    def _dates_for(
        self, ts: int, s: Sentence, sdates: list[dates_mod.DateMention], para_date: str | None
    ) -> list[tuple[str | None, DatePrecision, bool]]:
        if sdates:
            days = [d for d in sdates if d.precision is DatePrecision.DAY]
            if len(days) >= 2:
                between = s.text[days[0].end : days[1].start]
                if re.search(r"\band\b.*\b(?:another|again|also|one)\b|\band on\b", between, re.I):
                    return [(d.value, d.precision, True) for d in days]
            trig = self.mt.offsets[ts] - s.start
            best = min(sdates, key=lambda d: (d.start > trig, abs(d.start - trig)))
            return [(best.value, best.precision, True)]
        heading = self._heading_date(s.start)
        if heading is not None:
            return [heading]
        if para_date:
            if len(para_date) >= 7:
                return [(para_date[:7], DatePrecision.MONTH, False)]
            return [(para_date, DatePrecision.YEAR, False)]
        # A report that dates nothing is taken to tell what happened around its
        # publication: the week up to its day when the day is known, else its month
        # (or year, when that is all that is known).
        pub = self.doc.published
        if pub:
            if self.doc.published_precision is DatePrecision.YEAR:
                return [(f"{pub.year:04d}", DatePrecision.YEAR, False)]
            if (
                self.doc.published_precision is DatePrecision.DAY
                and not self.doc.published_is_estimate
            ):
                # News of the days before publication: the report's day, to the week.
                return [(pub.isoformat(), DatePrecision.WEEK, False)]
            if self.doc.published_precision is not DatePrecision.UNKNOWN:
                return [(f"{pub.year:04d}-{pub.month:02d}", DatePrecision.MONTH, False)]
        return [(None, DatePrecision.UNKNOWN, False)]

    def _heading_date(self, at: int) -> tuple[str | None, DatePrecision, bool] | None:
        """The date heading above ``at`` on a page of dated posts ("Wednesday, 17 May 2023"
        over a channel's posts): the day of the posts under it that give none."""
        for start, value in reversed(self._headings):
            if start < at:
                return (value, DatePrecision.DAY, True)
        return None

    def _find_headings(self) -> list[tuple[int, str]]:
        headings: list[tuple[int, str]] = []
        if len(_POST_TAG.findall(self.text)) < 2:
            return headings  # an article's date line is its publication date, not a heading
        at = 0
        for line in self.text.splitlines(keepends=True):
            stripped = line.strip(" \t\r\n━─—=-*")
            if 6 <= len(stripped) <= 40:
                found = dates_mod.resolve_all(
                    dates_mod.scan(stripped), self.ref, self.ref_precision
                )
                days = [d for d in found if d.precision is DatePrecision.DAY and d.value]
                covered = sum(d.end - d.start for d in found)
                if days and covered >= 0.6 * len(stripped.replace(",", "")):
                    day = max(days, key=lambda d: d.end - d.start)
                    headings.append((at, str(day.value)))
            at += len(line)
        return headings

    def _enrich(
        self,
        target: _Candidate,
        loc: Place | None,
        origin: Place | None,
        sdates: list[dates_mod.DateMention],
        quantities: dict[str, int],
        equipment: list[str],
        idx: int,
    ) -> None:
        gaz = self.r.gazetteer
        # A narrower place refines: "strikes near the border", then "the strikes targeted
        # ... the town of Abu Kamal".
        if (
            loc is not None
            and loc.id != target.place.id
            and (
                gaz.contains(target.place, loc)
                or (target.place.kind in _VAGUE_KINDS and loc.width < target.place.width)
            )
        ):
            target.place = loc
        if origin is not None and target.origin is None and origin.id != target.place.id:
            target.origin = origin
        if sdates and not target.explicit_date:
            d = sdates[0]
            target.date, target.precision, target.explicit_date = d.value, d.precision, True
        for k, v in quantities.items():
            target.quantities[k] = max(target.quantities.get(k, 0), v)
        for e in equipment:
            if e not in target.equipment:
                target.equipment.append(e)
        target.parts.append(idx)

    # ------------------------------------------------------------------- merge
    def _within(self, a: _Candidate, b: _Candidate) -> bool:
        """Every detail of ``a`` is also, or more precisely, in ``b``; a date of ``a``
        finer than ``b``'s is one detail more of the same event (the lede's "on Sunday",
        the body's month), which ``_absorb`` keeps."""
        gaz = self.r.gazetteer
        if not gaz.contains(a.place, b.place):
            return False
        if (
            a.date is not None
            and a.explicit_date
            and b.explicit_date
            and a.date != b.date
            and not dates_mod.compatible(a.date, b.date)
        ):
            return False  # a date the report does not give (its own day or month) is no detail
        if any(b.quantities.get(k) != v for k, v in a.quantities.items()):
            return False
        if not set(a.equipment) <= set(b.equipment):
            return False
        return a.origin is None or (b.origin is not None and a.origin.id == b.origin.id)

    def _absorb(self, into: _Candidate, other: _Candidate) -> None:
        into.parts.extend(other.parts)
        if other.explicit_date and not into.explicit_date:
            into.date, into.precision, into.explicit_date = other.date, other.precision, True
        elif (
            other.date is not None
            and into.date is not None
            and other.date != into.date
            and dates_mod.contains(into.date, other.date)
        ):
            into.date, into.precision = other.date, other.precision  # the finer date
        into.hedged = into.hedged and other.hedged
        if other.score > into.score:
            into.start, into.end, into.score = other.start, other.end, other.score
        if (
            into.actor.name == self.r.actors.generic(into.actor.affiliation).name
            and other.actor.affiliation is into.actor.affiliation
        ):
            into.actor = other.actor

    def _merge(self) -> list[_Candidate]:
        body = [c for c in self.candidates if not c.headline]
        heads = [c for c in self.candidates if c.headline]
        merged = True
        while merged:
            merged = False
            for a in sorted(body, key=lambda c: c.score):
                for b in sorted(body, key=lambda c: -c.score):
                    if a is b or a.type is not b.type:
                        continue
                    if a.actor.affiliation is not b.actor.affiliation and not (
                        # One strike on one place and day, with its author disputed or unknown.
                        a.type in _VIOLENT
                        and Affiliation.UNKNOWN in (a.actor.affiliation, b.actor.affiliation)
                    ):
                        continue
                    if self._within(a, b):
                        self._absorb(b, a)
                        body.remove(a)
                        merged = True
                        break
                if merged:
                    break
        for h in heads:
            same = [
                b for b in body if b.type is h.type and b.actor.affiliation is h.actor.affiliation
            ]
            if same:
                best = max(
                    same, key=lambda b: (self.r.gazetteer.contains(h.place, b.place), b.score)
                )
                self._absorb(best, h)
            else:
                kept = [
                    k
                    for k in body
                    if k.headline
                    and k.type is h.type
                    and k.actor.affiliation is h.actor.affiliation
                ]
                if kept:
                    self._absorb(kept[0], h)
                elif not any(not c.headline for c in self.candidates):
                    # A brief whose body reports nothing: its headline is the report.
                    # Otherwise a move only the headline tells, which the body does not
                    # support, is a teaser's claim, not an event.
                    body.append(h)
        return sorted(body, key=lambda c: (c.start, c.type.value))

    def _location(self, c: _Candidate) -> Location:
        """The place's location; a nearby town standing for an unknown spot is no more
        precise than a district."""
        location = c.place.location()
        if c.near and location.precision in (Precision.SITE, Precision.TOWN):
            return dataclasses.replace(location, precision=Precision.DISTRICT)
        return location

    def _event(self, c: _Candidate) -> Event:
        evidence = self.text[c.start : c.end]
        return Event(
            type=c.type,
            actor=c.actor,
            location=self._location(c),
            origin=c.origin.location() if c.origin else None,
            date=c.date,
            date_precision=c.precision if c.date else DatePrecision.UNKNOWN,
            hedged=c.hedged,
            in_region=c.place.in_region,
            evidence=Evidence(evidence, c.start, c.end),
            source=Source(c.source, self.doc.outlet, self.doc.url),
            quantities=dict(c.quantities),
            equipment=tuple(c.equipment),
        )


__all__ = ["Document", "RuleSet", "load_rules"]
