"""ABC notation <-> Piece: reading, and the file-level entries.

* :func:`read_abc` / :func:`abc_to_piece` - the first tune of a file or text, checked by
  :func:`emomusic.io.abc_bounds.check_abc_bounds` before music21 (imported lazily) parses it,
  within :data:`emomusic.limits.PARSE_SECONDS`; music21's ABC reader drops ties on chords,
  so they are restored here (see :func:`_parse_with_music21`), and the emotion markers,
  dynamics marks and between-bar ``Q:`` changes it drops are scanned from the text.
* :func:`music21_to_piece` - a music21 Score (from ABC or MusicXML) -> Piece, ties merged.
* :func:`write_abc` - :func:`piece_to_abc` (emomusic's own writer, :mod:`emomusic.io.abc_write`)
  to a file, atomically.
"""

from __future__ import annotations

import re
import threading
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path

from emomusic.atomic import write_text_atomic
from emomusic.errors import PieceFormatError
from emomusic.io.abc_bounds import MAX_NOTE_BEATS, MAX_NOTE_DIVISION, check_abc_bounds
from emomusic.io.abc_write import key_abc_name, piece_to_abc
from emomusic.piece import KeySignature, Marker, Note, Piece, Tempo, TimeSignature, Track

_DYNAMIC_VELOCITY = {"ppp": 24, "pp": 36, "p": 50, "mp": 64, "mf": 80, "f": 96, "ff": 112, "fff": 124}


def write_abc(piece: Piece, path: str | Path, title: str | None = None, grid: float = 0.25, **opts) -> Path:
    """Write ``piece`` as ABC (atomically)."""
    text = piece_to_abc(piece, title=title, grid=grid, **opts)
    write_text_atomic(path, text)
    return Path(path)


# -- reading ------------------------------------------------------------------------------
_CHORD_NOTE = re.compile(r"([_=^]*[A-Ga-g][,']*)[\d/]*(-?)")


_PATCH_LOCK = threading.Lock()
_PATCH_STATE = threading.local()  # .active: this thread is reading ABC through read_abc / abc_to_piece


def _install_chord_ties_patch() -> None:
    """music21's ABC translator drops ties on chords (``[CE]2-`` and ``[C-E]2``). A wrapper of
    its ``parseABCNote`` marks them on the chord's notes, but only in a thread that is inside
    :func:`_chord_ties_patch`: installed once (under a lock), never swapped back and forth, so
    reads in other threads (melody validation, a web server's workers) see music21 as it is."""
    from music21 import tie
    from music21.abcFormat import ABCChord, translate

    with _PATCH_LOCK:
        if getattr(translate.parseABCNote, "_emomusic_chord_ties", False):
            return
        original = translate.parseABCNote

        def patched(t, dst):
            before = len(dst._elements) + len(getattr(dst, "_endElements", []))
            original(t, dst)
            if not getattr(_PATCH_STATE, "active", False):
                return
            if not isinstance(t, ABCChord) or len(dst._elements) <= before - len(getattr(dst, "_endElements", [])):
                return
            c = dst._elements[-1]
            if not hasattr(c, "notes") or not c.notes:
                return
            inner = t.src[t.src.find("[") + 1: t.src.find("]")] if "[" in t.src else ""
            per_note = [m.group(2) == "-" for m in _CHORD_NOTE.finditer(inner)]
            whole = t.tie in ("start", "continue")
            for i, n in enumerate(c.notes):
                if whole or (i < len(per_note) and per_note[i]):
                    n.tie = tie.Tie("start")

        patched._emomusic_chord_ties = True
        translate.parseABCNote = patched


@contextmanager
def _chord_ties_patch():
    """Chord ties are kept while this thread parses ABC inside the block."""
    _install_chord_ties_patch()
    was = getattr(_PATCH_STATE, "active", False)
    _PATCH_STATE.active = True
    try:
        yield
    finally:
        _PATCH_STATE.active = was


