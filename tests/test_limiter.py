"""The true-peak look-ahead limiter (emomusic.limiter), checked against full 4x oversampling
(scipy resample_poly, as BS.1770-4 annex 2) and pyloudnorm."""

import math

import numpy as np
import pytest
from scipy.signal import resample_poly

from emomusic.audio import integrated_lufs
from emomusic.limiter import BLOCK, LOOKAHEAD_S, RELEASE_DB_S, Limiter, limit, limit_peak

SR = 44100


def full_true_peak_db(x: np.ndarray) -> float:
    return 20 * math.log10(float(np.max(np.abs(resample_poly(x.astype(np.float64), 4, 1, axis=0)))))


def sparse_piano(seconds=6.0, seed=0) -> np.ndarray:
    """Struck decaying partials every half second: a high crest factor, like sparse piano."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    x = np.zeros((t.size, 2), np.float32)
    for k, start in enumerate(np.arange(0.0, seconds - 0.5, 0.5)):
        f = 220.0 * 2 ** (rng.integers(0, 24) / 12)
        tt = t[t >= start] - start
        note = sum(np.sin(2 * np.pi * f * h * tt + rng.uniform(0, 6)) / h for h in (1, 2, 3)) * np.exp(-tt * 4)
        x[t >= start, 0] += 0.3 * note
        x[t >= start, 1] += 0.25 * note
    return x


def test_limiter_holds_the_true_peak_ceiling_and_keeps_length():
    x = sparse_piano() * np.float32(10 ** (12 / 20))  # ~ +6 dB over full scale at its peaks
    assert full_true_peak_db(x) > 3.0
    y, red = limit(x, SR, -1.0)
    assert y.shape == x.shape and y.dtype == np.float32
    assert full_true_peak_db(y) <= -1.0 + 1e-6
    _, _, measured = limit_peak(x, SR, -1.0)  # the output true peak as the limiter measured it
    assert 20 * math.log10(measured) == pytest.approx(full_true_peak_db(y), abs=0.01)
    assert red == pytest.approx(full_true_peak_db(x) + 1.1, abs=0.3)  # aimed 0.1 dB under the ceiling
    # a loud first sample is limited too (nothing before it to ramp over)
    y0, _ = limit(x[int(0.5 * SR):], SR, -1.0)
    assert full_true_peak_db(y0) <= -1.0 + 1e-6


def test_quiet_audio_passes_unchanged():
    x = sparse_piano() * np.float32(0.5)
    assert full_true_peak_db(x) < -1.0
    y, red = limit(x, SR)
    assert red == 0.0 and np.array_equal(x, y)


def test_blocks_of_any_size_give_the_same_output():
    x = sparse_piano(seconds=3.0) * np.float32(4.0)
    whole, _ = limit(x, SR)
    for size in (1, 513, 44100):
        lim = Limiter(SR, -1.0, 2)
        parts = [lim.process(x[i:i + size]) for i in range(0, x.shape[0], size)] + [lim.flush()]
        assert np.array_equal(np.concatenate(parts), whole), size


def test_attack_and_release_follow_their_settings():
    # a 1 s tone at full scale with one 6 dB louder 10 ms burst in the middle
    t = np.arange(SR) / SR
    x = np.stack([0.5 * np.sin(2 * np.pi * 440 * t)] * 2, 1).astype(np.float32)
    mid = SR // 2
    x[mid: mid + 441] *= 2.0
    y, red = limit(x, SR, -1.0)
    gain = np.abs(y[:, 0]) / np.maximum(np.abs(x[:, 0]), 1e-9)
    loud = np.abs(x[:, 0]) > 0.3
    g_db = 20 * np.log10(np.where(loud, gain, 1.0))
    reach = (Limiter(SR).hold_b + 2) * BLOCK  # look-ahead (5 ms) + the filter's reach + a block each side
    assert reach * 1000 / SR < 2 * LOOKAHEAD_S * 1000  # under 10 ms
    assert np.all(g_db[: mid - reach][loud[: mid - reach]] > -1e-3)  # untouched before the look-ahead
    assert g_db[mid - 5: mid + 441][loud[mid - 5: mid + 441]].min() < -1.0  # down when the burst comes
    assert red == pytest.approx(20 * math.log10(1.0 / 10 ** (-1.1 / 20)), abs=0.1)
    # release: 30 dB/s, so 100 ms after the burst the 1.1 dB reduction is gone, and not at once
    end = mid + 441 + reach
    after = end + int(0.1 * SR)
    assert np.all(g_db[after:][loud[after:]] > -1e-3)
    k = end + int(0.02 * SR)  # 20 ms into the release: 0.6 dB back, 0.5 dB still down
    assert g_db[k - 100:k + 100][loud[k - 100:k + 100]].min() == pytest.approx(-1.1 + RELEASE_DB_S * 0.02, abs=0.15)


def test_level_reaches_the_target_through_the_limiter():
    x = sparse_piano(seconds=8.0)
    x[::4410] *= 3  # clicks: peaks far above the music's loudness
    gain = -16.0 - integrated_lufs(x, SR)
    y, red = limit(x * np.float32(10 ** (gain / 20)), SR, -1.0)
    assert 1.0 < red < 8.0  # plain gain alone would have passed the ceiling
    assert integrated_lufs(y, SR) == pytest.approx(-16.0, abs=1.0)
    assert full_true_peak_db(y) <= -1.0 + 1e-6


def test_bad_settings_are_refused():
    with pytest.raises(ValueError):
        Limiter(SR, float("nan"))
    with pytest.raises(ValueError):
        Limiter(SR, -1.0, 2).process(np.zeros((10, 3), np.float32))
