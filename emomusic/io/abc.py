"""ABC notation <-> Piece.

Writing is emomusic's own (music21 reads ABC but cannot write it):

* headers ``X: T: M: L: Q: K:``; ``K:`` names minor keys as ``Am``, ``F#m`` ...
* one voice (``V:``) per pitched track when there are several, with its name, a clef
  chosen from its register and ``%%MIDI program`` so abc2midi plays the right instrument;
  drum tracks are left out (ABC has no standard percussion notation).
* notes quantised to a grid (default a sixteenth, ``grid=0.25`` beats) and written with
  ``L:`` equal to the grid; every note or chord is cut at bar lines and at the starts and
  ends of the other notes of its voice, the pieces joined by ties, so overlapping notes
  in one track become chords and nothing crosses a bar line untied;
* accidentals are written explicitly relative to the key signature, and once a letter
  has had an accidental in a bar every later note on that letter in the bar gets one too
  (``=`` for a natural), so the result reads the same whether a reader carries
  accidentals through the bar (the ABC standard, abc2midi) or not;
* dynamics marks (``!p!`` ... ``!ff!``) where the velocity level changes, tempo, key and
  time-signature changes as inline fields, emotion markers as ``"^..."`` annotations.

Reading goes through music21 (imported lazily); its ABC reader drops ties on chords, so
they are restored here (see :func:`_parse_with_music21`).
"""

from __future__ import annotations

import re
import threading
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path

from emomusic.atomic import write_text_atomic
from emomusic.errors import EmomusicError, PieceFormatError
from emomusic.piece import KeySignature, Marker, Note, Piece, Tempo, TimeSignature, Track

_LETTERS = "CDEFGAB"
_LETTER_PC = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
# Key-signature names for each tonic pitch class (the usual spelling: at most 6 accidentals).
_MAJOR_NAMES = ["C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]
_MINOR_NAMES = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "G#", "A", "Bb", "B"]
_SHARP_ORDER = "FCGDAEB"
_DYNAMICS = [(40, "pp"), (56, "p"), (72, "mp"), (88, "mf"), (104, "f"), (128, "ff")]
_DYNAMIC_VELOCITY = {"ppp": 24, "pp": 36, "p": 50, "mp": 64, "mf": 80, "f": 96, "ff": 112, "fff": 124}
# Lengths written as one note (in grid units): plain and dotted powers of two.
_WRITABLE = (64, 48, 32, 24, 16, 12, 8, 6, 4, 3, 2, 1)


def key_abc_name(key: KeySignature | None) -> str:
    if key is None:
        return "C"
    if key.mode == "minor":
        return _MINOR_NAMES[key.tonic % 12] + "m"
    return _MAJOR_NAMES[key.tonic % 12]


_FIFTHS = {
    "C": 0, "G": 1, "D": 2, "A": 3, "E": 4, "B": 5, "F#": 6, "F": -1, "Bb": -2, "Eb": -3, "Ab": -4, "Db": -5,
    "Am": 0, "Em": 1, "Bm": 2, "F#m": 3, "C#m": 4, "G#m": 5, "Ebm": -6, "Dm": -1, "Gm": -2, "Cm": -3, "Fm": -4,
    "Bbm": -5,
}


def _key_fifths(key: KeySignature | None) -> int:
    """Sharps (> 0) or flats (< 0) of the signature that ``K:`` names for ``key``."""
    return _FIFTHS[key_abc_name(key)]


def _key_alters(fifths: int) -> dict[str, int]:
    alters = {c: 0 for c in _LETTERS}
    if fifths > 0:
        for c in _SHARP_ORDER[:fifths]:
            alters[c] = 1
    elif fifths < 0:
        for c in reversed(_SHARP_ORDER[len(_SHARP_ORDER) + fifths:]):
            alters[c] = -1
    return alters


