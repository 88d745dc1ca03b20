"""The project's symbolic music emotion recognizer: piece -> valence, arousal, quadrant.

A small, documented model on hand-made features (no neural network):

1. :func:`extract_features` measures the piece (:func:`emomusic.attributes.measure`) and
   adds a few descriptors known to carry emotion: mode evidence from key profiles and from
   per-beat triad qualities, pitch-class entropy, dissonant simultaneities, melody (top
   voice) and bass register, inter-onset-interval statistics in seconds, loudness spread.
   Time is measured in **seconds** through the tempo map, so pieces with a real tempo and
   transcriptions at a nominal 120 BPM (EMOPIA) are comparable.
2. Two L2-regularised logistic regressions on the standardised features give
   ``P(valence > 0)`` and ``P(arousal > 0)``; the reported values are
   ``valence = 2 P(v > 0) - 1`` and ``arousal = 2 P(a > 0) - 1`` (so in [-1, 1], the sign
   is the decision, the magnitude the confidence). Quadrant probabilities are the products
   of the two (the axes are modelled independently).

The parameters (feature names, means, scales, weights) live in
``emomusic/checkpoints/estimator/estimator.json``, written by ``scripts/fit_estimator.py`` from
EMOPIA's train split (each clip and its top-voice melody, :func:`melody_line`, so single
melodies are in the training distribution too); its MODEL_CARD.md reports the val-split accuracy. Numpy only.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from emomusic.attributes import Attributes, group_onsets, key_correlations, measure, pitch_class_histogram
from emomusic.emotion import Emotion
from emomusic.errors import CheckpointError, PieceFormatError
from emomusic.piece import Note, Piece, Track

FORMAT_VERSION = 1
ESTIMATOR_FILE = "estimator.json"
ONSET_TOLERANCE_SECONDS = 0.03  # notes starting within 30 ms form one chord

# Every feature the extractor can compute; a fitted model uses a subset (its "features").
ALL_FEATURES = (
    "mode_evidence",  # best major r - best minor r (Krumhansl-Kessler)
    "key_confidence",  # best key r
    "major_triad_share",  # of beats whose best triad match is major
    "minor_triad_share",
    "pc_entropy",  # pitch-class entropy, bits (0 .. log2 12)
    "dissonance",  # share of simultaneous interval classes that are dissonant (1, 2, 6)
    "register",  # mean MIDI pitch
    "melody_register",  # mean of the highest pitch per onset
    "bass_register",  # mean of the lowest pitch per onset
    "pitch_spread",
    "pitch_range",
    "log_notes_per_second",
    "log_onsets_per_second",
    "ioi_log_mean",  # mean log10 inter-onset interval in seconds
    "ioi_log_std",
    "log_duration_mean",  # mean log10 note duration in seconds
    "velocity",
    "velocity_std",
    "articulation",
    "polyphony",
    "log_tempo",  # the nominal tempo map (uninformative for EMOPIA, kept for real scores)
)


# --------------------------------------------------------------------------------------
# Features
# --------------------------------------------------------------------------------------


def _triad_templates() -> tuple[np.ndarray, np.ndarray]:
    maj, mnr = np.zeros((12, 12)), np.zeros((12, 12))
    for r in range(12):
        maj[r, [r, (r + 4) % 12, (r + 7) % 12]] = 1.0
        mnr[r, [r, (r + 3) % 12, (r + 7) % 12]] = 1.0
    return maj, mnr


_MAJ_TRIADS, _MIN_TRIADS = _triad_templates()
_DISSONANT_IC = np.array([0, 1, 1, 0, 0, 0, 1], dtype=float)  # interval classes 0..6: m2/M7, M2/m7, tritone
_PC_DIST = np.abs(np.arange(12)[:, None] - np.arange(12)[None, :])
_DISSONANT_PAIRS = _DISSONANT_IC[np.minimum(_PC_DIST, 12 - _PC_DIST)]  # (12, 12): pitch-class pair dissonant


def _triad_shares(notes, end_beat: float) -> tuple[float, float]:
    """Share of 1-beat windows (with notes) whose duration-weighted chroma best matches a
    major vs a minor triad (ties and near-empty windows are skipped).

    Linear in notes + windows (a long note adds one range, not one step per beat), and the
    window count is bounded by emomusic.limits.MAX_BEATS."""
    from emomusic.limits import MAX_BEATS

    if not math.isfinite(end_beat) or end_beat > MAX_BEATS:
        raise PieceFormatError(f"the piece is too long to analyse ({end_beat:.0f} beats; at most {MAX_BEATS:.0f})")
    n_win = max(1, int(math.ceil(end_beat)))
    chroma = np.zeros((n_win + 1, 12))
    diff = np.zeros((n_win + 2, 12))
    b0 = np.array([n.start for n in notes], dtype=float)
    b1 = np.array([n.end for n in notes], dtype=float)
    pc = np.array([n.pitch % 12 for n in notes], dtype=int)
    ok = b1 > b0
    b0, b1, pc = b0[ok], b1[ok], pc[ok]
    w0 = np.floor(b0).astype(int)
    w1 = np.minimum(np.floor(b1).astype(int), n_win)
    same = w0 == w1
    np.add.at(chroma, (w0[same], pc[same]), (b1 - b0)[same])
    d = ~same
    np.add.at(chroma, (w0[d], pc[d]), (w0[d] + 1.0) - b0[d])  # the first, partial window
    np.add.at(chroma, (w1[d], pc[d]), b1[d] - w1[d])  # the last, partial window
    np.add.at(diff, (w0[d] + 1, pc[d]), 1.0)  # the whole windows between
    np.add.at(diff, (w1[d], pc[d]), -1.0)
    chroma = (chroma + np.cumsum(diff, axis=0)[: n_win + 1])[:n_win]
    tot = chroma.sum(axis=1)
    keep = tot > 1e-6
    if not keep.any():
        return 0.0, 0.0
    c = chroma[keep] / tot[keep, None]
    smaj = (c @ _MAJ_TRIADS.T).max(axis=1)
    smin = (c @ _MIN_TRIADS.T).max(axis=1)
    strong = np.maximum(smaj, smin) > 0.5  # a triad explains most of the window
    n = len(c)
    return float(np.sum(strong & (smaj > smin + 1e-9)) / n), float(np.sum(strong & (smin > smaj + 1e-9)) / n)


def _seconds(piece: Piece, beats: np.ndarray) -> np.ndarray:
    """``piece.beat_to_seconds`` for many beats at once (one tempo-table build)."""
    tb, ts, tbpm = (np.asarray(x, dtype=float) for x in piece._tempo_table())
    i = np.maximum(0, np.searchsorted(tb, beats, side="right") - 1)
    return ts[i] + (beats - tb[i]) * 60.0 / tbpm[i]


def _dissonance(notes) -> float:
    """Share of pairs of notes sounding together (sampled at onsets) in a dissonant interval class.

    At each sampled onset the pitch classes sounding (a 12-wide presence row); the pairs of
    them, and the dissonant pairs (:data:`_DISSONANT_IC` of their interval class), counted
    for all onsets at once. The counts are whole numbers, so the share is the same as
    counting onset by onset."""
    starts = np.array([n.start for n in notes])
    ends = np.array([n.end for n in notes])
    pitches = np.array([n.pitch for n in notes])
    onsets = np.unique(np.round(starts, 3))
    if len(onsets) > 400:  # subsample long pieces evenly: the statistic converges fast
        onsets = onsets[np.linspace(0, len(onsets) - 1, 400).astype(int)]
    if onsets.size == 0:
        return 0.0
    t = onsets[:, None] + 1e-6
    sounding = (starts[None, :] <= t) & (ends[None, :] > t)  # (onsets, notes)
    present = np.zeros((onsets.size, 12))
    for pc in range(12):
        sel = (pitches % 12) == pc
        if sel.any():
            present[:, pc] = sounding[:, sel].any(axis=1)
    k = present.sum(axis=1)
    k = k[k >= 2]
    total = float(np.sum(k * (k - 1) / 2))
    bad = float(np.sum((present @ _DISSONANT_PAIRS) * present)) / 2
    return float(bad / total) if total else 0.0


def extract_features(piece: Piece, attrs: Attributes | None = None) -> dict[str, float]:
    """All :data:`ALL_FEATURES` of ``piece`` as a name -> value dict."""
    notes = piece.notes
    if not notes:
        raise PieceFormatError("the piece has no pitched notes to analyse")
    attrs = attrs or measure(piece)
    r = key_correlations(pitch_class_histogram(notes))
    hist = pitch_class_histogram(notes)
    nz = hist[hist > 0]
    pc_entropy = float(-(nz * np.log2(nz)).sum())

    # Onset groups (chords, with a tolerance for rolled or transcribed chords): top and
    # bottom voice, inter-onset intervals in seconds.
    starts_b = np.array([n.start for n in notes])
    pitches = np.array([n.pitch for n in notes], dtype=float)
    note_secs = _seconds(piece, starts_b)
    inv = group_onsets(note_secs, ONSET_TOLERANCE_SECONDS)
    n_groups = int(inv.max()) + 1
    top = np.full(n_groups, -1.0)
    bot = np.full(n_groups, 200.0)
    first_sec = np.full(n_groups, np.inf)
    np.maximum.at(top, inv, pitches)
    np.minimum.at(bot, inv, pitches)
    np.minimum.at(first_sec, inv, note_secs)
    onset_secs = np.sort(first_sec)
    iois = np.diff(onset_secs)
    iois = iois[iois > 1e-3]
    if len(iois):
        lg = np.log10(iois)
        ioi_mean, ioi_std = float(lg.mean()), float(lg.std())
    else:
        ioi_mean, ioi_std = 0.0, 0.0
    ends_b = np.array([n.end for n in notes], dtype=float)
    dur_secs = _seconds(piece, ends_b) - note_secs
    first = piece.beat_to_seconds(float(starts_b.min()))
    last = piece.beat_to_seconds(max(n.end for n in notes))
    span = max(last - first, 1e-3)
    vel = np.array([n.velocity for n in notes], dtype=float)
    maj_share, min_share = _triad_shares(notes, piece.end_beat)
    return {
        "mode_evidence": float(r[0].max() - r[1].max()),
        "key_confidence": float(attrs.key_confidence),
        "major_triad_share": maj_share,
        "minor_triad_share": min_share,
        "pc_entropy": pc_entropy,
        "dissonance": _dissonance(notes),
        "register": float(attrs.register),
        "melody_register": float(top.mean()),
        "bass_register": float(bot.mean()),
        "pitch_spread": float(attrs.pitch_spread),
        "pitch_range": float(attrs.pitch_range),
        "log_notes_per_second": math.log10(len(notes) / span),
        "log_onsets_per_second": math.log10(n_groups / span),
        "ioi_log_mean": ioi_mean,
        "ioi_log_std": ioi_std,
        "log_duration_mean": float(np.log10(np.maximum(dur_secs, 1e-3)).mean()),
        "velocity": float(attrs.velocity),
        "velocity_std": float(vel.std()),
        "articulation": float(attrs.articulation),
        "polyphony": float(attrs.polyphony),
        "log_tempo": math.log10(max(attrs.tempo_bpm, 1e-3)),
    }


def melody_line(piece: Piece) -> Piece:
    """The top voice ("skyline") of ``piece`` as a one-track monophonic piece.

    At each onset group (notes within 30 ms) the highest note is kept; it is cut where the
    next group starts. Used to train the estimator on melodies as well as full textures
    (EMOPIA clips are polyphonic piano; the melody engine writes single lines).
    """
    notes = piece.notes
    if not notes:
        raise PieceFormatError("the piece has no pitched notes")
    secs = np.array([piece.beat_to_seconds(n.start) for n in notes])
    groups = group_onsets(secs, ONSET_TOLERANCE_SECONDS)
    best: dict[int, int] = {}
    for i, n in enumerate(notes):
        g = int(groups[i])
        if g not in best or n.pitch > notes[best[g]].pitch:
            best[g] = i
    chosen = [notes[best[g]] for g in sorted(best)]
    out = []
    for j, n in enumerate(chosen):
        nxt = chosen[j + 1].start if j + 1 < len(chosen) else n.end
        dur = min(n.duration, nxt - n.start) if nxt > n.start else n.duration
        out.append(Note(n.pitch, n.start, max(dur, 1e-3), n.velocity))
    return Piece(tracks=[Track("Melody", 0, False, out)], tempos=list(piece.tempos),
                 time_signatures=list(piece.time_signatures), title=piece.title)


# --------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------


@dataclass
class LogisticAxis:
    """P(axis > 0) = sigmoid(bias + weights . (x - mean) / scale)."""

    weights: np.ndarray
    bias: float

    def prob(self, z: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(z @ self.weights + self.bias)))


@dataclass
class EstimatorModel:
    features: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    valence: LogisticAxis
    arousal: LogisticAxis
    meta: dict

    def standardise(self, feats: dict[str, float] | np.ndarray) -> np.ndarray:
        if isinstance(feats, dict):
            x = np.array([feats[f] for f in self.features], dtype=float)
        else:
            x = np.asarray(feats, dtype=float)
        return (x - self.mean) / self.scale

    def predict_probs(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(P(v > 0), P(a > 0))`` for a matrix of raw feature rows (columns = features)."""
        Z = (np.atleast_2d(X) - self.mean) / self.scale
        return self.valence.prob(Z), self.arousal.prob(Z)

    def to_dict(self) -> dict:
        return {
            "format_version": FORMAT_VERSION,
            "kind": "emomusic.estimator/logistic-axes",
            "features": list(self.features),
            "mean": [float(x) for x in self.mean],
            "scale": [float(x) for x in self.scale],
            "valence": {"weights": [float(w) for w in self.valence.weights], "bias": float(self.valence.bias)},
            "arousal": {"weights": [float(w) for w in self.arousal.weights], "bias": float(self.arousal.bias)},
            "meta": self.meta,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "EstimatorModel":
        try:
            if d.get("format_version") != FORMAT_VERSION:
                raise CheckpointError(f"estimator format {d.get('format_version')!r} is not {FORMAT_VERSION}")
            feats = tuple(d["features"])
            unknown = [f for f in feats if f not in ALL_FEATURES]
            if unknown:
                raise CheckpointError(f"estimator uses unknown feature {unknown[0]!r}")
            n = len(feats)
            mean = np.array(d["mean"], dtype=float)
            scale = np.array(d["scale"], dtype=float)
            axes = []
            for name in ("valence", "arousal"):
                w = np.array(d[name]["weights"], dtype=float)
                if w.shape != (n,):
                    raise CheckpointError(f"estimator {name} weights have {w.size} values for {n} features")
                axes.append(LogisticAxis(w, float(d[name]["bias"])))
            if mean.shape != (n,) or scale.shape != (n,) or np.any(scale <= 0):
                raise CheckpointError("estimator mean/scale do not match its features")
            return cls(feats, mean, scale, axes[0], axes[1], dict(d.get("meta", {})))
        except CheckpointError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CheckpointError(f"estimator parameters are malformed: {exc}") from None

    def save(self, folder: str | os.PathLike) -> Path:
        from emomusic.atomic import atomic_path

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / ESTIMATOR_FILE
        with atomic_path(target) as tmp:
            tmp.write_text(json.dumps(self.to_dict(), indent=1) + "\n", encoding="utf-8")
        return target


def default_estimator_dir() -> Path:
    from emomusic.paths import checkpoint_path

    return checkpoint_path("estimator")


@lru_cache(maxsize=4)
def _load_cached(path: str, mtime: float) -> EstimatorModel:
    try:
        if Path(path).stat().st_size > 1 << 20:
            raise CheckpointError(f"estimator parameters {path} are too large to be an estimator.json (over 1 MB)")
        d = json.loads(Path(path).read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise CheckpointError(f"cannot read estimator parameters {path}: not a UTF-8 JSON text file") from None
    except (OSError, json.JSONDecodeError, RecursionError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else (str(exc) or type(exc).__name__)
        raise CheckpointError(f"cannot read estimator parameters {path}: {reason}") from None
    if not isinstance(d, dict):
        raise CheckpointError(f"estimator parameters {path} are malformed: not a JSON object")
    return EstimatorModel.from_dict(d)


def load_estimator(path: str | os.PathLike | None = None) -> EstimatorModel:
    """Load (once; cached) the estimator from a folder or its ``estimator.json``."""
    p = Path(path) if path is not None else default_estimator_dir()
    if p.is_dir() or p.suffix != ".json":
        p = p / ESTIMATOR_FILE
    if not p.is_file():
        raise CheckpointError(
            f"estimator parameters not found at {p}; fit them with "
            "'python scripts/fit_estimator.py --emopia DATA/emopia -o emomusic/checkpoints/estimator'"
        )
    return _load_cached(str(p.resolve()), p.stat().st_mtime)


# --------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------


# Features that read the note velocities (loudness). ``neutral=VELOCITY_FEATURES`` estimates
# from the notes alone: a post-hoc loudness control cannot then decide the arousal.
VELOCITY_FEATURES = ("velocity", "velocity_std")


def axis_probabilities(feats: dict[str, float], model: EstimatorModel | None = None,
                       neutral: Sequence[str] = ()) -> tuple[float, float]:
    """``(P(valence > 0), P(arousal > 0))`` from extracted features; ``neutral`` as
    :func:`estimate_details` (those features held at their training mean)."""
    model = model or load_estimator()
    unknown = [f for f in neutral if f not in ALL_FEATURES]
    if unknown:
        raise ValueError(f"unknown estimator feature {unknown[0]!r}")
    z = model.standardise(feats)
    for f in neutral:
        if f in model.features:
            z[model.features.index(f)] = 0.0
    return float(model.valence.prob(z[None, :])[0]), float(model.arousal.prob(z[None, :])[0])


def estimate_details(piece: Piece, model: EstimatorModel | None = None, neutral: Sequence[str] = ()) -> dict:
    """Everything the estimator knows about ``piece``.

    Keys: ``valence``, ``arousal`` (in [-1, 1]), ``quadrant`` ("Q1".."Q4"),
    ``quadrant_probs`` ({"Q1": p, ...}), ``p_valence_positive``, ``p_arousal_positive``,
    ``attributes`` (:class:`Attributes`), ``features`` (name -> value).

    ``neutral`` names features to ignore without refitting: their standardised value is set
    to 0, the training mean, so they add nothing to either axis (e.g. :data:`VELOCITY_FEATURES`
    to judge a piece by its notes, not its loudness). The other weights were fitted
    alongside them, so this is an approximation of a model without those features.
    """
    from emomusic.limits import check_piece_size

    model = model or load_estimator()
    check_piece_size(piece, "the piece")  # bounded work and memory, whatever built the piece
    attrs = measure(piece)
    feats = extract_features(piece, attrs)
    pv, pa = axis_probabilities(feats, model, neutral)
    valence, arousal = 2.0 * pv - 1.0, 2.0 * pa - 1.0
    emo = Emotion(max(-1.0, min(1.0, valence)), max(-1.0, min(1.0, arousal)))
    probs = {"Q1": pv * pa, "Q2": (1 - pv) * pa, "Q3": (1 - pv) * (1 - pa), "Q4": pv * (1 - pa)}
    return {
        "valence": emo.valence,
        "arousal": emo.arousal,
        "quadrant": emo.quadrant,
        "quadrant_probs": probs,
        "p_valence_positive": pv,
        "p_arousal_positive": pa,
        "attributes": attrs,
        "features": feats,
        "emotion": emo,
    }


def estimate_emotion(piece: Piece, model: EstimatorModel | None = None, neutral: Sequence[str] = ()) -> Emotion:
    """The estimated emotion of ``piece`` (valence, arousal in [-1, 1]); ``neutral`` as
    :func:`estimate_details`."""
    return estimate_details(piece, model, neutral)["emotion"]


def estimate_many(pieces: Sequence[Piece], model: EstimatorModel | None = None) -> list[Emotion]:
    model = model or load_estimator()
    return [estimate_emotion(p, model) for p in pieces]


__all__ = [
    "ALL_FEATURES",
    "VELOCITY_FEATURES",
    "EstimatorModel",
    "axis_probabilities",
    "LogisticAxis",
    "estimate_details",
    "estimate_emotion",
    "estimate_many",
    "extract_features",
    "load_estimator",
    "melody_line",
]
