"""Piece -> ABC text: emomusic's own writer (music21 reads ABC but cannot write it).

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

:func:`piece_to_abc` is the entry; :func:`emomusic.io.abc.write_abc` writes its text to a file.
"""

from __future__ import annotations

import re

from emomusic.errors import EmomusicError, PieceFormatError
from emomusic.piece import KeySignature, Piece, Tempo, TimeSignature

_LETTERS = "CDEFGAB"
_LETTER_PC = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
# Key-signature names for each tonic pitch class (the usual spelling: at most 6 accidentals).
_MAJOR_NAMES = ["C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]
_MINOR_NAMES = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "G#", "A", "Bb", "B"]
_SHARP_ORDER = "FCGDAEB"
_DYNAMICS = [(40, "pp"), (56, "p"), (72, "mp"), (88, "mf"), (104, "f"), (128, "ff")]
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
