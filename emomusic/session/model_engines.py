"""Adapters over the project's engines (each imported lazily, when the backend is used)."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import numpy as np

from emomusic.emotion import Emotion
from emomusic.errors import CheckpointError, EmomusicError
from emomusic.piece import Piece
from emomusic.session.clip_engine import Candidate, ClipRequest, check_soundfont, soundfont_render
from emomusic.session.phrasing import with_form, with_plain_settings
from emomusic.session.rules_engine import rules_piece

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
    phrased = True  # asks for whole phrases (emomusic.session.phrasing)
    form_kind = "piece"
    bar_beats = 4.0

    def __init__(self, model=None, soundfont=None, steps: int | None = None):
        self.checkpoint = model
        self.soundfont = soundfont
        self.reverb = 0.0  # room reverb amount on the render (engine_for sets BuildSettings.reverb)
        self.player = "auto"  # the SoundFont player (engine_for sets BuildSettings.synth)
        self.steps = steps
        self._drafts: dict = {}  # ClipRequest -> sampled latents (prefetch), used by generate

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

    def _call(self, request: ClipRequest) -> tuple[dict, bool]:
        """compose's arguments for ``request``, and whether they include its form plan."""
        from emomusic.compose import compose

        kwargs = dict(bars=request.bars(), n=1, seed=request.seed, tempo=request.tempo, key=request.key)
        if self.checkpoint is not None:
            kwargs["checkpoint"] = self.checkpoint
        if self.steps is not None:
            kwargs["steps"] = self.steps
        followed = with_form(compose, kwargs, request.form)
        with_plain_settings(compose, kwargs)
        return kwargs, followed

    def prefetch(self, requests: list[ClipRequest]) -> None:
        """Sample the diffusion model's latents for these requests at once
        (:func:`emomusic.compose.api.draft_many`: one batch per shared form plan, each request
        with its own seed's noise); :meth:`generate` of one of them then only decodes and
        finishes it. Requests never generated are dropped by the next :meth:`prefetch` call's
        caller (:meth:`forget`)."""
        from emomusic.compose.api import draft_many

        todo = [r for r in dict.fromkeys(requests) if r not in self._drafts]
        calls = [dict(self._call(r)[0], emotion=r.emotion) for r in todo]
        self._drafts.update(zip(todo, draft_many(calls)))

    def forget(self, requests) -> None:
        """Drop prefetched latents of requests that will not be generated."""
        for r in requests:
            self._drafts.pop(r, None)

    def generate(self, request: ClipRequest) -> Candidate:
        from emomusic.compose import compose

        kwargs, followed = self._call(request)
        draft = self._drafts.pop(request, None)
        piece = draft.finish()[0] if draft is not None else compose(request.emotion, **kwargs)[0]
        return Candidate(piece, info={"engine": "compose", "form_followed": followed})

    def render(self, candidate: Candidate, request: ClipRequest, sample_rate: int) -> np.ndarray:
        return soundfont_render(candidate.piece, sample_rate, self.soundfont, self.reverb, self.player,
                                request.seconds)


_METER_BEATS = {"4/4": 4.0, "2/4": 2.0, "3/4": 3.0, "2/2": 4.0, "6/8": 3.0, "3/8": 1.5, "9/8": 4.5, "12/8": 6.0}


def _melody_piece(emotion: Emotion, request: ClipRequest, checkpoint=None, meter: str = "4/4",
                  info: dict | None = None) -> tuple[Piece, str]:
    """One melody covering the request: the meter is fixed (one meter for the whole
    session, so clips do not alternate between waltz and march) and sets the bar count."""
    from emomusic.melody import generate_melodies

    kwargs = dict(bars=request.bars(_METER_BEATS.get(meter, 4.0)), n=1, seed=request.seed, tempo=request.tempo,
                  meter=meter)
    if checkpoint is not None:
        kwargs["checkpoint"] = checkpoint
    followed = with_form(generate_melodies, kwargs, request.form)
    with_plain_settings(generate_melodies, kwargs)
    if info is not None:
        info["form_followed"] = followed
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
    phrased = True  # asks for whole phrases (emomusic.session.phrasing)
    form_kind = "tune"

    def __init__(self, model=None, soundfont=None, meter: str = "4/4"):
        if meter not in _METER_BEATS:
            raise EmomusicError(f"meter must be one of {', '.join(_METER_BEATS)}, got {meter!r}")
        self.checkpoint = model
        self.soundfont = soundfont
        self.reverb = 0.0  # room reverb amount on the render (engine_for sets BuildSettings.reverb)
        self.player = "auto"  # the SoundFont player (engine_for sets BuildSettings.synth)
        self.meter = meter
        self.bar_beats = _METER_BEATS[meter]

    def check(self) -> None:
        mod = _import("emomusic.melody", "melody engine (emomusic.melody)")
        if not hasattr(mod, "generate_melodies"):
            raise EmomusicError("emomusic.melody has no generate_melodies() function")
        try:
            from emomusic.melody.api import default_checkpoint, load_melody_model
        except ImportError:
            return check_soundfont(self.soundfont)
        folder = Path(self.checkpoint) if self.checkpoint is not None else default_checkpoint()
        if not (folder / "config.json").is_file():
            raise CheckpointError(f"no melody checkpoint at {folder} (train one with 'emomusic train melody')")
        try:
            load_melody_model(folder)  # loads once (cached); a broken checkpoint fails here, before any clip
        except EmomusicError:
            raise
        except Exception as exc:  # e.g. a config.json that is not a melody model's
            raise CheckpointError(f"cannot load the melody checkpoint {folder}: {type(exc).__name__}: {exc}") from None
        check_soundfont(self.soundfont)

    def generate(self, request: ClipRequest) -> Candidate:
        info = {"engine": "melody", "meter": self.meter}
        piece, abc = _melody_piece(request.emotion, request, self.checkpoint, self.meter, info)
        return Candidate(piece, info=dict(info, abc=abc))

    def render(self, candidate: Candidate, request: ClipRequest, sample_rate: int) -> np.ndarray:
        return soundfont_render(candidate.piece, sample_rate, self.soundfont, self.reverb, self.player,
                                request.seconds)


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
        self._lock = threading.Lock()  # one load, even when clips are rendered from several threads

    @property
    def measured_on(self) -> str:
        return "melody" if self.is_melody else "none"

    def check(self) -> None:
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

        with self._lock:
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
