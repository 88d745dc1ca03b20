"""apply_cadences: Piece + FormPlan -> Piece, on hand-made pieces (no model)."""

from __future__ import annotations

import pytest

from emomusic.compose.cadence import apply_cadences, chord_degrees, key_at, nearest_pitch, pitch_below
from emomusic.form import parse_form, through_composed
from emomusic.piece import KeySignature, Note, Piece, Track


def _piece(bars: int = 8, key: KeySignature = KeySignature(2, "major")) -> Piece:
    """A wandering eighth-note melody (never on the tonic at phrase ends) over block chords
    that change every half bar, with one held note crossing each bar line."""
    mel, acc = [], []
    steps = [5, 9, 4, 11, 6, 1, 8, 3]  # pitch classes relative to nothing in particular
    for b in range(bars):
        for i in range(8):
            mel.append(Note(64 + steps[(b + i) % 8], b * 4 + i * 0.5, 0.5, 90))
        acc += [Note(41 + (b % 3), b * 4.0, 2.0, 60), Note(53 + (b % 5), b * 4.0, 2.0, 60),
                Note(46 + (b % 4), b * 4 + 2.0, 2.5 if b < bars - 1 else 2.0, 60)]
    return Piece(tracks=[Track("Melody", 0, False, mel), Track("Accompaniment", 0, False, acc)], keys=[key])


def _last_melody_note(p: Piece, end: float) -> Note:
    return [n for n in p.tracks[0].notes if n.start < end - 1e-6][-1]


def _sounding(p: Piece, beat: float) -> list[Note]:
    return [n for n in p.notes if n.start <= beat + 1e-6 and n.end > beat + 1e-6]


@pytest.mark.parametrize("key", [KeySignature(2, "major"), KeySignature(9, "minor"), KeySignature(6, "major")])
def test_every_phrase_ends_on_its_cadence(key):
    src = _piece(8, key)
    plan = parse_form("AABA", 8)  # phrases of 2 bars: half, authentic, half, authentic
    assert [s.cadence for s in plan.sections] == ["half", "authentic", "half", "authentic"]
    out = apply_cadences(src, plan)
    out.validate()
    root, third, fifth = (key.tonic + d for d in chord_degrees("authentic", key.mode))
    dom = {(key.tonic + d) % 12 for d in chord_degrees("half", key.mode)}
    assert dom == {(key.tonic + d) % 12 for d in ((7, 10, 2) if key.mode == "minor" else (7, 11, 2))}
    for s in plan.sections:
        end = s.end_bar * 4.0
        last = _last_melody_note(out, end)
        assert last.end == pytest.approx(end) and last.duration >= 2.0
        pc = (last.pitch - key.tonic) % 12
        if s.cadence == "authentic":
            assert pc == 0
        else:
            assert last.pitch % 12 in dom
        under = _sounding(out, last.start)
        chord = {root % 12, third % 12, fifth % 12} if s.cadence == "authentic" else dom
        assert {n.pitch % 12 for n in under} == chord  # the full chord, nothing else
        bass = min(under, key=lambda n: n.pitch)
        assert bass.pitch % 12 == (key.tonic if s.cadence == "authentic" else key.tonic + 7) % 12
    # the melody stays monophonic and nothing else moved before the cadences
    mel = out.tracks[0].notes
    assert all(a.end <= b.start + 1e-6 for a, b in zip(mel, mel[1:]))
    assert [n for n in mel if n.start < 2.0] == [n for n in src.tracks[0].notes if n.start < 2.0]
    # cadences of 2-bar phrases start on beat 3 of the last bar, the final one too
    assert _last_melody_note(out, 32.0).start == 30.0 and _last_melody_note(out, 8.0).start == 6.0
    # the input piece is left as it was
    assert src.tracks[0].notes == _piece(8, key).tracks[0].notes


def test_tonic_is_the_nearest_and_the_key_in_force_is_used():
    mel = [Note(70, 0, 6), Note(72, 6, 2), Note(64, 8, 4), Note(66, 12, 1), Note(69, 13, 3)]
    p = Piece(tracks=[Track("Melody", 0, False, mel), Track("Accompaniment", 0, False, [Note(40, 0, 16)])],
              keys=[KeySignature(0, "major", 0.0), KeySignature(7, "major", 8.0)])
    out = apply_cadences(p, parse_form("AA", 4))  # half cadence in C at beat 6, authentic in G at beat 14
    got = [(n.pitch, n.start, n.duration) for n in out.tracks[0].notes]
    # C5 -> B4 (V of C); nothing starts on beat 14: A4 held into it is cut, a G4 (the nearest) follows
    assert got == [(70, 0, 6), (71, 6, 2), (64, 8, 4), (66, 12, 1), (69, 13, 1), (67, 14, 2)]
    assert key_at(p, 12.0).tonic == 7
    acc = out.tracks[1].notes  # the E2 held through both cadences is cut, then each cadence has its bass
    assert acc[0] == Note(40, 0, 6) and min((n for n in acc if n.start == 14), key=lambda n: n.pitch).pitch % 12 == 7
    # a melody with nothing on the cadence beat gets a new held note near its last pitch
    q = Piece(tracks=[Track("Melody", 0, False, [Note(76, 0, 1)]), Track("Accompaniment", 0, False, [])],
              keys=[KeySignature(0, "major")])
    (last,) = [n for n in apply_cadences(q, parse_form("A", 2)).tracks[0].notes if n.start > 0]
    assert (last.pitch, last.start, last.duration) == (72, 6.0, 2.0)  # a 2-bar piece: from beat 3


