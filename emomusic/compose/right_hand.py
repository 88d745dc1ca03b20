"""The right hand of the piano texture: what a pianist plays with the melody.

Chord tones under strong-beat melody notes (:func:`fills`), the chord's inner voices held
under each half bar's first melody note (:func:`inner_voices`), with the chord's seventh or
ninth (:func:`colour_tone`), and in some pieces the melody doubled an octave under
(:func:`octave_doubling`, :func:`octave_share`). Nothing added sounds a semitone against a note
already sounding (:class:`~emomusic.compose.sounding.Sounding`). :func:`emomusic.compose.texture.add_texture`
calls these after the left hand.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

import numpy as np

from emomusic.chords import Chord
from emomusic.emotion import Emotion
from emomusic.piece import Note

from .sounding import Sounding, emotion_at

FILL_VELOCITY = 0.85  # right-hand fill velocity / melody velocity
LEGATO_AROUSAL = 0.0  # up to this arousal each part is played legato
FILL_CENTRE = 0.75  # chance of a right-hand chord tone under a strong-beat melody note at arousal 0 ...
FILL_PER_AROUSAL = 0.3  # ... higher when excited (fuller chords), lower when calm
INNER_VOICES = 2  # right-hand chord tones (or the chord's seventh / ninth) held under each half bar's first melody note ...
INNER_REACH = 1.0  # ... when that note starts within this many beats of the half bar's start ...
INNER_FLOOR = 55  # ... at or above G3 ...
INNER_VELOCITY = 0.75  # ... this much softer than the melody note
OCTAVE_SHARE = 0.4  # share of pieces (drawn with the seed) whose right hand doubles the melody an octave under ...
OCTAVE_MIN_BEATS = 0.5  # ... on its notes this long or longer ...
OCTAVE_FLOOR = 48  # ... not under C3 ...
OCTAVE_VELOCITY = 0.8  # ... and softer than the melody


def colour_tone(chord: Chord) -> int | None:
    """The pitch class a pianist adds to ``chord``'s triad: the minor seventh over the dominant
    (V7) and over minor chords (ii7, vi7, i7 ...), the ninth over the other major chords (add9:
    a major seventh would rub a semitone against the root); None for a diminished chord."""
    if chord.quality == "diminished":
        return None
    if chord.quality == "minor" or chord.degree == "V":
        return (chord.root + 10) % 12
    return (chord.root + 2) % 12


def fills(melody: Sequence[Note], chords: Sequence[Chord], snd: Sounding, emotions: Sequence[Emotion],
           segment_beats: float, bar: float, win: float, total: float, rng: np.random.Generator) -> list[Note]:
    """Right hand: the closest chord tone a third to a sixth under melody notes on strong beats
    (every beat when excited, beats 1 and 3 otherwise), more often the higher the arousal."""
    out: list[Note] = []
    for nt in melody:
        em = emotion_at(emotions, nt.start, segment_beats)
        pos = nt.start % bar
        on_beat = abs(pos - round(pos)) < 1e-3
        strong = on_beat and (em.arousal > 0.3 or round(pos) % 2 == 0)
        if not strong or nt.duration < 0.45 or nt.start >= total:
            continue
        if rng.random() > min(1.0, max(0.0, FILL_CENTRE + FILL_PER_AROUSAL * em.arousal)):
            continue
        w = min(len(chords) - 1, int(nt.start // win))
        for p in (nt.pitch - d for d in range(3, 10) if (nt.pitch - d) % 12 in chords[w].pcs):
            if not snd.clashes(p, nt.start, nt.start + nt.duration):
                f = Note(int(p), nt.start, nt.duration, int(max(1, min(127, round(nt.velocity * FILL_VELOCITY)))))
                snd.add(f)
                out.append(f)
                break
    return out


def inner_voices(melody: Sequence[Note], chords: Sequence[Chord], snd: Sounding, win: float, total: float,
                  wpb: int, arousal: Sequence[float]) -> list[Note]:
    """Right hand: the inner voices of each half bar's chord. Under the first melody note struck
    within :data:`INNER_REACH` beats of the half bar's start, up to :data:`INNER_VOICES` notes
    of the chord (its triad, or its :func:`colour_tone`: a pianist voices the right hand with
    sevenths and ninths) from a minor third under the lowest melody note sounding with it down
    to an octave under it (not under :data:`INNER_FLOOR`), each struck with the melody note and held to the half bar's end,
    where they clash a semitone with nothing. EMOPIA's piano clips sound 3-4 notes at once above
    middle C (melody and chord); the VAE's melody alone about 2. The last bar's chord is a plain
    triad (the final tonic; ``wpb`` half bars per bar). ``arousal`` (one value per half bar):
    in a calm half bar (:data:`LEGATO_AROUSAL` or less) whose chord goes on from the one before,
    the inner voices already held ring on to its end instead of being struck again (calm music
    keeps the sound, not the pulse)."""
    out: list[Note] = []
    starts = np.array([n.start for n in melody], dtype=float)
    order = np.argsort(starts, kind="stable")
    held: list[tuple[int, int]] = []  # the last half bar's inner voices: (index in out, index in snd)
    for w, chord in enumerate(chords):
        t0, t1 = w * win, min((w + 1) * win, total)
        if t1 <= t0:
            continue
        final = w >= len(chords) - wpb  # the last bar: a plain triad ...
        enters_final = w == len(chords) - wpb  # ... struck anew (no seventh or ninth held into it)
        if arousal[w] <= LEGATO_AROUSAL and w > 0 and chord == chords[w - 1] and held and not enters_final:
            kept = []
            for k, j in held:
                nt = out[k]
                if abs(nt.end - t0) < 1e-6 and not snd.clashes(nt.pitch, t0, t1):
                    out[k] = replace(nt, duration=t1 - nt.start)
                    snd.set_end(j, t1)
                    kept.append((k, j))
            if kept:
                held = kept
                continue
        held = []
        here = [melody[i] for i in order if t0 - 1e-6 <= starts[i] < min(t0 + INNER_REACH, t1) - 1e-6]
        if not here:
            continue
        lead = here[0]
        low = min([n.pitch for n in melody if n.start < t1 - 1e-6 and n.end > lead.start + 1e-6] + [lead.pitch])
        colour = colour_tone(chord) if not final else None
        pcs = set(chord.pcs) | ({colour} if colour is not None else set())
        got = 0
        for p in range(low - 3, max(INNER_FLOOR, low - 12) - 1, -1):  # within the octave under the melody
            if p % 12 not in pcs or snd.clashes(p, lead.start, t1):
                continue
            nt = Note(int(p), lead.start, t1 - lead.start, int(max(1, min(127, round(lead.velocity * INNER_VELOCITY)))))
            held.append((len(out), snd.add(nt)))
            out.append(nt)
            got += 1
            if got >= INNER_VOICES:
                break
    return out


def calm_fade(arousal: float) -> float:
    """1 at arousal 0 and above, falling linearly to 0 at arousal -0.5 and below: how much of a
    fuller right hand a piece gets (more notes made the calm pieces read as excited without
    their velocities)."""
    return min(1.0, max(0.0, 1.0 + 2.0 * float(arousal)))


def octave_share(emotions: Sequence[Emotion]) -> float:
    """The chance that a piece's right hand doubles its melody in octaves (:func:`octave_doubling`):
    :data:`OCTAVE_SHARE` at a mean arousal of 0 and above, less when calmer, never from -0.5
    down (the extra notes made a fifth of the Q3 pieces read as excited without their velocities)."""
    a = float(np.mean([e.arousal for e in emotions])) if emotions else 0.0
    return OCTAVE_SHARE * calm_fade(a)


def octave_doubling(melody: Sequence[Note], others: Sequence[Note]) -> list[Note]:
    """The melody doubled an octave under, as a pianist's right hand plays a tune in octaves:
    each melody note of :data:`OCTAVE_MIN_BEATS` or longer gets its lower octave (at or above
    :data:`OCTAVE_FLOOR`, :data:`OCTAVE_VELOCITY` as loud) unless that key is already
    sounding or it would clash a semitone with anything sounding then (``others``: every
    other note of the piece)."""
    snd = Sounding(list(melody) + list(others))
    out = []
    for nt in melody:
        p = nt.pitch - 12
        if nt.duration < OCTAVE_MIN_BEATS - 1e-6 or p < OCTAVE_FLOOR or snd.clashes(p, nt.start, nt.end):
            continue
        d = Note(int(p), nt.start, nt.duration, int(max(1, min(127, round(nt.velocity * OCTAVE_VELOCITY)))))
        snd.add(d)
        out.append(d)
    return out


__all__ = ["calm_fade", "colour_tone", "fills", "inner_voices", "octave_doubling", "octave_share"]
