"""The attribute template for melodies: what is conditioned, what is applied afterwards.

Built on :func:`emomusic.attributes.template` (the project's one emotion -> attributes
map), so melodies agree with the other engines:

* **conditioned** (control tokens the model was trained with): quadrant, mode (major or
  minor from valence; dorian/mixolydian/... through ``--key``), pitch spread and note
  density bins (from arousal, as the corpus labels were made from z(pitch SD) + z(density)),
  register bin (from valence, as the template register rises with valence), metre, key,
  chords on/off;
* **applied after generation** (EMelodyGen-style post-hoc controls): tempo ``Q:`` = the
  template tempo, whole-octave shift toward the template register, dynamics (``!p!`` ..
  ``!ff!`` in the ABC and the MIDI velocity of the piece) from the template velocity.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from emomusic.emotion import Emotion
from emomusic.melody.notation import Key, METERS

# default keys (the corpus's most common ones) and metres per quadrant when none is asked for
MAJOR_KEYS = ("G", "D", "C", "F", "A", "Bb")
MINOR_KEYS = ("Am", "Em", "Dm", "Gm", "Bm")
# Metres by quadrant, with the shares the melody model's training tunes of that quadrant have
# (a seeded sample of 507 training tunes of the Nottingham and music21 folk corpora, labelled with
# the model's own quadrant rule as benchmarks/realism.py labels them; shares under 2% left out).
# Session 11: the guessed lists before (waltzes for sad tunes: 3/4 half the time, where the
# corpus's sad tunes are mostly jigs and marches, 3/4 in 11%; no 2/2 or 9/8 at all) made the
# tunes easier to tell from real ones (benchmarks/realism.py explore: 0.770 -> 0.761).
QUADRANT_METERS = {
    "Q1": (("2/4", 0.34), ("2/2", 0.26), ("6/8", 0.22), ("4/4", 0.13), ("3/4", 0.03), ("9/8", 0.02)),
    "Q2": (("6/8", 0.32), ("2/2", 0.25), ("4/4", 0.18), ("2/4", 0.14), ("9/8", 0.07), ("3/4", 0.04)),
    "Q3": (("6/8", 0.46), ("4/4", 0.24), ("2/2", 0.11), ("3/4", 0.11), ("9/8", 0.05), ("3/8", 0.03)),
    "Q4": (("6/8", 0.38), ("4/4", 0.28), ("2/2", 0.15), ("2/4", 0.08), ("3/4", 0.06), ("9/8", 0.05)),
}
# the window the model samples in (before the octave shift): its centre follows the register
# bin (the corpus's tertiles of mean pitch are about 71.6 and 73.6), its width the spread bin.
# Half widths of 7 / 9 / 12 semitones held the lines narrower than real tunes (pitch SD 3.6
# against 4.4; the held-out tunes span 17 semitones in 16 bars on average): 10 / 12 / 15 leave
# the spread to the model and the spread control (benchmarks/realism.py)
REGISTER_CENTRES = {0: 69, 1: 72, 2: 75}
SPREAD_HALF_WIDTHS = {0: 10, 1: 12, 2: 15}
MAX_LEAPS = {0: 7, 1: 9, 2: 12}
# density bin -> (shortest note in sixteenths, logit bonus per note length); the calm bin's bonus for
# long notes counts only lengths of a whole beat or more of the tune's metre (duration_rule)
DENSITY_RULES = {
    0: (2, {4: 0.6, 6: 0.6, 8: 0.6, 12: 0.6}),
    1: (1, {}),
    2: (1, {1: 0.3, 2: 0.5}),
}


def duration_rule(density_bin: int, meter: str) -> tuple[int, dict[int, float]]:
    """(shortest note, logit bonus per note length) for a tune of ``density_bin`` in ``meter``:
    :data:`DENSITY_RULES`, with the calm bin's long-note bonus kept for lengths of at least the
    metre's beat (a quarter in 4/4 and 3/4, a dotted quarter in 6/8 and 9/8, a half in 2/2). A
    quarter note is a long note in 4/4 but part of the moving eighth-note line of a jig: with the
    bonus on every length from a quarter, calm 6/8 tunes had 1.44-1.48 notes per quarter note
    against the folk tunes' 1.70-1.73 and calm 2/2 tunes 1.48-1.52 against 1.89 (4/4 matched:
    1.41-1.57 against 1.38-1.56); with the metre's beat 1.51-1.58 and 1.67-1.71."""
    shortest, bias = DENSITY_RULES[density_bin]
    if density_bin == 0:
        beat = METERS[meter][1]
        bias = {d: b for d, b in bias.items() if d >= beat}
    return shortest, dict(bias)


