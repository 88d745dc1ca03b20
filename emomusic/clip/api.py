"""``generate_clip``: an emotion -> an audio clip with MusicGen (optionally LoRA-adapted).

One generation window is at most 30 s (MusicGen's training length; less for a model with fewer
decoder positions, like the tiny test model). Longer clips use *windowed continuation*: each
new window is generated with the last ``overlap`` seconds of the audio so far as an audio
prompt (encoded with the model's own EnCodec to decoder-prefix codes), and the windows are
joined with equal-power crossfades over that shared stretch (:func:`emomusic.audio.crossfade_concat`).
The result is cut to the asked length, optionally resampled, and loudness-normalised.

Randomness: everything runs inside ``torch.random.fork_rng`` seeded with ``seed``, so the same
inputs and seed give the same audio and the caller's RNG state is untouched.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from emomusic.emotion import Emotion
from emomusic.errors import EmomusicError

MAX_SECONDS = 3600.0
TARGET_LOUDNESS_DB = -20.0


def _validate(emotion, seconds, sample_rate, guidance, seed=0) -> None:
    from emomusic.validation import check_seed

    check_seed(seed)  # one rule everywhere (2**70 overflowed inside torch)
    if not isinstance(emotion, Emotion):
        raise EmomusicError(f"generate_clip needs an Emotion, got {type(emotion).__name__}")
    try:
        seconds = float(seconds)
    except (TypeError, ValueError):
        raise EmomusicError(f"seconds must be a number, got {seconds!r}") from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise EmomusicError(f"seconds must be > 0, got {seconds:g}")
    if seconds > MAX_SECONDS:
        raise EmomusicError(f"seconds must be at most {MAX_SECONDS:g}, got {seconds:g}")
    if sample_rate is not None and (int(sample_rate) != sample_rate or not 4000 <= int(sample_rate) <= 192000):
        raise EmomusicError(f"sample rate must be an integer between 4000 and 192000 Hz, got {sample_rate}")
    if guidance is not None and (not math.isfinite(float(guidance)) or float(guidance) < 0):
        raise EmomusicError(f"guidance must be >= 0, got {guidance}")


def resolve_model(model, *, adapter=None, device: str = "cpu", allow_download: bool = False):
    """A :class:`~emomusic.clip.loading.LoadedModel` from a path/hub id (loaded) or as given,
    with ``adapter`` attached when asked."""
    from emomusic.clip.loading import LoadedModel, load_model
    from emomusic.clip.lora import load_adapter

    if isinstance(model, LoadedModel):
        loaded = model
    elif isinstance(model, (str, os.PathLike)):
        loaded = load_model(model, device=device, allow_download=allow_download)
    else:
        raise EmomusicError("model must be a checkpoint folder, a hub id or a loaded model")
    if adapter is not None:
        if loaded.adapter is not None and Path(str(loaded.adapter)) != Path(str(adapter)):
            raise EmomusicError(f"the model already carries adapter {loaded.adapter}")
        if loaded.adapter is None:
            load_adapter(loaded, adapter)
    return loaded


def plan_windows(total_frames: int, window_frames: int, overlap_frames: int) -> list[tuple[int, int]]:
    """(start_frame, new_frames) per window: the first is a full window, each later one
    generates ``window - overlap`` new frames after an ``overlap``-frame prompt."""
    if total_frames <= window_frames:
        return [(0, total_frames)]
    out = [(0, window_frames)]
    done = window_frames
    step = window_frames - overlap_frames
    while done < total_frames:
        new = min(step, total_frames - done)
        out.append((done - overlap_frames, new))
        done += new
    return out


def generate_clip(
    emotion: Emotion,
    *,
    model,
    adapter=None,
    seconds: float = 30.0,
    melody=None,
    prompt: str | None = None,
    seed: int = 0,
    sample_rate: int | None = None,
    guidance: float = 3.0,
    window_seconds: float | None = None,
    overlap_seconds: float | None = None,
    device: str = "cpu",
    allow_download: bool = False,
    progress: bool = False,
    info: dict | None = None,
) -> tuple[np.ndarray, int]:
    """Generate ``seconds`` of audio for ``emotion``.

    ``model``: checkpoint folder, hub id (with ``allow_download``) or a loaded model;
    ``adapter``: LoRA adapter folder; ``melody``: a Piece or MIDI/ABC/MusicXML path (needs a
    MusicGen-Melody model); ``prompt``: extra text after the emotion prompt; ``guidance``:
    classifier-free guidance scale (<= 1 disables it); ``window_seconds``/``overlap_seconds``
    override the continuation windows (default: the model's native length, 30 s for the
    real models, and 1/6 of it as overlap). ``info`` (a dict) receives the prompt and details.
    Returns ``(audio (frames, channels) float32, sample_rate)``.
    """
    _validate(emotion, seconds, sample_rate, guidance, seed)
    from emomusic.clip.melody import load_melody, piece_chroma
    from emomusic.clip.prompt import build_prompt

    text = build_prompt(emotion, prompt)
    piece = load_melody(melody) if melody is not None else None
    loaded = resolve_model(model, adapter=adapter, device=device, allow_download=allow_download)
    if piece is not None and not loaded.is_melody:
        raise EmomusicError(
            f"--melody needs a MusicGen-Melody model (e.g. facebook/musicgen-melody); {loaded.source} is {loaded.model_type}"
        )
    native = loaded.native_seconds
    window = float(window_seconds) if window_seconds is not None else native
    if not 0 < window <= native + 1e-9:
        raise EmomusicError(f"window must be in (0, {native:g}] seconds for this model, got {window:g}")
    overlap = float(overlap_seconds) if overlap_seconds is not None else window / 6.0
    if not 0 < overlap < window:
        raise EmomusicError(f"overlap must be between 0 and the window ({window:g} s), got {overlap:g}")

    import torch
    from tqdm.auto import tqdm

    from emomusic.audio import crossfade_concat, fit_length, normalize_loudness, resample
    from emomusic.clip.data import encode_codes
    from emomusic.clip.loading import quiet_transformers

    fr = loaded.frame_rate
    sr = loaded.sample_rate
    k = loaded.num_codebooks
    total_frames = int(math.ceil(float(seconds) * fr))
    window_frames = max(1, int(math.floor(window * fr)))
    overlap_frames = max(1, min(window_frames - 1, int(round(overlap * fr)))) if window_frames > 1 else 0
    windows = plan_windows(total_frames, window_frames, overlap_frames)
    net = loaded.model
    base = net.get_base_model() if hasattr(net, "get_base_model") else net
    dev = next(base.parameters()).device
    tokens = loaded.tokenizer([text], return_tensors="pt", padding=True)
    tokens = {key: v.to(dev) for key, v in tokens.items()}
    hop = int(round(sr / fr))
    audio = None
    # guidance <= 1 turns classifier-free guidance off (1.0 overrides the checkpoint's default of 3)
    gen_kwargs = dict(do_sample=True, guidance_scale=float(guidance) if guidance and guidance > 1 else 1.0)
    bar = tqdm(windows, desc="clip windows", unit="win", disable=not progress or len(windows) < 2, leave=False)
    devices = [dev.index or 0] if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), torch.inference_mode(), quiet_transformers():
        torch.manual_seed(int(seed))
        for start, new in bar:
            kwargs = dict(tokens, **gen_kwargs, max_new_tokens=new + k - 1)
            prompt_frames = 0
            if audio is not None:
                tail = audio[-overlap_frames * hop :].T  # (channels, samples)
                wav = torch.from_numpy(np.ascontiguousarray(tail)).to(dev, base.dtype)[None]
                codes = encode_codes(base.audio_encoder, wav)[0]  # (K, T); stereo interleaved
                prompt_frames = codes.shape[-1]
                kwargs["decoder_input_ids"] = codes
            if piece is not None:
                feat = piece_chroma(piece, loaded.chroma_rate, start / fr, (prompt_frames + new) / fr)
                kwargs["input_features"] = torch.from_numpy(feat)[None].to(dev, base.dtype)
            out = net.generate(**kwargs)  # (1, channels, samples)
            chunk = out[0].float().cpu().numpy().T  # (samples, channels)
            if audio is None:
                audio = chunk
            else:
                audio = crossfade_concat([audio, chunk], sr, prompt_frames * hop / sr)
    bar.close()
    assert audio is not None
    frames_out = int(round(float(seconds) * sr))
    audio = fit_length(audio, frames_out, fade_seconds=0.0, sample_rate=sr)
    out_sr = sr
    if sample_rate is not None and int(sample_rate) != sr:
        audio = resample(audio, sr, int(sample_rate))
        out_sr = int(sample_rate)
        audio = fit_length(audio, int(round(float(seconds) * out_sr)), fade_seconds=0.0, sample_rate=out_sr)
    audio = normalize_loudness(audio, out_sr, TARGET_LOUDNESS_DB)
    if info is not None:
        info.update(
            prompt=text,
            model=loaded.source,
            model_type=loaded.model_type,
            adapter=loaded.adapter,
            seconds=float(seconds),
            sample_rate=out_sr,
            model_sample_rate=sr,
            windows=len(windows),
            window_seconds=round(window_frames / fr, 3),
            overlap_seconds=round(overlap_frames / fr, 3) if len(windows) > 1 else 0.0,
            decoder_steps=sum(n + k - 1 for _, n in windows),
            guidance=float(guidance),
            seed=int(seed),
            melody=bool(piece is not None),
            emotion=emotion.to_dict(),
        )
    return audio.astype(np.float32), out_sr
