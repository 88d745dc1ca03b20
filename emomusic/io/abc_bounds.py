"""Bounds an ABC tune must keep before music21 parses it (:func:`check_abc_bounds`).

A corrupt metre, unit length, tuplet or note length made music21 hang or take gigabytes:
each is refused here in one line (:class:`~emomusic.errors.PieceFormatError`).
"""

from __future__ import annotations

import re
from fractions import Fraction

from emomusic.errors import PieceFormatError



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
