"""ABC notation for the melody path: keys and modes, pitch spelling, canonical tunes.

A :class:`CanonTune` is the canonical internal form of a melody: a tonic and mode, a
metre, and full bars of events ``(chord, duration, pitch)`` on a sixteenth-note grid
(``duration`` in sixteenths, ``pitch`` a MIDI number or ``None`` for a rest, ``chord`` a
``(root pitch class, quality)`` pair or ``None``). Everything that writes ABC goes
through :func:`write_abc`, so headers are always written by code, one field per line
(``X: T: M: L: Q: K:``), and keys with modes (``K:Ador``, ``K:Gmix``) are spelled with the
key signature they imply. Nothing here imports torch or music21.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from fractions import Fraction

from emomusic.errors import EmomusicError

LETTERS = "CDEFGAB"
NATURAL_PC = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
MAJOR_STEPS = (0, 2, 4, 5, 7, 9, 11)
MODES = ("major", "minor", "dorian", "mixolydian", "phrygian", "lydian", "locrian")
# semitones from the relative major's tonic up to the mode's tonic
MODE_OFFSET = {"major": 0, "dorian": 2, "phrygian": 4, "lydian": 5, "mixolydian": 7, "minor": 9, "locrian": 11}
MODE_SUFFIX = {"major": "", "minor": "m", "dorian": "dor", "phrygian": "phr", "lydian": "lyd", "mixolydian": "mix", "locrian": "loc"}
# which modes count as major-like (positive valence) for the quadrant template
MAJOR_LIKE = {"major": True, "lydian": True, "mixolydian": True, "minor": False, "dorian": False, "phrygian": False, "locrian": False}
# spelling of the relative major's tonic: at most 6 accidentals
MAJOR_TONIC_NAME = {0: "C", 1: "Db", 2: "D", 3: "Eb", 4: "E", 5: "F", 6: "F#", 7: "G", 8: "Ab", 9: "A", 10: "Bb", 11: "B"}
_MODE_WORDS = {
    "": "major", "maj": "major", "major": "major", "ion": "major", "ionian": "major",
    "m": "minor", "min": "minor", "minor": "minor", "aeo": "minor", "aeolian": "minor",
    "dor": "dorian", "dorian": "dorian", "mix": "mixolydian", "mixolydian": "mixolydian",
    "phr": "phrygian", "phrygian": "phrygian", "lyd": "lydian", "lydian": "lydian",
    "loc": "locrian", "locrian": "locrian",
}

# Metres the representation knows: name -> (bar length in sixteenths, chord/beat spacing in sixteenths)
METERS = {
    "2/4": (8, 4), "3/4": (12, 4), "4/4": (16, 4), "2/2": (16, 8),
    "3/8": (6, 6), "6/8": (12, 6), "9/8": (18, 6), "12/8": (24, 6),
}
# note lengths (in sixteenths) that are one written note head (plain or dotted)
DURATIONS = (1, 2, 3, 4, 6, 8, 12, 16, 24)
CHORD_QUALITIES = ("", "m", "7", "m7", "dim")
PITCH_MIN, PITCH_MAX = 48, 96  # C3 .. C7, all writable in ABC (C, .. c'')


@dataclass(frozen=True)
class Key:
    tonic: int  # pitch class of the mode's tonic
    mode: str = "major"

    def __post_init__(self):
        if self.mode not in MODE_OFFSET:
            raise EmomusicError(f"unknown mode {self.mode!r}; use one of {', '.join(MODES)}")
        object.__setattr__(self, "tonic", int(self.tonic) % 12)

    @property
    def major_tonic(self) -> int:
        return (self.tonic - MODE_OFFSET[self.mode]) % 12

    @property
    def is_major(self) -> bool:
        return MAJOR_LIKE[self.mode]

    def scale(self) -> list[tuple[str, int]]:
        """The seven (letter, accidental) spellings of the key's notes, relative major order."""
        name = MAJOR_TONIC_NAME[self.major_tonic]
        start = LETTERS.index(name[0])
        out = []
        for i in range(7):
            letter = LETTERS[(start + i) % 7]
            target = (self.major_tonic + MAJOR_STEPS[i]) % 12
            acc = (target - NATURAL_PC[letter] + 6) % 12 - 6
            out.append((letter, acc))
        return out

    def signature(self) -> dict[str, int]:
        """Letter -> accidental implied by the key signature."""
        return {letter: acc for letter, acc in self.scale()}

    def pitch_classes(self) -> list[int]:
        return sorted((NATURAL_PC[l] + a) % 12 for l, a in self.scale())

    def uses_flats(self) -> bool:
        return any(a < 0 for a in self.signature().values()) or self.major_tonic == 5

    @property
    def tonic_name(self) -> str:
        for letter, acc in self.scale():
            if (NATURAL_PC[letter] + acc) % 12 == self.tonic:
                return letter + {-1: "b", 0: "", 1: "#"}.get(acc, "")
        raise AssertionError("tonic not in its own scale")

    @property
    def abc(self) -> str:
        """The ``K:`` value, e.g. ``G``, ``Em``, ``Ador``, ``Dmix``."""
        return self.tonic_name + MODE_SUFFIX[self.mode]

    @property
    def piece_mode(self) -> str:
        """``major`` or ``minor`` for :class:`emomusic.piece.KeySignature`."""
        return "major" if self.is_major else "minor"

    def transposed(self, semitones: int) -> "Key":
        return Key((self.tonic + semitones) % 12, self.mode)