def _voice_headers(text: str) -> list[tuple[str, str | None, int | None]]:
    """(voice id, name, %%MIDI program) for each voice in order of first appearance."""
    voices: dict[str, list] = {}
    order: list[str] = []
    current = None
    global_program = None
    for line in text.splitlines():
        s = line.strip()
        m = re.match(r"^V:\s*(\S+)(.*)$", s)
        if m:
            vid = m.group(1)
            current = vid
            if vid not in voices:
                voices[vid] = [None, None]
                order.append(vid)
            nm = re.search(r'(?:name|nm)\s*=\s*"([^"]*)"', m.group(2))
            if nm:
                voices[vid][0] = nm.group(1)
            continue
        mp = re.match(r"^%%MIDI\s+program\s+(?:\d+\s+)?(\d+)\s*$", s)
        if mp:
            prog = int(mp.group(1))
            if current is None:
                global_program = prog
            else:
                voices[current][1] = prog
    if not order:
        return [("1", None, global_program)]
    return [(v, voices[v][0], voices[v][1] if voices[v][1] is not None else global_program) for v in order]


def _parse_with_music21(text: str, source: str):
    import music21

    try:
        with _chord_ties_patch():
            score = music21.converter.parse(text, format="abc", forceSource=True)
    except Exception as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise PieceFormatError(f"cannot read {source} as ABC: {msg[:200]}") from None
    if isinstance(score, music21.stream.Opus):
        if not len(score.scores):
            raise PieceFormatError(f"cannot read {source} as ABC: no tune found")
        score = score.scores[0]
    return score


def music21_to_piece(score, voice_info=None) -> Piece:
    """Convert a music21 Score (from ABC or MusicXML) to a Piece. Ties are merged here,
    chord ties included."""
    from music21 import chord, key, meter, note, tempo

    piece = Piece(tracks=[], tempos=[], keys=[], time_signatures=[], markers=[])
    md = score.metadata
    piece.title = (md.bestTitle or md.title or "") if md is not None else ""
    parts = list(score.parts) if hasattr(score, "parts") and len(score.parts) else [score]
    flat0 = score.flatten()
    for mm in flat0.getElementsByClass(tempo.MetronomeMark):
        bpm = mm.getQuarterBPM()
        if bpm and bpm > 0:
            off = float(mm.getOffsetInHierarchy(score)) if mm.activeSite is not None else float(mm.offset)
            piece.tempos.append(Tempo(round(float(bpm), 3), off))
    seen_ts, seen_keys = set(), set()
    for p in parts[:1]:
        pf = p.flatten()
        for ts in pf.getElementsByClass(meter.TimeSignature):
            k = (float(ts.offset), ts.numerator, ts.denominator)
            if k not in seen_ts:
                seen_ts.add(k)
                piece.time_signatures.append(TimeSignature(ts.numerator, ts.denominator, float(ts.offset)))
        for ks in pf.getElementsByClass(key.KeySignature):
            if isinstance(ks, key.Key):
                tonic, mode = ks.tonic.pitchClass, ("minor" if ks.mode == "minor" else "major")
            else:
                k2 = ks.asKey("major")
                tonic, mode = k2.tonic.pitchClass, "major"
            kk = (float(ks.offset), tonic, mode)
            if kk not in seen_keys:
                seen_keys.add(kk)
                piece.keys.append(KeySignature(tonic, mode, float(ks.offset)))
        from music21 import expressions

        for te in pf.getElementsByClass(expressions.TextExpression):
            if te.content and te.content.strip().startswith("emotion "):
                piece.markers.append(Marker(te.content.strip(), float(te.offset)))
    for pi, p in enumerate(parts):
        pf = p.flatten()
        name, program = None, None
        if voice_info and pi < len(voice_info):
            _, name, program = voice_info[pi]
        inst = p.getInstrument(returnDefault=False) if hasattr(p, "getInstrument") else None
        if program is None and inst is not None and inst.midiProgram is not None:
            program = int(inst.midiProgram)
        name = name or getattr(p, "partName", None) or (inst.partName if inst is not None else None) \
            or (inst.instrumentName if inst is not None else None) or f"Part {pi + 1}"
        is_drum = bool(inst is not None and getattr(inst, "midiChannel", None) == 9)
        notes: list[Note] = []
        open_ties: dict[int, int] = {}  # pitch -> index in notes of a note tied onward
        for el in pf.notes:
            if isinstance(el, (note.Rest,)) or el.duration.isGrace:
                continue
            off = float(el.offset)
            ql = float(el.duration.quarterLength)
            if ql <= 0:
                continue
            vel = el.volume.velocity if el.volume is not None and el.volume.velocity else None
            members = el.notes if isinstance(el, chord.Chord) else [el]
            for m in members:
                if not hasattr(m, "pitch"):
                    continue
                midi = int(m.pitch.midi)
                if not 0 <= midi <= 127:
                    continue
                # per note: a Chord's own .tie reports any of its notes' ties
                tie_type = m.tie.type if m.tie is not None else None
                j = open_ties.pop(midi, None)
                if j is not None and abs(notes[j].end - off) < 1e-6:
                    notes[j] = Note(midi, notes[j].start, notes[j].duration + ql, notes[j].velocity)
                    idx = j
                else:
                    mv = m.volume.velocity if getattr(m, "volume", None) is not None and m.volume.velocity else vel
                    notes.append(Note(midi, off, ql, int(max(1, min(127, mv or 80)))))
                    idx = len(notes) - 1
                if tie_type in ("start", "continue"):
                    open_ties[midi] = idx
        notes.sort(key=lambda n: (n.start, n.pitch))
        piece.tracks.append(Track(str(name), int(program or 0) % 128, is_drum, notes))
    if not piece.tempos:
        piece.tempos.append(Tempo(120.0))
    if not piece.time_signatures:
        piece.time_signatures.append(TimeSignature())
    piece.tempos = _dedupe(sorted(piece.tempos, key=lambda t: t.beat))
    piece.keys.sort(key=lambda k: k.beat)
    piece.time_signatures.sort(key=lambda t: t.beat)
    piece.markers.sort(key=lambda m: m.beat)
    return piece


