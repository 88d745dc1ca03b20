"""emomusic.metrics against hand-computed references."""

from __future__ import annotations

import math

import numpy as np
import pytest

from emomusic import metrics as M
from emomusic.emotion import Emotion
from emomusic.piece import Note, Piece, TimeSignature, Track


def piece_of(notes, ts=(4, 4)) -> Piece:
    return Piece(tracks=[Track("P", 0, False, list(notes))], time_signatures=[TimeSignature(*ts)])


def scale_piece(tonic=60, steps=(0, 2, 4, 5, 7, 9, 11), start=0.0, velocity=80) -> Piece:
    return piece_of(Note(tonic + s, start + i, 1.0, velocity) for i, s in enumerate(steps))


C_MAJOR = scale_piece()


def test_pitch_class_entropy_references():
    assert M.pitch_class_entropy(C_MAJOR) == pytest.approx(math.log2(7))
    # the octave doubles C: counts 2,1,1,1,1,1,1 over 8 notes
    with_octave = scale_piece(steps=(0, 2, 4, 5, 7, 9, 11, 12))
    p = np.array([2, 1, 1, 1, 1, 1, 1]) / 8
    assert M.pitch_class_entropy(with_octave) == pytest.approx(float(-(p * np.log2(p)).sum()))
    assert M.pitch_class_entropy(piece_of([Note(60, 0, 1), Note(72, 1, 1)])) == 0.0
    chromatic = scale_piece(steps=tuple(range(12)))
    assert M.pitch_class_entropy(chromatic) == pytest.approx(math.log2(12))
    assert math.isnan(M.pitch_class_entropy(Piece()))


def test_pitch_entropy_counts_octaves_apart():
    assert M.pitch_entropy(piece_of([Note(60, 0, 1), Note(72, 1, 1)])) == pytest.approx(1.0)


def test_scale_consistency():
    assert M.scale_consistency(C_MAJOR) == 1.0
    # C major plus one F#: 7 of 8 notes fit C major (G major also holds 7 of 8)
    eight = scale_piece(steps=(0, 2, 4, 5, 7, 9, 11, 6))
    assert M.scale_consistency(eight) == pytest.approx(7 / 8)
    # A natural minor is C major's pitch set; C harmonic-minor has B natural: 6 of 7 in C minor
    harmonic = scale_piece(steps=(0, 2, 3, 5, 7, 8, 11))
    assert M.scale_consistency(harmonic) == pytest.approx(6 / 7)


def test_groove_consistency():
    # the same rhythm in every bar: 1.0
    same = piece_of(Note(60, b * 4 + o, 0.5) for b in range(4) for o in (0, 1, 2.5))
    assert M.groove_consistency(same) == 1.0
    # bar 0 onsets at 0,1; bar 1 at 0,2: grid of 16 steps differs at 2 positions -> 1 - 2/16
    two = piece_of([Note(60, 0, 1), Note(60, 1, 1), Note(60, 4, 1), Note(60, 6, 1)])
    assert M.groove_consistency(two) == pytest.approx(1 - 2 / 16)
    assert math.isnan(M.groove_consistency(piece_of([Note(60, 0, 1)])))


def test_empty_beat_rate():
    # notes sound in beats 0, 1 (held over two beats) and 5; the piece spans 6 beats -> 3 empty
    p = piece_of([Note(60, 0, 2.0), Note(62, 5, 1.0)])
    assert M.empty_beat_rate(p) == pytest.approx(3 / 6)
    assert M.empty_beat_rate(p, end_beat=8) == pytest.approx(5 / 8)
    assert M.empty_beat_rate(C_MAJOR) == 0.0


def test_polyphony_and_range():
    chord = piece_of([Note(60, 0, 1), Note(64, 0, 1), Note(67, 0, 1), Note(72, 1, 1)])
    # 12 steps with 3 pitches, 12 steps with 1 -> mean 2, half of the steps polyphonic
    assert M.polyphony(chord) == pytest.approx(2.0)
    assert M.polyphony_rate(chord) == pytest.approx(0.5)
    assert M.pitch_range(chord) == 12
    assert M.pitch_range(Piece()) == -1
    assert M.n_pitch_classes_used(C_MAJOR) == 7
    s = M.summary(chord)
    assert set(s) >= {"pitch_class_entropy", "scale_consistency", "groove_consistency", "empty_beat_rate", "polyphony"}


def test_overlapping_area_references():
    h = np.array([1.0, 2.0, 3.0, 0.0])
    assert M.overlapping_area(h, h) == pytest.approx(1.0)
    assert M.overlapping_area(h, 10 * h) == pytest.approx(1.0)  # normalised first
    assert M.overlapping_area(np.array([1, 1, 0, 0]), np.array([0, 0, 1, 1])) == 0.0
    assert M.overlapping_area(np.array([1, 1, 0, 0]), np.array([0, 1, 1, 0])) == pytest.approx(0.5)
    assert math.isnan(M.overlapping_area(np.zeros(3), np.ones(3)))
    with pytest.raises(ValueError):
        M.overlapping_area(np.ones(3), np.ones(4))


