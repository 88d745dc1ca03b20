"""emomusic.compose.articulation: each piece's note lengths set to reach a drawn polyphony."""

from __future__ import annotations

import math

import numpy as np
import pytest

from emomusic import metrics
from emomusic.compose import articulation as A
from emomusic.emotion import Emotion
from emomusic.paths import checkpoint_path
from emomusic.piece import Note, Piece, TimeSignature, Track


def _piece(seed: int = 0, bars: int = 4) -> Piece:
    """Two hands: a detached melody (eighths and quarters) and broken chords, in 4/4."""
    rng = np.random.default_rng(seed)
    mel, acc = [], []
    t = 0.0
    while t < bars * 4 - 1:
        d = float(rng.choice([0.5, 1.0]))
        mel.append(Note(int(rng.integers(67, 80)), t, d * 0.7, 80))
        t += d
    for b in range(bars * 2):
        root = int(rng.choice([48, 53, 55]))
        for k, iv in enumerate((0, 4, 7, 12)):
            acc.append(Note(root + iv + 12 * (b % 2), b * 2.0 + 0.5 * k, 1.2, 60))
    end = bars * 4.0
    acc += [Note(p, end - 2, 3.0, 60) for p in (48, 55, 64)]  # the closing chord, sounding last
    return Piece(tracks=[Track("Melody", notes=mel), Track("Accompaniment", notes=sorted(acc, key=lambda n: (n.start, n.pitch)))])


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("scale", [0.6, 1.0, 1.7, 2.5])
def test_fast_polyphony_is_the_metric_of_the_scaled_piece(seed, scale):
    piece = _piece(seed)
    held = A._Held(piece)
    assert held.polyphony(scale) == pytest.approx(metrics.polyphony(A.scale_lengths(piece, scale)), abs=1e-9)


def test_scaling_keeps_onsets_pitches_velocities_and_the_closing_chord():
    piece = _piece(3)
    out = A.scale_lengths(piece, 2.0)
    for t0, t1 in zip(piece.tracks, out.tracks):
        assert [(n.pitch, n.start, n.velocity) for n in t0.notes] == [(n.pitch, n.start, n.velocity) for n in t1.notes]
    end = max(n.end for n in piece.notes)
    closing = [(n.pitch, n.start, n.duration) for n in piece.notes if n.end >= end - 1e-9]
    assert len(closing) == 3 and set(closing) <= {(n.pitch, n.start, n.duration) for n in out.notes}
    assert max(n.end for n in out.notes) == pytest.approx(end)  # nothing runs past the end
    step = 1 / A.GRID
    longer = [(a, b) for a, b in zip(piece.notes, out.notes) if a.end < end - 1e-9]
    assert all(b.end <= a.start + 2 * a.duration + step / 2 + 1e-9 and b.end >= a.end - 1e-9 for a, b in longer)
    assert sum(abs(b.end - a.start - 2 * a.duration) <= step / 2 + 1e-9 for a, b in longer) >= len(longer) // 3  # the rest capped
    short = A.scale_lengths(piece, 0.6)
    for a, b in zip(piece.notes, short.notes):
        if a.end < end - 1e-9:
            assert b.end == pytest.approx(max(a.start + step, round((a.start + 0.6 * a.duration) * A.GRID) / A.GRID))
    for a, b, c in zip(piece.notes, out.notes, short.notes):  # new ends lie on the grid (exact in a MIDI file)
        for n in (b, c):
            if n.end != a.end:
                assert n.end * A.GRID == pytest.approx(round(n.end * A.GRID), abs=1e-6)


