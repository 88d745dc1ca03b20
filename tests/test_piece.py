import pytest

from emomusic.errors import PieceFormatError
from emomusic.piece import KeySignature, Marker, Note, Piece, Tempo, TimeSignature, Track, concatenate


def test_queries(piano_piece):
    p = piano_piece
    assert p.tempo == 100.0
    # melody notes end at 15 + 0.9, bass notes at 12 + 3.8: the end is the later one
    assert p.end_beat == pytest.approx(15.9)
    assert p.n_bars == 4
    assert p.duration_seconds == pytest.approx(15.9 * 60 / 100)
    assert len(p.notes) == 20
    # sorted by start, then pitch: at beat 0 the bass C3 (48) comes before the melody C4 (60)
    assert [(n.start, n.pitch) for n in p.notes[:3]] == [(0.0, 48), (0.0, 60), (1.0, 62)]
    assert p.notes == sorted(p.notes, key=lambda n: (n.start, n.pitch))
    assert p.key.name == "C major"
    assert p.time_signature.bar_beats == 4.0
    assert not p.is_empty()


def test_queries_skip_drums_and_handle_empty_pieces():
    drums = Track("Drums", 0, True, [Note(36, 0.0, 9.5, 100)])
    p = Piece(tracks=[drums, Track("Lead", 0, False, [Note(64, 2.0, 1.0)])], tempos=[], keys=[], time_signatures=[])
    assert [n.pitch for n in p.notes] == [64]  # drums are not pitched notes
    assert p.end_beat == 9.5  # but they still make the piece longer
    assert p.tempo == 120.0 and p.key is None and p.time_signature == TimeSignature(4, 4)
    assert p.n_bars == 3
    assert Piece().end_beat == 0.0 and Piece().n_bars == 0 and Piece().is_empty()
    assert Piece(tracks=[Track("x")]).is_empty()
    # 6/8: a bar is three quarter-note beats; a piece ending exactly on a bar line has that many bars
    six = Piece(tracks=[Track("x", 0, False, [Note(60, 0, 6.0)])], time_signatures=[TimeSignature(6, 8)])
    assert six.time_signature.bar_beats == 3.0 and six.n_bars == 2
    assert KeySignature(9, "minor").name == "A minor" and KeySignature(13, "major").name == "C# major"


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


def test_without_overlaps_keeps_a_restrike_one_tick_later():
    from emomusic.piece import without_overlaps

    tick = 1 / 480
    for k in (3, 239, 1000):  # (k+1)/480 - k/480 is a hair under 1/480 in floating point here
        a, b = Note(60, k * tick, 1.0, 50), Note(60, (k + 1) * tick, 1.0, 90)
        out = without_overlaps([b, a])
        assert [(n.start, n.velocity) for n in out] == [(a.start, 50), (b.start, 90)]
        assert out[0].duration == pytest.approx(tick)
    # two strikes on the same tick are one note: the longest, at the loudest velocity
    same = without_overlaps([Note(60, 1.0, 0.5, 100), Note(60, 1.0 + tick / 3, 2.0, 40)])
    assert [(n.start, n.duration, n.velocity) for n in same] == [(1.0, 2.0 + tick / 3, 100)]
