"""MusicXML <-> Piece, through music21 (imported lazily: it is slow to import).

Writing builds a music21 Score: one part per pitched track with its instrument (General
MIDI program) and name; tempo marks, key signatures (with mode) and time signatures at
their positions; emotion markers as text expressions, section markers (``A``, ``A'``, ``B`` ...
from a :class:`~emomusic.form.FormPlan`) as rehearsal marks. Notes are quantised to a grid
(default a sixteenth), overlapping notes in one track become tied chords (music21's
``chordify``), and measures and bar-line ties are made by music21. Drum tracks are
written as parts on MIDI channel 10 with pitched noteheads (readers that cannot show
percussion still get the rhythm).

Reading uses music21's MusicXML parser; ties (chord ties included) are merged into single
notes, parts become tracks with their instrument's program, and rehearsal marks become
markers again.
"""

from __future__ import annotations

from pathlib import Path

from emomusic.atomic import atomic_path
from emomusic.errors import EmomusicError, PieceFormatError
from emomusic.form import is_section_label
from emomusic.piece import Marker, Piece


def piece_to_score(piece: Piece, title: str | None = None, grid: float = 0.25):
    import music21
    from music21 import expressions, instrument, key, meter, note, stream, tempo

    if not grid > 0 or (1 / grid) != int(1 / grid):
        raise EmomusicError(f"MusicXML grid must be 1/N beats (e.g. 0.25), got {grid}")
    piece.validate()
    tracks = [t for t in piece.tracks if t.notes]
    if not tracks:
        raise PieceFormatError("nothing to write as MusicXML: the piece has no notes")
    q = lambda beat: round(beat / grid) * grid  # noqa: E731

    score = stream.Score()
    score.metadata = music21.metadata.Metadata()
    score.metadata.title = title if title is not None else (piece.title or "emomusic")
    end = max(n.end for t in tracks for n in t.notes)
    for ti, track in enumerate(tracks):
        flat = stream.Part()
        try:
            inst = instrument.instrumentFromMidiProgram(track.program)
        except Exception:
            inst = instrument.Instrument()
            inst.midiProgram = track.program
        inst.midiProgram = track.program
        if track.is_drum:
            inst.midiChannel = 9
        inst.partName = track.name
        inst.partId = f"P{ti + 1}"
        flat.insert(0, inst)
        flat.partName = track.name
        for ts in piece.time_signatures or []:
            flat.insert(q(ts.beat), meter.TimeSignature(f"{ts.numerator}/{ts.denominator}"))
        for k in piece.keys:
            flat.insert(q(k.beat), key.Key(music21.pitch.Pitch(k.tonic).name, k.mode))
        if ti == 0:
            for tp in piece.tempos or []:
                flat.insert(q(tp.beat), tempo.MetronomeMark(number=round(tp.bpm, 2), referent=1.0))
            for m in piece.markers:
                mark = expressions.RehearsalMark(m.text) if is_section_label(m.text) else expressions.TextExpression(m.text)
                flat.insert(min(q(m.beat), max(0.0, q(end) - grid)), mark)
        for n in track.notes:
            s = q(n.start)
            d = max(grid, q(n.end) - s)
            nn = note.Note(n.pitch)
            nn.quarterLength = d
            nn.volume.velocity = n.velocity
            flat.insert(s, nn)
        score.insert(0, flat)
    # Overlapping notes within a part become chords tied across their changes.
    out = stream.Score()
    out.metadata = score.metadata
    for part in score.parts:
        ch = part.chordify(addTies=True)
        _keep_velocities(part, ch)
        p = stream.Part()
        p.partName = part.partName
        inst = part.getInstrument(returnDefault=False)
        p.insert(0, inst)
        for el in ch.flatten():
            if isinstance(el, instrument.Instrument):
                continue
            p.insert(el.getOffsetInHierarchy(ch), el)
        if not p.getElementsByClass(meter.TimeSignature):
            p.insert(0, meter.TimeSignature("4/4"))
        out.insert(0, p.makeNotation())
    return out


