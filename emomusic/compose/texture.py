"""Piano texture for compose pieces: a harmony-aware accompaniment under the generated notes.

The VAE decodes a thin texture (about 2-3 sounding notes at once where EMOPIA's piano clips
have 4-8, see ``benchmarks/texture.py``). :func:`add_texture` keeps every generated note and
adds what a pianist's hands would play around them:

1. **Harmony** - :func:`estimate_chords` reads one chord per half bar from the notes and the
   key: the diatonic triads of the key (harmonic minor's major V in minor keys) scored by the
   duration- and beat-weighted pitch classes they explain, chosen jointly over the piece by a
   small Viterbi search (a chord tends to last a bar, V moves to I, IV and ii to V). A
   :class:`~emomusic.form.FormPlan` fixes its cadences: V in a half-cadence bar, V then I
   around an authentic cadence, and the piece ends on the tonic.
2. **Left hand** - a pattern by arousal (:data:`PATTERNS`, one per phrase, the same for an
   exact return, another for a varied one): bass and fifth with broken chord tones on the beats when calm, bass and
   chord or flowing arpeggios in between, Alberti figures, octave bass with off-beat chords or
   driving eighths when excited. The bass takes the root with the smallest leap, lower when
   excited (not lower for a negative valence: sad pieces had a third more notes under C3 than
   EMOPIA's), and within reach of the melody (a narrower span when calm; an excited piece whose
   player lays the bass lower reaches as much further, in full from arousal 0.5, never under
   E1: in EMOPIA's excited clips the bass goes deeper than that reach allowed); chord tones stay
   under the melody.
3. **Right hand** - a chord tone a third to a sixth under melody notes on strong beats, more
   often the higher the arousal, and the chord's inner voices (with its seventh or ninth)
   struck with each half bar's first melody note and held (:func:`_inner_voices`); in some
   pieces (drawn with the seed, none when calm: :func:`octave_share`) the melody in octaves
   (:func:`octave_doubling`).
4. **Pedal** - every note rings to the next chord change (and bar line, except when calm; each
   half bar when very excited); calm parts are legato.

New notes never sound a semitone (or major seventh / minor ninth) against a note already
sounding, stay under the melody, and are softer than it; the pedal stops a note where a note a
semitone away starts. Where the generated accompaniment already plays an onset per beat in a
half bar the pattern gives way, new onsets stop at a density budget that grows with arousal
(it complements, it does not replace), and generated accompaniment notes that clash a
semitone with the melody and are not chord tones are thinned out. With the texture,
:func:`decode_thresholds` makes the decoder sparser for calm emotions and keeps more of the
melody register's onsets otherwise. An exact return of a section keeps its first
statement's chords (except where a cadence fixes them). Everything is seeded and
deterministic.

:func:`texture_features` measures the texture (sounding notes at once, notes per beat,
pitch spread, low-register share, what the left hand does) for ``benchmarks/texture.py``
and the tests.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING, Sequence

import numpy as np

from emomusic.chords import STAY, Chord, cadence_constraints, diatonic_chords, estimate_chords
from emomusic.emotion import Emotion
from emomusic.piece import KeySignature, Note, Piece, Track

from .right_hand import LEGATO_AROUSAL, calm_fade, colour_tone, octave_doubling, octave_share
from .right_hand import fills as _fills
from .right_hand import inner_voices as _inner_voices
from .sounding import Sounding as _Sounding
from .sounding import emotion_at as _emotion_at
from .texture_measure import LEFT_HAND_SPLIT, LOW_PITCH, TEXTURE_FEATURES, texture_features

if TYPE_CHECKING:  # pragma: no cover
    from emomusic.form import FormPlan

    from .style import PlayerStyle

BASS_CENTRE = 40  # lowest bass note (E2) at arousal 0 ...
BASS_PER_AROUSAL = 5.0  # ... lower when excited, higher when calm
BASS_BELOW_MELODY = 33  # ... but at most this many semitones under the melody's median pitch ...
BASS_BELOW_PER_AROUSAL = 3.0  # ... more when excited, less when calm (a narrower texture)
BASS_SPAN = 12  # the bass moves within an octave above its lowest note
RAISED_BASS_ROOM = 12  # a player style's raised bass floor stays at least this far under the left hand's top
REACH_FULL_AROUSAL = 0.5  # a lower-bass player reaches that much further under the melody from this arousal up
BASS_LOWEST = 28  # ... but never under E1 (the piano goes to A0; pop piano's bass stays above about E1)
LEFT_HAND_TOP = 67  # left-hand chord tones stay at or below G4 ...
MELODY_GAP = 3  # ... and at least this many semitones under the lowest melody note sounding
ACCOMP_VELOCITY = 0.78  # accompaniment velocity / melody velocity
CALM_STAY = 0.3  # chord-keeping score added per unit of negative arousal (calm music changes chords less often)
CALM_THRESHOLD = 0.6  # decoder onset threshold raised by this per unit of negative arousal
AGITATED_THRESHOLD = 0.2  # ... and by up to this much for agitated music (negative valence, positive arousal) ...
AGITATED_FULL = 0.6  # ... all of it from this far into that quadrant (the smaller of -valence and arousal)
BUDGET_CENTRE = 3.0  # onsets per beat (melody and accompaniment) the left hand fills up to at arousal 0 ...
BUDGET_PER_AROUSAL = 1.5  # ... more when excited, fewer when calm
BUSY_ONSETS_PER_BEAT = 1.0  # a half bar whose generated left hand plays this many onsets per beat gets no pattern
PEDAL_AROUSAL = 0.8  # the sustain pedal changes with the chord and at each bar line (each half bar above this arousal)
BAR_PEDAL_AROUSAL = -0.3  # ... at bar lines only above this arousal (calmer music holds it while the chord lasts)
COLOUR_CENTRE = 0.55  # chance of a seventh / ninth in a half bar's chord at arousal 0 ...
COLOUR_PER_AROUSAL = 0.35  # ... more when calm, fewer when excited
MELODY_REGISTER = 60  # decoder onsets at or above C4 (the right hand's register) ...
MELODY_THRESHOLD_DROP = 0.3  # ... are kept at an onset threshold this much lower than the rest's


# --------------------------------------------------------------------------------------
# Patterns
# --------------------------------------------------------------------------------------

# A pattern is a list of events per bar of 4 beats: (offset in beats, voices). Voice 0 is the
# bass, 1.. are the chord tones above it (:func:`_voicing`: the fifth, the tenth, the octave), 9 is
# the bass an octave up, 8 the chord's colour tone (its seventh or ninth, :func:`colour_tone`) when
# the half bar has one. Each event plays the chord of the half bar it falls in.
PATTERNS: dict[str, list[tuple[float, tuple[int, ...]]]] = {
    # calm: few onsets, single notes, ringing (EMOPIA's calm clips: ~0.6 left-hand onsets per beat)
    "block": [(0.0, (0, 1, 2, 8)), (2.0, (0, 1, 2, 8))],
    "bass_half": [(0.0, (0, 1)), (1.0, (2, 8)), (2.0, (0, 1)), (3.0, (2, 3, 8))],
    "slow_arpeggio": [(0.0, (0, 1)), (1.0, (2,)), (1.5, (8,)), (2.0, (0, 1)), (3.0, (2,)), (3.5, (3,))],
    "rocking": [(0.0, (0, 1)), (1.0, (2, 8)), (1.5, (3,)), (2.0, (0,)), (3.0, (1, 2, 8))],
    # moderate
    "bass_chord": [(0.0, (0,)), (1.0, (1, 2, 8)), (2.0, (0,)), (3.0, (1, 2))],
    "flowing": [(0.0, (0,)), (0.5, (1,)), (1.0, (2,)), (1.5, (8,)), (2.0, (0,)), (2.5, (1,)), (3.0, (2,))],
    # excited
    "alberti": [(0.0, (0,)), (0.5, (2,)), (1.0, (1,)), (1.5, (2,)), (2.0, (0,)), (2.5, (2,)), (3.0, (1,)), (3.5, (2,))],
    "octave_offbeat": [(0.0, (0, 9)), (0.5, (1, 2, 8)), (1.5, (1, 2)), (2.0, (0, 9)), (2.5, (1, 2, 8)), (3.5, (1, 2))],
    "driving": [(0.0, (0,)), (0.5, (1, 2)), (1.0, (9,)), (1.5, (1, 2, 8)), (2.0, (0,)), (2.5, (1, 2)), (3.0, (9,)), (3.5, (1, 2))],
}
LOW_AROUSAL = ("bass_half", "slow_arpeggio", "rocking")
MID_AROUSAL = ("bass_chord", "flowing", "slow_arpeggio")
HIGH_AROUSAL = ("alberti", "octave_offbeat", "driving")


def patterns_for(arousal: float) -> tuple[str, ...]:
    """The patterns an arousal level chooses from (one per phrase, seeded)."""
    if arousal < -0.3:
        return LOW_AROUSAL
    if arousal <= 0.3:
        return MID_AROUSAL
    return HIGH_AROUSAL


def onset_budget(arousal: float, busyness: float = 1.0) -> float:
    """Onsets per beat (all hands) above which the accompaniment adds no new onset; a piece's
    player style (:mod:`emomusic.compose.style`) scales the centre by ``busyness``."""
    return BUDGET_CENTRE * busyness + BUDGET_PER_AROUSAL * arousal


def calm_threshold(base: float, emotion: Emotion) -> float:
    """The VAE decoder's onset threshold for ``emotion``: ``base`` raised for calm music
    (negative arousal), so a calm piece decodes sparser and the accompaniment fills it in
    rather than piling onto an already busy texture (measured in ``benchmarks/texture.py``:
    dense calm pieces are the ones read as excited). Agitated music (negative valence, positive
    arousal) is raised too, by up to :data:`AGITATED_THRESHOLD`: the model decodes it the
    densest of all (6.6 notes per beat with the texture, against 4.9 in EMOPIA's Q2 clips; 5.3
    raised), the quadrant furthest from real music's texture ranges."""
    agitated = AGITATED_THRESHOLD * min(1.0, max(0.0, min(-emotion.valence, emotion.arousal)) / AGITATED_FULL)
    return float(min(0.95, base + CALM_THRESHOLD * max(0.0, -emotion.arousal) + agitated))


