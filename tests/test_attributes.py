"""Attribute template (emotion -> attributes), measurement (piece -> attributes), post-hoc controls."""

from __future__ import annotations

import math
from dataclasses import fields, replace

import numpy as np
import pytest

from helpers import chord_piece

from emomusic.attributes import (
    CONTROLS,
    FEATURE_NAMES,
    KK_MAJOR,
    KK_MINOR,
    Attributes,
    apply_template,
    effective_tempo,
    estimate_key,
    features_vector,
    group_onsets,
    key_correlations,
    measure,
    template,
)
from emomusic.emotion import Emotion
from emomusic.errors import EmomusicError, PieceFormatError
from emomusic.piece import KeySignature, Note, Piece, Tempo, Track

NUMERIC = [
    "tempo_bpm", "register", "pitch_spread", "note_density", "velocity", "articulation", "major_prob",
    "onset_density",
]
# Largest change allowed between grid neighbours 0.05 apart (about 1/8 of each range).
MAX_STEP = {
    "tempo_bpm": 6.0, "register": 0.6, "pitch_spread": 0.2, "note_density": 0.1, "velocity": 2.0,
    "articulation": 0.02, "major_prob": 0.07, "onset_density": 0.1,
}
QUADRANT_SIGNS = {"Q1": (1, 1), "Q2": (-1, 1), "Q3": (-1, -1), "Q4": (1, -1)}


def grid(q: str, step: float = 0.05) -> list[list[Emotion]]:
    sv, sa = QUADRANT_SIGNS[q]
    vals = np.arange(0.0, 1.0 + 1e-9, step)
    vals[0] = 1e-6  # stay strictly inside the quadrant
    return [[Emotion(sv * v, sa * a) for a in vals] for v in vals]


# -- template --------------------------------------------------------------------------------


@pytest.mark.parametrize("q", ["Q1", "Q2", "Q3", "Q4"])
def test_template_is_continuous_inside_each_quadrant(q):
    g = [[template(e) for e in row] for row in grid(q)]
    for i in range(len(g)):
        for j in range(len(g)):
            here = g[i][j]
            assert here.mode == g[0][0].mode and here.key_tonic == g[0][0].key_tonic
            assert here.octave_shift == g[0][0].octave_shift
            for di, dj in ((1, 0), (0, 1)):
                if i + di < len(g) and j + dj < len(g):
                    nxt = g[i + di][j + dj]
                    for f in NUMERIC:
                        step = abs(getattr(nxt, f) - getattr(here, f))
                        assert step <= MAX_STEP[f], (q, f, i, j, step)


def test_numeric_attributes_are_continuous_across_quadrant_borders():
    for f in NUMERIC:
        for a in (-0.7, 0.0, 0.7):
            left, right = template(Emotion(-1e-4, a)), template(Emotion(1e-4, a))
            assert abs(getattr(left, f) - getattr(right, f)) < 0.01 * max(1.0, abs(getattr(right, f)))
        for v in (-0.7, 0.7):
            lo, hi = template(Emotion(v, -1e-4)), template(Emotion(v, 1e-4))
            assert abs(getattr(lo, f) - getattr(hi, f)) < 0.01 * max(1.0, abs(getattr(hi, f)))


def test_mode_flips_only_at_valence_zero_and_is_graded():
    vs = np.linspace(-1, 1, 41)
    probs = [template(Emotion(v, 0.3)).major_prob for v in vs]
    assert all(b > a for a, b in zip(probs, probs[1:]))
    assert template(Emotion(0.0, 0.3)).major_prob == pytest.approx(0.5)
    assert template(Emotion(0.0, 0.3)).mode_strength == pytest.approx(0.0)
    for v in vs:
        t = template(Emotion(v, 0.3))
        assert t.mode == ("major" if v >= 0 else "minor")
        assert (t.major_prob > 0.5) == (v > 0) or v == 0
        assert t.mode_strength == pytest.approx(abs(2 * t.major_prob - 1))
    assert template(Emotion(0.9, 0)).mode_strength > 0.95


@pytest.mark.parametrize("v", [-0.9, -0.3, 0.3, 0.9])
def test_arousal_raises_tempo_loudness_density_spread(v):
    ts = [template(Emotion(v, a)) for a in np.linspace(-1, 1, 21)]
    for f in ("tempo_bpm", "velocity", "note_density", "onset_density", "pitch_spread"):
        vals = [getattr(t, f) for t in ts]
        assert all(b > a for a, b in zip(vals, vals[1:])), f
    arts = [t.articulation for t in ts]
    assert all(b < a for a, b in zip(arts, arts[1:])), "higher arousal must be more detached"


