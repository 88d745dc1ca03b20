"""emomusic.compose.passing: the scale step between two melody notes a third apart."""

from __future__ import annotations

import numpy as np
import pytest

from emomusic.compose import passing as P
from emomusic.emotion import Emotion
from emomusic.piece import KeySignature, Note, Piece, Tempo, TimeSignature, Track

C_MAJOR = KeySignature(0, "major")
C_MINOR = KeySignature(0, "minor")


def _notes(*spec) -> list[Note]:
    """(pitch, start, duration) triples -> notes at velocity 80."""
    return [Note(p, s, d, 80) for p, s, d in spec]


def _cells(notes) -> list[tuple]:
    return [(n.pitch, n.start, n.duration) for n in notes]


def test_scale_step_between():
    assert P.scale_step_between(60, 64, C_MAJOR) == 62  # C-E: D
    assert P.scale_step_between(64, 67, C_MAJOR) == 65  # E-G: F (F# is not in C major)
    assert P.scale_step_between(60, 63, C_MINOR) == 62  # C-Eb: D
    assert P.scale_step_between(63, 67, C_MINOR) == 65  # Eb-G in C minor: F (E is not in the scale)
    assert P.scale_step_between(63, 67, C_MAJOR) is None  # in C major both E and F lie between
    assert P.scale_step_between(60, 62, C_MAJOR) is None  # a step has nothing between


def test_a_third_held_to_the_next_note_gets_its_passing_note():
    # C4 (2 beats) then E4: C keeps the first beat, D4 takes the second (velocity 80 * 0.9 = 72)
    out = P.passing_tones(_notes((60, 0.0, 2.0), (64, 2.0, 1.0)), C_MAJOR, 1.0)
    assert _cells(out) == [(60, 0.0, 1.0), (62, 1.0, 1.0), (64, 2.0, 1.0)]
    assert out[1].velocity == 72
    # falling: G4 (1 beat) to E4: F4 on the half beat
    out = P.passing_tones(_notes((67, 4.0, 1.0), (64, 5.0, 1.0)), C_MAJOR, 1.0)
    assert _cells(out) == [(67, 4.0, 0.5), (65, 4.5, 0.5), (64, 5.0, 1.0)]


@pytest.mark.parametrize("notes, why", [
    (_notes((60, 0.0, 0.25), (64, 0.25, 1.0)), "too short to split"),
    (_notes((60, 0.0, 0.25), (64, 2.0, 1.0)), "a rest of more than a quarter beat before the second note"),
    (_notes((60, 0.0, 1.0), (65, 1.0, 1.0)), "a fourth is not a third"),
    (_notes((60, 0.0, 1.0), (62, 1.0, 1.0)), "a step"),
    (_notes((60, 0.0, 1.0), (61, 1.0, 1.0)), "a semitone"),
    (_notes((60, 0.0, 0.25), (60, 0.25, 1.0)), "a repeated note too short to split"),
    (_notes((60, 0.0, 1.0), (55, 0.0, 1.0), (64, 1.0, 1.0)), "a chord on the first onset"),
    (_notes((60, 0.0, 1.0), (64, 1.0, 1.0), (67, 1.0, 1.0)), "a chord on the second onset"),
])
def test_no_passing_note(notes, why):
    assert _cells(P.passing_tones(notes, C_MAJOR, 1.0)) == sorted(_cells(notes)), why


def test_a_repeated_note_gets_its_upper_neighbour_less_often():
    assert P.upper_neighbour(60, C_MAJOR) == 62 and P.upper_neighbour(64, C_MAJOR) == 65  # C -> D, E -> F
    assert P.upper_neighbour(63, C_MINOR) == 65 and P.upper_neighbour(71, C_MAJOR) == 72
    outs = [P.passing_tones(_notes((64, 0.0, 1.0), (64, 1.0, 1.0)), C_MAJOR, 1.0, seed=s) for s in range(20)]
    assert {len(o) for o in outs} == {2, 3}  # at chance 1 still only NEIGHBOUR_SHARE of the time
    assert all(_cells(o) == [(64, 0.0, 0.5), (65, 0.5, 0.5), (64, 1.0, 1.0)] for o in outs if len(o) == 3)  # E F E
    # the draw must fall under NEIGHBOUR_SHARE x the chance: over many positions about that share
    pairs = [_notes((67, 4.0 * k + 0.5 * (k % 4), 1.0), (67, 4.0 * k + 0.5 * (k % 4) + 1.0, 1.0)) for k in range(200)]
    thirds = [_notes((67, 4.0 * k + 0.5 * (k % 4), 1.0), (64, 4.0 * k + 0.5 * (k % 4) + 1.0, 1.0)) for k in range(200)]
    rate = lambda pp: np.mean([len(P.passing_tones(p, C_MAJOR, 0.5, seed=k)) == 3 for k, p in enumerate(pp)])
    assert rate(pairs) == pytest.approx(0.5 * P.NEIGHBOUR_SHARE, abs=0.08)
    assert rate(thirds) == pytest.approx(0.5, abs=0.08)


