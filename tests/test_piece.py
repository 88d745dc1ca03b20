import pytest

from emomusic.errors import PieceFormatError
from emomusic.piece import KeySignature, Marker, Note, Piece, Tempo, TimeSignature, Track, concatenate


def test_queries(piano_piece):
    p = piano_piece
    assert p.tempo == 100.0
    assert p.end_beat == pytest.approx(16.0 - 0.2) or p.end_beat == pytest.approx(15.9)
    assert p.n_bars == 4
    assert len(p.notes) == 20
    assert p.notes == sorted(p.notes, key=lambda n: (n.start, n.pitch))
    assert p.key.name == "C major"


def test_tempo_map_conversion():
    p = Piece(tracks=[Track("x", 0, False, [Note(60, 0, 8)])], tempos=[Tempo(120, 0), Tempo(60, 4)])
    assert p.beat_to_seconds(4) == pytest.approx(2.0)
    assert p.beat_to_seconds(6) == pytest.approx(4.0)
    assert p.seconds_to_beat(4.0) == pytest.approx(6.0)
    assert p.duration_seconds == pytest.approx(6.0)


def test_transpose_keeps_original(piano_piece):
    up = piano_piece.transposed(2)
    assert up.key.tonic == 2
    assert [n.pitch - 2 for n in up.tracks[0].notes] == [n.pitch for n in piano_piece.tracks[0].notes]
    assert piano_piece.key.tonic == 0


def test_concatenate_is_bar_aligned_and_keeps_events(piano_piece):
    a = piano_piece
    b = piano_piece.transposed(-3)
    b.tempos = [Tempo(90.0)]
    b.keys = [KeySignature(9, "minor")]
    b.markers = [Marker("second")]
    joined = concatenate([a, b])
    assert len(joined.tracks) == 2  # merged by (name, program)
    assert len(joined.notes) == 40
    assert [t.bpm for t in joined.tempos] == [100.0, 90.0]
    assert joined.tempos[1].beat == 16.0 and joined.markers[-1].beat == 16.0
    assert joined.keys[1] == KeySignature(9, "minor", 16.0)


def test_validate_rejects_bad_notes():
    with pytest.raises(PieceFormatError):
        Piece(tracks=[Track("x", 0, False, [Note(200, 0, 1)])]).validate()
    with pytest.raises(PieceFormatError):
        Piece(tracks=[Track("x", 0, False, [Note(60, 0, 0)])]).validate()
    with pytest.raises(PieceFormatError):
        Piece(tracks=[Track("x", 300)]).validate()
    with pytest.raises(PieceFormatError):
        Piece(tempos=[Tempo(0)]).validate()


def test_time_signature_bar_length():
    assert TimeSignature(6, 8).bar_beats == 3.0
    assert TimeSignature(3, 4).bar_beats == 3.0


def test_without_overlaps_keeps_one_voice_per_key():
    from emomusic.piece import without_overlaps

    notes = [Note(60, 0.0, 4.0, 50), Note(60, 1.0, 1.0, 90), Note(60, 1.0, 0.5, 100), Note(64, 0.5, 1.0, 70)]
    out = without_overlaps(notes)
    assert [(n.pitch, n.start, n.duration, n.velocity) for n in out] == [
        (60, 0.0, 1.0, 50),  # cut at the next onset of its pitch
        (64, 0.5, 1.0, 70),  # another pitch is left alone
        (60, 1.0, 1.0, 100),  # two onsets at once: one note, the longer, at the louder velocity
    ]
    assert without_overlaps(out) == out  # idempotent


def test_pedals_and_bends_move_with_the_piece():
    from emomusic.errors import PieceFormatError
    from emomusic.piece import Pedal, Piece, PitchBend, Track, concatenate

    t = Track("p", 0, False, [Note(60, 0.0, 1.0)], pedals=[Pedal(0.0, 2.0)], bends=[PitchBend(-4096, 0.5)])
    p = Piece(tracks=[t])
    moved = p.shifted(4.0)
    assert moved.tracks[0].pedals == [Pedal(4.0, 2.0)] and moved.tracks[0].bends == [PitchBend(-4096, 4.5)]
    assert p.tracks[0].pedals == [Pedal(0.0, 2.0)]  # the input is left as it was
    joined = concatenate([p, p])
    assert joined.tracks[0].pedals == [Pedal(0.0, 2.0), Pedal(4.0, 2.0)]
    assert [b.beat for b in joined.tracks[0].bends] == [0.5, 4.5]
    assert PitchBend(-4096).semitones == -1.0
    with pytest.raises(PieceFormatError, match="pedal"):
        Piece(tracks=[Track("p", 0, False, [Note(60, 0, 1)], pedals=[Pedal(1.0, 0.0)])]).validate()
    with pytest.raises(PieceFormatError, match="bend"):
        Piece(tracks=[Track("p", 0, False, [Note(60, 0, 1)], bends=[PitchBend(9000, 0.0)])]).validate()