def sampling_window(register_bin: int, spread_bin: int) -> tuple[int, int]:
    c, h = REGISTER_CENTRES[register_bin], SPREAD_HALF_WIDTHS[spread_bin]
    return c - h, c + h


def _bin3(x: float) -> int:
    return 0 if x < -1 / 3 else (2 if x > 1 / 3 else 1)


def dynamic_for(velocity: float) -> str:
    for limit, mark in ((40, "pp"), (54, "p"), (68, "mp"), (82, "mf"), (96, "f")):
        if velocity < limit:
            return mark
    return "ff"


@dataclass
class MelodyTemplate:
    emotion: Emotion
    quadrant: str
    mode: str  # major | minor
    tempo: float
    velocity: int
    dynamic: str
    register: float  # target mean MIDI pitch
    pitch_spread: float  # target SD, semitones
    density: float  # target notes per beat
    register_bin: int
    spread_bin: int
    density_bin: int

    def to_dict(self) -> dict:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in self.__dict__.items() if k != "emotion"}

    def default_key(self, rng: random.Random) -> Key:
        from emomusic.melody.notation import parse_key

        return parse_key(rng.choice(MAJOR_KEYS if self.mode == "major" else MINOR_KEYS))

    def default_meter(self, rng: random.Random) -> str:
        """A metre for one tune: drawn with :data:`QUADRANT_METERS`' shares for its quadrant."""
        names, weights = zip(*QUADRANT_METERS[self.quadrant])
        return rng.choices(names, weights)[0]


def melody_template(emotion: Emotion) -> MelodyTemplate:
    from emomusic.attributes import template

    t = template(emotion)
    v, a = emotion.valence, emotion.arousal
    return MelodyTemplate(
        emotion=emotion,
        quadrant=emotion.quadrant,
        mode=t.mode,
        tempo=float(t.tempo_bpm),
        velocity=int(round(t.velocity)),
        dynamic=dynamic_for(t.velocity),
        register=float(t.register),
        pitch_spread=float(t.pitch_spread),
        density=float(t.note_density),
        register_bin=_bin3(v),
        spread_bin=_bin3(a),
        density_bin=_bin3(a),
    )


# Each tune draws its own settings around the template (generate_melodies(diversity=)): real
# tunes of one mood differ in range, density and how closely they keep to the key, while one
# fixed set of controls made every generated tune of a quadrant alike (within a quadrant the
# held-out folk tunes vary 1.5-3x as much in pitch-class entropy, key strength and notes per
# beat). With diversity 1 the spread and density bins each move to a neighbouring bin with
# probability NEIGHBOUR_CHANCE (a bin at the end of the scale moves inward half of those times)
# and the key steering is scaled by a factor drawn uniformly from [0, 2] (its mean kept).
# Measured (benchmarks/realism.py explore runs, 6 sets of 100): C2ST 0.809 -> 0.762; the melody
# benchmark's quadrant accuracy 82.0% -> 84.0%, mode as asked 97.8% -> 95.8% (docs/melody.md).
NEIGHBOUR_CHANCE = 0.6
TONAL_SPREAD = 1.0
# Gapped scales: the degrees (semitones above the tonic) a tune's line may leave out, with the
# chance of each choice at diversity 1. Measured on the held-out folk tunes (first 16 bars; a
# degree "left out" below 3% of the notes): major 71% use all seven degrees, 13% leave out the
# seventh, 8% the fourth, 3% both, 3% the sixth; minor 32% all, 37% the minor sixth, about 10%
# the second and the sixth. The generated tunes used all seven in 91%.
GAPS_MAJOR = (((11,), 0.13), ((5,), 0.08), ((5, 11), 0.03), ((9,), 0.03))
GAPS_MINOR = (((8,), 0.35), ((2, 8), 0.10))