def test_chance_and_key_decide():
    pair = _notes((63, 0.0, 1.0), (67, 1.0, 1.0))  # Eb4 - G4
    assert len(P.passing_tones(pair, C_MINOR, 1.0)) == 3 and len(P.passing_tones(pair, C_MAJOR, 1.0)) == 2
    assert _cells(P.passing_tones(pair, C_MINOR, 0.0)) == _cells(pair)
    # per-note keys: the first note of the pair decides
    assert len(P.passing_tones(pair, [C_MINOR, C_MAJOR], 1.0)) == 3
    assert len(P.passing_tones(pair, [C_MAJOR, C_MINOR], 1.0)) == 2


def test_a_repeated_motif_gets_the_same_passing_notes_and_the_seed_matters():
    motif = [(60, 0.0, 1.0), (64, 1.0, 1.0), (67, 2.0, 1.0), (64, 3.0, 1.0)]  # C E G E: three thirds
    line = _notes(*motif, *[(p, s + 8.0, d) for p, s, d in motif])  # bar 0 and again in bar 2
    counts = set()
    for seed in range(24):
        out = P.passing_tones(line, C_MAJOR, 0.5, seed=seed)
        first = [(n.pitch, n.start) for n in out if n.start < 4.0]
        again = [(n.pitch, n.start - 8.0) for n in out if n.start >= 8.0]
        assert first == again
        counts.add(len(first) - 4)
    assert counts == {0, 1, 2, 3}  # the seeds choose different thirds to fill


def test_passing_chance_by_arousal():
    assert P.passing_chance(Emotion(0.0, 0.0)) == pytest.approx(0.55)
    assert P.passing_chance(Emotion(0.5, 0.8)) == pytest.approx(0.55 + 0.2 * 0.8)
    assert P.passing_chance(Emotion(0.5, -0.8)) == pytest.approx(0.55 - 0.2 * 0.8)


def test_add_passing_tones_changes_only_the_melody_in_the_key_in_force():
    mel = _notes((63, 0.0, 1.0), (67, 1.0, 1.0), (63, 8.0, 1.0), (67, 9.0, 1.0))
    acc = _notes((48, 0.0, 4.0), (51, 8.0, 4.0))
    piece = Piece(tracks=[Track("Melody", 0, False, mel), Track("Accompaniment", 0, False, acc)],
                  tempos=[Tempo(90.0)], keys=[C_MINOR, KeySignature(0, "major", 8.0)], time_signatures=[TimeSignature(4, 4)])
    out = P.add_passing_tones(piece, [Emotion(0.0, 0.9)], seed=0)
    assert out.tracks[1].notes == acc
    added = sorted({(n.pitch, n.start) for n in out.tracks[0].notes} - {(n.pitch, n.start) for n in mel})
    # in C minor (bars 0-1) Eb-G passes through F where the seed's draw allows; in C major (from
    # beat 8) two notes lie between: nothing is added there
    assert all(s < 8.0 for _, s in added)
    found = set()
    for seed in range(12):
        found |= {(n.pitch, n.start) for n in P.add_passing_tones(piece, [Emotion(0.0, 0.9)], seed=seed).tracks[0].notes}
    assert (65, 0.5) in found and not any(s >= 8.0 and (p, s) not in {(63, 8.0), (67, 9.0)} for p, s in found)
    assert piece.tracks[0].notes == mel  # the input is left as it was
    assert P.add_passing_tones(piece, []) is piece