_KEY_RE = re.compile(r"^\s*([A-Ga-g])\s*([#b\u266f\u266d]?)\s*([A-Za-z]*)")


def parse_key(text: str, strict: bool = False) -> Key:
    """Read a ``K:`` value or a user's ``--key``: ``G``, ``Em``, ``F#m``, ``Ador``, ``D mixolydian``, ``Bb``.

    ``strict`` (for user input) rejects anything after the key; corpus ``K:`` fields may
    carry clefs or other words after it, which are ignored.
    """
    bad = f"cannot read key {text!r}; use e.g. G, Em, F#m, Ador, Dmix"
    if not isinstance(text, str) or not text.strip():
        raise EmomusicError("empty key; use e.g. G, Em, Ador, Dmix")
    s = text.strip()
    m = _KEY_RE.match(s)
    if not m:
        raise EmomusicError(bad)
    letter = m.group(1).upper()
    acc = {"#": 1, "\u266f": 1, "b": -1, "\u266d": -1}.get(m.group(2), 0)
    word = m.group(3).lower()
    rest = s[m.end():].strip()
    mode = _MODE_WORDS.get(word) or _MODE_WORDS.get(word[:3])
    if mode is None and word.startswith("m") and not word.startswith(("maj", "mix")):
        mode = "minor"
    if mode is None and word and not strict and word.startswith(("clef", "treble", "bass", "alto")):
        mode = "major"
    if mode is None and not word:
        mode = "major"
    if mode is None or (strict and rest):
        raise EmomusicError(bad)
    return Key((NATURAL_PC[letter] + acc) % 12, mode)


def meter_info(meter: str) -> tuple[int, int]:
    if meter not in METERS:
        raise EmomusicError(f"unsupported metre {meter!r}; use one of {', '.join(METERS)}")
    return METERS[meter]


def normalise_meter(text: str) -> str | None:
    """``C`` -> 4/4, ``C|`` -> 2/2; None for metres the representation does not know."""
    s = text.strip().split("%")[0].strip().replace(" ", "")
    s = {"C": "4/4", "C|": "2/2"}.get(s, s)
    return s if s in METERS else None


# --------------------------------------------------------------------------------------
# Canonical tunes


Chord = tuple[int, str]  # (root pitch class, quality)
Event = tuple[Chord | None, int, int | None]  # (chord, duration in sixteenths, MIDI pitch or None)


@dataclass
class CanonTune:
    key: Key
    meter: str
    bars: list[list[Event]]
    title: str = ""
    source: str = ""
    tempo: float | None = None
    label: str | None = None  # quadrant Q1..Q4 once labelled
    features: dict = field(default_factory=dict)

    @property
    def bar_units(self) -> int:
        return meter_info(self.meter)[0]

    @property
    def has_chords(self) -> bool:
        return any(ev[0] is not None for bar in self.bars for ev in bar)

    def pitches(self) -> list[int]:
        return [ev[2] for bar in self.bars for ev in bar if ev[2] is not None]

    def check(self) -> None:
        """Raise EmomusicError if a bar is not exactly full or a value is out of range."""
        units = self.bar_units
        for i, bar in enumerate(self.bars):
            total = sum(ev[1] for ev in bar)
            if total != units:
                raise EmomusicError(f"bar {i + 1} holds {total} sixteenths, the metre {self.meter} needs {units}")
            for chord, dur, pitch in bar:
                if dur not in DURATIONS:
                    raise EmomusicError(f"bar {i + 1}: unsupported note length {dur}/16")
                if pitch is not None and not 0 <= pitch <= 127:
                    raise EmomusicError(f"bar {i + 1}: pitch {pitch} out of range")

    def transposed(self, semitones: int) -> "CanonTune":
        def ch(c):
            return None if c is None else ((c[0] + semitones) % 12, c[1])

        bars = [[(ch(c), d, None if p is None else p + semitones) for c, d, p in bar] for bar in self.bars]
        return replace(self, key=self.key.transposed(semitones), bars=bars, features=dict(self.features))

    def to_dict(self) -> dict:
        return {
            "key": [self.key.tonic, self.key.mode], "meter": self.meter, "title": self.title,
            "source": self.source, "tempo": self.tempo, "label": self.label, "features": self.features,
            "bars": [[[list(c) if c else None, d, p] for c, d, p in bar] for bar in self.bars],
        }

    @classmethod
    def from_dict(cls, d: dict) -> "CanonTune":
        bars = [[(tuple(c) if c else None, int(dur), p) for c, dur, p in bar] for bar in d["bars"]]
        return cls(Key(*d["key"]), d["meter"], bars, d.get("title", ""), d.get("source", ""), d.get("tempo"),
                   d.get("label"), d.get("features") or {})