def _dedupe(tempos: list[Tempo]) -> list[Tempo]:
    out: list[Tempo] = []
    for t in tempos:
        if out and abs(out[-1].beat - t.beat) < 1e-9:
            out[-1] = t
        elif not out or abs(out[-1].bpm - t.bpm) > 1e-6:
            out.append(t)
    return out


def abc_to_piece(text: str, source: str = "ABC text") -> Piece:
    """Parse ABC text (the first tune when there are several)."""
    from emomusic.limits import MAX_ABC_BYTES, PARSE_SECONDS, check_file_size, check_piece_size, time_limit

    if not isinstance(text, str) or not text.strip():
        raise PieceFormatError(f"{source} is empty")
    if not re.search(r"^\s*K:", text, re.M):
        raise PieceFormatError(f"cannot read {source} as ABC: no K: (key) header line")
    first = _first_tune(text)
    check_file_size(source, len(first), MAX_ABC_BYTES, "ABC")
    check_abc_bounds(first, source)
    with time_limit(PARSE_SECONDS, f"cannot read {source} as ABC: parsing took longer than {PARSE_SECONDS:.0f} s"):
        score = _parse_with_music21(first, source)
        try:
            piece = music21_to_piece(score, _voice_headers(first))
        except PieceFormatError:
            raise
        except Exception as exc:
            raise PieceFormatError(f"cannot read {source} as ABC: {type(exc).__name__}: {exc}"[:300]) from None
    check_piece_size(piece, source)
    bodies = _voice_bodies(first)
    if bodies:
        markers, _, tempos = _scan_body(bodies[0], first)
        if markers and not piece.markers:
            piece.markers = markers
        # music21 drops a Q: line that stands between two bars: restore those changes
        known = {round(t.beat, 6) for t in piece.tempos}
        missed = [t for t in tempos if round(t.beat, 6) not in known]
        if missed:
            piece.tempos = _dedupe(sorted(piece.tempos + missed, key=lambda t: t.beat))
        if len(bodies) == len(piece.tracks):
            for track, body in zip(piece.tracks, bodies):
                _, marks, _ = _scan_body(body, first)
                if marks:
                    track.notes = [_with_dynamic(n, marks) for n in track.notes]
    if not piece.title:
        m = re.search(r"^T:\s*(.*)$", first, re.M)
        piece.title = m.group(1).strip() if m else ""
    return piece


def _first_tune(text: str) -> str:
    starts = [m.start() for m in re.finditer(r"^X:", text, re.M)]
    if len(starts) <= 1:
        return text
    return text[starts[0]:starts[1]]