def test_valence_raises_register_and_picks_major():
    regs = [template(Emotion(v, 0.2)).register for v in np.linspace(-1, 1, 21)]
    assert all(b > a for a, b in zip(regs, regs[1:]))
    assert template(Emotion(0.5, 0.5)).mode == "major" and template(Emotion(0.5, -0.5)).mode == "major"
    assert template(Emotion(-0.5, 0.5)).mode == "minor" and template(Emotion(-0.5, -0.5)).mode == "minor"


def test_template_ranges_and_published_anchor_ordering():
    for v in np.linspace(-1, 1, 9):
        for a in np.linspace(-1, 1, 9):
            t = template(Emotion(v, a))
            assert 45 <= t.tempo_bpm <= 170
            assert 1 <= t.velocity <= 127
            assert 0.5 <= t.articulation <= 1.0 + 1e-9
            assert 0 <= t.key_tonic < 12 and t.octave_shift in (0, -12)
            assert 48 <= t.register <= 80 and t.pitch_spread > 0 and t.note_density > 0
    q = {k: template(Emotion.from_quadrant(k)) for k in ("Q1", "Q2", "Q3", "Q4")}
    # EMelodyGen's anchor: high-arousal quadrants far faster than low-arousal ones; Q2/Q3 lower.
    assert min(q["Q1"].tempo_bpm, q["Q2"].tempo_bpm) > 1.6 * max(q["Q3"].tempo_bpm, q["Q4"].tempo_bpm)
    assert q["Q3"].tempo_bpm < 70 and q["Q4"].tempo_bpm < 80
    assert q["Q2"].octave_shift < 0 and q["Q3"].octave_shift < 0 and q["Q1"].octave_shift == 0
    assert q["Q2"].velocity > q["Q3"].velocity and q["Q1"].velocity > q["Q4"].velocity
    assert q["Q3"].tempo_bpm == min(x.tempo_bpm for x in q.values())


def test_template_rejects_non_emotions():
    with pytest.raises(EmomusicError):
        template((0.5, 0.5))


def test_attributes_dict_round_trip_and_validation():
    t = template(Emotion(-0.4, 0.7))
    d = t.to_dict()
    assert d["key"] == "A minor" and d["mode"] == "minor"
    back = Attributes.from_dict(d)
    for f in fields(Attributes):
        assert getattr(back, f.name) == pytest.approx(getattr(t, f.name), abs=1e-3), f.name
    with pytest.raises(EmomusicError):
        Attributes.from_dict({**d, "mode": "dorian"})
    with pytest.raises(EmomusicError):
        Attributes.from_dict({"tempo_bpm": 100})
    with pytest.raises(EmomusicError):
        Attributes.from_dict([1, 2])


def test_features_vector_matches_names():
    x = features_vector(template(Emotion(0.3, 0.3)))
    assert x.shape == (len(FEATURE_NAMES),) and np.all(np.isfinite(x))
    hi, lo = features_vector(template(Emotion(0.3, 0.9))), features_vector(template(Emotion(0.3, -0.9)))
    assert hi[FEATURE_NAMES.index("log_tempo")] > lo[FEATURE_NAMES.index("log_tempo")]


# -- measurement ------------------------------------------------------------------------------

C_MAJOR_SCALE = [60, 62, 64, 65, 67, 69, 71, 72]


@pytest.mark.parametrize("tonic", [0, 2, 7, 9])
@pytest.mark.parametrize("minor", [False, True])
def test_measure_finds_key_and_mode(tonic, minor):
    m = measure(chord_piece(tonic, minor))
    assert m.key_tonic == tonic and m.mode == ("minor" if minor else "major")
    assert (m.major_prob < 0.5) == minor and m.key_confidence > 0.6


def test_key_profiles_recover_all_24_keys():
    for tonic in range(12):
        for mode, prof in (("major", KK_MAJOR), ("minor", KK_MINOR)):
            r = key_correlations(np.roll(prof, tonic))
            m, t = np.unravel_index(np.argmax(r), r.shape)
            assert (t, ("major", "minor")[m]) == (tonic, mode)
            assert r.max() == pytest.approx(1.0)
    assert np.all(key_correlations(np.ones(12)) == 0)


def test_estimate_key_weights_by_duration():
    # A long A-C-E under short G-B-D notes reads as A minor, not G major.
    notes = [Note(57, 0, 8, 80), Note(60, 0, 8, 80), Note(64, 0, 8, 80)]
    notes += [Note(p, 8 + 0.25 * i, 0.25, 80) for i, p in enumerate([67, 71, 74])]
    tonic, mode, pmaj, _ = estimate_key(notes)
    assert (tonic, mode) == (9, "minor") and pmaj < 0.5


