"""The mode control (emomusic.modes): parallel major/minor re-mapping, mode margins, chromatic
notes made diatonic, and the "mode" control of apply_template that uses them."""

from __future__ import annotations

from dataclasses import replace

import pytest

from helpers import chord_piece

from emomusic.attributes import (
    CONTROLS,
    DEFAULT_CONTROLS,
    HIGHEST_PITCH,
    LOWEST_PITCH,
    apply_template,
    estimate_key,
    measure,
    template,
)
from emomusic.emotion import Emotion
from emomusic.errors import EmomusicError
from emomusic.modes import to_mode
from emomusic.piece import KeySignature, Note, Piece, Tempo, Track


# -- the "mode" control (parallel major/minor) -------------------------------------------------


def _pcs(piece: Piece) -> set[int]:
    return {n.pitch % 12 for n in piece.notes}


def test_mode_control_major_to_harmonic_minor():
    p = replace(chord_piece(0, False), keys=[KeySignature(0, "major")])
    before = [list(t.notes) for t in p.tracks]
    out = apply_template(p, Emotion(-0.6, 0.3), controls=("mode",))
    assert [(k.tonic, k.mode) for k in out.keys] == [(0, "minor")]
    assert _pcs(p) == {0, 2, 4, 5, 7, 9, 11}
    # E, A -> Eb, Ab; B stays: the V chord G-B-D keeps its leading tone (harmonic minor), which
    # is heard more clearly as C minor than the natural minor (which reads as Eb major)
    assert _pcs(out) == {0, 2, 3, 5, 7, 8, 11}
    for a, b in zip(p.notes, out.notes):  # each note moves by at most a semitone, down
        assert b.pitch - a.pitch == (-1 if a.pitch % 12 in (4, 9) else 0)
        assert (a.start, a.duration, a.velocity) == (b.start, b.duration, b.velocity)
    assert estimate_key(out.notes)[:2] == (0, "minor") and measure(out).mode == "minor"
    # the input piece is untouched
    assert [t.notes for t in p.tracks] == before and p.keys == [KeySignature(0, "major")]
    # only "mode" acts; the default controls do not include it
    assert out.tempos == p.tempos
    assert DEFAULT_CONTROLS == ("tempo", "velocity", "register") and "mode" in CONTROLS
    assert measure(apply_template(p, Emotion(-0.6, 0.3))).mode == "major"


def test_mode_control_minor_to_major():
    p = replace(chord_piece(9, True), keys=[KeySignature(9, "minor")])  # A harmonic minor
    out = apply_template(p, Emotion(0.6, -0.3), controls=("mode",))
    assert [(k.tonic, k.mode) for k in out.keys] == [(9, "major")]
    assert _pcs(out) == {9, 11, 1, 2, 4, 6, 8}  # C, F, (G) -> C#, F#, G#: A major
    assert estimate_key(out.notes)[:2] == (9, "major")
    # and back: minor -> major -> minor gives A minor with the leading tone G#
    back = apply_template(out, Emotion(-0.6, -0.3), controls=("mode",))
    assert back.keys[0] == KeySignature(9, "minor") and _pcs(back) == {9, 11, 0, 2, 4, 5, 8}


def test_mode_mapping_keeps_clear_pieces_and_resolves_ambiguous_ones():
    from emomusic.modes import CLEAR_MODE_MARGIN, mode_mapping, mode_margin, set_mode

    clear = chord_piece(7, False).notes  # G major, clearly
    assert mode_margin(clear, "major") >= CLEAR_MODE_MARGIN
    assert mode_mapping(clear, "major") == (0, None, 7)
    assert set_mode(clear, "major") == (clear, 7)
    # material that sits between C major and A minor: white notes, A and C both stressed
    amb = [Note(p, i * 0.5, 0.5, 80) for i, p in enumerate([57, 60, 64, 69, 67, 65, 64, 62, 60, 59, 57, 60] * 3)]
    amb += [Note(45, 0.0, 6.0, 70), Note(48, 6.0, 6.0, 70), Note(45, 12.0, 6.0, 70)]
    for target in ("major", "minor"):
        out, tonic = set_mode(amb, target)
        assert mode_margin(out, target) > 0, target
        assert estimate_key(out)[1] == target and estimate_key(out)[0] == tonic
        assert mode_margin(out, target) >= mode_margin(amb, target)
        for a, b in zip(sorted(amb, key=lambda n: (n.start, n.pitch)), sorted(out, key=lambda n: (n.start, n.pitch))):
            assert abs(a.pitch - b.pitch) <= 1 and a.start == b.start
    assert set_mode([], "minor") == ([], 0)
    with pytest.raises(EmomusicError, match="mode"):
        mode_mapping(amb, "dorian")