def _spelling_table(key: KeySignature | None) -> dict[int, tuple[str, int]]:
    """pitch class -> (letter, alter): the key's own notes as in its signature, the
    others as sharps in sharp keys and as flats in flat keys (F#, C#, G# and Bb, Eb in C)."""
    fifths = _key_fifths(key)
    alters = _key_alters(fifths)
    table: dict[int, tuple[str, int]] = {}
    for letter in _LETTERS:
        table[(_LETTER_PC[letter] + alters[letter]) % 12] = (letter, alters[letter])
    for pc in range(12):
        if pc in table:
            continue
        naturals = {v: k for k, v in _LETTER_PC.items()}
        if pc in naturals:  # a natural the key signature alters (D natural in F minor)
            table[pc] = (naturals[pc], 0)
            continue
        use_sharp = fifths > 0 or (fifths == 0 and pc in (1, 6, 8))
        if key is not None and key.mode == "minor" and fifths <= 0 and pc == (key.tonic + 11) % 12:
            use_sharp = True  # the raised leading note of a minor key (G# in A minor)
        if use_sharp and (pc - 1) % 12 in naturals:
            table[pc] = (naturals[(pc - 1) % 12], 1)
        elif (pc + 1) % 12 in naturals:
            table[pc] = (naturals[(pc + 1) % 12], -1)
        else:
            table[pc] = (naturals[(pc - 1) % 12], 1)
    return table


def _pitch_text(pitch: int, letter: str, alter: int, acc: str) -> str:
    natural = pitch - alter
    octave = natural // 12 - 1  # MIDI 60 = C4 = ABC "C"
    if octave >= 5:
        body = letter.lower() + "'" * (octave - 5)
    else:
        body = letter + "," * (4 - octave)
    return acc + body


def _length_text(units: int) -> str:
    return "" if units == 1 else str(units)


def _split_units(units: int) -> list[int]:
    out = []
    while units > 0:
        for w in _WRITABLE:
            if w <= units:
                out.append(w)
                units -= w
                break
    return out


def _dynamic(velocity: float) -> str:
    for limit, name in _DYNAMICS:
        if velocity < limit:
            return name
    return "ff"


def _escape(text: str) -> str:
    return text.replace('"', "'").replace("\n", " ").strip()


