"""Musical attributes of an emotion, and of a piece.

Three things live here:

* :func:`template` maps an :class:`~emomusic.emotion.Emotion` to the musical attributes a
  piece with that emotion should have (tempo, mode and key, register, pitch spread, note
  density, loudness, articulation). Every numeric attribute is a smooth function of valence
  and arousal, so there are no jumps inside a quadrant; only the *categorical* choices
  (``mode``, ``key_tonic``, ``octave_shift``) change, and only at valence 0. ``major_prob``
  and ``mode_strength`` grade how clearly major or minor a point is. The mapping and its
  music-psychology grounding are documented in ``docs/attributes.md``.
* :func:`measure` measures the same attributes from any :class:`~emomusic.piece.Piece`
  (MIDI, ABC or MusicXML): Krumhansl-Schmuckler key finding on the duration-weighted
  pitch-class histogram, the tempo map, density, velocity, register, spread, articulation.
* :func:`apply_template` is EMelodyGen-style post-hoc control: set the tempo, scale the
  velocities toward the template loudness, shift whole octaves toward the template
  register (and optionally reshape articulation, or move the pitches to the template's
  major/minor mode: the mode control, :mod:`emomusic.modes`), returning a new piece.

Numpy only: no torch, no music21 (``emomusic analyze`` must stay fast and torch-free).
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Iterable, Sequence

import numpy as np

from emomusic.emotion import Emotion
from emomusic.errors import EmomusicError, PieceFormatError
from emomusic.piece import PITCH_CLASS_NAMES, KeySignature, Note, Piece, Tempo, Track

# --------------------------------------------------------------------------------------
# The attribute record
# --------------------------------------------------------------------------------------


@dataclass
class Attributes:
    """Musical attributes of an emotion (template) or of a piece (measured).

    ============== ======================================================================
    tempo_bpm      effective tempo in BPM (total beats / total minutes)
    mode           "major" | "minor"
    key_tonic      pitch class of the tonic, 0..11 (0 = C)
    register       mean MIDI pitch of the (pitched) notes
    octave_shift   template only: whole-octave shift (0, -12) EMelodyGen-style; 0 when measured
    pitch_spread   standard deviation of MIDI pitch, semitones
    note_density   notes per beat (all notes; a chord of three counts three)
    velocity       mean MIDI velocity 1..127 (loudness)
    articulation   mean sounding duration / inter-onset interval, ~0.5 staccato .. 1.0 legato
    major_prob     probability-like grade of "major" in [0, 1] (0.5 = ambiguous)
    mode_strength  |2 * major_prob - 1|: 0 ambiguous .. 1 clearly major or minor
    onset_density  distinct onsets per beat (a chord counts once): comparable across textures
    key_confidence Pearson r of the best key profile (measured); 1.0 in a template
    polyphony      mean number of notes sounding while anything sounds (1 = monophonic)
    pitch_range    highest minus lowest MIDI pitch
    ============== ======================================================================

    A template's densities describe a single melodic line (``note_density ==
    onset_density``); for a polyphonic piece compare ``onset_density``.
    """

    tempo_bpm: float
    mode: str
    key_tonic: int
    register: float
    pitch_spread: float
    note_density: float
    velocity: float
    articulation: float
    octave_shift: int = 0
    major_prob: float = 0.5
    mode_strength: float = 0.0
    onset_density: float = 0.0
    key_confidence: float = 1.0
    polyphony: float = 1.0
    pitch_range: float = 0.0

    # -- views -------------------------------------------------------------------------
    @property
    def key_name(self) -> str:
        return f"{PITCH_CLASS_NAMES[self.key_tonic % 12]} {self.mode}"

    @property
    def notes_per_second(self) -> float:
        return self.note_density * self.tempo_bpm / 60.0

    @property
    def onsets_per_second(self) -> float:
        return self.onset_density * self.tempo_bpm / 60.0

    def to_dict(self) -> dict:
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, float):
                d[k] = round(v, 4)
        d["key"] = self.key_name
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Attributes":
        if not isinstance(d, dict):
            raise EmomusicError(f"attributes must be a JSON object, got {type(d).__name__}")
        names = {f.name for f in fields(cls)}
        missing = [f.name for f in fields(cls) if f.name in _REQUIRED and f.name not in d]
        if missing:
            raise EmomusicError(f"attributes lack {', '.join(missing)}")
        kwargs = {k: v for k, v in d.items() if k in names}
        a = cls(**kwargs)
        a.key_tonic = int(a.key_tonic) % 12
        a.octave_shift = int(a.octave_shift)
        if a.mode not in ("major", "minor"):
            raise EmomusicError(f"mode must be 'major' or 'minor', got {a.mode!r}")
        return a


_REQUIRED = ("tempo_bpm", "mode", "key_tonic", "register", "pitch_spread", "note_density", "velocity", "articulation")

# --------------------------------------------------------------------------------------
# Emotion -> attributes (the template)
# --------------------------------------------------------------------------------------

# Ranges (documented and justified in docs/attributes.md). Each numeric attribute is
# centre + gain_a * arousal + gain_v * valence (+ a small valence x arousal term for tempo and
# loudness; tempo on a log scale in arousal).
TEMPO_CENTRE = 96.0  # BPM at valence = arousal = 0
TEMPO_OCTAVES_PER_AROUSAL = 0.75  # a=-1 -> 96 / 2**0.75 = 57 BPM, a=+1 -> 161 BPM
TEMPO_VALENCE_AROUSAL_BPM = -6.0  # bilinear: sad slower than calm, angry/tense faster than happy
REGISTER_CENTRE = 64.0  # E4
REGISTER_PER_VALENCE = 5.0
REGISTER_PER_AROUSAL = 1.5
SPREAD_CENTRE = 4.5  # semitones, a folk/pop melody
SPREAD_PER_AROUSAL = 2.0
SPREAD_PER_VALENCE = 0.0
DENSITY_CENTRE = 1.6  # notes per beat of the melody line
DENSITY_PER_AROUSAL = 0.8  # 0.8 .. 2.4 notes per beat
VELOCITY_CENTRE = 72.0
VELOCITY_PER_AROUSAL = 28.0  # 44 .. 100
VELOCITY_VALENCE_AROUSAL = -4.0  # bilinear: angry louder than happy, sad softer than calm
ARTICULATION_CENTRE = 0.85
ARTICULATION_PER_AROUSAL = -0.12  # a=+1 detached (~0.7), a=-1 legato (~1.0)
ARTICULATION_PER_VALENCE = -0.03
MODE_SLOPE = 5.0  # major_prob = sigmoid(MODE_SLOPE * valence): 0.5 at v=0, 0.99 at |v|=1
MAJOR_TONIC = 0  # C major
MINOR_TONIC = 9  # A minor: the relative minor, same key signature as the major template


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def template(emotion: Emotion) -> Attributes:
    """The musical attributes for ``emotion`` (see the module doc and docs/attributes.md)."""
    if not isinstance(emotion, Emotion):
        raise EmomusicError(f"template() needs an Emotion, got {type(emotion).__name__}")
    v, a = emotion.valence, emotion.arousal
    tempo = TEMPO_CENTRE * 2.0 ** (TEMPO_OCTAVES_PER_AROUSAL * a) + TEMPO_VALENCE_AROUSAL_BPM * v * a
    major_prob = _sigmoid(MODE_SLOPE * v)
    mode = "major" if v >= 0 else "minor"
    density = DENSITY_CENTRE + DENSITY_PER_AROUSAL * a
    return Attributes(
        tempo_bpm=float(tempo),
        mode=mode,
        key_tonic=MAJOR_TONIC if mode == "major" else MINOR_TONIC,
        register=float(REGISTER_CENTRE + REGISTER_PER_VALENCE * v + REGISTER_PER_AROUSAL * a),
        pitch_spread=float(SPREAD_CENTRE + SPREAD_PER_AROUSAL * a + SPREAD_PER_VALENCE * v),
        note_density=float(density),
        velocity=float(VELOCITY_CENTRE + VELOCITY_PER_AROUSAL * a + VELOCITY_VALENCE_AROUSAL * v * a),
        articulation=float(ARTICULATION_CENTRE + ARTICULATION_PER_AROUSAL * a + ARTICULATION_PER_VALENCE * v),
        octave_shift=0 if v >= 0 else -12,
        major_prob=float(major_prob),
        mode_strength=float(abs(2.0 * major_prob - 1.0)),
        onset_density=float(density),
        key_confidence=1.0,
        polyphony=1.0,
        pitch_range=float(round(4.0 * (SPREAD_CENTRE + SPREAD_PER_AROUSAL * a))),
    )


# --------------------------------------------------------------------------------------
# Piece -> attributes (measurement)
# --------------------------------------------------------------------------------------

# Krumhansl & Kessler (1982) probe-tone key profiles, tonic first.
KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
MODE_EVIDENCE_SCALE = 12.0  # major_prob = sigmoid(scale * (r_best_major - r_best_minor))


def pitch_class_histogram(notes: Sequence[Note], weighted: bool = True) -> np.ndarray:
    """Pitch-class histogram (sums to 1), weighted by duration in beats unless told not to."""
    h = np.zeros(12)
    for n in notes:
        h[n.pitch % 12] += n.duration if weighted else 1.0
    s = h.sum()
    return h / s if s > 0 else h


@functools.lru_cache(maxsize=1)
def _kk_z() -> np.ndarray:
    """The 24 rotated KK profiles, z-scored: shape (2, 12, 12), [mode, tonic] -> profile."""
    out = np.zeros((2, 12, 12))
    for m, prof in enumerate((KK_MAJOR, KK_MINOR)):
        for tonic in range(12):
            p = np.roll(prof, tonic)
            out[m, tonic] = (p - p.mean()) / p.std()
    out.flags.writeable = False
    return out


def key_correlations(histogram: np.ndarray) -> np.ndarray:
    """Pearson r of ``histogram`` with the 24 rotated KK profiles: shape (2, 12), rows major/minor.

    Each r is the mean of the z-scored histogram times the z-scored profile (the profiles
    z-scored once); one mean per row, the same sums as one profile at a time, so the
    same values to the last bit (tests/test_attributes.py)."""
    h = np.asarray(histogram, dtype=float)
    if h.std() == 0:
        return np.zeros((2, 12))
    hz = (h - h.mean()) / h.std()
    return np.mean(hz * _kk_z(), axis=-1)


def estimate_key(notes: Sequence[Note]) -> tuple[int, str, float, float]:
    """Krumhansl-Schmuckler key: ``(tonic, mode, major_prob, confidence r)``."""
    r = key_correlations(pitch_class_histogram(notes))
    m, tonic = np.unravel_index(int(np.argmax(r)), r.shape)
    major_prob = _sigmoid(MODE_EVIDENCE_SCALE * (r[0].max() - r[1].max()))
    return int(tonic), ("major" if m == 0 else "minor"), float(major_prob), float(r[m, tonic])


def effective_tempo(piece: Piece, start: float = 0.0, end: float | None = None) -> float:
    """Beats per minute over ``[start, end]`` beats: beats / minutes through the tempo map."""
    end = piece.end_beat if end is None else end
    if end <= start:
        return float(piece.tempo)
    secs = piece.beat_to_seconds(end) - piece.beat_to_seconds(start)
    return float(60.0 * (end - start) / secs) if secs > 0 else float(piece.tempo)


ONSET_TOLERANCE_BEATS = 0.05  # onsets closer than this form one (rolled / transcribed) chord


def group_onsets(starts: np.ndarray, tolerance: float = ONSET_TOLERANCE_BEATS) -> np.ndarray:
    """Group index per start time: a new group begins after a gap larger than ``tolerance``.

    Returns an int array aligned with ``starts`` (any order); groups are numbered in time order.
    """
    starts = np.asarray(starts, dtype=float)
    if starts.size == 0:
        return np.zeros(0, dtype=int)
    order = np.argsort(starts, kind="stable")
    s = starts[order]
    new = np.concatenate([[0], (np.diff(s) > tolerance).astype(int)])
    gid = np.cumsum(new)
    out = np.empty_like(gid)
    out[order] = gid
    return out


def _articulation(tracks: Iterable[Track]) -> float:
    """Mean of duration / (time to the next later onset in the same part), clipped to [0.05, 1.2]."""
    ratios: list[np.ndarray] = []
    for t in tracks:
        if t.is_drum or len(t.notes) < 2:
            continue
        starts = np.array([n.start for n in t.notes])
        durs = np.array([n.duration for n in t.notes])
        onsets = np.unique(np.round(starts, 4))
        if len(onsets) < 2:
            continue
        idx = np.searchsorted(onsets, np.round(starts, 4), side="right")
        ok = idx < len(onsets)
        ioi = onsets[idx[ok]] - starts[ok]
        ratios.append(np.clip(durs[ok] / np.maximum(ioi, 1e-3), 0.05, 1.2))
    if not ratios:
        return 1.0
    return float(np.mean(np.concatenate(ratios)))


def _polyphony(notes: Sequence[Note]) -> float:
    """Mean number of sounding notes over the time when at least one sounds."""
    ev = sorted([(n.start, 1) for n in notes] + [(n.end, -1) for n in notes], key=lambda e: (e[0], e[1]))
    active, last, area, busy = 0, None, 0.0, 0.0
    for t, d in ev:
        if last is not None and active > 0:
            area += active * (t - last)
            busy += t - last
        active += d
        last = t
    return float(area / busy) if busy > 0 else 1.0


def measure(piece: Piece) -> Attributes:
    """Measure a piece's musical attributes (pitched notes only; drums are ignored).

    Raises :class:`PieceFormatError` for a piece without pitched notes.
    """
    notes = piece.notes
    if not notes:
        raise PieceFormatError("the piece has no pitched notes to measure")
    pitches = np.array([n.pitch for n in notes], dtype=float)
    starts = np.array([n.start for n in notes])
    ends = np.array([n.end for n in notes])
    first, last = float(starts.min()), float(ends.max())
    span = max(last - first, 1e-6)
    n_onsets = int(group_onsets(starts).max()) + 1
    tonic, mode, major_prob, conf = estimate_key(notes)
    return Attributes(
        tempo_bpm=effective_tempo(piece, first, last),
        mode=mode,
        key_tonic=tonic,
        register=float(pitches.mean()),
        pitch_spread=float(pitches.std()),
        note_density=float(len(notes) / span),
        velocity=float(np.mean([n.velocity for n in notes])),
        articulation=_articulation(piece.tracks),
        octave_shift=0,
        major_prob=major_prob,
        mode_strength=float(abs(2.0 * major_prob - 1.0)),
        onset_density=float(n_onsets / span),
        key_confidence=conf,
        polyphony=_polyphony(notes),
        pitch_range=float(pitches.max() - pitches.min()),
    )


# --------------------------------------------------------------------------------------
# Feature vector (for the estimator and for distances between attribute sets)
# --------------------------------------------------------------------------------------

FEATURE_NAMES = (
    "log_tempo",
    "major_prob",
    "register",
    "pitch_spread",
    "log_notes_per_second",
    "log_onsets_per_second",
    "velocity",
    "articulation",
    "key_confidence",
    "polyphony",
    "pitch_range",
)


def features_vector(attrs: Attributes) -> np.ndarray:
    """A fixed-order numeric vector of ``attrs`` (names in :data:`FEATURE_NAMES`)."""
    return np.array(
        [
            math.log(max(attrs.tempo_bpm, 1e-3)),
            attrs.major_prob,
            attrs.register,
            attrs.pitch_spread,
            math.log(max(attrs.notes_per_second, 1e-3)),
            math.log(max(attrs.onsets_per_second, 1e-3)),
            attrs.velocity,
            attrs.articulation,
            attrs.key_confidence,
            attrs.polyphony,
            attrs.pitch_range,
        ],
        dtype=float,
    )


# --------------------------------------------------------------------------------------
# Post-hoc controls (EMelodyGen style)
# --------------------------------------------------------------------------------------

CONTROLS = ("tempo", "velocity", "register", "articulation", "mode")
DEFAULT_CONTROLS = ("tempo", "velocity", "register")  # "mode" and "articulation" are opt-in
LOWEST_PITCH, HIGHEST_PITCH = 21, 108  # keep shifted notes on the piano


def apply_template(
    piece: Piece,
    emotion: Emotion,
    controls: Sequence[str] = DEFAULT_CONTROLS,
    strength: float = 1.0,
) -> Piece:
    """A new piece moved toward ``template(emotion)`` by the chosen post-hoc ``controls``.

    * ``tempo``: every tempo is scaled by one factor so the effective tempo moves
      geometrically toward the template tempo (relative tempo changes are kept).
    * ``velocity``: velocities are scaled so their mean moves toward the template
      velocity (the dynamic shape is kept), clipped to 1..127.
    * ``register``: pitched tracks shift by whole octaves toward the template register
      (the key is unchanged), staying within the piano range 21..108.
    * ``articulation``: note durations are scaled so the mean duration/IOI ratio moves
      toward the template articulation (notes never cross the next onset by more than
      the template allows).
    * ``mode`` (opt-in): the pitched notes move to the template's mode (major for valence
      >= 0, minor below) by the parallel-mode re-mapping that key finding hears most clearly
      there (:func:`emomusic.modes.mode_mapping`), asking for a clearer mode the stronger the
      valence (a margin of ``modes.MODE_CLARITY_PER_VALENCE * |valence|``); a piece already
      that clearly in the mode is kept. If the re-mapping falls short, chromatic notes become
      diatonic, longest first, until the margin is reached (:func:`emomusic.modes.clarify_mode`;
      both steps: :func:`emomusic.modes.template_mode`). At a neutral valence (template
      ``mode_strength`` below ``modes.MIN_MODE_STRENGTH``, i.e. |valence| < 0.04) the mode is left
      as it is. The key signatures become the tonic heard afterwards, in the new mode. This
      is a categorical change: it happens for any ``strength`` > 0.

    ``strength`` in [0, 1]: 0 leaves the piece as it is, 1 moves all the way.
    """
    if not isinstance(emotion, Emotion):
        raise EmomusicError(f"apply_template() needs an Emotion, got {type(emotion).__name__}")
    if isinstance(controls, str):
        controls = (controls,)
    unknown = [c for c in controls if c not in CONTROLS]
    if unknown:
        raise EmomusicError(f"unknown template control {unknown[0]!r}; use any of {', '.join(CONTROLS)}")
    s = float(strength)
    if not (0.0 <= s <= 1.0):
        raise EmomusicError(f"template strength must be in [0, 1], got {strength}")
    target = template(emotion)
    cur = measure(piece)
    out = replace(
        piece,
        tracks=[replace(t, notes=list(t.notes)) for t in piece.tracks],
        tempos=list(piece.tempos),
        keys=list(piece.keys),
        time_signatures=list(piece.time_signatures),
        markers=list(piece.markers),
    )
    if s == 0.0:
        return out

    if "tempo" in controls:
        goal = math.exp((1 - s) * math.log(cur.tempo_bpm) + s * math.log(target.tempo_bpm))
        factor = goal / cur.tempo_bpm
        out.tempos = [replace(tp, bpm=round(tp.bpm * factor, 3)) for tp in (out.tempos or [Tempo(120.0)])]

    if "velocity" in controls:
        goal = cur.velocity + s * (target.velocity - cur.velocity)
        factor = goal / max(cur.velocity, 1e-6)
        out.tracks = [
            replace(
                t,
                notes=[replace(n, velocity=int(min(127, max(1, round(n.velocity * factor))))) for n in t.notes],
            )
            for t in out.tracks
        ]

    if "register" in controls:
        delta = s * (target.register - cur.register)
        octaves = int(round(delta / 12.0))
        pitched = [n.pitch for t in out.tracks if not t.is_drum for n in t.notes]
        lo, hi = min(pitched), max(pitched)
        # Never push notes off the piano: reduce the shift until everything fits (or 0).
        while octaves > 0 and hi + 12 * octaves > HIGHEST_PITCH:
            octaves -= 1
        while octaves < 0 and lo + 12 * octaves < LOWEST_PITCH:
            octaves += 1
        if octaves:
            shift = 12 * octaves
            out.tracks = [
                t if t.is_drum else replace(t, notes=[replace(n, pitch=n.pitch + shift) for n in t.notes])
                for t in out.tracks
            ]

    if "mode" in controls:
        from emomusic.modes import template_mode  # here: emomusic.modes imports this module

        pitched = [i for i, t in enumerate(out.tracks) if not t.is_drum]
        choice = template_mode([out.tracks[i].notes for i in pitched], emotion)
        if choice is not None:
            parts, heard, changed = choice
            for i, notes in zip(pitched, parts):
                out.tracks[i] = replace(out.tracks[i], notes=notes)
            if changed or cur.mode != target.mode:
                out.keys = [KeySignature(heard, target.mode, k.beat)
                            for k in (out.keys or [KeySignature(0, "major")])]

    if "articulation" in controls:
        goal = cur.articulation + s * (target.articulation - cur.articulation)
        factor = goal / max(cur.articulation, 1e-6)
        out.tracks = [
            replace(t, notes=[replace(n, duration=max(1e-3, n.duration * factor)) for n in t.notes])
            for t in out.tracks
        ]
    return out


def attribute_distance(a: Attributes, b: Attributes) -> dict[str, float]:
    """Per-attribute differences ``b - a`` on interpretable scales (tempo as a ratio in octaves)."""
    return {
        "tempo_octaves": math.log2(b.tempo_bpm / a.tempo_bpm),
        "major_prob": b.major_prob - a.major_prob,
        "register": b.register - a.register,
        "pitch_spread": b.pitch_spread - a.pitch_spread,
        "onset_density": b.onset_density - a.onset_density,
        "velocity": b.velocity - a.velocity,
        "articulation": b.articulation - a.articulation,
    }


__all__ = [
    "Attributes",
    "CONTROLS",
    "DEFAULT_CONTROLS",
    "FEATURE_NAMES",
    "KK_MAJOR",
    "KK_MINOR",
    "apply_template",
    "attribute_distance",
    "effective_tempo",
    "estimate_key",
    "features_vector",
    "key_correlations",
    "measure",
    "pitch_class_histogram",
    "template",
]