@pytest.mark.parametrize("tonic, minor, v", [(0, False, 0.5), (9, True, -0.5), (2, False, 0.0)])
def test_mode_control_keeps_a_piece_already_in_the_mode(tonic, minor, v):
    p = chord_piece(tonic, minor)
    out = apply_template(p, Emotion(v, 0.2), controls=("mode",))
    assert out.notes == p.notes and out.keys == p.keys


def test_to_mode_piano_range_chromatic_notes_and_merging():
    notes = [Note(21, 0.0, 1.0, 60), Note(108, 1.0, 1.0, 60),  # A0 (degree 6 of C), C8 (tonic)
             Note(64, 2.0, 1.0, 60), Note(63, 2.0, 2.0, 90),  # E4 and a chromatic Eb4 together
             Note(66, 3.0, 1.0, 60)]  # F#4: chromatic, stays
    out = to_mode(notes, 0, "major", "minor")
    assert [n.pitch for n in out] == [32, 108, 63, 66]  # A0 -> Ab1 (Ab0 is off the piano)
    assert out[2] == Note(63, 2.0, 2.0, 90)  # E4 -> Eb4 merges with Eb4: the longer, louder one
    up = to_mode([Note(106, 0.0, 1.0, 60)], 0, "minor", "major")  # Bb7 -> B7
    assert up[0].pitch == 107 and all(LOWEST_PITCH <= n.pitch <= HIGHEST_PITCH for n in out)
    with pytest.raises(EmomusicError, match="mode"):
        to_mode(notes, 0, "major", "dorian")


def test_mode_clarity_grows_with_valence():
    """A piece heard in the target mode, but not very clearly, is kept for a mild valence and
    made clearer for a strong one (MODE_CLARITY_PER_VALENCE)."""
    from emomusic.modes import MODE_CLARITY_PER_VALENCE, mode_mapping, mode_margin, set_mode

    amb = [Note(p, i * 0.5, 0.5, 80) for i, p in enumerate([57, 60, 64, 69, 67, 65, 64, 62, 60, 59, 57, 60] * 3)]
    amb += [Note(45, 0.0, 6.0, 70), Note(48, 6.0, 6.0, 70), Note(45, 12.0, 6.0, 70)]
    notes, _ = set_mode(amb, "major")
    m = mode_margin(notes, "major")
    assert 0 < m < MODE_CLARITY_PER_VALENCE
    assert mode_mapping(notes, "major", clear=m - 0.01)[1] is None  # clear enough: kept
    piece = Piece(tracks=[Track("Piano", 0, False, notes)])
    mild = apply_template(piece, Emotion((m - 0.01) / MODE_CLARITY_PER_VALENCE, 0.0), controls=("mode",))
    strong = apply_template(piece, Emotion(1.0, 0.0), controls=("mode",))
    assert mild.notes == piece.notes
    assert mode_mapping(notes, "major", clear=1.0)[1] is not None  # a clearer version exists ...
    assert mode_margin(strong.notes, "major") > mode_margin(mild.notes, "major")  # ... and strong valence takes it
    assert measure(strong).mode == "major"


