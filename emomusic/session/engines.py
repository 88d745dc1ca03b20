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
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Protocol, runtime_checkable

import numpy as np

from emomusic.emotion import Emotion
from emomusic.errors import CheckpointError, EmomusicError
from emomusic.piece import KeySignature, Note, Piece, Tempo, TimeSignature, Track

BACKENDS = ("symbolic", "melody", "musicgen", "rules")


@dataclass(frozen=True)
class ClipRequest:
    index: int  # 1-based clip number
    emotion: Emotion
    seconds: float  # audio needed, including the crossfade tail
    tempo: float
    key: KeySignature
    seed: int

    @property
    def beats(self) -> float:
        return self.seconds * self.tempo / 60.0

    def bars(self, bar_beats: float = 4.0) -> int:
        """Bars to ask an engine for: enough for ``seconds`` plus one spare bar, so a piece
        whose last bar is sparse or empty still covers the clip (it is trimmed anyway)."""
        return max(1, int(math.ceil(self.beats / bar_beats - 1e-9))) + 1


@dataclass
class Candidate:
    piece: Piece | None  # the clip's score (written as MIDI), if the engine has one
    measure_piece: Piece | None = None  # what the estimator measures (default: piece)
    info: dict = field(default_factory=dict)

    @property
    def measured(self) -> Piece | None:
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


def soundfont_render(piece: Piece, sample_rate: int, soundfont=None) -> np.ndarray:
    try:
        from emomusic.render import render_piece
    except ImportError as exc:
        raise EmomusicError(f"SoundFont rendering is not available (emomusic.render: {exc})") from None
    from emomusic.audio import to_stereo

    return to_stereo(render_piece(piece, soundfont=soundfont, sample_rate=sample_rate))


# --------------------------------------------------------------------------------------
# The rule-based sketch engine (no model; deterministic)
# --------------------------------------------------------------------------------------

_MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
_MINOR_SCALE = (0, 2, 3, 5, 7, 8, 10)
_PROGRESSIONS = {
    "major": ((0, 4, 5, 3), (0, 3, 4, 0), (0, 5, 3, 4), (0, 3, 0, 4)),  # scale degrees of chord roots
    "minor": ((0, 5, 2, 6), (0, 3, 4, 0), (0, 5, 3, 4), (0, 6, 5, 4)),
}