def _voice_bodies(text: str) -> list[str]:
    """The tune body of each voice (in order of first appearance), comments removed."""
    head = re.search(r"^K:.*$", text, re.M)
    if not head:
        return []
    bodies: dict[str, list[str]] = {}
    current = None
    for line in text[head.end():].splitlines():
        s = line.strip()
        m = re.match(r"^V:\s*(\S+)", s)
        if m:
            current = m.group(1)
            bodies.setdefault(current, [])
            continue
        if current is not None and re.match(r"^Q:", s):
            bodies[current].append(f"[{s}]")  # a tempo change: kept inline for _scan_body
            continue
        if not s or s.startswith("%") or re.match(r"^[A-Za-z]:", s):
            continue
        if current is None:
            current = "1"
            bodies.setdefault(current, [])
        bodies[current].append(s.split("%", 1)[0])
    return ["\n".join(v) for v in bodies.values()]


_TOKEN = re.compile(
    r'"([^"]*)"|!([^!]*)!|\[[A-Za-z]:[^\]]*\]|(\[[^\]]*\]|[_=^]*[A-Ga-gzx][,\']*)(\d*)(/*)(\d*)'
)


def _scan_body(body: str, text: str) -> tuple[list[Marker], list[tuple[float, int]], list[Tempo]]:
    """``"^emotion ..."`` annotations, dynamics marks and ``Q:`` tempo changes of one voice
    with their beats.

    music21 drops both, so the voice is scanned here: a position is the sum of the
    lengths written before it (tuplets and grace notes are not counted)."""
    m = re.search(r"^L:\s*(\d+)/(\d+)", text, re.M)
    unit = Fraction(int(m.group(1)), int(m.group(2))) * 4 if m else Fraction(1, 2)
    markers: list[Marker] = []
    dyn: list[tuple[float, int]] = []
    tempos: list[Tempo] = []
    beat = Fraction(0)
    for t in _TOKEN.finditer(body):
        if t.group(1) is not None:
            if t.group(1).startswith("^emotion "):
                markers.append(Marker(t.group(1)[1:].strip(), float(beat)))
            continue
        if t.group(2) is not None:
            if t.group(2) in _DYNAMIC_VELOCITY:
                dyn.append((float(beat), _DYNAMIC_VELOCITY[t.group(2)]))
            continue
        if t.group(3) is None:
            q = re.fullmatch(r"\[Q:\s*(?:(\d+)/(\d+)\s*=\s*)?(\d+(?:\.\d+)?)\s*\]", t.group(0))
            if q:  # Q:a/b=n is n notes of a/b per minute; a bare Q:n counts L: units
                per = Fraction(int(q.group(1)), int(q.group(2))) * 4 if q.group(1) and int(q.group(2)) else unit
                bpm = float(Fraction(q.group(3)) * per)
                if 0 < bpm < 10000:
                    tempos.append(Tempo(round(bpm, 3), float(beat)))
            continue
        num = int(t.group(4)) if t.group(4) else 1
        slashes = len(t.group(5))
        den = int(t.group(6)) if t.group(6) else (2 ** slashes if slashes else 1)
        if t.group(3).startswith("[") and not t.group(4) and not slashes:
            inner = re.match(r"\[[_=^]*[A-Ga-g][,']*(\d*)", t.group(3))
            if inner and inner.group(1):
                num = int(inner.group(1))
        beat += unit * Fraction(num, den)
    return markers, dyn, tempos


def _with_dynamic(n: Note, marks: list[tuple[float, int]]) -> Note:
    vel = None
    for beat, v in marks:
        if beat <= n.start + 1e-6:
            vel = v
        else:
            break
    return Note(n.pitch, n.start, n.duration, vel) if vel is not None else n


def read_abc(path: str | Path) -> Piece:
    from emomusic.limits import MAX_ABC_BYTES, check_file_size

    path = Path(path)
    try:
        check_file_size(path, path.stat().st_size, 4 * MAX_ABC_BYTES, "ABC")  # several tunes: the first is read
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise PieceFormatError(f"cannot read {path}: {exc.strerror or exc}") from None
    return abc_to_piece(text, source=str(path))


__all__ = ["MAX_NOTE_BEATS", "MAX_NOTE_DIVISION", "abc_to_piece", "check_abc_bounds", "key_abc_name", "music21_to_piece",
           "piece_to_abc", "read_abc", "write_abc"]