def test_mode_control_leaves_the_mode_alone_at_neutral_valence():
    from emomusic.modes import MIN_MODE_STRENGTH

    minor = chord_piece(9, True)
    assert template(Emotion(0.0, 0.3)).mode_strength < MIN_MODE_STRENGTH
    out = apply_template(minor, Emotion(0.0, 0.3), controls=("mode",))
    assert out.notes == minor.notes and measure(out).mode == "minor"
    # a little valence is enough to ask for the mode
    assert template(Emotion(0.05, 0.3)).mode_strength >= MIN_MODE_STRENGTH
    assert measure(apply_template(minor, Emotion(0.05, 0.3), controls=("mode",))).mode == "major"


def _with_chromatic(tonic: int, minor: bool, lengths=(4.0, 2.0, 0.25)) -> list[Note]:
    """A clear cadence in ``tonic`` plus chromatic notes of three ``lengths`` (long, middle, short)."""
    chromatic = [4, 9, 1] if minor else [3, 8, 1]  # degrees outside the scale
    notes = list(chord_piece(tonic, minor).notes)
    for i, (deg, dur) in enumerate(zip(chromatic * 3, list(lengths) * 3)):
        notes.append(Note(72 + tonic + deg, 1.0 + 4.0 * i, dur, 70))
    return notes


@pytest.mark.parametrize("tonic,minor", [(0, False), (7, False), (9, True), (2, True)])
def test_clarify_mode_resolves_chromatic_notes_down_longest_first(tonic, minor):
    from emomusic.modes import CHROMATIC_TO_MAJOR, CHROMATIC_TO_MINOR, clarify_mode, mode_margin

    mode = "minor" if minor else "major"
    table = CHROMATIC_TO_MINOR if minor else CHROMATIC_TO_MAJOR
    notes = _with_chromatic(tonic, minor)
    before = mode_margin(notes, mode)
    assert clarify_mode(notes, tonic, mode, clear=before) == notes  # clear enough: nothing moves
    full = clarify_mode(notes, tonic, mode, clear=1.0)  # unreachable: the clearest batch count
    assert mode_margin(full, mode) > before + 0.2
    # A margin between: only some chromatic notes move, the longest ones, each a semitone down
    # to a scale degree, and the margin asked is reached.
    goal = (before + mode_margin(full, mode)) / 2
    part = clarify_mode(notes, tonic, mode, clear=goal)
    assert mode_margin(part, mode) >= goal
    assert len(part) == len(notes)
    for out in (part, full):
        moved = [(a, b) for a, b in zip(notes, out) if a != b]
        kept = [a for a, b in zip(notes, out) if a == b and (a.pitch - tonic) % 12 in table]
        assert moved and kept
        assert all(b.pitch == a.pitch - 1 and (b.pitch - tonic) % 12 == table[(a.pitch - tonic) % 12]
                   for a, b in moved)
        assert min(a.duration for a, _ in moved) >= max(a.duration for a in kept)
    # the raised 7th of a minor key is in its scale (harmonic minor), so it stays
    assert (not minor) or any((n.pitch - tonic) % 12 == 11 for n in full)


def test_clarify_mode_never_makes_the_mode_less_clear_and_merges_doubles():
    from emomusic.modes import CHROMATIC_TO_MAJOR, _moved, clarify_mode, mode_margin

    # An E minor line asked to sound clearly C major: resolving its F# and C# (chromatic in C)
    # down to F and C does not make C major any clearer, so nothing is moved.
    notes = [Note(p, i * 1.0, 1.0, 80) for i, p in enumerate([64, 66, 67, 71, 64, 61, 66, 64, 59, 64])]
    worse = _moved(notes, 0, CHROMATIC_TO_MAJOR, range(len(notes)))
    assert mode_margin(worse, "major") <= mode_margin(notes, "major")
    assert clarify_mode(notes, 0, "major", clear=1.0) == notes
    # an Eb sounding with a D at the same onset resolves onto it: one D, the longer and louder
    both = [Note(62, 0.0, 1.0, 60), Note(63, 0.0, 3.0, 90)] + list(chord_piece(0, False).notes)
    out = clarify_mode(both, 0, "major", clear=1.0)
    d = [n for n in out if n.start == 0.0 and n.pitch in (62, 63)]
    assert len(d) == 1 and d[0].pitch == 62 and d[0].duration == 3.0 and d[0].velocity == 90
    assert clarify_mode([], 0, "minor", clear=0.5) == []
    with pytest.raises(EmomusicError, match="mode"):
        clarify_mode(notes, 0, "dorian", clear=0.1)


