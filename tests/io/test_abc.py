"""ABC: our writer, music21 (through our reader) and abc2midi must agree on the notes."""

from __future__ import annotations

import random
import re
import shutil
import subprocess

import music21  # noqa: F401  (imported here, not in each test: mutation runs fork after collection)
import pytest

from emomusic.errors import EmomusicError, PieceFormatError
from emomusic.io import read_piece, write_piece
from emomusic.io.abc import abc_to_piece, key_abc_name, piece_to_abc, read_abc, write_abc
from emomusic.io.midi import read_midi
from emomusic.piece import KeySignature, Marker, Note, Piece, Tempo, TimeSignature, Track

needs_abc2midi = pytest.mark.skipif(shutil.which("abc2midi") is None, reason="abc2midi (Debian package abcmidi) is not installed")


def notes_of(track, grid=0.25):
    return sorted((n.pitch, round(n.start / grid) * grid, round(n.duration / grid) * grid) for n in track.notes)


def abc2midi_piece(tmp_path, text: str) -> Piece:
    src = tmp_path / "t.abc"
    src.write_text(text)
    out = tmp_path / "t.mid"
    res = subprocess.run(["abc2midi", str(src), "-o", str(out)], capture_output=True, text=True, timeout=30)
    assert out.exists(), res.stdout + res.stderr
    assert "Error" not in res.stdout, res.stdout
    return read_midi(out)


@pytest.fixture
def two_part():
    # Melody with a chromatic bar, a note tied over the bar line and a chord; bass with
    # overlapping notes (they become tied chords) and rests.
    melody = [Note(p, i * 1.0, 1.0, 96) for i, p in enumerate([69, 71, 72, 74, 76, 77, 78])]
    melody += [Note(80, 7.0, 0.5, 96), Note(81, 7.5, 2.0, 64), Note(64, 10.0, 2.0, 64), Note(69, 10.0, 2.0, 64), Note(72, 10.0, 2.0, 64)]
    bass = [Note(45, 0.0, 4.0, 80), Note(52, 2.0, 4.0, 80), Note(38, 8.0, 1.5, 80)]
    return Piece(
        tracks=[Track("Violin", 40, False, melody), Track("Cello", 42, False, bass)],
        tempos=[Tempo(84.0)],
        keys=[KeySignature(9, "minor")],
        time_signatures=[TimeSignature(4, 4)],
        markers=[Marker("emotion v=-0.50 a=-0.30 Q3", 0.0), Marker("emotion v=0.20 a=-0.10 Q4", 8.0)],
        title="Two part",
    )


def test_headers_and_voices(two_part):
    text = piece_to_abc(two_part)
    head = text.split("V:1")[0]
    for field in ("X:1", "T:Two part", "M:4/4", "L:1/16", "Q:1/4=84", "K:Am"):
        assert re.search(rf"^{re.escape(field)}$", head, re.M), field
    assert re.search(r'^V:1 name="Violin" clef=treble$', text, re.M)
    assert re.search(r'^V:2 name="Cello" clef=bass$', text, re.M)
    assert "%%MIDI program 40" in text and "%%MIDI program 42" in text
    assert text.rstrip().endswith("|]")
    # the A5 that starts on beat 7.5 is tied over the bar line
    assert re.search(r"a2- \| .*a6", text.replace("\n", " "))
    assert '"^emotion v=-0.50 a=-0.30 Q3"' in text


@pytest.mark.parametrize(
    "key,name",
    [((0, "major"), "C"), ((9, "minor"), "Am"), ((6, "minor"), "F#m"), ((3, "major"), "Eb"), ((10, "minor"), "Bbm"),
     ((1, "major"), "Db"), ((8, "minor"), "G#m"), ((6, "major"), "F#"), ((2, "minor"), "Dm")],
)
def test_key_names(key, name):
    assert key_abc_name(KeySignature(*key)) == name