def test_a_lengthened_note_stops_at_its_pitch_again_and_at_the_next_chord_change():
    mel = [Note(72, 0.0, 0.5), Note(72, 1.0, 0.5), Note(74, 2.0, 0.5), Note(76, 4.0, 1.5), Note(60, 6.0, 2.0)]
    other = [Note(72, 0.5, 0.25)]  # the same pitch in another track does not stop it
    piece = Piece(tracks=[Track("Melody", notes=mel), Track("Other", notes=other)])
    out = A.scale_lengths(piece, 2.5)
    got = [(n.pitch, n.start, n.end) for n in out.tracks[0].notes]
    # C5 stops where C5 comes again; in 4/4 a held note stops at the half bar (the texture's
    # chord change): the second C5 at beat 2, E5 at 6; D5 reaches 3.25 inside its half bar;
    # the closing C4 keeps its length
    assert got == [(72, 0.0, 1.0), (72, 1.0, 2.0), (74, 2.0, 3.25), (76, 4.0, 6.0), (60, 6.0, 8.0)]
    # 0.5 + 2.5 x 0.25 = 1.125, on the sixteenth-note grid (half to even): 1.0
    assert out.tracks[1].notes[0].end == pytest.approx(np.round(1.125 * A.GRID) / A.GRID) == pytest.approx(1.0)
    # in 3/4 the harmony changes per bar
    waltz = Piece(tracks=[Track("Melody", notes=[Note(72, 0.0, 0.5), Note(74, 1.0, 0.5), Note(60, 3.0, 3.0)])],
                  time_signatures=[TimeSignature(3, 4)])
    got = [(n.pitch, n.start, n.end) for n in A.scale_lengths(waltz, 2.5).tracks[0].notes]
    assert got == [(72, 0.0, 1.25), (74, 1.0, 2.25), (60, 3.0, 6.0)]
    assert [(n.pitch, n.end) for n in A.scale_lengths(waltz, 4.0).tracks[0].notes] == [(72, 2.0), (74, 3.0), (60, 6.0)]
    for t in out.tracks:  # one voice per key: no overlapping same-pitch notes in a track
        by = {}
        for n in t.notes:
            assert n.start >= by.get(n.pitch, -1.0) - 1e-9
            by[n.pitch] = n.end


def test_fit_scale_reaches_a_reachable_target_and_clamps_the_rest():
    piece = _piece(4)
    held = A._Held(piece)
    lo, hi = held.polyphony(A.MIN_SCALE), held.polyphony(A.MAX_SCALE)
    assert lo < hi
    # note ends on a grid make polyphony a step function of the scale: the fit lands on one of
    # the two values that any scale can give next to the target
    reachable = np.array(sorted({held.polyphony(float(x)) for x in np.exp(np.linspace(np.log(A.MIN_SCALE),
                                                                                      np.log(A.MAX_SCALE), 600))}))
    for target in np.linspace(lo + 0.1, hi - 0.1, 5):
        s = A.fit_scale(piece, float(target))
        assert A.MIN_SCALE < s < A.MAX_SCALE
        got = metrics.polyphony(A.scale_lengths(piece, s))
        below, above = reachable[reachable <= target].max(), reachable[reachable >= target].min()
        assert got == pytest.approx(below) or got == pytest.approx(above), (target, got, below, above)
        assert above - below < 0.6  # the steps are small: the target is nearly reached
    assert A.fit_scale(piece, lo - 1.0) == A.MIN_SCALE
    assert A.fit_scale(piece, hi + 1.0) == A.MAX_SCALE


def test_targets_follow_real_music_per_quadrant_and_blend_between_them():
    for q, (mean, sd) in A.POLYPHONY_LOG.items():
        assert A.target_distribution(_corner(q)) == pytest.approx((mean, sd))
    # agitated music holds the most notes, calm positive the fewest (EMOPIA's train split)
    assert A.target_distribution(_corner("Q2"))[0] > A.target_distribution(_corner("Q1"))[0] > A.target_distribution(_corner("Q4"))[0]
    centre = A.target_distribution(Emotion(0.0, 0.0))[0]
    assert centre == pytest.approx(np.mean([m for m, _ in A.POLYPHONY_LOG.values()]))
    draws = np.log([A.draw_target(Emotion(-0.6, 0.6), s) for s in range(400)])
    mean, sd = A.target_distribution(Emotion(-0.6, 0.6))
    assert abs(draws.mean() - mean) < 0.05 and 0.8 * sd < draws.std() < 1.1 * sd
    assert np.all(np.abs(draws - mean) <= A.TARGET_SD_LIMIT * sd + 1e-9)
    assert A.draw_target(Emotion(0.2, 0.3), 7) == A.draw_target(Emotion(0.2, 0.3), 7)


def _corner(q: str) -> Emotion:
    v = 1.0 if q in ("Q1", "Q4") else -1.0
    a = 1.0 if q in ("Q1", "Q2") else -1.0
    return Emotion(v, a)