def decode_thresholds(base: float, emotion: Emotion) -> tuple[float, tuple[int, float] | None]:
    """The VAE decoder's onset thresholds for ``emotion`` with the texture on: (threshold,
    melody) for :meth:`~emomusic.compose.api.ComposeEngine.decode`. ``threshold`` is
    :func:`calm_threshold`; ``melody`` = (:data:`MELODY_REGISTER`, a threshold lower by
    :data:`MELODY_THRESHOLD_DROP` at arousal 0 and above, less when calmer), or None from arousal
    -0.5 down (a calm melody stays sparse: with the drop there, a quarter of the Q3 pieces read
    as excited without their velocities). At a step where nothing from the melody's register up
    reaches ``threshold``, the highest cell that reaches the melody's threshold is kept: the
    decoder is less sure of the melody's onsets than of the bass's; at one threshold the right
    hand fell silent while the left hand's pattern went on, and the line on top kept dropping
    to it (top-voice leaps 0.67 against EMOPIA's 0.59; docs/compose.md)."""
    th = calm_threshold(base, emotion)
    drop = MELODY_THRESHOLD_DROP * calm_fade(emotion.arousal)
    return th, ((MELODY_REGISTER, max(0.05, th - drop)) if drop > 0 else None)


def bass_floor(emotion: Emotion, shift: int = 0) -> int:
    """Lowest bass note: lower when excited (EMOPIA's excited clips have the most notes below
    C3); a piece's player style moves it by ``shift`` semitones. The valence does not move it:
    a major third lower for negative valence (session 5 to 10) gave sad calm pieces 19% of
    their notes under C3 against 15% in EMOPIA's val clips and 11% in its train clips, at the
    same emotion accuracy without it (``benchmarks/compose.py``)."""
    return int(round(BASS_CENTRE + shift - BASS_PER_AROUSAL * emotion.arousal))


