"""Clip engines: the session builder's view of emomusic's generators.

A :class:`ClipEngine` turns a :class:`ClipRequest` (emotion, seconds, tempo, key, seed)
into a :class:`Candidate` cheaply, and renders the one candidate the builder keeps into
audio. Keeping the two apart lets the closed loop try several seeds but render each clip
once (rendering is the expensive part).

============ ===================================================== =========================
backend      candidate (what the estimator measures)                render
============ ===================================================== =========================
symbolic     ``emomusic.compose.compose`` -> Piece                  SoundFont (emomusic.render)
melody       ``emomusic.melody.generate_melodies`` -> Tune.piece    SoundFont (emomusic.render)
musicgen     the conditioning melody (Melody models; else nothing)  ``emomusic.clip.generate_clip``
rules        a rule-based arrangement built here (no model)         built-in additive synth
============ ===================================================== =========================

Each adapter imports its engine only when used. ``rules`` is the model-free sketch
engine (tests, previews, and the builder's own benchmark); it is deterministic per seed.

For ``musicgen`` the emotion is measured on the melody that conditions the audio: the
project's estimator is symbolic, and MusicGen follows the melody's chroma closely (tempo,
mode, register), so a melody off its waypoint is rejected before the costly audio step.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING, Callable

import numpy as np

from emomusic.emotion import Emotion
from emomusic.errors import CheckpointError, EmomusicError
from emomusic.piece import Piece
from emomusic.session.clip_engine import Candidate, ClipEngine, ClipRequest, check_soundfont, conform, soundfont_render, trim
from emomusic.session.model_engines import MelodyEngine, MusicGenEngine, SymbolicEngine
from emomusic.session.rules_engine import RulesEngine, rules_piece, synth_render

if TYPE_CHECKING:
    from emomusic.session.settings import BuildSettings

# The registry: backend name -> engine factory (model, adapter, soundfont). BuildSettings,
# the CLI's --backend choices and the contract tests (tests/session/test_engine_contract.py)
# all read it.
ENGINES: dict[str, Callable[..., ClipEngine]] = {
    "symbolic": lambda model, adapter, soundfont: SymbolicEngine(model=model, soundfont=soundfont),
    "melody": lambda model, adapter, soundfont: MelodyEngine(model=model, soundfont=soundfont),
    "musicgen": lambda model, adapter, soundfont: MusicGenEngine(model=model, adapter=adapter),
    "rules": lambda model, adapter, soundfont: RulesEngine(soundfont=soundfont),
}
BACKENDS = tuple(ENGINES)
DEFAULT_BACKEND = "symbolic"
FALLBACK_BACKEND = "rules"  # model-free: runs on a fresh install


def make_engine(backend: str, model=None, adapter=None, soundfont=None) -> ClipEngine:
    """The registry's engine for ``backend`` (nothing is loaded until ``check()``)."""
    factory = ENGINES.get(backend)
    if factory is None:
        raise EmomusicError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
    return factory(model, adapter, soundfont)


def engine_for(settings: "BuildSettings") -> ClipEngine:
    return make_engine(settings.backend, model=settings.model, adapter=settings.adapter, soundfont=settings.soundfont)


def with_fallback(settings: "BuildSettings") -> tuple["BuildSettings", str | None]:
    """``settings`` when their backend can run; when the *default* backend was asked for
    without a model and cannot run here (its module or shipped checkpoint is missing), the
    same settings with the model-free backend, and a one-line warning saying why. An
    explicit model, or another backend, is never swapped: a problem there is an error."""
    if settings.backend != DEFAULT_BACKEND or settings.model is not None:
        return settings, None
    try:
        engine_for(settings).check()
    except EmomusicError as exc:
        return replace(settings, backend=FALLBACK_BACKEND), (
            f"{DEFAULT_BACKEND} backend unavailable ({exc}); using --backend {FALLBACK_BACKEND}")
    return settings, None


# --------------------------------------------------------------------------------------
# Measuring a clip's emotion
# --------------------------------------------------------------------------------------


def attribute_estimate(piece: Piece) -> Emotion:
    """A transparent fallback estimate that inverts the attribute template: arousal from
    tempo, loudness and note rate; valence from mode evidence and register. Used only when
    the fitted estimator (checkpoints/estimator) is missing; the build records which ran."""
    from emomusic.attributes import TEMPO_CENTRE, TEMPO_OCTAVES_PER_AROUSAL, measure

    a = measure(piece)
    ar_tempo = math.log2(max(a.tempo_bpm, 1.0) / TEMPO_CENTRE) / TEMPO_OCTAVES_PER_AROUSAL
    ar_vel = (a.velocity - 72.0) / 28.0
    ar_rate = math.log2(max(a.onsets_per_second, 0.05) / 2.5)
    arousal = 0.5 * ar_tempo + 0.3 * ar_vel + 0.2 * ar_rate
    valence = 0.8 * (2.0 * a.major_prob - 1.0) + 0.2 * (a.register - 64.0) / 5.0
    return Emotion(float(np.clip(valence, -1, 1)), float(np.clip(arousal, -1, 1)))


def default_estimator() -> tuple[Callable[[Piece], Emotion], str]:
    """The project's estimator if its parameters are installed, else :func:`attribute_estimate`."""
    try:
        from emomusic.estimator import estimate_emotion, load_estimator

        model = load_estimator()
    except (ImportError, CheckpointError, EmomusicError):
        return attribute_estimate, "attribute-template inverse (estimator checkpoint missing)"
    return (lambda piece: estimate_emotion(piece, model)), "emomusic.estimator (checkpoints/estimator)"


__all__ = [
    "BACKENDS",
    "ENGINES",
    "Candidate",
    "ClipEngine",
    "ClipRequest",
    "MelodyEngine",
    "MusicGenEngine",
    "RulesEngine",
    "SymbolicEngine",
    "attribute_estimate",
    "check_soundfont",
    "conform",
    "default_estimator",
    "engine_for",
    "make_engine",
    "rules_piece",
    "soundfont_render",
    "synth_render",
    "trim",
    "with_fallback",
]