def rules_piece(emotion: Emotion, bars: int, tempo: float, key: KeySignature, seed: int) -> Piece:
    """A small two-part arrangement (melody + chords) following the attribute template:
    density and velocity from arousal, register from valence, the plan's key and tempo."""
    from emomusic.attributes import template

    rng = np.random.default_rng(seed)
    tmpl = template(emotion)
    scale = _MAJOR_SCALE if key.mode == "major" else _MINOR_SCALE
    tonic = key.tonic % 12
    prog = _PROGRESSIONS[key.mode][int(rng.integers(len(_PROGRESSIONS[key.mode])))]
    centre = int(round(tmpl.register)) + (0 if tmpl.octave_shift == 0 else 0)
    # per-beat subdivision from the template density (notes per beat of the melody)
    sub = 1 if tmpl.note_density < 1.2 else 2 if tmpl.note_density < 2.2 else 4
    vel = int(np.clip(tmpl.velocity, 30, 115))
    spread = max(2.0, tmpl.pitch_spread)

    def scale_pitch(deg: int, base: int) -> int:
        octave, d = divmod(deg, 7)
        return base + 12 * octave + scale[d]

    base = 12 * ((centre - tonic) // 12) + tonic  # tonic in the melody register
    melody, chords = [], []
    deg = 0
    for bar in range(bars):
        root = prog[bar % len(prog)]
        chord_degs = [root, root + 2, root + 4]
        start = bar * 4.0
        for d in chord_degs:
            chords.append(Note(scale_pitch(d, base - 12 - (12 if tmpl.register < 62 else 0)), start, 3.9, max(1, vel - 18)))
        beat_len = 1.0 / sub
        for k in range(4 * sub):
            if rng.random() < 0.12 and k % sub:  # a few rests inside beats
                continue
            on_beat = k % sub == 0
            if on_beat and rng.random() < 0.6:
                target = min(chord_degs, key=lambda c: abs(c - deg))  # lean on chord tones
                deg = target + 7 * int(round((deg - target) / 7))
            else:
                deg += int(rng.choice([-2, -1, -1, 1, 1, 2]))
            lim = max(2, int(round(spread / 1.7)))
            deg = int(np.clip(deg, -lim, lim + 2))
            pitch = scale_pitch(deg, base)
            accent = 8 if on_beat else 0
            melody.append(Note(int(np.clip(pitch, 21, 108)), start + k * beat_len, beat_len * tmpl.articulation, max(1, min(127, vel + accent))))
    return Piece(
        tracks=[Track("Melody", 0, False, melody, 0), Track("Chords", 0, False, chords, 1)],
        tempos=[Tempo(float(tempo))],
        keys=[KeySignature(tonic, key.mode)],
        time_signatures=[TimeSignature(4, 4)],
        title=f"rules {emotion.marker_text()}",
    )


def synth_render(piece: Piece, sample_rate: int, tail_seconds: float = 1.0) -> np.ndarray:
    """A small additive piano-like synth (3 harmonics, exponential decay), stereo."""
    notes = [n for t in piece.tracks if not t.is_drum for n in t.notes]
    total = piece.duration_seconds + tail_seconds
    out = np.zeros(int(math.ceil(total * sample_rate)) + 1, dtype=np.float32)
    cache: dict[tuple[int, int], np.ndarray] = {}
    for n in notes:
        t0 = piece.beat_to_seconds(n.start)
        t1 = piece.beat_to_seconds(n.end)
        length = int((t1 - t0 + 0.25) * sample_rate)
        if length <= 0:
            continue
        ck = (n.pitch, length)
        wave = cache.get(ck)
        if wave is None:
            t = np.arange(length, dtype=np.float32) / sample_rate
            f = 440.0 * 2.0 ** ((n.pitch - 69) / 12.0)
            w = np.sin(2 * np.pi * f * t) + 0.4 * np.sin(4 * np.pi * f * t) + 0.15 * np.sin(6 * np.pi * f * t)
            env = np.exp(-t * (1.5 + f / 600.0))
            rel = int(0.25 * sample_rate)
            env[-rel:] *= np.linspace(1.0, 0.0, rel, dtype=np.float32)
            atk = min(length, int(0.005 * sample_rate))
            env[:atk] *= np.linspace(0.0, 1.0, atk, dtype=np.float32)
            wave = (w * env).astype(np.float32)
            cache[ck] = wave
        i0 = int(t0 * sample_rate)
        seg = out[i0 : i0 + length]
        seg += wave[: len(seg)] * (n.velocity / 127.0) * 0.15
    peak = float(np.max(np.abs(out))) if out.size else 0.0
    if peak > 0.95:
        out *= 0.95 / peak
    return np.repeat(out[:, None], 2, axis=1)


class RulesEngine:
    """Model-free sketch engine: :func:`rules_piece`, rendered through the SoundFont when
    emomusic.render and a SoundFont are available (``synth="auto"``), else by the built-in
    additive synth (``synth="builtin"``)."""

    name = "rules"
    measured_on = "piece"

    def __init__(self, soundfont=None, synth: str = "auto", use_soundfont: bool | None = None):
        if use_soundfont is not None:  # older spelling
            synth = "soundfont" if use_soundfont else "builtin"
        if synth not in ("auto", "soundfont", "builtin"):
            raise EmomusicError(f"synth must be auto, soundfont or builtin, got {synth!r}")
        self.soundfont = soundfont
        self.synth = synth

    def _soundfont_ok(self) -> bool:
        try:
            from emomusic.render import default_soundfont

            if self.soundfont is None:
                default_soundfont()
            return True
        except (ImportError, EmomusicError):
            return False

    def check(self) -> None:
        if self.synth == "auto":
            self.synth = "soundfont" if (self.soundfont is not None or self._soundfont_ok()) else "builtin"
        if self.synth == "soundfont":
            check_soundfont(self.soundfont)

    def generate(self, request: ClipRequest) -> Candidate:
        piece = rules_piece(request.emotion, request.bars(), request.tempo, request.key, request.seed)
        return Candidate(piece, info={"engine": "rules", "synth": self.synth})

    def render(self, candidate: Candidate, request: ClipRequest, sample_rate: int) -> np.ndarray:
        if self.synth == "auto":
            self.check()
        if self.synth == "soundfont":
            return soundfont_render(candidate.piece, sample_rate, self.soundfont)
        return synth_render(candidate.piece, sample_rate)


# --------------------------------------------------------------------------------------
# Adapters over the project's engines (imported lazily)
# --------------------------------------------------------------------------------------


def _import(module: str, what: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise EmomusicError(f"the {what} is not available in this install ({module}: {exc})") from None


class SymbolicEngine:
    """``emomusic.compose.compose`` (VAE + diffusion-GAN), rendered through the SoundFont."""

    name = "symbolic"
    measured_on = "piece"

    def __init__(self, model=None, soundfont=None, steps: int | None = None):
        self.checkpoint = model
        self.soundfont = soundfont
        self.steps = steps

    def check(self) -> None:
        mod = _import("emomusic.compose", "symbolic engine (emomusic.compose)")
        try:
            engine_cls = getattr(mod, "ComposeEngine")
            getattr(mod, "compose")
        except (AttributeError, ImportError) as exc:
            raise EmomusicError(f"emomusic.compose is not usable here ({exc})") from None
        check_soundfont(self.soundfont)
        try:
            engine_cls.load(self.checkpoint)  # loads once (cached); a missing checkpoint fails here
        except CheckpointError as exc:
            raise CheckpointError(f"{exc} (train it with 'emomusic train vae' and 'emomusic train diffgan', "
                                  "or use --backend rules)") from None

    def generate(self, request: ClipRequest) -> Candidate:
        from emomusic.compose import compose

        kwargs = dict(bars=request.bars(), n=1, seed=request.seed, tempo=request.tempo, key=request.key)
        if self.checkpoint is not None:
            kwargs["checkpoint"] = self.checkpoint
        if self.steps is not None:
            kwargs["steps"] = self.steps
        piece = compose(request.emotion, **kwargs)[0]
        return Candidate(piece, info={"engine": "compose"})

    def render(self, candidate: Candidate, request: ClipRequest, sample_rate: int) -> np.ndarray:
        return soundfont_render(candidate.piece, sample_rate, self.soundfont)


_METER_BEATS = {"4/4": 4.0, "2/4": 2.0, "3/4": 3.0, "2/2": 4.0, "6/8": 3.0, "3/8": 1.5, "9/8": 4.5, "12/8": 6.0}


def _melody_piece(emotion: Emotion, request: ClipRequest, checkpoint=None, meter: str = "4/4") -> tuple[Piece, str]:
    """One melody covering the request: the meter is fixed (one meter for the whole
    session, so clips do not alternate between waltz and march) and sets the bar count."""
    from emomusic.melody import generate_melodies

    kwargs = dict(bars=request.bars(_METER_BEATS.get(meter, 4.0)), n=1, seed=request.seed, tempo=request.tempo,
                  meter=meter)
    if checkpoint is not None:
        kwargs["checkpoint"] = checkpoint
    try:
        tune = generate_melodies(emotion, key=request.key, **kwargs)[0]
    except (TypeError, EmomusicError):
        # an engine that takes the key in another form: generate freely, conform() transposes
        tune = generate_melodies(emotion, **kwargs)[0]
    return tune.piece, getattr(tune, "abc", "")


class MelodyEngine:
    """``emomusic.melody.generate_melodies`` (ABC), voiced by the SoundFont."""

    name = "melody"
    measured_on = "piece"

    def __init__(self, model=None, soundfont=None, meter: str = "4/4"):
        if meter not in _METER_BEATS:
            raise EmomusicError(f"meter must be one of {', '.join(_METER_BEATS)}, got {meter!r}")
        self.checkpoint = model
        self.soundfont = soundfont
        self.meter = meter

    def check(self) -> None:
        mod = _import("emomusic.melody", "melody engine (emomusic.melody)")
        if not hasattr(mod, "generate_melodies"):
            raise EmomusicError("emomusic.melody has no generate_melodies() function")
        try:
            from emomusic.melody.api import default_checkpoint

            folder = Path(self.checkpoint) if self.checkpoint is not None else default_checkpoint()
        except ImportError:
            folder = None
        if folder is not None and not (Path(folder) / "config.json").is_file():
            raise CheckpointError(f"no melody checkpoint at {folder} (train one with 'emomusic train melody')")
        check_soundfont(self.soundfont)

    def generate(self, request: ClipRequest) -> Candidate:
        piece, abc = _melody_piece(request.emotion, request, self.checkpoint, self.meter)
        return Candidate(piece, info={"engine": "melody", "abc": abc, "meter": self.meter})

    def render(self, candidate: Candidate, request: ClipRequest, sample_rate: int) -> np.ndarray:
        return soundfont_render(candidate.piece, sample_rate, self.soundfont)


class MusicGenEngine:
    """``emomusic.clip.generate_clip`` (MusicGen + optional LoRA).

    With a MusicGen-Melody checkpoint each clip is conditioned on a melody generated first
    (melody engine, or the rule-based line when no melody checkpoint is installed); the
    closed loop measures and re-seeds that melody, and the audio is generated once, for the
    kept melody. A plain MusicGen checkpoint follows the text prompt only: there is nothing
    symbolic to measure, so its clips are not measured (``measured_on = "none"``) and the
    session has no MIDI. The model is loaded once per build."""

    name = "musicgen"

    def __init__(self, model=None, adapter=None, melody_model=None):
        if model is None:
            raise EmomusicError("the musicgen backend needs --model PATH (a local MusicGen checkpoint folder)")
        self.model = model
        self.adapter = adapter
        self.melody_model = melody_model
        self.is_melody: bool | None = None
        self._loaded = None
        self._melody_ok: bool | None = None

    @property
    def measured_on(self) -> str:
        return "melody" if self.is_melody else "none"

    def check(self) -> None:
        from pathlib import Path

        mod = _import("emomusic.clip", "MusicGen engine (emomusic.clip)")
        if not hasattr(mod, "generate_clip"):
            raise EmomusicError("emomusic.clip has no generate_clip() function")
        if isinstance(self.model, (str, Path)):
            from emomusic.clip.loading import check_model_folder

            _, model_type = check_model_folder(self.model)
            self.is_melody = model_type == "musicgen_melody"
        else:
            self.is_melody = bool(getattr(self.model, "is_melody", False))
        if self.adapter is not None and isinstance(self.adapter, (str, Path)) and not Path(self.adapter).is_dir():
            raise CheckpointError(f"LoRA adapter folder not found: {self.adapter}")

    def generate(self, request: ClipRequest) -> Candidate:
        if self.is_melody is None:
            self.check()
        if not self.is_melody:
            return Candidate(None, info={"engine": "musicgen", "conditioning": "text"})
        piece = None
        if self._melody_ok is not False:
            try:
                piece, _ = _melody_piece(request.emotion, request, self.melody_model)
                self._melody_ok = True
            except (ImportError, CheckpointError):
                self._melody_ok = False
        source = "melody"
        if piece is None:  # no melody model: condition on the rule-based melody line
            full = rules_piece(request.emotion, request.bars(), request.tempo, request.key, request.seed)
            piece = replace(full, tracks=full.tracks[:1])
            source = "rules"
        return Candidate(piece, measure_piece=piece,
                         info={"engine": "musicgen", "conditioning": "text+melody", "melody_source": source})

    def render(self, candidate: Candidate, request: ClipRequest, sample_rate: int) -> np.ndarray:
        from emomusic.audio import resample, to_stereo
        from emomusic.clip import generate_clip

        if self._loaded is None:
            from emomusic.clip.api import resolve_model

            self._loaded = resolve_model(self.model, adapter=self.adapter)
        audio, sr = generate_clip(
            request.emotion,
            model=self._loaded,
            seconds=float(request.seconds),
            melody=candidate.piece if self.is_melody else None,
            seed=request.seed,
        )
        return to_stereo(resample(audio, int(sr), int(sample_rate)))


def make_engine(backend: str, model=None, adapter=None, soundfont=None) -> ClipEngine:
    if backend == "symbolic":
        return SymbolicEngine(model=model, soundfont=soundfont)
    if backend == "melody":
        return MelodyEngine(model=model, soundfont=soundfont)
    if backend == "musicgen":
        return MusicGenEngine(model=model, adapter=adapter)
    if backend == "rules":
        return RulesEngine(soundfont=soundfont)
    raise EmomusicError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")


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
    "Candidate",
    "ClipEngine",
    "ClipRequest",
    "MelodyEngine",
    "MusicGenEngine",
    "RulesEngine",
    "SymbolicEngine",
    "attribute_estimate",
    "conform",
    "default_estimator",
    "make_engine",
    "rules_piece",
    "synth_render",
    "trim",
]
