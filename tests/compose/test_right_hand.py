"""emomusic.compose.right_hand: colour tones, inner voices, the melody in octaves."""

from __future__ import annotations

import pytest

from emomusic.compose import right_hand as RH
from emomusic.compose import texture as T
from emomusic.compose.sounding import Sounding
from emomusic.emotion import Emotion
from emomusic.piece import KeySignature, Note

C_MAJOR = KeySignature(0, "major")


def test_calm_inner_voices_do_not_carry_a_ninth_into_the_final_bar():
    tonic = T.diatonic_chords(C_MAJOR)[0]
    assert tonic.degree == "I"
    melody = [Note(79, 2.0 * w, 1.5, 80) for w in range(4)]  # G5 over I for two bars (half bars 0-3)
    out = RH.inner_voices(melody, [tonic] * 4, Sounding(melody), 2.0, 8.0, 2, [-0.6] * 4)
    first = sorted((n.pitch, n.start, n.end) for n in out if n.start < 4.0)
    assert first == [(74, 0.0, 4.0), (76, 0.0, 4.0)]  # E and the ninth D, held over the first bar
    last = sorted((n.pitch, n.start, n.end) for n in out if n.start >= 4.0)
    assert last == [(72, 4.0, 8.0), (76, 4.0, 8.0)]  # struck anew as a plain triad, then held through
    lively = RH.inner_voices(melody, [tonic] * 4, Sounding(melody), 2.0, 8.0, 2, [0.5] * 4)
    assert sorted({n.start for n in lively}) == [0.0, 2.0, 4.0, 6.0]


def test_colour_tones_of_the_chords():
    by_degree = {c.degree: c for c in T.diatonic_chords(C_MAJOR)}
    assert RH.colour_tone(by_degree["V"]) == 5  # G7: F
    assert RH.colour_tone(by_degree["I"]) == 2  # Cadd9: D (Cmaj7's B would rub against C)
    assert RH.colour_tone(by_degree["IV"]) == 7  # Fadd9: G
    assert RH.colour_tone(by_degree["ii"]) == 0  # Dm7: C
    assert RH.colour_tone(by_degree["vi"]) == 7  # Am7: G
    assert RH.colour_tone(T.Chord("vii", 11, (11, 2, 5), "diminished")) is None
    assert T.colour_chance(Emotion(0.0, 0.0)) == pytest.approx(0.55)
    assert T.colour_chance(Emotion(0.0, -0.8)) == pytest.approx(0.55 + 0.35 * 0.8)  # calm: more sevenths and ninths
    assert T.colour_chance(Emotion(0.0, 0.8)) == pytest.approx(0.55 - 0.35 * 0.8)


def test_octave_share_follows_arousal():
    assert RH.octave_share([Emotion(0.5, 0.5)]) == RH.OCTAVE_SHARE
    assert RH.octave_share([Emotion(0.5, -0.25)]) == pytest.approx(RH.OCTAVE_SHARE / 2)
    assert RH.octave_share([Emotion(-0.6, -0.6)]) == 0.0
    assert RH.octave_share([Emotion(0, 1), Emotion(0, -1)]) == RH.OCTAVE_SHARE  # the piece's mean


def test_octave_doubling_under_long_notes_without_clashes():
    melody = [Note(72, 0.0, 1.0, 100), Note(74, 1.0, 0.25, 100), Note(76, 2.0, 2.0, 100), Note(55, 4.0, 1.0, 100)]
    others = [Note(63, 2.0, 1.0, 60)]  # a semitone above E4: the octave under E5 would clash
    out = RH.octave_doubling(melody, others)
    assert [(n.pitch, n.start, n.duration) for n in out] == [(60, 0.0, 1.0)]  # 74 too short, 55 -> 43 under the floor
    assert out[0].velocity == round(100 * RH.OCTAVE_VELOCITY)
    busy = RH.octave_doubling(melody, [Note(60, 0.5, 1.0, 60)])  # C4 is held already: no octave under C5
    assert [(n.pitch, n.start) for n in busy] == [(64, 2.0)]
