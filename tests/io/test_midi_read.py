"""The MIDI reader, against files built here event by event (mido, or raw SMF bytes where
mido would refuse to write the corrupt event): every expected value is written out by hand
from the file's ticks (480 a beat unless said otherwise)."""

from __future__ import annotations

import struct

import mido
import pytest

from emomusic import limits
from emomusic.errors import PieceFormatError
from emomusic.io.midi import _midi_reason, parse_key_name, read_midi
from emomusic.piece import KeySignature, Marker, Pedal, PitchBend, Tempo, TimeSignature

B = 480  # ticks a beat


def _file(path, *tracks, ppq=B, kind=1):
    mf = mido.MidiFile(type=kind, ticks_per_beat=ppq)
    for events in tracks:
        mf.tracks.append(mido.MidiTrack(events))
    mf.save(str(path))
    return path


def _vlq(n: int) -> bytes:
    """A standard-MIDI-file variable-length quantity (7 bits a byte, high bit = more)."""
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


def _smf(path, *tracks: bytes, ppq=B, kind=1):
    """A file from raw track bodies: header chunk, then one MTrk chunk per body."""
    data = b"MThd" + struct.pack(">IHHH", 6, kind, len(tracks), ppq)
    for body in tracks:
        data += b"MTrk" + struct.pack(">I", len(body)) + body
    path.write_bytes(data)
    return path


def on(note, vel=80, t=0, ch=0):
    return mido.Message("note_on", note=note, velocity=vel, time=t, channel=ch)


def off(note, t=0, ch=0):
    return mido.Message("note_off", note=note, velocity=0, time=t, channel=ch)


def _notes(track):
    return [(n.pitch, n.start, n.duration, n.velocity) for n in track.notes]


