"""Offline rendering through FluidSynth (libfluidsynth via pyfluidsynth), no audio driver.

FluidSynth is the reference SoundFont 2 player: it implements the parts of the format the
numpy player (:mod:`emomusic.sf2`) leaves out (modulation envelope, LFOs, modulators, the
filter swept by them). It is optional: :func:`available` says whether the Python package
and the shared library load; :mod:`emomusic.render` falls back to the numpy player when not.

The synth runs single-threaded with its own reverb and chorus off (the room reverb of
:mod:`emomusic.render` is applied to the mix, the same for both players), so the output
depends only on the events, the SoundFont and the library version: same input, same bytes.
Events are sent between ``fluid_synth_write_float`` calls at their sample frame (FluidSynth
applies them at its next 64-frame block).
"""

from __future__ import annotations

import ctypes
import threading
from pathlib import Path

import numpy as np

from emomusic.errors import EmomusicError

GAIN = 1.42  # synth.gain: measured to give the numpy player's level (docs/benchmarks.md)
TAIL_S = 6.0  # at most this long after the last event, until every voice has finished
POLYPHONY = 1024

_STATE: dict[str, object] = {}
_IMPORT_LOCK = threading.Lock()


def _module():
    """The pyfluidsynth module, or None when it or libfluidsynth is missing (cached)."""
    with _IMPORT_LOCK:
        return _load()


def _load():
    if "mod" not in _STATE:
        try:
            from emomusic.quiet import quiet_import

            fluidsynth = quiet_import("fluidsynth")  # it prints on stdout when $CI is set

            fl = fluidsynth._fl  # the loaded libfluidsynth (ctypes CDLL)
            fn = fl.fluid_synth_write_float
            fn.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_int,
                           ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
            fn.restype = ctypes.c_int
            # the first synth fills libfluidsynth's shared tables (default modulators, DSP and
            # conversion tables) without a lock: two threads creating their first synths at once
            # gave one of them broken default modulators (a warning, and other samples). One
            # synth made and deleted here, under the import lock, does it once.
            fluidsynth.Synth(samplerate=44100.0).delete()
            _STATE["mod"] = fluidsynth
        except (ImportError, OSError, AttributeError):
            _STATE["mod"] = None
    return _STATE["mod"]


def available() -> bool:
    """Whether FluidSynth can be used here (pyfluidsynth and libfluidsynth both load)."""
    return _module() is not None


def render_parts(parts, soundfont: str | Path, sample_rate: int, presets, max_frames: int | None = None) -> np.ndarray:
    """Stereo float32 audio of ``parts`` (see :func:`emomusic.render.parts`), all at once:
    :func:`iter_parts` concatenated."""
    blocks = list(iter_parts(parts, soundfont, sample_rate, presets, max_frames=max_frames))
    return np.concatenate(blocks) if blocks else np.zeros((1, 2), dtype=np.float32)


