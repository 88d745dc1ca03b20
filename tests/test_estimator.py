"""The emotion estimator: features, the shipped parameters, directions, loading errors, EMOPIA accuracy."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from emomusic.emotion import Emotion
from emomusic.errors import CheckpointError, PieceFormatError
from emomusic.estimator import (
    ALL_FEATURES,
    EstimatorModel,
    LogisticAxis,
    default_estimator_dir,
    estimate_details,
    estimate_emotion,
    extract_features,
    load_estimator,
    melody_line,
)
from emomusic.piece import Note, Piece, Tempo, Track

REPO = Path(__file__).resolve().parents[1]


def styled_piece(minor: bool, bpm: float, velocity: int, subdivision: int, bars: int = 8) -> Piece:
    """I-IV-V-I accompaniment and a scale-wise melody; ``subdivision`` notes per beat."""
    third = 3 if minor else 4
    steps = [0, 2, 3, 5, 7, 8, 10, 12] if minor else [0, 2, 4, 5, 7, 9, 11, 12]
    chords = [(0, third, 7), (5, 5 + third, 12), (7, 10 if minor else 11, 14), (0, third, 7)]
    top = 60 if minor else 72
    notes = []
    for bar in range(bars):
        chord = chords[bar % 4]
        if subdivision >= 2:  # repeated chords each beat
            notes += [Note(48 + p, bar * 4.0 + k, 0.5, velocity) for k in range(4) for p in chord]
        else:
            notes += [Note(48 + p, bar * 4.0, 4.0, velocity) for p in chord]
        for i in range(4 * subdivision):
            dur = 1.0 / subdivision
            notes.append(Note(top + steps[(3 * i + bar) % 8], bar * 4.0 + i * dur, dur * (0.6 if subdivision >= 2 else 1.0), velocity))
    return Piece(tracks=[Track("Piano", 0, False, notes)], tempos=[Tempo(bpm)])


def test_shipped_estimator_loads_and_is_consistent():
    model = load_estimator()
    assert set(model.features) <= set(ALL_FEATURES) and len(model.features) >= 5
    assert model.mean.shape == model.scale.shape == model.valence.weights.shape == (len(model.features),)
    assert np.all(model.scale > 0)
    assert load_estimator() is model  # parameters are loaded once and cached
    card = (default_estimator_dir() / "MODEL_CARD.md").read_text()
    assert "EMOPIA" in card and "4-quadrant accuracy" in card and "val" in card
    cfg = json.loads((default_estimator_dir() / "config.json").read_text())
    assert cfg["metrics"]["val"]["n"] >= 100 and "command" in cfg


def test_fast_loud_major_vs_slow_soft_minor():
    happy = estimate_details(styled_piece(minor=False, bpm=160, velocity=110, subdivision=4))
    sad = estimate_details(styled_piece(minor=True, bpm=60, velocity=40, subdivision=1))
    assert happy["arousal"] > 0.3 and sad["arousal"] < -0.3
    assert happy["valence"] > sad["valence"] + 0.5
    assert happy["quadrant"] == "Q1" and sad["quadrant"] == "Q3"
    # each cue alone moves its axis the expected way
    calm = estimate_emotion(styled_piece(minor=False, bpm=60, velocity=45, subdivision=1))
    tense = estimate_emotion(styled_piece(minor=True, bpm=160, velocity=110, subdivision=4))
    assert calm.valence > 0 and calm.arousal < 0  # Q4
    assert tense.valence < 0 and tense.arousal > 0  # Q2


def single_line(minor: bool, bpm: float, velocity: int, per_beat: int, bars: int = 8) -> Piece:
    steps = [0, 2, 3, 5, 7, 8, 10, 12] if minor else [0, 2, 4, 5, 7, 9, 11, 12]
    walk = [0, 2, 4, 2, 0, 4, 7, 4, 5, 3, 1, 0, 4, 2, 1, 0]
    notes = [Note(67 + steps[walk[i % 16] % 8], i / per_beat, 0.9 / per_beat, velocity) for i in range(4 * per_beat * bars)]
    return Piece(tracks=[Track("Melody", 0, False, notes)], tempos=[Tempo(bpm)])


def test_single_melodies_read_in_the_right_directions():
    # The estimator is trained on clips and on their top-voice melodies, so one line works too.
    bright = estimate_emotion(single_line(False, 150, 100, 2))
    dark = estimate_emotion(single_line(True, 150, 100, 2))
    slow = estimate_emotion(single_line(False, 60, 50, 1))
    assert bright.valence > dark.valence + 0.3
    assert bright.arousal > 0 > slow.arousal
    assert bright.valence > 0 and dark.valence < 0


def test_melody_line_keeps_the_top_voice():
    notes = [Note(48, 0, 2, 70), Note(64, 0.01, 2, 80), Note(72, 0, 1, 90), Note(60, 1, 1, 60), Note(67, 2, 1, 60)]
    p = Piece(tracks=[Track("A", 0, False, notes[:3]), Track("B", 0, False, notes[3:])], tempos=[Tempo(120.0)])
    m = melody_line(p)
    assert len(m.tracks) == 1
    assert [(n.pitch, n.start, n.duration) for n in m.notes] == [(72, 0, 1), (60, 1, 1), (67, 2, 1)]
    long_top = Piece(tracks=[Track("A", 0, False, [Note(72, 0, 4, 80), Note(60, 1, 1, 80)])])
    assert [n.duration for n in melody_line(long_top).notes] == [1.0, 1.0]  # cut at the next onset
    with pytest.raises(PieceFormatError):
        melody_line(Piece(tracks=[]))


def test_arousal_rises_with_speed_and_loudness():
    slow = estimate_emotion(styled_piece(False, 60, 50, 2))
    fast = estimate_emotion(styled_piece(False, 150, 50, 2))
    loud = estimate_emotion(styled_piece(False, 60, 110, 2))
    assert fast.arousal > slow.arousal and loud.arousal > slow.arousal


def test_velocity_read_as_unknown():
    from emomusic.estimator import VELOCITY_FEATURES

    soft, loud = styled_piece(False, 60, 50, 2), styled_piece(False, 60, 110, 2)
    assert estimate_emotion(loud).arousal > estimate_emotion(soft).arousal
    a = estimate_emotion(soft, neutral=VELOCITY_FEATURES)
    b = estimate_emotion(loud, neutral=VELOCITY_FEATURES)
    assert a.arousal == pytest.approx(b.arousal) and a.valence == pytest.approx(b.valence)


def test_details_schema_and_ranges(piano_piece):
    d = estimate_details(piano_piece)
    assert isinstance(d["emotion"], Emotion)
    assert -1 <= d["valence"] <= 1 and -1 <= d["arousal"] <= 1
    assert d["quadrant"] == d["emotion"].quadrant
    assert sum(d["quadrant_probs"].values()) == pytest.approx(1.0)
    assert max(d["quadrant_probs"], key=d["quadrant_probs"].get) == d["quadrant"]
    assert d["valence"] == pytest.approx(2 * d["p_valence_positive"] - 1)
    assert set(d["features"]) == set(ALL_FEATURES)
    assert all(math.isfinite(v) for v in d["features"].values())


def test_features_are_tempo_invariant_in_seconds():
    # Same music written at 60 BPM in beats vs at 120 BPM with every time doubled.
    p = styled_piece(False, 60, 80, 2)
    doubled = Piece(
        tracks=[Track("Piano", 0, False, [replace(n, start=2 * n.start, duration=2 * n.duration) for n in p.notes])],
        tempos=[Tempo(120.0)],
    )
    fa, fb = extract_features(p), extract_features(doubled)
    for k in ("log_notes_per_second", "log_onsets_per_second", "ioi_log_mean", "log_duration_mean", "mode_evidence"):
        assert fa[k] == pytest.approx(fb[k], abs=1e-6), k
    assert estimate_emotion(p).arousal == pytest.approx(estimate_emotion(doubled).arousal, abs=0.05)


def test_features_on_hand_made_cases():
    chords = Piece(tracks=[Track("P", 0, False, [Note(p, float(i), 1.0, 80) for i in range(8) for p in (60, 64, 67)])])
    f = extract_features(chords)
    assert f["major_triad_share"] == pytest.approx(1.0) and f["minor_triad_share"] == 0.0
    assert f["dissonance"] == 0.0 and f["melody_register"] == 67 and f["bass_register"] == 60
    assert f["pc_entropy"] == pytest.approx(math.log2(3))
    assert f["log_onsets_per_second"] == pytest.approx(math.log10(8 / 4.0))  # 8 chords in 4 s at 120 BPM
    minor = Piece(tracks=[Track("P", 0, False, [Note(p, float(i), 1.0, 80) for i in range(8) for p in (57, 60, 64)])])
    assert extract_features(minor)["minor_triad_share"] == pytest.approx(1.0)
    cluster = Piece(tracks=[Track("P", 0, False, [Note(p, 0.0, 1.0, 80) for p in (60, 61, 62)])])
    assert extract_features(cluster)["dissonance"] == pytest.approx(1.0)
    with pytest.raises(PieceFormatError):
        extract_features(Piece(tracks=[]))


def _tiny_model(features=("velocity", "log_notes_per_second")) -> EstimatorModel:
    n = len(features)
    return EstimatorModel(tuple(features), np.zeros(n), np.ones(n), LogisticAxis(np.ones(n), 0.0), LogisticAxis(np.ones(n), -1.0), {})


def test_model_round_trip_and_explicit_model(tmp_path, piano_piece):
    m = _tiny_model()
    m.save(tmp_path)
    loaded = load_estimator(tmp_path)
    assert loaded.features == m.features and np.allclose(loaded.arousal.weights, 1.0)
    assert load_estimator(tmp_path / "estimator.json") is loaded
    e = estimate_emotion(piano_piece, loaded)
    assert e.valence > 0.99  # velocity ~80 * weight 1 saturates the sigmoid


def test_neutral_features_are_ignored_without_refitting(piano_piece):
    from emomusic.estimator import VELOCITY_FEATURES

    m = _tiny_model()  # arousal = sigmoid(velocity + log_notes_per_second - 1) with mean 0, scale 1
    d = estimate_details(piano_piece, m, neutral=VELOCITY_FEATURES)
    pa = 1 / (1 + math.exp(-(d["features"]["log_notes_per_second"] - 1.0)))
    assert d["p_arousal_positive"] == pytest.approx(pa)
    from emomusic.estimator import axis_probabilities

    assert axis_probabilities(d["features"], m, VELOCITY_FEATURES) == pytest.approx((d["p_valence_positive"], pa))
    loud = Piece(tracks=[Track("P", 0, False, [replace(n, velocity=127) for n in piano_piece.notes])])
    soft = Piece(tracks=[Track("P", 0, False, [replace(n, velocity=20) for n in piano_piece.notes])])
    assert estimate_emotion(loud, neutral=VELOCITY_FEATURES) == estimate_emotion(soft, neutral=VELOCITY_FEATURES)
    assert estimate_emotion(loud).arousal > estimate_emotion(soft).arousal
    with pytest.raises(ValueError, match="unknown"):
        estimate_details(piano_piece, m, neutral=("loudness",))


def test_loading_errors(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_estimator(tmp_path / "missing")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "estimator.json").write_text("{not json")
    with pytest.raises(CheckpointError):
        load_estimator(bad)
    d = _tiny_model().to_dict()
    for mutate in (
        lambda d: d["valence"].update(weights=[1.0]),
        lambda d: d.update(features=["velocity", "no_such_feature"]),
        lambda d: d.update(format_version=99),
        lambda d: d.update(scale=[1.0, 0.0]),
        lambda d: d.pop("arousal"),
    ):
        dd = json.loads(json.dumps(d))
        mutate(dd)
        with pytest.raises(CheckpointError):
            EstimatorModel.from_dict(dd)


def _fit_module():
    from helpers import load_script

    return load_script("fit_estimator")


def test_fit_logistic_and_song_folds():
    fit = _fit_module()
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    y = (X[:, 0] - 0.5 * X[:, 2] + 0.3 * rng.normal(size=300) > 0).astype(float)
    w, b = fit.fit_logistic(X, y, C=1.0)
    assert np.mean(((X @ w + b) > 0) == (y > 0.5)) > 0.9
    assert w[0] > 0 and w[2] < 0 and abs(w[1]) < abs(w[0]) / 3
    w_strong, _ = fit.fit_logistic(X, y, C=0.001)
    assert np.linalg.norm(w_strong) < np.linalg.norm(w)  # more regularisation, smaller weights
    groups = [f"s{i // 3}" for i in range(30)]
    folds = fit.group_folds(groups, 5)
    assert sorted(np.concatenate(folds).tolist()) == list(range(30))
    for f in folds:  # no song is split across folds
        assert {groups[i] for i in f}.isdisjoint({groups[i] for i in set(range(30)) - set(f)})
    assert fit.song_of("Q1_a_b_c_12.mid") == "a_b_c" and fit.labels(["Q2_x_1.mid"])[0][0] == 0


@pytest.mark.data
def test_val_accuracy_matches_model_card(shared_data):
    from emomusic.io import read_piece

    cfg = json.loads((default_estimator_dir() / "config.json").read_text())
    reported = cfg["metrics"]["val"]
    fit = _fit_module()
    clips = fit.read_split(shared_data / "emopia", "val_clip.csv")
    model = load_estimator()
    ok_q = ok_v = ok_a = n = 0
    for clip in clips:
        e = estimate_emotion(read_piece(shared_data / "emopia" / "midis" / clip), model)
        q = clip[:2]
        n += 1
        ok_q += e.quadrant == q
        ok_v += (e.valence >= 0) == (q in ("Q1", "Q4"))
        ok_a += (e.arousal >= 0) == (q in ("Q1", "Q2"))
    assert n == reported["n"]
    assert ok_q / n == pytest.approx(reported["quadrant_accuracy"], abs=0.02)
    assert ok_v / n == pytest.approx(reported["valence_accuracy"], abs=0.02)
    assert ok_a / n == pytest.approx(reported["arousal_accuracy"], abs=0.02)
    card = (default_estimator_dir() / "MODEL_CARD.md").read_text()
    assert f"{reported['quadrant_accuracy']:.3f}" in card


# -- hand-computed checks: a model built here, features worked out on paper -----------------------
def _hand_model(weights_v, weights_a, bias_v=0.0, bias_a=0.0):
    from emomusic.estimator import EstimatorModel, LogisticAxis

    feats = ("velocity", "register")
    return EstimatorModel(feats, np.array([64.0, 60.0]), np.array([16.0, 6.0]),
                          LogisticAxis(np.array(weights_v, float), bias_v), LogisticAxis(np.array(weights_a, float), bias_a), {})


def _sig(x):
    return 1 / (1 + math.exp(-x))


def test_details_follow_the_logistic_formula_with_a_hand_made_model():
    from emomusic.estimator import estimate_details, estimate_many

    # velocity 96, register 66 (one C#5-ish line): z = ((96-64)/16, (66-60)/6) = (2, 1)
    piece = Piece(tracks=[Track("x", 0, False, [Note(66, float(i), 1.0, 96) for i in range(4)])])
    model = _hand_model([0.5, -1.0], [1.0, 0.25], bias_v=0.2, bias_a=-0.5)
    d = estimate_details(piece, model)
    pv, pa = _sig(0.5 * 2 - 1.0 * 1 + 0.2), _sig(1.0 * 2 + 0.25 * 1 - 0.5)
    assert d["p_valence_positive"] == pytest.approx(pv) and d["p_arousal_positive"] == pytest.approx(pa)
    assert d["valence"] == pytest.approx(2 * pv - 1) and d["arousal"] == pytest.approx(2 * pa - 1)
    assert d["quadrant"] == "Q1" and d["emotion"].as_tuple() == pytest.approx((2 * pv - 1, 2 * pa - 1))
    assert d["quadrant_probs"] == pytest.approx({"Q1": pv * pa, "Q2": (1 - pv) * pa, "Q3": (1 - pv) * (1 - pa),
                                                 "Q4": pv * (1 - pa)})
    assert sum(d["quadrant_probs"].values()) == pytest.approx(1.0)
    # a model that reads loud as negative valence puts the same piece in Q2; Q3 and Q4 likewise
    assert estimate_emotion(piece, _hand_model([-1.0, 0.0], [1.0, 0.0])).quadrant == "Q2"
    assert estimate_emotion(piece, _hand_model([-1.0, 0.0], [-1.0, 0.0])).quadrant == "Q3"
    assert estimate_emotion(piece, _hand_model([1.0, 0.0], [-1.0, 0.0])).quadrant == "Q4"
    many = estimate_many([piece, piece], model)
    assert [e.as_tuple() for e in many] == [d["emotion"].as_tuple()] * 2
    X = np.array([[96.0, 66.0], [64.0, 60.0]])
    pvs, pas = model.predict_probs(X)
    assert pvs.tolist() == pytest.approx([pv, _sig(0.2)]) and pas.tolist() == pytest.approx([pa, _sig(-0.5)])
    assert model.standardise({"velocity": 80.0, "register": 54.0, "other": 1.0}).tolist() == [1.0, -1.0]


def test_hand_made_model_round_trips_and_rejects_bad_files(tmp_path):
    from emomusic.estimator import EstimatorModel, load_estimator

    model = _hand_model([0.5, -1.0], [1.0, 0.25], bias_v=0.2)
    d = model.to_dict()
    assert d["features"] == ["velocity", "register"] and d["valence"] == {"weights": [0.5, -1.0], "bias": 0.2}
    again = EstimatorModel.from_dict(json.loads(json.dumps(d)))
    assert again.features == model.features and again.valence.bias == 0.2 and again.arousal.bias == 0.0
    assert again.mean.tolist() == [64.0, 60.0] and again.scale.tolist() == [16.0, 6.0]
    folder = model.save(tmp_path / "est")
    assert load_estimator(folder).arousal.weights.tolist() == [1.0, 0.25]
    bad = [({**d, "format_version": 99}, "format"), ({**d, "features": ["velocity", "colour"]}, "colour"),
           ({**d, "valence": {"weights": [1.0], "bias": 0}}, "valence weights have 1"),
           ({**d, "arousal": {"weights": [1.0, 2.0, 3.0], "bias": 0}}, "arousal weights have 3"),
           ({**d, "scale": [16.0, 0.0]}, "mean/scale"), ({**d, "mean": [1.0]}, "mean/scale"),
           ({k: v for k, v in d.items() if k != "valence"}, "malformed"),
           ({**d, "valence": {"weights": ["a", "b"], "bias": 0}}, "malformed")]
    for doc, words in bad:
        with pytest.raises(CheckpointError, match=words):
            EstimatorModel.from_dict(doc)


def test_features_hand_computed_for_a_triad_line():
    from emomusic.estimator import extract_features

    # at 120 BPM (0.5 s a beat): C major triad held 2 beats, then an A minor triad held 2 beats,
    # then a lone B held 1 beat; velocities 60 / 100
    notes = [Note(p, 0.0, 2.0, 60) for p in (60, 64, 67)] + [Note(p, 2.0, 2.0, 100) for p in (57, 60, 64)] + \
        [Note(71, 4.0, 1.0, 100)]
    f = extract_features(Piece(tracks=[Track("x", 0, False, notes)], tempos=[Tempo(120.0)]))
    assert f["melody_register"] == pytest.approx((67 + 64 + 71) / 3)
    assert f["bass_register"] == pytest.approx((60 + 57 + 71) / 3)
    assert f["log_onsets_per_second"] == pytest.approx(math.log10(3 / 2.5))
    assert f["log_notes_per_second"] == pytest.approx(math.log10(7 / 2.5))
    assert f["ioi_log_mean"] == pytest.approx(math.log10(1.0)) and f["ioi_log_std"] == pytest.approx(0.0)
    assert f["log_duration_mean"] == pytest.approx((6 * math.log10(1.0) + math.log10(0.5)) / 7)
    assert f["velocity_std"] == pytest.approx(np.std([60] * 3 + [100] * 4))
    assert f["log_tempo"] == pytest.approx(math.log10(120))
    # beats 0-1 C major, 2-3 A minor, 4 a single note (no triad explains > half? a lone B is 1/3 of no triad)
    assert f["major_triad_share"] == pytest.approx(2 / 5) and f["minor_triad_share"] == pytest.approx(2 / 5)
    # durations: C 4 beats, E 4, G 2, A 2, B 1 of 13: entropy in bits
    w = np.array([4, 4, 2, 2, 1]) / 13
    assert f["pc_entropy"] == pytest.approx(float(-(w * np.log2(w)).sum()))
    # triads hold only consonant interval classes (3, 4, 5): no dissonance; a cluster is all dissonant
    assert f["dissonance"] == 0.0
    cluster = Piece(tracks=[Track("x", 0, False, [Note(p, 0.0, 1.0) for p in (60, 61, 62)])])
    # pairs: C-C# (ic 1), C-D (ic 2), C#-D (ic 1): 3 of 3 dissonant
    assert extract_features(cluster)["dissonance"] == 1.0
    tritone = Piece(tracks=[Track("x", 0, False, [Note(p, 0.0, 1.0) for p in (60, 66, 64)])])
    # C-F# (6) bad, C-E (4) good, E-F# (2) bad
    assert extract_features(tritone)["dissonance"] == pytest.approx(2 / 3)


def test_melody_line_cuts_each_top_note_at_the_next_onset():
    from emomusic.estimator import melody_line

    # at 60 BPM a beat is 1 s: 0.02 beats (20 ms) is the same chord, 0.04 beats (40 ms) is not
    notes = [Note(60, 0.0, 2.0, 70), Note(72, 0.0, 3.0, 90), Note(64, 0.02, 1.0), Note(71, 1.0, 0.5, 50),
             Note(74, 1.04, 0.25, 60), Note(55, 4.0, 1.0, 40), Note(55, 4.0, 1.0, 45)]
    p = Piece(tracks=[Track("a", 0, False, notes), Track("d", 0, True, [Note(36, 0, 8.0)])], tempos=[Tempo(60.0)],
              title="t")
    line = melody_line(p)
    assert [(n.pitch, n.start, n.duration, n.velocity) for n in line.tracks[0].notes] == \
        [(72, 0.0, 1.0, 90), (71, 1.0, pytest.approx(0.04), 50), (74, 1.04, 0.25, 60), (55, 4.0, 1.0, 40)]
    assert line.title == "t" and line.tempos == [Tempo(60.0)] and len(line.tracks) == 1
    assert (line.tracks[0].name, line.tracks[0].program, line.tracks[0].is_drum) == ("Melody", 0, False)
    with pytest.raises(PieceFormatError, match="no pitched notes"):
        melody_line(Piece(tracks=[Track("d", 0, True, [Note(36, 0, 1.0)])]))


def _dissonance_onset_by_onset(notes) -> float:
    """The statistic counted one onset at a time (the definition _dissonance vectorises)."""
    from emomusic.estimator import _DISSONANT_IC

    starts = np.array([n.start for n in notes])
    ends = np.array([n.end for n in notes])
    pitches = np.array([n.pitch for n in notes])
    total, bad = 0.0, 0.0
    onsets = np.unique(np.round(starts, 3))
    if len(onsets) > 400:
        onsets = onsets[np.linspace(0, len(onsets) - 1, 400).astype(int)]
    for t in onsets:
        pcs = np.unique(pitches[(starts <= t + 1e-6) & (ends > t + 1e-6)] % 12)
        if len(pcs) < 2:
            continue
        d = np.abs(pcs[:, None] - pcs[None, :])[np.triu_indices(len(pcs), 1)]
        ic = np.minimum(d, 12 - d)
        total += len(ic)
        bad += _DISSONANT_IC[ic].sum()
    return float(bad / total) if total else 0.0


@pytest.mark.parametrize("seed", range(12))
def test_dissonance_equals_counting_onset_by_onset(seed):
    from emomusic.estimator import _dissonance

    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 900))  # over 400 onsets: the subsampled path too
    starts = np.round(rng.uniform(0, n / 3, n) * 4) / 4
    notes = [Note(int(p), float(s), float(d), 80) for p, s, d in
             zip(rng.integers(30, 90, n), starts, rng.choice([0.25, 0.5, 1.0, 2.0, 4.0], n))]
    assert _dissonance(notes) == _dissonance_onset_by_onset(notes)