def test_articulate_gives_pieces_their_own_hold_seeded():
    piece = _piece(5, bars=8)
    em = Emotion(0.5, 0.5)
    got = [metrics.polyphony(A.articulate(piece, em, seed=s)) for s in range(12)]
    assert got == [metrics.polyphony(A.articulate(piece, em, seed=s)) for s in range(12)]  # seeded
    assert max(got) - min(got) > 0.8  # pieces differ in how they are held
    for s, p in enumerate(got):
        target = A.draw_target(em, s)
        lo, hi = A._Held(piece).polyphony(A.MIN_SCALE), A._Held(piece).polyphony(A.MAX_SCALE)
        assert p == pytest.approx(min(max(target, lo), hi), abs=0.15)
    # a morph reads the mean of its emotions; an empty piece is returned as it is
    morph = A.articulate(piece, [Emotion(0.4, 0.6), Emotion(0.6, 0.4)], seed=3)
    assert metrics.polyphony(morph) == pytest.approx(metrics.polyphony(A.articulate(piece, em, seed=3)))
    empty = Piece(tracks=[Track("Melody")])
    assert A.articulate(empty, em, seed=1) is empty
    assert not math.isnan(got[0])


_SHIPPED = (checkpoint_path("compose") / "diffgan" / "model.safetensors").is_file()


@pytest.mark.skipif(not _SHIPPED, reason="shipped compose checkpoint missing")
def test_compose_articulates_each_textured_piece_with_its_seed(monkeypatch):
    pytest.importorskip("torch")
    from emomusic.compose import compose

    calls = []
    real = A.articulate

    def spy(piece, emotions, *, seed=0):
        calls.append(seed)
        return real(piece, emotions, seed=seed)

    monkeypatch.setattr(A, "articulate", spy)
    pieces = compose(Emotion(0.6, 0.6), bars=8, n=6, seed=40)
    assert calls == [40 + i for i in range(6)]
    poly = [metrics.polyphony(p) for p in pieces]
    assert max(poly) - min(poly) > 1.0  # the pieces hold their notes differently
    calls.clear()
    compose(Emotion(0.6, 0.6), bars=8, n=2, seed=40, texture=False)
    assert calls == []  # the model's own notes are left as decoded


def test_fit_targets_is_the_log_polyphony_per_quadrant():
    pieces = [_piece(s) for s in range(6)]
    quads = ["Q1", "Q1", "Q1", "Q3", "Q3", "Q2"]
    got = A.fit_targets(pieces + [Piece(tracks=[Track("Melody")])], quads + ["Q4"])  # empty: skipped
    assert set(got) == {"Q1", "Q2", "Q3"}
    logs = np.log([metrics.polyphony(p) for p in pieces])
    assert got["Q1"] == (round(float(logs[:3].mean()), 3), round(float(logs[:3].std()), 3))
    assert got["Q2"] == (round(float(logs[5]), 3), 0.0)


