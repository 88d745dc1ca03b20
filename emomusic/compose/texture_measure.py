"""Measuring a piano texture: sounding notes at once, density, spread, register and what the
left hand does (:func:`texture_features`), for ``benchmarks/texture.py``, the tests and
:mod:`emomusic.compose.texture` (which shares the left-hand split)."""

from __future__ import annotations

import numpy as np

from emomusic.piece import Piece

LOW_PITCH = 48  # "low register": below C3
LEFT_HAND_SPLIT = 60  # notes below middle C count as left hand (the texture features; the texture's own left hand)

TEXTURE_FEATURES = ("polyphony", "notes_per_beat", "notes_per_second", "pitch_spread", "pitch_range_10_90",
                    "low_share", "lh_onsets_per_beat", "lh_notes_per_onset")


def texture_features(piece: Piece) -> dict[str, float]:
    """Texture descriptors of a piece (pitched notes).

    ``polyphony``: mean sounding notes over the time when something sounds (event-based, as
    :func:`emomusic.attributes.measure`; ``realism.polyphony`` counts distinct pitches on a
    grid); ``notes_per_beat`` (from the first onset to the last release), ``pitch_spread``
    (standard deviation) and ``low_share`` (notes below MIDI 48) are :mod:`emomusic.realism`'s;
    ``notes_per_second`` is notes per beat through the tempo map; ``pitch_range_10_90`` the
    10th-90th percentile range (semitones); ``lh_onsets_per_beat`` / ``lh_notes_per_onset``:
    onsets (chords within 0.05 beat count once) of the notes below middle C per beat, and notes
    per such onset.
    """
    from emomusic import realism
    from emomusic.attributes import _polyphony, group_onsets
    from emomusic.errors import PieceFormatError

    notes = piece.notes
    if not notes:
        raise PieceFormatError("the piece has no pitched notes to measure")
    pitch = np.array([n.pitch for n in notes], dtype=float)
    first = min(n.start for n in notes)
    last = max(n.end for n in notes)
    span = max(last - first, 1e-6)
    secs = max(piece.beat_to_seconds(last) - piece.beat_to_seconds(first), 1e-6)
    lh = [n for n in notes if n.pitch < LEFT_HAND_SPLIT]
    lh_onsets = int(group_onsets(np.array([n.start for n in lh])).max()) + 1 if lh else 0
    p10, p90 = np.percentile(pitch, [10, 90])
    return {
        "polyphony": _polyphony(notes),
        "notes_per_beat": realism.notes_per_beat(piece),
        "notes_per_second": len(notes) / secs,
        "pitch_spread": realism.pitch_spread(piece),
        "pitch_range_10_90": float(p90 - p10),
        "low_share": realism.low_register_share(piece, LOW_PITCH),
        "lh_onsets_per_beat": lh_onsets / span,
        "lh_notes_per_onset": len(lh) / lh_onsets if lh_onsets else 0.0,
    }


__all__ = ["LEFT_HAND_SPLIT", "LOW_PITCH", "TEXTURE_FEATURES", "texture_features"]