def test_a_varied_return_is_ornamented_afresh_an_exact_one_is_not():
    from emomusic.form import parse_form

    motif = [(60, 0.0, 1.0), (64, 1.0, 1.0), (67, 2.0, 1.0), (64, 3.0, 1.0)] * 2  # C E G E, twice: 2 bars
    mel = _notes(*[(p, s + 4.0 * k, d) for k in range(0, 8, 2) for p, s, d in motif[:4]],
                 *[(p, s + 4.0 * k + 4.0, d) for k in range(0, 8, 2) for p, s, d in motif[:4]])  # 8 bars of it

    def sections(plan_text: str, seed: int) -> list[list[tuple]]:
        piece = Piece(tracks=[Track("Melody", 0, False, mel)], keys=[C_MAJOR], time_signatures=[TimeSignature(4, 4)])
        out = P.add_passing_tones(piece, [Emotion(0.0, 0.0)], seed=seed, form=parse_form(plan_text, 8)).tracks[0].notes
        # the first bar of each 2-bar section (the last bar's final third leads into the next section)
        return [sorted((n.pitch, round(n.start - 8.0 * k, 3)) for n in out if 8.0 * k <= n.start < 8.0 * k + 4.0)
                for k in range(4)]

    differs = 0
    for seed in range(12):
        exact = sections("AABA", seed)
        assert exact[0] == exact[1] == exact[3]  # A returns with the same passing notes
        varied = sections("AA'BA'", seed)
        assert varied[0] == exact[0]  # the first statement is drawn as before
        differs += varied[1] != varied[0]
    assert differs >= 6  # a varied return mostly gets other passing notes


def test_quick_repeats_become_neighbours_as_often_as_the_chance_says():
    assert P.lower_neighbour(60, C_MAJOR) == 59 and P.lower_neighbour(65, C_MAJOR) == 64  # C -> B, F -> E
    assert P.lower_neighbour(60, C_MINOR) == 58 and P.lower_neighbour(63, C_MINOR) == 62  # natural minor: Bb, D
    run = _notes((64, 0.0, 0.25), (64, 0.25, 0.25), (64, 0.5, 0.25), (64, 0.75, 0.25), (60, 1.0, 1.0))  # E E E E C
    assert P.neighbour_repeats(run, C_MAJOR, 0.0) == run
    for seed in range(8):
        out = P.neighbour_repeats(run, C_MAJOR, 1.0, seed=seed)
        # every second E moves (the third follows the moved one: no longer a repeat); onsets,
        # lengths and velocities stay; the neighbour is the scale's F or D
        assert [n.pitch for n in out][::2] == [64, 64, 60] and {out[1].pitch, out[3].pitch} <= {65, 62}
        assert [(n.start, n.duration, n.velocity) for n in out] == [(n.start, n.duration, n.velocity) for n in run]
    ups = [P.neighbour_repeats(run[:2], C_MAJOR, 1.0, seed=s)[1].pitch for s in range(200)]
    assert 0.35 < np.mean(np.array(ups) == 65) < 0.65  # upper and lower neighbours alike
    # the chance decides how many of many quick repeats move
    pairs = [_notes((67, 4.0 * k + 0.25 * (k % 8), 0.5), (67, 4.0 * k + 0.25 * (k % 8) + 0.5, 0.5)) for k in range(300)]
    moved = np.mean([P.neighbour_repeats(pp, C_MAJOR, 0.3, seed=k)[1].pitch != 67 for k, pp in enumerate(pairs)])
    assert moved == pytest.approx(0.3, abs=0.07)
    assert P.repeat_neighbour_chance() == P.REPEAT_NEIGHBOUR
    assert P.repeat_neighbour_chance(0.2) == pytest.approx(P.REPEAT_NEIGHBOUR + 0.2)
    assert P.repeat_neighbour_chance(5.0) == 1.0 and P.repeat_neighbour_chance(-5.0) == 0.0


@pytest.mark.parametrize("notes, why", [
    (_notes((64, 0.0, 0.5), (64, 0.75, 0.5)), "more than half a beat apart"),
    (_notes((64, 0.0, 0.25), (64, 0.25, 0.25), (55, 0.25, 0.25)), "a chord on the second onset"),
    (_notes((64, 0.0, 0.25), (55, 0.0, 0.25), (64, 0.25, 0.25)), "a chord on the first onset"),
    (_notes((65, 0.0, 1.0), (64, 0.5, 0.25), (64, 0.75, 0.25)), "F (upper) still sounds; E's lower one is D"),
])
def test_no_neighbour_for_a_repeat(notes, why):
    outs = [P.neighbour_repeats(notes, C_MAJOR, 1.0, seed=s) for s in range(12)]
    if "still sounds" in why:  # only the neighbour that is not already sounding is taken
        assert {o[2].pitch for o in outs} <= {64, 62} and any(o[2].pitch == 62 for o in outs)
    else:
        assert all(o == notes for o in outs), why


