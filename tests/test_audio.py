import math

import numpy as np
import pytest

from emomusic.audio import (
    crossfade_concat,
    fit_length,
    loudness_db,
    normalize_loudness,
    read_wav,
    resample,
    rms_db,
    to_stereo,
    write_wav,
)

SR = 8000


def tone(freq=440.0, seconds=1.0, amp=0.5, sr=SR):
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_rms_of_sine():
    assert rms_db(tone(amp=1.0)) == pytest.approx(20 * math.log10(1 / math.sqrt(2)), abs=0.01)
    assert rms_db(np.zeros(100)) == -math.inf


def test_normalize_hits_target_and_never_clips():
    a = normalize_loudness(tone(amp=0.01), SR, target_db=-20)
    assert loudness_db(a, SR) == pytest.approx(-20, abs=0.01)
    loud = normalize_loudness(tone(amp=0.1), SR, target_db=0)  # would need peak > 1
    assert np.max(np.abs(loud)) <= 0.98 + 1e-6


def test_equal_power_crossfade_length_and_constant_power():
    a = np.ones(SR, dtype=np.float32) * 0.5
    out = crossfade_concat([a, a, a], SR, 0.25)
    assert out.shape == (3 * SR - 2 * SR // 4, 1)
    # With uncorrelated signals equal-power keeps power; with identical DC it peaks at sqrt(2).
    fade = int(0.25 * SR)
    t = (np.arange(fade) + 0.5) / fade
    assert np.allclose(np.cos(t * np.pi / 2) ** 2 + np.sin(t * np.pi / 2) ** 2, 1.0)
    rng = np.random.default_rng(0)
    n1, n2 = rng.standard_normal(SR).astype(np.float32), rng.standard_normal(SR).astype(np.float32)
    joined = crossfade_concat([n1, n2], SR, 0.5)
    mid = joined[SR // 2 : SR]
    assert rms_db(mid) == pytest.approx(rms_db(n1), abs=0.5)


def test_fit_length_and_stereo():
    a = tone(seconds=1.0)
    assert fit_length(a, SR // 2, sample_rate=SR).shape == (SR // 2, 1)
    assert fit_length(a, SR * 2, sample_rate=SR).shape == (SR * 2, 1)
    assert abs(fit_length(a, SR // 2, sample_rate=SR)[-1, 0]) < 1e-6  # faded, no click
    assert to_stereo(a).shape == (SR, 2)


def test_wav_round_trip_and_peak_guard(tmp_path):
    a = to_stereo(tone(amp=2.0))  # too loud: scaled down, not clipped
    p = write_wav(tmp_path / "x.wav", a, SR)
    data, sr = read_wav(p)
    assert sr == SR and data.shape == (SR, 2)
    assert np.max(np.abs(data)) <= 0.99
    corr = np.corrcoef(data[:, 0], a[:, 0])[0, 1]
    assert corr > 0.999


def test_resample_keeps_pitch():
    a = tone(freq=500, seconds=1.0, sr=8000)
    b = resample(a, 8000, 16000)[:, 0]
    spec = np.abs(np.fft.rfft(b))
    assert np.argmax(spec) * 16000 / len(b) == pytest.approx(500, abs=2)