def test_measure_tempo_density_velocity_register_spread():
    notes = [Note(60 + (i % 2) * 4, i * 0.5, 0.5, 40 + 20 * (i % 2)) for i in range(16)]  # 8 beats
    p = Piece(tracks=[Track("A", 0, False, notes)], tempos=[Tempo(90.0)])
    m = measure(p)
    assert m.tempo_bpm == pytest.approx(90.0)
    assert m.note_density == pytest.approx(2.0) and m.onset_density == pytest.approx(2.0)
    assert m.velocity == pytest.approx(50.0)
    assert m.register == pytest.approx(62.0) and m.pitch_spread == pytest.approx(2.0)
    assert m.pitch_range == 4 and m.polyphony == pytest.approx(1.0)
    assert m.articulation == pytest.approx(1.0)
    assert m.notes_per_second == pytest.approx(2.0 * 90 / 60)


def test_measure_tempo_map_is_effective_tempo():
    notes = [Note(60, float(i), 1.0, 80) for i in range(16)]
    p = Piece(tracks=[Track("A", 0, False, notes)], tempos=[Tempo(60.0, 0.0), Tempo(120.0, 8.0)])
    # 8 beats at 60 (8 s) + 8 beats at 120 (4 s): 16 beats in 12 s = 80 BPM.
    assert measure(p).tempo_bpm == pytest.approx(80.0)
    assert effective_tempo(p, 8.0, 16.0) == pytest.approx(120.0)


def test_measure_articulation_polyphony_chords_and_drums():
    stacc = [Note(60, float(i), 0.5, 80) for i in range(8)]
    assert measure(Piece(tracks=[Track("A", 0, False, stacc)])).articulation == pytest.approx(0.5)
    chords = [Note(p, float(i), 1.0, 80) for i in range(8) for p in (60, 64, 67)]
    drums = [Note(36, i * 0.25, 0.1, 127) for i in range(32)]
    m = measure(Piece(tracks=[Track("A", 0, False, chords), Track("Kit", 0, True, drums)]))
    assert m.polyphony == pytest.approx(3.0)
    assert m.note_density == pytest.approx(3.0) and m.onset_density == pytest.approx(1.0)
    assert m.velocity == pytest.approx(80.0) and m.register == pytest.approx(191 / 3)
    rolled = [Note(60 + k * 4, i + 0.01 * k, 1.0, 80) for i in range(8) for k in range(3)]
    assert measure(Piece(tracks=[Track("A", 0, False, rolled)])).onset_density == pytest.approx(8 / 8.02)


def test_group_onsets():
    g = group_onsets(np.array([1.0, 0.0, 0.02, 2.0, 1.01]))
    assert list(g) == [1, 0, 0, 2, 1]
    assert group_onsets(np.array([])).size == 0


def test_measure_rejects_empty_pieces():
    with pytest.raises(PieceFormatError):
        measure(Piece(tracks=[]))
    with pytest.raises(PieceFormatError):
        measure(Piece(tracks=[Track("Kit", 0, True, [Note(36, 0, 1, 100)])]))


def test_measure_transposition_moves_key_and_register(piano_piece):
    a, b = measure(piano_piece), measure(piano_piece.transposed(5))
    assert b.key_tonic == (a.key_tonic + 5) % 12 and b.mode == a.mode
    assert b.register == pytest.approx(a.register + 5)
    assert b.pitch_spread == pytest.approx(a.pitch_spread)


# -- post-hoc controls ------------------------------------------------------------------------


def _dist(m, t):
    return {
        "tempo": abs(math.log(m.tempo_bpm / t.tempo_bpm)),
        "velocity": abs(m.velocity - t.velocity),
        "register": abs(m.register - t.register),
        "articulation": abs(m.articulation - t.articulation),
    }


@pytest.mark.parametrize("q", ["Q1", "Q2", "Q3", "Q4"])
def test_apply_template_moves_measured_attributes_toward_template(piano_piece, q):
    emo = Emotion.from_quadrant(q)
    target = template(emo)
    before = _dist(measure(piano_piece), target)
    out = apply_template(piano_piece, emo, controls=CONTROLS)
    after = _dist(measure(out), target)
    assert after["tempo"] < 1e-3  # tempo is set exactly
    assert after["velocity"] < 1.0
    assert after["register"] <= 6.0 and after["register"] <= before["register"] + 1e-9
    assert after["articulation"] <= before["articulation"] + 1e-9
    assert measure(out).key_tonic == measure(piano_piece).key_tonic  # octave shifts keep the key