def iter_parts(parts, soundfont: str | Path, sample_rate: int, presets, block: int = 1 << 16,
               max_frames: int | None = None):
    """Stereo float32 audio of ``parts`` in blocks of ``block`` frames (the last one shorter):
    the same samples as one long render (FluidSynth buffers its own 64-frame blocks, so
    where the writes are cut does not matter), holding one block at a time.

    ``presets`` maps a part to the ``(bank, program)`` to select, so both players choose
    the same preset from the SoundFont. Every part gets a channel of its own (the synth has
    as many as needed; presets are selected explicitly, drums included), so parts never share
    a program, a pedal or a pitch wheel. The audio runs until every voice has finished
    (at most ``TAIL_S`` after the last event). ``max_frames``: stop there (the first
    ``max_frames`` frames of the whole render, the same samples: nothing after them is rendered).
    """
    fs = _module()
    if fs is None:
        raise EmomusicError("FluidSynth is not available (pip install pyfluidsynth; apt-get install libfluidsynth3)")
    fl = fs._fl
    settings = {"synth.reverb.active": 0, "synth.chorus.active": 0, "synth.polyphony": POLYPHONY,
                "synth.cpu-cores": 1}
    synth = fs.Synth(gain=GAIN, samplerate=float(sample_rate), channels=max(16, len(parts)), **settings)
    try:
        sfid = synth.sfload(str(soundfont))
        if sfid < 0:
            raise EmomusicError(f"FluidSynth cannot load {soundfont} as a SoundFont")
        events = []  # (frame, order, kind, channel, a, b)
        for ch, part in enumerate(parts):
            bank, program = presets(part)
            if synth.program_select(ch, sfid, bank, program) != 0:
                raise EmomusicError(f"FluidSynth has no preset {bank}:{program} in {soundfont}")
            for start, end, pitch, vel in part.notes:
                f0 = int(round(start * sample_rate))
                f1 = max(f0 + 1, int(round(end * sample_rate)))
                events.append((f0, 4, "on", ch, pitch, vel))
                events.append((f1, 0, "off", ch, pitch, 0))
            for down, up in part.pedals:
                events.append((int(round(down * sample_rate)), 2, "cc", ch, 64, 127))
                events.append((int(round(up * sample_rate)), 1, "cc", ch, 64, 0))
            for t, value in part.bends:
                events.append((int(round(t * sample_rate)), 3, "bend", ch, int(value), 0))
        events.sort(key=lambda e: (e[0], e[1], e[3], e[4]))
        last = events[-1][0] if events else 0
        cap = last + int(TAIL_S * sample_rate)
        block = max(64, int(block))
        left = np.zeros(block, dtype=np.float32)
        right = np.zeros(block, dtype=np.float32)
        lp, rp = left.ctypes.data, right.ctypes.data
        handle = synth.synth
        state = {"cursor": 0, "filled": 0}

        def advance(target: int):
            """Render up to frame ``target``; yield each block that fills up."""
            while state["cursor"] < target:
                filled = state["filled"]
                n = min(target - state["cursor"], block - filled)
                if fl.fluid_synth_write_float(handle, n, lp, filled, 1, rp, filled, 1) != 0:
                    raise EmomusicError("FluidSynth failed while rendering")
                state["filled"] += n
                state["cursor"] += n
                if state["filled"] == block:
                    yield _block(left, right, block)
                    state["filled"] = 0

        stop = cap if max_frames is None else min(cap, max(1, int(max_frames)))
        for frame, _, kind, ch, a, b in events:
            if frame >= stop:  # only when max_frames cuts the music short
                break
            yield from advance(frame)
            if kind == "on":
                synth.noteon(ch, a, b)
            elif kind == "off":
                synth.noteoff(ch, a)
            elif kind == "cc":
                synth.cc(ch, a, b)
            else:
                synth.pitch_bend(ch, a)
        tail = 4096  # the release tails: until every voice has finished (or TAIL_S)
        if events and events[-1][0] >= stop:
            yield from advance(stop)
        while state["cursor"] < stop and synth.get_active_voice_count() > 0:
            yield from advance(min(stop, state["cursor"] + tail))
        if state["cursor"] == 0:
            yield from advance(1)
        if state["filled"]:
            yield _block(left, right, state["filled"])
    finally:
        synth.delete()


def _block(left: np.ndarray, right: np.ndarray, n: int) -> np.ndarray:
    out = np.stack([left[:n], right[:n]], axis=1)
    if not np.all(np.isfinite(out)):
        raise EmomusicError("FluidSynth produced invalid samples")
    return out


def library_version() -> str:
    """``major.minor.micro`` of the loaded libfluidsynth ("" when unavailable)."""
    fs = _module()
    if fs is None:
        return ""
    try:
        a, b, c = ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
        fs.fluid_version(a, b, c)
        return f"{a.value}.{b.value}.{c.value}"
    except AttributeError:  # pragma: no cover - every libfluidsynth has fluid_version
        return "unknown"
