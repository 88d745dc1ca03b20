"""Passing and neighbour notes: the scale step between two melody notes a third apart, the
upper neighbour between two of the same pitch.

The VAE's melodies move mostly by chord tones: thirds and leaps, few steps. In the piano
texture the accompaniment's off-beat onsets then become the top voice between two melody
notes, so the line heard on top leaps far more and steps far less than real piano music
(``benchmarks/realism.py``: steps 8 % of the top voice's intervals against 19 % in EMOPIA,
leaps 68 % against 59 %). A pianist fills such thirds with a passing note: the held first
note gives up its second half to the scale note between the two. That adds steps to the line
and the passing dissonances (a second against the chord) real music has.

A third (3 or 4 semitones) between two consecutive melody onsets is filled when

* both are single notes (no chord in the melody at either onset) and the first one is held
  to within :data:`GRID` beats of the second (a passing note connects two notes of a line),
* the first is at least :data:`MIN_GAP` beats long, so each half keeps at least a half beat,
* exactly one note of the key's scale lies between them (major; natural minor), and
* a seeded draw falls under the chance for the emotion (:func:`passing_chance`).

Two onsets of the same pitch (a repeated note, under the same conditions) get the upper
neighbour of the scale between them, with :data:`NEIGHBOUR_SHARE` of that chance: C C
becomes C D C, the commonest ornament of a line (the VAE's top voice repeats notes more often
than EMOPIA's: 10 % of its intervals against 8 %).

Before that, a quick repeat (a single melody note of the same pitch as the single melody note
before it, at most :data:`REPEAT_GAP` beats later; the VAE's melodies restrike one key in
sixteenths and eighths) becomes the scale's upper or lower neighbour with the chance
:func:`repeat_neighbour_chance` (:func:`neighbour_repeats`): C C C C becomes C D C B. The chance
is a trait of the player (:mod:`emomusic.compose.style`): in EMOPIA's clips the share of the
top voice's intervals that repeat a note ranges from none (a third of the calm clips) to a
fifth, while every generated piece restruck keys alike (none without repeats, within a
quadrant half the real spread), one of the clearest tells of ``benchmarks/realism.py``.

The draw depends on the seed, the two pitches and the position in the bar only, so a section
that repeats its first statement note for note gets the same passing notes; with a form plan,
a varied return (a prime: A') draws afresh, as a player ornaments a returning tune another
way. Everything else (the notes, the other tracks) is left as it is.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import TYPE_CHECKING, Sequence

from emomusic.attributes import group_onsets
from emomusic.chords import key_scale
from emomusic.emotion import Emotion
from emomusic.piece import KeySignature, Note, Piece

from .cadence import key_at
from .sounding import emotion_at as _emotion_at

if TYPE_CHECKING:  # pragma: no cover
    from emomusic.form import FormPlan

MIN_GAP = 0.5  # beats from the first note's onset to the second's: each half keeps >= 1/4 beat
GRID = 0.25  # the passing note starts on this grid (beats), at the middle of the gap or after it
CHANCE_CENTRE = 0.55  # chance of filling a third at arousal 0 ...
CHANCE_PER_AROUSAL = 0.2  # ... more when excited (more motion), less when calm
NEIGHBOUR_SHARE = 0.6  # a repeated note gets its upper neighbour with this share of the passing chance
VELOCITY = 0.9  # a passing note is a little softer than the note it leaves
REPEAT_GAP = 0.5  # beats: a melody note this soon after one of its pitch is a quick repeat ...
REPEAT_NEIGHBOUR = 0.3  # ... and becomes a scale neighbour with this chance (a player style adds its own shift)
REPEAT_SALT = 99  # the quick repeats' draws beside the passing notes'
ONSET_EPS = 1e-6  # beats: notes this close start together (one onset group)


def passing_chance(emotion: Emotion, shift: float = 0.0) -> float:
    """The chance that a fillable third gets its passing note under ``emotion``; a piece's
    player style (:mod:`emomusic.compose.style`) adds ``shift`` (the chance stays within 0.2..0.9)."""
    return float(min(0.9, max(0.2, CHANCE_CENTRE + shift + CHANCE_PER_AROUSAL * emotion.arousal)))


def repeat_neighbour_chance(shift: float = 0.0) -> float:
    """The chance that a quick repeat turns into a neighbour note: :data:`REPEAT_NEIGHBOUR` plus a
    piece's player-style ``shift``, within 0..1."""
    return float(min(1.0, max(0.0, REPEAT_NEIGHBOUR + shift)))


