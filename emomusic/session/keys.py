"""Keys of a session: tonic names, related keys, and the home key pair a plan moves in."""

from __future__ import annotations

from typing import Sequence

from emomusic.emotion import Emotion
from emomusic.piece import PITCH_CLASS_NAMES, KeySignature
from emomusic.session.checks import PlanError

MODE_DEAD_BAND = 0.05  # valence must cross 0 by this much before the mode switches

_TONIC_NAMES = {
    "C": 0, "B#": 0, "C#": 1, "DB": 1, "D": 2, "D#": 3, "EB": 3, "E": 4, "FB": 4, "F": 5, "E#": 5,
    "F#": 6, "GB": 6, "G": 7, "G#": 8, "AB": 8, "A": 9, "A#": 10, "BB": 10, "B": 11, "CB": 11,
}


def key_name(key: KeySignature) -> str:
    return f"{PITCH_CLASS_NAMES[key.tonic % 12]} {key.mode}"


def key_to_dict(key: KeySignature) -> dict:
    return {"tonic": PITCH_CLASS_NAMES[key.tonic % 12], "mode": key.mode}


def parse_tonic(value: object) -> int:
    """A tonic given as a pitch class 0..11 or a name (``"D"``, ``"F#"``, ``"Bb"``)."""
    if isinstance(value, bool):
        raise PlanError(f"key tonic must be a note name or 0..11, got {value!r}")
    if isinstance(value, int):
        if 0 <= value <= 11:
            return value
        raise PlanError(f"key tonic must be 0..11, got {value}")
    if isinstance(value, str):
        s = value.strip()
        k = s[:1].upper() + s[1:].upper().replace("♭", "B").replace("♯", "#")
        if k in _TONIC_NAMES:
            return _TONIC_NAMES[k]
    raise PlanError(f"key tonic must be a note name like C, F# or Bb (or 0..11), got {value!r}")


def key_from_dict(d: object) -> KeySignature:
    if isinstance(d, str):  # "A minor", "C major"
        parts = d.split()
        if len(parts) == 2:
            d = {"tonic": parts[0], "mode": parts[1]}
    if not isinstance(d, dict) or "tonic" not in d or "mode" not in d:
        raise PlanError(f"a key needs 'tonic' and 'mode' (e.g. {{\"tonic\": \"A\", \"mode\": \"minor\"}}), got {d!r}")
    mode = str(d["mode"]).lower()
    if mode not in ("major", "minor"):
        raise PlanError(f"key mode must be 'major' or 'minor', got {d['mode']!r}")
    return KeySignature(parse_tonic(d["tonic"]), mode)


def relative_key(key: KeySignature) -> KeySignature:
    """The relative minor of a major key and the relative major of a minor key."""
    if key.mode == "major":
        return KeySignature((key.tonic + 9) % 12, "minor")
    return KeySignature((key.tonic + 3) % 12, "major")


def keys_related(a: KeySignature, b: KeySignature) -> bool:
    """Same key, relative major/minor, or a neighbour on the circle of fifths (same mode)."""
    ta, tb = a.tonic % 12, b.tonic % 12
    if a.mode == b.mode:
        return ta == tb or (tb - ta) % 12 in (5, 7)
    rel = relative_key(a)
    return rel.tonic == tb and rel.mode == b.mode


def home_tonic(key: KeySignature) -> int:
    """The tonic of the major key of ``key``'s pair (the key itself, or its relative major)."""
    return key.tonic if key.mode == "major" else relative_key(key).tonic


def plan_keys(emotions: Sequence[Emotion], tonic: int | None) -> list[KeySignature]:
    """One home key pair (a major key and its relative minor); the mode follows valence.

    The mode switches only where valence changes sign (with a small dead band so a path
    hovering at 0 does not flip back and forth); the two keys share one key signature."""
    from emomusic.attributes import template

    major_tonic = template(Emotion(0.5, 0.0)).key_tonic if tonic is None else tonic
    major = KeySignature(major_tonic % 12, "major")
    minor = relative_key(major)
    keys = []
    mode = "major" if emotions[0].valence >= 0 else "minor"
    for e in emotions:
        if mode == "major" and e.valence < -MODE_DEAD_BAND:
            mode = "minor"
        elif mode == "minor" and e.valence > MODE_DEAD_BAND:
            mode = "major"
        keys.append(major if mode == "major" else minor)
    return keys
