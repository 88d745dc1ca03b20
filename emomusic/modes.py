"""The mode control: notes moved to a major or minor mode, as clearly as an emotion asks.

The opt-in ``"mode"`` control of :func:`emomusic.attributes.apply_template` lives here:

* :func:`to_mode` / :func:`remap_degrees`: the parallel-mode re-mapping (the mode-defining
  degrees move a semitone: :data:`MAJOR_TO_MINOR`, :data:`MINOR_TO_MAJOR`, ...);
* :func:`mode_margin`: how clearly Krumhansl-Schmuckler key finding
  (:func:`emomusic.attributes.key_correlations`) hears a mode;
* :func:`mode_mapping` / :func:`set_mode`: the re-mapping heard most clearly in a target mode;
* :func:`clarify_mode`: chromatic notes made diatonic, longest first, until the mode is clear;
* :func:`template_mode`: both steps for an emotion (the margin asked for grows with |valence|).

Key finding and the template stay in :mod:`emomusic.attributes`; this module reads them, and
``apply_template`` imports this module when the control is asked for (no import cycle).
Numpy only: no torch, no music21.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Iterable, Sequence

import numpy as np

from emomusic.attributes import HIGHEST_PITCH, LOWEST_PITCH, key_correlations, pitch_class_histogram, template
from emomusic.emotion import Emotion
from emomusic.errors import EmomusicError
from emomusic.piece import Note

# Parallel-mode maps, in semitones above the tonic. Major -> natural minor lowers scale
# degrees 3, 6 and 7 (E, A, B -> Eb, Ab, Bb in C). The 7th is lowered too (natural, not
# harmonic minor): with the leading tone the dominant stays a *major* triad (G-B-D), a
# major-key cue in every bar it sounds, and Aeolian minor is the usual minor of the pop
# piano music the engines learn from (EMOPIA). On the compose benchmark the two choices
# tie on emotion accuracy; natural minor is measured as minor slightly more often
# (docs/attributes.md). Minor -> major raises b3, b6 and b7; a minor piece's raised 6th/7th
# (melodic/harmonic minor) are already major-scale degrees and stay. Chromatic notes
# (pitch classes outside the source scale) are left where they are: each is either
# already in the target scale or a chromatic neighbour of it.
MAJOR_TO_MINOR = {4: 3, 9: 8, 11: 10}
MINOR_TO_MAJOR = {3: 4, 8: 9, 10: 11}
MAJOR_TO_HARMONIC_MINOR = {4: 3, 9: 8}  # the leading tone stays: harmonic minor
NATURAL_TO_HARMONIC_MINOR = {10: 11}  # raise the 7th of a minor key


def to_mode(notes: Sequence[Note], tonic: int, source: str, target: str) -> list[Note]:
    """``notes`` re-mapped from the ``source`` mode to the parallel ``target`` mode around ``tonic``.

    Only the three mode-defining degrees move, by one semitone (see :data:`MAJOR_TO_MINOR`,
    :data:`MINOR_TO_MAJOR`); a note pushed off the piano (21..108) moves an octave back in.
    Two notes of one list that land on the same pitch and onset are merged (the longer,
    louder one is kept), so a chromatic note and its moved neighbour do not double.
    Returns a new list (notes are immutable); the same notes when the modes agree.
    """
    for m in (source, target):
        if m not in ("major", "minor"):
            raise EmomusicError(f"mode must be 'major' or 'minor', got {m!r}")
    if source == target:
        return list(notes)
    table = MAJOR_TO_MINOR if source == "major" else MINOR_TO_MAJOR
    return remap_degrees(notes, tonic, table)


def remap_degrees(notes: Sequence[Note], tonic: int, table: dict[int, int]) -> list[Note]:
    """``notes`` with each scale degree ``d`` (semitones above ``tonic``) in ``table`` moved to
    ``table[d]`` in the same octave; the merging and range rules of :func:`to_mode`."""
    return _moved(notes, tonic, table, range(len(notes)))


def _moved(notes: Sequence[Note], tonic: int, table: dict[int, int], which: Iterable[int]) -> list[Note]:
    """``notes`` with the notes at indices ``which`` whose degree is in ``table`` moved (the
    rules of :func:`remap_degrees`); notes landing on the same pitch and onset are merged."""
    which = set(which)
    out: list[Note] = []
    seen: dict[tuple[int, float], int] = {}
    for i, n in enumerate(notes):
        step = table.get((n.pitch - tonic) % 12) if i in which else None
        if step is not None:
            pitch = n.pitch + step - (n.pitch - tonic) % 12
            if pitch < LOWEST_PITCH:
                pitch += 12
            elif pitch > HIGHEST_PITCH:
                pitch -= 12
            n = replace(n, pitch=pitch)
        k = (n.pitch, round(n.start, 6))
        if k in seen:
            j = seen[k]
            old = out[j]
            out[j] = replace(old, duration=max(old.duration, n.duration), velocity=max(old.velocity, n.velocity))
            continue
        seen[k] = len(out)
        out.append(n)
    return out


# Chromatic degrees -> the scale degree a step below, for :func:`clarify_mode`: chromatic and
# borrowed tones resolve downward, as mode-mixture tones do in common practice (b6 -> 5,
# b3 -> 2, b7 -> 6; b2 -> 1, #4 -> 4). A minor key's scale is natural plus harmonic minor
# (its raised 7th is in the scale): its chromatic degrees are b2, 3, #4 and 6 (-> 1, b3, 4, b6).
# Resolving upward instead (b3 -> 3, b6 -> 6, b7 -> 7) was measured on the compose sweep and
# was heard less clearly in the mode (docs/attributes.md).
CHROMATIC_TO_MAJOR = {1: 0, 3: 2, 6: 5, 8: 7, 10: 9}
CHROMATIC_TO_MINOR = {1: 0, 4: 3, 6: 5, 9: 8}
CLARIFY_BATCHES = 10  # chromatic notes are moved in (at most) this many batches, margin checked after each


def clarify_mode(notes: Sequence[Note], tonic: int, mode: str, clear: float) -> list[Note]:
    """``notes`` made diatonic in ``mode`` around ``tonic`` until key finding hears ``mode``
    with a margin of at least ``clear`` (:func:`mode_margin`), or no chromatic note is left.

    Chromatic notes (degrees in :data:`CHROMATIC_TO_MAJOR` / :data:`CHROMATIC_TO_MINOR`) move a
    semitone down to the scale degree below, the longest first (they colour the harmony
    most; short passing notes go last), in :data:`CLARIFY_BATCHES` batches with the margin
    checked after each; if the margin is never reached, the batch count that heard ``mode``
    most clearly is kept (none, when moving notes does not help: a diatonic set can also be
    heard as the relative key). Notes landing on the same pitch and onset are merged; pitches
    stay on the piano. Returns a new list (the same notes when nothing is to be gained).
    """
    table, which = _clarify_moves(notes, tonic, mode, clear)
    return _moved(notes, tonic, table, which)


def _clarify_moves(notes: Sequence[Note], tonic: int, mode: str, clear: float) -> tuple[dict[int, int], list[int]]:
    """The table and the note indices :func:`clarify_mode` moves."""
    if mode not in ("major", "minor"):
        raise EmomusicError(f"mode must be 'major' or 'minor', got {mode!r}")
    table = CHROMATIC_TO_MAJOR if mode == "major" else CHROMATIC_TO_MINOR
    best = mode_margin(notes, mode) if notes else clear
    if best >= clear:
        return table, []
    order = sorted((i for i, n in enumerate(notes) if (n.pitch - tonic) % 12 in table),
                   key=lambda i: (-notes[i].duration, notes[i].start, notes[i].pitch))
    batch = max(1, math.ceil(len(order) / CLARIFY_BATCHES))
    best_end = 0
    for end in range(batch, len(order) + batch, batch):
        margin = mode_margin(_moved(notes, tonic, table, order[:end]), mode)
        if margin > best:
            best, best_end = margin, end
            if margin >= clear:
                break
    return table, order[:best_end]


CLEAR_MODE_MARGIN = 0.1  # r(best key of the mode) - r(best key of the other mode) read as "clearly" that mode
MODE_CLARITY_PER_VALENCE = 0.4  # the template's mode control asks for a margin of 0.4 |valence|
MIN_MODE_STRENGTH = 0.1  # below this template mode strength (|valence| < 0.04) the mode control leaves the mode alone
MODE_CHANGE_COST = 0.1  # margin given up per share of notes moved, when choosing how to re-map
MODE_KEY_WINDOW = 0.15  # "home" keys of a piece, tried first: r within this of the best key's


def mode_margin(notes: Sequence[Note], mode: str) -> float:
    """How clearly Krumhansl-Schmuckler key finding hears ``mode``: r(best key of ``mode``) minus
    r(best key of the other mode) (> 0: heard in ``mode``)."""
    return _margin(key_correlations(pitch_class_histogram(notes)), 0 if mode == "major" else 1)


def _margin(r: np.ndarray, row: int) -> float:
    """Margin of mode ``row`` (0 major, 1 minor) in key correlations ``r`` (:func:`key_correlations`)."""
    return float(r[row].max() - r[1 - row].max())


def mode_mapping(
    notes: Sequence[Note], target: str, clear: float = CLEAR_MODE_MARGIN
) -> tuple[int, dict[int, int] | None, int]:
    """How to move ``notes`` to the ``target`` mode: ``(tonic, table, heard_tonic)``.

    ``table`` None means "keep the notes": they are already clearly in ``target`` (margin >=
    ``clear``, :func:`mode_margin`) or no re-mapping is heard more clearly in it. Otherwise
    ``remap_degrees(notes, tonic, table)`` is the re-mapping to apply: a parallel-mode
    re-mapping around a source key (major -> minor as natural or harmonic minor, the leading
    tone kept; minor -> major; for a minor target also natural -> harmonic minor on a minor
    key). Each candidate scores its margin in ``target`` less :data:`MODE_CHANGE_COST` per
    share of notes moved (the fewest changes win a near tie).

    The piece's home keys (correlation within :data:`MODE_KEY_WINDOW` of its best key) are
    tried first; if no re-mapping around them is heard in ``target`` at all, every key is
    tried. A clear C major piece thus becomes C minor, while generated material that sits
    between several keys still gets the re-mapping heard most clearly in ``target``.
    ``heard_tonic`` is the tonic of the best key of ``target`` afterwards (for the key signature).
    """
    if target not in ("major", "minor"):
        raise EmomusicError(f"mode must be 'major' or 'minor', got {target!r}")
    row = 0 if target == "major" else 1
    if not notes:
        return 0, None, 0
    r = key_correlations(pitch_class_histogram(notes))
    keep = _margin(r, row)
    if keep >= clear:
        return 0, None, int(np.argmax(r[row]))
    if target == "major":
        tables = [(1, MINOR_TO_MAJOR)]
    else:
        tables = [(0, MAJOR_TO_MINOR), (0, MAJOR_TO_HARMONIC_MINOR), (1, NATURAL_TO_HARMONIC_MINOR)]

    def search(keys):
        best = None  # (score, margin, tonic, table, heard)
        for flat in keys:
            m, tonic = divmod(int(flat), 12)
            for source_row, table in tables:
                if m != source_row:
                    continue
                moved = sum(((n.pitch - tonic) % 12) in table for n in notes) / len(notes)
                if moved == 0:
                    continue
                rc = key_correlations(pitch_class_histogram(remap_degrees(notes, tonic, table)))
                margin = _margin(rc, row)
                score = margin - MODE_CHANGE_COST * moved
                if best is None or score > best[0]:
                    best = (score, margin, tonic, table, int(np.argmax(rc[row])))
        return best

    home = search(np.flatnonzero(r.ravel() >= r.max() - MODE_KEY_WINDOW))
    if home is not None and home[1] > 0:
        return home[2:]
    found = [c for c in (home, search(range(24))) if c is not None and c[0] > keep]
    if not found:
        return 0, None, int(np.argmax(r[row]))
    return max(found, key=lambda c: c[0])[2:]


def template_mode(parts: Sequence[Sequence[Note]], emotion: Emotion) -> tuple[list[list[Note]], int, bool] | None:
    """The ``mode`` control for ``emotion`` over ``parts`` (the pitched tracks' notes, heard
    together): ``(new parts, heard tonic, changed)``, or None at a neutral valence (template
    ``mode_strength`` below ``MIN_MODE_STRENGTH``), where the mode is left alone.

    The control asks for a margin of ``MODE_CLARITY_PER_VALENCE * |valence|`` in the template's
    mode (0.1 at |v| = 0.25, 0.4 at |v| = 1): first the parallel-mode re-mapping of
    :func:`mode_mapping`, then, if the margin is still short, :func:`clarify_mode` around the
    tonic heard (chromatic notes made diatonic, longest first, only as many as needed).
    ``heard`` is the tonic of the best key of the mode afterwards (for the key signature)."""
    tpl = template(emotion)
    if tpl.mode_strength < MIN_MODE_STRENGTH:
        return None
    clear = MODE_CLARITY_PER_VALENCE * abs(emotion.valence)
    parts = [list(p) for p in parts]
    tonic, table, heard = mode_mapping([n for p in parts for n in p], tpl.mode, clear=clear)
    changed = table is not None
    if changed:
        parts = [remap_degrees(p, tonic, table) for p in parts]
    flat = [n for p in parts for n in p]
    table, which = _clarify_moves(flat, heard, tpl.mode, clear)
    if which:
        changed = True
        cuts = np.cumsum([0] + [len(p) for p in parts])
        which = np.asarray(which)
        parts = [_moved(p, heard, table, (which[(which >= lo) & (which < hi)] - lo).tolist())
                 for p, lo, hi in zip(parts, cuts[:-1], cuts[1:])]
        r = key_correlations(pitch_class_histogram([n for p in parts for n in p]))
        heard = int(np.argmax(r[0 if tpl.mode == "major" else 1]))
    return parts, heard, changed


def set_mode(notes: Sequence[Note], target: str, clear: float = CLEAR_MODE_MARGIN) -> tuple[list[Note], int]:
    """``notes`` moved to the ``target`` mode (:func:`mode_mapping`) and the tonic heard then."""
    tonic, table, heard = mode_mapping(notes, target, clear)
    return (list(notes) if table is None else remap_degrees(notes, tonic, table)), heard


__all__ = [
    "CHROMATIC_TO_MAJOR",
    "CHROMATIC_TO_MINOR",
    "CLARIFY_BATCHES",
    "CLEAR_MODE_MARGIN",
    "MAJOR_TO_HARMONIC_MINOR",
    "MAJOR_TO_MINOR",
    "MINOR_TO_MAJOR",
    "MIN_MODE_STRENGTH",
    "MODE_CHANGE_COST",
    "MODE_CLARITY_PER_VALENCE",
    "MODE_KEY_WINDOW",
    "NATURAL_TO_HARMONIC_MINOR",
    "clarify_mode",
    "mode_mapping",
    "mode_margin",
    "remap_degrees",
    "set_mode",
    "template_mode",
    "to_mode",
]
