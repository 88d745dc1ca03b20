"""MIDI <-> Piece, through mido.

Reading accepts any MIDI type and resolution. Writing produces what DAWs and notation
programs expect: type 1, 480 PPQ, a conductor track (tempo, key signature, time
signature, markers), then one named track per part with its General MIDI program.
"""

from __future__ import annotations

import io
import re
from collections import defaultdict
from pathlib import Path

from emomusic.atomic import atomic_path
from emomusic.errors import PieceFormatError
from emomusic.piece import PITCH_CLASS_NAMES, KeySignature, Marker, Note, Piece, Tempo, TimeSignature, Track

PPQ = 480
DRUM_CHANNEL = 9

_KEY_TONICS = {
    "C": 0, "C#": 1, "Db": 1, "D": 2, "D#": 3, "Eb": 3, "E": 4, "F": 5, "F#": 6, "Gb": 6,
    "G": 7, "G#": 8, "Ab": 8, "A": 9, "A#": 10, "Bb": 10, "B": 11, "Cb": 11,
}
# Spelling mido accepts for key_signature meta events (major / minor).
_MAJOR_KEYS = ["C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]
_MINOR_KEYS = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "G#", "A", "Bb", "B"]


def _gm_name(program: int) -> str:
    try:
        import pretty_midi

        return pretty_midi.program_to_instrument_name(program)
    except Exception:  # pragma: no cover - pretty_midi is a dependency
        return f"Program {program}"


def _text(raw: str) -> str:
    """A MIDI text event as read by mido (latin-1) -> str: UTF-8 where the bytes are UTF-8
    (what this writer and most programs write), else latin-1 as it stands."""
    try:
        return raw.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return raw


def parse_key_name(name: str) -> KeySignature | None:
    m = re.fullmatch(r"([A-G][#b]?)(m?)", name.strip())
    if not m or m.group(1) not in _KEY_TONICS:
        return None
    return KeySignature(_KEY_TONICS[m.group(1)], "minor" if m.group(2) else "major")


def key_to_mido(key: KeySignature) -> str:
    if key.mode == "minor":
        return _MINOR_KEYS[key.tonic % 12] + "m"
    return _MAJOR_KEYS[key.tonic % 12]


def read_midi(path: str | Path) -> Piece:
    import mido

    try:
        # mido reads each chunk with file.read(declared length): from a real file that
        # allocates the length a (corrupt) header claims, gigabytes from a few bytes;
        # an in-memory buffer never returns more than the file holds.
        mf = mido.MidiFile(file=io.BytesIO(Path(path).read_bytes()), clip=True)
    except Exception as exc:  # mido raises OSError, EOFError, ValueError, KeyError, ...
        raise PieceFormatError(f"cannot read {path} as MIDI: {str(exc) or type(exc).__name__}") from None
    ppq = mf.ticks_per_beat
    if not ppq or ppq <= 0:
        raise PieceFormatError(f"cannot read {path} as MIDI: it uses SMPTE timing, which is not supported")

    piece = Piece(tracks=[], tempos=[], keys=[], time_signatures=[], markers=[])
    # Notes are grouped per (track index, channel): a type-0 file splits into parts by channel.
    groups: dict[tuple[int, int], list[Note]] = defaultdict(list)
    programs: dict[tuple[int, int], int] = {}
    channel_program: dict[int, int] = {}
    names: dict[int, str] = {}
    try:
        for ti, track in enumerate(mf.tracks):
            tick = 0
            open_notes: dict[tuple[int, int], list[tuple[int, int]]] = defaultdict(list)
            for msg in track:
                tick += msg.time
                beat = tick / ppq
                if msg.is_meta:
                    if msg.type == "set_tempo":
                        piece.tempos.append(Tempo(round(mido.tempo2bpm(msg.tempo), 3), beat))
                    elif msg.type == "key_signature":
                        k = parse_key_name(msg.key)
                        if k:
                            piece.keys.append(KeySignature(k.tonic, k.mode, beat))
                    elif msg.type == "time_signature":
                        piece.time_signatures.append(TimeSignature(msg.numerator, msg.denominator, beat))
                    elif msg.type in ("marker", "text", "cue_marker") and msg.text.strip():
                        if msg.type == "marker" or msg.text.startswith("emotion "):
                            piece.markers.append(Marker(_text(msg.text), beat))
                    elif msg.type == "track_name" and msg.name.strip():
                        names.setdefault(ti, _text(msg.name).strip())
                    continue
                if msg.type == "program_change":
                    channel_program[msg.channel] = msg.program
                    programs[(ti, msg.channel)] = msg.program
                elif msg.type == "note_on" and msg.velocity > 0:
                    open_notes[(msg.channel, msg.note)].append((tick, msg.velocity))
                    programs.setdefault((ti, msg.channel), channel_program.get(msg.channel, 0))
                elif msg.type == "note_off" or (msg.type == "note_on" and msg.velocity == 0):
                    stack = open_notes.get((msg.channel, msg.note))
                    if stack:
                        start, vel = stack.pop(0)
                        if tick > start:
                            groups[(ti, msg.channel)].append(
                                Note(msg.note, start / ppq, (tick - start) / ppq, max(1, min(127, vel)))
                            )
            # Notes never released end at the track's last tick.
            for (ch, pitch), stack in open_notes.items():
                for start, vel in stack:
                    if tick > start:
                        groups[(ti, ch)].append(Note(pitch, start / ppq, (tick - start) / ppq, vel))
    except PieceFormatError:
        raise
    except Exception as exc:
        raise PieceFormatError(f"cannot read {path} as MIDI: {exc}") from None

    channels_in_track: dict[int, int] = defaultdict(int)
    for (ti, ch), notes in groups.items():
        if notes:
            channels_in_track[ti] += 1
    for (ti, ch), notes in sorted(groups.items()):
        if not notes:
            continue
        notes.sort(key=lambda n: (n.start, n.pitch))
        program = programs.get((ti, ch), 0)
        is_drum = ch == DRUM_CHANNEL
        # A track holding several channels (type 0) names the song, not each part.
        own_name = names.get(ti) if channels_in_track[ti] == 1 else None
        name = own_name or ("Drums" if is_drum else _gm_name(program))
        piece.tracks.append(Track(name, program, is_drum, notes, ch))
    if not piece.tempos:
        piece.tempos.append(Tempo(120.0))
    if not piece.time_signatures:
        piece.time_signatures.append(TimeSignature())
    piece.tempos.sort(key=lambda t: t.beat)
    piece.keys.sort(key=lambda k: k.beat)
    piece.time_signatures.sort(key=lambda t: t.beat)
    piece.markers.sort(key=lambda m: m.beat)
    piece.title = names.get(0, "") if len(mf.tracks) > 1 or channels_in_track[0] > 1 else ""
    return piece


