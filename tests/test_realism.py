"""Realism features on hand-built pieces with hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from emomusic import realism as R
from emomusic.attributes import KK_MAJOR
from emomusic.piece import Note, Piece, TimeSignature, Track

MOTIF = [60, 62, 64, 65]  # C D E F: intervals +2 +2 +1, then -5 back to C


def line(pitches, starts=None, durations=None) -> Piece:
    starts = list(starts) if starts is not None else [float(i) for i in range(len(pitches))]
    durations = list(durations) if durations is not None else [b - a for a, b in zip(starts, starts[1:])] + [1.0]
    return Piece(tracks=[Track("Melody", 0, False, [Note(p, s, d, 80) for p, s, d in zip(pitches, starts, durations)])])


def chords(groups, length=4.0) -> Piece:
    """One chord (list of pitches) per ``length`` beats."""
    notes = [Note(p, i * length, length, 80) for i, g in enumerate(groups) for p in g]
    return Piece(tracks=[Track("Piano", 0, False, notes)])


def test_motif_four_times_repeats_every_pattern():
    p = line(MOTIF * 4)
    assert R.repeated_pattern_share(p) == 1.0  # every 4-interval window comes back 4 notes later
    # 15 intervals: (2, 2, 1, -5) x 3 + (2, 2, 1) -> |sum| 35; steps 12, leaps 3; 6 direction changes of 14
    assert R.interval_mean_abs(p) == pytest.approx(35 / 15)
    assert R.interval_shares(p) == pytest.approx({"repeat": 0.0, "step": 12 / 15, "skip": 0.0, "leap": 3 / 15})
    assert R.contour_change_rate(p) == pytest.approx(6 / 14)


def test_repeated_pattern_share_hand_counts():
    # motif 3 times then 4 new notes: 12 windows; the 4 motif windows come back (8 repeated), the 4 last do not
    assert R.repeated_pattern_share(line(MOTIF * 3 + [67, 72, 71, 69])) == pytest.approx(8 / 12)
    # the second statement in eighth notes: the pitch pattern repeats, with its rhythm only windows 0 and 8 match
    starts = [0, 1, 2, 3, 4, 4.5, 5, 5.5, 6, 7, 8, 9, 10, 11, 12, 13]
    p = line(MOTIF * 4, starts)
    assert R.repeated_pattern_share(p, rhythm=False) == 1.0
    assert R.repeated_pattern_share(p) == pytest.approx(2 / 12)
    # a major scale over 1.5 octaves: intervals 2 2 1 2 2 2 1 2 2; windows 2212 2122 1222 2221 2212 2122
    assert R.repeated_pattern_share(line([60, 62, 64, 65, 67, 69, 71, 72, 74, 76])) == pytest.approx(4 / 6)
    assert R.repeated_pattern_share(line([60, 62, 65, 64, 69, 67, 72, 71, 74])) == 0.0  # 2 3 -1 5 -2 5 -1 3
    assert math.isnan(R.repeated_pattern_share(line(MOTIF)))  # one window only


def test_contour_and_shares_edge_cases():
    assert R.contour_change_rate(line([60, 62, 64, 65, 67])) == 0.0
    assert R.contour_change_rate(line([60, 64, 60, 64, 60])) == 1.0
    assert R.contour_change_rate(line([60, 60, 60])) != R.contour_change_rate(line([60, 60, 60]))  # nan: no movement
    assert R.interval_shares(line([60, 60, 63, 67]))["skip"] == pytest.approx(2 / 3)  # 0, 3, 4
    assert math.isnan(R.interval_mean_abs(line([60])))


def test_melody_is_the_top_voice():
    poly = Piece(tracks=[Track("P", 0, False, [Note(48, 0.0, 2.0, 80), Note(72, 0.0, 1.0, 80), Note(52, 1.0, 1.0, 80),
                                             Note(76, 1.0, 1.0, 80)])])
    assert [n.pitch for n in R.melody(poly)] == [72, 76]
    mono = line([60, 62])
    assert R.melody(mono) == mono.notes
    assert R.melody(Piece(tracks=[])) == []


def test_chroma_self_similarity():
    c, fs = [60, 64, 67], [66, 70, 73]  # C major and F# major triads share no pitch class
    assert R.chroma_self_similarity(chords([c, c, c, c])) == pytest.approx(1.0)
    # windows A B A B: 2 of the 6 pairs are identical (cosine 1), the other 4 orthogonal
    assert R.chroma_self_similarity(chords([c, fs, c, fs])) == pytest.approx(1 / 3)
    assert len(R.chroma_windows(chords([c, [], c]))) == 2  # the empty window is dropped
    assert math.isnan(R.chroma_self_similarity(chords([c])))


def test_bar_self_similarity():
    bars = [[60, 64, 67], [60, 64, 67], [62, 65, 69], [60, 64, 69]]
    notes = [Note(p, b * 4.0 + k, 1.0, 80) for b, ps in enumerate(bars) for k, p in enumerate(ps)]
    p = Piece(tracks=[Track("P", 0, False, notes)])
    # bar 1 = bar 0 (1.0); bar 2 shares nothing (0); bar 3 shares 2 of 4 cells with bar 0 (0.5)
    assert R.bar_self_similarity(p) == pytest.approx(0.5)
    assert R.bar_self_similarity(line([60] * 16)) == pytest.approx(1.0)
    assert math.isnan(R.bar_self_similarity(line([60, 62])))


def test_recurrence_finds_returns_off_the_bar_grid():
    motif = [60, 62, 64, 65]
    # the motif, a 2-beat rest, the motif again (beats 6-9): windows start at beats 4, 5 and 6;
    # the one at beat 6 is the motif (1.0), the others share no cell with any earlier window (0)
    shifted = line(motif * 2, [0.0, 1.0, 2.0, 3.0, 6.0, 7.0, 8.0, 9.0], [1.0] * 8)
    assert R.recurrence(shifted) == pytest.approx(1 / 3)
    assert R.bar_self_similarity(shifted) == 0.0  # bars 1 and 2 hold halves of the motif: no bar matches
    assert R.recurrence(line(motif * 4)) == pytest.approx(1.0)  # a loop
    assert R.recurrence(line(list(range(40, 56)))) == 0.0  # no pitch comes back
    assert R.recurrence(line(motif * 4), hop_beats=4.0) == pytest.approx(1.0)
    # the return a semitone higher is not a return (cells hold pitches)
    assert R.recurrence(line(motif + [p + 1 for p in motif])) == 0.0
    assert math.isnan(R.recurrence(line([60, 62])))  # shorter than two windows
    assert math.isnan(R.recurrence(Piece(tracks=[])))


def test_cadence_long_share():
    starts, pitches, durs = [], [], []
    for b in range(8):
        if b == 3:  # phrase 1 ends on a whole note
            starts.append(b * 4.0), pitches.append(67), durs.append(4.0)
            continue
        for k in range(8):
            starts.append(b * 4.0 + k * 0.5), pitches.append(60 + k), durs.append(0.5)
    p = line(pitches, starts, durs)
    assert R.cadence_long_share(p) == pytest.approx(0.5)  # phrase 2 ends in running eighths
    assert R.cadence_long_share(p, ratio=9.0) == 0.0
    in_34 = Piece(tracks=p.tracks, time_signatures=[TimeSignature(3, 4)])
    assert 0.0 <= R.cadence_long_share(in_34) <= 1.0
    assert math.isnan(R.cadence_long_share(line([60, 62], [0.0, 1.0])))  # no complete 4-bar phrase


def test_tonality_features():
    chromatic = line(list(range(60, 72)))
    assert R.key_strength(chromatic) == pytest.approx(0.0)  # a flat histogram correlates with no key
    assert R.pitch_class_entropy(chromatic) == pytest.approx(math.log2(12))
    one = line([60, 72, 60])
    # Pearson r of a one-hot histogram with the C major profile: (p_C - mean) / (sd * sqrt(11))
    kk = np.asarray(KK_MAJOR, float)
    assert R.key_strength(one) == pytest.approx((kk[0] - kk.mean()) / (kk.std() * math.sqrt(11)))
    assert R.dissonance(chords([[60, 61, 62]])) == pytest.approx(1.0)
    assert R.dissonance(chords([[60, 64, 67]])) == 0.0
    assert R.dissonance(line([60, 61, 62])) == 0.0  # one line never sounds two notes at once


def test_texture_features():
    assert R.polyphony(chords([[60, 64, 67]])) == pytest.approx(3.0)
    overlap = line([60, 64], [0.0, 1.0], [2.0, 2.0])  # 1, 2, 1 notes in the three beats
    assert R.polyphony(overlap) == pytest.approx(4 / 3)
    assert R.pitch_spread(line([60, 64])) == pytest.approx(2.0)
    assert R.notes_per_beat(line([60] * 8)) == pytest.approx(1.0)
    assert R.notes_per_beat(line([60] * 8, [4.0 + i for i in range(8)])) == pytest.approx(1.0)  # from the first onset
    assert R.notes_per_beat(chords([[60, 64, 67]] * 2)) == pytest.approx(6 / 8)
    assert R.low_register_share(line([36, 47, 48, 60])) == pytest.approx(0.5)


def test_features_dict_and_matrix():
    p = line(MOTIF * 4)
    f = R.features(p)
    assert tuple(f) == R.FEATURES
    assert f["repeated_pattern_share"] == 1.0 and f["polyphony"] == 1.0 and f["low_register_share"] == 0.0
    assert set(R.TEXTURE_FEATURES) <= set(R.FEATURES)
    empty = R.features(Piece(tracks=[]))
    assert all(math.isnan(v) for v in empty.values())
    X = R.feature_matrix([p, p, line([60, 62, 64])])
    assert X.shape == (3, len(R.FEATURES)) and np.array_equal(X[0], X[1])
    assert R.feature_matrix([]).shape == (0, len(R.FEATURES))