def test_apply_template_strength_and_purity(piano_piece):
    original = [list(t.notes) for t in piano_piece.tracks]
    tempos = list(piano_piece.tempos)
    emo = Emotion(-0.8, -0.8)
    same = apply_template(piano_piece, emo, strength=0.0)
    assert [t.notes for t in same.tracks] == original and same.tempos == tempos
    half = apply_template(piano_piece, emo, controls=("tempo", "velocity"), strength=0.5)
    full = apply_template(piano_piece, emo, controls=("tempo", "velocity"), strength=1.0)
    m0, mh, mf = measure(piano_piece), measure(half), measure(full)
    assert mf.tempo_bpm < mh.tempo_bpm < m0.tempo_bpm
    assert mf.velocity < mh.velocity < m0.velocity
    assert mh.tempo_bpm == pytest.approx(math.sqrt(m0.tempo_bpm * mf.tempo_bpm), rel=1e-3)
    # the input piece is untouched
    assert [t.notes for t in piano_piece.tracks] == original and piano_piece.tempos == tempos
    # only the requested controls act
    assert [n.pitch for n in full.notes] == [n.pitch for n in piano_piece.notes]


def test_apply_template_keeps_relative_tempo_changes_and_piano_range():
    notes = [Note(100 + (i % 5), float(i), 1.0, 120) for i in range(16)]
    p = Piece(tracks=[Track("A", 0, False, notes)], tempos=[Tempo(100.0), Tempo(50.0, 8.0)], keys=[KeySignature(4, "major")])
    out = apply_template(p, Emotion(0.9, 0.9))
    assert out.tempos[1].bpm / out.tempos[0].bpm == pytest.approx(0.5, rel=1e-3)
    assert max(n.pitch for n in out.notes) <= 108
    assert all(1 <= n.velocity <= 127 for n in out.notes)
    out.validate()


def test_apply_template_rejects_bad_controls():
    p = chord_piece(0, False)
    with pytest.raises(EmomusicError, match="unknown template control"):
        apply_template(p, Emotion(0, 0), controls=("tempo", "timbre"))
    with pytest.raises(EmomusicError, match="strength"):
        apply_template(p, Emotion(0, 0), strength=1.5)
    with pytest.raises(EmomusicError):
        apply_template(p, (0.1, 0.2))
    assert measure(apply_template(p, Emotion(0.9, 0.9), controls="tempo")).tempo_bpm == pytest.approx(
        template(Emotion(0.9, 0.9)).tempo_bpm, rel=1e-3
    )


# -- hand-computed values (each number below is worked out from the documented formulas, not
#    by calling the code under test) ----------------------------------------------------------
def test_template_numbers_at_two_points():
    from emomusic.attributes import template as tpl

    t = tpl(Emotion(0.5, 0.5))
    # 96 * 2**(0.75 * 0.5) - 6 * 0.25
    assert t.tempo_bpm == pytest.approx(96 * 2 ** 0.375 - 1.5)
    assert t.register == pytest.approx(64 + 2.5 + 0.75)
    assert t.pitch_spread == pytest.approx(4.5 + 1.0)
    assert t.note_density == pytest.approx(1.6 + 0.4) and t.onset_density == pytest.approx(2.0)
    assert t.velocity == pytest.approx(72 + 14 - 1.0)
    assert t.articulation == pytest.approx(0.85 - 0.06 - 0.015)
    assert t.major_prob == pytest.approx(1 / (1 + math.exp(-2.5)))
    assert t.mode_strength == pytest.approx(2 / (1 + math.exp(-2.5)) - 1)
    assert (t.mode, t.key_tonic, t.octave_shift) == ("major", 0, 0)
    assert t.pitch_range == 22.0 and t.polyphony == 1.0 and t.key_confidence == 1.0
    s = tpl(Emotion(-0.4, -1.0))
    assert s.tempo_bpm == pytest.approx(96 * 2 ** -0.75 - 2.4)
    assert s.register == pytest.approx(64 - 2.0 - 1.5)
    assert s.velocity == pytest.approx(72 - 28 - 1.6)
    assert s.articulation == pytest.approx(0.85 + 0.12 + 0.012)
    assert (s.mode, s.key_tonic, s.octave_shift) == ("minor", 9, -12)
    assert s.pitch_range == float(round(4 * 2.5))
    assert tpl(Emotion(0.0, 0.0)).mode == "major" and tpl(Emotion(0.0, 0.0)).mode_strength == pytest.approx(0.0)