def _draw(seed: int, a: Note, b: Note, bar_beats: float, salt: int = 0) -> float:
    """A uniform number in [0, 1) from the seed, the two pitches, the position in the bar and ``salt``."""
    key = f"{seed}|{a.pitch}|{b.pitch}|{round(a.start % bar_beats, 3)}|{round(b.start - a.start, 3)}|{salt}"
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big") / 2.0 ** 64


def scale_step_between(low: int, high: int, key: KeySignature) -> int | None:
    """The one pitch strictly between ``low`` and ``high`` that lies in ``key``'s scale (major,
    or natural minor), or None when there is none or more than one."""
    scale = key_scale(key)
    inside = [p for p in range(low + 1, high) if (p - key.tonic) % 12 in scale]
    return inside[0] if len(inside) == 1 else None


def upper_neighbour(pitch: int, key: KeySignature) -> int:
    """The next note of ``key``'s scale above ``pitch`` (major; natural minor)."""
    scale = key_scale(key)
    return next(p for p in range(pitch + 1, pitch + 13) if (p - key.tonic) % 12 in scale)


def lower_neighbour(pitch: int, key: KeySignature) -> int:
    """The next note of ``key``'s scale below ``pitch`` (major; natural minor)."""
    scale = key_scale(key)
    return next(p for p in range(pitch - 1, pitch - 13, -1) if (p - key.tonic) % 12 in scale)


def _onset_groups(notes: Sequence[Note]) -> list[list[int]]:
    """Indices of ``notes`` grouped by onset (:func:`emomusic.attributes.group_onsets`, within
    1e-6 beats: notes struck together), the groups in order of onset."""
    gid = group_onsets([n.start for n in notes], tolerance=ONSET_EPS)
    groups: list[list[int]] = [[] for _ in range(int(gid.max()) + 1 if len(notes) else 0)]
    for i in sorted(range(len(notes)), key=lambda i: (notes[i].start, notes[i].pitch)):
        groups[gid[i]].append(i)
    return groups


def _per_note(value, n: int, default) -> list:
    """``value`` given once (a scalar or key) or once per note, as a list of ``n``."""
    if value is None:
        return [default] * n
    if isinstance(value, (int, float, KeySignature)):
        return [value] * n
    return list(value)


def neighbour_repeats(notes: Sequence[Note], key: KeySignature | Sequence[KeySignature], chance: float, *, seed: int = 0,
                      bar_beats: float = 4.0, salt: Sequence[int] | None = None,
                      section: Sequence[int] | None = None) -> list[Note]:
    """``notes`` (one melody part) with quick repeats turned into neighbour notes (module doc).

    Notes are read in order of onset; a single note at most :data:`REPEAT_GAP` beats after the
    single note before it, on the same pitch (as it now sounds: in C C C C the third C follows a
    D and stays) and in the same ``section`` (one number per note, default all one: a return's
    first note is never paired with the end of the section before it, so an exact return stays
    exact), moves with probability ``chance`` to the upper or the lower neighbour of its
    ``key``'s scale (one key, or one per note), a seeded draw each (the seed, the two pitches,
    the position in the bar and the repeated note's ``salt``), unless that pitch, or a
    semitone next to it, already sounds in the part there. Onsets, lengths and velocities stay."""
    notes = list(notes)
    keys = _per_note(key, len(notes), None)
    salts = [int(x) for x in _per_note(salt, len(notes), 0)]
    sections = [int(x) for x in _per_note(section, len(notes), 0)]
    out = list(notes)
    prev: int | None = None  # the single note before, as it now sounds
    for group in _onset_groups(notes):
        i = group[0]
        n = notes[i]
        if len(group) == 1 and prev is not None and sections[prev] == sections[i] and out[prev].pitch == n.pitch \
                and n.start - out[prev].start <= REPEAT_GAP + 1e-6 \
                and _draw(seed, out[prev], n, bar_beats, REPEAT_SALT + salts[i]) < chance:
            up = _draw(seed, out[prev], n, bar_beats, -REPEAT_SALT - salts[i]) < 0.5
            p = upper_neighbour(n.pitch, keys[i]) if up else lower_neighbour(n.pitch, keys[i])
            if not any(abs(m.pitch - p) % 12 in (0, 1, 11) and m.start < n.end - 1e-6 and m.end > n.start + 1e-6
                       for j, m in enumerate(out) if j != i):
                out[i] = replace(n, pitch=p)
        prev = i if len(group) == 1 else None
    return out