def colour_chance(emotion: Emotion, shift: float = 0.0) -> float:
    """The chance that a half bar's chord gets its :func:`colour_tone`: sevenths and ninths are
    the sound of calm piano music above all (EMOPIA's calm clips are as dissonant as its
    excited ones: about 0.3 of the pitch-class pairs at onsets, against 0.1-0.15 for triads).
    A piece's player style adds ``shift``; the chance stays within 0.2..0.95."""
    return float(min(0.95, max(0.2, COLOUR_CENTRE + shift - COLOUR_PER_AROUSAL * emotion.arousal)))


def _voicing(chord: Chord, prev_bass: int | None, lo: int, top: int, colour: bool = False) -> tuple[list[int], int | None]:
    """([bass, chord tones above it ...], colour pitch or None): the root in the bass within an
    octave from ``lo`` (the smallest leap from the previous bass), then, in this order, the
    fifth, the tenth (the chord's third) and the octave above it when they fit under ``top``
    (else other chord tones under ``top``, from the top down). The order is the patterns' voice
    numbers: voice 2 is the third, so a broken chord (Alberti: voices 0 2 1 2) sounds the whole
    triad, root, tenth, fifth, tenth; in pitch order it was the octave, and the excited patterns
    played bare fifths and octaves (major pieces' accompaniment 31% fifths and 9% thirds against
    EMOPIA's 19% and 13%); with ``colour`` the chord's :func:`colour_tone` just above the bass's fifth
    (pattern voice 8) when it fits under ``top`` a tone or more from the other voices."""
    opts = [p for p in range(lo, lo + BASS_SPAN) if p % 12 == chord.root]
    bass = opts[0] if prev_bass is None else min(opts, key=lambda p: (abs(p - prev_bass), p))
    upper = []
    third, fifth = chord.pcs[1], chord.pcs[2]
    # open voicing: fifth (or the nearest chord tone) above the bass, then third and root higher up
    for pc, lowest in ((fifth, bass + 5), (third, bass + 12), (chord.root, bass + 12)):
        p = lowest + ((pc - lowest) % 12)
        while p in upper:
            p += 12
        if p <= top:
            upper.append(p)
    # little room under the melody: close-position chord tones fill up to three voices
    for p in range(top, bass + 2, -1):
        if len(upper) >= 3:
            break
        if p % 12 in chord.pcs and all(abs(p - q) >= 3 for q in upper):
            upper.append(p)
    pc = colour_tone(chord) if colour else None
    extra = None
    if pc is not None:
        p = bass + 7 + ((pc - bass - 7) % 12)  # above the fifth: a seventh over the bass, a ninth an octave up
        if p <= top and all(abs(p - q) >= 2 for q in upper):  # never a semitone against the chord
            extra = p
    return [bass] + upper, extra