def test_music21_reads_what_we_write(two_part):
    back = abc_to_piece(piece_to_abc(two_part))
    assert [t.name for t in back.tracks] == ["Violin", "Cello"]
    assert [t.program for t in back.tracks] == [40, 42]
    for a, b in zip(back.tracks, two_part.tracks):
        assert notes_of(a) == notes_of(b)
    assert back.tempo == pytest.approx(84.0)
    assert back.keys[0] == KeySignature(9, "minor")
    assert (back.time_signature.numerator, back.time_signature.denominator) == (4, 4)
    assert back.markers == two_part.markers
    assert back.title == "Two part"
    # dynamics marks carry the velocity level (quantised to pp..ff)
    assert {n.velocity for n in back.tracks[0].notes if n.start < 7} == {96}
    assert {n.velocity for n in back.tracks[0].notes if n.start >= 7.5} == {64}


@needs_abc2midi
def test_abc2midi_reads_what_we_write(tmp_path, two_part):
    text = piece_to_abc(two_part)
    back = abc2midi_piece(tmp_path, text)
    pitched = [t for t in back.tracks if t.notes]
    assert len(pitched) == 2
    by_prog = {t.program: t for t in pitched}
    assert notes_of(by_prog[40]) == notes_of(two_part.tracks[0])
    assert notes_of(by_prog[42]) == notes_of(two_part.tracks[1])
    assert back.tempo == pytest.approx(84.0, abs=0.5)


def _accidental_piece(key: KeySignature) -> Piece:
    # Chromatic traffic in one bar on one letter in two octaves, then the next bar.
    pitches = [66, 77, 65, 78, 66, 70, 71, 70, 61, 60, 73, 72, 68, 67, 80, 79]
    return Piece(tracks=[Track("x", 0, False, [Note(p, i * 0.5, 0.5) for i, p in enumerate(pitches)])], keys=[key])


@pytest.mark.parametrize("key", [KeySignature(0, "major"), KeySignature(7, "major"), KeySignature(5, "minor"),
                                 KeySignature(11, "major"), KeySignature(3, "minor")])
def test_accidentals_are_unambiguous(tmp_path, key):
    p = _accidental_piece(key)
    text = piece_to_abc(p)
    want = [n.pitch for n in p.tracks[0].notes]
    assert [n.pitch for n in abc_to_piece(text).tracks[0].notes] == want


@needs_abc2midi
@pytest.mark.parametrize("key", [KeySignature(0, "major"), KeySignature(7, "major"), KeySignature(5, "minor"),
                                 KeySignature(11, "major"), KeySignature(3, "minor")])
def test_accidentals_are_unambiguous_to_abc2midi(tmp_path, key):
    p = _accidental_piece(key)
    want = [n.pitch for n in p.tracks[0].notes]
    assert [n.pitch for n in abc2midi_piece(tmp_path, piece_to_abc(p)).tracks[0].notes] == want


def _random_piece(seed: int) -> Piece:
    rng = random.Random(seed)
    tracks = []
    for ti in range(rng.randint(1, 3)):
        notes, busy = [], {}
        for _ in range(rng.randint(5, 25)):
            pitch = rng.randint(36, 90)
            start = rng.randint(0, 60) * 0.25
            dur = rng.choice([0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0])
            if any(s < start + dur and start < e for s, e in busy.get(pitch, [])):
                continue  # one voice cannot hold a pitch twice
            busy.setdefault(pitch, []).append((start, start + dur))
            notes.append(Note(pitch, start, dur, rng.randint(30, 120)))
        tracks.append(Track(f"T{ti}", rng.randint(0, 100), False, notes))
    ts = rng.choice([TimeSignature(4, 4), TimeSignature(3, 4), TimeSignature(6, 8), TimeSignature(5, 4)])
    key = KeySignature(rng.randint(0, 11), rng.choice(["major", "minor"]))
    # a second key from somewhere inside a bar: the writer moves it to the bar's start
    change = KeySignature(rng.randint(0, 11), rng.choice(["major", "minor"]), rng.randint(21, 48) * 0.25)
    return Piece(tracks=tracks, tempos=[Tempo(rng.randint(50, 180))], keys=[key, change], time_signatures=[ts])