def test_template_valence_terms_point_the_documented_way():
    from emomusic.attributes import template as tpl

    happy, angry, sad, calm = (tpl(Emotion(v, a)) for v, a in [(0.8, 0.8), (-0.8, 0.8), (-0.8, -0.8), (0.8, -0.8)])
    assert angry.velocity > happy.velocity and sad.velocity < calm.velocity  # angry louder, sad softer
    assert angry.tempo_bpm > happy.tempo_bpm and sad.tempo_bpm < calm.tempo_bpm
    assert happy.register > angry.register and calm.register > sad.register
    assert happy.articulation < angry.articulation  # a little more detached when pleasant


def test_measure_numbers_of_a_small_piece():
    # two parts at 90 BPM: a melody C4 D4 E4 G4 (one beat each, 0.5 long) over a held C3 (4 beats)
    mel = [Note(p, float(i), 0.5, v) for i, (p, v) in enumerate([(60, 100), (62, 80), (64, 60), (67, 40)])]
    piece = Piece(tracks=[Track("m", 0, False, mel), Track("b", 0, False, [Note(48, 0.0, 4.0, 50)]),
                          Track("d", 0, True, [Note(36, 0.0, 0.1, 127)] * 3)], tempos=[Tempo(90.0)])
    m = measure(piece)
    pitches = [60, 62, 64, 67, 48]
    assert m.register == pytest.approx(sum(pitches) / 5)
    assert m.pitch_spread == pytest.approx(math.sqrt(sum((p - 60.2) ** 2 for p in pitches) / 5))
    assert m.pitch_range == 19.0
    assert m.velocity == pytest.approx((100 + 80 + 60 + 40 + 50) / 5)  # drums ignored
    assert m.note_density == pytest.approx(5 / 4.0) and m.onset_density == pytest.approx(4 / 4.0)
    assert m.tempo_bpm == pytest.approx(90.0)
    # articulation: melody 0.5 / 1 for the first three notes (the last has no later onset);
    # the bass is one note: no ratio. Mean 0.5.
    assert m.articulation == pytest.approx(0.5)
    # polyphony: beats 0-0.5, 1-1.5, 2-2.5, 3-3.5 two notes, the rest of 0..4 one: (4*1 + 2*0.5... )
    assert m.polyphony == pytest.approx((2 * 2.0 + 1 * 2.0) / 4.0)
    assert (m.key_tonic, m.mode) == (0, "major")


def test_articulation_and_polyphony_edge_cases():
    from emomusic.attributes import _articulation, _polyphony

    legato = Track("x", 0, False, [Note(60, 0, 1.0), Note(62, 1, 1.0), Note(64, 2, 1.0)])
    assert _articulation([legato]) == pytest.approx(1.0)
    over = Track("x", 0, False, [Note(60, 0, 5.0), Note(62, 1, 1.0)])
    assert _articulation([over]) == pytest.approx(1.2)  # clipped at 1.2
    short = Track("x", 0, False, [Note(60, 0, 0.01), Note(62, 1, 0.01)])
    assert _articulation([short]) == pytest.approx(0.05)  # clipped at 0.05
    chord = Track("x", 0, False, [Note(60, 0, 0.5), Note(64, 0, 0.5)])  # one onset: no ratio
    assert _articulation([chord]) == 1.0 and _articulation([Track("x", 0, False, [Note(60, 0, 1)])]) == 1.0
    drums = Track("d", 0, True, [Note(36, 0, 0.1), Note(36, 1, 0.1)])
    assert _articulation([drums]) == 1.0
    assert _articulation([legato, short]) == pytest.approx((1 + 1 + 0.05) / 3)
    # notes 1e-5 apart are one onset (rounded to 1e-4 beats)
    assert _articulation([Track("x", 0, False, [Note(60, 0, 0.5), Note(64, 0.00001, 0.5), Note(67, 1, 0.5)])]) == pytest.approx(0.5, abs=1e-4)
    assert _polyphony([]) == 1.0 and _polyphony([Note(60, 0, 2)]) == 1.0
    # touching notes: the end is processed before the start at the same time
    assert _polyphony([Note(60, 0, 1), Note(62, 1, 1)]) == pytest.approx(1.0)
    assert _polyphony([Note(60, 0, 2), Note(64, 0, 2), Note(67, 0, 1)]) == pytest.approx((3 * 1 + 2 * 1) / 2)
    # a gap does not count: 1 note for 1 beat, silence, 1 note for 1 beat
    assert _polyphony([Note(60, 0, 1), Note(60, 5, 1)]) == pytest.approx(1.0)


def _register_piece(pitches):
    return Piece(tracks=[Track("p", 0, False, [Note(p, float(i), 1.0) for i, p in enumerate(pitches)]),
                         Track("d", 0, True, [Note(36, 0.0, 0.5)])], tempos=[Tempo(100.0)])