def _assign_channels(tracks: list[Track]) -> list[int]:
    used: set[int] = set()
    chans = []
    free = [c for c in range(16) if c != DRUM_CHANNEL]
    for t in tracks:
        if t.is_drum:
            chans.append(DRUM_CHANNEL)
            continue
        if t.channel is not None and t.channel != DRUM_CHANNEL and t.channel not in used:
            ch = t.channel
        else:
            avail = [c for c in free if c not in used]
            ch = avail[0] if avail else free[len(chans) % len(free)]
        used.add(ch)
        chans.append(ch)
    return chans


def piece_to_midifile(piece: Piece):
    import mido

    def tk(beat: float) -> int:
        return max(0, int(round(beat * PPQ)))

    mf = mido.MidiFile(type=1, ticks_per_beat=PPQ, charset="utf-8")  # names in any script
    conductor: list[tuple[int, int, object]] = []  # (tick, order, message)
    conductor.append((0, 0, mido.MetaMessage("track_name", name=piece.title or "emomusic")))
    for ts in piece.time_signatures or [TimeSignature()]:
        conductor.append((tk(ts.beat), 1, mido.MetaMessage("time_signature", numerator=ts.numerator, denominator=ts.denominator)))
    for k in piece.keys:
        conductor.append((tk(k.beat), 2, mido.MetaMessage("key_signature", key=key_to_mido(k))))
    for tp in piece.tempos or [Tempo(120.0)]:
        conductor.append((tk(tp.beat), 3, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(tp.bpm))))
    for m in piece.markers:
        conductor.append((tk(m.beat), 4, mido.MetaMessage("marker", text=m.text)))
    mf.tracks.append(_to_track(conductor))

    for track, ch in zip(piece.tracks, _assign_channels(piece.tracks)):
        events: list[tuple[int, int, object]] = [
            (0, 0, mido.MetaMessage("track_name", name=track.name or _gm_name(track.program))),
            (0, 1, mido.MetaMessage("instrument_name", name="Drums" if track.is_drum else _gm_name(track.program))),
        ]
        if not track.is_drum:
            events.append((0, 2, mido.Message("program_change", program=track.program, channel=ch)))
        for n in track.notes:
            start, end = tk(n.start), tk(n.end)
            if end <= start:
                end = start + 1
            # note_off sorts before note_on at the same tick so repeated notes re-strike.
            events.append((start, 4, mido.Message("note_on", note=n.pitch, velocity=n.velocity, channel=ch)))
            events.append((end, 3, mido.Message("note_off", note=n.pitch, velocity=0, channel=ch)))
        mf.tracks.append(_to_track(events))
    return mf


def _to_track(events):
    import mido

    events.sort(key=lambda e: (e[0], e[1]))
    track = mido.MidiTrack()
    last = 0
    for tick, _, msg in events:
        track.append(msg.copy(time=tick - last))
        last = tick
    track.append(mido.MetaMessage("end_of_track", time=0))
    return track


def write_midi(piece: Piece, path: str | Path) -> None:
    mf = piece_to_midifile(piece)
    with atomic_path(path) as tmp:
        mf.save(str(tmp))


def key_name(key: KeySignature | None) -> str:
    return "unknown" if key is None else f"{PITCH_CLASS_NAMES[key.tonic]} {key.mode}"
