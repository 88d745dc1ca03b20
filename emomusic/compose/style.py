"""Each piece its own player: how a piece's texture departs from its emotion's defaults.

Real pianists playing music of one mood differ: one keeps the left hand sparse, another fills
every eighth note; one lays the bass an octave lower; one colours every chord with sevenths
and ninths, another plays plain triads; one ornaments the tune with passing notes, another
leaves it bare. With one set of texture rules per emotion every generated piece of a quadrant
sounded like the same player (within a quadrant the pieces varied 0.3-0.6x as much as
EMOPIA's clips in notes per beat, key strength and the top line's intervals), one of the
clearest tells of the realism test (``benchmarks/realism.py``; docs/compose.md).

:func:`draw_style` draws a :class:`PlayerStyle` per piece from its seed: five independent
standard normals (each held within +-:data:`Z_LIMIT`) times ``diversity`` move

* the left hand's onset budget (:func:`emomusic.compose.texture.onset_budget`): its centre
  scaled by ``exp(BUSY_LOG_SD * z)``;
* the lowest bass note (:func:`emomusic.compose.texture.bass_floor`): ``BASS_SD * z``
  semitones (rounded);
* the chance of a seventh / ninth in a chord (:func:`emomusic.compose.texture.colour_chance`):
  ``COLOUR_SD * z`` added;
* the chance of a passing or neighbour note (:func:`emomusic.compose.passing.passing_chance`):
  ``ORNAMENT_SD * z`` added;
* the chance that a quick repeated melody note becomes a neighbour note
  (:func:`emomusic.compose.passing.repeat_neighbour_chance`): ``REPEAT_SD * z`` added (drawn
  fifth, so the first four draws are what they were before it: 10 sets 0.759 -> 0.743).

The emotion's own terms (more onsets, a lower bass and fewer colour tones when excited ...)
stay as they are and the chances keep their limits. Widths measured with the realism test
(explore runs, 10 sets of 100 pieces against EMOPIA val): none 0.812, the first four 0.776; also
drawing the right hand's fill chance and inner voices or the mode clarity gained nothing
(0.779; the mode clarity alone 0.818). ``diversity`` 0 is :data:`PLAIN`, the rules as they
are.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

Z_LIMIT = 2.0  # each draw is held within this many standard deviations
BUSY_LOG_SD = 1.6  # log of the onset budget's scale per unit z (from no added pattern to no limit at the limits)
BASS_SD = 9.0  # semitones of the bass floor per unit z (an octave and a half either way at the limits)
COLOUR_SD = 0.6  # colour-tone chance per unit z
ORNAMENT_SD = 0.6  # passing-note chance per unit z
REPEAT_SD = 0.7  # quick-repeat-to-neighbour chance per unit z (a third of the pieces keep every repeat)
SALT = 0x5717  # the style's own random stream beside the piece's other draws


@dataclass(frozen=True)
class PlayerStyle:
    """How one piece's texture departs from the emotion's defaults (:func:`draw_style`)."""

    busyness: float = 1.0  # factor on the centre of the left hand's onset budget
    bass_shift: int = 0  # semitones added to the lowest bass note
    colour: float = 0.0  # added to the chance of a seventh / ninth in a chord
    ornament: float = 0.0  # added to the chance of a passing / neighbour note
    repeats: float = 0.0  # added to the chance that a quick repeated melody note becomes a neighbour note

    def to_dict(self) -> dict:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in asdict(self).items()}


PLAIN = PlayerStyle()


def draw_style(seed: int, diversity: float = 1.0) -> PlayerStyle:
    """The style of the piece drawn with ``seed`` (compose's ``seed + i``), its widths scaled
    by ``diversity`` (0..1; 0 gives :data:`PLAIN`). The draws do not depend on ``diversity``:
    a piece's style only widens or narrows with it."""
    z = np.clip(np.random.default_rng([int(seed), SALT]).standard_normal(5), -Z_LIMIT, Z_LIMIT) * float(diversity)
    return PlayerStyle(busyness=float(math.exp(BUSY_LOG_SD * z[0])), bass_shift=int(round(BASS_SD * z[1])),
                       colour=float(COLOUR_SD * z[2]), ornament=float(ORNAMENT_SD * z[3]),
                       repeats=float(REPEAT_SD * z[4]))


def piece_styles(seed: int, n: int, diversity: float = 1.0) -> list[PlayerStyle]:
    """The styles of the ``n`` pieces of one compose call with ``seed``: piece ``i`` draws with
    ``seed + i`` (as its form and texture do)."""
    return [draw_style(int(seed) + i, diversity) for i in range(int(n))]


__all__ = ["PLAIN", "PlayerStyle", "draw_style", "piece_styles"]