def piece_to_abc(piece: Piece, title: str | None = None, grid: float = 0.25, reference: int = 1,
                 dynamics: bool = True) -> str:
    """ABC text of ``piece`` (all pitched tracks; drum tracks are left out).

    ``grid`` is the quantisation step in beats (quarter notes): 1, 0.5, 0.25, 0.125 or
    0.0625; ``L:`` is set to it so every written length is a whole number of units.
    """
    if grid not in (1.0, 0.5, 0.25, 0.125, 0.0625):
        raise EmomusicError(f"ABC grid must be 1, 0.5, 0.25, 0.125 or 0.0625 beats, got {grid}")
    piece.validate()
    tracks = [t for t in piece.tracks if not t.is_drum and t.notes]
    if not tracks:
        raise PieceFormatError("nothing to write as ABC: the piece has no pitched notes")
    unit_den = int(round(4 / grid))  # L:1/unit_den
    q = lambda beat: int(round(beat / grid))  # noqa: E731

    # Bar lines from the time-signature map (changes snap to the bar grid).
    tss = sorted(piece.time_signatures or [TimeSignature()], key=lambda t: t.beat)
    end_tick = max(q(n.end) for t in tracks for n in t.notes)
    bars: list[tuple[int, TimeSignature]] = []  # (start tick, time signature)
    tick, i = 0, 0
    while tick < end_tick or not bars:
        while i + 1 < len(tss) and q(tss[i + 1].beat) <= tick:
            i += 1
        ts = tss[i]
        bar_len = max(1, q(ts.bar_beats))
        bars.append((tick, ts))
        tick += bar_len
    bar_starts = [b[0] for b in bars]
    bar_end_total = tick

    keys = sorted(piece.keys, key=lambda k: k.beat)
    first_key = keys[0] if keys else None
    tempos = sorted(piece.tempos or [Tempo(120.0)], key=lambda t: t.beat)
    # Key changes take effect at the start of their bar (a K: line cannot split a bar's
    # accidental context).
    key_ticks = [(max(b for b in bar_starts if b <= max(0, q(k.beat))), k) for k in keys]

    def key_at(t: int) -> KeySignature | None:
        cur = first_key
        for kt, k in key_ticks:
            if kt <= t:
                cur = k
        return cur

    first_key = key_at(0)  # a change inside the first bar replaces the opening key
    key_ticks = [(kt, k) for kt, k in key_ticks if kt > 0]
    key_ticks.insert(0, (0, first_key))

    lines = [f"X:{reference}", f"T:{_escape(title if title is not None else piece.title) or 'Untitled'}"]
    lines.append(f"M:{tss[0].numerator}/{tss[0].denominator}")
    lines.append(f"L:1/{unit_den}")
    lines.append(f"Q:1/4={int(round(tempos[0].bpm))}")
    if len(tracks) == 1:
        lines.append(f"%%MIDI program {tracks[0].program}")
    lines.append(f"K:{key_abc_name(first_key)}")

    for vi, track in enumerate(tracks):
        if len(tracks) > 1:
            pitches = sorted(n.pitch for n in track.notes)
            clef = "bass" if pitches[len(pitches) // 2] < 55 else "treble"
            lines.append(f'V:{vi + 1} name="{_escape(track.name) or "Part %d" % (vi + 1)}" clef={clef}')
            lines.append(f"%%MIDI program {track.program}")
            # music21 carries the key and metre a voice ends with into the next voice:
            # restate the opening ones when they change.
            if vi > 0 and len(key_ticks) > 1:
                lines.append(f"K:{key_abc_name(first_key)}")
            if vi > 0 and len({(t.numerator, t.denominator) for t in tss}) > 1:
                lines.append(f"M:{tss[0].numerator}/{tss[0].denominator}")
        lines.extend(_voice_body(
            track, grid, bars, bar_starts, bar_end_total, key_at,
            tempos=tempos[1:] if vi == 0 else [], markers=piece.markers if vi == 0 else [],
            key_changes=key_ticks[1:], dynamics=dynamics,
        ))
    return "\n".join(lines) + "\n"


def _voice_body(track, grid, bars, bar_starts, bar_end_total, key_at, tempos, markers, key_changes,
                dynamics) -> list[str]:
    q = lambda beat: int(round(beat / grid))  # noqa: E731
    # Quantised notes; a repeated pitch cuts the earlier note short (one voice, one string).
    by_pitch: dict[int, list[tuple[int, int, int]]] = {}
    for n in track.notes:
        s = q(n.start)
        by_pitch.setdefault(n.pitch, []).append((s, max(s + 1, q(n.end)), n.velocity))
    notes: list[tuple[int, int, int, int]] = []  # (start, end, pitch, velocity)
    for p, lst in by_pitch.items():
        lst.sort()
        for j, (s, e, v) in enumerate(lst):
            if j + 1 < len(lst):
                if lst[j + 1][0] == s:
                    continue  # the same pitch struck twice at once: keep the later entry
                e = min(e, lst[j + 1][0])
            notes.append((s, e, p, v))
    notes.sort()

    cuts = set(bar_starts) | {bar_end_total}
    for s, e, _, _ in notes:
        cuts.add(s)
        cuts.add(e)
    events: dict[int, list[str]] = {}  # tick -> inline fields / annotations before the element
    for tp in tempos:
        t = q(tp.beat)
        cuts.add(t)
        events.setdefault(t, []).append(f"\nQ:1/4={int(round(tp.bpm))}\n")
    for t, k in key_changes:
        if t > 0:
            events.setdefault(t, []).append(f"\nK:{key_abc_name(k)}\n")
    for m in markers:
        t = min(q(m.beat), bar_end_total - 1)
        cuts.add(t)
        events.setdefault(t, []).append(f'"^{_escape(m.text)}"')
    prev_ts = bars[0][1]
    for bt, ts in bars[1:]:
        if (ts.numerator, ts.denominator) != (prev_ts.numerator, prev_ts.denominator):
            events.setdefault(bt, []).insert(0, f"\nM:{ts.numerator}/{ts.denominator}\n")
        prev_ts = ts
    points = sorted(c for c in cuts if 0 <= c <= bar_end_total)

    # Index notes by start for a sweep.
    by_start: dict[int, list[tuple[int, int, int, int]]] = {}
    for nt in notes:
        by_start.setdefault(nt[0], []).append(nt)
    sounding: list[tuple[int, int, int, int]] = []
    out_bars: list[str] = []
    bar_tokens: list[str] = []
    bar_set = set(bar_starts)
    spelling = _spelling_table(key_at(0))
    key_alt = _key_alters(_key_fifths(key_at(0)))
    bar_acc: set[str] = set()  # letters that had an explicit accidental in this bar
    level = None
    for a, b in zip(points, points[1:]):
        if a in bar_set:
            if a > 0:
                out_bars.append(" ".join(bar_tokens))
                bar_tokens = []
            bar_acc = set()
            k = key_at(a)
            spelling = _spelling_table(k)
            key_alt = _key_alters(_key_fifths(k))
        for tok in events.get(a, []):
            bar_tokens.append(tok)
        sounding = [nt for nt in sounding if nt[1] > a] + by_start.get(a, [])
        # Chord notes in order of onset (then pitch), so tied notes keep their order from
        # chord to chord: abc2midi ties a note to the first note of the same letter and
        # octave in the next chord ([D#-=D-] [=D^D] would swap them).
        sounding.sort(key=lambda nt: (nt[0], nt[2]))
        length = b - a
        if not sounding:
            bar_tokens.append(" ".join("z" + _length_text(u) for u in _split_units(length)))
            continue
        if dynamics:
            onset = [nt[3] for nt in sounding if nt[0] == a]
            if onset:
                lv = _dynamic(sum(onset) / len(onset))
                if lv != level:
                    bar_tokens.append(f"!{lv}!")
                    level = lv
        pieces = _split_units(length)
        texts = []
        for p in (nt[2] for nt in sounding):
            letter, alter = spelling[p % 12]
            if alter != key_alt[letter] or letter in bar_acc:
                acc = {1: "^", -1: "_", 0: "="}[alter]
                bar_acc.add(letter)
            else:
                acc = ""
            texts.append(_pitch_text(p, letter, alter, acc))
        for j, u in enumerate(pieces):  # tied pieces repeat the accidental (readers differ)
            last_piece = j == len(pieces) - 1
            parts = []
            for nt, name in zip(sounding, texts):
                tie = (not last_piece) or nt[1] > b
                parts.append(name + ("-" if tie else ""))
            if len(parts) == 1:
                tok = parts[0]
                tok = tok[:-1] + _length_text(u) + "-" if tok.endswith("-") else tok + _length_text(u)
            else:
                tok = "[" + "".join(parts) + "]" + _length_text(u)
            bar_tokens.append(tok)
    out_bars.append(" ".join(bar_tokens))
    lines = []
    for i in range(0, len(out_bars), 4):
        chunk = out_bars[i:i + 4]
        end = " |]" if i + 4 >= len(out_bars) else " |"
        lines.append(" | ".join(chunk) + end)
    # Tempo, key and metre changes are field lines of their own (music21 ignores inline
    # fields); no blank lines, which would end the tune.
    text = re.sub(r"[ \t]*\n[ \t]*", "\n", "\n".join(lines))
    return [line for line in text.split("\n") if line.strip()]


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


# Bounds checked before music21 sees a tune (a corrupt metre or unit length made it hang or
# take gigabytes): metres up to 64 beats over a power of two, unit lengths between 1/512
# and a whole note, tempi and tuplet numbers within sane ranges, at most
# emomusic.limits.MAX_BEATS beats per voice.
_FIELD = re.compile(r"^[ \t]*([MLQ]):([^\n%]*)|\[([MLQ]):([^\]\n]*)\]?", re.M)
_POW2 = {2**i for i in range(10)}
MAX_NOTE_BEATS = 64  # one written note: 16 bars of 4/4 (longer ones are written tied)
MAX_NOTE_DIVISION = 128


def _bad_field(source: str, field: str, value: str, why: str) -> PieceFormatError:
    return PieceFormatError(f"cannot read {source} as ABC: {why} ({field}:{value.strip()[:40]})")


def _unit_length(value: str) -> Fraction | None:
    m = re.fullmatch(r"\s*(\d{1,4})\s*(?:/\s*(\d{1,4}))?\s*", value)
    if not m:
        return None
    num, den = int(m.group(1)), int(m.group(2) or 1)
    if num < 1 or den not in _POW2 or not Fraction(1, 512) <= Fraction(num, den) <= 1:
        return None
    return Fraction(num, den)


def check_abc_bounds(text: str, source: str = "ABC text") -> None:
    """Refuse, in one line, ABC whose fields or lengths would make parsing unbounded."""
    from emomusic.limits import MAX_BEATS

    units = [Fraction(1, 8)]
    for m in _FIELD.finditer(text):
        field, value = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
        v = value.strip()
        if field == "M":
            if v in ("", "C", "C|", "none", "NONE", "None"):
                continue
            mm = re.fullmatch(r"\(?\s*(\d{1,3}(?:\s*\+\s*\d{1,3})*)\s*\)?\s*/\s*(\d{1,3})", v)
            if not mm:
                raise _bad_field(source, field, value, "unsupported metre")
            num = sum(int(x) for x in re.findall(r"\d+", mm.group(1)))
            if not 1 <= num <= 64 or int(mm.group(2)) not in _POW2 or int(mm.group(2)) > 64:
                raise _bad_field(source, field, value, "metre out of range (1..64 beats of 1/1..1/64)")
        elif field == "L":
            u = _unit_length(v)
            if u is None:
                raise _bad_field(source, field, value, "unit note length must be 1/512 .. 1 (a power-of-two fraction)")
            units.append(u)
        else:  # Q: tempo
            nums = [int(x) for x in re.findall(r"\d+", v[:200])]
            if any(x > 10000 for x in nums) or re.search(r"=\s*0*(?:\D|$)", v):
                raise _bad_field(source, field, value, "tempo out of range")
    unit = max(units) * 4  # in beats (quarter notes); the largest unit bounds every voice
    longest = Fraction(MAX_NOTE_BEATS)
    voices = set(re.findall(r"^[ \t]*V:[ \t]*(\S+)|\[V:[ \t]*([^\]\s]+)", text, re.M)) or {("1", "")}
    music = "\n".join(line.split("%", 1)[0] for line in text.splitlines()
                      if line.strip() and not re.match(r"^[ \t]*(?:%|[A-Za-z]:)", line))
    beats = Fraction(0)
    for t in re.finditer(r"\((\d+)", re.sub(r'"[^"]*"', "", music)):
        if int(t.group(1)[:7]) > 64:
            raise PieceFormatError(f"cannot read {source} as ABC: tuplet of {t.group(1)[:7]} notes (at most 64)")
    # music21 reads any letter, even an accidental alone, as a note ("L4354" or "^7811" is a
    # note thousands of units long): every number in the music is a length or a division
    bare = re.sub(r'"[^"]*"|![^!\n]*!|\+[^+\n]*\+|\[[A-Za-z]:[^\]\n]*\]?', " ", music)
    for t in re.finditer(r"(/*)(\d+)", bare):
        n = int(t.group(2)[:7])
        if (n > MAX_NOTE_DIVISION) if t.group(1) else (unit * n > longest):
            raise PieceFormatError(
                f"cannot read {source} as ABC: note length {t.group(0)[:20]!r} is out of range "
                f"(at most {MAX_NOTE_BEATS} beats, divided at most by {MAX_NOTE_DIVISION})"
            )
    for t in _LENGTH.finditer(music):
        if t.group(1) is None:
            continue
        num = int(t.group(1)[:7]) if t.group(1) else 1
        den = int(t.group(3)[:7]) if t.group(3) else 2 ** min(len(t.group(2)), 30)
        if unit * num > longest or den > MAX_NOTE_DIVISION:
            # music21 splits a long note into tied notes bar by bar (a 2,000-beat note took
            # minutes) and chokes on tiny divisions: no real tune has either
            raise PieceFormatError(
                f"cannot read {source} as ABC: note length {t.group(0).strip()[:20]!r} is out of range "
                f"(at most {MAX_NOTE_BEATS} beats, divided at most by {MAX_NOTE_DIVISION})"
            )
        beats += unit * num
        if beats > MAX_BEATS * len(voices):
            raise PieceFormatError(f"cannot read {source} as ABC: the tune is too long (over {MAX_BEATS:.0f} beats)")


_LENGTH = re.compile(r'"[^"]*"|![^!\n]*!|\+[^+\n]*\+|\[[A-Za-z]:[^\]\n]*\]?|(?:[A-Za-z][,\']*|\])(\d*)(/*)(\d*)')


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
        markers, _ = _scan_body(bodies[0], first)
        if markers and not piece.markers:
            piece.markers = markers
        if len(bodies) == len(piece.tracks):
            for track, body in zip(piece.tracks, bodies):
                _, marks = _scan_body(body, first)
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


def _scan_body(body: str, text: str) -> tuple[list[Marker], list[tuple[float, int]]]:
    """``"^emotion ..."`` annotations and dynamics marks of one voice with their beats.

    music21 drops both, so the voice is scanned here: a position is the sum of the
    lengths written before it (tuplets and grace notes are not counted)."""
    m = re.search(r"^L:\s*(\d+)/(\d+)", text, re.M)
    unit = Fraction(int(m.group(1)), int(m.group(2))) * 4 if m else Fraction(1, 2)
    markers: list[Marker] = []
    dyn: list[tuple[float, int]] = []
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
            continue
        num = int(t.group(4)) if t.group(4) else 1
        slashes = len(t.group(5))
        den = int(t.group(6)) if t.group(6) else (2 ** slashes if slashes else 1)
        if t.group(3).startswith("[") and not t.group(4) and not slashes:
            inner = re.match(r"\[[_=^]*[A-Ga-g][,']*(\d*)", t.group(3))
            if inner and inner.group(1):
                num = int(inner.group(1))
        beat += unit * Fraction(num, den)
    return markers, dyn


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