def passing_tones(notes: Sequence[Note], key: KeySignature | Sequence[KeySignature], chance: float | Sequence[float],
                  *, seed: int = 0, bar_beats: float = 4.0, salt: Sequence[int] | None = None) -> list[Note]:
    """``notes`` (one melody part) with passing notes in the thirds and upper neighbours between
    repeated notes where the rules above allow.

    ``key`` is one key or one per note, ``chance`` one chance or one per note of ``notes``,
    and ``salt`` (default 0) one number per note mixed into its draw (in the order given; the
    first note of each pair decides)."""
    notes = list(notes)
    chances = [float(c) for c in _per_note(chance, len(notes), 0.0)]
    keys = _per_note(key, len(notes), None)
    salts = [int(x) for x in _per_note(salt, len(notes), 0)]
    groups = _onset_groups(notes)
    out = list(notes)
    added: list[Note] = []
    for g0, g1 in zip(groups, groups[1:]):
        if len(g0) != 1 or len(g1) != 1:
            continue
        a, b = notes[g0[0]], notes[g1[0]]
        gap = b.start - a.start
        if gap < MIN_GAP - 1e-6 or a.end < b.start - GRID - 1e-6:
            continue
        if a.pitch == b.pitch:  # a repeated note: the upper neighbour between, less often
            step = upper_neighbour(a.pitch, keys[g0[0]])
            chance_here = chances[g0[0]] * NEIGHBOUR_SHARE
        elif 3 <= abs(b.pitch - a.pitch) <= 4:
            step = scale_step_between(min(a.pitch, b.pitch), max(a.pitch, b.pitch), keys[g0[0]])
            chance_here = chances[g0[0]]
        else:
            continue
        if step is None or _draw(seed, a, b, bar_beats, salts[g0[0]]) >= chance_here:
            continue
        mid = a.start + max(GRID, round(gap / 2 / GRID) * GRID)
        if b.start - mid < GRID - 1e-6:
            continue
        out[g0[0]] = replace(a, duration=min(a.duration, mid - a.start))
        added.append(Note(step, mid, b.start - mid, max(1, min(127, int(round(a.velocity * VELOCITY))))))
    return sorted(out + added, key=lambda n: (n.start, n.pitch))


def add_passing_tones(piece: Piece, emotions: Sequence[Emotion], *, seed: int = 0, segment_beats: float = 8.0,
                      form: "FormPlan | None" = None, ornament: float = 0.0, repeats: float = 0.0) -> Piece:
    """``piece`` with :func:`neighbour_repeats`, then :func:`passing_tones`, in its melody
    track(s) (tracks named "Melody"), each note read in the key signature in force at its onset
    (C major when the piece has none); ``emotions`` gives one emotion per ``segment_beats`` beats
    (a morph) or one for all.
    With ``form``, notes in a varied return (role ``"variation"``) draw with their section's
    number as salt: they are ornamented afresh. ``ornament`` is added to every note's
    :func:`passing_chance` and ``repeats`` to the quick repeats' :func:`repeat_neighbour_chance`
    (a piece's player style)."""
    emotions = list(emotions)
    if not emotions:
        return piece
    bar = piece.time_signature.bar_beats
    sectioned = form is not None and not form.through_composed
    tracks = []
    for t in piece.tracks:
        if "melody" not in t.name.lower() or t.is_drum or len(t.notes) < 2:
            tracks.append(t)
            continue
        keys = [key_at(piece, n.start) for n in t.notes]
        sections = [form.section_at_bar(int(n.start // bar + 1e-9)) if sectioned else 0 for n in t.notes]
        salts = [i + 1 if sectioned and form.role(i) == "variation" else 0 for i in sections]
        notes = neighbour_repeats(t.notes, keys, repeat_neighbour_chance(repeats), seed=seed, bar_beats=bar, salt=salts,
                                  section=sections)
        ch = [passing_chance(_emotion_at(emotions, n.start, segment_beats), ornament) for n in notes]
        tracks.append(replace(t, notes=passing_tones(notes, keys, ch, seed=seed, bar_beats=bar, salt=salts)))
    return replace(piece, tracks=tracks)


__all__ = ["add_passing_tones", "lower_neighbour", "neighbour_repeats", "passing_chance", "passing_tones",
           "repeat_neighbour_chance", "scale_step_between", "upper_neighbour"]