def parse_chord_symbol(text: str) -> Chord | None:
    """``G`` -> (7, ''), ``F#m`` -> (6, 'm'), ``D7`` -> (2, '7'), ``Bdim`` -> (11, 'dim'); None if unreadable."""
    m = re.match(r"^\s*([A-G])([#b\-]?)(.*)$", text or "")
    if not m:
        return None
    root = (NATURAL_PC[m.group(1)] + {"#": 1, "b": -1, "-": -1}.get(m.group(2), 0)) % 12
    q = m.group(3).split("/")[0].strip().lower()
    if q.startswith(("dim", "o")):
        quality = "dim"
    elif q.startswith("m") and not q.startswith("maj"):
        quality = "m7" if "7" in q else "m"
    elif q.startswith(("7", "9", "11", "13")) or q.startswith("dom"):
        quality = "7"
    else:
        quality = ""  # major, maj7, 6, sus, aug: read as the major triad
    return root, quality


def chord_pitches(chord: Chord, low: int = 48) -> list[int]:
    root, quality = chord
    intervals = {"": (0, 4, 7), "m": (0, 3, 7), "7": (0, 4, 7, 10), "m7": (0, 3, 7, 10), "dim": (0, 3, 6)}[quality]
    base = low + (root - low) % 12
    return [base + i for i in intervals]


# --------------------------------------------------------------------------------------
# Writing ABC


def _spell(pitch: int, key: Key) -> tuple[str, int, int]:
    """(letter, accidental, octave of the letter) for ``pitch`` in ``key``."""
    pc = pitch % 12
    for letter, acc in key.scale():
        if (NATURAL_PC[letter] + acc) % 12 == pc:
            break
    else:
        lowered = {(NATURAL_PC[l] + a) % 12: (l, a) for l, a in key.scale()}.get((pc - 1) % 12)
        naturals = [l for l in LETTERS if NATURAL_PC[l] == pc]
        if pc == (key.tonic - 1) % 12 and lowered is not None and lowered[1] < 1:
            letter, acc = lowered[0], lowered[1] + 1  # raised seventh: F# in G minor, G# in A minor
        elif naturals:
            letter, acc = naturals[0], 0
        elif key.uses_flats():
            letter, acc = next(l for l in LETTERS if NATURAL_PC[l] == (pc + 1) % 12), -1
        else:
            letter, acc = next(l for l in LETTERS if NATURAL_PC[l] == (pc - 1) % 12), 1
    natural_midi = pitch - acc
    octave = natural_midi // 12 - 1
    return letter, acc, octave


def _note_name(letter: str, octave: int) -> str:
    if octave >= 5:
        return letter.lower() + "'" * (octave - 5)
    return letter + "," * (4 - octave)


def chord_name(chord: Chord, key: Key) -> str:
    root, quality = chord
    letter, acc, _ = _spell(60 + root, key)
    return letter + {-2: "bb", -1: "b", 0: "", 1: "#", 2: "##"}[acc] + quality


_LEN = {1: "/2", 2: "", 3: "3/2", 4: "2", 6: "3", 8: "4", 12: "6", 16: "8", 24: "12"}  # with L:1/8
_ACC = {-2: "__", -1: "_", 0: "=", 1: "^", 2: "^^"}


