"""MIDI <-> Piece, through mido.

Reading accepts any MIDI type and resolution. Writing produces what DAWs and notation
programs expect: type 1, 480 PPQ, a conductor track (tempo, key signature, time
signature, markers), then one named track per part with its General MIDI program.
The writer keeps one voice per key and channel (a same-pitch note still sounding is cut at
the next onset, :func:`emomusic.piece.without_overlaps`), puts note-offs before note-ons at
one tick, writes the sustain pedal (CC64) and pitch bends, and ends every track, the
conductor track too, at the music's end rounded up to a whole bar.
"""

from __future__ import annotations

import io
import math
import re
from collections import defaultdict
from pathlib import Path

from emomusic.atomic import atomic_path
from emomusic.errors import PieceFormatError
from emomusic.piece import (
    PITCH_CLASS_NAMES, KeySignature, Marker, Note, Pedal, Piece, PitchBend, Tempo, TimeSignature, Track, without_overlaps,
)

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
        from emomusic.quiet import quiet_import

        return quiet_import("pretty_midi").program_to_instrument_name(program)
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


_DENOMINATORS = (1, 2, 4, 8, 16, 32, 64)


def _midi_reason(exc: BaseException) -> str:
    """Why mido could not read a file, never empty (EOFError and KeyError carry no text)."""
    if isinstance(exc, EOFError):
        return "the file ends in the middle of a chunk or message (truncated)"
    if isinstance(exc, KeyError):
        return f"unknown MIDI message or meta type ({exc.args[0] if exc.args else '?'!r})"
    text = " ".join(str(exc).split())
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror
    return f"{type(exc).__name__}: {text}"[:200] if text else type(exc).__name__


