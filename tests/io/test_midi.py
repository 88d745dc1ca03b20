"""MIDI round trips: Piece -> MIDI -> mido / pretty_midi / music21, and reading odd files."""

from __future__ import annotations

import warnings

import mido
import numpy as np
import pretty_midi  # noqa: F401  (imported here, not in each test: mutation runs fork after collection)
import pytest

from emomusic.errors import PieceFormatError
from emomusic.io import read_piece, write_piece
from emomusic.io.midi import PPQ, key_to_mido, parse_key_name, read_midi, write_midi
from emomusic.piece import KeySignature, Marker, Note, Pedal, Piece, PitchBend, Tempo, TimeSignature, Track


@pytest.fixture
def piece():
    melody = [Note(p, i * 0.5, 0.5, 60 + i) for i, p in enumerate([60, 62, 64, 65, 67, 69, 71, 72])]
    melody += [Note(60, 4.0, 2.0, 90), Note(64, 4.0, 2.0, 90), Note(67, 4.0, 2.0, 90)]  # a chord
    bass = [Note(36, 0.0, 4.0, 70), Note(43, 4.0, 3.5, 70)]
    drums = [Note(36, float(b), 0.25, 100) for b in range(8)] + [Note(42, b + 0.5, 0.25, 60) for b in range(8)]
    return Piece(
        tracks=[Track("Lead", 73, False, melody), Track("Bass", 33, False, bass), Track("Kit", 0, True, drums)],
        tempos=[Tempo(96.0), Tempo(120.0, 4.0)],
        keys=[KeySignature(9, "minor"), KeySignature(0, "major", 4.0)],
        time_signatures=[TimeSignature(4, 4), TimeSignature(3, 4, 4.0)],
        markers=[Marker("emotion v=-0.40 a=0.30 Q2", 0.0), Marker("emotion v=0.60 a=-0.40 Q4", 4.0)],
        title="round trip",
    )


def test_mido_sees_a_daw_ready_type_1_file(tmp_path, piece):
    path = write_piece(piece, tmp_path / "x.mid")
    mf = mido.MidiFile(str(path))
    assert mf.type == 1 and mf.ticks_per_beat == PPQ == 480
    assert len(mf.tracks) == 1 + len(piece.tracks)  # conductor + one per part
    conductor = mf.tracks[0]
    types = [m.type for m in conductor]
    assert "set_tempo" in types and "key_signature" in types and "time_signature" in types
    tempos = [(round(mido.tempo2bpm(m.tempo), 3)) for m in conductor if m.type == "set_tempo"]
    assert tempos == [96.0, 120.0]
    assert [m.key for m in conductor if m.type == "key_signature"] == ["Am", "C"]
    assert [(m.numerator, m.denominator) for m in conductor if m.type == "time_signature"] == [(4, 4), (3, 4)]
    markers = [m.text for m in conductor if m.type == "marker"]
    assert markers == ["emotion v=-0.40 a=0.30 Q2", "emotion v=0.60 a=-0.40 Q4"]
    # the second marker sits at beat 4 = tick 1920
    tick, at = 0, {}
    for m in conductor:
        tick += m.time
        if m.type == "marker":
            at[m.text] = tick
    assert at["emotion v=0.60 a=-0.40 Q4"] == 4 * PPQ
    names = [next(m.name for m in t if m.type == "track_name") for t in mf.tracks[1:]]
    assert names == ["Lead", "Bass", "Kit"]
    programs = [[m.program for m in t if m.type == "program_change"] for t in mf.tracks[1:]]
    assert programs[0] == [73] and programs[1] == [33] and programs[2] == []
    drum_channels = {m.channel for m in mf.tracks[3] if m.type == "note_on"}
    assert drum_channels == {9}
    pitched_channels = {m.channel for t in mf.tracks[1:3] for m in t if m.type == "note_on"}
    assert 9 not in pitched_channels


