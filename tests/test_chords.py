"""emomusic.chords: diatonic chords of a key, chords estimated from notes, cadence constraints."""

from __future__ import annotations

from emomusic.chords import cadence_constraints, diatonic_chords, estimate_chords
from emomusic.form import parse_form
from emomusic.piece import KeySignature, Note

C_MAJOR = KeySignature(0, "major")
A_MINOR = KeySignature(9, "minor")


def _line(pitches, start: float = 0.0) -> list[Note]:
    return [Note(p, start + i, 0.9, 90) for i, p in enumerate(pitches)]


# a C major melody over I | IV | V | I (two bars each: chords per half bar)
C_TUNE = _line([72, 76, 79, 76, 72, 79, 76, 72,   # C E G: I
                77, 81, 84, 81, 77, 72, 81, 77,   # F A C: IV
                79, 83, 86, 83, 79, 74, 83, 79,   # G B D: V
                72, 76, 79, 84, 79, 76, 72, 72])  # I


def test_diatonic_chords_of_major_and_minor_keys():
    major = {c.degree: c for c in diatonic_chords(C_MAJOR)}
    assert major["I"].pcs == (0, 4, 7) and major["IV"].pcs == (5, 9, 0) and major["V"].pcs == (7, 11, 2)
    assert major["vi"].quality == "minor" and major["I"].quality == "major"
    minor = {c.degree: c for c in diatonic_chords(A_MINOR)}
    assert minor["i"].pcs == (9, 0, 4) and minor["iv"].pcs == (2, 5, 9)
    assert minor["V"].pcs == (4, 8, 11) and minor["V"].quality == "major"  # harmonic minor's raised 7th
    assert minor["v"].quality == "minor"


def test_c_major_melody_gets_tonic_subdominant_dominant():
    chords = estimate_chords(C_TUNE, C_MAJOR, n_windows=16)
    degrees = [c.degree for c in chords]
    assert degrees[0:4] == ["I"] * 4
    assert degrees[4:8] == ["IV"] * 4
    assert degrees[8:12] == ["V"] * 4
    assert degrees[12:16] == ["I"] * 4


def test_minor_key_gets_minor_key_chords():
    tune = _line([69, 72, 76, 72, 69, 76, 72, 69,    # A C E: i
                  74, 77, 81, 77, 74, 69, 77, 74,    # D F A: iv
                  76, 80, 83, 80, 76, 71, 80, 76,    # E G# B: V
                  69, 72, 76, 81, 76, 72, 69, 69])   # i
    chords = estimate_chords(tune, A_MINOR, n_windows=16)
    degrees = [c.degree for c in chords]
    assert degrees[0:4] == ["i"] * 4 and degrees[4:8] == ["iv"] * 4
    assert degrees[8:12] == ["V"] * 4 and degrees[12:16] == ["i"] * 4
    assert all(c.quality == "minor" for c in chords[:8])


def test_key_map_windows_follow_the_key_in_force():
    tune = C_TUNE[:8] + [Note(n.pitch - 3, n.start + 8.0, n.duration) for n in C_TUNE[:8]]  # then the same in A major
    keys = [KeySignature(0, "major", 0.0), KeySignature(9, "major", 8.0)]
    chords = estimate_chords(tune, keys, 8)
    assert [c.root for c in chords[:4]] == [0] * 4 and [c.root for c in chords[4:]] == [9] * 4


def test_constraints_and_valence_lean():
    want = cadence_constraints(parse_form("AA", 8), 16, 2)  # bar 3 half, bar 7 authentic (and the end)
    assert want[6] == want[7] == "v" and want[13] == "V" and want[14] == want[15] == "I"
    assert cadence_constraints(None, 8, 2) == {5: "V", 6: "I", 7: "I"}  # without a plan: V - I at the end
    # an empty window between I and I: the path keeps the chord rather than guessing
    sparse = [Note(72, 0.0, 1.0), Note(76, 1.0, 1.0), Note(72, 4.0, 1.0), Note(79, 5.0, 1.0)]
    assert [c.degree for c in estimate_chords(sparse, C_MAJOR, 4)][:3] == ["I", "I", "I"]
    # A and C alone: a minor chord (vi) leans in when the valence is negative, a major one (IV) when positive
    ac = [Note(69, 0.0, 1.0), Note(72, 1.0, 1.0)]
    assert estimate_chords(ac, C_MAJOR, 1, valence=-1.0)[0].quality == "minor"
    assert estimate_chords(ac, C_MAJOR, 1, valence=1.0)[0].quality == "major"


def test_minor_dominants_on_request():
    tune = [Note(69, 0.0, 2.0), Note(76, 2.0, 2.0)]  # A and E: fits i, v and V
    assert estimate_chords(tune, A_MINOR, 2, constraints={1: "v"})[1].pcs == (4, 7, 11)  # natural v (the form's half cadence)
    assert estimate_chords(tune, A_MINOR, 2, constraints={1: "V"})[1].pcs == (4, 8, 11)  # harmonic V (into an authentic cadence)
    assert estimate_chords(tune, C_MAJOR, 2, constraints={1: "v"})[1].degree == "V"