@pytest.mark.parametrize("seed", range(24))
def test_random_pieces_survive_both_readers(tmp_path, seed):
    p = _random_piece(seed)
    text = piece_to_abc(p)
    back = abc_to_piece(text)
    assert len(back.tracks) == len(p.tracks)
    for a, b in zip(back.tracks, p.tracks):
        assert notes_of(a) == notes_of(b)
    assert back.keys[0] == p.keys[0]


@needs_abc2midi
@pytest.mark.parametrize("seed", range(24))
def test_random_pieces_survive_abc2midi(tmp_path, seed):
    p = _random_piece(seed)
    mid = abc2midi_piece(tmp_path, piece_to_abc(p))
    by_prog = {}
    for t in mid.tracks:
        by_prog.setdefault(t.program, []).extend(t.notes)
    for t in p.tracks:
        got = {(n.pitch, round(n.start * 4) / 4): n.duration for n in by_prog.get(t.program, [])}
        for pitch, start, dur in notes_of(t):
            assert (pitch, start) in got, (pitch, start)
            # abc2midi sometimes ends long tie chains inside dense chords a little early
            assert got[(pitch, start)] == pytest.approx(dur, abs=0.2), (pitch, start)


def test_changes_of_tempo_key_and_metre(tmp_path):
    notes = [Note(62 + i % 7, float(i), 1.0) for i in range(14)]
    p = Piece(
        tracks=[Track("x", 0, False, notes)],
        tempos=[Tempo(100.0), Tempo(70.0, 8.0)],
        keys=[KeySignature(2, "major"), KeySignature(11, "minor", 8.0)],
        time_signatures=[TimeSignature(4, 4), TimeSignature(3, 4, 8.0)],
    )
    text = piece_to_abc(p)
    assert re.search(r"^M:3/4$", text.split("K:D", 1)[1], re.M)
    back = abc_to_piece(text)
    assert [(t.bpm, t.beat) for t in back.tempos] == [(100.0, 0.0), (70.0, 8.0)]
    assert back.keys == p.keys
    assert [(t.numerator, t.beat) for t in back.time_signatures] == [(4, 0.0), (3, 8.0)]
    assert notes_of(back.tracks[0]) == notes_of(p.tracks[0])


def test_quantisation_to_the_grid():
    p = Piece(tracks=[Track("x", 0, False, [Note(60, 0.02, 0.46), Note(62, 0.49, 0.26), Note(64, 1.1, 0.01)])])
    back = abc_to_piece(piece_to_abc(p, grid=0.25))
    assert [(n.pitch, n.start, n.duration) for n in back.tracks[0].notes] == [(60, 0.0, 0.5), (62, 0.5, 0.25), (64, 1.0, 0.25)]
    coarse = abc_to_piece(piece_to_abc(p, grid=0.5))
    assert [(n.start, n.duration) for n in coarse.tracks[0].notes][:2] == [(0.0, 0.5), (0.5, 0.5)]
    with pytest.raises(EmomusicError, match="grid"):
        piece_to_abc(p, grid=0.3)


def test_drums_are_left_out_and_drum_only_is_an_error():
    drums = Track("Kit", 0, True, [Note(36, 0, 0.5)])
    p = Piece(tracks=[Track("x", 0, False, [Note(60, 0, 1)]), drums])
    assert "V:" not in piece_to_abc(p)
    with pytest.raises(PieceFormatError):
        piece_to_abc(Piece(tracks=[drums]))


def test_files_and_dispatch(tmp_path, two_part):
    path = write_piece(two_part, tmp_path / "song.abc")
    assert path.read_text().startswith("X:1\n")
    back = read_piece(path)
    assert notes_of(back.tracks[0]) == notes_of(two_part.tracks[0])
    write_abc(two_part, tmp_path / "b.abc", title="Other")
    assert read_abc(tmp_path / "b.abc").title == "Other"