def test_pretty_midi_reads_notes_programs_and_tempo(tmp_path, piece):
    import pretty_midi

    path = write_piece(piece, tmp_path / "x.mid")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pm = pretty_midi.PrettyMIDI(str(path))
    assert [i.program for i in pm.instruments] == [73, 33, 0]
    assert [i.is_drum for i in pm.instruments] == [False, False, True]
    assert [i.name for i in pm.instruments] == ["Lead", "Bass", "Kit"]
    times, bpms = pm.get_tempo_changes()
    assert list(bpms.round(3)) == [96.0, 120.0]
    lead = sorted((n.pitch, round(n.start, 4), round(n.end, 4), n.velocity) for n in pm.instruments[0].notes)
    expected = sorted(
        (n.pitch, round(piece.beat_to_seconds(n.start), 4), round(piece.beat_to_seconds(n.end), 4), n.velocity)
        for n in piece.tracks[0].notes
    )
    assert lead == expected
    assert [pretty_midi.key_number_to_key_name(k.key_number) for k in pm.key_signature_changes] == ["A minor", "C Major"]
    assert [(t.numerator, t.denominator) for t in pm.time_signature_changes] == [(4, 4), (3, 4)]


def test_music21_reads_it_back(tmp_path, piece):
    import music21

    path = write_piece(piece, tmp_path / "x.mid")
    score = music21.converter.parse(str(path), format="midi", forceSource=True)
    pitched = [p for p in score.parts if not any(isinstance(i, music21.instrument.UnpitchedPercussion) for i in p.getInstruments())]
    lead_pitches = sorted(p.midi for n in score.parts[0].flatten().notes for p in n.pitches)
    assert lead_pitches == sorted(n.pitch for n in piece.tracks[0].notes)
    assert len(pitched) >= 2
    marks = score.flatten().getElementsByClass(music21.tempo.MetronomeMark)
    assert sorted({round(m.number) for m in marks}) == [96, 120]


def test_our_reader_round_trips_everything(tmp_path, piece):
    path = write_piece(piece, tmp_path / "x.mid")
    back = read_piece(path)
    assert back.title == "round trip"
    assert [(t.name, t.program, t.is_drum) for t in back.tracks] == [(t.name, t.program, t.is_drum) for t in piece.tracks]
    for a, b in zip(back.tracks, piece.tracks):
        assert sorted((n.pitch, n.start, n.duration, n.velocity) for n in a.notes) == sorted(
            (n.pitch, n.start, n.duration, n.velocity) for n in b.notes
        )
    assert back.tempos == piece.tempos
    assert back.keys == piece.keys
    assert back.time_signatures == piece.time_signatures
    assert back.markers == piece.markers


@pytest.mark.parametrize("tonic", range(12))
@pytest.mark.parametrize("mode", ["major", "minor"])
def test_every_key_signature_survives(tmp_path, tonic, mode):
    k = KeySignature(tonic, mode)
    assert parse_key_name(key_to_mido(k)) == k
    p = Piece(tracks=[Track("x", 0, False, [Note(60, 0, 1)])], keys=[k])
    write_midi(p, tmp_path / "k.mid")
    assert read_midi(tmp_path / "k.mid").keys == [k]


