"""Signal processing of the numpy SoundFont player (:mod:`emomusic.sf2`): the SF2 low-pass
filter and its sweep by the modulation envelope, pitch-bend curves, exclusive classes."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from emomusic.sf2 import Voice

_SILENCE_CB = 800.0  # -80 dB: voices end once the release envelope reaches this
EXCLUSIVE_RELEASE_S = 2.0 ** (-200 / 1200)  # release (per 100 dB) of a voice cut by its exclusive class


def lowpass_coefficients(fc_cents: float, q_cb: float, sample_rate: int):
    """The SoundFont low-pass filter as ``(b, a, gain, key)``, or None where it is open.

    A resonant 2-pole (biquad) low-pass. ``fc_cents`` is the cutoff in absolute cents
    (8.176 Hz * 2 ** (cents / 1200), kept in 1500..13500 cents and below 0.45 of the sample
    rate); ``q_cb`` the resonance in centibels (0..960). As FluidSynth reads the SF2 2.04
    text, Q is the peak height over a non-resonant (Butterworth, q = 1/sqrt 2) response,
    and the gain is lowered by half of Q in dB (FluidSynth 2.3 measured: tests/test_render.py).
    None (the filter is open) at 13500 cents, the default, with no resonance; a cutoff above
    0.45 of the sample rate is lowered to it.
    """
    fc_cents = max(1500.0, min(13500.0, round(float(fc_cents) / 25.0) * 25.0))  # 25-cent steps: cacheable
    q_db = max(0.0, min(96.0, float(q_cb) / 10.0))
    if fc_cents >= 13500.0 - 1e-9 and q_db == 0.0:
        return None
    fc = 8.176 * 2.0 ** (fc_cents / 1200.0)
    fc = min(fc, 0.45 * sample_rate)
    q_lin = 10.0 ** ((q_db - 3.01) / 20.0)
    w0 = 2.0 * math.pi * fc / sample_rate
    alpha = math.sin(w0) / (2.0 * q_lin)
    cw = math.cos(w0)
    a0 = 1.0 + alpha
    b = np.array([(1 - cw) / 2, 1 - cw, (1 - cw) / 2]) / a0
    a = np.array([1.0, -2 * cw / a0, (1 - alpha) / a0])
    gain = 10.0 ** (-q_db / 40.0)  # half the peak height in dB (as FluidSynth: 0 dB at Q = 0)
    return b * gain, a, gain, (round(fc, 3), round(q_db, 3))


def mod_envelope(v: Voice, sample_rate: int, frames: int) -> np.ndarray:
    """The modulation envelope (0..1) over ``frames``: delay, linear attack, hold, linear
    decay to the sustain level (SF2 2.04, section 8.1.3, generators 25-32). The release
    is not modelled: the note keeps its envelope course while it dies away."""
    delay, attack, hold, decay, sustain = v.mod_env
    t = np.arange(frames, dtype=np.float64) / sample_rate
    m = np.ones(frames)
    m[t < delay] = 0.0
    att = (t >= delay) & (t < delay + attack)
    m[att] = (t[att] - delay) / attack
    td = t - (delay + attack + hold)
    dec = td > 0
    m[dec] = np.maximum(sustain, 1.0 - td[dec] / decay)
    return m


def voice_filter(w: np.ndarray, v: Voice, sample_rate: int) -> np.ndarray:
    """Voice ``v``'s low-pass applied to its waveform ``w``: a fixed filter, or, where the
    modulation envelope moves the cutoff, the filter swept along it (coefficients held
    over stretches where the cutoff stays within one 25-cent step, state carried over)."""
    from scipy.signal import lfilter

    if w.size == 0:
        return w
    if not v.mod_to_fc:
        filt = lowpass_coefficients(v.filter_fc, v.filter_q, sample_rate)
        return w if filt is None else lfilter(filt[0], filt[1], w.astype(np.float64)).astype(np.float32)
    cents = np.round((v.filter_fc + v.mod_to_fc * mod_envelope(v, sample_rate, w.shape[0])) / 25.0)
    cuts = np.flatnonzero(np.diff(cents)) + 1
    bounds = np.concatenate([[0], cuts, [w.shape[0]]])
    x = w.astype(np.float64)
    out = np.empty_like(x)
    zi = np.zeros(2)
    for a, b in zip(bounds[:-1], bounds[1:]):
        filt = lowpass_coefficients(cents[a] * 25.0, v.filter_q, sample_rate)
        if filt is None:
            out[a:b] = x[a:b]
            zi = np.zeros(2)
            continue
        out[a:b], zi = lfilter(filt[0], filt[1], x[a:b], zi=zi)
    return out.astype(np.float32)


def bend_curve(bend, frames: int, sample_rate: int) -> np.ndarray:
    """Per-frame semitones from ``(times_s, semitones)`` steps (held between steps)."""
    times, semis = np.asarray(bend[0], dtype=np.float64), np.asarray(bend[1], dtype=np.float64)
    idx = np.searchsorted(np.round(times * sample_rate), np.arange(frames), side="right") - 1
    return np.where(idx >= 0, semis[np.clip(idx, 0, None)], 0.0) if semis.size else np.zeros(frames)


def cut_exclusive(voices: list, sample_rate: int) -> None:
    """Exclusive classes (SF2 2.04, generator 57): when a note of a class starts in a part,
    the part's sounding voices of that class (from earlier notes) are released quickly, as
    FluidSynth does (release at ``EXCLUSIVE_RELEASE_S`` per 100 dB from the current level)."""
    groups: dict[tuple, list] = {}
    for vc in voices:
        if vc[2].exclusive:
            groups.setdefault((vc[5], vc[2].exclusive), []).append(vc)
    for group in groups.values():
        group.sort(key=lambda vc: (vc[0], vc[7]))
        starts = [(vc[0], vc[7]) for vc in group]
        for i, vc in enumerate(group):
            later = [s for s, k in starts[i + 1:] if k != vc[7] and s >= vc[0]]
            if not later:
                continue
            cut = later[0] - vc[0]
            env = vc[3]
            if cut >= env.shape[0]:
                continue
            level = float(env[cut]) if cut < env.shape[0] else 0.0
            n = int(math.ceil(EXCLUSIVE_RELEASE_S * _SILENCE_CB / 1000.0 * sample_rate))
            t = np.arange(n, dtype=np.float32) / np.float32(sample_rate)
            fade = np.float32(level) * np.power(np.float32(10.0), -t * np.float32(1000.0 / EXCLUSIVE_RELEASE_S) / np.float32(200.0))
            tail = np.minimum(fade[: max(0, env.shape[0] - cut)], env[cut:cut + n])
            vc[3] = np.concatenate([env[:cut], tail]).astype(np.float32)