def test_reads_hand_written_abc_with_repeat_free_tune(tmp_path):
    text = "X:7\nT:Tune\nM:6/8\nL:1/8\nQ:3/8=60\nK:Gm\nG2A B2c | d3 [DGB]3 | ^F2G A3 |]\n"
    p = abc_to_piece(text)
    assert p.keys[0] == KeySignature(7, "minor")
    assert (p.time_signature.numerator, p.time_signature.denominator) == (6, 8)
    assert p.tempo == pytest.approx(90.0)  # dotted quarter = 60
    assert [n.pitch for n in p.tracks[0].notes][:6] == [67, 69, 70, 72, 74, 62]


@pytest.mark.parametrize(
    "text",
    ["", "   \n", "just some words, no tune here", "X:1\nT:no key line\nCDEF|\n", "X:1\nK:C\n", "X:1\nK:C\n[[[[CDE|"],
    ids=["empty", "blank", "prose", "no-K", "no-notes", "garbage-body"],
)
def test_bad_abc_is_a_one_line_format_error(tmp_path, text):
    path = tmp_path / "bad.abc"
    path.write_text(text)
    with pytest.raises(PieceFormatError) as exc:
        read_piece(path)
    assert "\n" not in str(exc.value)


def test_write_is_atomic(tmp_path, two_part, monkeypatch):
    import emomusic.io.abc as abc

    monkeypatch.setattr(abc, "piece_to_abc", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(RuntimeError):
        write_abc(two_part, tmp_path / "x.abc")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.data
def test_nottingham_tune_matches_its_midi(shared_data):
    """The first Nottingham tune read from ABC agrees with the database's own MIDI
    rendering (which expands repeats, so only the part before the first repeat is compared)."""
    abc = shared_data / "nottingham" / "ABC_cleaned" / "ashover.abc"
    mid = shared_data / "nottingham" / "MIDI" / "ashover1.mid"
    if not (abc.exists() and mid.exists()):
        pytest.skip("Nottingham ABC/MIDI files not found")
    tune = read_piece(abc)
    assert tune.title == "A and A's Waltz"
    assert tune.keys[0] == KeySignature(7, "major")
    assert (tune.time_signature.numerator, tune.time_signature.denominator) == (3, 4)
    ref = read_piece(mid)
    melody = max(ref.tracks, key=lambda t: sum(n.pitch for n in t.notes) / len(t.notes))
    assert [n.pitch for n in tune.tracks[0].notes][:18] == [n.pitch for n in melody.notes][:18]


def test_chord_tie_patch_is_per_thread():
    """The chord-tie fix acts only in the thread reading through emomusic; music21 parses in
    other threads at the same time see music21's own behaviour (a server's workers)."""
    import threading

    from music21 import converter

    from emomusic.io.abc import _chord_ties_patch

    text = "X:1\nT:t\nM:4/4\nL:1/4\nK:C\n[CE]2- [CE]2 |]\n"

    def chord_ties(score):
        return [n.tie is not None for c in score.recurse().getElementsByClass("Chord") for n in c.notes]

    inside, release, seen = threading.Event(), threading.Event(), {}

    def reader():
        with _chord_ties_patch():
            seen["patched"] = chord_ties(converter.parse(text, format="abc"))
            inside.set()
            release.wait(30)

    t = threading.Thread(target=reader)
    t.start()
    assert inside.wait(30)
    seen["other thread"] = chord_ties(converter.parse(text, format="abc"))
    release.set()
    t.join(30)
    assert seen["patched"][:2] == [True, True]
    assert not any(seen["other thread"][:2])
    piece = abc_to_piece(text)
    assert [(n.pitch, n.duration) for n in piece.notes] == [(60, 4.0), (64, 4.0)]


def test_tempo_changes_between_bars_are_read():
    # music21 drops a Q: line standing between two bars; the reader restores it. Q:3/8=40 is
    # 40 dotted quarters a minute = 60 quarters; a bare Q:100 counts L: units (eighths) = 50.
    text = "X:1\nT:t\nL:1/8\nQ:1/4=120\nK:C\nCDEF GABc|\nQ:3/8=40\ncBAG FEDC|\nQ:100\nC8|]\n"
    back = abc_to_piece(text)
    assert [(t.beat, t.bpm) for t in back.tempos] == [(0.0, 120.0), (4.0, 60.0), (8.0, 50.0)]
    assert back.duration_seconds == pytest.approx(4 * 60 / 120 + 4 * 60 / 60 + 4 * 60 / 50)


# -- the writer's documented rules, spelled out by hand ------------------------------------
def test_writer_body_by_hand():
    # D major (F#, C#). C natural gets "=", and once C had an accidental in the bar every C
    # does (^C); the tie carries C# into bar 2, where the key's C# needs no mark. Dynamics
    # mark each change of level: 30 pp, 100 f, 60 mp, 80 mf. C4 = "C", C5 = "c", C6 = "c'",
    # C3 = "C,", C2 = "C,,"; L:1/16, so a quarter is 4 units; bars of 16 units.
    notes = [Note(60, 0, 1, 30), Note(62, 1, 1, 100), Note(61, 2, 3, 60), Note(72, 5, 0.5), Note(84, 5.5, 0.5),
             Note(48, 6, 0.25), Note(36, 6.25, 0.25)]
    p = Piece(tracks=[Track("x", 0, False, notes)], tempos=[Tempo(99.6)], keys=[KeySignature(2, "major")])
    assert piece_to_abc(p) == ("X:1\nT:Untitled\nM:4/4\nL:1/16\nQ:1/4=100\n%%MIDI program 0\nK:D\n"
                               "!pp! =C4 !f! D4 !mp! ^C8- | C4 !mf! =c2 =c'2 =C, =C,, z6 |]\n")
    # grid 0.5: L:1/8; the two lowest notes land on one eighth (6.25 / 0.5 rounds to 12) and
    # become a chord; no dynamics asked for, none written; title and reference as given
    assert piece_to_abc(p, dynamics=False, title='A "b"\nc ', reference=7, grid=0.5) == (
        "X:7\nT:A 'b' c\nM:4/4\nL:1/8\nQ:1/4=100\n%%MIDI program 0\nK:D\n"
        "=C2 D2 ^C4- | C2 =c =c' [=C,,=C,] z3 |]\n")


def test_writer_voices_lines_and_restated_fields():
    # two voices: clef from the median pitch (below G3 = 55: bass), the name, or "Part n";
    # programs per voice, none in the header; a key and a metre change restated at voice 2's
    # start; four bars to a line; the tempo change and the marker only in voice 1
    high = Track("Fl\"ute", 73, False, [Note(72, float(b), 1.0) for b in range(20)])
    low = Track("", 32, False, [Note(43, 0.0, 4.0), Note(50, 4.0, 4.0), Note(57, 8.0, 4.0)])
    p = Piece(tracks=[high, low], tempos=[Tempo(80.0), Tempo(100.0, 16.0)],
              keys=[KeySignature(0, "major"), KeySignature(7, "major", 8.0)],
              time_signatures=[TimeSignature(4, 4), TimeSignature(2, 4, 16.0)], markers=[Marker("mark", 4.0)])
    text = piece_to_abc(p, grid=1.0, dynamics=False)
    head, v1, v2 = text.rstrip("\n").split("\nV:")
    assert head == "X:1\nT:Untitled\nM:4/4\nL:1/4\nQ:1/4=80\nK:C"
    # the clef boundary: a median of exactly G3 is treble
    low55 = Track("Low", 32, False, [Note(43, 0.0, 4.0), Note(55, 4.0, 4.0), Note(57, 8.0, 4.0)])
    assert 'V:2 name="Low" clef=treble' in piece_to_abc(Piece(tracks=[high, low55]))
    assert v1.split("\n") == ["1 name=\"Fl'ute\" clef=treble", "%%MIDI program 73",
                              'c c c c | "^mark" c c c c |', "K:G", "c c c c | c c c c |", "M:2/4", "Q:1/4=100",
                              "c c | c c |]"]
    assert v2.split("\n") == ['2 name="Part 2" clef=bass', "%%MIDI program 32", "K:C", "M:4/4",
                              "G,,4 | D,4 |", "K:G", "A,4 | z4 |", "M:2/4", "z2 | z2 |]"]


def test_writer_small_rules():
    from emomusic.io.abc_write import _dynamic, _key_alters, _pitch_text, _split_units

    # dynamics levels: below 40 pp, below 56 p, 72 mp, 88 mf, 104 f, else ff
    assert [_dynamic(v) for v in (1, 39, 40, 55, 56, 71, 72, 87, 88, 103, 104, 127)] == [
        "pp", "pp", "p", "p", "mp", "mp", "mf", "mf", "f", "f", "ff", "ff"]
    # lengths: the largest plain or dotted power of two first (64, 48, 32, 24, 16, 12, 8, 6, 4, 3, 2, 1)
    assert _split_units(1) == [1] and _split_units(5) == [4, 1] and _split_units(7) == [6, 1]
    assert _split_units(64) == [64] and _split_units(100) == [64, 32, 4] and _split_units(0) == []
    assert _split_units(47) == [32, 12, 3]
    # octaves: C4 (MIDI 60) is C, B3 is B,; an accidental goes before the letter
    assert [_pitch_text(p, "C", 0, "") for p in (36, 48, 60, 72, 84, 96)] == ["C,,", "C,", "C", "c", "c'", "c''"]
    assert _pitch_text(59, "B", 0, "") == "B," and _pitch_text(71, "B", 0, "=") == "=B"
    assert _pitch_text(60, "B", 1, "^") == "^B," and _pitch_text(71, "C", -1, "_") == "_c"  # B#3, Cb5
    # key signatures: music21 lists the altered letters of each signature
    import music21

    for fifths in range(-7, 8):
        altered = {p.step: int(p.alter) for p in music21.key.KeySignature(fifths).alteredPitches}
        assert _key_alters(fifths) == {c: altered.get(c, 0) for c in "CDEFGAB"}, fifths


@pytest.mark.parametrize("key", [KeySignature(0, "major"), KeySignature(7, "major"), KeySignature(5, "major"),
                                 KeySignature(9, "minor"), KeySignature(2, "minor"), KeySignature(5, "minor"),
                                 KeySignature(6, "major"), KeySignature(3, "minor"), None])
def test_spelling_follows_the_key(key):
    """Every pitch class is spelled with a letter and alteration that music21 agrees is that
    pitch class; the key's own notes as in its signature; other notes as sharps in sharp keys
    and flats in flat keys (C major: C# F# G# and Bb Eb), a minor key's leading note raised."""
    import music21

    from emomusic.io.abc_write import _key_alters, _key_fifths, _spelling_table

    table = _spelling_table(key)
    fifths = _key_fifths(key)
    alters = _key_alters(fifths)
    assert sorted(table) == list(range(12))
    for pc, (letter, alter) in table.items():
        assert music21.pitch.Pitch(letter + {1: "#", -1: "-", 0: ""}[alter]).pitchClass == pc
        in_key = alter == alters[letter]
        if not in_key and alter != 0:
            leading = key is not None and key.mode == "minor" and pc == (key.tonic + 11) % 12
            if fifths > 0 or leading:
                assert alter == 1, (pc, letter, alter)
            elif fifths < 0:
                assert alter == -1, (pc, letter, alter)
            else:
                assert alter == (1 if pc in (1, 6, 8) else -1), (pc, letter, alter)
    expected_key = music21.key.KeySignature(fifths).getScale("major").pitches if key is not None else []
    for p in expected_key[:7]:
        assert table[p.pitchClass] == (p.step, int(p.alter))


def test_writer_file_has_the_options_given(tmp_path):
    p = Piece(tracks=[Track("x", 0, False, [Note(60, 0, 1, 30), Note(64, 1, 1, 100)])], title="Mine")
    path = write_abc(p, tmp_path / "w.abc", title="Other", grid=0.5, reference=3, dynamics=False)
    assert path == tmp_path / "w.abc" and path.read_text() == (
        "X:3\nT:Other\nM:4/4\nL:1/8\nQ:1/4=120\n%%MIDI program 0\nK:C\nC2 E2 z4 |]\n")
    assert write_abc(p, tmp_path / "d.abc").read_text().startswith("X:1\nT:Mine\nM:4/4\nL:1/16\n")
    assert "!pp!" in (tmp_path / "d.abc").read_text()


def test_writer_fine_grids_and_refusals():
    # grid 1/8 beat: L:1/32, a 4/4 bar is 32 units; grid 1/16 beat: L:1/64, 64 units (one
    # whole-bar rest "z64"). C4 an eighth of a beat long is 1 unit, D4 three eighths 3 units.
    p = Piece(tracks=[Track("x", 0, False, [Note(60, 0.0, 0.125), Note(62, 0.125, 0.375)])])
    assert piece_to_abc(p, grid=0.125, dynamics=False).split("K:C\n")[1] == "C D3 z24 z4 |]\n"
    assert piece_to_abc(p, grid=0.0625, dynamics=False).split("\n")[3] == "L:1/64"
    assert piece_to_abc(p, grid=0.0625, dynamics=False).split("K:C\n")[1] == "C2 D6 z48 z8 |]\n"
    for bad in (0.3, 1.125, 1.0625, 2.0):
        with pytest.raises(EmomusicError) as exc:
            piece_to_abc(p, grid=bad)
        assert str(exc.value) == f"ABC grid must be 1, 0.5, 0.25, 0.125 or 0.0625 beats, got {bad}"
    silent = Piece(tracks=[Track("Kit", 0, True, [Note(36, 0, 1)]), Track("empty", 0, False, [])])
    with pytest.raises(PieceFormatError) as exc:
        piece_to_abc(silent)
    assert str(exc.value) == "nothing to write as ABC: the piece has no pitched notes"


def test_writer_one_beat_bars_keys_and_three_metres():
    # 1/4 at grid 1: every bar is one unit (C | D | F). No tempo given: Q:1/4=120. The key
    # changes to G at beat 1, the second bar: K:G stands before it and F# needs no mark there.
    p = Piece(tracks=[Track("x", 0, False, [Note(60, 0, 1), Note(62, 1, 1), Note(66, 2, 1)])], tempos=[],
              keys=[KeySignature(0, "major"), KeySignature(7, "major", 1.0)], time_signatures=[TimeSignature(1, 4)])
    assert piece_to_abc(p, grid=1.0, dynamics=False) == (
        "X:1\nT:Untitled\nM:1/4\nL:1/4\nQ:1/4=120\n%%MIDI program 0\nK:C\nC |\nK:G\nD | F |]\n")
    # three metres, each from its own beat: 4/4 (beats 0-3), 3/4 (4-6), 2/4 (7-8)
    p = Piece(tracks=[Track("x", 0, False, [Note(60, float(b), 1) for b in range(9)])],
              time_signatures=[TimeSignature(4, 4), TimeSignature(3, 4, 4.0), TimeSignature(2, 4, 7.0)])
    assert piece_to_abc(p, grid=1.0, dynamics=False).split("K:C\n")[1] == "C C C C |\nM:3/4\nC C C |\nM:2/4\nC C |]\n"


def test_writer_two_voices_one_key_and_metre_restate_nothing():
    # voice 1's median pitch (sorted E2 A2 D3 C4 Bb4 G#5: the 4th, C4) is above G3: treble;
    # voice 2's (C3) below: bass. One key (C, at beat 0) and one metre: voice 2 starts without
    # K: or M:.
    # Octave marks: E2 "E,,", D3 "D,", C4 "C"; C major spells 70 Bb and 80 G#.
    a = Track("A", 0, False, [Note(p, float(i), 1) for i, p in enumerate([40, 45, 50, 60, 70, 80])])
    b = Track("B", 33, False, [Note(48, 0, 2)])
    assert piece_to_abc(Piece(tracks=[a, b], keys=[KeySignature(0, "major")]), grid=1.0, dynamics=False) == (
        'X:1\nT:Untitled\nM:4/4\nL:1/4\nQ:1/4=120\nK:C\nV:1 name="A" clef=treble\n%%MIDI program 0\n'
        'E,, A,, D, C | _B ^g z2 |]\nV:2 name="B" clef=bass\n%%MIDI program 33\nC,2 z2 | z4 |]\n')
    # a metre change (4/4 -> 6/8 at beat 4) restates the opening 4/4 (not 4/8) at voice 2's start
    p = Piece(tracks=[a, b], time_signatures=[TimeSignature(4, 4), TimeSignature(6, 8, 4.0)])
    assert piece_to_abc(p, grid=1.0, dynamics=False).split("V:2")[1].split("\n")[1:4] == [
        "%%MIDI program 33", "M:4/4", "C,2 z2 |"]


def test_writer_same_pitch_struck_twice_at_once():
    # two C4s at beat 0 (1 and 2 beats) are one note, the later (longer) entry; C4 again at 3
    p = Piece(tracks=[Track("x", 0, False, [Note(60, 0, 1), Note(60, 0, 2), Note(60, 3, 1)])])
    assert piece_to_abc(p, grid=1.0, dynamics=False).split("K:C\n")[1] == "C2 z C |]\n"


def test_writer_markers_past_the_end_chord_order_and_respelling():
    def body(*notes, **kw):
        p = Piece(tracks=[Track("x", 0, False, list(notes))], **kw)
        return piece_to_abc(p, grid=1.0, dynamics=False).split("\nK:C\n")[1]

    # a marker at or after the end goes on the last unit of the last bar
    assert body(Note(60, 0, 1), Note(62, 1, 1), markers=[Marker("end", 10.0)]) == 'C D z "^end" z |]\n'
    # chord notes in order of onset, then pitch (not of length or loudness): C4 (2 beats, loud)
    # and G4 (1 beat, soft) together are [C-G]; G4 held from beat 0 stays first when C4 joins it
    assert body(Note(60, 0, 2, 100), Note(67, 0, 1, 50)) == "[C-G] C z2 |]\n"
    assert body(Note(67, 0, 2), Note(60, 1, 1)) == "G- [GC] z2 |]\n"
    # after a change to Ab major (Bb Eb Ab Db), MIDI 61 is the key's Db: a plain D
    assert body(Note(60, 0, 1), Note(61, 1, 1), keys=[KeySignature(0, "major"), KeySignature(8, "major", 1.0)],
                time_signatures=[TimeSignature(1, 4)]) == "C |\nK:Ab\nD |]\n"


@pytest.mark.parametrize("bars,want", [
    (4, "C4 | C4 | C4 | C4 |]\n"),
    (5, "C4 | C4 | C4 | C4 |\nC4 |]\n"),
    (8, "C4 | C4 | C4 | C4 |\nC4 | C4 | C4 | C4 |]\n"),
])
def test_writer_four_bars_a_line_and_the_final_bar_line(bars, want):
    p = Piece(tracks=[Track("x", 0, False, [Note(60, 4.0 * b, 4) for b in range(bars)])])
    assert piece_to_abc(p, grid=1.0, dynamics=False).split("\nK:C\n")[1] == want