@dataclass(frozen=True)
class TuneSettings:
    """One tune's draw around its template (:func:`draw_tune_settings`)."""

    spread_bin: int
    density_bin: int
    tonal_scale: float  # factor on the key steering (TuneSpec.tonal_bias)
    gaps: tuple[int, ...] = ()  # scale degrees the line leaves out (TuneSpec.gaps)

    def to_dict(self) -> dict:
        return {"spread_bin": self.spread_bin, "density_bin": self.density_bin, "tonal_scale": round(self.tonal_scale, 3),
                "gaps": list(self.gaps)}


def _neighbour(b: int, chance: float, rng: random.Random) -> int:
    moves, step = rng.random() < chance, rng.choice((-1, 1))  # both drawn always: same stream at any chance
    return min(2, max(0, b + step)) if moves else b


def draw_tune_settings(tpl: MelodyTemplate, rng: random.Random, diversity: float, key: Key) -> TuneSettings:
    """The settings one tune in ``key`` uses: the template's spread and density bins, each moved
    to a neighbouring bin with probability ``NEIGHBOUR_CHANCE * diversity``, a key-steering
    factor uniform in ``[1 - d, 1 + d]`` with ``d = TONAL_SPREAD * diversity``, and the scale
    degrees its line leaves out (:data:`GAPS_MAJOR` or :data:`GAPS_MINOR` by the key's mode,
    each choice's chance times ``diversity``; only degrees the key has: a modal key may lack a
    drawn one). ``diversity`` 0 gives the template itself (factor 1, no gaps). The same number
    of draws is taken from ``rng`` whatever ``diversity`` and ``key`` are."""
    chance = NEIGHBOUR_CHANCE * diversity
    spread = _neighbour(tpl.spread_bin, chance, rng)
    density = _neighbour(tpl.density_bin, chance, rng)
    d = TONAL_SPREAD * diversity
    u = rng.random()
    g, gaps = rng.random(), ()
    for option, p in (GAPS_MAJOR if key.is_major else GAPS_MINOR):
        g -= p * diversity
        if g < 0:
            scale = set(key.pitch_classes())
            gaps = tuple(x for x in option if (key.tonic + x) % 12 in scale)
            break
    return TuneSettings(spread, density, max(0.0, 1.0 - d + 2.0 * d * u), gaps)


MELODY_FLOOR = 48  # no tune note under C3 after the octave shift


def octave_shift_for(pitches: list[int], target: float, low: int = MELODY_FLOOR, high: int = 100) -> int:
    """The whole-octave shift (semitones) bringing the mean pitch nearest ``target`` while
    keeping every note inside [low, high]. The floor is C3 (:data:`MELODY_FLOOR`): the held-out
    folk tunes never go under it (a sung or fiddled line), while the low template register of
    sad tunes shifted about 5 % of them down to A2-B2 (``benchmarks/realism.py``: a share of
    0.005 of generated notes, 0 for real tunes); such a tune stays an octave higher."""
    if not pitches:
        return 0
    mean = sum(pitches) / len(pitches)
    best, best_d = 0, None
    for k in (-24, -12, 0, 12, 24):
        if min(pitches) + k < low or max(pitches) + k > high:
            continue
        d = abs(mean + k - target)
        if best_d is None or d < best_d - 1e-9:
            best, best_d = k, d
    return best


def known_meters() -> tuple[str, ...]:
    return tuple(METERS)