def test_add_passing_tones_moves_quick_repeats_with_the_player_style():
    tones = [72, 74, 76, 77, 79]  # a quick repeat on each beat, 20 pitch / beat-in-bar pairs (each its own draw)
    mel = [Note(tones[k % 5], k + d, 0.25, 80) for k in range(40) for d in (0.0, 0.25)]
    piece = Piece(tracks=[Track("Melody", 0, False, mel)], keys=[C_MAJOR], time_signatures=[TimeSignature(4, 4)])

    def moved(repeats: float) -> int:
        out = P.add_passing_tones(piece, [Emotion(0.0, 0.0)], seed=3, repeats=repeats).tracks[0].notes
        assert [n.start for n in out] == [n.start for n in mel]  # nothing added or taken away
        return sum(n.pitch != m.pitch for n, m in zip(out, mel))

    got = [moved(r) for r in (-1.0, 0.0, 0.7)]
    assert got[0] == 0 and 4 <= got[1] < got[2] and got[2] == 40, got


def test_neighbour_repeats_touching_notes_order_seed_and_salt():
    # F4 ends exactly where the second E starts, another F starts exactly where it ends: neither
    # sounds with it, so the upper neighbour F is free (at chance 1 about half the seeds take it)
    notes = _notes((65, 0.0, 0.75), (64, 0.5, 0.25), (64, 0.75, 0.25), (65, 1.0, 1.0))
    got = {P.neighbour_repeats(notes, C_MAJOR, 1.0, seed=s)[2].pitch for s in range(16)}
    assert got == {65, 62}
    # an F held over it blocks the upper neighbour: where the draw says F the E stays
    held = _notes((65, 0.0, 0.8), (64, 0.5, 0.25), (64, 0.75, 0.25))
    assert {P.neighbour_repeats(held, C_MAJOR, 1.0, seed=s)[2].pitch for s in range(16)} == {62, 64}
    # the input order does not matter (notes are read by onset), the output keeps it
    run = _notes(*[(67 if k % 3 else 72, 0.25 * k, 0.25) for k in range(24)])
    for seed in range(4):
        fwd = P.neighbour_repeats(run, C_MAJOR, 0.5, seed=seed)
        back = P.neighbour_repeats(run[::-1], C_MAJOR, 0.5, seed=seed)
        assert back[::-1] == fwd
    # the seed and the salt both change the draws; the same seed and salt give the same notes
    outs = {tuple(n.pitch for n in P.neighbour_repeats(run, C_MAJOR, 0.5, seed=s)) for s in range(6)}
    assert len(outs) > 3
    salted = [tuple(n.pitch for n in P.neighbour_repeats(run, C_MAJOR, 0.5, seed=1, salt=[k] * 24)) for k in range(6)]
    assert len(set(salted)) > 3 and salted[0] == tuple(n.pitch for n in P.neighbour_repeats(run, C_MAJOR, 0.5, seed=1))
    assert P.neighbour_repeats(run, C_MAJOR, 0.5, seed=1, bar_beats=3.0) != P.neighbour_repeats(run, C_MAJOR, 0.5, seed=1)


def test_add_passing_tones_seeds_ornament_and_varied_returns_for_quick_repeats():
    from emomusic.form import parse_form

    bar_notes = [(72, 0.0, 0.25), (72, 0.25, 0.25), (74, 0.5, 0.5), (76, 1.0, 0.25), (76, 1.25, 0.25), (79, 1.5, 0.5),
                 (77, 2.0, 0.25), (77, 2.25, 0.25), (76, 2.5, 1.5)]
    mel = _notes(*[(p, s + 4.0 * b, d) for b in range(8) for p, s, d in bar_notes])  # one bar, eight times
    piece = Piece(tracks=[Track("Melody", 0, False, mel)], keys=[C_MAJOR], time_signatures=[TimeSignature(4, 4)])

    def run(seed, form=None, repeats=0.0, ornament=0.0):
        out = P.add_passing_tones(piece, [Emotion(0.0, 0.0)], seed=seed, repeats=repeats, ornament=ornament,
                                  form=None if form is None else parse_form(form, 8)).tracks[0].notes
        return [[(n.pitch, round(n.start - 8.0 * k, 3)) for n in out if 8.0 * k <= n.start < 8.0 * k + 4.0] for k in range(4)]

    assert len({str(run(s)) for s in range(6)}) > 1  # the seed decides
    differs = 0
    for seed in range(10):
        exact, varied = run(seed, "AABA", 0.4), run(seed, "AA'BA'", 0.4)
        assert exact[0] == exact[1] == exact[3] and varied[0] == exact[0]
        differs += varied[1] != varied[0]
    assert differs >= 5  # a varied return turns other repeats into neighbours
    # the ornament shift reaches the passing notes (the sixteenth repeats are too quick for them;
    # the third E-G and the step down fill in more often)
    count = lambda o: sum(len(sec) for sec in run(3, ornament=o))
    assert count(-1.0) < count(1.0)