def read_midi(path: str | Path) -> Piece:
    import mido

    from emomusic.limits import MAX_MIDI_BYTES, MAX_NOTES, check_file_size, check_piece_size

    try:
        size = Path(path).stat().st_size
        check_file_size(path, size, MAX_MIDI_BYTES, "MIDI")
        # mido reads each chunk with file.read(declared length): from a real file that
        # allocates the length a (corrupt) header claims, gigabytes from a few bytes;
        # an in-memory buffer never returns more than the file holds (the size is bounded above).
        with open(path, "rb") as fh:  # a file object: mido would re-encode a non-UTF-8 name
            data = fh.read(size + 1)
        mf = mido.MidiFile(file=io.BytesIO(data), clip=True)
    except PieceFormatError:
        raise
    except Exception as exc:  # mido raises OSError, EOFError, ValueError, KeyError, ...
        raise PieceFormatError(f"cannot read {path} as MIDI: {_midi_reason(exc)}") from None
    ppq = mf.ticks_per_beat
    if not ppq or ppq <= 0:
        raise PieceFormatError(f"cannot read {path} as MIDI: it uses SMPTE timing, which is not supported")

    piece = Piece(tracks=[], tempos=[], keys=[], time_signatures=[], markers=[])
    # Notes are grouped per (track index, channel): a type-0 file splits into parts by channel.
    groups: dict[tuple[int, int], list[Note]] = defaultdict(list)
    programs: dict[tuple[int, int], int] = {}
    channel_program: dict[int, int] = {}
    names: dict[int, str] = {}
    pedals: dict[tuple[int, int], list[Pedal]] = defaultdict(list)
    bends: dict[tuple[int, int], list[PitchBend]] = defaultdict(list)
    n_notes = 0
    try:
        for ti, track in enumerate(mf.tracks):
            tick = 0
            open_notes: dict[tuple[int, int], list[tuple[int, int]]] = defaultdict(list)
            pedal_down: dict[int, int] = {}  # channel -> tick the sustain pedal went down
            for msg in track:
                tick += msg.time
                beat = tick / ppq
                if msg.is_meta:
                    if msg.type == "set_tempo":
                        if msg.tempo <= 0:  # a zero tempo has no meaning: skip it
                            continue
                        piece.tempos.append(Tempo(round(mido.tempo2bpm(msg.tempo), 3), beat))
                    elif msg.type == "key_signature":
                        k = parse_key_name(msg.key)
                        if k:
                            piece.keys.append(KeySignature(k.tonic, k.mode, beat))
                    elif msg.type == "time_signature":
                        if not (1 <= msg.numerator <= 64 and msg.denominator in _DENOMINATORS):
                            continue  # a corrupt metre (0/4, 3/2**200): keep the previous one
                        piece.time_signatures.append(TimeSignature(msg.numerator, msg.denominator, beat))
                    elif msg.type in ("marker", "text", "cue_marker") and msg.text.strip():
                        if msg.type == "marker" or msg.text.startswith("emotion "):
                            piece.markers.append(Marker(_text(msg.text), beat))
                    elif msg.type == "track_name" and msg.name.strip():
                        names.setdefault(ti, _text(msg.name).strip())
                    continue
                if msg.type == "control_change" and msg.control == 64:
                    _pedal_event(pedals[(ti, msg.channel)], pedal_down, msg.channel, tick, msg.value >= 64, ppq)
                elif msg.type == "pitchwheel":
                    bends[(ti, msg.channel)].append(PitchBend(int(msg.pitch), beat))
                elif msg.type == "program_change":
                    channel_program[msg.channel] = msg.program
                    programs[(ti, msg.channel)] = msg.program
                elif msg.type == "note_on" and msg.velocity > 0:
                    n_notes += 1
                    if n_notes > MAX_NOTES:
                        raise PieceFormatError(f"{path} has too many notes (more than {MAX_NOTES})")
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
            for ch in list(pedal_down):  # a pedal never released lifts at the track's end
                _pedal_event(pedals[(ti, ch)], pedal_down, ch, tick, False, ppq)
            # Notes never released end at the track's last tick.
            for (ch, pitch), stack in open_notes.items():
                for start, vel in stack:
                    if tick > start:
                        groups[(ti, ch)].append(Note(pitch, start / ppq, (tick - start) / ppq, vel))
    except PieceFormatError:
        raise
    except Exception as exc:
        raise PieceFormatError(f"cannot read {path} as MIDI: {_midi_reason(exc)}") from None

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
        bl = bends.get((ti, ch), [])
        piece.tracks.append(Track(name, program, is_drum, notes, ch, pedals.get((ti, ch), []),
                                  bl if any(b.value for b in bl) else []))  # only centring: no bends
    if not piece.tempos:
        piece.tempos.append(Tempo(120.0))
    if not piece.time_signatures:
        piece.time_signatures.append(TimeSignature())
    piece.tempos.sort(key=lambda t: t.beat)
    piece.keys.sort(key=lambda k: k.beat)
    piece.time_signatures.sort(key=lambda t: t.beat)
    piece.markers.sort(key=lambda m: m.beat)
    piece.title = names.get(0, "") if len(mf.tracks) > 1 or channels_in_track[0] > 1 else ""
    check_piece_size(piece, path)
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


def _pedal_event(out: list[Pedal], down: dict[int, int], ch: int, tick: int, is_down: bool, ppq: int) -> None:
    if is_down:
        down.setdefault(ch, tick)
    elif ch in down:
        start = down.pop(ch)
        if tick > start:
            out.append(Pedal(start / ppq, (tick - start) / ppq))


def end_beat_bar_rounded(piece: Piece, end: float | None = None) -> float:
    """The music's end (``end``, else the last note or pedal release) rounded up to a whole
    bar of the time signature then in force; at least one bar."""
    if end is None:
        end = max([piece.end_beat] + [p.end for t in piece.tracks for p in t.pedals])
    sigs = sorted(piece.time_signatures or [TimeSignature()], key=lambda x: x.beat)
    ts = sigs[0]
    for x in sigs:
        if x.beat <= end + 1e-9:
            ts = x
    bars = max(1, math.ceil((end - ts.beat) / ts.bar_beats - 1e-6)) if end > ts.beat else 1
    return ts.beat + bars * ts.bar_beats


