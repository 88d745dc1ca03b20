"""Diatonic chords from notes and a key: one triad per window, chosen jointly (Viterbi).

:func:`estimate_chords` reads the harmony of a piece window by window (a half bar in 4/4):
each diatonic triad of the key in force (:func:`diatonic_chords`: I ii iii IV V vi in major,
i III iv v V VI VII in minor, V from harmonic minor) is scored by the share of the window's
duration- and beat-weighted pitch classes it explains (low notes weigh more), plus a prior
for the common functions (I, V, IV first); a Viterbi path over the windows adds a bonus for
keeping a chord within its bar and for the usual moves (V-I, IV-V, ii-V). ``valence`` leans
ambiguous windows toward major or minor chords; ``constraints`` force the tonic or the
dominant in given windows, e.g. the cadences of a :class:`~emomusic.form.FormPlan`
(:func:`cadence_constraints`). Numpy only, no engine: used by the compose engine's piano
texture (:mod:`emomusic.compose.texture`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np

from emomusic.piece import KeySignature, Note

if TYPE_CHECKING:  # pragma: no cover
    from emomusic.form import FormPlan

MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
MINOR_SCALE = (0, 2, 3, 5, 7, 8, 10)  # natural minor; V uses the raised 7th (harmonic minor)
LOW_NOTE = 60  # notes below middle C weigh more (they carry the bass)
WINDOW_BEATS = 2.0  # one chord per half bar (4/4)


@dataclass(frozen=True)
class Chord:
    degree: str  # roman numeral in the key: "I", "ii", "V", "i", "iv", "VI", ...
    root: int  # pitch class
    pcs: tuple[int, int, int]  # root, third, fifth (pitch classes)
    quality: str  # "major" | "minor" | "diminished"


def _triad(tonic: int, scale: Sequence[int], deg: int, raise_seventh: bool = False) -> tuple[int, int, int]:
    pcs = []
    for k in (0, 2, 4):
        step = scale[(deg + k) % 7]
        if raise_seventh and (deg + k) % 7 == 6:
            step = 11
        pcs.append((tonic + step) % 12)
    return tuple(pcs)  # type: ignore[return-value]


def _quality(pcs: tuple[int, int, int]) -> str:
    third, fifth = (pcs[1] - pcs[0]) % 12, (pcs[2] - pcs[0]) % 12
    if fifth == 6:
        return "diminished"
    return "major" if third == 4 else "minor"


_MAJOR_DEGREES = (("I", 0), ("ii", 1), ("iii", 2), ("IV", 3), ("V", 4), ("vi", 5))
_MINOR_DEGREES = (("i", 0), ("III", 2), ("iv", 3), ("v", 4), ("V", 4), ("VI", 5), ("VII", 6))
# how likely each function is a priori (the tonic, the dominant and the subdominant carry most bars)
_PRIOR = {"I": 0.16, "i": 0.16, "V": 0.12, "IV": 0.10, "iv": 0.10, "vi": 0.06, "VI": 0.04, "ii": 0.03,
          "v": 0.04, "III": 0.0, "VII": 0.0, "iii": 0.0}
VALENCE_CHORD_BIAS = 0.15  # score for a major (minus for a minor) chord per unit of valence
MINOR_V_PRIOR = 0.06  # in minor the major V (raised 7th) mostly comes at cadences


def key_scale(key: KeySignature) -> tuple[int, ...]:
    """Semitones above the tonic of ``key``'s scale: major, or natural minor."""
    return MINOR_SCALE if key.mode == "minor" else MAJOR_SCALE


def diatonic_chords(key: KeySignature) -> list[Chord]:
    """The candidate chords of ``key``: I ii iii IV V vi in major; i III iv V VI VII in minor
    (V is major in minor keys, from harmonic minor)."""
    minor = key.mode == "minor"
    scale = key_scale(key)
    out = []
    for name, deg in (_MINOR_DEGREES if minor else _MAJOR_DEGREES):
        pcs = _triad(key.tonic % 12, scale, deg, raise_seventh=minor and name == "V")
        out.append(Chord(name, pcs[0], pcs, _quality(pcs)))
    return out


def _required(chords: Sequence[Chord], need: str) -> int:
    """Index of the chord a constraint asks for: ``"I"`` the tonic, ``"V"`` the major dominant
    (harmonic minor's in minor keys), ``"v"`` the dominant of the natural scale (V in major,
    v in minor: the half cadence of :mod:`emomusic.compose.cadence`)."""
    names = [c.degree for c in chords]
    if need == "I":
        return names.index("I") if "I" in names else names.index("i")
    if need == "v" and "v" in names:
        return names.index("v")
    return names.index("V")


STAY = 0.25  # score for keeping a chord over the second half of its bar
_MOVES = {("V", "I"): 0.15, ("V", "i"): 0.15, ("IV", "V"): 0.08, ("iv", "V"): 0.08, ("ii", "V"): 0.1,
          ("vi", "ii"): 0.04, ("vi", "IV"): 0.04, ("I", "IV"): 0.04, ("i", "iv"): 0.04, ("VI", "iv"): 0.04}


