"""The session builder's view of a generator: :class:`ClipRequest` in, :class:`Candidate` out.

A :class:`ClipEngine` turns a request (emotion, seconds, tempo, key, seed) into a candidate
cheaply, and renders the one candidate the builder keeps into audio. Keeping the two apart
lets the closed loop try several seeds but render each clip once (rendering is the
expensive part). The helpers here (:func:`conform`, :func:`trim`, SoundFont rendering) are
shared by every engine; the registry is :mod:`emomusic.session.engines`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Protocol, runtime_checkable

import numpy as np

from emomusic.emotion import Emotion
from emomusic.errors import EmomusicError
from emomusic.piece import KeySignature, Piece, Tempo

@dataclass(frozen=True)
class ClipRequest:
    index: int  # 1-based clip number
    emotion: Emotion
    seconds: float  # audio needed, including the crossfade tail
    tempo: float
    key: KeySignature
    seed: int
    bars_wanted: int | None = None  # whole phrases fitted to the clip (emomusic.session.phrasing)
    form: object = None  # the clip's emomusic.form.FormPlan (engines that take form= follow it)

    @property
    def beats(self) -> float:
        return self.seconds * self.tempo / 60.0

    def bars(self, bar_beats: float = 4.0) -> int:
        """Bars to ask an engine for: the fitted phrases' bars when set, else enough for
        ``seconds`` plus one spare bar, so a piece whose last bar is sparse or empty still
        covers the clip (it is trimmed anyway)."""
        if self.bars_wanted is not None:
            return int(self.bars_wanted)
        return max(1, int(math.ceil(self.beats / bar_beats - 1e-9))) + 1


@dataclass
class Candidate:
    piece: Piece | None  # the clip's score (written as MIDI), if the engine has one
    measure_piece: Piece | None = None  # what the estimator measures (default: piece)
    info: dict = field(default_factory=dict)

    @property
    def measured_piece(self) -> Piece | None:
        """The piece the closed loop measures: ``measure_piece``, else ``piece``."""
        return self.measure_piece if self.measure_piece is not None else self.piece


@runtime_checkable
class ClipEngine(Protocol):
    name: str
    measured_on: str  # "piece" | "melody": what the closed loop measures

    def check(self) -> None:
        """Raise EmomusicError if the engine cannot run (missing module or checkpoint)."""

    def generate(self, request: ClipRequest) -> Candidate: ...

    def render(self, candidate: Candidate, request: ClipRequest, sample_rate: int) -> np.ndarray:
        """Audio ``(frames, 2)`` float32 at ``sample_rate`` for the kept candidate."""


# --------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------


def _major_equivalent(key: KeySignature) -> int:
    return key.tonic % 12 if key.mode == "major" else (key.tonic + 3) % 12


def conform(piece: Piece, tempo: float, key: KeySignature) -> Piece:
    """The piece at the plan's tempo, moved to the plan's key signature.

    The tempo map becomes one tempo (note positions are in beats, so only the speed
    changes). If the piece's key is known (or, failing that, estimated), it is transposed
    by the smallest interval that gives it the plan's key signature (a piece in C major
    for a plan in A minor is left in place: same signature); the key is relabelled."""
    src = piece.key
    if src is None and piece.notes:
        from emomusic.attributes import estimate_key

        tonic, mode, _, _ = estimate_key(piece.notes)
        src = KeySignature(tonic, mode)
    out = piece
    if src is not None:
        shift = (_major_equivalent(key) - _major_equivalent(src)) % 12
        if shift > 6:
            shift -= 12
        pitched = [n.pitch for t in piece.tracks if not t.is_drum for n in t.notes]
        if shift and pitched and (min(pitched) + shift < 0 or max(pitched) + shift > 127):
            shift = shift - 12 if shift > 0 else shift + 12
        if shift:
            out = out.transposed(shift)
    return replace(
        out,
        tempos=[Tempo(float(tempo), 0.0)],
        keys=[KeySignature(key.tonic % 12, key.mode, 0.0)],
        time_signatures=[replace(out.time_signature, beat=0.0)],
        markers=[],
    )


def trim(piece: Piece, end_beat: float) -> Piece:
    """Notes starting before ``end_beat``, cut so none sounds past it; later events dropped."""
    tracks = []
    for t in piece.tracks:
        notes = []
        for n in t.notes:
            if n.start >= end_beat - 1e-6:
                continue
            if n.end > end_beat:
                n = replace(n, duration=max(1e-3, end_beat - n.start))
            notes.append(n)
        tracks.append(replace(t, notes=notes))
    return replace(
        piece,
        tracks=tracks,
        tempos=[t for t in piece.tempos if t.beat < end_beat] or piece.tempos[:1],
        keys=[k for k in piece.keys if k.beat < end_beat],
        time_signatures=[t for t in piece.time_signatures if t.beat < end_beat] or piece.time_signatures[:1],
        markers=[m for m in piece.markers if m.beat < end_beat],
    )


def check_soundfont(soundfont=None) -> None:
    """Fail early (before any generation) on a missing or unreadable SoundFont."""
    try:
        from emomusic.render import default_soundfont
        from emomusic.sf2 import load_soundfont
    except ImportError as exc:
        raise EmomusicError(f"SoundFont rendering is not available (emomusic.render: {exc})") from None
    load_soundfont(soundfont if soundfont is not None else default_soundfont())


def soundfont_render(piece: Piece, sample_rate: int, soundfont=None, reverb: float = 0.0,
                     synth: str = "auto", seconds: float | None = None) -> np.ndarray:
    """The piece through the SoundFont player ``synth`` (emomusic.render: numpy, fluidsynth or
    auto), with ``reverb`` (0..1, emomusic.audio.room_reverb: its 2 s tail is cut by the
    caller's fit_length) on the mix. ``seconds``: the audio the caller keeps (the clip and its
    crossfade tail, ClipRequest.seconds): nothing after it (+2 frames) is rendered."""
    try:
        from emomusic.render import render_piece
    except ImportError as exc:
        raise EmomusicError(f"SoundFont rendering is not available (emomusic.render: {exc})") from None
    from emomusic.audio import to_stereo

    limit = None if seconds is None else int(math.ceil(float(seconds) * sample_rate)) + 2
    return to_stereo(render_piece(piece, soundfont=soundfont, sample_rate=sample_rate, reverb=float(reverb), synth=synth,
                                  max_frames=limit))
