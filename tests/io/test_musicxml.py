"""MusicXML through music21: what we write, music21 and our reader read back."""

from __future__ import annotations

import zipfile

import pytest

from emomusic.errors import EmomusicError, PieceFormatError
from emomusic.io import read_piece, write_piece
from emomusic.io.musicxml import piece_to_score, read_musicxml, write_musicxml
from emomusic.piece import KeySignature, Marker, Note, Piece, Tempo, TimeSignature, Track


def notes_of(track):
    return sorted((n.pitch, n.start, n.duration) for n in track.notes)


@pytest.fixture
def piece():
    melody = [Note(p, i * 0.5, 0.5, 50 + 5 * i) for i, p in enumerate([74, 76, 78, 79, 81, 83, 85])]
    melody += [Note(81, 3.5, 2.0, 100)]  # crosses the bar line at beat 4
    chords = [Note(p, 0.0, 4.0, 70) for p in (50, 54, 57)] + [Note(p, 4.0, 2.0, 70) for p in (47, 50, 54)]
    chords += [Note(62, 5.0, 3.0, 70)]  # overlaps the chord: becomes tied chords
    return Piece(
        tracks=[Track("Flute", 73, False, melody), Track("Strings", 48, False, chords)],
        tempos=[Tempo(72.0), Tempo(90.0, 4.0)],
        keys=[KeySignature(2, "major"), KeySignature(11, "minor", 4.0)],
        time_signatures=[TimeSignature(4, 4), TimeSignature(2, 4, 4.0)],
        markers=[Marker("emotion v=0.70 a=-0.50 Q4", 0.0)],
        title="XML test",
    )


@pytest.mark.parametrize("ext", [".musicxml", ".xml", ".mxl"])
def test_round_trip(tmp_path, piece, ext):
    path = write_piece(piece, tmp_path / f"song{ext}")
    if ext == ".mxl":
        assert zipfile.is_zipfile(path)
    else:
        head = path.read_text()[:400]
        assert "score-partwise" in head
    back = read_piece(path)
    assert back.title == "XML test"
    assert [t.name for t in back.tracks] == ["Flute", "Strings"]
    assert [t.program for t in back.tracks] == [73, 48]
    for a, b in zip(back.tracks, piece.tracks):
        assert notes_of(a) == notes_of(b)
    assert [(t.bpm, t.beat) for t in back.tempos] == [(72.0, 0.0), (90.0, 4.0)]
    assert back.keys == piece.keys
    assert [(t.numerator, t.denominator, t.beat) for t in back.time_signatures] == [(4, 4, 0.0), (2, 4, 4.0)]
    assert back.markers == piece.markers
    assert [n.velocity for n in back.tracks[0].notes] == [n.velocity for n in piece.tracks[0].notes]


def test_music21_sees_measures_ties_and_instruments(piece):
    from music21 import instrument, tie

    score = piece_to_score(piece)
    flute, strings = score.parts
    inst = flute.recurse().getElementsByClass(instrument.Instrument).first()
    assert isinstance(inst, instrument.Flute) and inst.midiProgram == 73
    measures = list(flute.getElementsByClass("Measure"))
    assert [m.offset for m in measures] == [0.0, 4.0]  # 4/4 then 2/4
    assert measures[1].timeSignature.ratioString == "2/4"
    # the A5 starting at beat 3.5 is split at the bar line with a tie
    a5 = [n for n in flute.flatten().notes if [p.midi for p in n.pitches] == [81] and n.getOffsetInHierarchy(flute) >= 3]
    assert len(a5) == 2
    assert any(n.tie is not None and n.tie.type == "start" for n in a5)
    assert any(isinstance(n.tie, tie.Tie) and n.tie.type == "stop" for n in a5)


def test_quantisation(tmp_path):
    p = Piece(tracks=[Track("x", 0, False, [Note(60, 0.03, 0.95), Note(64, 1.02, 0.2)])])
    write_musicxml(p, tmp_path / "q.musicxml", grid=0.25)
    back = read_musicxml(tmp_path / "q.musicxml")
    assert notes_of(back.tracks[0]) == [(60, 0.0, 1.0), (64, 1.0, 0.25)]
    with pytest.raises(EmomusicError, match="grid"):
        write_musicxml(p, tmp_path / "bad.musicxml", grid=0.3)
    assert not (tmp_path / "bad.musicxml").exists()


@pytest.mark.parametrize(
    "content",
    [b"", b"<score-partwise><part-list>", b"not xml at all", b'<?xml version="1.0"?><html><body>hi</body></html>'],
    ids=["empty", "truncated", "text", "wrong-root"],
)
def test_bad_files_are_format_errors(tmp_path, content):
    path = tmp_path / "bad.musicxml"
    path.write_bytes(content)
    with pytest.raises(PieceFormatError) as exc:
        read_piece(path)
    assert "\n" not in str(exc.value)


def test_failed_write_leaves_nothing(tmp_path, piece, monkeypatch):
    import music21

    def boom(self, *a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(music21.stream.Score, "write", boom)
    with pytest.raises(EmomusicError, match="disk full"):
        write_musicxml(piece, tmp_path / "x.musicxml")
    assert list(tmp_path.iterdir()) == []


def test_section_markers_are_rehearsal_marks(tmp_path):
    from music21 import converter, expressions

    from emomusic.form import form_from_markers, parse_form

    plan = parse_form("AA'BA", 8)
    mel = [Note(60 + (i % 7), i * 1.0, 1.0) for i in range(32)]
    p = Piece(tracks=[Track("Melody", 0, False, mel)],
              markers=plan.markers() + [Marker("emotion v=0.10 a=0.20 Q1", 0.0), Marker("emotion v=0.30 a=0.20 Q1", 16.0)])
    path = tmp_path / "form.musicxml"
    write_musicxml(p, path)
    marks = converter.parse(str(path)).flatten().getElementsByClass(expressions.RehearsalMark)
    assert [(m.content, float(m.offset)) for m in marks] == [("A", 0.0), ("A'", 8.0), ("B", 16.0), ("A", 24.0)]
    back = read_musicxml(path)
    assert sorted((m.beat, m.text) for m in back.markers) == sorted((m.beat, m.text) for m in p.markers)
    assert form_from_markers(back.markers, 8).labels == ["A", "A'", "B", "A"]
    # text that is not a section label stays a text expression
    plain = write_musicxml(Piece(tracks=[Track("x", 0, False, mel)], markers=[Marker("emotion v=0.10 a=0.20 Q1", 0.0)]),
                           tmp_path / "plain.musicxml")
    assert "<rehearsal" not in plain.read_text() and "emotion v=0.10" in plain.read_text()