# --------------------------------------------------------------------------------------
# Texture
# --------------------------------------------------------------------------------------


def _melody_and_accomp(piece: Piece) -> tuple[list[int], list[int]]:
    """Indices of (melody track, accompaniment track) in ``piece.tracks``."""
    names = [t.name.lower() for t in piece.tracks]
    mel = [i for i, n in enumerate(names) if "melody" in n and not piece.tracks[i].is_drum]
    acc = [i for i, n in enumerate(names) if "melody" not in n and not piece.tracks[i].is_drum]
    return mel, acc


def sustain_pedal(notes: Sequence[Note], changes: Sequence[float], until: float,
                  min_end: Sequence[float] | None = None) -> list[Note]:
    """Notes as a sustain pedal holds them: each rings on to the next pedal change (``changes``,
    beats) after its start, or to ``until`` (and at least to its ``min_end``, e.g. a legato
    target), but stops where a later note of the same pitch or a semitone away starts (no
    blurred seconds); notes are never shortened."""
    if not notes:
        return []
    ch = np.asarray(sorted(changes) + [until], dtype=float)
    order = sorted(range(len(notes)), key=lambda i: notes[i].start)
    starts = np.array([notes[i].start for i in order])
    pitch = np.array([notes[i].pitch for i in order])
    out = list(notes)
    for j, i in enumerate(order):
        nt = notes[i]
        k = int(np.searchsorted(ch, nt.start + 1e-6, side="right"))
        end = float(ch[min(k, len(ch) - 1)])
        if min_end is not None:
            end = max(end, float(min_end[i]))
        later = slice(j + 1, None)
        d = np.abs(pitch[later] - nt.pitch) % 12
        hit = np.nonzero(((d <= 1) | (d == 11)) & (starts[later] > nt.start + 1e-6))[0]
        if hit.size:
            end = min(end, float(starts[later][hit[0]]))
        if end > nt.end + 1e-6:
            out[i] = replace(nt, duration=end - nt.start)
    return out


def legato_ends(notes: Sequence[Note], max_gap: float = 2.0) -> list[float]:
    """Where each note of one part would end played legato: at the next later onset of the
    part when that comes within ``max_gap`` beats (no silence in a calm line), else its end."""
    if not notes:
        return []
    onsets = np.unique(np.round([n.start for n in notes], 4))
    out = []
    for nt in notes:
        i = int(np.searchsorted(onsets, round(nt.start, 4), side="right"))
        nxt = float(onsets[i]) if i < len(onsets) else nt.end
        out.append(max(nt.end, nxt) if nxt - nt.start <= max_gap else nt.end)
    return out