def test_targets_script_reads_an_emopia_split(tmp_path, capsys):
    """scripts/articulation_targets.py on a tiny EMOPIA-like folder: the train split's clips,
    cut to --bars, per quadrant (clip-name prefix); the val clips are not read."""
    import json

    from helpers import load_file

    from emomusic.io import write_piece

    (tmp_path / "midis").mkdir()
    (tmp_path / "split").mkdir()
    names = {"train": ["Q1_a_0.mid", "Q1_b_0.mid", "Q4_c_0.mid"], "val": ["Q2_d_0.mid"]}
    pieces = {}
    for i, name in enumerate(names["train"] + names["val"]):
        pieces[name] = _piece(i, bars=6)
        write_piece(pieces[name], tmp_path / "midis" / name)
    for split, ns in names.items():
        (tmp_path / "split" / f"{split}_clip.csv").write_text(",clip_name\n" + "".join(f"{k},{n}\n" for k, n in enumerate(ns)))
    (tmp_path / "midis" / "Q4_e_0.mid").write_bytes(b"not midi")  # unreadable clips are skipped
    with open(tmp_path / "split" / "train_clip.csv", "a") as fh:
        fh.write("3,Q4_e_0.mid\n")
    script = load_file("scripts/articulation_targets.py")
    assert script.main([str(tmp_path), "--bars", "4"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["clips"] == 3 and set(out["polyphony_log"]) == {"Q1", "Q4"}
    from emomusic.io import read_piece

    crop = load_file("benchmarks/realism.py").crop  # the realism benchmark's cut, which the script reads with
    cut = [crop(read_piece(tmp_path / "midis" / n), 4) for n in names["train"]]
    assert max(n.end for n in cut[0].notes) <= 16.0 + 1e-9
    assert out["polyphony_log"] == {k: list(v) for k, v in A.fit_targets(cut, ["Q1", "Q1", "Q4"]).items()}
    assert script.main([str(tmp_path / "nowhere")]) == 2
    assert "Error" in capsys.readouterr().err


def test_a_note_ending_on_the_chord_change_may_be_held_through_the_next_window():
    """4/4, half-bar windows: a note ending just before beat 2 stops at 2; one ending on beat 2
    (or just after) may be held up to beat 4, never past it."""
    mel = [Note(72, 0.0, 1.75), Note(76, 4.0, 4.0)]
    low = [Note(48, 0.0, 2.0), Note(43, 0.0, 2.25)]
    out = A.scale_lengths(Piece(tracks=[Track("Melody", notes=mel), Track("Bass", notes=low)]), 2.5)
    assert [(n.pitch, n.end) for n in out.tracks[0].notes] == [(72, 2.0), (76, 8.0)]
    assert [(n.pitch, n.end) for n in out.tracks[1].notes] == [(48, 4.0), (43, 4.0)]


@pytest.mark.parametrize("scale", [0.6, 0.9, 1.0, 1.3, 2.5])
def test_fast_polyphony_with_rests_and_very_short_notes(scale):
    """Silent steps do not count (as in metrics.polyphony), a note shorter than a step counts one step."""
    notes = [Note(60, 0.0, 1.0), Note(64, 0.0, 0.05), Note(67, 0.5, 0.02), Note(72, 3.0, 0.5), Note(76, 3.0, 1.0),
             Note(48, 6.0, 2.0), Note(55, 6.0, 2.0), Note(64, 6.0, 2.0)]
    piece = Piece(tracks=[Track("Piano", notes=notes)])
    held = A._Held(piece)
    assert held.polyphony(scale) == pytest.approx(metrics.polyphony(A.scale_lengths(piece, scale)), abs=1e-9)


def test_shortening_never_lengthens_and_lengthening_never_shortens():
    """Off-grid lengths: the sixteenth-note grid would round some of them the other way."""
    notes = [Note(60, 0.0, 0.2), Note(62, 0.5, 0.1), Note(64, 1.0, 0.3), Note(67, 1.5, 0.5), Note(48, 4.0, 4.0)]
    piece = Piece(tracks=[Track("Piano", notes=notes)])
    for scale in (0.6, 0.8, 0.95):
        out = A.scale_lengths(piece, scale)
        assert all(b.duration <= a.duration + 1e-9 for a, b in zip(piece.notes, out.notes)), scale
    for scale in (1.05, 1.2, 2.0):
        out = A.scale_lengths(piece, scale)
        assert all(b.duration >= a.duration - 1e-9 for a, b in zip(piece.notes, out.notes)), scale
    # 0.2 x 1.2 and 0.1 x 1.2 round to one sixteenth (at least one step); 0.3 x 1.2 would round
    # down to 0.25 and keeps 0.3; 0.5 x 1.2 = 0.6 rounds to 0.5
    assert [round(n.duration, 6) for n in A.scale_lengths(piece, 1.2).notes[:4]] == [0.25, 0.25, 0.3, 0.5]



def test_a_lengthened_note_stops_at_its_pitch_again_in_every_track():
    """The same-pitch stop holds in each track, not only the first (tracks sorted apart)."""
    first = [Note(60, 0.0, 0.5), Note(64, 1.0, 0.5)]
    second = [Note(72, 0.0, 0.5), Note(72, 1.0, 0.5), Note(48, 4.0, 4.0)]
    piece = Piece(tracks=[Track("Melody", notes=first), Track("Accompaniment", notes=second)])
    out = A.scale_lengths(piece, 2.5)
    assert [(n.pitch, n.start, n.end) for n in out.tracks[1].notes] == [(72, 0.0, 1.0), (72, 1.0, 2.0), (48, 4.0, 8.0)]
    assert [(n.pitch, n.end) for n in out.tracks[0].notes] == [(60, 1.25), (64, 2.0)]
