"""Musical form: one plan of labelled sections, shared by every engine.

A :class:`FormPlan` cuts a piece of ``bars`` bars into equal phrases, each labelled with a
letter: ``"AABA"`` is four phrases where the first returns twice; a prime marks a varied
repeat (``"AA'BA"``: the second A is a variation of the first). Every phrase ends on a
cadence: ``"half"`` (on the dominant, the phrase asks a question) or ``"authentic"`` (on the
tonic, the phrase closes); the last phrase always closes. ``"none"`` is a through-composed
plan: one section, nothing returns, no cadence is planned (the engines' behaviour before
form existed).

The plan is data: engines read it (compose reuses a section's latents for its repeats,
melody writes ``|: ... :|`` repeats and endings), writers record it (MIDI markers ``A``,
``A'``, ``B`` ..., MusicXML rehearsal marks, ``--json``). :func:`resolve_form` is the one
entry point for user input (``--form``, HTTP ``form``): ``None`` picks a default by length
and emotion (:func:`default_form`), ``"none"`` gives the through-composed plan, anything
else is parsed and checked against ``bars`` (:func:`parse_form`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Sequence

from emomusic.errors import EmomusicError

if TYPE_CHECKING:  # pragma: no cover
    from emomusic.emotion import Emotion
    from emomusic.piece import Marker, Note

MIN_PHRASE_BARS = 2
MAX_PHRASE_BARS = 16
MAX_SECTIONS = 128
MAX_FORM_TEXT = 512
CADENCES = ("half", "authentic", "none")
KINDS = ("piece", "tune")
_LABEL = re.compile(r"[A-Z]'*")
_TOKEN = re.compile(r"([A-Z])('*)")


class FormError(EmomusicError, ValueError):
    """A form that cannot be used (unknown symbol, does not fit the number of bars)."""


def is_section_label(text: str) -> bool:
    """True for a section label as written in markers: a capital letter and optional primes."""
    return bool(_LABEL.fullmatch(text))


@dataclass(frozen=True)
class Section:
    label: str  # "A", "A'", "B", ...
    start_bar: int  # first bar, from 0
    bars: int
    cadence: str = "authentic"  # how the phrase ends: "half" | "authentic" | "none"

    @property
    def letter(self) -> str:
        return self.label[0]

    @property
    def variant(self) -> int:
        """How many primes: 0 for a plain statement or exact repeat, >= 1 for a variation."""
        return len(self.label) - 1

    @property
    def end_bar(self) -> int:
        return self.start_bar + self.bars

    def to_dict(self) -> dict:
        return {"label": self.label, "start_bar": self.start_bar, "bars": self.bars, "cadence": self.cadence}


@dataclass(frozen=True)
class FormPlan:
    sections: tuple[Section, ...]
    through_composed: bool = False

    def __post_init__(self):
        secs = tuple(self.sections)
        object.__setattr__(self, "sections", secs)
        if not secs:
            raise FormError("a form needs at least one section")
        if len(secs) > MAX_SECTIONS:
            raise FormError(f"a form has at most {MAX_SECTIONS} sections, got {len(secs)}")
        bar = 0
        for s in secs:
            if not isinstance(s, Section):
                raise FormError(f"form sections must be Section objects, got {type(s).__name__}")
            if not is_section_label(s.label):
                raise FormError(f"section label {s.label!r} is not a letter A-Z with optional primes")
            if s.cadence not in CADENCES:
                raise FormError(f"section cadence must be one of {', '.join(CADENCES)}, got {s.cadence!r}")
            if isinstance(s.bars, bool) or not isinstance(s.bars, int) or s.bars < 1:
                raise FormError(f"section {s.label} must last a whole number of bars >= 1, got {s.bars!r}")
            if s.start_bar != bar:
                raise FormError(f"section {s.label} starts at bar {s.start_bar}, expected {bar} (sections follow each other)")
            bar += s.bars
        if self.through_composed and len(secs) != 1:
            raise FormError("a through-composed form has one section")

    # -- queries ---------------------------------------------------------------------
    @property
    def bars(self) -> int:
        return self.sections[-1].end_bar

    @property
    def labels(self) -> list[str]:
        return [s.label for s in self.sections]

    @property
    def text(self) -> str:
        """The form as written on the command line: ``"AABA"``, ``"AA'BA"`` or ``"none"``."""
        return "none" if self.through_composed else "".join(self.labels)

    @property
    def phrase_bars(self) -> int:
        """Bars per phrase (all phrases are equally long in plans made here)."""
        return self.sections[0].bars

    def __len__(self) -> int:
        return len(self.sections)

    def first_statement(self, index: int) -> int | None:
        """Index of the first section with the same letter as section ``index`` (None when
        ``index`` is that first statement)."""
        letter = self.sections[index].letter
        for j in range(index):
            if self.sections[j].letter == letter:
                return j
        return None

    def role(self, index: int) -> str:
        """``"new"`` (first statement of its letter), ``"repeat"`` (same label as its first
        statement) or ``"variation"`` (same letter, another number of primes)."""
        j = self.first_statement(index)
        if j is None:
            return "new"
        return "repeat" if self.sections[j].label == self.sections[index].label else "variation"

    def section_at_bar(self, bar: int) -> int:
        """Index of the section holding bar ``bar`` (from 0; bars past the end belong to the last)."""
        for i, s in enumerate(self.sections):
            if bar < s.end_bar:
                return i
        return len(self.sections) - 1

    def cadences(self) -> list[tuple[int, str]]:
        """(last bar of the phrase, cadence) for every section that plans one."""
        return [(s.end_bar - 1, s.cadence) for s in self.sections if s.cadence != "none"]

    # -- edges -----------------------------------------------------------------------
    def markers(self, bar_beats: float = 4.0) -> list["Marker"]:
        """Section markers (text ``A``, ``A'``, ``B`` ...) at each section's first beat; none
        for a through-composed plan."""
        from emomusic.piece import Marker

        if self.through_composed:
            return []
        return [Marker(s.label, s.start_bar * float(bar_beats)) for s in self.sections]

    def to_dict(self) -> dict:
        return {
            "form": self.text,
            "bars": self.bars,
            "phrase_bars": self.phrase_bars,
            "sections": [s.to_dict() for s in self.sections],
        }

    @classmethod
    def from_dict(cls, d: dict) -> "FormPlan":
        if not isinstance(d, dict):
            raise FormError(f"a form plan must be a JSON object, got {type(d).__name__}")
        secs = d.get("sections")
        if not isinstance(secs, list) or not secs:
            raise FormError("a form plan needs a non-empty 'sections' list")
        if len(secs) > MAX_SECTIONS:
            raise FormError(f"a form has at most {MAX_SECTIONS} sections, got {len(secs)}")
        out = []
        for s in secs:
            if not isinstance(s, dict) or set(s) - {"label", "start_bar", "bars", "cadence"}:
                raise FormError(f"bad form section {s!r}: keys are label, start_bar, bars, cadence")
            try:
                out.append(Section(str(s["label"]), s["start_bar"], s["bars"], str(s.get("cadence", "authentic"))))
            except KeyError as e:
                raise FormError(f"form section {s!r} lacks {e.args[0]!r}") from None
        return cls(tuple(out), through_composed=d.get("form") == "none")


def _tokens(text: str) -> list[str]:
    """``"AA'B A"`` -> ``["A", "A'", "B", "A"]``; raises FormError naming an unknown symbol."""
    s = text.replace("\u2019", "'").replace("\u2032", "'").upper()
    s = re.sub(r"[\s,\-|]+", "", s)
    out, i = [], 0
    while i < len(s):
        m = _TOKEN.match(s, i)
        if not m:
            ch = s[i]
            what = "a prime must follow a letter" if ch == "'" else f"unknown symbol {ch!r}"
            raise FormError(f"form {text!r}: {what} (use letters A-Z, ' for a varied repeat, or 'none')")
        out.append(m.group(0))
        i = m.end()
    return out


def _cadences(n: int) -> list[str]:
    """Phrases pair up as question and answer: even phrases end on a half cadence, odd ones
    (and always the last) on an authentic one."""
    return ["authentic" if (i % 2 == 1 or i == n - 1) else "half" for i in range(n)]


def _plan(labels: Sequence[str], phrase_bars: int) -> FormPlan:
    cads = _cadences(len(labels))
    return FormPlan(tuple(Section(lab, i * phrase_bars, phrase_bars, cads[i]) for i, lab in enumerate(labels)))


def through_composed(bars: int) -> FormPlan:
    """The ``"none"`` plan: one section over all ``bars``, no planned cadence."""
    bars = _check_bars(bars)
    return FormPlan((Section("A", 0, bars, "none"),), through_composed=True)


def _check_bars(bars) -> int:
    if isinstance(bars, bool) or not isinstance(bars, int) or bars < 1:
        raise FormError(f"bars must be a whole number >= 1, got {bars!r}")
    return bars


def parse_form(text: str, bars: int) -> FormPlan:
    """Parse a form string such as ``"AABA"``, ``"AA'BA"``, ``"A A B B"`` or ``"none"`` for a
    piece of ``bars`` bars, cut into equal phrases of 2-16 bars."""
    bars = _check_bars(bars)
    if not isinstance(text, str):
        raise FormError(f"form must be text such as 'AABA' or 'none', got {type(text).__name__}")
    if len(text) > MAX_FORM_TEXT:
        raise FormError(f"form is too long ({len(text)} characters; at most {MAX_FORM_TEXT})")
    if text.strip().lower() == "none":
        return through_composed(bars)
    labels = _tokens(text)
    if not labels:
        raise FormError("form is empty (use letters such as 'AABA', or 'none')")
    if labels[0] != labels[0][0]:
        raise FormError(f"form {text!r}: the first section cannot be a varied repeat")
    k = len(labels)
    if bars % k:
        raise FormError(f"form {''.join(labels)} has {k} phrases, which do not divide {bars} bars evenly")
    phrase = bars // k
    if phrase < MIN_PHRASE_BARS:
        raise FormError(f"form {''.join(labels)} is too long for {bars} bars: phrases would last {phrase} bar(s), "
                        f"at least {MIN_PHRASE_BARS} are needed (use at most {bars // MIN_PHRASE_BARS} letters)")
    if phrase > MAX_PHRASE_BARS:
        raise FormError(f"form {''.join(labels)} is too short for {bars} bars: phrases would last {phrase} bars, "
                        f"at most {MAX_PHRASE_BARS} (use at least {-(-bars // MAX_PHRASE_BARS)} letters)")
    return _plan(labels, phrase)


def _letters(k: int, base: Sequence[str]) -> list[str]:
    """``base`` extended to ``k`` sections rondo-style: new episodes (C, D, ...) alternate with
    varied returns of A, and the piece ends on A."""
    episodes = [chr(c) for c in range(ord("C"), ord("Z") + 1)]
    out = list(base[:k])
    e = 0
    while len(out) < k:
        if k - len(out) >= 2:
            out.append(episodes[e % len(episodes)] + "'" * (e // len(episodes)))
            e += 1
        out.append("A'")
    return out


SONG_FORMS = ("AA'BA'", "ABA'B'", "AA'BC", "ABCA'", "AABA", "ABCD")  # four-phrase pieces picked by seed
# four-phrase tunes (16 bars of 4-bar phrases) drawn by seed with these weights: two parallel
# periods, a rounded form, or a B part of two different phrases (see default_form)
TUNE_FORMS = (("AA'BB'", 0.45), ("AA'BA'", 0.10), ("AA'BC", 0.45))


def default_form(bars: int, emotion: "Emotion | None" = None, kind: str = "piece", seed: int | None = None) -> FormPlan:
    """The form used when none is asked for.

    Phrases of 8 bars from 32 bars on, of 4 bars when the length allows, else of 2.
    Pieces: 1 phrase A, 2 A A' (antecedent, consequent), 3 ABA', 4 AA'BA' (song form; AB A'B'
    when the arousal is high, > 0.3, for a livelier alternation), more: AA'BA' followed by
    episodes that alternate with varied returns of A (C A' D A' ...). Returns are varied
    (primes): real pieces come back changed, and an exact AABA repeats far more than real
    piano music does (``benchmarks/realism.py``: window recurrence 0.54 against EMOPIA's
    0.29; 0.41 with AA'BA'). ``--form AABA`` asks for exact returns. With a ``seed`` (compose
    gives each piece its own), a four-phrase piece takes one of :data:`SONG_FORMS` by a seeded
    draw instead: real pieces differ in how much comes back (EMOPIA's 16-bar clips range from
    none to whole repeated phrases: their share of repeated melodic patterns is 0 in a quarter of
    them and above 0.57 in a tenth), so song form, alternation, a period with a new continuation,
    a rounded form, exact returns and a through-composed chain of phrases all occur. Tunes
    (``kind="tune"``, any seed) follow folk practice: from 32 bars on, 8-bar strains each played twice (AABB, AABBCC
    ...); shorter tunes are their strains played once, each strain a parallel period of two
    phrases, the second opening like the first and closing on the tonic (AA' for 8 bars,
    AA'BB' for 16: in the held-out folk tunes a phrase's first two bars come back four bars
    later in about half of the tunes, its last two bars in 12-19%). With a ``seed`` (the melody
    engine gives each tune its own), a 16-bar tune of 4-bar phrases takes one of
    :data:`TUNE_FORMS` by a seeded draw with their weights: two periods (AA'BB', 45%), a
    rounded form whose second part closes with its first phrase again (AA'BA', 10%) or a
    second part of two different phrases (AA'BC, 45%). Measured bar by bar in the first 16 bars
    of the folk tunes (the held-out ones and the training sample agree): the second part is a
    period less often than the first (bars 9 and 13 equal in 34-42% of the tunes, bars 1 and 5
    in 51-62%), and the first phrase rarely returns at bar 13 (bars 1 and 13 equal in 3-8%);
    where bars 9-16 echo bars 1-8, it is mostly at the phrase ends (the melody engine's
    closing-bar "rhyme", :meth:`emomusic.melody.grammar.TuneSpec.rhyme_bar`). A piece whose length
    splits into no phrase of 2 or more bars is one section.
    """
    bars = _check_bars(bars)
    if kind not in KINDS:
        raise FormError(f"form kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if bars >= 32 and bars % 8 == 0:
        phrase = 8
    elif bars % 4 == 0:
        phrase = 4
    elif bars % 2 == 0 and bars >= 4:
        phrase = 2
    else:
        return FormPlan((Section("A", 0, bars, "authentic"),))
    k = bars // phrase
    while k > MAX_SECTIONS:  # very long pieces: longer phrases
        phrase *= 2
        k = bars // phrase
    if phrase > MAX_PHRASE_BARS or bars % phrase:
        return through_composed(bars)
    if seed is not None and k == 4 and (kind != "tune" or phrase == 4):  # four phrases: a form drawn with the seed
        import random

        rng = random.Random(int(seed))
        if kind == "tune":
            names, weights = zip(*TUNE_FORMS)
            return _plan(_tokens(rng.choices(names, weights)[0]), phrase)
        return _plan(_tokens(rng.choice(SONG_FORMS)), phrase)
    if kind == "tune":
        # 8-bar phrases are whole strains, each played twice (AABB); shorter phrases pair up into
        # parallel periods, the second phrase of each part a varied repeat of the first (AA'BB')
        second = "" if phrase >= 8 else "'"
        labels = []
        for i in range((k + 1) // 2):
            letter = chr(ord("A") + i % 26) + "'" * (2 * (i // 26))
            labels += [letter, letter + second]
        labels = ["A", "B"] if k == 2 and phrase >= 8 else labels[:k]  # an odd count: the last part is heard once
        return _plan(labels, phrase)
    lively = emotion is not None and emotion.arousal > 0.3
    base = {1: ["A"], 2: ["A", "A'"], 3: ["A", "B", "A'"]}.get(k, ["A", "B", "A'", "B'"] if lively else ["A", "A'", "B", "A'"])
    return _plan(_letters(k, base), phrase)


def resolve_form(form: "str | FormPlan | None", bars: int, emotion: "Emotion | None" = None,
                 kind: str = "piece", seed: int | None = None) -> FormPlan:
    """The one entry point for a user's form: None -> :func:`default_form`, ``"none"`` ->
    through-composed, a string -> :func:`parse_form`, a plan -> checked against ``bars``."""
    if form is None:
        return default_form(bars, emotion, kind, seed)
    if isinstance(form, FormPlan):
        if form.bars != _check_bars(bars):
            raise FormError(f"the form plan covers {form.bars} bars, the piece has {bars}")
        return form
    return parse_form(form, bars)


def piece_forms(form: "str | FormPlan | None", bars: int, emotion: "Emotion | None", n: int,
                seed: int, kind: str = "piece") -> list[FormPlan]:
    """The form plan of each of the ``n`` pieces (or tunes, ``kind``) a compose or melody call
    makes with ``seed``: the asked ``form`` for all of them, or (``form`` None) each its own
    default, drawn with its seed (``seed + i``, :func:`default_form`)."""
    if form is not None:
        return [resolve_form(form, bars, emotion, kind)] * n
    return [resolve_form(None, bars, emotion, kind, seed=seed + i) for i in range(n)]


def form_from_markers(markers: Iterable["Marker"], bars: int, bar_beats: float = 4.0) -> FormPlan | None:
    """Read a plan back from section markers (as :meth:`FormPlan.markers` writes them); None
    when the markers hold no section labels. Cadences are not recorded in markers: each
    section gets the default question-and-answer cadence."""
    marks = sorted(((float(m.beat), m.text.strip()) for m in markers if is_section_label(m.text.strip())))
    if not marks:
        return None
    starts = [int(round(b / bar_beats)) for b, _ in marks]
    if starts[0] != 0:
        return None
    ends = starts[1:] + [max(bars, starts[-1] + 1)]
    cads = _cadences(len(marks))
    try:
        return FormPlan(tuple(Section(lab, s, e - s, cads[i]) for i, ((_, lab), s, e) in enumerate(zip(marks, starts, ends))))
    except FormError:
        return None


# -- measuring how far a piece follows its plan ----------------------------------------------------

def bar_slice(notes: Sequence["Note"], start_bar: int, bars: int, bar_beats: float = 4.0) -> list[tuple[int, float]]:
    """(pitch, onset relative to the slice start, on a 16th grid) of the notes starting in bars
    ``start_bar`` .. ``start_bar + bars - 1``."""
    lo, hi = start_bar * bar_beats, (start_bar + bars) * bar_beats
    return [(n.pitch, round((n.start - lo) * 4) / 4) for n in notes if lo - 1e-6 <= n.start < hi - 1e-6]


def similarity(a: Sequence[tuple[int, float]], b: Sequence[tuple[int, float]]) -> float:
    """Overlap of two sets of (pitch, relative onset) events: |A & B| / |A | B| (1 = identical
    pitches on identical onsets, 0 = nothing shared; 1 when both are empty)."""
    sa, sb = set(a), set(b)
    if not sa and not sb:
        return 1.0
    return len(sa & sb) / len(sa | sb)


def section_similarities(notes: Sequence["Note"], plan: FormPlan, bar_beats: float = 4.0) -> list[float | None]:
    """For each section, its :func:`similarity` to the first statement of its letter (None for
    first statements). The form is heard when repeats score high and new sections do not."""
    out: list[float | None] = []
    for i, s in enumerate(plan.sections):
        j = plan.first_statement(i)
        if j is None:
            out.append(None)
            continue
        f = plan.sections[j]
        n = min(s.bars, f.bars)
        out.append(similarity(bar_slice(notes, f.start_bar, n, bar_beats), bar_slice(notes, s.start_bar, n, bar_beats)))
    return out


def contrast(notes: Sequence["Note"], plan: FormPlan, bar_beats: float = 4.0) -> list[float | None]:
    """For each first statement of a new letter after A, its :func:`similarity` to the first
    section (None elsewhere): low values mean a B section really is new."""
    out: list[float | None] = []
    first = plan.sections[0]
    for i, s in enumerate(plan.sections):
        if i == 0 or plan.first_statement(i) is not None:
            out.append(None)
            continue
        n = min(s.bars, first.bars)
        out.append(similarity(bar_slice(notes, first.start_bar, n, bar_beats), bar_slice(notes, s.start_bar, n, bar_beats)))
    return out