def test_register_moves_by_whole_octaves_and_stays_on_the_piano():
    # template register at (0.5, 0.5) is 64 + 2.5 + 0.75 = 67.25
    e = Emotion(0.5, 0.5)
    low = _register_piece([40, 43, 47])  # mean 43.33: 23.9 below -> 2 octaves up
    up = apply_template(low, e, controls=("register",))
    assert [n.pitch for n in up.tracks[0].notes] == [64, 67, 71]
    assert up.tracks[1].notes == low.tracks[1].notes  # drums stay
    half = apply_template(low, e, controls=("register",), strength=0.5)  # 11.96 -> 1 octave
    assert [n.pitch for n in half.tracks[0].notes] == [52, 55, 59]
    # 2 octaves wanted, but the top note (100) may rise only to 108: no octave fits... 100 + 12 > 108
    wide = _register_piece([21, 22, 23, 24, 25, 100])  # mean 35.8: 31.4 below -> 3 octaves wanted
    assert [n.pitch for n in apply_template(wide, e, controls=("register",)).tracks[0].notes] == [21, 22, 23, 24, 25, 100]
    roomy = _register_piece([30, 31, 32, 90])  # mean 45.75: 21.5 below -> 2 octaves; 90 + 24 > 108 -> 1
    assert [n.pitch for n in apply_template(roomy, e, controls=("register",)).tracks[0].notes] == [42, 43, 44, 102]
    high = _register_piece([94, 96, 98])  # 96: 28.75 above -> 2 octaves down
    assert [n.pitch for n in apply_template(high, e, controls=("register",)).tracks[0].notes] == [70, 72, 74]
    floor = _register_piece([28, 100, 100, 100])  # 82: 14.75 above -> 1 octave; 28 - 12 < 21 -> stays
    assert [n.pitch for n in apply_template(floor, e, controls=("register",)).tracks[0].notes] == [28, 100, 100, 100]
    near = _register_piece([66, 67, 68])  # 67: within half an octave -> unchanged
    assert [n.pitch for n in apply_template(near, e, controls=("register",)).tracks[0].notes] == [66, 67, 68]


def test_velocity_and_tempo_controls_hand_computed():
    e = Emotion(0.5, 0.5)  # template velocity 85, tempo 96 * 2**0.375 - 1.5
    p = Piece(tracks=[Track("p", 0, False, [Note(60, 0, 1, 40), Note(62, 1, 1, 60), Note(64, 2, 1, 126)])],
              tempos=[Tempo(100.0), Tempo(50.0, 2.0)])
    out = apply_template(p, e, controls=("velocity",))
    f = 85.0 / ((40 + 60 + 126) / 3)
    assert [n.velocity for n in out.tracks[0].notes] == [round(40 * f), round(60 * f), 127]  # clipped at 127
    assert p.tracks[0].notes[0].velocity == 40  # the input is left alone
    quiet = apply_template(p, Emotion(-1.0, -1.0), controls=("velocity",))  # 72 - 28 - 4 = 40
    g = 40.0 / ((40 + 60 + 126) / 3)
    assert [n.velocity for n in quiet.tracks[0].notes] == [round(40 * g), round(60 * g), round(126 * g)]
    # tempo: effective tempo over 0..3 is 3 beats / (2 * 0.6 + 1 * 1.2 s) * 60 = 75 BPM
    goal = 96 * 2 ** 0.375 - 1.5
    t = apply_template(p, e, controls=("tempo",))
    assert [tp.bpm for tp in t.tempos] == [round(100 * goal / 75, 3), round(50 * goal / 75, 3)]
    assert [tp.beat for tp in t.tempos] == [0.0, 2.0]
    half = apply_template(p, e, controls=("tempo",), strength=0.5)
    assert half.tempos[0].bpm == pytest.approx(100 * math.sqrt(75 * goal) / 75, abs=1e-3)  # geometric halfway
    assert apply_template(p, e, strength=0.0).tempos == p.tempos
    with pytest.raises(EmomusicError, match="register, articulation, mode"):
        apply_template(p, e, controls=("speed",))