def test_template_mode_grades_clarity_with_valence_across_tracks():
    """The mode control makes chromatic notes diatonic only as far as the valence asks, moves
    notes of every pitched track by one decision, and leaves drums alone."""
    from emomusic.modes import MODE_CLARITY_PER_VALENCE, mode_margin, template_mode

    notes = _with_chromatic(0, False, lengths=(2.0, 1.0, 0.25))
    before = mode_margin(notes, "major")
    melody = [n for n in notes if n.pitch >= 72]
    accomp = [n for n in notes if n.pitch < 72]
    drums = [Note(36, float(b), 0.25, 100) for b in range(16)]
    piece = Piece(tracks=[Track("Melody", 0, False, melody), Track("Accomp", 0, False, accomp),
                          Track("Drums", 0, True, drums)], keys=[KeySignature(0, "major")])
    assert 0.1 < before < MODE_CLARITY_PER_VALENCE
    mild = apply_template(piece, Emotion(before / MODE_CLARITY_PER_VALENCE - 0.01, 0.0), controls=("mode",))
    strong = apply_template(piece, Emotion(1.0, 0.0), controls=("mode",))
    assert mild.notes == piece.notes  # already as clear as a mild valence asks
    assert mode_margin(strong.notes, "major") > before
    assert strong.tracks[2].notes == drums
    assert strong.tracks[1].notes == accomp  # the chromatic notes were all in the melody
    assert strong.keys[0].tonic == 0 and strong.keys[0].mode == "major"
    parts, heard, changed = template_mode([melody, accomp], Emotion(1.0, 0.0))
    assert changed and heard == 0 and parts[0] == strong.tracks[0].notes
    assert template_mode([melody, accomp], Emotion(0.0, 0.5)) is None  # neutral valence: no mode


def test_mode_control_clarifies_chromatic_notes_in_every_part():
    """Two parts heard together; the chromatic notes of the second part become diatonic in place
    (the first part, already diatonic, is untouched)."""
    from emomusic.modes import template_mode

    upper = [Note(p, float(i), 1.0) for i, p in enumerate([72, 74, 76, 77, 79, 77, 76, 74])]
    lower = [Note(48, 0.0, 4.0), Note(49, 4.0, 4.0), Note(55, 0.0, 4.0), Note(56, 4.0, 4.0)]
    res = template_mode([upper, lower], Emotion(1.0, 0.0))
    assert res is not None
    parts, heard, changed = res
    assert changed and heard == 0
    assert parts[0] == upper
    assert {n.pitch % 12 for n in parts[1]} <= {0, 2, 4, 5, 7, 9, 11}
    assert [n.start for n in parts[1]] == [n.start for n in lower]
    assert template_mode([upper, lower], Emotion(0.03, 0.0)) is None  # neutral valence: left alone


def test_mode_control_writes_a_key_signature_even_without_one():
    minor_piece = Piece(tracks=[Track("p", 0, False, [Note(p, float(i), 1.0) for i, p in enumerate([69, 71, 72, 74, 76, 77, 76, 72, 69] * 2)])],
                        keys=[], tempos=[Tempo(100.0, 0.0)])
    out = apply_template(minor_piece, Emotion(0.9, 0.0), controls=("mode",))
    assert len(out.keys) == 1 and out.keys[0].mode == "major" and out.keys[0].beat == 0.0
    assert out.keys[0].tonic == measure(out).key_tonic and measure(out).mode == "major"
