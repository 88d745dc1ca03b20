"""emomusic.compose.texture: chords from notes + key, left-hand patterns, fills, pedal, features."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from emomusic.compose import texture as T
from emomusic.emotion import Emotion
from emomusic.form import parse_form
from emomusic.paths import checkpoint_path
from emomusic.piece import KeySignature, Note, Piece, Tempo, TimeSignature, Track

# EMOPIA train split (876 clips, split/train_clip.csv, quadrant = file-name prefix), measured
# with texture_features (as benchmarks/texture.py prints them): 10th and 90th percentiles of
# the Q1 clips. test_emopia_q1_ranges recomputes them from the data.
EMOPIA_Q1_POLYPHONY = (3.98, 7.92)
EMOPIA_Q1_NOTES_PER_BEAT = (2.62, 6.04)

C_MAJOR = KeySignature(0, "major")


def _line(pitches, beat: float = 1.0, start: float = 0.0, dur: float = 0.9, vel: int = 90) -> list[Note]:
    return [Note(p, start + i * beat, dur, vel) for i, p in enumerate(pitches)]


def _piece(melody: list[Note], key: KeySignature = C_MAJOR, accomp: list[Note] | None = None) -> Piece:
    return Piece(tracks=[Track("Melody", 0, False, melody), Track("Accompaniment", 0, False, accomp or [])],
                 tempos=[Tempo(100.0)], keys=[key], time_signatures=[TimeSignature(4, 4)])


# a C major melody over I | IV | V | I (two bars each: chords per half bar)
C_TUNE = _line([72, 76, 79, 76, 72, 79, 76, 72,   # C E G: I
                77, 81, 84, 81, 77, 72, 81, 77,   # F A C: IV
                79, 83, 86, 83, 79, 74, 83, 79,   # G B D: V
                72, 76, 79, 84, 79, 76, 72, 72])  # I


def _added(before: Piece, after: Piece) -> list[Note]:
    """Notes of ``after`` whose (pitch, start) is new."""
    have = {(n.pitch, round(n.start, 4)) for n in before.notes}
    return [n for n in after.notes if (n.pitch, round(n.start, 4)) not in have]


def test_cadence_bars_get_dominant_and_tonic():
    plan = parse_form("AABA", 16)  # cadences: bar 3 half, 7 authentic, 11 half, 15 authentic
    want = T.cadence_constraints(plan, 32, 2)
    assert want[6] == want[7] == "v"  # half cadence: the dominant over bar 3 (V in major)
    assert want[13] == "V" and want[14] == want[15] == "I"  # V - I into bar 7
    assert want[30] == want[31] == "I"  # the final tonic
    # a melody that never outlines V still gets it where the plan asks
    tune = [n for k in range(16) for n in _line([72, 76, 79, 76], start=4.0 * k)]
    chords = T.estimate_chords(tune, C_MAJOR, 32, constraints=want)
    assert [chords[w].degree for w in (6, 7, 13, 14, 15, 30, 31)] == ["V", "V", "V", "I", "I", "I", "I"]
    # and the accompaniment's bass plays G in the half-cadence bar
    piece = _piece(tune)
    out = T.add_texture(piece, Emotion(0.5, -0.5), form=plan, seed=1)
    bass = [n for n in _added(piece, out) if 12.0 <= n.start < 16.0]
    assert bass and min(bass, key=lambda n: n.pitch).pitch % 12 == 7


def test_without_a_form_the_piece_ends_on_the_tonic():
    tune = C_TUNE[:24] + _line([77, 81, 84, 81, 81, 84, 81, 84], start=24.0)  # ends on A and C: IV or vi by itself
    assert T.estimate_chords(tune, C_MAJOR, 16)[-1].degree in ("IV", "vi")  # the chord without the rule
    piece = _piece(tune)
    out = T.add_texture(piece, Emotion(0.5, 0.0), seed=0)
    last_bar = [n for n in _added(piece, out) if n.start >= 28.0]
    assert last_bar and {n.pitch % 12 for n in last_bar} <= {0, 4, 7}
    low = min(last_bar, key=lambda n: n.pitch)
    assert low.pitch % 12 == 0 and low.end == pytest.approx(32.0)  # the tonic in the bass, held to the end


@pytest.mark.parametrize("emotion", [Emotion(0.6, 0.6), Emotion(-0.6, 0.6), Emotion(-0.6, -0.6), Emotion(0.6, -0.6)])
def test_voicing_range_no_semitone_clash_and_softer(emotion):
    piece = _piece(C_TUNE)
    out = T.add_texture(piece, emotion, seed=3)
    new = _added(piece, out)
    assert new, "the texture added no note"
    melody = out.tracks[0].notes
    lo = T.bass_floor(emotion)
    for n in new:
        assert lo <= n.pitch <= 84
        for m in melody:
            if m.start < n.end - 1e-6 and n.start < m.end - 1e-6 and m is not n:
                assert abs(m.pitch - n.pitch) % 12 not in (1, 11), (n, m)
    left = [n for n in new if n.pitch < 60]
    assert left and max(n.pitch for n in left) <= T.LEFT_HAND_TOP
    assert np.mean([n.velocity for n in left]) < np.mean([n.velocity for n in C_TUNE])
    # every generated melody note is kept (durations may ring longer under the pedal)
    kept = {(n.pitch, n.start) for n in out.tracks[0].notes}
    assert all((n.pitch, n.start) in kept for n in C_TUNE)
    assert all(a.end >= b.end - 1e-9 for a, b in zip(sorted(out.tracks[0].notes, key=lambda n: (n.start, n.pitch)),
                                                       sorted(T.add_texture(piece, emotion, seed=3, pedal=False).tracks[0].notes,
                                                              key=lambda n: (n.start, n.pitch))))


def test_the_bass_floor_follows_arousal_not_valence():
    assert T.bass_floor(Emotion(-0.6, 0.0)) == T.bass_floor(Emotion(0.6, 0.0)) == T.BASS_CENTRE
    assert T.bass_floor(Emotion(0.0, 0.8)) < T.bass_floor(Emotion(0.0, -0.8))  # excited music reaches lower


def test_density_grows_with_arousal():
    sparse = _line([72, 76, 79, 76] * 4, beat=4.0, dur=3.5)  # one melody note per bar, 16 bars
    piece = _piece(sparse)
    counts = []
    for a in (-0.8, 0.0, 0.8):  # over a few seeds (each picks one pattern of the arousal level per phrase)
        counts.append(sum(len(T.add_texture(piece, Emotion(0.5, a), seed=s, fill=False).notes) for s in range(4)))
    assert 4 * len(sparse) < min(counts[0], counts[1]) and max(counts[0], counts[1]) < counts[2]
    feats = [T.texture_features(T.add_texture(piece, Emotion(0.5, a), seed=2)) for a in (-0.8, 0.8)]
    assert feats[1]["notes_per_beat"] > feats[0]["notes_per_beat"]


def test_deterministic_with_a_seed_and_input_untouched():
    piece = _piece(C_TUNE)
    before = [list(t.notes) for t in piece.tracks]
    a = T.add_texture(piece, Emotion(0.6, 0.6), seed=5)
    b = T.add_texture(piece, Emotion(0.6, 0.6), seed=5)
    assert [t.notes for t in a.tracks] == [t.notes for t in b.tracks]
    assert [t.notes for t in piece.tracks] == before
    patterns = {tuple(n.start for n in T.add_texture(piece, Emotion(0.6, 0.6), seed=s).notes) for s in range(6)}
    assert len(patterns) > 1  # the seed picks among the patterns of the arousal level


def test_full_left_hand_is_complemented_not_doubled_and_clashes_thinned():
    busy = [Note(p, 0.5 * i, 0.45, 60) for i, p in enumerate([48, 55, 52, 55] * 16)]  # C major eighths, 8 bars
    clash = Note(61, 0.0, 1.0, 60)  # C# under the melody's C: a semitone off, no chord tone of I
    piece = _piece(_line([72, 76, 79, 76] * 8, dur=0.9), accomp=busy + [clash])
    out = T.add_texture(piece, Emotion(0.6, 0.6), seed=0, fill=False)
    new_low = [n for n in _added(piece, out) if n.pitch < 60 and n.start < 28.0]
    assert len(new_low) <= 2  # the generated left hand already plays an onset every half beat
    assert all((n.pitch, n.start) != (61, 0.0) for n in out.notes)
    kept = {(n.pitch, n.start) for n in out.tracks[1].notes}
    assert all((n.pitch, n.start) in kept for n in busy)


def test_right_hand_fill_under_strong_beats():
    tune = _line([76, 79, 84, 79] * 4, dur=0.9)
    piece = _piece(tune)
    out = T.add_texture(piece, Emotion(0.6, 0.9), seed=0)
    melody = out.tracks[0].notes
    fills = [n for n in melody if (n.pitch, n.start) not in {(m.pitch, m.start) for m in tune}]
    assert fills
    for f in fills:  # a fill a third to a sixth under its note, an inner voice within the octave
        top = next(m for m in tune if m.start == f.start)  # under the lowest melody note sounding with it
        low = min(m.pitch for m in tune if m.start < f.end - 1e-6 and f.start < m.end - 1e-6)
        assert 3 <= low - f.pitch <= 12 and f.velocity < top.velocity


def test_inner_voices_hold_the_chord_under_each_half_bars_first_melody_note(monkeypatch):
    monkeypatch.setattr(T, "_fills", lambda *a, **k: [])  # only the inner voices in the right hand
    # one melody note per half bar, some off the half bar's start, over I | IV | V | I (two bars each)
    starts = [0.0, 3.25, 4.0, 6.0, 8.0, 10.0, 13.5, 14.0, 16.0, 18.0, 20.0, 22.0, 24.0, 26.0, 28.0, 30.0]
    pitches = [79, 76, 79, 84, 81, 77, 81, 84, 79, 83, 86, 83, 84, 79, 76, 72]
    tune = [Note(p, s, 0.5 if s % 2 else 1.5, 90) for p, s in zip(pitches, starts)]
    chord_pcs = [{0, 4, 7}] * 4 + [{5, 9, 0}] * 4 + [{7, 11, 2}] * 4 + [{0, 4, 7}] * 4
    roots = [36] * 4 + [41] * 4 + [43] * 4 + [36] * 4  # a left hand that states the chords (root, fifth, tenth)
    left = [Note(r + d, 2.0 * w, 2.0, 60) for w, r in enumerate(roots) for d in (0, 7, 16)]
    piece = _piece(tune, accomp=left)
    out = T.add_texture(piece, Emotion(0.5, 0.3), seed=0, pedal=False)  # not calm: struck every half bar
    colour = [2] * 4 + [7] * 4 + [5] * 4 + [2] * 4  # add9 over I and IV, the seventh over V
    inner = [n for n in out.tracks[0].notes if (n.pitch, n.start) not in {(m.pitch, m.start) for m in tune}]
    by_start: dict = {}
    for n in inner:
        by_start.setdefault(n.start, []).append(n)
    # struck with the melody note that opens a half bar within a beat (3.25 and 13.5 come too late)
    assert sorted(by_start) == [s for s in starts if s % 2 == 0]
    # T.INNER_VOICES each, up to: where the left hand already holds a chord tone in that octave
    # (the pattern's G4 in the last I), one fewer
    assert all(1 <= len(notes) <= 2 for notes in by_start.values())
    assert sum(len(notes) == 2 for notes in by_start.values()) >= len(by_start) - 1
    for s, notes in by_start.items():
        w = int(s // 2)
        lead = next(m for m in tune if m.start == s)
        for n in notes:
            assert 3 <= lead.pitch - n.pitch <= 12 and n.pitch >= 55
            allowed = chord_pcs[w] | ({colour[w]} if w < 14 else set())  # the last bar: a plain tonic triad
            assert n.pitch % 12 in allowed, (s, n)
            assert n.end == pytest.approx(2.0 * (w + 1))  # held to the half bar's end
            assert n.velocity == round(90 * 0.75)
            for m in out.notes:  # no semitone against anything sounding with it
                if m is not n and m.start < n.end - 1e-6 and n.start < m.end - 1e-6:
                    assert abs(m.pitch - n.pitch) % 12 not in (1, 11), (n, m)
        # the closest chord tones under the melody: nothing allowed was skipped between them
        lowest = min(n.pitch for n in notes)
        allowed = chord_pcs[w] | ({colour[w]} if w < 14 else set())
        skipped = [p for p in range(lowest + 1, lead.pitch - 2) if p % 12 in allowed
                   and p not in {n.pitch for n in notes}]
        assert all(any(abs(m.pitch - p) % 12 in (0, 1, 11) for m in out.notes if m.start < s + 2 and m.end > s)
                   for p in skipped), (s, skipped)


def test_calm_inner_voices_ring_on_while_the_chord_lasts(monkeypatch):
    monkeypatch.setattr(T, "_fills", lambda *a, **k: [])
    # the given left hand is all there is (no pattern, no colour tone): nothing else takes the keys
    monkeypatch.setattr(T, "BUSY_ONSETS_PER_BEAT", 0.25)
    monkeypatch.setattr(T, "colour_chance", lambda emotion, shift=0.0: 0.0)
    tune = [Note(76, 2.0 * w, 1.5, 80) for w in range(16)]  # E5 on every half bar over I | IV | V | I
    roots = [36] * 4 + [41] * 4 + [43] * 4 + [36] * 4
    left = [Note(r + d, 2.0 * w, 2.0, 60) for w, r in enumerate(roots) for d in (0, 7, 16)]
    piece = _piece(tune, accomp=left)

    def inner(emotion):
        out = T.add_texture(piece, emotion, seed=0, pedal=False)
        return sorted([n for n in out.tracks[0].notes if n.pitch != 76], key=lambda n: (n.start, n.pitch))

    lively, calm = inner(Emotion(0.5, 0.3)), inner(Emotion(0.5, -0.6))
    assert sorted({n.start for n in lively}) == [2.0 * w for w in range(16)]  # struck on every half bar
    # calm: struck where the chord changes (at 0, 8, 16 and 24 at least), then held while it lasts:
    # the same pitches sound over the same time as the lively version, with far fewer onsets
    onsets = sorted({n.start for n in calm})
    assert {0.0, 8.0, 16.0, 24.0} <= set(onsets) and len(onsets) <= 8
    assert all(n.duration >= 2.0 for n in calm) and max(n.duration for n in calm) == 8.0

    def sounding(notes, t):
        return sorted(n.pitch for n in notes if n.start <= t < n.end)

    assert all(sounding(calm, t + 0.5) == sounding(lively, t + 0.5) for t in range(32))
    # a key the other hand strikes is not held through: the inner voice is struck again after it
    g4 = Note(67, 5.0, 0.5, 60)  # the left hand's G4 in the second half of bar 1 (I: G is a chord tone)
    piece = _piece(tune, accomp=left + [g4])
    out = T.add_texture(piece, Emotion(0.5, -0.6), seed=0, pedal=False)
    g = sorted((n.start, n.end) for n in out.tracks[0].notes if n.pitch == 67)
    assert g and all(e <= 5.0 or s >= 5.5 for s, e in g)  # never sounding with the left hand's G4


def test_sustain_pedal_and_legato_stop_at_seconds():
    notes = [Note(60, 0.0, 0.5), Note(64, 0.5, 0.5), Note(61, 1.0, 0.5), Note(67, 2.5, 0.5)]
    held = T.sustain_pedal(notes, changes=[0.0, 2.0], until=4.0)
    assert held[0].end == pytest.approx(1.0)  # C stops where C# starts
    assert held[1].end == pytest.approx(2.0)  # E rings to the pedal change
    assert held[3].end == pytest.approx(4.0)
    assert T.legato_ends([Note(60, 0.0, 0.5), Note(62, 1.0, 0.5), Note(64, 5.0, 0.5)]) == [1.0, 1.5, 5.5]


def test_one_track_piece_and_empty_piece():
    piece = Piece(tracks=[Track("Piano", 0, False, C_TUNE + _line([48] * 8, beat=4.0, dur=3.9))], keys=[C_MAJOR])
    out = T.add_texture(piece, Emotion(0.0, 0.0), seed=0)
    assert [t.name for t in out.tracks] == ["Melody", "Accompaniment"] and len(out.notes) > len(piece.notes)
    empty = Piece(tracks=[Track("Melody", 0, False, [])])
    assert T.add_texture(empty, Emotion(0.0, 0.0)) is empty


def test_texture_features_on_a_hand_made_piece():
    piece = _piece([Note(72, 0.0, 2.0), Note(76, 2.0, 2.0)], accomp=[Note(48, 0.0, 4.0), Note(55, 0.0, 4.0), Note(40, 2.0, 2.0)])
    f = T.texture_features(piece)
    assert f["polyphony"] == pytest.approx(3.5)  # 3 sounding notes, then 4
    assert f["notes_per_beat"] == pytest.approx(5 / 4)
    assert f["notes_per_second"] == pytest.approx(5 / (4 * 60 / 100))
    assert f["low_share"] == pytest.approx(1 / 5)
    assert f["lh_onsets_per_beat"] == pytest.approx(2 / 4) and f["lh_notes_per_onset"] == pytest.approx(3 / 2)
    assert f["pitch_spread"] == pytest.approx(np.std([72, 76, 48, 55, 40]))


def test_calm_threshold():
    assert T.calm_threshold(0.6, Emotion(0.5, 0.5)) == pytest.approx(0.6)
    assert T.calm_threshold(0.6, Emotion(0.5, -0.5)) == pytest.approx(0.6 + 0.6 * 0.5)
    assert T.calm_threshold(0.9, Emotion(0.5, -0.9)) == 0.95  # capped


def test_agitated_music_decodes_sparser():
    """Negative valence with positive arousal (Q2) raises the threshold by up to 0.2: all of it
    from the Q2 centre on, in proportion to the smaller of -valence and arousal before that."""
    assert T.calm_threshold(0.6, Emotion(-0.6, 0.6)) == pytest.approx(0.6 + T.AGITATED_THRESHOLD)
    assert T.calm_threshold(0.6, Emotion(-1.0, 0.9)) == pytest.approx(0.6 + T.AGITATED_THRESHOLD)
    assert T.calm_threshold(0.6, Emotion(-0.3, 0.9)) == pytest.approx(0.6 + T.AGITATED_THRESHOLD / 2)
    assert T.calm_threshold(0.6, Emotion(-0.9, 0.15)) == pytest.approx(0.6 + T.AGITATED_THRESHOLD / 4)
    for v, a in ((0.6, 0.6), (-0.6, 0.0), (0.0, 0.8)):  # not agitated: unchanged
        assert T.calm_threshold(0.6, Emotion(v, a)) == pytest.approx(0.6)
    # decode_thresholds follows: the melody threshold drops from the raised one
    th, melody = T.decode_thresholds(0.6, Emotion(-0.6, 0.6))
    assert th == pytest.approx(0.8) and melody[1] == pytest.approx(0.8 - T.MELODY_THRESHOLD_DROP)


_SHIPPED = (checkpoint_path("compose") / "diffgan" / "model.safetensors").is_file()


@pytest.mark.skipif(not _SHIPPED, reason="shipped compose checkpoint missing")
def test_shipped_q1_pieces_are_fuller_and_inside_emopia_ranges(monkeypatch):
    pytest.importorskip("torch")
    from emomusic.compose import compose

    plain = compose("Q1", n=6, seed=0, texture=False)
    seen = []
    add = T.add_texture

    def spy(piece, *args, **kw):
        out = add(piece, *args, **kw)
        seen.append((piece, out))
        return out

    monkeypatch.setattr(T, "add_texture", spy)
    full = compose("Q1", n=6, seed=0)
    fp = [T.texture_features(p) for p in plain]
    ff = [T.texture_features(p) for p in full]
    poly = np.median([f["polyphony"] for f in ff])
    npb = np.median([f["notes_per_beat"] for f in ff])
    assert poly > np.median([f["polyphony"] for f in fp]) and npb > np.median([f["notes_per_beat"] for f in fp])
    assert EMOPIA_Q1_POLYPHONY[0] <= poly <= EMOPIA_Q1_POLYPHONY[1]
    assert EMOPIA_Q1_NOTES_PER_BEAT[0] <= npb <= EMOPIA_Q1_NOTES_PER_BEAT[1]
    # the generated melody is kept: every note of the melody the texture got is in what it gave
    # (the plain pieces decode at another threshold: texture.decode_thresholds)
    assert len(seen) == 6
    for a, b in seen:
        assert {(n.pitch, n.start) for n in a.tracks[0].notes} <= {(n.pitch, n.start) for n in b.tracks[0].notes}


@pytest.mark.data
def test_emopia_q1_ranges(shared_data):
    from helpers import load_benchmark

    texture = load_benchmark("texture")
    ranges, real_features = texture.ranges, texture.real_features

    rows = real_features(shared_data / "emopia", "train", quadrants=("Q1",))
    q1 = ranges({"Q1": rows["Q1"]})["Q1"]
    assert q1["polyphony"][0] == pytest.approx(EMOPIA_Q1_POLYPHONY[0], abs=0.01)
    assert q1["polyphony"][2] == pytest.approx(EMOPIA_Q1_POLYPHONY[1], abs=0.01)
    assert q1["notes_per_beat"][0] == pytest.approx(EMOPIA_Q1_NOTES_PER_BEAT[0], abs=0.01)
    assert q1["notes_per_beat"][2] == pytest.approx(EMOPIA_Q1_NOTES_PER_BEAT[1], abs=0.01)


@pytest.mark.skipif(not _SHIPPED, reason="shipped compose checkpoint missing")
def test_cli_no_texture_flag(tmp_path):
    import json

    from click.testing import CliRunner

    from emomusic.cli import cli

    counts = {}
    for flag in ([], ["--no-texture"]):
        res = CliRunner().invoke(cli, ["compose", "--valence", "0.6", "--arousal", "0.6", "--bars", "8", "--json",
                                       "-o", str(tmp_path / f"x{len(flag)}.mid")] + flag, catch_exceptions=False)
        assert res.exit_code == 0, res.output
        out = json.loads(res.output)
        assert out["texture"] is (not flag)
        counts[bool(flag)] = out["files"][0]["notes"]
    assert counts[False] > counts[True]


def test_returning_sections_keep_their_pattern(monkeypatch):
    tune = [n for k in range(4) for n in _line([72, 76, 79, 76, 77, 81, 84, 81, 79, 83, 86, 83, 72, 76, 79, 72],
                                                  start=16.0 * k)]  # one 4-bar phrase, four times
    piece = _piece(tune)
    plan = parse_form("AABA", 16)
    for seed in range(4):
        new = _added(piece, T.add_texture(piece, Emotion(0.5, 0.7), form=plan, seed=seed, fill=False))

        def rhythm(sec):  # added onsets in the first three bars of a section, relative to it
            return sorted({round(n.start - 16.0 * sec, 3) for n in new if 16.0 * sec <= n.start < 16.0 * sec + 12.0})

        assert rhythm(0) == rhythm(1) == rhythm(3) and rhythm(0)
    # with fills and the pedal: a repeat (same label) sounds as its first statement but for its cadence bar
    out = T.add_texture(piece, Emotion(0.5, 0.7), form=plan, seed=0)
    notes = {sec: {(n.pitch, round(n.start - 16.0 * sec, 3)) for n in out.notes if 16.0 * sec <= n.start < 16.0 * sec + 12.0}
             for sec in range(4)}
    assert notes[0] == notes[1] == notes[3]
    # a varied return (A') takes a pattern of its own; both A' sections share it (moderate arousal:
    # its three patterns have three different rhythms)
    varied = parse_form("AA'BA'", 16)
    monkeypatch.setattr(T, "colour_chance", lambda emotion, shift=0.0: 0.0)  # no half-bar-dependent colour onsets
    for seed in range(4):
        new = _added(piece, T.add_texture(piece, Emotion(0.5, 0.0), form=varied, seed=seed, fill=False))
        cells = {sec: {(n.pitch, round(n.start - 16.0 * sec, 3)) for n in new if 16.0 * sec <= n.start < 16.0 * sec + 12.0}
                 for sec in range(4)}
        onsets = {sec: sorted({t for _, t in cells[sec] if t < 4.0}) for sec in range(4)}  # each section's first bar
        assert onsets[1] == onsets[3] and onsets[1] != onsets[0], seed  # one pattern for both A', not A's


def test_calm_left_hand_adds_sevenths_and_ninths_without_semitones(monkeypatch):
    piece = _piece(C_TUNE)  # I | IV | V | I, two bars each
    calm = Emotion(0.5, -0.7)
    colour = {0: 2, 1: 7, 2: 5}  # per two bars: Cadd9's D, Fadd9's G, G7's F

    def pcs(p: Piece, k: int) -> set:  # pitch classes of the accompaniment in bars 2k, 2k+1
        return {n.pitch % 12 for n in p.tracks[1].notes if 8 * k <= n.start < 8 * k + 8}

    with_colour = [T.add_texture(piece, calm, seed=s) for s in range(4)]
    monkeypatch.setattr(T, "colour_chance", lambda emotion, shift=0.0: 0.0)  # plain triads
    plain = [T.add_texture(piece, calm, seed=s) for s in range(4)]
    triads = ({0, 4, 7}, {5, 9, 0}, {7, 11, 2})
    for a, b in zip(with_colour, plain):
        for k in range(3):
            assert pcs(b, k) <= triads[k]
            assert pcs(a, k) == triads[k] | {colour[k]}, (k, pcs(a, k))
        last = {n.pitch % 12 for n in a.tracks[1].notes if n.start >= 28.0}
        assert last and last <= {0, 4, 7}  # the final tonic has no colour tone
        for n in a.tracks[1].notes:  # a colour tone never sounds a semitone against the melody
            assert all(abs(m.pitch - n.pitch) % 12 not in (1, 11) for m in a.tracks[0].notes
                       if m.start < n.end - 1e-6 and n.start < m.end - 1e-6)


def test_decode_thresholds_lower_the_melody_register_unless_calm():
    th, melody = T.decode_thresholds(0.6, Emotion(0.5, 0.5))
    assert th == 0.6 and melody == (T.MELODY_REGISTER, pytest.approx(0.6 - T.MELODY_THRESHOLD_DROP))
    th, melody = T.decode_thresholds(0.6, Emotion(0.5, -0.25))  # half the drop at arousal -0.25
    assert th == T.calm_threshold(0.6, Emotion(0.5, -0.25))
    assert melody[1] == pytest.approx(th - T.MELODY_THRESHOLD_DROP / 2)
    th, melody = T.decode_thresholds(0.6, Emotion(-0.6, -0.6))
    assert th == T.calm_threshold(0.6, Emotion(-0.6, -0.6)) and melody is None  # a calm melody stays sparse
    assert T.decode_thresholds(0.1, Emotion(0, 1))[1][1] >= 0.05  # never at or under 0


def test_repeat_chords_copies_a_return_but_not_its_fixed_cadence():
    plan = parse_form("AABA", 16)
    chords = list(T.diatonic_chords(C_MAJOR))
    n_win, wpb = 32, 2
    got = [chords[(w * 5) % len(chords)] for w in range(n_win)]  # every half bar its own chord
    a = _line([60, 64, 67, 72, 65, 69, 72, 67, 64, 62, 60, 59], beat=1.0)  # bars 0-2 of A
    b = _line([62, 65, 69, 71] * 3, beat=1.0)
    at = lambda notes, beats, k=0: [replace(n, start=n.start + beats, pitch=n.pitch + k) for n in notes]  # noqa: E731
    notes = a + at(a, 16.0) + at(b, 32.0) + at(a, 48.0)
    fixed = T.cadence_constraints(plan, n_win, wpb)
    out = T._repeat_chords(list(got), plan, wpb, notes, 4.0, fixed)
    for w in range(n_win):
        if 8 <= w < 16 or 24 <= w < 32:  # the returns of A (bars 4-7, 12-15)
            assert out[w] == (got[w] if w in fixed else got[w % 8])
        else:
            assert out[w] == got[w]
    abcd = parse_form("ABCD", 16)
    assert T._repeat_chords(list(got), abcd, wpb, notes, 4.0, T.cadence_constraints(abcd, n_win, wpb)) == got
    # a return with other notes (a morph re-conditioned it) keeps its own chords
    moved = a + at(a, 16.0) + at(b, 32.0) + at(a, 48.0, -1)
    out = T._repeat_chords(list(got), plan, wpb, moved, 4.0, fixed)
    assert out[24:32] == got[24:32] and out[8:16] != got[8:16]


def test_voice_two_is_the_third_so_broken_chords_sound_the_whole_triad(monkeypatch):
    from emomusic.chords import diatonic_chords

    I, V = diatonic_chords(C_MAJOR)[0], diatonic_chords(C_MAJOR)[4]
    assert T._voicing(I, None, 36, 67) == ([36, 43, 52, 48], None)  # C2 | G2 E3 C3: fifth, tenth, octave
    assert T._voicing(V, 36, 36, 67)[0] == [43, 50, 59, 55]  # G2 | D3 B3 G3
    # an Alberti figure (voices 0 2 1 2) plays root, tenth, fifth, tenth: the whole triad
    monkeypatch.setattr(T, "patterns_for", lambda arousal: ("alberti",))
    tune = [Note(84, 4.0 * b, 4.0, 90) for b in range(8)]
    out = T.add_texture(_piece(tune), Emotion(0.6, 0.9), seed=0, pedal=False)
    at: dict = {}
    for n in out.tracks[1].notes:
        if n.start < 2.0:
            at.setdefault(n.start, set()).add(n.pitch % 12)
    assert sorted(at) == [0.0, 0.5, 1.0, 1.5] and 0 in at[0.0]  # (the bass may get the chord's ninth with it)
    assert (at[0.5], at[1.0], at[1.5]) == ({4}, {7}, {4})
