"""The grammar of a tune: what may come next at every step of the constrained sampling
(:mod:`emomusic.melody.decode`).

A per-tune state machine (:class:`_State`: position in the bar, bars written, whether a
duration is waiting for its pitch, whether a chord was written here) and the tune's
:class:`TuneSpec` give :class:`Grammar` the tokens that keep the tune well formed, with a
logit bias for some of them:

* durations only if they fit in what is left of the bar; ``BAR`` exactly when the bar
  is full; ``EOS`` exactly after the requested number of bars;
* pitches only inside the register window and the key's scale (plus the raised seventh
  in minor), no leap wider than the spread allows, the first note on the tonic triad and
  the final note on the tonic, with chords a new chord's note on one of its tones (with
  ``downbeat_triad`` every bar's first note on the tonic triad: off by default); the window
  rises by ``part_lift`` in the tune's second part (:meth:`TuneSpec.window_at`); a logit bonus steers the running pitch-class histogram of
  the whole piece (melody + chord track) toward the requested key's Krumhansl-Kessler
  profile or, in major-like modes, the training tunes' profile (keeps the mode audible), a
  penalty discourages a third repeated note, and the contour prior (:mod:`.contour`) a
  bonus per interval class that keeps the line's turns like the corpus's;
* durations shorter than the density allows are masked, and a logit bonus steers density;
* chord symbols (with ``chords``) only at beat starts, required at each bar start, and
  mode-aware (:meth:`TuneSpec.chord_palette`): the tonic chord opens the first bar and is
  the only chord of the last bar, the primary chords of the mode are favoured (minor: i, iv,
  V/V7 with the raised seventh; major: I, IV, V/V7), the dominant is favoured before the
  final bar (a cadence), and in minor the relative major's chords (III, VII, v) are not
  offered, so the chord track keeps the minor key audible instead of drifting to the
  relative major; the more negative the valence (``darkness``), the more minor chords are
  favoured over major colour chords (VI in minor, IV in dorian); the melody note sounding
  with a new chord is one of its chord tones.

:class:`TuneSpec` also carries the tune's form (cadences, the bars a repeat copies:
:meth:`TuneSpec.bar_plan`), which the sampler follows.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_right
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from emomusic.melody.contour import CLASS_INDEX, interval_class
from emomusic.melody.notation import (
    CHORD_QUALITIES, DURATIONS, METERS, PITCH_MAX, PITCH_MIN, Chord, Key, chord_pitches,
)
from emomusic.melody.tokenizer import Controls, Tokenizer

if TYPE_CHECKING:  # pragma: no cover
    from emomusic.form import FormPlan
    from emomusic.melody.contour import ContourPrior

# Krumhansl & Kessler (1982) probe-tone profiles, tonic first
KK_MAJOR = (6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88)
KK_MINOR = (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17)

# Mode-aware chord palettes: (semitones above the tonic, quality) -> logit bonus. Chords not
# listed are not offered. Minor is harmonic minor (Piston, *Harmony*, ch. 4): i, iv and V/V7
# (raised seventh) are primary; VI and the diminished ii and vii are colour; the relative
# major's I and V (III, VII) and the minor v are left out, since they are what pulls a minor
# tune toward its relative major. Major: I, IV, V/V7 primary, ii and vi colour, iii and vii
# rarer. Other modes (dorian, mixolydian, ...) keep every chord that fits the mode's scale.
MINOR_PALETTE = {
    (0, "m"): 1.5, (5, "m"): 1.0, (7, ""): 0.5, (7, "7"): 0.5,
    (8, ""): 0.0, (5, "m7"): -0.5, (2, "dim"): -0.5, (11, "dim"): -0.5,
}
MAJOR_PALETTE = {
    (0, ""): 1.5, (5, ""): 1.0, (7, ""): 1.0, (7, "7"): 1.0,
    (2, "m"): 0.0, (9, "m"): 0.0, (2, "m7"): -0.5, (9, "m7"): -0.5, (4, "m"): -1.0, (11, "dim"): -1.0,
}
CADENCE_BONUS = 1.0  # extra for V / V7 in the bar before the last
_ALL_CHORDS = [(r, q) for r in range(12) for q in CHORD_QUALITIES]


@dataclass
class TuneSpec:
    key: Key
    meter: str
    bars: int
    controls: Controls
    seed: int
    low: int = 60  # register window (inclusive)
    high: int = 86
    max_leap: int = 12
    min_duration: int = 1  # shortest note (sixteenths)
    # strength of the steering toward the key profile (keeps the mode audible); 1.0 made the key
    # clearer than real tunes' (key strength 0.93 against 0.85 in benchmarks/realism.py)
    tonal_bias: float = 0.6
    # every bar's first note from the tonic triad: off, real tunes put 64% of their downbeats there
    # (forcing all of them made the key too clear); the first note and, with chords, a new chord's
    # note still are chord tones
    downbeat_triad: bool = False
    repeat_penalty: float = 1.0  # logit penalty for a third repetition of the same pitch in a row
    duration_bias: dict = field(default_factory=dict)  # sixteenths -> logit bonus (density control)
    harmony: bool = True  # mode-aware chord palette, tonic chord first and last, chord tones under new chords
    darkness: float = 0.0  # 0..1 (from negative valence): extra weight on minor chords, less on major colour chords
    form: "FormPlan | None" = None  # sections, repeats and cadences (None or through-composed: no form)
    variation: float = 0.2  # how soon a varied repeat leaves its first statement (bar_plan; 0: at its closing bar)
    # chance that a phrase of a later part closes with the closing bar of an earlier phrase with the
    # same cadence (rhyme_bar: the second strain ends like the first); half of it for half cadences
    rhyme: float = 0.0
    # chance that a section's first statement plays its opening bar again as its third (bar_plan)
    motif: float = 0.0
    # rhythmic motifs (rhythm_source): a sampled bar inside a phrase takes the note lengths of the
    # bar two before it (rhythm_skip) or, as the phrase's second bar, of its first bar (rhythm_next)
    rhythm_skip: float = 0.0
    rhythm_next: float = 0.0
    # a note of such a bar moves the way its source bar's note at the same place moved (up, down,
    # repeated) where the key and window allow: the motif's contour at another pitch (Grammar.motif_steps)
    motif_contour: bool = False
    # chance that such a bar is a diatonic sequence of its source: each note moves by as many scale
    # steps as the source's did (is_sequence; else only the direction is kept)
    sequence: float = 0.0
    # semitones the window rises in the sections after the first part (window_at): in the held-out
    # folk tunes bars 9-16 lie 2.0 semitones above bars 1-8 on average (the B part's "turn")
    part_lift: int = 3
    # authentic cadences inside the tune land on a long note too (the tune's last one always does):
    # off, the model chooses; forcing every one landed 71% of the phrases long, real tunes 54%
    hold_inner: bool = False
    # interval-class transitions of the training tunes (emomusic.melody.contour), weighted: a logit
    # bonus per candidate pitch that keeps the line's contour like the corpus's (None: off)
    contour: "ContourPrior | None" = None
    # the key steering's target: 12 shares of sounding time, tonic first (the training tunes' profile
    # in this mode, emomusic.melody.profiles); None: the Krumhansl-Kessler profile
    profile: tuple | None = None
    hold_half: bool = False  # half cadences land on a long note too (authentic ones always do); off: in
    # the held-out folk tunes about half of the phrase ends land long, and forcing every one made the
    # generated tunes easier to tell from real ones (benchmarks/realism.py)
    # scale degrees (semitones above the tonic) the line leaves out, as a hexatonic or pentatonic folk
    # tune does (no seventh, no fourth ...); the tonic, the dominant and the mode's third never are.
    # Only the tune's notes: the chords keep the whole key
    gaps: tuple = ()

    @property
    def has_form(self) -> bool:
        return self.form is not None and not self.form.through_composed

    def _memo(self, name: str, make):
        """A value computed once per spec (the spec's fields are not changed while decoding)."""
        d = self.__dict__
        if name not in d:
            d[name] = make()
        return d[name]

    def cadence_at(self, bar_index: int) -> str | None:
        """The cadence ending in bar ``bar_index`` ("half" / "authentic"), or None. Without a form
        only the last bar closes (on the tonic), as before form existed. Looked up in a table
        made once per spec (the decoder asks at every step)."""
        table = self._memo("_cadence_table", lambda: [self._cadence_at(i) for i in range(self.bars + 1)])
        return table[bar_index] if 0 <= bar_index < len(table) else self._cadence_at(bar_index)

    def _cadence_at(self, bar_index: int) -> str | None:
        if not self.has_form:
            return "authentic" if bar_index >= self.bars - 1 else None
        sec = self.form.sections[self.form.section_at_bar(bar_index)]
        if bar_index == sec.end_bar - 1 and sec.cadence != "none":
            return sec.cadence
        return None

    def melody_pitch_classes(self) -> frozenset[int]:
        """The pitch classes the tune's notes use: :meth:`allowed_pitch_classes` less the
        ``gaps`` (never the tonic, the dominant or the third of the mode)."""
        return self._memo("_melody_pcs", lambda: frozenset(self._melody_pitch_classes()))

    def _melody_pitch_classes(self) -> set[int]:
        t = self.key.tonic
        keep = {t, (t + 7) % 12, (t + (4 if self.key.is_major else 3)) % 12}
        return set(self.allowed_pitch_classes()) - ({(t + int(g)) % 12 for g in self.gaps} - keep)

    def cadence_pitch_classes(self, kind: str) -> set[int]:
        """Where a phrase may end: the tonic (authentic) or a tone of the dominant chord (half:
        degree 5, the leading tone, degree 2)."""
        return self._memo("_cadence_pcs_" + kind, lambda: frozenset(self._cadence_pitch_classes(kind)))

    def _cadence_pitch_classes(self, kind: str) -> set[int]:
        t = self.key.tonic
        if kind == "authentic":
            return {t}
        allowed = self.melody_pitch_classes()
        return {pc for pc in ((t + 7) % 12, (t + 11) % 12, (t + 10) % 12, (t + 2) % 12) if pc in allowed} or {(t + 7) % 12}

    def cadence_units(self) -> int:
        """How long (sixteenths) the note that closes a phrase lasts at least: half the bar's beats,
        rounded up (a half note in 4/4 and 3/4, a dotted quarter in 6/8)."""
        units, beat = METERS[self.meter]
        return min(units, beat * math.ceil(units // beat / 2))

    def final_close(self) -> int:
        """The bar whose sampled notes end the tune: the last bar, or the earlier bar it copies (a
        repeat or a rhyme; followed through copies of copies). That bar's close lands on a long
        note, so the tune's last note is long even when its last bar is a copy."""
        def follow() -> int:
            b = self.bars - 1
            for _ in range(self.bars):
                src = self.bar_plan(b)
                if src is None or src >= b:
                    break
                b = src
            return b

        return self._memo("_final_close", follow)

    def bar_plan(self, bar_index: int, rng: random.Random | None = None) -> int | None:
        """The earlier bar that bar ``bar_index`` copies, or None to sample it. A plain repeat copies
        its first statement bar for bar (its last bar is sampled anew when its cadence differs). A
        varied repeat (A') is the consequent of a parallel period: it opens like its first
        statement and then goes its own way, so it copies a run of opening bars and samples the
        rest: the first bar always, each further bar with probability ``1 - variation`` as long as
        the run holds (0: all but the closing bar, 1: the first bar only), never the closing bar.
        The run's length is drawn per tune and section from the tune's seed (``rng`` is not
        used; kept for callers). A new section is sampled, but may restate its opening bar as its
        third (:meth:`restates_motif`). A closing bar that would be sampled may instead rhyme with
        an earlier phrase's (:meth:`rhyme_bar`)."""
        if not self.has_form:
            return None
        i = self.form.section_at_bar(bar_index)
        sec = self.form.sections[i]
        last = bar_index == sec.end_bar - 1
        j = self.form.first_statement(i)
        if j is None:
            if last:
                return self.rhyme_bar(i)
            return sec.start_bar if bar_index - sec.start_bar == 2 and self.restates_motif(i) else None
        first = self.form.sections[j]
        offset = bar_index - sec.start_bar
        if offset >= first.bars:
            return self.rhyme_bar(i) if last else None
        src = first.start_bar + offset
        if self.form.role(i) == "repeat":
            if last and (sec.cadence != first.cadence or offset != first.bars - 1):
                return self.rhyme_bar(i)
            return src
        if last:
            return self.rhyme_bar(i)
        return src if offset < self.kept_opening(i) else None

    def restates_motif(self, section: int) -> bool:
        """Whether section ``section`` (a first statement) plays its opening bar again as its third
        bar (a phrase's basic idea stated twice, a b a c), drawn per tune and section from the
        tune's seed with chance ``motif``. In the first 16 bars of the folk tunes (held-out and
        training sample) bar 3 is bar 1 again in 21-22% of the tunes and bar 11 bar 9 in 17-18%
        (within consequent phrases 2-6%); generated tunes without this rule: never."""
        sec = self.form.sections[section]
        if self.motif <= 0 or sec.bars < 4:
            return False
        return random.Random(f"{self.seed}:motif:{section}").random() < self.motif

    def rhyme_bar(self, section: int) -> int | None:
        """The earlier closing bar that section ``section`` closes with, or None (its closing bar is
        sampled). A section of a later part (its letter is not the first section's) rhymes with
        the latest earlier section of another letter and the same cadence, with chance ``rhyme``
        for an authentic cadence and half of it for a half cadence, drawn per tune and section
        from the tune's seed. Folk tunes' strains often end alike: in the first 16 bars of the
        held-out tunes (4-bar phrases) bar 16 is bar 8 again in 25% (the training sample: 25%),
        bar 12 is bar 4 in 16% (12%); two phrases sampled apart never shared a closing bar."""
        rhymes = self._memo("_rhymes", dict)
        if section not in rhymes:
            secs, found = self.form.sections, None
            sec = secs[section]
            if self.rhyme > 0 and sec.cadence in ("half", "authentic") and sec.letter != secs[0].letter:
                earlier = [s for s in secs[:section] if s.letter != sec.letter and s.cadence == sec.cadence]
                chance = self.rhyme if sec.cadence == "authentic" else self.rhyme / 2
                if earlier and random.Random(f"{self.seed}:rhyme:{section}").random() < chance:
                    found = earlier[-1].end_bar - 1
            rhymes[section] = found
        return rhymes[section]

    def kept_opening(self, section: int) -> int:
        """How many opening bars varied section ``section`` copies from its first statement."""
        runs = self._memo("_kept_runs", dict)
        if section not in runs:
            r = random.Random(f"{self.seed}:opening:{section}")
            bars = self.form.sections[section].bars
            run = 1
            while run < bars - 1 and r.random() >= self.variation:
                run += 1
            runs[section] = run
        return runs[section]

    def rhythm_source(self, bar_index: int) -> int | None:
        """The earlier bar whose note lengths bar ``bar_index`` takes (its pitches are sampled), or
        None. Only bars the form leaves to sampling and that do not close a phrase: the second
        bar of a phrase takes its first bar's rhythm with chance ``rhythm_next``, a later one the
        rhythm of the bar two before it with chance ``rhythm_skip``; drawn per tune and bar from
        the tune's seed. Folk tunes build their phrases from few rhythms: in the first 16 bars of
        the corpus's tunes (the held-out ones and a training sample) a phrase's third bar has its
        first bar's rhythm in 46% of the phrases (generated tunes without this rule: 19%), its
        second bar in 34% (21%), and 72% of all bars repeat an earlier bar's rhythm (57%)."""
        if not self.has_form or not (self.rhythm_skip or self.rhythm_next) or bar_index >= self.bars:
            return None
        sources = self._memo("_rhythm_sources", dict)
        if bar_index not in sources:
            sec = self.form.sections[self.form.section_at_bar(bar_index)]
            offset, found = bar_index - sec.start_bar, None
            if offset >= 1 and bar_index < sec.end_bar - 1 and self.bar_plan(bar_index) is None:
                src, chance = (sec.start_bar, self.rhythm_next) if offset == 1 else (bar_index - 2, self.rhythm_skip)
                if random.Random(f"{self.seed}:rhythm:{bar_index}").random() < chance:
                    found = src
            sources[bar_index] = found
        return sources[bar_index]

    def is_sequence(self, bar_index: int) -> bool:
        """Whether bar ``bar_index`` (a rhythmic motif keeping its contour) repeats its source's
        scale steps too, a diatonic sequence; drawn per tune and bar from the tune's seed with
        chance ``sequence``. In the folk tunes 36% of the bars that have an earlier bar's rhythm
        and up/down pattern at other pitches keep its scale steps as well (generated without
        this rule: 7%)."""
        if not (self.motif_contour and self.sequence > 0) or self.rhythm_source(bar_index) is None:
            return False
        drawn = self._memo("_sequences", dict)
        if bar_index not in drawn:
            drawn[bar_index] = random.Random(f"{self.seed}:sequence:{bar_index}").random() < self.sequence
        return drawn[bar_index]

    def scale_steps(self, a: int, b: int) -> int:
        """Scale steps of the tune's key from pitch ``a`` to pitch ``b`` (a pitch outside the scale,
        such as minor's raised seventh, counts as the scale degree under it)."""
        def table() -> list[int]:
            scale = sorted(self.key.pitch_classes())
            return [(p // 12) * len(scale) + bisect_right(scale, p % 12) - 1 for p in range(128)]

        degree = self._memo("_degrees", table)
        return degree[b] - degree[a]

    def window_at(self, bar_index: int) -> tuple[int, int]:
        """The register window (low, high) of bar ``bar_index``: the spec's window, raised by
        ``part_lift`` semitones in the sections after the first part (the B part of a folk tune,
        its "turn", sits higher than the A part)."""
        if not self.part_lift or not self.has_form:
            return self.low, self.high
        sec = self.form.sections[self.form.section_at_bar(min(bar_index, self.bars - 1))]
        up = self.part_lift if sec.letter != self.form.sections[0].letter else 0
        return self.low + up, self.high + up

    def tonic_chord(self) -> Chord:
        t, th = self.key.tonic, self.third_pc()
        fifth = next(((t + i) % 12 for i in (7, 6, 8) if (t + i) % 12 in self.key.pitch_classes()), (t + 7) % 12)
        if (fifth - t) % 12 == 6:
            return (t, "dim")
        return (t, "m" if (th - t) % 12 == 3 else "")

    def chord_palette(self, bar_index: int | None = None) -> dict[Chord, float]:
        """Chord -> logit bonus for the chords offered in bar ``bar_index`` (0-based)."""
        if bar_index is None:
            where = None
        elif self.has_form:
            here, after = self.cadence_at(bar_index), self.cadence_at(bar_index + 1)
            where = ("last" if here == "authentic" else "half" if here == "half" else
                     "cadence" if after == "authentic" else "inner")
        else:
            where = "last" if bar_index >= self.bars - 1 else "cadence" if bar_index == self.bars - 2 else "inner"
        cache = self.__dict__.setdefault("_palettes", {})
        if where not in cache:
            cache[where] = self._palette(where)
        return dict(cache[where])

    def _palette(self, where: str | None) -> dict[Chord, float]:
        fits = self.allowed_pitch_classes()
        diatonic = [c for c in _ALL_CHORDS if {p % 12 for p in chord_pitches(c)} <= fits]
        if not self.harmony:
            return {c: 0.0 for c in diatonic}
        if where == "last":
            return {self.tonic_chord(): 0.0}
        t = self.key.tonic
        if where == "half":  # a half cadence rests on the dominant
            qualities = ("", "7") if self.key.mode in ("major", "minor") else ("", "7", "m")  # no minor v in minor
            dom = {c: 0.0 for c in diatonic if c[0] == (t + 7) % 12 and c[1] in qualities}
            if dom:
                return dom
        if self.key.mode in ("minor", "major"):
            table = MINOR_PALETTE if self.key.mode == "minor" else MAJOR_PALETTE
            out = {((t + off) % 12, q): b for (off, q), b in table.items()}
        else:
            out = {c: 0.0 for c in diatonic}
            out[self.tonic_chord()] = 1.5
        if self.darkness > 0:  # sadder -> darker harmony: minor chords favoured, major colour chords held back
            for c in out:
                if c[1] in ("m", "m7"):
                    out[c] += self.darkness
                elif c[1] in ("", "7") and c[0] not in (t, (t + 7) % 12):
                    out[c] -= self.darkness
        if where == "cadence":
            for q in ("", "7"):
                if ((t + 7) % 12, q) in out:
                    out[((t + 7) % 12, q)] += CADENCE_BONUS
        return out

    def triad(self) -> set[int]:
        return self._memo("_triad", lambda: frozenset(self._triad()))

    def _triad(self) -> set[int]:
        pcs = self.key.pitch_classes()
        t = self.key.tonic
        third = next(((t + i) % 12 for i in (3, 4) if (t + i) % 12 in pcs), (t + 4) % 12)
        fifth = next(((t + i) % 12 for i in (7, 6, 8) if (t + i) % 12 in pcs), (t + 7) % 12)
        return {t, third, fifth}

    def third_pc(self) -> int:
        pcs = self.key.pitch_classes()
        t = self.key.tonic
        return next(((t + i) % 12 for i in (3, 4) if (t + i) % 12 in pcs), (t + 4) % 12)

    def target_profile(self) -> dict[int, float]:
        """Pitch class -> target share of sounding time over the allowed pitch classes, normalised:
        ``profile`` (the training tunes' shares in this mode, each at least 1%) when set, else the
        Krumhansl-Kessler profile of the requested key (major profile for major-like modes, minor
        for minor-like), lifted off its floor so its shape dominates. A degree the line leaves out
        (``gaps``) has no target."""
        allowed = self.melody_pitch_classes()
        if self.profile is not None:
            raw = {(self.key.tonic + i) % 12: max(float(self.profile[i]), 0.01) for i in range(12)
                   if (self.key.tonic + i) % 12 in allowed}
        else:
            prof = KK_MAJOR if self.key.is_major else KK_MINOR
            raw = {(self.key.tonic + i) % 12: max(prof[i] - 2.0, 0.1) for i in range(12)
                   if (self.key.tonic + i) % 12 in allowed}
        total = sum(raw.values())
        return {pc: v / total for pc, v in raw.items()}

    def profile_bias(self, hist: list[float], prior: float = 4.0) -> dict[int, float]:
        """Logit bonus per pitch class steering the running, duration-weighted pitch-class
        histogram ``hist`` toward :meth:`target_profile`: under-used degrees are favoured,
        over-used ones held back (``tonal_bias`` * log ratio, clipped to +-2)."""
        target = self._memo("_target", self.target_profile)
        total = sum(hist) + prior
        out = {}
        for pc, t in target.items():
            cur = (hist[pc] + prior * t) / total
            out[pc] = max(-2.0, min(2.0, self.tonal_bias * math.log(t / cur)))
        return out

    def allowed_pitch_classes(self) -> set[int]:
        return self._memo("_allowed_pcs", lambda: frozenset(self._allowed_pitch_classes()))

    def _allowed_pitch_classes(self) -> set[int]:
        pcs = set(self.key.pitch_classes())
        if self.key.mode == "minor":
            pcs.add((self.key.tonic + 11) % 12)  # leading tone (harmonic minor)
        return pcs


@dataclass
class _State:
    spec: TuneSpec
    pos: int = 0
    bars_done: int = 0
    pending_dur: int | None = None
    chord_here: bool = False
    chord: Chord | None = None  # the chord written at this position (until its note)
    sounding: Chord | None = None  # the chord sounding now (the chord track holds it until the next)
    last_pitch: int | None = None
    prev_pitch: int | None = None
    last_move: int = 0  # class of the last moving interval of the line (contour.interval_class; 0: none yet)
    repeated: bool = False  # a repeated note came after that move
    hist: list = field(default_factory=lambda: [0.0] * 12)  # sounding time per pitch class (melody)
    chord_hist: list = field(default_factory=lambda: [0.0] * 12)  # the same for the chord track's notes
    notes: int = 0
    done: bool = False
    tokens: list[int] = field(default_factory=list)
    bar_start: int = 0  # index in tokens where the current bar began
    bar_tokens: list = field(default_factory=list)  # the tokens of every finished bar (BAR included)
    planned: int = -1  # the bar whose plan (copy or sample) has been made
    forced: deque = field(default_factory=deque)  # tokens to write next without sampling (a copied bar)
    next_allowed: tuple | None = None  # Grammar.allowed for the current state, when already asked

    def piece_hist(self) -> list[float]:
        """Sounding time per pitch class of the whole piece so far (melody + chord track), what
        key finding on the rendered piece will see."""
        return [m + c for m, c in zip(self.hist, self.chord_hist)]


def _sign(x: int) -> int:
    return (x > 0) - (x < 0)


class Grammar:
    """Builds the allowed-token mask for one tune state."""

    def __init__(self, tok: Tokenizer):
        self.tok = tok
        self.V = len(tok)

    def allowed(self, st: _State) -> tuple[list[int], list[float] | None]:
        """Allowed token ids and their logit biases (None: no bias)."""
        tok, spec = self.tok, st.spec
        bar_units, beat = METERS[spec.meter]
        if st.pending_dur is not None:
            cadence = spec.cadence_at(st.bars_done) if st.pos + st.pending_dur == bar_units else None
            final = cadence is not None  # the note that closes a phrase: no rest, a cadence tone
            pcs = spec.cadence_pitch_classes(cadence) if final else spec.melody_pitch_classes()
            low, high = spec.window_at(st.bars_done)
            lo, hi = max(PITCH_MIN, low), min(PITCH_MAX, high)
            if st.last_pitch is not None:
                lo, hi = max(lo, st.last_pitch - spec.max_leap), min(hi, st.last_pitch + spec.max_leap)
            cand = [p for p in range(lo, hi + 1) if p % 12 in pcs]
            # the bar's last note leads into a copied next bar: a pitch within max_leap of its first
            # note (else as near as the key allows), not a rest that would leave the leap open
            nxt = self.next_copied_pitch(st) if st.pos + st.pending_dur == bar_units else None
            if cand and nxt is not None:
                gap = max(spec.max_leap, min(abs(p - nxt) for p in cand))
                cand = [p for p in cand if abs(p - nxt) <= gap]
            out = [tok.pitch_ids[p] for p in cand]
            if not out:  # cannot happen with a window of an octave or more; keep a safe fallback
                out = [tok.pitch_ids[p] for p in range(max(PITCH_MIN, low), min(PITCH_MAX, high) + 1)
                       if p % 12 == spec.key.tonic]
            motif = self._motif(st) if spec.motif_contour and st.last_pitch is not None else None
            move = motif[1].get(st.pos) if motif is not None else None
            if move is not None:  # a rhythmic motif's note moves as its source's note moved, where it can
                same = []
                if spec.is_sequence(st.bars_done):  # by as many scale steps
                    gap = spec.scale_steps(*move)
                    same = [i for i in out if spec.scale_steps(st.last_pitch, tok.id_to_pitch[i]) == gap]
                step = _sign(move[1] - move[0])
                out = same or [i for i in out if _sign(tok.id_to_pitch[i] - st.last_pitch) == step] or out
            bias = None
            shape = spec.contour is not None and st.last_pitch is not None
            if spec.tonal_bias or spec.repeat_penalty or shape:
                prof = spec.profile_bias(st.piece_hist()) if spec.tonal_bias else {}
                bias = []
                for i in out:
                    p = tok.id_to_pitch[i]
                    b = prof.get(p % 12, 0.0)
                    if spec.repeat_penalty and p == st.last_pitch == st.prev_pitch:
                        b -= spec.repeat_penalty
                    bias.append(b)
                if shape:  # the contour prior: the bonus of each candidate's interval class
                    crow, off = spec.contour.row(st.last_move, st.repeated), 127 - st.last_pitch
                    id_to_pitch = tok.id_to_pitch
                    bias = [b + crow[CLASS_INDEX[id_to_pitch[i] + off]] for b, i in zip(bias, out)]
            if not final and st.notes > 0 and nxt is None:
                out.append(tok.rest)
                if bias is not None:
                    bias.append(0.0)
            if spec.harmony and st.chord_here and st.chord is not None:  # a new chord: sound one of its tones
                tones = {p % 12 for p in chord_pitches(st.chord)}
                keep = [j for j, i in enumerate(out) if i in tok.id_to_pitch and tok.id_to_pitch[i] % 12 in tones]
                if keep:
                    out = [out[j] for j in keep]
                    bias = None if bias is None else [bias[j] for j in keep]
            elif st.notes == 0 or (spec.downbeat_triad and st.pos == 0):  # open (and start bars) on the tonic triad
                keep = [j for j, i in enumerate(out) if i in tok.id_to_pitch and tok.id_to_pitch[i] % 12 in spec.triad()]
                if keep:
                    out = [out[j] for j in keep]
                    bias = None if bias is None else [bias[j] for j in keep]
            return out, bias
        if st.pos == bar_units:
            return [tok.bar], None
        if st.bars_done >= spec.bars:
            return [tok.eos], None
        remaining = bar_units - st.pos
        chord_bias: list[float] = []
        if spec.controls.chords and st.pos % beat == 0 and not st.chord_here:
            if spec.harmony and st.notes == 0:  # the tune opens on the tonic chord
                palette = {spec.tonic_chord(): 0.0}
            else:
                palette = spec.chord_palette(st.bars_done)
            prof = spec.profile_bias(st.piece_hist()) if spec.tonal_bias and spec.harmony else {}
            chords = [tok.chord_ids[c] for c in palette if c in tok.chord_ids]
            chord_bias = [palette[c] + (sum(prof.get(p % 12, 0.0) for p in chord_pitches(c)) / len(chord_pitches(c))
                                        if prof else 0.0) for c in palette if c in tok.chord_ids]
            if st.pos == 0:
                return chords, (chord_bias if any(chord_bias) else None)
        else:
            chords = []
        ds = [d for d in DURATIONS if d <= remaining and (d >= spec.min_duration or d == remaining)]
        cad = spec.cadence_at(st.bars_done) if spec.has_form else None
        if (cad == "authentic" and (spec.hold_inner or st.bars_done in (spec.bars - 1, spec.final_close()))) or (
                cad == "half" and spec.hold_half):
            # a phrase lands on a long note: leave room for at least cadence_units at the bar's end
            hold = spec.cadence_units()
            landing = [d for d in ds if d == remaining or d <= remaining - hold]
            if not landing:
                landing = [d for d in DURATIONS if d == remaining or d <= remaining - hold]
            ds = landing or ds
        if not ds:
            ds = [d for d in DURATIONS if d <= remaining]
        motif = self.bar_rhythm(st)
        if motif is not None and motif.get(st.pos, remaining + 1) <= remaining:  # a rhythmic motif: its next length
            ds = [motif[st.pos]]
        ids = chords + [tok.dur_ids[d] for d in ds]
        if spec.duration_bias or any(chord_bias):
            return ids, chord_bias + [spec.duration_bias.get(d, 0.0) for d in ds]
        return ids, None

    def _motif(self, st: _State) -> tuple[dict[int, int], dict[int, tuple[int, int]]] | None:
        """The bar whose rhythm the current bar takes (:meth:`TuneSpec.rhythm_source`), read once:
        (position in the bar -> note length in sixteenths, rests included; position -> (the pitch
        sounding before, the pitch) for its sounding notes after the first), or None."""
        src = st.spec.rhythm_source(st.bars_done)
        if src is None or src >= len(st.bar_tokens):
            return None
        cache = st.__dict__.setdefault("_motifs", {})
        if src not in cache:
            pos, prev, dur, lengths, moves = 0, None, 0, {}, {}
            for t in st.bar_tokens[src]:
                if t in self.tok.id_to_dur:
                    dur = lengths[pos] = self.tok.id_to_dur[t]
                elif t in self.tok.id_to_pitch or t == self.tok.rest:
                    if t != self.tok.rest:
                        p = self.tok.id_to_pitch[t]
                        if prev is not None:
                            moves[pos] = (prev, p)
                        prev = p
                    pos += dur
            cache[src] = (lengths, moves)
        return cache[src]

    def bar_rhythm(self, st: _State) -> dict[int, int] | None:
        """The note lengths (position in the bar -> sixteenths, rests included) of the bar whose
        rhythm the current bar takes (:meth:`TuneSpec.rhythm_source`), or None."""
        motif = self._motif(st)
        return None if motif is None else motif[0]

    def motif_steps(self, st: _State) -> dict[int, int]:
        """For the bar whose rhythm the current bar takes: position in the bar -> the direction
        (-1, 0, 1) of that source note from the note sounding before it in the source bar (its
        first note has none), or {} when the bar has no rhythmic motif."""
        motif = self._motif(st)
        return {} if motif is None else {pos: _sign(p - prev) for pos, (prev, p) in motif[1].items()}

    def motif_degrees(self, st: _State) -> dict[int, int]:
        """As :meth:`motif_steps`, in scale steps of the tune's key (:meth:`TuneSpec.scale_steps`)."""
        motif = self._motif(st)
        return {} if motif is None else {pos: st.spec.scale_steps(prev, p) for pos, (prev, p) in motif[1].items()}

    def next_copied_pitch(self, st: _State) -> int | None:
        """The first pitch of the next bar when the form copies it from an earlier bar, else None
        (the bar's last note then keeps within ``max_leap`` of it, where the key allows)."""
        nxt = st.bars_done + 1
        if nxt >= st.spec.bars:
            return None
        src = st.spec.bar_plan(nxt)
        if src is None or src >= len(st.bar_tokens):
            return None
        return next((self.tok.id_to_pitch[t] for t in st.bar_tokens[src] if t in self.tok.id_to_pitch), None)

    def advance(self, st: _State, t: int) -> None:
        tok = self.tok
        st.tokens.append(t)
        if t == tok.eos:
            st.done = True
        elif t == tok.bar:
            st.bars_done += 1
            st.pos = 0
            st.chord_here = False
            st.bar_tokens.append(st.tokens[st.bar_start:])
            st.bar_start = len(st.tokens)
        elif t in tok.id_to_chord:
            st.chord_here = True
            st.chord = st.sounding = tok.id_to_chord[t]
        elif t in tok.id_to_dur:
            st.pending_dur = tok.id_to_dur[t]
        else:  # pitch or rest
            dur = st.pending_dur
            st.pos += st.pending_dur
            st.pending_dur = None
            st.chord_here = False
            st.notes += 1
            if st.sounding is not None:
                for p in chord_pitches(st.sounding):
                    st.chord_hist[p % 12] += dur
            if t != tok.rest:
                p = tok.id_to_pitch[t]
                if st.last_pitch is not None:
                    c = interval_class(p - st.last_pitch)
                    if c:
                        st.last_move, st.repeated = c, False
                    else:
                        st.repeated = True
                st.prev_pitch, st.last_pitch = st.last_pitch, p
                st.hist[st.last_pitch % 12] += dur