# Order of events at one tick: note-offs and pedal releases before new presses and notes.
_ORDER_OFF, _ORDER_PEDAL_UP, _ORDER_PEDAL_DOWN, _ORDER_BEND, _ORDER_ON = 3, 4, 5, 6, 7


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
    tracks = [conductor]

    for track, ch in zip(piece.tracks, _assign_channels(piece.tracks)):
        events: list[tuple[int, int, object]] = [
            (0, 0, mido.MetaMessage("track_name", name=track.name or _gm_name(track.program))),
            (0, 1, mido.MetaMessage("instrument_name", name="Drums" if track.is_drum else _gm_name(track.program))),
        ]
        if not track.is_drum:
            events.append((0, 2, mido.Message("program_change", program=track.program, channel=ch)))
        # one voice per key: in ticks, a note still sounding is cut at the next onset of its pitch
        last_on: dict[int, int] = {}
        ticked = []
        for n in without_overlaps(track.notes):
            start, end = tk(n.start), tk(n.end)
            if last_on.get(n.pitch) == start:
                continue  # two onsets rounded onto one tick: one note
            ticked.append([n.pitch, start, max(end, start + 1), n.velocity])
            last_on[n.pitch] = start
        nxt: dict[int, int] = {}
        for row in reversed(ticked):
            if row[0] in nxt:
                row[2] = min(row[2], nxt[row[0]])
            nxt[row[0]] = row[1]
        for pitch, start, end, vel in ticked:
            events.append((start, _ORDER_ON, mido.Message("note_on", note=pitch, velocity=vel, channel=ch)))
            events.append((end, _ORDER_OFF, mido.Message("note_off", note=pitch, velocity=0, channel=ch)))
        for p in _merged_pedals(track.pedals):
            events.append((tk(p.start), _ORDER_PEDAL_DOWN, mido.Message("control_change", control=64, value=127, channel=ch)))
            events.append((max(tk(p.end), tk(p.start) + 1), _ORDER_PEDAL_UP,
                           mido.Message("control_change", control=64, value=0, channel=ch)))
        for b in sorted(track.bends, key=lambda b: b.beat):
            events.append((tk(b.beat), _ORDER_BEND, mido.Message("pitchwheel", pitch=max(-8192, min(8191, int(b.value))), channel=ch)))
        tracks.append(events)
    music_end = max([e[0] for ev in tracks[1:] for e in ev], default=0) / PPQ  # after the cuts
    end_tick = max([tk(end_beat_bar_rounded(piece, music_end))] + [e[0] for ev in tracks for e in ev])
    for ev in tracks:
        mf.tracks.append(_to_track(ev, end_tick))
    return mf


def _merged_pedals(pedals: list[Pedal]) -> list[Pedal]:
    """Overlapping or touching pedal intervals as one (the pedal is one switch)."""
    out: list[Pedal] = []
    for p in sorted(pedals, key=lambda p: p.start):
        if out and p.start <= out[-1].end:
            last = out[-1]
            out[-1] = Pedal(last.start, max(last.end, p.end) - last.start)
        else:
            out.append(p)
    return out


def _to_track(events, end_tick: int | None = None):
    import mido

    events.sort(key=lambda e: (e[0], e[1]))
    track = mido.MidiTrack()
    last = 0
    for tick, _, msg in events:  # each message made for this track: its time is set in place (no checked copy)
        msg.time = tick - last
        track.append(msg)
        last = tick
    track.append(mido.MetaMessage("end_of_track", time=max(0, (end_tick or last) - last)))
    return track


def write_midi(piece: Piece, path: str | Path) -> None:
    mf = piece_to_midifile(piece)
    with atomic_path(path) as tmp:
        mf.save(str(tmp))


def key_name(key: KeySignature | None) -> str:
    return "unknown" if key is None else f"{PITCH_CLASS_NAMES[key.tonic]} {key.mode}"