def _window_chroma(notes: Sequence[Note], n_win: int, win: float) -> np.ndarray:
    """(n_win, 12) duration-weighted pitch classes; onsets on beats and low notes weigh more."""
    chroma = np.zeros((n_win, 12))
    for nt in notes:
        strong = 1.5 if abs(nt.start - round(nt.start)) < 1e-3 else 1.0
        low = 1.3 if nt.pitch < LOW_NOTE else 1.0
        w0, w1 = int(nt.start // win), int(math.ceil(nt.end / win - 1e-9)) - 1
        for w in range(max(0, w0), min(n_win - 1, w1) + 1):
            ov = min(nt.end, (w + 1) * win) - max(nt.start, w * win)
            if ov > 0:
                chroma[w, nt.pitch % 12] += ov * (strong if w == w0 else 1.0) * low
    return chroma


def cadence_constraints(form: "FormPlan | None", n_windows: int, windows_per_bar: int) -> dict[int, str]:
    """Window index -> required chord (see :func:`estimate_chords`) from the plan's cadences:
    the dominant over a half-cadence bar (``"v"``: V in major, the natural-minor v in minor, as
    the form's cadence writes it), V in the half bar before an authentic cadence bar and I over
    that bar; the last bar is the tonic whatever the plan."""
    want: dict[int, str] = {}
    n_bars = int(math.ceil(n_windows / windows_per_bar))
    cads = form.cadences() if form is not None else []
    for bar, kind in cads:
        if bar >= n_bars:
            continue
        ws = range(bar * windows_per_bar, min(n_windows, (bar + 1) * windows_per_bar))
        if kind == "half":
            for w in ws:
                want[w] = "v"
        elif kind == "authentic":
            for w in ws:
                want[w] = "I"
            if ws.start > 0:
                want[ws.start - 1] = "V"
    last = range((n_bars - 1) * windows_per_bar, n_windows)
    for w in last:
        want[w] = "I"
    if last.start > 0 and (last.start - 1) not in want:
        want[last.start - 1] = "V"
    return want


def estimate_chords(notes: Sequence[Note], key: KeySignature | Sequence[KeySignature], n_windows: int,
                    window: float = WINDOW_BEATS, *, windows_per_bar: int = 2,
                    constraints: dict[int, str] | None = None, valence: float | Sequence[float] = 0.0,
                    stay: float | Sequence[float] = STAY) -> list[Chord]:
    """One diatonic chord per ``window`` beats (``n_windows`` windows from beat 0).

    ``key`` is one key or a key map (``Piece.keys``: each window uses the key in force at its
    start). ``constraints`` maps a window index to a required chord: ``"I"`` (the tonic, major
    or minor), ``"V"`` (the major dominant, harmonic minor's in minor keys) or ``"v"`` (the
    natural scale's dominant: V in major, v in minor); windows without notes follow the best
    path through them.
    ``valence`` (one value or one per window) leans ambiguous windows toward major chords
    when positive and minor chords when negative. ``stay`` (one value or one per window) is the
    score for keeping a chord over the second half of a bar: higher values give a slower
    harmonic rhythm.
    """
    keys = [key] if isinstance(key, KeySignature) else sorted(key, key=lambda k: k.beat) or [KeySignature(0, "major")]
    chroma = _window_chroma(notes, n_windows, window)
    tot = chroma.sum(axis=1)
    constraints = constraints or {}
    cands: list[list[Chord]] = []
    emit: list[np.ndarray] = []
    for w in range(n_windows):
        k = keys[0]
        for kk in keys:
            if kk.beat <= w * window + 1e-6:
                k = kk
        cs = diatonic_chords(k)
        c = chroma[w] / tot[w] if tot[w] > 0 else np.zeros(12)
        val = float(valence if np.isscalar(valence) else valence[min(w, len(valence) - 1)])
        sc = np.array([sum(c[p] for p in ch.pcs) - 0.7 * (1.0 - sum(c[p] for p in ch.pcs)) + 0.25 * c[ch.root]
                       + VALENCE_CHORD_BIAS * val * {"major": 1.0, "minor": -1.0}.get(ch.quality, 0.0)
                       + (MINOR_V_PRIOR if k.mode == "minor" and ch.degree == "V" else _PRIOR.get(ch.degree, 0.0)) for ch in cs])
        need = constraints.get(w)
        if need is not None:
            keep = _required(cs, need)
            sc = np.where(np.arange(len(cs)) == keep, sc, -np.inf)
        cands.append(cs)
        emit.append(sc)
    if n_windows == 0:
        return []
    # Viterbi over the windows
    best = emit[0].copy()
    back: list[np.ndarray] = []
    for w in range(1, n_windows):
        prev, cur = cands[w - 1], cands[w]
        same_bar = w % windows_per_bar != 0
        trans = np.zeros((len(prev), len(cur)))
        for i, a in enumerate(prev):
            for j, b in enumerate(cur):
                if a.pcs == b.pcs:
                    trans[i, j] = (float(stay if np.isscalar(stay) else stay[min(w, len(stay) - 1)])
                                   if same_bar else 0.05)
                else:
                    trans[i, j] = _MOVES.get((a.degree, b.degree), 0.0)
        tot_sc = best[:, None] + trans
        back.append(np.argmax(tot_sc, axis=0))
        best = tot_sc.max(axis=0) + emit[w]
    path = [int(np.argmax(best))]
    for bp in reversed(back):
        path.append(int(bp[path[-1]]))
    path.reverse()
    return [cands[w][j] for w, j in enumerate(path)]


__all__ = ["MAJOR_SCALE", "MINOR_SCALE", "STAY", "WINDOW_BEATS", "Chord", "cadence_constraints", "diatonic_chords", "key_scale",
           "estimate_chords"]
