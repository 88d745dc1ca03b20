"""Cadences: every phrase of a :class:`~emomusic.form.FormPlan` ends the way the plan says.

:func:`apply_cadences` (``Piece`` + plan -> ``Piece``, pure) works on the finished piece,
after the emotion template (so the key signature in force at the phrase end, mode re-mapping
included, names the tonic). At the end of each phrase:

* ``"authentic"``: the melody's cadence note is the tonic (the tonic pitch nearest to the
  note it replaces, or to the melody note before it), held to the end of the phrase: from
  the strong beat :data:`MIN_HELD_BEATS` beats before it (beat 3 in 4/4; the rest of the
  phrase is left as generated, so a repeat stays a repeat), or a whole bar from the last
  bar's downbeat for the final cadence (of a phrase of :data:`MIN_FINAL_PHRASE_BARS` bars or more). Melody notes after it are removed, one held into it
  is cut. Under it the accompaniment sounds the tonic triad with the tonic in the bass.
* ``"half"``: the same on the dominant: the melody on the nearest dominant-chord tone
  (degree 5, 7 or 2: in minor the natural-minor v, whose 7th degree is the subtonic), held,
  over the dominant triad with the dominant in the bass.

Accompaniment notes starting under the cadence note move to the nearest chord tone; notes
held into it that do not belong to the chord are cut where it starts; missing chord tones
are added between bass and melody. The last phrase's cadence is authentic in every plan made
by :mod:`emomusic.form`, so the piece closes on the tonic chord.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

from emomusic.form import FormPlan
from emomusic.piece import KeySignature, Note, Piece, Track

MIN_HELD_BEATS = 2.0  # the cadence note lasts at least this long (half a 4/4 bar)
MIN_FINAL_PHRASE_BARS = 4  # a final phrase this long or longer closes on a whole bar (shorter: like the others)
LOWEST, HIGHEST = 21, 108  # the piano
DEFAULT_BASS = 43  # G2: where a bass is added when the accompaniment has none near the cadence
BASS_CEILING = 60  # a cadence bass lies at or under middle C ...
BASS_UNDER_MELODY = 12  # ... and at least an octave under the cadence's melody note
DEFAULT_MELODY = 72


def chord_degrees(cadence: str, mode: str) -> tuple[int, int, int]:
    """(root, third, fifth) in semitones above the tonic for the cadence's chord: the tonic
    triad (authentic) or the dominant triad (half): V in major, the natural-minor v in minor
    (its third is the subtonic, not the raised leading tone: a major V at every half cadence
    was heard as brighter and cost the sad quadrant a fifth of its accuracy, docs/compose.md)."""
    if cadence == "half":
        return (7, 10 if mode == "minor" else 11, 2)
    return (0, 3 if mode == "minor" else 4, 7)


def nearest_pitch(pitch: int, pitch_classes: Sequence[int], prefer_down: bool = True) -> int:
    """The pitch nearest to ``pitch`` whose pitch class is in ``pitch_classes`` (on the piano);
    ties go down (cadences fall) unless ``prefer_down`` is False."""
    pcs = {p % 12 for p in pitch_classes}
    pitch = min(max(int(pitch), LOWEST), HIGHEST)  # a reference off the piano searches from its edge
    for d in range(12):
        for cand in ((pitch - d, pitch + d) if prefer_down else (pitch + d, pitch - d)):
            if LOWEST <= cand <= HIGHEST and cand % 12 in pcs:
                return cand
    raise ValueError("no pitch class given")


def pitch_below(pitch: int, pitch_class: int) -> int:
    """The highest pitch of ``pitch_class`` at or below ``pitch`` (an octave up when that
    falls off the piano): where a bass note goes."""
    p = pitch - (pitch - pitch_class) % 12
    return p + 12 if p < LOWEST else p


def key_at(piece: Piece, beat: float) -> KeySignature:
    """The key signature in force at ``beat`` (C major when the piece has none)."""
    ks = [k for k in sorted(piece.keys, key=lambda k: k.beat) if k.beat <= beat + 1e-6]
    return ks[-1] if ks else (piece.keys[0] if piece.keys else KeySignature(0, "major"))


def melody_index(piece: Piece, name: str = "Melody") -> int | None:
    """The melody track: the one called ``name``, else the pitched track with the highest mean pitch."""
    pitched = [i for i, t in enumerate(piece.tracks) if not t.is_drum]
    for i in pitched:
        if piece.tracks[i].name == name:
            return i
    with_notes = [i for i in pitched if piece.tracks[i].notes]
    if not with_notes:
        return None
    return max(with_notes, key=lambda i: sum(n.pitch for n in piece.tracks[i].notes) / len(piece.tracks[i].notes))


def _cadence_onset(melody: Sequence[Note], bar0: float, end: float, final: bool) -> tuple[float, int | None]:
    """Where the cadence note starts and which melody note it is (None: a new note): on the
    downbeat of the last bar for the final cadence (held a whole bar), else on the strong beat
    :data:`MIN_HELD_BEATS` before the phrase end (the rest of the phrase is kept as it was)."""
    t0 = bar0 if final else max(bar0, end - MIN_HELD_BEATS)
    at = [i for i, n in enumerate(melody) if abs(n.start - t0) < 1e-6]
    return t0, (max(at, key=lambda i: melody[i].pitch) if at else None)


def _cadence(tracks: list[Track], mel: int | None, bar0: float, end: float, cadence: str, key: KeySignature,
             final: bool) -> None:
    """One cadence, in place on ``tracks`` (lists of notes are replaced, notes are immutable)."""
    root, third, fifth = (key.tonic + d for d in chord_degrees(cadence, key.mode))
    chord = {root % 12, third % 12, fifth % 12}
    melody_pcs = [key.tonic] if cadence == "authentic" else [root, third, fifth]
    acc = [i for i, t in enumerate(tracks) if not t.is_drum and i != mel]
    # -- melody: one held cadence note, nothing after it in the bar
    t0 = bar0
    top = None
    if mel is not None:
        notes = sorted(tracks[mel].notes, key=lambda n: (n.start, n.pitch))
        t0, idx = _cadence_onset(notes, bar0, end, final)
        if idx is None:
            before = [n for n in notes if n.start < t0 - 1e-6]
            ref = before[-1].pitch if before else (round(sum(n.pitch for n in notes) / len(notes)) if notes else DEFAULT_MELODY)
            vel = before[-1].velocity if before else (notes[0].velocity if notes else 80)
            new = Note(nearest_pitch(ref, melody_pcs), t0, end - t0, vel)
        else:
            new = replace(notes[idx], pitch=nearest_pitch(notes[idx].pitch, melody_pcs), duration=end - t0)
        kept = []
        for n in notes:
            if t0 - 1e-6 <= n.start < end - 1e-6:
                continue  # the cadence note replaces it, or it came after the cadence note
            if n.start < t0 - 1e-6 and n.end > t0 + 1e-6:
                n = replace(n, duration=t0 - n.start)
            kept.append(n)
        kept.append(new)
        kept.sort(key=lambda n: (n.start, n.pitch))
        tracks[mel] = replace(tracks[mel], notes=kept)
        top = new.pitch
    # -- accompaniment: the cadence chord under the held note
    sounding: list[tuple[int, Note]] = []  # (track, note) starting at or held over t0
    for i in acc:
        out = []
        for n in tracks[i].notes:
            if t0 - 1e-6 <= n.start < end - 1e-6:
                n = replace(n, pitch=nearest_pitch(n.pitch, chord))
            elif n.start < t0 - 1e-6 and n.end > t0 + 1e-6 and n.pitch % 12 not in chord:
                n = replace(n, duration=t0 - n.start)
            out.append(n)
        tracks[i] = replace(tracks[i], notes=_dedupe(out))
        sounding += [(i, n) for n in tracks[i].notes if n.start <= t0 + 1e-6 and n.end > t0 + 1e-6]
    if not acc:
        return
    vels = [n.velocity for _, n in sounding] or [n.velocity for i in acc for n in tracks[i].notes] or [70]
    vel = sorted(vels)[len(vels) // 2]
    # the bass: the lowest note sounding at t0 is the chord's root, held to the end (under
    # middle C and an octave under the melody's note: the accompaniment may sound only high notes)
    host = acc[-1] if not sounding else min(sounding, key=lambda x: x[1].pitch)[0]
    low = min(sounding, key=lambda x: x[1].pitch)[1] if sounding else None
    ceiling = min(BASS_CEILING, top - BASS_UNDER_MELODY) if top is not None else BASS_CEILING

    def bass_pitch(ref: int) -> int:
        return pitch_below(min(ref, max(ceiling, LOWEST + 11)), root % 12)

    if low is not None and low.start >= t0 - 1e-6:
        bass = replace(low, pitch=bass_pitch(low.pitch), duration=end - t0)
        tracks[host] = replace(tracks[host], notes=_dedupe([bass if n is low else n for n in tracks[host].notes]))
    else:
        near = [n.pitch for i in acc for n in tracks[i].notes if bar0 - 4 <= n.start < end]
        ref = min(near) if near else (low.pitch if low is not None else DEFAULT_BASS)
        bass = Note(bass_pitch(ref), t0, end - t0, vel)
        if low is not None and low.pitch % 12 != root % 12:  # a held note below would still be the bass
            tracks[host] = replace(tracks[host], notes=[replace(n, duration=t0 - n.start) if n is low else n
                                                        for n in tracks[host].notes])
        tracks[host] = replace(tracks[host], notes=_dedupe(tracks[host].notes + [bass]))
    # later notes under the cadence stay above the bass (an octave up, as often as needed)
    for i in acc:
        lifted = []
        for n in tracks[i].notes:
            if t0 + 1e-6 < n.start < end - 1e-6 and n.pitch < bass.pitch:
                n = replace(n, pitch=n.pitch + 12 * -(-(bass.pitch - n.pitch) // 12))
            lifted.append(n)
        tracks[i] = replace(tracks[i], notes=_dedupe(lifted))
    # the full chord, held to the end: missing chord tones between the bass and the melody
    held = acc + ([mel] if mel is not None else [])
    here = [n for i in held for n in tracks[i].notes if n.start <= t0 + 1e-6 and n.end >= end - 1e-6]
    have = {n.pitch % 12 for n in here}
    hi = top if top is not None else bass.pitch + 24
    added = []
    for pc in (third % 12, fifth % 12):
        if pc in have:
            continue
        mid = (bass.pitch + hi) // 2
        p = nearest_pitch(mid, [pc])
        if not bass.pitch < p < hi:
            p = nearest_pitch(bass.pitch + 7, [pc], prefer_down=False)
        added.append(Note(p, t0, end - t0, vel))
    if added:
        tracks[host] = replace(tracks[host], notes=_dedupe(tracks[host].notes + added))
    # a key held through the cadence is not struck again under it (one voice per key)
    held_pitches = {n.pitch for i in held for n in tracks[i].notes if n.start <= t0 + 1e-6 and n.end >= end - 1e-6}
    for i in acc:
        tracks[i] = replace(tracks[i], notes=[n for n in tracks[i].notes
                                              if not (t0 + 1e-6 < n.start < end - 1e-6 and n.pitch in held_pitches)])


def _dedupe(notes: Sequence[Note]) -> list[Note]:
    """Notes sorted; two on the same pitch and onset become one (the longer, louder)."""
    seen: dict[tuple[int, float], Note] = {}
    for n in notes:
        k = (n.pitch, round(n.start, 6))
        if k in seen:
            o = seen[k]
            n = replace(o, duration=max(o.duration, n.duration), velocity=max(o.velocity, n.velocity))
        seen[k] = n
    return sorted(seen.values(), key=lambda n: (n.start, n.pitch))


def apply_cadences(piece: Piece, plan: FormPlan, melody: str = "Melody") -> Piece:
    """A new piece whose phrases end on the cadences of ``plan`` (see the module doc); a
    through-composed plan (no cadences) returns an unchanged copy. Bars are the piece's
    (first) time signature; the key is the signature in force at each phrase's last bar."""
    tracks = [replace(t, notes=list(t.notes)) for t in piece.tracks]
    out = replace(piece, tracks=tracks, tempos=list(piece.tempos), keys=list(piece.keys),
                  time_signatures=list(piece.time_signatures), markers=list(piece.markers))
    if piece.is_empty():
        return out
    bar = piece.time_signature.bar_beats
    mel = melody_index(piece, melody)
    for i, s in enumerate(plan.sections):
        if s.cadence == "none":
            continue
        end = s.end_bar * bar
        bar0 = end - bar
        final = i == len(plan.sections) - 1 and s.bars >= MIN_FINAL_PHRASE_BARS
        _cadence(out.tracks, mel, bar0, end, s.cadence, key_at(piece, bar0), final=final)
    return out