# -- notes -----------------------------------------------------------------------------------
def test_same_pitch_notes_pair_first_on_with_first_off(tmp_path):
    # two strikes of C4 overlap: the first note-off ends the first note-on (first in, first out);
    # a note-on and note-off at one tick is no note; note-on velocity 0 is a note-off
    path = _file(tmp_path / "f.mid", [on(60, 90), on(60, 50, t=B // 2), off(60, t=B // 2), off(60, t=B),
                                      on(64, 70), off(64), on(67, 60, t=B), on(67, 0, t=B // 4)])
    assert _notes(read_midi(path).tracks[0]) == [(60, 0.0, 1.0, 90), (60, 0.5, 1.5, 50), (67, 3.0, 0.25, 60)]


def test_notes_sorted_by_start_then_pitch_and_open_notes_end_with_the_track(tmp_path):
    # a chord written top-down reads bottom-up; a note never released ends at the track's last
    # event (tick 3 * 480 here), one struck on that last tick has no length and is dropped
    path = _file(tmp_path / "f.mid", [on(67), on(60), on(64), off(67, t=B), off(64), off(60),
                                      on(72, 100, t=B), on(74, t=B), mido.MetaMessage("end_of_track", time=0)])
    assert _notes(read_midi(path).tracks[0]) == [(60, 0.0, 1.0, 80), (64, 0.0, 1.0, 80), (67, 0.0, 1.0, 80),
                                                 (72, 2.0, 1.0, 100)]


def test_velocity_bytes_over_127_are_clipped(tmp_path):
    # a corrupt data byte (0xC8 = 200) as note-on velocity: read as 127, the note kept
    body = b"\x00\x90\x3c\xc8" + _vlq(B) + b"\x80\x3c\x00" + b"\x00\xff\x2f\x00"
    path = _smf(tmp_path / "c.mid", body)
    assert _notes(read_midi(path).tracks[0]) == [(60, 0.0, 1.0, 127)]


def test_the_smallest_resolution_one_tick_a_beat(tmp_path):
    path = _file(tmp_path / "r.mid", [on(60), off(60, t=3), on(62, t=1), off(62, t=1)], ppq=1)
    assert _notes(read_midi(path).tracks[0]) == [(60, 0.0, 3.0, 80), (62, 4.0, 1.0, 80)]


# -- tracks, channels, programs, names -------------------------------------------------------
def test_programs_names_and_title(tmp_path):
    # track 0: conductor, named (the title); track 1: a named part on channel 2 whose program is
    # set on channel 2 before its notes; track 2: no program change, channel 2 again (takes the
    # channel's last program, 24 = Acoustic Guitar (nylon)), name is blank: the GM name; track
    # 3: drums on channel 10 (9 from 0), unnamed: "Drums"; names are stripped, UTF-8 decoded
    conductor = [mido.MetaMessage("track_name", name="  My Song ", time=0)]
    part = [mido.MetaMessage("track_name", name="Caf\u00c3\u00a9", time=0),  # the UTF-8 bytes of "Café"
            mido.MetaMessage("track_name", name="second name", time=0),
            mido.Message("program_change", channel=2, program=24, time=0), on(60, ch=2), off(60, t=B, ch=2)]
    blank = [mido.MetaMessage("track_name", name="   ", time=0), on(62, ch=2), off(62, t=B, ch=2)]
    drums = [on(36, 100, ch=9), off(36, t=B // 4, ch=9)]
    p = read_midi(_file(tmp_path / "t.mid", conductor, part, blank, drums))
    assert p.title == "My Song"
    assert [(t.name, t.program, t.is_drum, t.channel) for t in p.tracks] == [
        ("Café", 24, False, 2), ("Acoustic Guitar (nylon)", 24, False, 2), ("Drums", 0, True, 9)]
    # not UTF-8: the latin-1 text as it stands
    p = read_midi(_file(tmp_path / "l.mid", [mido.MetaMessage("track_name", name="Caf\u00e9", time=0), on(60), off(60, t=B)]))
    assert p.tracks[0].name == "Café"


def test_one_track_file_has_no_title_unless_it_holds_several_parts(tmp_path):
    one = _file(tmp_path / "1.mid", [mido.MetaMessage("track_name", name="Piano", time=0), on(60), off(60, t=B)])
    p = read_midi(one)
    assert (p.title, p.tracks[0].name) == ("", "Piano")
    # type 0, two channels: the track's name is the song's; the parts get GM names (program 0
    # = Acoustic Grand Piano, 40 = Violin); a program set in another track carries over by channel
    two = _file(tmp_path / "2.mid", [mido.MetaMessage("track_name", name="Song", time=0),
                                     mido.Message("program_change", channel=1, program=40, time=0),
                                     on(60), on(72, ch=1), off(60, t=B), off(72, ch=1)], kind=0)
    p = read_midi(two)
    assert p.title == "Song"
    assert [(t.name, t.program, t.channel) for t in p.tracks] == [("Acoustic Grand Piano", 0, 0), ("Violin", 40, 1)]


# -- conductor events -----------------------------------------------------------------------
def test_tempo_key_metre_and_marker_events(tmp_path):
    # events in two tracks, out of order across tracks: each list comes back sorted by beat.
    # 500000 us = 120 bpm, 400000 us = 150 bpm, 600000 us = 100 bpm; a zero tempo means nothing
    # and is skipped (the events after it in the track are still read)
    t0 = [mido.MetaMessage("set_tempo", tempo=400000, time=2 * B),
          mido.MetaMessage("key_signature", key="Bbm", time=0),
          mido.MetaMessage("marker", text="chorus", time=0),
          mido.MetaMessage("text", text="emotion v=0.10 a=0.20 Q1", time=B),
          mido.MetaMessage("text", text="just a comment", time=0),
          mido.MetaMessage("cue_marker", text="emotion v=-0.50 a=0.50 Q2", time=0),
          mido.MetaMessage("cue_marker", text="lights", time=0),
          mido.MetaMessage("marker", text="   ", time=0)]
    t1 = [mido.MetaMessage("set_tempo", tempo=0, time=0),
          mido.MetaMessage("set_tempo", tempo=500000, time=0),
          mido.MetaMessage("key_signature", key="F#", time=0),
          mido.MetaMessage("marker", text="intro", time=0),
          mido.MetaMessage("time_signature", numerator=3, denominator=8, time=0),
          on(60), mido.MetaMessage("set_tempo", tempo=600000, time=B), off(60, t=3 * B)]
    p = read_midi(_file(tmp_path / "c.mid", t0, t1))
    assert p.tempos == [Tempo(120.0, 0.0), Tempo(100.0, 1.0), Tempo(150.0, 2.0)]
    assert p.keys == [KeySignature(6, "major", 0.0), KeySignature(10, "minor", 2.0)]
    assert p.time_signatures == [TimeSignature(3, 8, 0.0)]
    assert p.markers == [Marker("intro", 0.0), Marker("chorus", 2.0), Marker("emotion v=0.10 a=0.20 Q1", 3.0),
                         Marker("emotion v=-0.50 a=0.50 Q2", 3.0)]
    assert _notes(p.tracks[0]) == [(60, 0.0, 4.0, 80)]


def test_defaults_without_conductor_events(tmp_path):
    p = read_midi(_file(tmp_path / "d.mid", [on(60), off(60, t=B)]))
    assert (p.tempos, p.time_signatures, p.keys, p.markers) == ([Tempo(120.0)], [TimeSignature(4, 4)], [], [])
    # several tracks, none named: no title, parts named after their programs
    p = read_midi(_file(tmp_path / "u.mid", [on(60), off(60, t=B)], [on(62), off(62, t=B)]))
    assert (p.title, [t.name for t in p.tracks]) == ("", ["Acoustic Grand Piano", "Acoustic Grand Piano"])


def test_metres_outside_1_to_64_over_a_listed_denominator_are_skipped(tmp_path):
    # raw time-signature events (FF 58 04 nn dd cc bb, the denominator as a power of two):
    # 1/4 and 64/4 are kept; 0/4, 65/4 and 3/128 (dd = 7) are corrupt and skipped, and the
    # track goes on (the note after them is read)
    def metre(delta, num, dd):
        return _vlq(delta) + b"\xff\x58\x04" + bytes([num, dd, 24, 8])

    body = (metre(0, 1, 2) + metre(B, 0, 2) + metre(0, 65, 2) + metre(0, 3, 7) + metre(B, 64, 2)
            + b"\x00\x90\x3c\x50" + _vlq(B) + b"\x80\x3c\x00" + b"\x00\xff\x2f\x00")
    p = read_midi(_smf(tmp_path / "m.mid", body))
    assert p.time_signatures == [TimeSignature(1, 4, 0.0), TimeSignature(64, 4, 2.0)]
    assert _notes(p.tracks[0]) == [(60, 2.0, 1.0, 80)]


@pytest.mark.parametrize("name,want", [
    ("C", KeySignature(0, "major")), ("Am", KeySignature(9, "minor")), (" Ebm ", KeySignature(3, "minor")),
    ("Cb", KeySignature(11, "major")), ("G#m", KeySignature(8, "minor")),
    ("Fb", None), ("E#", None), ("B#m", None), ("H", None), ("", None), ("Cmaj", None), ("c", None)])
def test_key_names(name, want):
    # the spellings of the 12 major and 12 minor keys MIDI key signatures carry; E#, B# and Fb
    # are no key signature's tonic
    assert parse_key_name(name) == want


# -- sustain pedal ----------------------------------------------------------------------------
def test_sustain_pedal_values_and_timing(tmp_path):
    # CC64 >= 64 is down, < 64 up. Down at 0, down again at 0.5 (still the same press), up (63)
    # at 1; down and up at one tick (beat 2) is no pedal; up without down is nothing; down at 3
    # and never released lifts at the track's end (beat 4). Channel 1's pedal is its own part's.
    def cc(value, t=0, ch=0):
        return mido.Message("control_change", control=64, value=value, time=t, channel=ch)

    events = [cc(64), on(60), cc(127, t=B // 2), cc(63, t=B // 2), off(60), cc(100, t=B), cc(0), cc(0, t=B // 2),
              cc(90, t=B // 2), on(61, ch=1), cc(127, ch=1), mido.Message("control_change", control=7, value=0, time=0),
              off(61, t=B // 2, ch=1), cc(10, ch=1), off(62, t=B // 2)]
    p = read_midi(_file(tmp_path / "p.mid", events))
    assert [(t.channel, t.pedals) for t in p.tracks] == [(0, [Pedal(0.0, 1.0), Pedal(3.0, 1.0)]),
                                                         (1, [Pedal(3.0, 0.5)])]


def test_pitch_bends_are_kept_unless_all_centred(tmp_path):
    bend = [mido.Message("pitchwheel", pitch=0, time=0), on(60), mido.Message("pitchwheel", pitch=-8192, time=B),
            mido.Message("pitchwheel", pitch=8191, time=B // 2), off(60, t=B // 2)]
    flat = [on(60), mido.Message("pitchwheel", pitch=0, time=B), off(60, t=B)]
    p = read_midi(_file(tmp_path / "b.mid", bend, flat))
    assert p.tracks[0].bends == [PitchBend(0, 0.0), PitchBend(-8192, 1.0), PitchBend(8191, 1.5)]
    assert p.tracks[1].bends == []


# -- errors ----------------------------------------------------------------------------------
def test_errors_name_the_file_and_the_reason(tmp_path):
    smpte = _smf(tmp_path / "s.mid", b"\x00\x90\x3c\x50\x10\x80\x3c\x00\x00\xff\x2f\x00", ppq=0xE728)
    with pytest.raises(PieceFormatError) as exc:
        read_midi(smpte)
    assert str(exc.value) == f"cannot read {smpte} as MIDI: it uses SMPTE timing, which is not supported"
    garbage = tmp_path / "g.mid"
    garbage.write_bytes(b"RIFF and no MIDI header here")
    with pytest.raises(PieceFormatError) as exc:
        read_midi(garbage)
    assert str(exc.value) == f"cannot read {garbage} as MIDI: OSError: MThd not found. Probably not a MIDI file"
    cut = tmp_path / "t.mid"
    cut.write_bytes(_smf(tmp_path / "whole.mid", b"\x00\x90\x3c\x50\x10\x80\x3c\x00\x00\xff\x2f\x00").read_bytes()[:-3])
    with pytest.raises(PieceFormatError) as exc:
        read_midi(cut)
    assert str(exc.value) == f"cannot read {cut} as MIDI: the file ends in the middle of a chunk or message (truncated)"
    undefined = _smf(tmp_path / "u.mid", b"\x00\xf4\x00\xff\x2f\x00")  # 0xF4 is no MIDI status
    with pytest.raises(PieceFormatError) as exc:
        read_midi(undefined)
    assert str(exc.value) == f"cannot read {undefined} as MIDI: OSError: undefined status byte 0xf4"


def test_file_size_and_note_count_limits(tmp_path, monkeypatch):
    path = _file(tmp_path / "n.mid", [on(60), off(60, t=1), on(62), off(62, t=1), on(64), off(64, t=1)])
    size = path.stat().st_size
    monkeypatch.setattr(limits, "MAX_MIDI_BYTES", size)
    monkeypatch.setattr(limits, "MAX_NOTES", 3)
    assert len(read_midi(path).tracks[0].notes) == 3  # exactly at both limits: read
    monkeypatch.setattr(limits, "MAX_MIDI_BYTES", size - 1)
    with pytest.raises(PieceFormatError) as exc:
        read_midi(path)
    assert str(exc.value) == f"{path} is too large to read as MIDI (0.0 MB; at most 0 MB)"
    monkeypatch.setattr(limits, "MAX_MIDI_BYTES", size)
    monkeypatch.setattr(limits, "MAX_NOTES", 2)
    with pytest.raises(PieceFormatError) as exc:
        read_midi(path)
    assert str(exc.value) == f"{path} has too many notes (more than 2)"
    # the whole piece's bounds name the file too
    monkeypatch.setattr(limits, "MAX_MIDI_BYTES", 4 * 2**20)
    monkeypatch.setattr(limits, "MAX_NOTES", 3)
    monkeypatch.setattr(limits, "MAX_TRACKS", 1)
    two = _file(tmp_path / "two.mid", [on(60), off(60, t=1)], [on(62), off(62, t=1)])
    with pytest.raises(PieceFormatError) as exc:
        read_midi(two)
    assert str(exc.value) == f"{two} has too many tracks (2; at most 1)"


@pytest.mark.parametrize("exc,reason", [
    (EOFError(), "the file ends in the middle of a chunk or message (truncated)"),
    (KeyError(0xF4), "unknown MIDI message or meta type (244)"),
    (KeyError(), "unknown MIDI message or meta type ('?')"),
    (ValueError("data byte\n  must be   in range"), "ValueError: data byte must be in range"),
    (OSError(2, "No such file or directory", "x.mid"), "FileNotFoundError: No such file or directory"),
    (OSError("MThd not found"), "OSError: MThd not found"),
    (ValueError("   "), "ValueError"),
    (ValueError("x" * 300), "ValueError: " + "x" * 188),
])
def test_reasons_are_one_short_line(exc, reason):
    assert _midi_reason(exc) == reason


def test_a_failure_while_reading_events_is_one_line_naming_the_file(tmp_path, monkeypatch):
    # whatever goes wrong while the events are interpreted (here: the key-name parser) comes
    # out as the reader's one-line error, never as the bare exception
    import emomusic.io.midi as midi

    def broken(name):
        raise ValueError(f"odd key\n{name}")

    monkeypatch.setattr(midi, "parse_key_name", broken)
    path = _file(tmp_path / "k.mid", [mido.MetaMessage("key_signature", key="D", time=0), on(60), off(60, t=B)])
    with pytest.raises(PieceFormatError) as exc:
        read_midi(path)
    assert str(exc.value) == f"cannot read {path} as MIDI: ValueError: odd key D"