def test_add_passing_tones_is_neighbour_repeats_then_passing_tones_in_the_pieces_metre():
    g_major, d_minor = KeySignature(7, "major"), KeySignature(2, "minor")
    assert P.lower_neighbour(67, g_major) == 66 and P.upper_neighbour(66, g_major) == 67  # G -> F#, F# -> G
    assert P.lower_neighbour(62, d_minor) == 60 and P.lower_neighbour(65, d_minor) == 64  # D -> C, F -> E
    spec = [(67, 0.0, 0.25), (67, 0.25, 0.75), (71, 1.0, 1.0), (74, 2.0, 0.5), (74, 2.5, 0.5)]
    mel = _notes(*[(p, s + 3.0 * b, d) for b in range(6) for p, s, d in spec])  # 3/4, six bars
    piece = Piece(tracks=[Track("Melody", 0, False, mel)], keys=[g_major], time_signatures=[TimeSignature(3, 4)])
    em = Emotion(0.2, 0.1)
    moved = 0
    for seed in range(3):
        for repeats in (None, 0.3):
            kw = {} if repeats is None else {"repeats": repeats}
            got = P.add_passing_tones(piece, [em], seed=seed, ornament=0.1, **kw).tracks[0].notes
            chance = P.repeat_neighbour_chance(0.0 if repeats is None else repeats)
            step = P.neighbour_repeats(mel, g_major, chance, seed=seed, bar_beats=3.0)
            want = P.passing_tones(step, g_major, P.passing_chance(em, 0.1), seed=seed, bar_beats=3.0)
            assert got == want
            moved += got != P.passing_tones(mel, g_major, P.passing_chance(em, 0.1), seed=seed, bar_beats=3.0)
    assert moved >= 3  # most of the six runs moved a quick repeat


def test_an_exact_return_stays_exact_when_the_section_before_ends_on_its_first_pitch():
    from emomusic.form import parse_form

    # every bar: C on the beat ... and C again half a beat before the next bar's C
    bar_notes = [(72, 0.0, 0.5), (74, 0.5, 0.5), (76, 1.0, 1.0), (79, 2.0, 1.5), (72, 3.5, 0.5)]
    mel = _notes(*[(p, s + 4.0 * b, d) for b in range(8) for p, s, d in bar_notes])
    piece = Piece(tracks=[Track("Melody", 0, False, mel)], keys=[C_MAJOR], time_signatures=[TimeSignature(4, 4)])
    plan = parse_form("AABA", 8)
    moved = 0
    for seed in range(12):
        out = P.add_passing_tones(piece, [Emotion(0.0, 0.0)], seed=seed, form=plan, repeats=0.7).tracks[0].notes
        # the first bar of each section (its last C leads into the next section: a passing note there)
        secs = [sorted((n.pitch, round(n.start - 8.0 * k, 3)) for n in out if 8.0 * k <= n.start < 8.0 * k + 4.0)
                for k in range(4)]
        assert secs[1] == secs[0] and secs[3] == secs[0]  # the returns' first C is not paired with the C before
        moved += any(n.pitch != 72 for n in out if n.start % 4.0 == 0.0 and n.start % 8.0 == 4.0)  # inside a section it is
    assert moved >= 6


def test_a_neighbour_never_sounds_a_semitone_against_the_part():
    # E held under a quick G G: the upper neighbour A is free, the lower one F would rub against E
    notes = _notes((64, 0.0, 1.0), (67, 0.25, 0.25), (67, 0.5, 0.25))
    assert {P.neighbour_repeats(notes, C_MAJOR, 1.0, seed=s)[2].pitch for s in range(16)} == {69, 67}