def test_gaussian_overlap_references():
    from scipy.stats import norm

    assert M.gaussian_overlap(0, 1, 0, 1) == pytest.approx(1.0)
    # equal spreads: 2 * Phi(-|d| / (2 sd))
    assert M.gaussian_overlap(0, 1, 1, 1) == pytest.approx(2 * norm.cdf(-0.5))
    assert M.gaussian_overlap(3, 2, 0, 2) == pytest.approx(2 * norm.cdf(-0.75))
    # N(0,1) vs N(0,2): crossings at +-sqrt(8 ln 2 / 3)
    x = math.sqrt(8 * math.log(2) / 3)
    ref = (2 * norm.cdf(x / 2) - 1) + 2 * norm.sf(x)
    assert M.gaussian_overlap(0, 1, 0, 2) == pytest.approx(ref)
    assert M.gaussian_overlap(0, 2, 0, 1) == pytest.approx(ref)
    assert M.gaussian_overlap(0, 1, 50, 1) == pytest.approx(0.0, abs=1e-9)


def test_feature_histograms_and_distribution_oa():
    assert M.note_features(C_MAJOR, "ioi").tolist() == [1.0] * 6
    chord_then_note = piece_of([Note(60, 0, 1), Note(64, 0, 1), Note(67, 2, 1)])
    assert M.note_features(chord_then_note, "ioi").tolist() == [2.0]  # the chord is one onset
    assert M.feature_histogram(C_MAJOR, "pitch_class").sum() == pytest.approx(1.0)
    for f in M.OA_FEATURES:
        assert M.distribution_oa([C_MAJOR], [C_MAJOR], f) == pytest.approx(1.0)
    # an octave up: pitch histograms disjoint, pitch classes identical
    up = C_MAJOR.transposed(12)
    assert M.distribution_oa([C_MAJOR], [up], "pitch") == 0.0
    assert M.distribution_oa([C_MAJOR], [up], "pitch_class") == pytest.approx(1.0)
    soft = scale_piece(velocity=20)
    assert M.distribution_oa([C_MAJOR], [soft], "velocity") == 0.0
    rep = M.oa_report([C_MAJOR], [up])
    assert rep["mean"] == pytest.approx((0 + 1 + 1 + 1 + 1) / 5)
    assert M.gaussian_oa([C_MAJOR], [C_MAJOR], "pitch") == pytest.approx(1.0)
    with pytest.raises(ValueError):
        M.note_features(C_MAJOR, "loudness")


def _riff(offset_pitch=0, bars=4, seed=0) -> Piece:
    rng = np.random.default_rng(seed)
    notes = []
    for b in range(bars):
        for k in range(8):
            notes.append(Note(int(48 + offset_pitch + rng.integers(0, 24)), b * 4 + k * 0.5, 0.5))
    return piece_of(notes)


def test_near_copy_rate():
    corpus = [_riff(seed=s) for s in range(5)]
    # a verbatim copy of a corpus piece: every segment is an exact copy
    r = M.near_copy_rate([corpus[2]], corpus, bars=2)
    assert r["segments"] == 2 and r["near_copy"] == 1.0 and r["exact_copy"] == 1.0
    # a transposed copy matches only when transposition-invariant
    up = corpus[1].transposed(5)
    assert M.near_copy_rate([up], corpus, bars=2)["exact_copy"] == 1.0
    assert M.near_copy_rate([up], corpus, bars=2, transpose_invariant=False)["near_copy"] == 0.0
    # fresh random material is novel
    fresh = M.near_copy_rate([_riff(seed=100 + s) for s in range(4)], corpus, bars=2)
    assert fresh["near_copy"] == 0.0 and fresh["mean_max_jaccard"] < 0.5
    # one of 8 notes changed in a 2-bar window of 16 notes: Jaccard 15/17 ~ 0.88 -> near copy, not exact
    src = corpus[0]
    notes = list(src.notes)
    notes[3] = Note(notes[3].pitch + 1 if notes[3].pitch < 100 else notes[3].pitch - 1, notes[3].start, notes[3].duration)
    edited = piece_of(notes)
    r2 = M.near_copy_rate([edited], corpus, bars=2, transpose_invariant=False)
    assert r2["near_copy"] == 1.0 and r2["exact_copy"] == 0.5
    # a corpus given as a prepared SegmentSet gives the same answer
    seg = M.segment_set(corpus, bars=2, hop_bars=1)
    assert M.near_copy_rate([corpus[2]], seg, bars=2)["exact_copy"] == 1.0
    assert math.isnan(M.near_copy_rate([Piece()], corpus)["near_copy"])


def test_diversity():
    a = _riff(seed=1)
    assert M.diversity([a, a]) == 0.0
    assert M.diversity([a, a.transposed(1)]) == 1.0
    assert 0.0 < M.diversity([a, a, a.transposed(1)]) < 1.0
    assert math.isnan(M.diversity([a]))


def test_spearman_and_agreement():
    assert M.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert M.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert M.spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)  # 1 - 6*2/(4*15)
    assert math.isnan(M.spearman([1, 2, 3], [5, 5, 5]))
    req = [Emotion(0.6, 0.6), Emotion(-0.6, 0.6), Emotion(-0.6, -0.6), Emotion(0.6, -0.6)]
    est = [Emotion(0.2, 0.3), Emotion(0.1, 0.5), Emotion(-0.4, 0.2), Emotion(0.5, -0.1)]
    r = M.quadrant_agreement(req, est)
    assert r == {"quadrant": 0.5, "valence": 0.75, "arousal": 0.75, "n": 4}
