import math

import numpy as np
import pytest

from emomusic.audio import (
    crossfade_concat,
    fit_length,
    integrated_lufs,
    loudness_db,
    lufs_gain_db,
    normalize_loudness,
    normalize_lufs,
    short_term_lufs,
    true_peak,
    true_peak_db,
    window_lufs,
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
    # Two uncorrelated noises: the power through the join stays that of either clip.
    rng = np.random.default_rng(0)
    n1 = rng.standard_normal((2 * SR, 2)).astype(np.float32) * 0.2
    n2 = rng.standard_normal((2 * SR, 2)).astype(np.float32) * 0.2
    fade = SR  # 1 s fade
    joined = crossfade_concat([n1, n2], SR, 1.0)
    assert joined.shape == (4 * SR - fade, 2)
    np.testing.assert_array_equal(joined[: SR], n1[: SR])  # untouched before the fade
    np.testing.assert_array_equal(joined[2 * SR:], n2[fade:])  # and after it
    ref = rms_db(n1)
    win = SR // 10
    through = [rms_db(joined[s:s + win]) for s in range(SR - win, 2 * SR + win, win // 2)]
    assert max(abs(x - ref) for x in through) < 0.8  # 100 ms windows of noise: ~0.3 dB spread
    # a linear (equal-gain) fade would dip by 3 dB in the middle; equal power does not
    mid = joined[SR + SR // 2 - win // 2: SR + SR // 2 + win // 2]
    assert rms_db(mid) == pytest.approx(ref, abs=0.5)


def test_lufs_of_a_reference_sine():
    # BS.1770: a full-scale 997 Hz sine in one channel reads -3.01 LUFS; in both, 0 LUFS.
    sr = 48000
    s = tone(997.0, seconds=5.0, amp=1.0, sr=sr)
    assert integrated_lufs(s, sr) == pytest.approx(-3.01, abs=0.05)
    assert integrated_lufs(to_stereo(s), sr) == pytest.approx(0.0, abs=0.05)
    assert window_lufs(s, sr) == pytest.approx(-3.01, abs=0.05)
    assert loudness_db(s, sr) == integrated_lufs(s, sr)
    assert integrated_lufs(np.zeros((sr, 2)), sr) == -math.inf


def test_lufs_weights_frequencies_unlike_rms():
    sr = 44100
    low, high = tone(60.0, 4.0, 0.3, sr), tone(5000.0, 4.0, 0.3, sr)
    assert rms_db(low) == pytest.approx(rms_db(high), abs=0.01)
    gap = integrated_lufs(high, sr) - integrated_lufs(low, sr)
    assert 3.5 < gap < 8.0  # the shelf lifts 5 kHz by ~4 dB, the RLB filter lowers 60 Hz


def test_window_lufs_matches_pyloudnorm():
    import pyloudnorm

    sr = 44100
    rng = np.random.default_rng(1)
    x = (0.1 * rng.standard_normal((3 * sr, 2))).astype(np.float32)
    ref = pyloudnorm.Meter(sr, block_size=3.0).integrated_loudness(x.astype(np.float64))
    assert window_lufs(x, sr) == pytest.approx(ref, abs=0.02)
    # short-term series of a steady noise is flat, and follows a 12 dB step
    y = np.concatenate([x, x * 0.25, x * 0.25])
    st = short_term_lufs(y, sr, hop_s=0.5)
    assert len(st) == (9 * sr - 3 * sr) // (sr // 2) + 1
    assert st[0] == pytest.approx(ref, abs=0.02)
    assert st[-1] == pytest.approx(ref - 20 * math.log10(4), abs=0.1)
    assert np.all(np.diff(st) <= 1e-6)


def test_gating_ignores_silence():
    sr = 16000
    s = tone(1000.0, 4.0, 0.5, sr)
    with_gap = np.concatenate([s, np.zeros(8 * sr, dtype=np.float32)])
    assert integrated_lufs(with_gap, sr) == pytest.approx(integrated_lufs(s, sr), abs=0.3)  # edge blocks
    assert rms_db(with_gap) < rms_db(s) - 4.5  # RMS is pulled down by the silence (4.8 dB)


def test_true_peak_finds_intersample_peaks():
    # a quarter-rate sine sampled at 45 degrees: every sample is at 0.707, the wave reaches 1.0
    n = np.arange(4000)
    x = np.sin(np.pi / 2 * n + np.pi / 4).astype(np.float32)
    assert np.max(np.abs(x)) == pytest.approx(0.7071, abs=1e-3)
    assert true_peak(x) == pytest.approx(1.0, abs=0.02)
    assert true_peak_db(x) == pytest.approx(0.0, abs=0.2)
    # exactly scipy's 4x resample_poly (the interpolation is computed only near the peaks)
    from scipy.signal import resample_poly

    assert true_peak(x) == pytest.approx(float(np.max(np.abs(resample_poly(x.astype(np.float64), 4, 1)))), abs=1e-9)


def test_true_peak_equals_full_oversampling_at_any_length_and_position():
    from scipy.signal import resample_poly

    rng = np.random.default_rng(11)
    for n in (1, 7, 30, 999, 5000):
        for spot in (0, n // 2, n - 1):  # a burst at the start, the middle, the end (edges padded with zeros)
            x = (rng.standard_normal((n, 2)) * 0.05).astype(np.float32)
            x[max(0, spot - 3): spot + 3] = rng.choice([-0.8, 0.8], size=(len(x[max(0, spot - 3): spot + 3]), 2))
            ref = float(np.max(np.abs(resample_poly(x.astype(np.float64), 4, 1, axis=0))))
            assert true_peak(x) == pytest.approx(ref, rel=1e-9), (n, spot)
    assert true_peak(np.zeros((100, 2), np.float32)) == 0.0
    # upsampling only the loud stretches gives the full answer on music-like audio
    from scipy.signal import resample_poly

    rng = np.random.default_rng(5)
    env = np.repeat(rng.uniform(0.05, 1.0, 40), 2000)[:, None]
    y = (env * rng.standard_normal((80000, 2)) * 0.2).astype(np.float32)
    full = float(np.max(np.abs(resample_poly(y.astype(np.float64), 4, 1, axis=0))))
    assert true_peak(y) == pytest.approx(full, rel=1e-6)
    assert true_peak_db(np.zeros(10)) == -math.inf


def test_normalize_lufs_hits_target_under_a_true_peak_ceiling():
    sr = 16000
    rng = np.random.default_rng(2)
    x = (0.01 * rng.standard_normal((4 * sr, 2))).astype(np.float32)
    y = normalize_lufs(x, sr, target_lufs=-23.0, true_peak_dbtp=-1.0)
    assert integrated_lufs(y, sr) == pytest.approx(-23.0, abs=0.05)
    # a spiky signal cannot reach -10 LUFS under a -1 dBTP ceiling: the ceiling wins
    spiky = x.copy()
    spiky[::sr] = 0.5
    z = normalize_lufs(spiky, sr, target_lufs=-10.0, true_peak_dbtp=-1.0)
    assert true_peak_db(z) == pytest.approx(-1.0, abs=0.05)
    assert integrated_lufs(z, sr) < -10.5
    assert lufs_gain_db(np.zeros((sr, 2)), sr) == 0.0


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


def test_room_reverb_tail_decays_and_spreads():
    from emomusic.audio import room_reverb

    sr = 22050
    x = np.zeros((sr // 2, 2), dtype=np.float32)
    x[100] = 0.5  # an impulse in both channels
    assert np.array_equal(room_reverb(x, sr, 0.0), x)
    y = room_reverb(x, sr, 0.3, tail_s=2.0)
    assert y.shape == (x.shape[0] + 2 * sr, 2) and y.dtype == np.float32
    assert np.array_equal(y, room_reverb(x, sr, 0.3, tail_s=2.0))  # deterministic

    def level(a, b):
        return rms_db(y[int(a * sr): int(b * sr)])

    # a room: the tail decays steadily (about 0.5-3 s to fall 60 dB) ...
    early, mid = level(0.05, 0.15), level(0.45, 0.55)
    assert early - mid > 5
    rt60 = 0.4 * 60 / (early - mid)
    assert 0.3 < rt60 < 4.0
    # ... and the two channels differ (a stereo room, not a mono echo)
    seg = y[int(0.05 * sr): int(0.5 * sr)]
    assert abs(np.corrcoef(seg[:, 0], seg[:, 1])[0, 1]) < 0.9
    # more amount, more reverb energy after the dry impulse
    y2 = room_reverb(x, sr, 0.6, tail_s=2.0)
    assert rms_db(y2[200: sr]) > rms_db(y[200: sr]) + 3