def _type0(ppq: int) -> mido.MidiFile:
    mf = mido.MidiFile(type=0, ticks_per_beat=ppq)
    t = mido.MidiTrack()
    t.append(mido.MetaMessage("track_name", name="Song", time=0))
    t.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(90), time=0))
    t.append(mido.MetaMessage("time_signature", numerator=6, denominator=8, time=0))
    t.append(mido.Message("program_change", channel=0, program=40, time=0))
    t.append(mido.Message("program_change", channel=1, program=32, time=0))
    t.append(mido.Message("note_on", channel=0, note=72, velocity=100, time=0))
    t.append(mido.Message("note_on", channel=1, note=48, velocity=70, time=0))
    t.append(mido.Message("note_on", channel=0, note=72, velocity=0, time=ppq))  # note_on v=0 = off
    t.append(mido.Message("note_on", channel=0, note=74, velocity=90, time=0))
    t.append(mido.Message("note_off", channel=0, note=74, velocity=0, time=ppq // 2))
    t.append(mido.Message("note_off", channel=1, note=48, velocity=0, time=ppq // 2))
    t.append(mido.Message("note_on", channel=9, note=38, velocity=110, time=0))
    t.append(mido.Message("note_off", channel=9, note=38, velocity=0, time=ppq // 4))
    t.append(mido.MetaMessage("end_of_track", time=0))
    mf.tracks.append(t)
    return mf


@pytest.mark.parametrize("ppq", [96, 220, 480, 960, 1024])
def test_type0_and_other_resolutions(tmp_path, ppq):
    path = tmp_path / "t0.mid"
    _type0(ppq).save(str(path))
    p = read_piece(path)
    assert p.tempo == pytest.approx(90.0, abs=1e-3)
    assert (p.time_signature.numerator, p.time_signature.denominator) == (6, 8)
    by_prog = {(t.program, t.is_drum): t for t in p.tracks}
    violin, bass, drums = by_prog[(40, False)], by_prog[(32, False)], next(t for t in p.tracks if t.is_drum)
    assert [(n.pitch, n.start, n.duration, n.velocity) for n in violin.notes] == [(72, 0.0, 1.0, 100), (74, 1.0, 0.5, 90)]
    assert [(n.pitch, n.start, n.duration) for n in bass.notes] == [(48, 0.0, 2.0)]
    assert [(n.pitch, n.start, n.duration) for n in drums.notes] == [(38, 2.0, 0.25)]
    # a type-0 track name is the song's title; parts are named after their instruments
    assert p.title == "Song"
    assert (violin.name, bass.name, drums.name) == ("Violin", "Acoustic Bass", "Drums")
    # and it is written back as type 1 at 480 PPQ with the same notes
    write_piece(p, tmp_path / "t1.mid")
    mf = mido.MidiFile(str(tmp_path / "t1.mid"))
    assert (mf.type, mf.ticks_per_beat) == (1, 480)
    again = read_piece(tmp_path / "t1.mid")
    assert sorted((n.pitch, n.start, n.duration) for t in again.tracks for n in t.notes) == sorted(
        (n.pitch, n.start, n.duration) for t in p.tracks for n in t.notes
    )


def test_unreleased_note_ends_at_track_end(tmp_path):
    mf = mido.MidiFile(type=1, ticks_per_beat=480)
    t = mido.MidiTrack()
    t.append(mido.Message("note_on", note=60, velocity=80, time=0))
    t.append(mido.MetaMessage("end_of_track", time=960))
    mf.tracks.append(t)
    mf.save(str(tmp_path / "u.mid"))
    (n,) = read_piece(tmp_path / "u.mid").tracks[0].notes
    assert (n.start, n.duration) == (0.0, 2.0)


def _good_bytes(tmp_path, piece) -> bytes:
    write_piece(piece, tmp_path / "good.mid")
    return (tmp_path / "good.mid").read_bytes()


@pytest.mark.parametrize(
    "make",
    [
        lambda good: b"",  # empty
        lambda good: b"this is not a midi file at all",  # garbage
        lambda good: good[:40],  # truncated inside a track
        lambda good: good[:14],  # header only
        lambda good: b"MThd\x00\x00\x00\x06\x00\x01\x00\x02\x01\xe0MTrk\xff\xff\xff\xff",  # absurd track length
        lambda good: b"MThd\x00\x00\x00\x06\x00\x00\x00\x01\xe7\x28" + good[14:],  # SMPTE timing
    ],
    ids=["empty", "garbage", "truncated", "header-only", "bad-length", "smpte"],
)
def test_corrupt_midi_is_a_format_error(tmp_path, piece, make):
    path = tmp_path / "bad.mid"
    path.write_bytes(make(_good_bytes(tmp_path, piece)))
    with pytest.raises(PieceFormatError) as exc:
        read_piece(path)
    assert "\n" not in str(exc.value)


def test_a_file_without_notes_is_an_error(tmp_path):
    mf = mido.MidiFile(type=1)
    mf.tracks.append(mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500000, time=0)]))
    mf.save(str(tmp_path / "silent.mid"))
    with pytest.raises(PieceFormatError, match="no notes"):
        read_piece(tmp_path / "silent.mid")
    assert read_piece(tmp_path / "silent.mid", allow_empty=True).is_empty()


def test_write_is_atomic_on_failure(tmp_path, piece, monkeypatch):
    target = tmp_path / "out.mid"

    def boom(self, *a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(mido.MidiFile, "save", boom)
    with pytest.raises(RuntimeError):
        write_midi(piece, target)
    assert list(tmp_path.iterdir()) == []


# -- one voice per key, tracks ending together, pedal and pitch bend ----------------------
def overlapping_piece() -> Piece:
    """Same-pitch notes that overlap (as a calm compose piece can produce), a duplicate
    onset, a repeated note touching its successor, and a second part ending earlier."""
    notes = [Note(60, 0.0, 2.25, 70), Note(60, 0.5, 0.25, 80), Note(60, 1.0, 1.0, 60),  # overlaps
             Note(64, 2.0, 1.0, 70), Note(64, 2.0, 0.5, 90),  # same onset twice
             Note(67, 3.0, 1.0, 70), Note(67, 4.0, 1.0, 70),  # touching: off and on at one tick
             Note(72, 5.0, 8.0, 50), Note(72, 6.0, 0.5, 50)]
    return Piece(tracks=[Track("Piano", 0, False, notes), Track("Bass", 33, False, [Note(36, 0.0, 4.0, 70)])],
                 tempos=[Tempo(90.0)], time_signatures=[TimeSignature(4, 4)], title="overlaps")


def test_no_overlapping_same_pitch_notes_and_readers_agree(tmp_path):
    import pretty_midi

    piece = overlapping_piece()
    path = tmp_path / "o.mid"
    write_midi(piece, path)
    ours = read_midi(path)
    piano = next(t for t in ours.tracks if t.name == "Piano")
    # the earlier note is cut at the next onset of its pitch; a duplicate onset is one note
    c4 = [(n.start, n.duration) for n in piano.notes if n.pitch == 60]
    assert c4 == [(0.0, 0.5), (0.5, 0.25), (1.0, 1.0)]
    e4 = [n for n in piano.notes if n.pitch == 64]
    assert len(e4) == 1 and e4[0].duration == 1.0 and e4[0].velocity == 90
    assert [(n.start, n.duration) for n in piano.notes if n.pitch == 72] == [(5.0, 1.0), (6.0, 0.5)]
    for t in ours.tracks:
        for a, b in zip(t.notes, t.notes[1:]):
            same = [n for n in t.notes if n.pitch == a.pitch and n is not a and n.start >= a.start]
            assert all(n.start >= a.end - 1e-9 for n in same)
    # counts: our reader, pretty_midi and a plain mido note_on count all agree
    n_ours = sum(len(t.notes) for t in ours.tracks)
    pm = pretty_midi.PrettyMIDI(str(path))
    n_pm = sum(len(i.notes) for i in pm.instruments)
    n_mido = sum(1 for tr in mido.MidiFile(str(path)).tracks for m in tr if m.type == "note_on" and m.velocity > 0)
    assert n_ours == n_pm == n_mido == 9  # 8 piano (of 9 written) + 1 bass
    from emomusic.piece import without_overlaps

    assert sum(len(without_overlaps(t.notes)) for t in piece.tracks) == n_ours
    # and lengths agree between readers (pretty_midi pairs note-offs differently from us)
    pm_c4 = sorted((n.start, n.end) for i in pm.instruments for n in i.notes if n.pitch == 60)
    sec = 60.0 / 90.0
    assert np.allclose(pm_c4, [(s * sec, (s + d) * sec) for s, d in c4], atol=1e-5)


def test_note_off_comes_before_note_on_at_one_tick(tmp_path):
    path = tmp_path / "o.mid"
    write_midi(overlapping_piece(), path)
    tr = mido.MidiFile(str(path)).tracks[1]
    tick, seen = 0, []
    for m in tr:
        tick += m.time
        if m.type in ("note_on", "note_off") and m.note == 67:
            seen.append((tick, "on" if m.type == "note_on" and m.velocity else "off"))
    assert seen == [(3 * PPQ, "on"), (4 * PPQ, "off"), (4 * PPQ, "on"), (5 * PPQ, "off")]


def test_all_tracks_end_together_at_a_bar_line(tmp_path):
    path = tmp_path / "o.mid"
    piece = overlapping_piece()  # the 72 held to beat 13 is cut at 6 by the next 72: ends at 6.5
    piece.tracks[1].notes.append(Note(40, 9.0, 1.5, 60))  # the bass ends at 10.5: bar 3
    write_midi(piece, path)
    mf = mido.MidiFile(str(path))
    ends = [sum(m.time for m in tr) for tr in mf.tracks]
    assert len(set(ends)) == 1
    assert ends[0] == 12 * PPQ  # 10.5 beats rounded up to whole 4/4 bars
    assert all(tr[-1].type == "end_of_track" for tr in mf.tracks)
    # a 3/4 change: bars counted from the change
    piece.time_signatures = [TimeSignature(4, 4), TimeSignature(3, 4, 8.0)]
    write_midi(piece, path)
    assert {sum(m.time for m in tr) for tr in mido.MidiFile(str(path)).tracks} == {11 * PPQ}


def test_sustain_pedal_and_pitch_bend_round_trip(tmp_path):
    import pretty_midi

    from emomusic.piece import Pedal, PitchBend

    notes = [Note(60, 0.0, 0.5, 80), Note(64, 1.0, 0.5, 80), Note(67, 2.0, 0.5, 80)]
    t = Track("Piano", 0, False, notes, pedals=[Pedal(0.0, 1.75), Pedal(2.0, 2.0), Pedal(3.5, 1.0)],
              bends=[PitchBend(4096, 1.0), PitchBend(0, 2.0), PitchBend(-8192, 2.5)])
    path = tmp_path / "p.mid"
    write_midi(Piece(tracks=[t], tempos=[Tempo(120.0)]), path)
    back = read_midi(path).tracks[0]
    assert [(p.start, p.duration) for p in back.pedals] == [(0.0, 1.75), (2.0, 2.5)]  # overlapping ones merged
    assert back.bends == t.bends
    assert back.bends[0].semitones == pytest.approx(1.0)
    pm = pretty_midi.PrettyMIDI(str(path))
    cc = [(round(c.time, 4), c.value) for c in pm.instruments[0].control_changes if c.number == 64]
    assert cc == [(0.0, 127), (0.875, 0), (1.0, 127), (2.25, 0)]
    assert [b.pitch for b in pm.instruments[0].pitch_bends] == [4096, 0, -8192]
    # a piece without pedal writes no CC64 at all
    write_midi(Piece(tracks=[Track("Piano", 0, False, notes)]), path)
    assert not any(m.type == "control_change" for tr in mido.MidiFile(str(path)).tracks for m in tr)
    assert read_midi(path).tracks[0].pedals == [] and read_midi(path).tracks[0].bends == []


def test_pedal_held_to_the_end_is_released_there(tmp_path):
    mf = mido.MidiFile(type=1, ticks_per_beat=PPQ)
    tr = mido.MidiTrack()
    tr += [mido.Message("control_change", control=64, value=100, time=0), mido.Message("note_on", note=60, velocity=80, time=0),
           mido.Message("note_off", note=60, velocity=0, time=PPQ), mido.Message("control_change", control=64, value=90, time=PPQ)]
    mf.tracks.append(tr)
    path = tmp_path / "h.mid"
    mf.save(str(path))
    assert [(p.start, p.duration) for p in read_midi(path).tracks[0].pedals] == [(0.0, 2.0)]


# -- the writer's documented details, read back with mido ----------------------------------
def _timeline(path) -> list[list[tuple[int, mido.Message]]]:
    """Every track of the file as (absolute tick, message), as mido reads it."""
    out = []
    for tr in mido.MidiFile(str(path)).tracks:
        tick, rows = 0, []
        for m in tr:
            tick += m.time
            rows.append((tick, m))
        out.append(rows)
    return out


def test_channels_programs_and_names(tmp_path):
    import pretty_midi

    # a preferred channel is kept when it is free and not the drum channel; otherwise the
    # lowest free one; drums always on 10 (index 9); 16 pitched parts cycle through the 15
    tracks = [Track("", 5, False, [Note(60, 0, 1)], channel=3), Track("b", 6, False, [Note(62, 0, 1)], channel=3),
              Track("c", 7, False, [Note(64, 0, 1)], channel=9), Track("Kit", 0, True, [Note(36, 0, 1)], channel=2),
              Track("e", 8, False, [Note(65, 0, 1)])]
    path = tmp_path / "c.mid"
    write_midi(Piece(tracks=tracks, title=""), path)
    tl = _timeline(path)
    chans = [{m.channel for _, m in t if m.type == "note_on"} for t in tl[1:]]
    assert chans == [{3}, {0}, {1}, {9}, {2}]
    # the conductor is named after the title ("emomusic" when it has none); a part without a
    # name gets its General MIDI instrument's (pretty_midi's table), the drum kit "Drums"
    assert [m.name for _, m in tl[0] if m.type == "track_name"] == ["emomusic"]
    names = [[(tk, m.name) for tk, m in t if m.type == "track_name"] for t in tl[1:]]
    assert names == [[(0, pretty_midi.program_to_instrument_name(5))], [(0, "b")], [(0, "c")], [(0, "Kit")], [(0, "e")]]
    instruments = [[(tk, m.name) for tk, m in t if m.type == "instrument_name"] for t in tl[1:]]
    assert instruments == [[(0, pretty_midi.program_to_instrument_name(p))] for p in (5, 6, 7)] + [[(0, "Drums")]] + [
        [(0, pretty_midi.program_to_instrument_name(8))]]
    programs = [[(tk, m.program, m.channel) for tk, m in t if m.type == "program_change"] for t in tl[1:]]
    assert programs == [[(0, 5, 3)], [(0, 6, 0)], [(0, 7, 1)], [], [(0, 8, 2)]]
    many = [Track(f"t{i}", i, False, [Note(60, 0, 1)]) for i in range(17)]
    write_midi(Piece(tracks=many), path)
    chans = [next(m.channel for _, m in t if m.type == "note_on") for t in _timeline(path)[1:]]
    free = [c for c in range(16) if c != 9]
    assert chans == free + [free[15 % 15], free[16 % 15]]  # 0..8, 10..15, then 0 and 1 again
    from emomusic.io.midi import key_name

    assert key_name(None) == "unknown" and key_name(KeySignature(9, "minor")) == "A minor"
    assert key_name(KeySignature(1, "major")) == "C# major"


def test_conductor_defaults_and_event_order(tmp_path):
    path = tmp_path / "d.mid"
    # no tempo and no metre given: 120 BPM and 4/4 are written
    write_midi(Piece(tracks=[Track("x", 0, False, [Note(60, 0, 1)])], tempos=[], time_signatures=[], title="T"), path)
    cond = _timeline(path)[0]
    assert [(t, m.type) for t, m in cond] == [(0, "track_name"), (0, "time_signature"), (0, "set_tempo"),
                                              (4 * PPQ, "end_of_track")]
    assert cond[0][1].name == "T" and (cond[1][1].numerator, cond[1][1].denominator) == (4, 4)
    assert cond[2][1].tempo == 500000  # 120 BPM in microseconds per beat
    # at one tick the conductor orders name, metre, key, tempo, marker
    p = Piece(tracks=[Track("x", 0, False, [Note(60, 0, 8)])], tempos=[Tempo(90.0, 2.0), Tempo(60.0)],
              keys=[KeySignature(2, "major", 2.0)], time_signatures=[TimeSignature(3, 4, 2.0), TimeSignature(2, 4)],
              markers=[Marker("m", 2.0)])
    write_midi(p, path)
    cond = [(t, m.type) for t, m in _timeline(path)[0]]
    assert cond == [(0, "track_name"), (0, "time_signature"), (0, "set_tempo"), (960, "time_signature"),
                    (960, "key_signature"), (960, "set_tempo"), (960, "marker"), (8 * PPQ, "end_of_track")]


def test_note_ticks_rounding_and_clamping(tmp_path):
    path = tmp_path / "r.mid"
    notes = [Note(60, 0.0004, 0.0001, 80),  # under half a tick long: still one tick
             Note(62, 1.0, 0.5, 70), Note(62, 1.0009, 0.25, 90),  # one tick: one note, the longer, the louder
             Note(64, 2.0 + 1 / 960, 1.0, 60)]  # half a tick rounds to even (Python's round)
    t = Track("x", 0, False, notes, bends=[PitchBend(9000, 3.0), PitchBend(-9000, 1.0)],
              pedals=[Pedal(0.0, 0.0001), Pedal(1.0, 1.0), Pedal(2.0, 1.0), Pedal(4.0, 0.5)], channel=3)
    write_midi(Piece(tracks=[t]), path)
    rows = _timeline(path)[1]
    notes_on = [(tk, m.note, m.velocity) for tk, m in rows if m.type == "note_on"]
    notes_off = [(tk, m.note) for tk, m in rows if m.type == "note_off"]
    assert notes_on == [(0, 60, 80), (480, 62, 90), (960, 64, 60)]
    assert notes_off == [(1, 60), (720, 62), (1440, 64)]
    assert {m.velocity for _, m in rows if m.type == "note_off"} == {0}
    # bends sorted by beat and clamped to the 14-bit range
    assert [(tk, m.pitch) for tk, m in rows if m.type == "pitchwheel"] == [(480, -8192), (1440, 8191)]
    # a zero-length pedal is one tick; touching ones (1-2, 2-3) are one press
    assert [(tk, m.value) for tk, m in rows if m.type == "control_change"] == [
        (0, 127), (1, 0), (480, 127), (1440, 0), (1920, 127), (2160, 0)]
    assert {m.channel for _, m in rows if not m.is_meta} == {3}  # notes, pedal and bends on the part's channel


def test_merged_pedals_and_the_end_of_the_music(tmp_path):
    from emomusic.io.midi import _merged_pedals, end_beat_bar_rounded

    got = _merged_pedals([Pedal(3.0, 1.0), Pedal(0.0, 2.0), Pedal(1.0, 0.5), Pedal(2.0, 0.5), Pedal(5.0, 1.0)])
    assert got == [Pedal(0.0, 2.5), Pedal(3.0, 1.0), Pedal(5.0, 1.0)]
    assert _merged_pedals([]) == []
    one = lambda end, sigs: end_beat_bar_rounded(Piece(time_signatures=sigs), end)  # noqa: E731
    assert one(0.0, [TimeSignature(4, 4)]) == 4.0  # at least one bar
    assert one(4.0, [TimeSignature(4, 4)]) == 4.0  # ending on a bar line: that bar
    assert one(4.0000001, [TimeSignature(4, 4)]) == 4.0  # float noise is not a new bar
    assert one(4.01, [TimeSignature(4, 4)]) == 8.0
    assert one(3.5, [TimeSignature(6, 8)]) == 6.0  # 6/8: 3-beat bars
    assert one(9.0, [TimeSignature(4, 4), TimeSignature(3, 4, 8.0)]) == 11.0  # bars counted from the change
    assert one(9.0, [TimeSignature(3, 4, 8.0), TimeSignature(4, 4)]) == 11.0  # in any order
    assert one(7.0, [TimeSignature(4, 4), TimeSignature(3, 4, 8.0)]) == 8.0  # the change comes later
    assert one(8.0, [TimeSignature(4, 4), TimeSignature(3, 4, 8.0)]) == 11.0  # ending where 3/4 begins: one 3/4 bar
    assert one(5.0, [TimeSignature(3, 4, 8.0)]) == 11.0  # a first metre after the end: one bar of it
    assert one(5.0, []) == 8.0  # no metre: 4/4
    # without an end: the last note, or a pedal held past it
    p = Piece(tracks=[Track("x", 0, False, [Note(60, 0, 1)], pedals=[Pedal(0.0, 5.0)])])
    assert end_beat_bar_rounded(p) == 8.0
    p.tracks[0].pedals = []
    assert end_beat_bar_rounded(p) == 4.0
    # every track of the file ends there, the conductor too
    p.tracks[0].pedals = [Pedal(0.0, 5.0)]

    def ends(piece):
        write_midi(piece, tmp_path / "e.mid")
        return [(tr[-1][0], tr[-1][1].type) for tr in _timeline(tmp_path / "e.mid")]

    assert ends(p) == [(8 * PPQ, "end_of_track")] * 2
    # a note ending on the bar line: the end comes with the note-off (no extra tick)
    assert ends(Piece(tracks=[Track("x", 0, False, [Note(60, 0, 4)])])) == [(4 * PPQ, "end_of_track")] * 2
    # a marker after the music: every track lasts to it
    late = Piece(tracks=[Track("x", 0, False, [Note(60, 0, 1)])], markers=[Marker("late", 18.0)])
    assert ends(late) == [(18 * PPQ, "end_of_track")] * 2
    # no parts at all: a conductor one bar long
    assert ends(Piece(tracks=[])) == [(4 * PPQ, "end_of_track")]


def test_writing_twice_gives_the_same_bytes(tmp_path, piece):
    """Messages get their delta time set in place: each is made for one track, so a second
    write (or another track) is not affected by the first."""
    a, b = tmp_path / "a.mid", tmp_path / "b.mid"
    write_piece(piece, a)
    write_piece(piece, b)
    assert a.read_bytes() == b.read_bytes()
    mf = mido.MidiFile(str(a))
    ticks = sorted(t for tr in mf.tracks[1:] for t in _abs_note_on_ticks(tr))
    want = sorted(int(round(n.start * mf.ticks_per_beat)) for t in piece.tracks for n in t.notes)
    assert ticks == want


def _abs_note_on_ticks(track):
    now = 0
    for msg in track:
        now += msg.time
        if msg.type == "note_on" and msg.velocity > 0:
            yield now
