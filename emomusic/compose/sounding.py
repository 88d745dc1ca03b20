"""What sounds when: the clash test every note the piano texture adds has to pass.

:class:`Sounding` holds the notes already there (numpy arrays) plus the ones added since, and
answers "what sounds over [t0, t1)" and "would this pitch clash a semitone (or double a key)
there"; :func:`emotion_at` reads a per-segment emotion list at a beat. Used by
:mod:`~emomusic.compose.texture`, :mod:`~emomusic.compose.right_hand` and
:mod:`~emomusic.compose.passing`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from emomusic.emotion import Emotion
from emomusic.piece import Note


def emotion_at(emotions: Sequence[Emotion], beat: float, segment_beats: float) -> Emotion:
    """The emotion of the segment (``segment_beats`` long) that holds ``beat``."""
    return emotions[min(len(emotions) - 1, max(0, int(beat // segment_beats)))]


class Sounding:
    """Notes in time, to ask what sounds over an interval (numpy, so a piece stays fast)."""

    def __init__(self, notes: Sequence[Note]):
        self.start = np.array([n.start for n in notes], dtype=float)
        self.end = np.array([n.end for n in notes], dtype=float)
        self.pitch = np.array([n.pitch for n in notes], dtype=int)
        self._new: list[tuple[float, float, int]] = []

    def add(self, nt: Note) -> int:
        """Add ``nt``; its index among the added notes (for :meth:`set_end`)."""
        self._new.append((nt.start, nt.end, nt.pitch))
        return len(self._new) - 1

    def set_end(self, i: int, end: float) -> None:
        s, _, p = self._new[i]
        self._new[i] = (s, end, p)

    def restrike(self, pitch: int, at: float) -> int | None:
        """Index (in the order added) of an added note of ``pitch`` still ringing at ``at``,
        now ended there so the key can be struck again; None when there is none."""
        for i in range(len(self._new) - 1, -1, -1):
            s, e, p = self._new[i]
            if p == pitch and s < at - 1e-6 < e:
                self._new[i] = (s, at, p)
                return i
        return None

    def pitches(self, t0: float, t1: float) -> np.ndarray:
        m = (self.start < t1 - 1e-6) & (self.end > t0 + 1e-6)
        extra = [p for s, e, p in self._new if s < t1 - 1e-6 and e > t0 + 1e-6]
        return np.concatenate([self.pitch[m], np.array(extra, dtype=int)])

    def clashes(self, pitch: int, t0: float, t1: float) -> bool:
        """A semitone (interval class 1) or the same pitch against anything sounding in [t0, t1)."""
        ps = self.pitches(t0, t1)
        if ps.size == 0:
            return False
        d = np.abs(ps - pitch)
        return bool(np.any((d % 12 == 1) | (d % 12 == 11) | (d == 0)))


__all__ = ["Sounding", "emotion_at"]