def _keep_velocities(src, chordified) -> None:
    """chordify drops per-note velocities; copy them back by (onset, pitch)."""
    from music21 import chord

    vel = {}
    for n in src.flatten().notes:
        for p in n.pitches:
            vel[(float(n.offset), p.midi)] = n.volume.velocity
    open_v: dict[int, int] = {}
    for c in chordified.flatten().notes:
        members = c.notes if isinstance(c, chord.Chord) else [c]
        off = float(c.getOffsetInHierarchy(chordified))
        vs = []
        for m in members:
            v = vel.get((off, m.pitch.midi), open_v.get(m.pitch.midi))
            if v:
                m.volume.velocity = v
                open_v[m.pitch.midi] = v
                vs.append(v)
        if vs:  # MusicXML export writes the chord's velocity for each of its notes
            c.volume.velocity = max(vs)


def write_musicxml(piece: Piece, path: str | Path, title: str | None = None, grid: float = 0.25) -> Path:
    """Write ``piece`` as MusicXML (``.mxl`` is compressed) atomically."""
    path = Path(path)
    score = piece_to_score(piece, title=title, grid=grid)
    fmt = "mxl" if path.suffix.lower() == ".mxl" else "musicxml"
    with atomic_path(path) as tmp:
        try:
            written = Path(score.write(fmt, fp=str(tmp)))
        except Exception as exc:
            raise EmomusicError(f"cannot write {path} as MusicXML: {type(exc).__name__}: {exc}"[:300]) from None
        if written != tmp and written.exists():  # music21 may change the extension
            written.replace(tmp)
    return path


def read_musicxml(path: str | Path) -> Piece:
    import music21

    from emomusic.io.abc import music21_to_piece

    from emomusic.limits import MAX_MUSICXML_BYTES, PARSE_SECONDS, check_file_size, check_piece_size, time_limit

    path = Path(path)
    try:
        size = path.stat().st_size
        check_file_size(path, size, MAX_MUSICXML_BYTES, "MusicXML")
        with open(path, "rb") as fh:
            head = fh.read(4)
        if head.startswith(b"PK"):  # compressed .mxl: bound what it unpacks to (no zip bombs)
            import zipfile

            with zipfile.ZipFile(path) as z:
                check_file_size(path, sum(i.file_size for i in z.infolist()), MAX_MUSICXML_BYTES, "MusicXML (unpacked)")
    except PieceFormatError:
        raise
    except Exception as exc:
        raise PieceFormatError(f"cannot read {path} as MusicXML: {type(exc).__name__}: {exc}"[:300]) from None
    with time_limit(PARSE_SECONDS, f"cannot read {path} as MusicXML: parsing took longer than {PARSE_SECONDS:.0f} s"):
        try:
            score = music21.converter.parse(str(path), format="musicxml", forceSource=True)
        except Exception as exc:
            msg = (str(exc).splitlines() or [type(exc).__name__])[0]
            raise PieceFormatError(f"cannot read {path} as MusicXML: {msg[:200]}") from None
        if isinstance(score, music21.stream.Opus):
            if not len(score.scores):
                raise PieceFormatError(f"cannot read {path} as MusicXML: no score found")
            score = score.scores[0]
        try:
            piece = music21_to_piece(score)
            piece.markers = sorted(_rehearsal_marks(score) + piece.markers, key=lambda m: m.beat)
        except Exception as exc:
            raise PieceFormatError(f"cannot read {path} as MusicXML: {type(exc).__name__}: {exc}"[:300]) from None
    check_piece_size(piece, path)
    return piece


def _rehearsal_marks(score) -> list[Marker]:
    """The first part's rehearsal marks (section markers) as markers."""
    from music21 import expressions

    parts = list(score.parts) if hasattr(score, "parts") and len(score.parts) else [score]
    out = []
    for rm in parts[0].flatten().getElementsByClass(expressions.RehearsalMark):
        text = str(rm.content or "").strip()
        if text:
            out.append(Marker(text, float(rm.offset)))
    return out
