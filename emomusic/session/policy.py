"""The closed loop's acceptance policy: score a candidate clip, accept it or try the next
seed, and pick the best take.

Every candidate is measured (its estimated emotion, and the distance to its waypoint) and
checked for holes: a rest of more than ``max_gap_s`` at the start or end of the clip is
heard at the join with its neighbour. The policy then

* **scores** it: the distance, plus ``gap_penalty`` for a hole; an empty or unmeasurable
  candidate scores infinity; without an estimator every candidate scores 0 (gaps only);
* **accepts** it (stop trying) when it is measured within ``tolerance`` (or not measured
  at all) and has no hole; empty candidates are never accepted;
* **picks** the lowest score over the tries (``1 + max_retries`` seeds, spaced by a prime
  so retry seeds never collide with other clips' seeds), preferring anything with notes
  over an empty take.

The thresholds are :class:`~emomusic.session.settings.BuildSettings` fields.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterator

from emomusic.emotion import Emotion
from emomusic.piece import Piece

if TYPE_CHECKING:
    from emomusic.session.settings import BuildSettings

RETRY_SEED_STEP = 7919  # a prime: retry seeds never collide with other clips' seeds


@dataclass
class Attempt:
    """One try at a clip: its seed and what the closed loop found; ``candidate`` and
    ``request`` (the engine's) are kept for the one attempt that is rendered."""

    seed: int
    measured: Emotion | None = None
    distance: float = math.inf
    empty: bool = False
    gap_s: float = 0.0
    score: float = math.inf
    candidate: Any = field(default=None, repr=False, compare=False)
    request: Any = field(default=None, repr=False, compare=False)

    def to_dict(self, max_gap_s: float) -> dict:
        d = {"seed": self.seed, "distance": None if self.measured is None else round(self.distance, 4),
             "measured": None if self.measured is None else self.measured.to_dict()}
        if self.gap_s > max_gap_s:
            d["gap_s"] = round(self.gap_s, 2)
        if self.empty:
            d["empty"] = True
        return d


@dataclass(frozen=True)
class AcceptancePolicy:
    tolerance: float = 0.6
    max_retries: int = 3
    max_gap_s: float = 1.5
    gap_penalty: float = 0.5
    retry_seed_step: int = RETRY_SEED_STEP

    @classmethod
    def from_settings(cls, settings: "BuildSettings") -> "AcceptancePolicy":
        return cls(tolerance=float(settings.tolerance), max_retries=int(settings.max_retries),
                   max_gap_s=float(settings.max_gap_s), gap_penalty=float(settings.gap_penalty))

    def seeds(self, seed: int) -> Iterator[int]:
        """The seeds to try for a clip whose plan seed is ``seed``."""
        for k in range(self.max_retries + 1):
            yield seed + k * self.retry_seed_step

    def has_gap(self, attempt: Attempt) -> bool:
        return attempt.gap_s > self.max_gap_s

    def score(self, attempt: Attempt) -> float:
        base = attempt.distance if attempt.measured is not None else (math.inf if attempt.empty else 0.0)
        return base + (self.gap_penalty if self.has_gap(attempt) else 0.0)

    def accept(self, attempt: Attempt) -> bool:
        """Stop trying: nothing empty, no hole, and measured within the tolerance (or not measured)."""
        if attempt.empty or self.has_gap(attempt):
            return False
        return attempt.measured is None or attempt.distance <= self.tolerance

    def better(self, attempt: Attempt, best: Attempt | None) -> bool:
        """Does ``attempt`` replace ``best``? A lower score, or the first take with notes."""
        if best is None or attempt.score < best.score:
            return True
        return best.measured is None and not attempt.empty and best.empty

    def pick(self, attempts: list[Attempt]) -> Attempt:
        best = None
        for a in attempts:
            if self.better(a, best):
                best = a
        if best is None:
            raise ValueError("no attempts to pick from")
        return best

    def within(self, distance: float | None) -> bool | None:
        return None if distance is None else bool(distance <= self.tolerance)


def silent_gap(piece: Piece, seconds: float) -> float:
    """Longest silence at the start or the end of the clip's first ``seconds`` (a rest
    there is heard as a hole at the join with the neighbouring clip)."""
    end_beat = piece.seconds_to_beat(seconds)
    notes = [n for n in piece.notes if n.start < end_beat]
    if not notes:
        return seconds
    first = piece.beat_to_seconds(min(n.start for n in notes))
    last = piece.beat_to_seconds(min(end_beat, max(n.end for n in notes)))
    return max(first, seconds - last)


__all__ = ["AcceptancePolicy", "Attempt", "silent_gap"]