def repeat_layout(tune: CanonTune, form=None) -> list[tuple[int, str, str]]:
    """How the bars of ``tune`` are written: (bar index, mark before the bar, bar line after it).

    Without a form (or a through-composed one) every bar is written once. With a form, two
    sections of the same letter played one after the other (A A, A A', B B') are written once
    between repeat signs ``|: ... :|`` when they are the same; when they share their opening
    and differ only in their closing bars (at most half of the phrase), the closings become
    first and second endings (``|1 ... :|2 ...``), one or more bars long, as folk tunes are
    written. Other sections are written out."""
    n = len(tune.bars)
    plain = [(i, "", "|") for i in range(n)]
    if form is None or getattr(form, "through_composed", True) or form.bars != n:
        if plain:
            plain[-1] = (n - 1, "", "|]")
        return plain
    out: list[tuple[int, str, str]] = []
    secs = form.sections
    i = 0
    while i < len(secs):
        a = secs[i]
        b = secs[i + 1] if i + 1 < len(secs) else None
        shared = 0  # bars both statements open with
        if b is not None and b.letter == a.letter and b.bars == a.bars and a.bars >= 2:
            while shared < a.bars and tune.bars[a.start_bar + shared] == tune.bars[b.start_bar + shared]:
                shared += 1
        if shared == a.bars:  # an exact repeat
            body = list(range(a.start_bar, a.end_bar))
            out += [(k, "|:" if j == 0 else "", ":|" if k == a.end_bar - 1 else "|") for j, k in enumerate(body)]
            i += 2
            continue
        if b is not None and shared >= 1 and a.bars - shared <= a.bars // 2:  # first and second endings
            out += [(k, "|:" if j == 0 else "", "|") for j, k in enumerate(range(a.start_bar, a.start_bar + shared))]
            first = list(range(a.start_bar + shared, a.end_bar))
            second = list(range(b.start_bar + shared, b.end_bar))
            out += [(k, "[1" if j == 0 else "", ":|" if j == len(first) - 1 else "|") for j, k in enumerate(first)]
            out += [(k, "[2" if j == 0 else "", "|") for j, k in enumerate(second)]
            i += 2
            continue
        out += [(k, "", "|") for k in range(a.start_bar, a.end_bar)]
        i += 1
    k, mark, line = out[-1]
    out[-1] = (k, mark, "|]" if line == "|" else line)
    return out


def abc_body(tune: CanonTune, bars_per_line: int = 4, dynamic: str | None = None, form=None) -> str:
    sig = tune.key.signature()
    beat = METERS[tune.meter][1] if tune.meter in METERS else 4
    texts: list[str] = []
    first = True
    for k, mark, end in repeat_layout(tune, form):
        bar = tune.bars[k]
        altered: dict[str, int] = {}
        out = []
        pos = 0
        for chord, dur, pitch in bar:
            tok = ""
            if first and dynamic:
                tok += f"!{dynamic}!"
            first = False
            if chord is not None:
                tok += f'"{chord_name(chord, tune.key)}"'
            if pitch is None:
                tok += "z"
            else:
                letter, acc, octave = _spell(pitch, tune.key)
                if letter in altered or acc != sig[letter]:
                    tok += _ACC[acc]
                    altered[letter] = acc
                tok += _note_name(letter, octave)
            tok += _LEN[dur]
            # notes inside one beat are written together so engravers beam them; a space at each beat
            if out and pos % beat != 0 and dur < beat:
                out[-1] += tok
            else:
                out.append(tok)
            pos += dur
        text = " ".join(out) + " " + end
        if mark == "|:":  # the bar line before opens the repeat: "|" -> "|:", ":|" -> ":|:"
            if texts:
                texts[-1] = texts[-1] + ":" if texts[-1].endswith(":|") else texts[-1][:-1] + "|:"
            else:
                text = "|: " + text
        elif mark:  # an ending: "[1" / "[2" right after the bar line
            text = mark + " " + text
        texts.append(text)
    lines = [" ".join(texts[i:i + bars_per_line]) for i in range(0, len(texts), bars_per_line)]
    return "\n".join(lines)


def written_counts(tune: CanonTune, form=None) -> tuple[int, int, float]:
    """(bars, notes, quarter notes) as written in the ABC (repeated bars once): what a reader
    that does not expand repeats sees."""
    layout = repeat_layout(tune, form)
    notes = sum(1 for k, _, _ in layout for ev in tune.bars[k] if ev[2] is not None)
    return len(layout), notes, len(layout) * tune.bar_units / 4


def write_abc(tune: CanonTune, *, number: int = 1, tempo: float | None = None, dynamic: str | None = None,
              comment: str | None = None, program: int | None = None, form=None) -> str:
    """The whole ABC text of ``tune``: headers written here, one per line, then the body (with
    repeat signs and endings where ``form`` repeats a section, see :func:`repeat_layout`)."""
    tune.check()
    title = re.sub(r"[\r\n]+", " ", tune.title or "Untitled").strip() or "Untitled"
    bpm = tempo if tempo is not None else (tune.tempo or 120.0)
    head = [f"X:{int(number)}", f"T:{title}"]
    if comment:
        head.append("% " + re.sub(r"[\r\n]+", " ", comment))
    if form is not None and not form.through_composed:
        head.append(f"% form {form.text}")
    head += [f"M:{tune.meter}", "L:1/8", f"Q:1/4={int(round(bpm))}", f"K:{tune.key.abc}"]
    if program is not None:
        head.append(f"%%MIDI program {int(program)}")
    return "\n".join(head) + "\n" + abc_body(tune, dynamic=dynamic, form=form) + "\n"


def duration_fraction(units: int) -> Fraction:
    """Sixteenths -> quarter-note beats."""
    return Fraction(units, 4)