def test_attributes_dict_checks():
    from emomusic.attributes import Attributes, attribute_distance

    a = template(Emotion(0.2, -0.3))
    d = a.to_dict()
    assert d["key"] == "C major" and d["tempo_bpm"] == round(a.tempo_bpm, 4)
    back = Attributes.from_dict({**d, "key_tonic": 14, "octave_shift": "-12"})
    assert back.key_tonic == 2 and back.octave_shift == -12 and back.mode == "major"
    with pytest.raises(EmomusicError, match="register"):
        Attributes.from_dict({k: v for k, v in d.items() if k != "register"})
    with pytest.raises(EmomusicError, match="mode"):
        Attributes.from_dict({**d, "mode": "dorian"})
    with pytest.raises(EmomusicError, match="JSON object"):
        Attributes.from_dict([1, 2])
    b = template(Emotion(0.2, 0.7))
    dist = attribute_distance(a, b)
    assert dist["tempo_octaves"] == pytest.approx(math.log2(b.tempo_bpm / a.tempo_bpm))
    for k in ("major_prob", "register", "pitch_spread", "onset_density", "velocity", "articulation"):
        assert dist[k] == pytest.approx(getattr(b, k) - getattr(a, k))
    assert a.notes_per_second == pytest.approx(a.note_density * a.tempo_bpm / 60)


def test_key_correlations_are_pearson_r_with_the_rotated_profiles():
    from scipy.stats import pearsonr

    rng = np.random.default_rng(3)
    h = rng.random(12)
    r = key_correlations(h)
    for tonic in (0, 5, 11):
        assert r[0, tonic] == pytest.approx(pearsonr(h, np.roll(KK_MAJOR, tonic))[0])
        assert r[1, tonic] == pytest.approx(pearsonr(h, np.roll(KK_MINOR, tonic))[0])
    assert not key_correlations(np.ones(12)).any()  # a flat histogram correlates with nothing


def test_pitch_class_histogram_weights_by_duration():
    from emomusic.attributes import pitch_class_histogram

    notes = [Note(60, 0, 3.0), Note(72, 3, 1.0), Note(67, 4, 4.0)]
    h = pitch_class_histogram(notes)
    assert h[0] == pytest.approx(0.5) and h[7] == pytest.approx(0.5) and h.sum() == pytest.approx(1.0)
    c = pitch_class_histogram(notes, weighted=False)
    assert c[0] == pytest.approx(2 / 3) and c[7] == pytest.approx(1 / 3)
    assert not pitch_class_histogram([]).any()


def test_estimate_key_of_scales():
    a_minor = [Note(p, i, 1.0) for i, p in enumerate([57, 59, 60, 62, 64, 65, 68, 69, 64, 57])]
    tonic, mode, major_prob, conf = estimate_key(a_minor)
    assert (tonic, mode) == (9, "minor") and major_prob < 0.5 and 0.5 < conf <= 1
    d_major = [Note(p, i, 1.0) for i, p in enumerate([62, 64, 66, 67, 69, 71, 73, 74, 69, 62])]
    tonic, mode, major_prob, _ = estimate_key(d_major)
    assert (tonic, mode) == (2, "major") and major_prob > 0.5


def test_effective_tempo_and_onset_groups_hand_computed():
    p = Piece(tracks=[Track("x", 0, False, [Note(60, 0, 8.0)])], tempos=[Tempo(120.0), Tempo(60.0, 4.0)])
    assert effective_tempo(p) == pytest.approx(60 * 8 / (2.0 + 4.0))  # 8 beats in 6 s
    assert effective_tempo(p, 4.0, 8.0) == pytest.approx(60.0)
    assert effective_tempo(p, 2.0, 6.0) == pytest.approx(60 * 4 / (1.0 + 2.0))
    assert effective_tempo(p, 5.0, 5.0) == 120.0 and effective_tempo(p, 6.0, 5.0) == 120.0  # the opening tempo
    g = group_onsets(np.array([1.0, 0.0, 0.05, 0.2, 0.26, 1.0]))
    assert g.tolist() == [3, 0, 0, 1, 2, 3] and g.dtype.kind == "i"
    assert group_onsets(np.array([0.0, 0.03, 0.06, 0.09])).tolist() == [0, 0, 0, 0]  # chains of small gaps
    assert group_onsets(np.zeros(0)).dtype.kind == "i" and group_onsets([]).size == 0


def test_features_vector_hand_computed():
    from emomusic.attributes import Attributes

    a = Attributes(tempo_bpm=120.0, mode="major", key_tonic=0, register=60.0, pitch_spread=3.0, note_density=2.0,
                   velocity=70.0, articulation=0.8, major_prob=0.7, onset_density=1.0, key_confidence=0.6,
                   polyphony=1.5, pitch_range=12.0)
    v = features_vector(a)
    assert v.tolist() == pytest.approx([math.log(120), 0.7, 60.0, 3.0, math.log(4.0), math.log(2.0), 70.0, 0.8, 0.6,
                                        1.5, 12.0])
    assert len(v) == len(FEATURE_NAMES)
    slow = replace(a, tempo_bpm=0.0, note_density=0.0, onset_density=0.0)
    assert features_vector(slow)[[0, 4, 5]].tolist() == pytest.approx([math.log(1e-3)] * 3)