def _colour_notes(colours: Sequence[int | None], snd: _Sounding, win: float, total: float, velocity: float,
                  lh_onsets: Sequence[float]) -> list[Note]:
    """The colour tone of each half bar that has one and does not sound in it yet, held from
    the half bar's first left-hand onset (its start when there is none) to its end, where it
    clashes a semitone with nothing (whatever the generated accompaniment plays: a pianist
    adds the seventh to the chord the left hand has)."""
    out: list[Note] = []
    onsets = np.sort(np.asarray(lh_onsets, dtype=float))
    for w, p in enumerate(colours):
        t0, t1 = w * win, min((w + 1) * win, total)
        if p is None or t1 <= t0:
            continue
        if np.any(snd.pitches(t0, t1) % 12 == p % 12):
            continue
        here = onsets[(onsets >= t0 - 1e-6) & (onsets < t1 - 1e-6)]
        start = float(here[0]) if here.size else t0
        if t1 - start < 0.5 or snd.clashes(p, start, t1):
            continue
        nt = Note(int(p), start, t1 - start, int(max(1, min(127, round(velocity * 0.9)))))
        snd.add(nt)
        out.append(nt)
    return out


def _exact_returns(form: "FormPlan", notes: Sequence[Note], bar: float):
    """``(section, first statement)`` of each exact return (``repeat``) whose ``notes`` (pitch
    and place in the section) are its first statement's in every bar but its last: the bars a
    return shares with its first statement (a ``--to`` morph re-conditions its returns, which
    then have notes of their own)."""
    def cells(lo: float, hi: float) -> set:
        return {(n.pitch, round(n.start - lo, 3)) for n in notes if lo - 1e-6 <= n.start < hi - 1e-6}

    for i, sec in enumerate(form.sections):
        j = form.first_statement(i)
        if j is None or form.role(i) != "repeat":
            continue
        src = form.sections[j]
        span = (min(sec.bars, src.bars) - 1) * bar
        if cells(src.start_bar * bar, src.start_bar * bar + span) == cells(sec.start_bar * bar, sec.start_bar * bar + span):
            yield sec, src


def _repeat_chords(chords: list, form: "FormPlan", wpb: int, notes: Sequence[Note], bar: float,
                   fixed: dict[int, str]) -> list:
    """An exact return whose notes are its first statement's (:func:`_exact_returns`) keeps that
    statement's chords, except in the half bars the plan's cadences fix (``fixed``,
    :func:`cadence_constraints`): the joint search reads each statement in its own context (the
    bars after it differ), which could re-harmonise the same notes."""
    n_win = len(chords)
    for sec, src in _exact_returns(form, notes, bar):
        a, b = src.start_bar * wpb, sec.start_bar * wpb
        for k in range(min(sec.bars, src.bars) * wpb):
            if b + k < n_win and a + k < n_win and b + k not in fixed:
                chords[b + k] = chords[a + k]
    return chords


def _repeat_sections(added: list[Note], generated: Sequence[Note], form: "FormPlan", bar: float) -> list[Note]:
    """A repeated section (same label as its first statement) gets the first statement's added
    notes in every bar but its last (the cadence), where its generated notes are the same
    (:func:`_exact_returns`), so a repeat sounds as a repeat; variations and new sections keep
    their own."""
    out = list(added)
    for sec, src in _exact_returns(form, generated, bar):
        span = (min(sec.bars, src.bars) - 1) * bar
        lo_src, lo = src.start_bar * bar, sec.start_bar * bar
        if span <= 0:
            continue
        out = [n for n in out if not lo - 1e-6 <= n.start < lo + span - 1e-6]
        out += [replace(n, start=n.start - lo_src + lo) for n in added if lo_src - 1e-6 <= n.start < lo_src + span - 1e-6]
    return sorted(out, key=lambda n: (n.start, n.pitch))


