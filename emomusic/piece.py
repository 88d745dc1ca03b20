"""The one internal representation of a piece of music.

Times are in beats (quarter notes) from the start, so a piece stays musical when its
tempo changes; :meth:`Piece.beat_to_seconds` converts through the tempo map. Readers and
writers in :mod:`emomusic.io` convert at the edges (MIDI, ABC, MusicXML, WAV).
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field, replace

from emomusic.errors import PieceFormatError

PITCH_CLASS_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


@dataclass(frozen=True)
class Note:
    pitch: int  # MIDI 0..127
    start: float  # beats
    duration: float  # beats, > 0
    velocity: int = 80  # 1..127

    @property
    def end(self) -> float:
        return self.start + self.duration


@dataclass(frozen=True)
class Pedal:
    """The sustain pedal (MIDI CC64) held down from ``start`` for ``duration`` beats."""

    start: float  # beats
    duration: float  # beats, > 0

    @property
    def end(self) -> float:
        return self.start + self.duration


@dataclass(frozen=True)
class PitchBend:
    """The track's pitch wheel moves to ``value`` (-8192..8191, 0 = centre; +-8192 is
    +-``BEND_RANGE_SEMITONES``) at ``beat`` and stays there until the next bend."""

    value: int
    beat: float = 0.0

    @property
    def semitones(self) -> float:
        return self.value / 8192.0 * BEND_RANGE_SEMITONES


BEND_RANGE_SEMITONES = 2.0  # the General MIDI default pitch-bend sensitivity


@dataclass
class Track:
    name: str
    program: int = 0  # General MIDI program 0..127
    is_drum: bool = False
    notes: list[Note] = field(default_factory=list)
    channel: int | None = None  # preferred MIDI channel; assigned on export when None
    pedals: list[Pedal] = field(default_factory=list)  # sustain pedal (CC64) down intervals
    bends: list[PitchBend] = field(default_factory=list)  # pitch wheel changes, by beat


@dataclass(frozen=True)
class KeySignature:
    tonic: int  # pitch class 0..11 (0 = C)
    mode: str  # "major" | "minor"
    beat: float = 0.0

    @property
    def name(self) -> str:
        return f"{PITCH_CLASS_NAMES[self.tonic % 12]} {self.mode}"


@dataclass(frozen=True)
class TimeSignature:
    numerator: int = 4
    denominator: int = 4
    beat: float = 0.0

    @property
    def bar_beats(self) -> float:
        """Length of one bar in quarter-note beats."""
        return self.numerator * 4.0 / self.denominator


@dataclass(frozen=True)
class Tempo:
    bpm: float
    beat: float = 0.0


@dataclass(frozen=True)
class Marker:
    text: str
    beat: float = 0.0


@dataclass
class Piece:
    tracks: list[Track] = field(default_factory=list)
    tempos: list[Tempo] = field(default_factory=lambda: [Tempo(120.0)])
    keys: list[KeySignature] = field(default_factory=list)
    time_signatures: list[TimeSignature] = field(default_factory=lambda: [TimeSignature()])
    markers: list[Marker] = field(default_factory=list)
    title: str = ""

    # -- queries ---------------------------------------------------------------------
    @property
    def notes(self) -> list[Note]:
        """All pitched notes (drum tracks excluded), sorted by start then pitch."""
        out = [n for t in self.tracks if not t.is_drum for n in t.notes]
        out.sort(key=lambda n: (n.start, n.pitch))
        return out

    @property
    def end_beat(self) -> float:
        ends = [n.end for t in self.tracks for n in t.notes]
        return max(ends) if ends else 0.0

    @property
    def tempo(self) -> float:
        """The opening tempo in BPM."""
        return self.tempos[0].bpm if self.tempos else 120.0

    @property
    def key(self) -> KeySignature | None:
        return self.keys[0] if self.keys else None

    @property
    def time_signature(self) -> TimeSignature:
        return self.time_signatures[0] if self.time_signatures else TimeSignature()

    @property
    def n_bars(self) -> int:
        bar = self.time_signature.bar_beats
        return int(math.ceil(self.end_beat / bar - 1e-6)) if self.end_beat > 0 else 0

    def is_empty(self) -> bool:
        return not any(t.notes for t in self.tracks)

    def _tempo_table(self) -> tuple[list[float], list[float], list[float]]:
        tempos = sorted(self.tempos or [Tempo(120.0)], key=lambda t: t.beat)
        if tempos[0].beat > 0:
            tempos.insert(0, Tempo(tempos[0].bpm, 0.0))
        beats, secs, bpms = [], [], []
        t = 0.0
        for i, tp in enumerate(tempos):
            if i:
                t += (tp.beat - tempos[i - 1].beat) * 60.0 / tempos[i - 1].bpm
            beats.append(tp.beat)
            secs.append(t)
            bpms.append(tp.bpm)
        return beats, secs, bpms

    def beat_to_seconds(self, beat: float) -> float:
        beats, secs, bpms = self._tempo_table()
        i = max(0, bisect.bisect_right(beats, beat) - 1)
        return secs[i] + (beat - beats[i]) * 60.0 / bpms[i]

    def seconds_to_beat(self, seconds: float) -> float:
        beats, secs, bpms = self._tempo_table()
        i = max(0, bisect.bisect_right(secs, seconds) - 1)
        return beats[i] + (seconds - secs[i]) * bpms[i] / 60.0

    @property
    def duration_seconds(self) -> float:
        return self.beat_to_seconds(self.end_beat)

    # -- edits (return new pieces; the input is left as it was) ------------------------
    def transposed(self, semitones: int) -> "Piece":
        def shift(n: Note) -> Note:
            return replace(n, pitch=min(127, max(0, n.pitch + semitones)))

        tracks = [
            replace(t, notes=list(t.notes) if t.is_drum else [shift(n) for n in t.notes]) for t in self.tracks
        ]
        keys = [replace(k, tonic=(k.tonic + semitones) % 12) for k in self.keys]
        return replace(self, tracks=tracks, keys=keys)

    def shifted(self, beats: float) -> "Piece":
        """The piece moved later by ``beats`` (events keep their order)."""
        def mv(n: Note) -> Note:
            return replace(n, start=n.start + beats)

        def mv_track(t: Track) -> Track:
            return replace(t, notes=[mv(n) for n in t.notes], pedals=[replace(p, start=p.start + beats) for p in t.pedals],
                           bends=[replace(b, beat=b.beat + beats) for b in t.bends])

        return replace(
            self,
            tracks=[mv_track(t) for t in self.tracks],
            tempos=[self.tempos[0]] + [replace(x, beat=x.beat + beats) for x in self.tempos[1:]],
            keys=[replace(k, beat=k.beat + beats if i else 0.0) for i, k in enumerate(self.keys)],
            time_signatures=[replace(x, beat=x.beat + beats if i else 0.0) for i, x in enumerate(self.time_signatures)],
            markers=[replace(m, beat=m.beat + beats) for m in self.markers],
        )

    def validate(self) -> "Piece":
        """Check invariants; raise PieceFormatError with the first problem found."""
        for t in self.tracks:
            if not 0 <= t.program <= 127:
                raise PieceFormatError(f"track {t.name!r}: program {t.program} outside 0..127")
            for n in t.notes:
                if not 0 <= n.pitch <= 127:
                    raise PieceFormatError(f"track {t.name!r}: pitch {n.pitch} outside 0..127")
                if not (n.duration > 0 and math.isfinite(n.duration) and n.start >= 0):
                    raise PieceFormatError(f"track {t.name!r}: bad note timing {n}")
                if not 1 <= n.velocity <= 127:
                    raise PieceFormatError(f"track {t.name!r}: velocity {n.velocity} outside 1..127")
            for pd in t.pedals:
                if not (pd.duration > 0 and math.isfinite(pd.duration) and pd.start >= 0):
                    raise PieceFormatError(f"track {t.name!r}: bad pedal timing {pd}")
            for b in t.bends:
                if not (-8192 <= b.value <= 8191 and b.beat >= 0 and math.isfinite(b.beat)):
                    raise PieceFormatError(f"track {t.name!r}: bad pitch bend {b}")
        for tp in self.tempos:
            if not (tp.bpm > 0 and math.isfinite(tp.bpm)):
                raise PieceFormatError(f"bad tempo {tp.bpm}")
        return self


def without_overlaps(notes: list[Note], resolution: float = 1 / 480) -> list[Note]:
    """``notes`` sorted by (start, pitch) with no two notes of one pitch sounding at once:
    a note still sounding when the same pitch starts again is cut at that onset, and notes of
    one pitch starting together (within ``resolution`` beats) become one (the longest, at the
    loudest velocity). What a MIDI file can hold: one channel has one voice per key."""
    by_pitch: dict[int, list[Note]] = {}
    for n in sorted(notes, key=lambda n: (n.start, n.pitch, -n.duration)):
        same = by_pitch.setdefault(n.pitch, [])
        if same and n.start - same[-1].start < resolution:
            prev = same[-1]
            same[-1] = replace(prev, duration=max(prev.duration, n.end - prev.start), velocity=max(prev.velocity, n.velocity))
            continue
        if same and same[-1].end > n.start:
            same[-1] = replace(same[-1], duration=n.start - same[-1].start)
        same.append(n)
    out = [n for ns in by_pitch.values() for n in ns]
    out.sort(key=lambda n: (n.start, n.pitch))
    return out


def concatenate(pieces: list[Piece], gap_beats: float = 0.0, lengths: list[float] | None = None) -> Piece:
    """Join pieces one after another, bar-aligned; tracks are merged by (name, program).

    Tempo, key, time-signature changes and markers of every piece are kept at their new
    positions, so the result is one continuous piece. ``lengths`` (beats, one per piece)
    sets where each next piece starts instead of the bar-rounded end (e.g. clips cut to
    a length in seconds).
    """
    if not pieces:
        raise PieceFormatError("nothing to join")
    if lengths is not None and len(lengths) != len(pieces):
        raise PieceFormatError(f"got {len(lengths)} lengths for {len(pieces)} pieces")
    out = Piece(tracks=[], tempos=[], keys=[], time_signatures=[], markers=[], title=pieces[0].title)
    index: dict[tuple[str, int, bool], Track] = {}
    offset = 0.0
    for i, p in enumerate(pieces):
        bar = p.time_signature.bar_beats
        length = math.ceil(p.end_beat / bar - 1e-6) * bar if p.end_beat > 0 else bar
        if lengths is not None:
            length = float(lengths[i])
        for t in p.tracks:
            key = (t.name, t.program, t.is_drum)
            if key not in index:
                index[key] = Track(t.name, t.program, t.is_drum, [], t.channel)
                out.tracks.append(index[key])
            index[key].notes.extend(replace(n, start=n.start + offset) for n in t.notes)
            index[key].pedals.extend(replace(pd, start=pd.start + offset) for pd in t.pedals)
            index[key].bends.extend(replace(b, beat=b.beat + offset) for b in t.bends)
        out.tempos.extend(replace(x, beat=x.beat + offset) for x in (p.tempos or [Tempo(120.0)]))
        out.keys.extend(replace(k, beat=k.beat + offset) for k in p.keys)
        out.time_signatures.extend(replace(x, beat=x.beat + offset) for x in (p.time_signatures or [TimeSignature()]))
        out.markers.extend(replace(m, beat=m.beat + offset) for m in p.markers)
        offset += length + gap_beats
    return out