def test_register_shift_boundaries_are_inclusive():
    e = Emotion(0.5, 0.5)  # template register 67.25
    # lowest note 33: one octave down would reach 21 exactly, the piano's lowest key: allowed
    down = _register_piece([33, 100, 100, 100])  # mean 83.25: 16 above -> 1 octave down
    assert [n.pitch for n in apply_template(down, e, controls=("register",)).tracks[0].notes] == [21, 88, 88, 88]
    # highest note 96: one octave up reaches 108 exactly: allowed
    up = _register_piece([30, 31, 32, 96])  # mean 47.25: 20 below -> 2 octaves wanted, 1 fits
    assert [n.pitch for n in apply_template(up, e, controls=("register",)).tracks[0].notes] == [42, 43, 44, 108]
    # a note already above the piano (110) cannot go up, and nothing shifts down instead
    over = _register_piece([20, 22, 24, 110])  # mean 44: 23 below -> 2 octaves wanted, none fits
    assert [n.pitch for n in apply_template(over, e, controls=("register",)).tracks[0].notes] == [20, 22, 24, 110]
    # 18 semitones above the target is 1.5 octaves: rounds to 2 (not 1, as 13-semitone octaves would)
    far = _register_piece([85, 85, 86, 85])  # mean 85.25: 18 above -> 2 octaves down
    assert [n.pitch for n in apply_template(far, e, controls=("register",)).tracks[0].notes] == [61, 61, 62, 61]


def test_apply_template_keeps_everything_it_does_not_control():
    from emomusic.piece import Marker, TimeSignature

    p = Piece(tracks=[Track("p", 5, False, [Note(60 + i % 5, float(i), 0.5, 70) for i in range(8)])],
              tempos=[Tempo(100.0)], keys=[KeySignature(0, "major")], time_signatures=[TimeSignature(3, 4)],
              markers=[Marker("emotion v=0.10 a=0.10 Q1", 0.0)], title="t")
    out = apply_template(p, Emotion(0.5, 0.5), controls=("velocity",))
    assert out.time_signatures == p.time_signatures and out.markers == p.markers and out.title == "t"
    assert out.keys == p.keys and out.tempos == p.tempos
    assert [(n.pitch, n.start, n.duration) for n in out.tracks[0].notes] == [(n.pitch, n.start, n.duration) for n in p.tracks[0].notes]
    assert out.tracks[0].program == 5 and out.tracks[0].name == "p"
    # no tempo map at all: the control starts from 120 BPM
    bare = replace(p, tempos=[])
    goal = 96 * 2 ** 0.375 - 1.5
    assert apply_template(bare, Emotion(0.5, 0.5), controls=("tempo",)).tempos[0].bpm == pytest.approx(goal, abs=1e-3)
    # articulation: durations scale so the mean duration/IOI ratio (0.5 here) reaches the template's
    art = apply_template(p, Emotion(0.5, 0.5), controls=("articulation",))
    assert [n.duration for n in art.tracks[0].notes] == pytest.approx([0.5 * (0.85 - 0.06 - 0.015) / 0.5] * 8)
    with pytest.raises(EmomusicError, match="needs an Emotion, got tuple"):
        apply_template(p, (0.5, 0.5))
    with pytest.raises(EmomusicError, match="needs an Emotion, got tuple"):
        template((0.5, 0.5))


def test_measured_mode_strength_and_neutral_template_shift():
    a = measure(Piece(tracks=[Track("x", 0, False, [Note(p, float(i), 1.0) for i, p in enumerate([60, 62, 64, 65, 67, 69, 71, 72])])]))
    assert a.mode_strength == pytest.approx(abs(2 * a.major_prob - 1)) and a.octave_shift == 0
    assert template(Emotion(0.0, 0.3)).octave_shift == 0 and template(Emotion(-0.01, 0.3)).octave_shift == -12


def test_key_correlations_equal_one_profile_at_a_time():
    """The profiles are z-scored once; the values stay those of the per-profile definition, to the bit."""
    from emomusic.attributes import KK_MAJOR, KK_MINOR

    rng = np.random.default_rng(5)
    for h in [*rng.dirichlet(np.ones(12), 200), *rng.integers(0, 3, (50, 12)).astype(float), KK_MINOR]:
        want = np.zeros((2, 12))
        if h.std() > 0:
            hz = (h - h.mean()) / h.std()
            for m, prof in enumerate((KK_MAJOR, KK_MINOR)):
                for tonic in range(12):
                    p = np.roll(prof, tonic)
                    want[m, tonic] = float(np.mean(hz * ((p - p.mean()) / p.std())))
        assert np.array_equal(key_correlations(h), want)