def add_texture(piece: Piece, emotion: Emotion | Sequence[Emotion], *, form: "FormPlan | None" = None, seed: int = 0,
                segment_beats: float = 8.0, fill: bool = True, pedal: bool = True,
                style: "PlayerStyle | None" = None) -> Piece:
    """``piece`` with a harmony-aware accompaniment for ``emotion`` (see the module doc).

    ``emotion`` is one emotion or one per segment of ``segment_beats`` beats (a morph).
    ``form`` (its cadence bars) fixes V / I chords; without it only the last bar is fixed
    (the tonic). ``style`` (:class:`~emomusic.compose.style.PlayerStyle`, default the plain
    rules) is the piece's player: its onset budget, bass floor and colour-tone chance. The
    input piece is left as it was; a piece without notes is returned as is.
    """
    emotions = [emotion] if isinstance(emotion, Emotion) else list(emotion)
    if not emotions or not piece.notes:
        return piece
    if style is None:
        from .style import PLAIN as style
    bar = piece.time_signature.bar_beats
    win = bar / 2 if piece.time_signature.numerator % 2 == 0 else bar
    wpb = int(round(bar / win))
    n_bars = form.bars if form is not None else max(1, int(math.ceil(piece.end_beat / bar - 1e-6)))
    total = n_bars * bar
    n_win = n_bars * wpb
    keys = piece.keys or [KeySignature(0, "major", 0.0)]
    mel_idx, acc_idx = _melody_and_accomp(piece)
    if not mel_idx:  # one-track piece: the top voice leads
        from .api import split_hands

        melody, accomp0 = split_hands(piece.notes)
        acc_name = "Accompaniment"
    else:
        melody = [n for i in mel_idx for n in piece.tracks[i].notes]
        accomp0 = [n for i in acc_idx for n in piece.tracks[i].notes]
        acc_name = piece.tracks[acc_idx[0]].name if acc_idx else "Accompaniment"
    all_notes = sorted(melody + accomp0, key=lambda n: (n.start, n.pitch))
    fixed = cadence_constraints(form, n_win, wpb)
    chords = estimate_chords(all_notes, keys, n_win, win, windows_per_bar=wpb,
                             constraints=fixed,
                             valence=[_emotion_at(emotions, w * win, segment_beats).valence for w in range(n_win)],
                             stay=[STAY + CALM_STAY * max(0.0, -_emotion_at(emotions, w * win, segment_beats).arousal)
                                   for w in range(n_win)])
    if form is not None and not form.through_composed:
        chords = _repeat_chords(list(chords), form, wpb, all_notes, bar, fixed)
    rng = np.random.default_rng(seed)

    # thin generated accompaniment notes that clash a semitone with the melody and are no chord tone
    mel_snd = _Sounding(melody)
    accomp = []
    for nt in accomp0:
        w = min(n_win - 1, int(nt.start // win))
        if nt.pitch % 12 not in chords[w].pcs:
            d = np.abs(mel_snd.pitches(nt.start, nt.start + min(nt.duration, 0.5)) - nt.pitch) % 12
            if np.any((d == 1) | (d == 11)):
                continue
        accomp.append(nt)
    snd = _Sounding(melody + accomp)
    acc_onsets = np.array(sorted({round(n.start, 3) for n in accomp if n.pitch < LEFT_HAND_SPLIT}), dtype=float)
    all_onsets = np.array(sorted({round(n.start, 3) for n in melody + accomp}), dtype=float)
    added = np.zeros(n_win, dtype=int)  # onsets added per half bar
    mel_vel = np.array([n.velocity for n in melody], dtype=float)
    mel_start = np.array([n.start for n in melody], dtype=float)
    default_vel = float(np.mean([n.velocity for n in all_notes]))

    # one pattern per phrase (per section label of the form, else per 4 bars), chosen by arousal and seeded
    if form is not None and not form.through_composed:
        phrase_starts = [sec.start_bar for sec in form.sections]
        # an exact return keeps its pattern; a varied one (A') takes its own, as a player varies the accompaniment
        phrase_names = {sec.start_bar: sec.label for sec in form.sections}
    else:
        phrase_starts = list(range(0, n_bars, 4))
        phrase_names = {b: b for b in phrase_starts}
    new_notes: list[Note] = []
    prev_bass = None
    pattern_of_phrase: dict[tuple, str] = {}
    mel_centre = float(np.median([n.pitch for n in melody])) if melody else 72.0
    voicings: list[list[int]] = []
    colours: list[int | None] = []
    tops: list[int] = []
    colour_draws = np.random.default_rng([seed, 7]).random(n_win)  # its own stream: the patterns' draws stay as they were
    for w in range(n_win):  # one voicing per half bar, the bass led by the smallest leap
        t0, t1 = w * win, (w + 1) * win
        em = _emotion_at(emotions, t0, segment_beats)
        mel_here = [n.pitch for n in melody if n.start < t1 - 1e-6 and n.end > t0 + 1e-6]
        top = min(LEFT_HAND_TOP, (min(mel_here) - MELODY_GAP) if mel_here else LEFT_HAND_TOP)
        # the bass stays within reach of the melody (a narrower span when calm)
        reach = int(round(mel_centre - BASS_BELOW_MELODY - BASS_BELOW_PER_AROUSAL * em.arousal))
        plain = max(bass_floor(em), reach)
        # an excited player who lays the bass lower reaches further under the melody too (all of
        # the style's shift from arousal REACH_FULL_AROUSAL up, none at 0 and below)
        reach += int(round(min(0, style.bass_shift) * min(1.0, max(0.0, em.arousal / REACH_FULL_AROUSAL))))
        floor = max(bass_floor(em, style.bass_shift), reach, BASS_LOWEST)
        if floor > plain:  # a player's higher bass stays an octave under the hands' top (never above the melody)
            floor = max(plain, min(floor, top - RAISED_BASS_ROOM))
        last_bar = w >= n_win - wpb  # the final tonic lands as a plain triad
        v, c = _voicing(chords[w], prev_bass, floor, top, colour=not last_bar and bool(colour_draws[w] < colour_chance(em, style.colour)))
        voicings.append(v)
        colours.append(c)
        tops.append(top)
        prev_bass = voicings[-1][0]
    for b in range(n_bars):
        t_bar = b * bar
        em = _emotion_at(emotions, t_bar, segment_beats)
        ph = phrase_names.get(max((s0 for s0 in phrase_starts if s0 <= b), default=0), 0)
        choices = tuple(patterns_for(em.arousal))
        if (ph, choices) not in pattern_of_phrase:  # a new section takes a pattern not heard yet when it can
            fresh = [c for c in choices if c not in pattern_of_phrase.values()]
            pattern_of_phrase[(ph, choices)] = str(rng.choice(fresh or list(choices)))
        name = "block" if b == n_bars - 1 else pattern_of_phrase[(ph, choices)]
        events = [(o * bar / 4.0, v) for o, v in PATTERNS[name]]
        if b == n_bars - 1:
            events = events[:1]  # the final tonic chord rings over the last bar
        for off, vs in events:
            start = t_bar + off
            w = min(n_win - 1, int(start // win))
            t0, t1 = w * win, (w + 1) * win
            while t1 < t_bar + bar - 1e-6 and int(t1 // win) < n_win and chords[int(t1 // win)] == chords[w]:
                t1 += win  # the pedal is held while the chord lasts (to the end of the bar at most)
            if b == n_bars - 1:
                t1 = t_bar + bar
            # the generated accompaniment already plays: give way on its onsets, and leave a
            # half bar alone where it is already busy (one low onset per beat or more)
            busy = acc_onsets[(acc_onsets >= t0 - 1e-6) & (acc_onsets < t0 + win - 1e-6)]
            if b < n_bars - 1 and (len(busy) >= BUSY_ONSETS_PER_BEAT * win or (len(busy) and np.any(np.abs(busy - start) < 0.1))):
                continue
            # a density budget: calm music leaves room, so a half bar already full of onsets
            # (melody and accompaniment) gets fewer new ones
            have = int(np.sum((all_onsets >= t0 - 1e-6) & (all_onsets < t0 + win - 1e-6)))
            new_onset = not np.any(np.abs(all_onsets - start) < 0.05)
            if b < n_bars - 1 and new_onset and have + added[w] >= onset_budget(em.arousal, style.busyness) * win:
                continue
            if new_onset:
                added[w] += 1
            end = t1  # each note rings while its chord lasts (the pedal below may hold it longer)
            near = (mel_start >= start - 2.0) & (mel_start < start + 2.0)
            base_vel = (float(mel_vel[near].mean()) if near.any() else default_vel) * ACCOMP_VELOCITY
            voices = voicings[w]
            for v in vs:
                p = voices[0] + 12 if v == 9 else colours[w] if v == 8 else (voices[v] if v < len(voices) else None)
                if p is None or p > tops[w]:
                    continue
                if snd.clashes(p, start, end):
                    # the same key still held from an earlier event of the pattern: strike it again
                    i = snd.restrike(p, start)
                    if i is None or snd.clashes(p, start, end):
                        if i is not None:  # something else clashes: undo
                            snd.set_end(i, new_notes[i].end)
                        continue
                    new_notes[i] = replace(new_notes[i], duration=start - new_notes[i].start)
                vel = base_vel * (1.08 if v == 0 else 1.0) + rng.integers(-4, 5)
                dur = min(end, total) - start
                if dur <= 0:
                    continue
                nt = Note(int(p), float(start), float(dur), int(max(1, min(127, round(vel)))))
                snd.add(nt)
                new_notes.append(nt)

    new_notes += _colour_notes(colours, snd, win, total, default_vel * ACCOMP_VELOCITY,
                               [n.start for n in accomp if n.pitch < LEFT_HAND_SPLIT] + [n.start for n in new_notes])
    fills = _fills(melody, chords, snd, emotions, segment_beats, bar, win, total, rng) if fill else []
    if fill:
        fills += _inner_voices(melody, chords, snd, win, total, wpb,
                               [_emotion_at(emotions, w * win, segment_beats).arousal for w in range(n_win)])
    if form is not None and not form.through_composed:
        new_notes = _repeat_sections(new_notes, melody + accomp, form, bar)
        fills = _repeat_sections(fills, melody + accomp, form, bar)

    mel_map = {n: n for n in melody}
    acc_map = {n: n for n in accomp}
    if pedal:
        changes = []
        for w in range(n_win):  # the pedal changes with the chord and at bar lines (half bars when very excited)
            a = _emotion_at(emotions, w * win, segment_beats).arousal
            if w == 0 or chords[w] != chords[w - 1] or a > PEDAL_AROUSAL or (a > BAR_PEDAL_AROUSAL and w % wpb == 0):
                changes.append(w * win)
        flat = list(melody) + fills + accomp + new_notes
        i0, i1 = len(melody), len(melody) + len(fills)
        # calm parts are legato: each note reaches at least the next onset of its part
        targets = [n.end for n in flat]
        for lo, hi in ((0, i0), (i1, len(flat))):  # the melody line; the left hand (generated and added)
            idx = [i for i in range(lo, hi) if _emotion_at(emotions, flat[i].start, segment_beats).arousal <= LEGATO_AROUSAL]
            for i, e in zip(idx, legato_ends([flat[i] for i in idx])):
                targets[i] = e
        held = sustain_pedal(flat, changes, total, min_end=targets)
        i2 = i1 + len(accomp)
        mel_map = dict(zip(melody, held[:i0]))
        acc_map = dict(zip(accomp, held[i1:i2]))
        fills, new_notes = held[i0:i1], held[i2:]
    if fill and np.random.default_rng([seed, 11]).random() < octave_share(emotions):  # this piece's melody in octaves
        fills = fills + octave_doubling([mel_map.get(n, n) for n in melody],
                                        fills + [acc_map.get(n, n) for n in accomp] + new_notes)

    tracks = []
    if mel_idx:
        for i, t in enumerate(piece.tracks):
            if i in mel_idx:
                extra = fills if i == mel_idx[0] else []
                tracks.append(replace(t, notes=sorted([mel_map.get(n, n) for n in t.notes] + extra, key=lambda n: (n.start, n.pitch))))
            elif i in acc_idx:
                mine = set(t.notes)
                own = [acc_map[n] for n in accomp if n in mine]
                extra = new_notes if i == acc_idx[0] else []
                tracks.append(replace(t, notes=sorted(own + extra, key=lambda n: (n.start, n.pitch))))
            else:
                tracks.append(t)
        if not acc_idx:
            tracks.append(Track(acc_name, piece.tracks[mel_idx[0]].program, False, sorted(new_notes, key=lambda n: (n.start, n.pitch))))
    else:
        prog = piece.tracks[0].program if piece.tracks else 0
        tracks = [Track("Melody", prog, False, sorted([mel_map[n] for n in melody] + fills, key=lambda n: (n.start, n.pitch))),
                  Track(acc_name, prog, False, sorted([acc_map[n] for n in accomp] + new_notes, key=lambda n: (n.start, n.pitch)))]
    return replace(piece, tracks=tracks)


__all__ = ["Chord", "PATTERNS", "TEXTURE_FEATURES", "add_texture", "bass_floor", "calm_threshold", "cadence_constraints",
           "decode_thresholds", "diatonic_chords", "estimate_chords", "legato_ends", "octave_doubling", "octave_share", "patterns_for",
           "sustain_pedal", "texture_features"]