def test_through_composed_plan_changes_nothing():
    src = _piece(4)
    out = apply_cadences(src, through_composed(4))
    assert out.tracks[0].notes == src.tracks[0].notes and out.tracks[1].notes == src.tracks[1].notes
    assert out is not src


def test_helpers():
    assert nearest_pitch(61, [0]) == 60 and nearest_pitch(66, [0]) == 60 and nearest_pitch(66, [0], prefer_down=False) == 72
    assert nearest_pitch(107, [11]) == 107 and nearest_pitch(21, [0]) == 24
    assert pitch_below(50, 7) == 43 and pitch_below(23, 0) == 24
    # a reference off the piano searches from its edge (it raised "no pitch class given" before)
    assert nearest_pitch(109, [1], prefer_down=False) == 97 and nearest_pitch(125, [0]) == 108
    assert nearest_pitch(5, [2]) == 26
    with pytest.raises(ValueError):
        nearest_pitch(60, [])


def test_cadence_bass_goes_under_the_melody_when_the_accompaniment_plays_only_high_notes():
    # found in compose output (seed 300, Q2, n=25): at a half cadence in B minor the accompaniment
    # sounded only notes above the melody; the bass went to 102 and the chord search off the piano
    key = KeySignature(11, "minor")
    mel = [Note(74, b * 4.0 + i, 1.0, 90) for b in range(4) for i in range(4)]
    acc = [Note(95, b * 4.0, 4.0, 60) for b in range(4)]  # B6 held in every bar, over the melody
    src = Piece(tracks=[Track("Melody", 0, False, mel), Track("Accompaniment", 0, False, acc)], keys=[key])
    out = apply_cadences(src, parse_form("AB", 4))  # a half cadence (bar 2) and an authentic one (bar 4)
    out.validate()
    for end, cadence in ((8.0, "half"), (16.0, "authentic")):
        last = _last_melody_note(out, end)
        under = [n for n in _sounding(out, last.start) if n.pitch < last.pitch]
        bass = min(under, key=lambda n: n.pitch)
        assert bass.pitch <= min(60, last.pitch - 12)  # under middle C, an octave under the melody
        assert bass.pitch % 12 == (key.tonic + (7 if cadence == "half" else 0)) % 12
        assert bass.end == pytest.approx(end)
        chord = {(key.tonic + d) % 12 for d in chord_degrees(cadence, "minor")}
        assert {n.pitch % 12 for n in under + [last]} == chord  # the full chord from the bass to the melody
    assert chord_degrees("half", "minor") == (7, 10, 2) and chord_degrees("half", "major") == (7, 11, 2) and chord_degrees("authentic", "minor") == (0, 3, 7)


def test_short_final_phrase_keeps_its_last_bar_mostly():
    mel = [Note(62 + i % 3, i * 1.0, 1.0) for i in range(8)]
    p = Piece(tracks=[Track("Melody", 0, False, mel), Track("Accompaniment", 0, False, [Note(48, 0, 8)])],
              keys=[KeySignature(0, "major")])
    out = apply_cadences(p, parse_form("A", 2))  # a 2-bar piece: the cadence from beat 3 of bar 2
    assert out.tracks[0].notes[:6] == mel[:6] and out.tracks[0].notes[-1] == Note(60, 6.0, 2.0, 80)
    long = apply_cadences(_piece(4), parse_form("A", 4))  # a 4-bar final phrase closes on a whole bar
    assert _last_melody_note(long, 16.0).start == 12.0


def test_held_cadence_keys_are_not_struck_again():
    mel = [Note(67, 0, 4), Note(64, 4, 4)]
    acc = [Note(48, 4, 1), Note(48, 6, 0.5), Note(55, 7, 0.5), Note(43, 7.5, 0.5)]
    p = Piece(tracks=[Track("Melody", 0, False, mel), Track("Accompaniment", 0, False, acc)], keys=[KeySignature(0, "major")])
    out = apply_cadences(p, parse_form("A", 2))  # authentic from beat 6: C3 bass held 6..8
    bass = [n for n in out.tracks[1].notes if n.start == 6.0 and n.pitch == 48]
    assert bass and bass[0].end == 8.0
    held = {n.pitch for n in out.notes if n.start <= 6.0 and n.end >= 8.0}
    assert not [n for n in out.tracks[1].notes if 6.0 < n.start < 8.0 and n.pitch in held]
    assert min(n.pitch for n in out.notes if n.end >= 8.0) % 12 == 0  # the lowest sound at the end is the tonic
