import math

import numpy as np
import pyloudnorm  # noqa: F401  (imported here, not in each test: mutation runs fork after collection)
import pytest
import scipy.signal  # noqa: F401

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


# -- spectral descriptors, checked against a DFT written out here -----------------------------
def _hann(n):
    """The symmetric Hann window (both ends zero), from its formula."""
    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / (n - 1))


def _dft_power(x, n_fft):
    """|DFT|^2 of consecutive Hann-windowed n_fft frames of the channel mean, by the DFT sum
    (a matrix of complex exponentials: no FFT library). A signal shorter than one frame is
    zero-padded to one; a tail shorter than a frame is dropped."""
    m = np.asarray(x, dtype=np.float64)
    m = m.mean(axis=1) if m.ndim == 2 else m
    if len(m) < n_fft:
        m = np.concatenate([m, np.zeros(n_fft - len(m))])
    frames = m[: (len(m) // n_fft) * n_fft].reshape(-1, n_fft) * _hann(n_fft)
    k = np.arange(n_fft // 2 + 1)[:, None]
    basis = np.exp(-2j * np.pi * k * np.arange(n_fft)[None, :] / n_fft)
    return np.abs(frames @ basis.T) ** 2


def _chroma_reference(power, sr, n_fft, fmin, fmax):
    """Each bin between fmin and fmax (inclusive) adds its power to the pitch class of its
    nearest MIDI note (A4 = 440 Hz = MIDI 69; pitch class 0 = C)."""
    out = np.zeros((power.shape[0], 12))
    for k in range(power.shape[1]):
        f = k * sr / n_fft
        if fmin <= f <= fmax:
            out[:, int(round(69 + 12 * math.log2(f / 440.0))) % 12] += power[:, k]
    return out


def test_chroma_matches_a_written_out_dft():
    from emomusic.audio import chroma

    sr, n = 8000, 256  # bins every 31.25 Hz: 62.5 Hz and 1000 Hz are bins, so the bounds count
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5 * n + 77, 2)).astype(np.float32)
    x[:, 1] *= 0.3  # channels differ: the channel *mean* is analysed
    got = chroma(x, sr, n_fft=n, fmin=62.5, fmax=1000.0)
    assert got.shape == (5, 12)  # the 77-frame tail is dropped
    ref = _chroma_reference(_dft_power(x, n), sr, n, 62.5, 1000.0)
    np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-9)
    # a clip shorter than one frame is zero-padded to one frame
    short = x[:100]
    np.testing.assert_allclose(chroma(short, sr, n_fft=n, fmin=62.5, fmax=1000.0),
                               _chroma_reference(_dft_power(short, n), sr, n, 62.5, 1000.0), rtol=1e-9, atol=1e-12)
    # mono input is the same as both channels equal
    np.testing.assert_allclose(chroma(x[:, 0], sr, n_fft=n), chroma(np.repeat(x[:, :1], 2, axis=1), sr, n_fft=n), rtol=1e-12)


def test_chroma_defaults_and_the_pitch_class_of_a_tone():
    import scipy.fft

    from emomusic.audio import chroma

    # 10013 Hz puts a bin in [55, 56) Hz and one in (5000, 5001] Hz: the default bounds 55 and
    # 5000 Hz are exactly where they are documented to be
    sr, n = 10013, 8192
    rng = np.random.default_rng(4)
    x = rng.standard_normal(2 * n).astype(np.float32)
    frames = x.astype(np.float64).reshape(2, n) * _hann(n)
    power = np.abs(scipy.fft.rfft(frames, axis=1)) ** 2
    np.testing.assert_allclose(chroma(x, sr), _chroma_reference(power, sr, n, 55.0, 5000.0), rtol=1e-9)
    # a 440 Hz tone is pitch class A (9), middle C is 0, the E above is 4
    for freq, pc in ((440.0, 9), (261.63, 0), (329.63, 4)):
        c = chroma(tone(freq, 2.0, 0.5, 22050), 22050)
        assert c.shape == (5, 12)  # 44100 frames // 8192
        assert np.all(np.argmax(c, axis=1) == pc)
        assert np.all(c[:, pc] > 0.9 * c.sum(axis=1))


def test_chroma_similarity_hand_computed():
    from emomusic.audio import chroma_similarity

    sr, n = 22050, 8192
    a_note, e_note = tone(440.0, 1.0, 0.5, sr), tone(659.26, 1.0, 0.5, sr)
    seg = lambda t: np.resize(t, 2 * n)  # two whole analysis frames of a tone
    a = seg(a_note)
    assert chroma_similarity(a, a, sr) == pytest.approx(1.0, abs=1e-12)
    assert chroma_similarity(a, 3.0 * a, sr) == pytest.approx(1.0, abs=1e-12)  # level does not matter
    assert chroma_similarity(a, seg(e_note), sr) < 0.05  # A against E: different pitch classes
    # an equal A+E mix against A alone: cos = 1/sqrt(2) (A and E share almost no bins)
    mix = seg(a_note) + seg(e_note)
    assert chroma_similarity(mix, a, sr) == pytest.approx(1 / math.sqrt(2), abs=0.02)
    # frames where either side is silent are skipped, not counted as 0: frame 2 of `gap` is silent
    gap = np.concatenate([a, np.zeros(n, dtype=np.float32)])
    assert chroma_similarity(gap, np.concatenate([a, seg(e_note)[:n]]), sr) == pytest.approx(1.0, abs=1e-9)
    # a frame 40 dB down still counts (the skip is at -60 dB): A vs (A, A, quiet E) -> mean(1, 1, ~0)
    quiet = np.concatenate([a, 0.01 * seg(e_note)[:n]])
    assert chroma_similarity(np.concatenate([a, a[:n]]), quiet, sr) == pytest.approx(2 / 3, abs=0.02)
    assert chroma_similarity(quiet, np.concatenate([a, a[:n]]), sr) == pytest.approx(2 / 3, abs=0.02)
    # ... a frame 80 dB down does not, on either side
    silentish = np.concatenate([a, 1e-4 * seg(e_note)[:n]])
    assert chroma_similarity(np.concatenate([a, a[:n]]), silentish, sr) == pytest.approx(1.0, abs=1e-9)
    assert chroma_similarity(silentish, np.concatenate([a, a[:n]]), sr) == pytest.approx(1.0, abs=1e-9)
    # the -60 dB is relative: very quiet audio compares like loud audio
    assert chroma_similarity(1e-7 * a, 1e-7 * a, sr) == pytest.approx(1.0, abs=1e-9)
    assert chroma_similarity(1e-7 * a, 1e-7 * seg(e_note), sr) < 0.05
    # only the frames both have are compared: extra frames of the longer one are ignored
    assert chroma_similarity(np.concatenate([a, seg(e_note)]), a, sr) == pytest.approx(1.0, abs=1e-12)
    assert chroma_similarity(a, np.concatenate([a, seg(e_note)]), sr) == pytest.approx(1.0, abs=1e-12)
    # nothing to compare: 0.0
    assert chroma_similarity(np.zeros(2 * n), a, sr) == 0.0
    assert chroma_similarity(np.zeros(2 * n), np.zeros(2 * n), sr) == 0.0


def test_spectral_centroid_of_bin_centred_tones():
    from emomusic.audio import spectral_centroid

    sr, n = 8192, 4096  # default n_fft: bins every 2 Hz
    t = np.arange(2 * n) / sr
    # a tone on a bin: the Hann leakage is symmetric, so the centroid is the tone
    assert spectral_centroid(np.sin(2 * np.pi * 500 * t), sr) == pytest.approx(500.0, abs=1e-6)
    # two tones: the centroid is their power-weighted mean, (1 * 200 + 4 * 1000) / 5 = 840 Hz
    two = np.sin(2 * np.pi * 200 * t) + 2 * np.sin(2 * np.pi * 1000 * t)
    assert spectral_centroid(two, sr) == pytest.approx(840.0, abs=1e-3)
    # stereo: the channel mean; here one channel carries 200 Hz, the other 1000 Hz at twice the level
    st = np.stack([np.sin(2 * np.pi * 200 * t), 2 * np.sin(2 * np.pi * 1000 * t)], axis=1)
    assert spectral_centroid(st, sr) == pytest.approx(840.0, abs=1e-3)
    # other FFT sizes: bins every 8 Hz at n_fft=1024
    assert spectral_centroid(np.sin(2 * np.pi * 504 * t), sr, n_fft=1024) == pytest.approx(504.0, abs=1e-6)
    assert spectral_centroid(np.zeros(3 * n), sr) == 0.0
    assert spectral_centroid(1e-6 * np.sin(2 * np.pi * 500 * t), sr) == pytest.approx(500.0, abs=1e-6)  # quiet: the same


# -- crossfades and lengths, from the documented rules --------------------------------------
def test_crossfade_gains_are_the_documented_sin_cos_curves():
    sr, fade = 1000, 0.01  # a 10-frame fade
    one, zero = np.ones(50, dtype=np.float32), np.zeros(50, dtype=np.float32)
    t = (np.arange(10) + 0.5) / 10  # each gain taken at the middle of its frame
    fade_out = crossfade_concat([one, zero], sr, fade)[40:50, 0]
    fade_in = crossfade_concat([zero, one], sr, fade)[40:50, 0]
    np.testing.assert_allclose(fade_out, np.cos(np.pi / 2 * t), atol=1e-6)
    np.testing.assert_allclose(fade_in, np.sin(np.pi / 2 * t), atol=1e-6)
    np.testing.assert_allclose(fade_in ** 2 + fade_out ** 2, 1.0, atol=1e-6)  # equal power
    np.testing.assert_allclose(fade_in, fade_out[::-1], atol=1e-6)  # mirror images
    out = crossfade_concat([one, 2 * one], sr, fade)
    assert out.shape == (90, 1) and out.dtype == np.float32
    np.testing.assert_array_equal(out[:40, 0], 1.0)
    np.testing.assert_allclose(out[40:50, 0], np.cos(np.pi / 2 * t) + 2 * np.sin(np.pi / 2 * t), atol=1e-6)
    np.testing.assert_array_equal(out[50:, 0], 2.0)


def test_crossfade_edge_cases():
    sr = 1000
    empty = crossfade_concat([], sr, 0.1)
    assert empty.shape == (0, 2) and empty.dtype == np.float32
    a = np.arange(1, 21, dtype=np.float64)  # float64 in, float32 out
    single = crossfade_concat([a], sr, 0.1)
    assert single.dtype == np.float32 and single.shape == (20, 1)
    np.testing.assert_array_equal(single[:, 0], a)
    # no fade: plain concatenation
    b = -np.arange(1, 6, dtype=np.float32)
    np.testing.assert_array_equal(crossfade_concat([a, b], sr, 0.0)[:, 0], np.concatenate([a, b]))
    # a fade longer than a clip is cut to the shorter clip: 5 frames here, not 100
    short = crossfade_concat([a, b], sr, 0.1)
    assert short.shape == (20, 1)
    np.testing.assert_array_equal(short[:15, 0], a[:15])
    t = (np.arange(5) + 0.5) / 5
    np.testing.assert_allclose(short[15:, 0], a[15:] * np.cos(np.pi / 2 * t) + b * np.sin(np.pi / 2 * t), rtol=1e-6)
    # ... or to what has been joined so far, when the first clip is the short one
    assert crossfade_concat([b, a], sr, 0.1).shape == (20, 1)
    # mono and stereo clips: the mono one is copied into both channels
    st = np.stack([np.full(20, 3.0), np.full(20, -3.0)], axis=1).astype(np.float32)
    mixed = crossfade_concat([a, st], sr, 0.0)
    assert mixed.shape == (40, 2)
    np.testing.assert_array_equal(mixed[:20], np.stack([a, a], axis=1))
    np.testing.assert_array_equal(mixed[20:], st)
    # a stereo clip joining a 3-channel one takes its first channel into all three
    three = np.ones((10, 3), dtype=np.float32)
    joined = crossfade_concat([st, three], sr, 0.0)
    assert joined.shape == (30, 3)
    np.testing.assert_array_equal(joined[:20], np.full((20, 3), 3.0))
    # the fade length rounds to the nearest frame (2.6 -> 3)
    assert crossfade_concat([a, a], sr, 0.0026).shape == (37, 1)
    # a one-frame fade is a fade: both gains at the midpoint are sqrt(1/2)
    one = crossfade_concat([a, b], sr, 0.001)
    assert one.shape == (24, 1)
    assert one[19, 0] == pytest.approx(math.sqrt(0.5) * (a[-1] + b[0]), rel=1e-6)
    # three clips, no fade: all three
    np.testing.assert_array_equal(crossfade_concat([a, b, a], sr, 0.0)[:, 0], np.concatenate([a, b, a]))


def test_fit_length_fades_linearly_over_the_given_time():
    sr = 1000
    a = np.full((100, 2), 0.5, dtype=np.float32)
    cut = fit_length(a, 60, fade_seconds=0.01, sample_rate=sr)  # a 10-frame fade-out
    assert cut.shape == (60, 2) and cut.dtype == np.float32
    np.testing.assert_array_equal(cut[:50], 0.5)
    np.testing.assert_allclose(cut[50:, 0], 0.5 * np.linspace(1.0, 0.0, 10), atol=1e-7)
    np.testing.assert_array_equal(cut[:, 0], cut[:, 1])
    np.testing.assert_array_equal(a, 0.5)  # the input is not changed
    # exactly the length: still the fade; no fade time: untouched
    np.testing.assert_allclose(fit_length(a, 100, 0.01, sr)[90:, 1], 0.5 * np.linspace(1.0, 0.0, 10), atol=1e-7)
    np.testing.assert_array_equal(fit_length(a, 60, 0.0, sr), a[:60])
    # a fade longer than what is kept covers all of it
    np.testing.assert_allclose(fit_length(a, 5, 1.0, sr)[:, 0], 0.5 * np.linspace(1.0, 0.0, 5), atol=1e-7)
    # padding: zeros after the original, no fade, still float32
    ramp = np.arange(1, 11, dtype=np.float32)
    padded = fit_length(ramp, 15, 0.01, sr)
    assert padded.dtype == np.float32
    np.testing.assert_array_equal(padded[:, 0], np.concatenate([ramp, np.zeros(5)]))
    # the defaults: a 50 ms fade at 44.1 kHz is 2205 frames
    d = fit_length(np.ones(10000, dtype=np.float32), 5000)
    assert d[5000 - 2206, 0] == 1.0 and d[5000 - 2205, 0] == 1.0 and d[5000 - 2204, 0] < 1.0
    assert d[-1, 0] == 0.0


def test_shapes_and_stereo():
    from emomusic.audio import as_2d

    with pytest.raises(ValueError, match="shape"):
        as_2d(np.zeros((2, 3, 4)))
    assert as_2d([0.5, 0.25]).dtype == np.float32 and as_2d(np.zeros((3, 2), dtype=np.float64)).dtype == np.float32
    three = np.arange(12, dtype=np.float32).reshape(4, 3)
    np.testing.assert_array_equal(to_stereo(three), three[:, :2])
    mono = np.arange(4, dtype=np.float32)
    np.testing.assert_array_equal(to_stereo(mono), np.stack([mono, mono], axis=1))
    np.testing.assert_array_equal(to_stereo(three[:, :2]), three[:, :2])
    assert rms_db(np.zeros((0, 2))) == -math.inf
    assert rms_db(np.array([0.5])) == pytest.approx(20 * math.log10(0.5), abs=1e-9)  # one sample is audio too
    assert rms_db(np.full((10, 2), 0.25)) == pytest.approx(20 * math.log10(0.25), abs=1e-9)
    # stereo RMS is over both channels: 0.5 and 0 -> sqrt(0.125)
    assert rms_db(np.stack([np.full(10, 0.5), np.zeros(10)], axis=1)) == pytest.approx(10 * math.log10(0.125), abs=1e-9)


def test_wav_file_is_16_bit_pcm_scaled_to_the_peak(tmp_path):
    from scipy.io import wavfile

    from emomusic.errors import EmomusicError

    a = np.array([[0.5, -0.25], [-1.5, 0.75], [0.0, 1.0]], dtype=np.float32)  # peak 1.5 > 0.98
    p = write_wav(tmp_path / "a.wav", a, 12345)
    sr, data = wavfile.read(p)  # scipy's reader: another WAV parser
    assert sr == 12345 and data.dtype == np.int16 and data.shape == (3, 2)
    np.testing.assert_allclose(data / 32768.0, a * (0.98 / 1.5), atol=1.5 / 32768)
    # under the peak: as it is; another peak: scaled to it
    quiet = np.array([0.5, -0.25, 0.125], dtype=np.float32)
    np.testing.assert_allclose(wavfile.read(write_wav(tmp_path / "q.wav", quiet, 8000))[1] / 32768.0, quiet, atol=1 / 32768)
    np.testing.assert_allclose(wavfile.read(write_wav(tmp_path / "p.wav", quiet, 8000, peak=0.25))[1] / 32768.0,
                               quiet * 0.5, atol=1 / 32768)
    assert write_wav(tmp_path / "e.wav", np.zeros((0, 2)), 8000).exists()
    with pytest.raises(EmomusicError, match="NaN"):
        write_wav(tmp_path / "n.wav", np.array([0.1, np.nan]), 8000)
    assert not (tmp_path / "n.wav").exists()
    (tmp_path / "bad.wav").write_text("not audio")
    with pytest.raises(EmomusicError, match="cannot read .*bad.wav as audio"):
        read_wav(tmp_path / "bad.wav")
    data, sr = read_wav(tmp_path / "q.wav")
    assert sr == 8000 and data.dtype == np.float32 and data.shape == (3, 1)


def test_resample_length_ratio_and_identity():
    from scipy.signal import resample_poly

    x = tone(440.0, 0.5, 0.5, 44100)
    y = resample(x, 44100, 48000)
    assert y.shape == (math.ceil(len(x) * 160 / 147), 1) and y.dtype == np.float32  # 48000/44100 = 160/147
    np.testing.assert_allclose(y[:, 0], resample_poly(x.astype(np.float64), 160, 147), atol=1e-6)
    same = resample(x, 8000, 8000)
    np.testing.assert_array_equal(same[:, 0], x)
    same[0, 0] = 9.0
    assert x[0] != 9.0  # a copy, not a view
    np.testing.assert_allclose(resample(x, 16000, 8000)[:, 0], resample_poly(x.astype(np.float64), 1, 2), atol=1e-6)


# -- loudness: pyloudnorm as the reference --------------------------------------------------
def _noise(sr, seconds, levels, seed=7):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((int(seconds * sr), len(levels))) * np.asarray(levels)).astype(np.float32)


def test_five_channel_loudness_weights_as_bs1770():
    import pyloudnorm

    # L, R, C, Ls, Rs at different levels: BS.1770 weights them 1, 1, 1, 1.41, 1.41
    sr = 16000
    x = _noise(sr, 3.0, [0.1, 0.05, 0.2, 0.02, 0.08])
    ref = pyloudnorm.Meter(sr, block_size=3.0).integrated_loudness(x.astype(np.float64))
    assert window_lufs(x, sr) == pytest.approx(ref, abs=0.02)
    st = short_term_lufs(np.concatenate([x, x]), sr, hop_s=1.0)
    assert len(st) == 4
    assert st[0] == pytest.approx(ref, abs=0.02) and st[-1] == pytest.approx(ref, abs=0.02)
    # three channels: L, R and C, all weight 1; one frame is audio too
    three = x[:, :3]
    assert window_lufs(three, sr) == pytest.approx(
        pyloudnorm.Meter(sr, block_size=3.0).integrated_loudness(three.astype(np.float64)), abs=0.02)
    assert window_lufs(three[:, [2, 0, 1]], sr) == pytest.approx(window_lufs(three, sr), abs=1e-9)
    assert window_lufs(x[:1], sr) == pytest.approx(_pyloudnorm_window(x[:1], sr, 0, 1), abs=1e-9)
    # only the centre: weight 1; only a surround: +1.49 dB (10 log10 1.41)
    for ch, extra in ((2, 0.0), (3, 10 * math.log10(1.41)), (4, 10 * math.log10(1.41))):
        only = np.zeros_like(x)
        only[:, ch] = x[:, 0]
        assert window_lufs(only, sr) == pytest.approx(window_lufs(x[:, 0], sr) + extra, abs=1e-6)
        assert short_term_lufs(only, sr)[0] == pytest.approx(window_lufs(only, sr), abs=1e-6)
    # a sixth channel (LFE) is not measured, in no measure
    six = np.concatenate([x, _noise(sr, 3.0, [0.3], seed=8)], axis=1)
    assert integrated_lufs(six, sr) == pytest.approx(integrated_lufs(x, sr), abs=1e-9)
    assert window_lufs(six, sr) == pytest.approx(window_lufs(x, sr), abs=1e-9)
    assert short_term_lufs(six, sr)[0] == pytest.approx(window_lufs(x, sr), abs=1e-9)
    assert short_term_lufs(np.concatenate([six, six]), sr, hop_s=1.0)[-1] == pytest.approx(ref, abs=0.02)
    assert integrated_lufs(x, sr) == pytest.approx(pyloudnorm.Meter(sr).integrated_loudness(x.astype(np.float64)), abs=1e-9)
    assert window_lufs(np.zeros((0, 2)), sr) == -math.inf


def _pyloudnorm_window(x, sr, start, frames):
    """Ungated loudness of frames [start, start + frames) of the whole signal K-weighted by
    pyloudnorm's own filters (run over all of it, as a meter running along the audio does)."""
    import pyloudnorm

    y = np.asarray(x, dtype=np.float64).copy()
    for stage in pyloudnorm.Meter(sr)._filters.values():
        for ch in range(y.shape[1]):
            y[:, ch] = stage.apply_filter(y[:, ch])
    z = np.mean(np.square(y[start:start + frames]), axis=0)
    return -0.691 + 10 * math.log10(float(np.sum(np.array([1.0, 1.0, 1.0, 1.41, 1.41])[: len(z)] * z)))


def test_short_term_windows_and_hops():
    sr = 8000
    x = _noise(sr, 7.3, [0.1, 0.1])
    x[4 * sr:] *= 3  # louder after 4 s: each window's level depends on where it starts
    # the default hop is 100 ms: (7.3 s - 3 s) / 0.1 s + 1 = 44 windows
    st = short_term_lufs(x, sr)
    assert len(st) == 44
    # each value is the loudness of its 3 s window, 100 ms after the previous one
    for i in (0, 17, 43):
        assert st[i] == pytest.approx(_pyloudnorm_window(x, sr, i * sr // 10, 3 * sr), abs=1e-6)
    st = short_term_lufs(x, sr, hop_s=0.25)
    assert len(st) == 18
    assert st[9] == pytest.approx(_pyloudnorm_window(x, sr, 9 * sr // 4, 3 * sr), abs=1e-6)
    # exactly 3 s, or less: one value over everything
    assert short_term_lufs(x[:3 * sr], sr) == pytest.approx([window_lufs(x[:3 * sr], sr)], abs=1e-9)
    assert short_term_lufs(x[:sr], sr) == pytest.approx([window_lufs(x[:sr], sr)], abs=1e-9)
    # one frame more than 3 s: two windows a frame apart at a one-frame hop, one at 100 ms
    one_more = short_term_lufs(x[:3 * sr + 1], sr, hop_s=1 / sr)
    assert len(one_more) == 2 and len(short_term_lufs(x[:3 * sr + 1], sr)) == 1
    assert one_more[1] == pytest.approx(_pyloudnorm_window(x[:3 * sr + 1], sr, 1, 3 * sr), abs=1e-6)
    assert short_term_lufs(np.zeros((0, 2)), sr).shape == (0,)
    # silent windows are -inf, not an error
    quiet = np.concatenate([np.zeros((4 * sr, 2), dtype=np.float32), x[:3 * sr]])
    st = short_term_lufs(quiet, sr, hop_s=1.0)
    assert st[0] == -math.inf and math.isfinite(st[-1])


def test_integrated_lufs_of_short_audio_is_its_window_loudness():
    import pyloudnorm

    sr = 10000
    x = _noise(sr, 1.0, [0.1, 0.3])
    x[3000:] *= 4  # loud after 0.3 s: one block and the whole differ
    block = int(0.4 * sr)  # 4000 frames: still a single window
    assert integrated_lufs(x[:block], sr) == pytest.approx(window_lufs(x[:block], sr), abs=1e-9)
    for n in (1, 100, block - 1):  # shorter than a block: no pyloudnorm (it refuses such audio)
        assert integrated_lufs(x[:n], sr) == pytest.approx(window_lufs(x[:n], sr), abs=1e-9)
    # from one frame more, pyloudnorm's gated blocks
    longer = x[:block + 1].astype(np.float64)
    assert integrated_lufs(longer, sr) == pytest.approx(pyloudnorm.Meter(sr).integrated_loudness(longer), abs=1e-9)
    assert integrated_lufs(np.zeros((0, 2)), sr) == -math.inf


def test_gain_is_target_minus_level_unless_the_true_peak_limits_it():
    import pyloudnorm

    sr = 16000
    x = _noise(sr, 4.0, [0.05, 0.05])
    level = pyloudnorm.Meter(sr).integrated_loudness(x.astype(np.float64))
    assert lufs_gain_db(x, sr, -30.0, 0.0) == pytest.approx(-30.0 - level, abs=1e-6)
    # the default target is -16 LUFS; the default ceiling -1 dBTP
    assert lufs_gain_db(x, sr) == pytest.approx(-16.0 - level, abs=1e-6)
    y = normalize_lufs(x, sr)
    assert y.dtype == np.float32
    assert pyloudnorm.Meter(sr).integrated_loudness(y.astype(np.float64)) == pytest.approx(-16.0, abs=0.01)
    # a ceiling below where the target would put the peak: the gain puts the true peak there
    tp = true_peak_db(x)
    assert lufs_gain_db(x, sr, -5.0, -3.0) == pytest.approx(-3.0 - tp, abs=1e-6)
    assert lufs_gain_db(x, sr, -5.0) == pytest.approx(-1.0 - tp, abs=1e-6)
    # normalize_loudness: target -20 LUFS and a linear peak 0.98 by default
    z = normalize_loudness(x, sr)
    assert pyloudnorm.Meter(sr).integrated_loudness(z.astype(np.float64)) == pytest.approx(-20.0, abs=0.01)
    capped = normalize_loudness(x, sr, target_db=0.0, peak=0.5)
    assert true_peak(capped) == pytest.approx(0.5, rel=1e-3)


def test_true_peak_without_oversampling_is_the_sample_peak():
    n = np.arange(4000)
    x = np.sin(np.pi / 2 * n + np.pi / 4).astype(np.float32)
    assert true_peak(x, oversample=1) == pytest.approx(np.max(np.abs(x)), abs=0)
    assert true_peak(x, oversample=2) > 0.99  # two times already finds the crest between samples
    full_scale = x / np.max(np.abs(x))  # samples exactly at 1.0, the wave above them
    assert np.max(np.abs(full_scale)) == 1.0 and true_peak(full_scale) == pytest.approx(math.sqrt(2), abs=0.03)
    assert true_peak(np.zeros((0, 2))) == 0.0
    # stereo: the larger channel; a short peak in the last frames is still found
    from scipy.signal import resample_poly

    y = np.zeros((30000, 2), dtype=np.float32)
    y[29990:29998, 1] = x[:8]
    y[:100, 0] = 0.1
    full = float(np.max(np.abs(resample_poly(y.astype(np.float64), 4, 1, axis=0))))
    assert full > 0.9 and true_peak(y) == pytest.approx(full, rel=1e-9)


def test_k_weighting_is_bs1770s_at_low_mid_and_high_frequencies():
    """window_lufs over a whole signal is pyloudnorm's loudness of one block spanning it: the
    same K-weighting (shelf +4 dB above ~1.5 kHz, RLB high-pass at 38 Hz) to float precision."""
    import pyloudnorm

    sr = 16000
    for freq in (30.0, 40.0, 100.0, 1500.0, 4000.0):
        x = np.stack([tone(freq, 2.0, 0.5, sr), tone(freq, 2.0, 0.2, sr)], axis=1)
        ref = pyloudnorm.Meter(sr, block_size=2.0).integrated_loudness(x.astype(np.float64))
        assert window_lufs(x, sr) == pytest.approx(ref, abs=1e-6), freq
    # the high-pass takes 30 Hz well down, the shelf lifts 4 kHz some 3-4 dB over 1 kHz
    assert window_lufs(tone(30.0, 2.0, 0.5, sr), sr) < window_lufs(tone(1000.0, 2.0, 0.5, sr), sr) - 3
    assert 2.5 < window_lufs(tone(4000.0, 2.0, 0.5, sr), sr) - window_lufs(tone(1000.0, 2.0, 0.5, sr), sr) < 4.5
    # silence of any length is -inf, not an error
    assert window_lufs(np.zeros(100), sr) == -math.inf
    assert short_term_lufs(np.zeros(100), sr)[0] == -math.inf


def test_sample_peak_is_the_largest_magnitude():
    from emomusic.audio import sample_peak

    rng = np.random.default_rng(2)
    for shape in [(1,), (7, 2), (1000, 2), (3, 5)]:
        x = rng.standard_normal(shape).astype(np.float32)
        assert sample_peak(x) == float(np.max(np.abs(x)))
        assert sample_peak(-np.abs(x)) == float(np.max(np.abs(x)))  # the peak is a negative sample
    assert sample_peak(np.zeros((0, 2), dtype=np.float32)) == 0.0
    y = np.ones((4, 2), dtype=np.float32)
    y[2, 1] = np.nan
    assert math.isnan(sample_peak(y))


def test_k_weighting_channels_first_is_the_same_signal():
    """channels_first gives the very same samples, one contiguous row per channel (mono,
    stereo and five channels; float32 and float64)."""
    from emomusic.audio import k_weighted

    rng = np.random.default_rng(4)
    for shape in [(3000,), (3000, 2), (2000, 5)]:
        x = (0.3 * rng.standard_normal(shape)).astype(np.float32)
        for dtype in (np.float32, np.float64):
            rows = k_weighted(x, 44100, dtype=dtype, channels_first=True)
            assert rows.flags.c_contiguous and rows.dtype == dtype
            assert np.array_equal(rows, k_weighted(x, 44100, dtype=dtype).T)


def test_audio_below_the_absolute_gate_is_minus_infinity():
    sr = 8000
    faint = _noise(sr, 2.0, [1e-5, 1e-5])  # about -100 LUFS: every block is under the -70 LUFS gate
    assert integrated_lufs(faint, sr) == -math.inf
    assert lufs_gain_db(faint, sr) == 0.0
    np.testing.assert_array_equal(normalize_lufs(faint, sr), faint)


def test_room_reverb_is_pedalboards_reverb_with_the_documented_levels():
    from pedalboard import Reverb

    from emomusic.audio import room_reverb

    sr = 8000
    rng = np.random.default_rng(9)
    x = (0.2 * rng.standard_normal((sr // 2, 2))).astype(np.float32)
    for amount, size in ((0.3, 0.5), (0.8, 0.9)):
        padded = np.concatenate([x, np.zeros((int(1.5 * sr), 2), dtype=np.float32)])
        fx = Reverb(room_size=size, damping=0.5, wet_level=amount, dry_level=1 - amount / 2, width=1.0)
        ref = fx(np.ascontiguousarray(padded.T), float(sr)).T
        got = room_reverb(x, sr, amount, room_size=size, tail_s=1.5)
        assert got.shape == (x.shape[0] + int(1.5 * sr), 2)
        np.testing.assert_allclose(got, ref, atol=1e-6)
    # mono in, stereo out; no reverb: a copy of the (stereo) input
    assert room_reverb(x[:, 0], sr, 0.3, tail_s=0.5).shape == (x.shape[0] + sr // 2, 2)
    dry = room_reverb(x, sr, 0.0)
    dry[0, 0] = 5.0
    assert x[0, 0] != 5.0
    np.testing.assert_array_equal(room_reverb(x[:, 0], sr, -0.1), np.repeat(x[:, :1], 2, axis=1))
    # the defaults: amount 0.2, room 0.5, a 2 s tail
    padded = np.concatenate([x, np.zeros((2 * sr, 2), dtype=np.float32)])
    ref = Reverb(room_size=0.5, damping=0.5, wet_level=0.2, dry_level=0.9, width=1.0)(np.ascontiguousarray(padded.T), float(sr)).T
    np.testing.assert_allclose(room_reverb(x, sr), ref, atol=1e-6)


@pytest.mark.parametrize("frames", [5, 30000])
def test_room_reverb_is_the_processor_on_channel_major_audio(frames):
    """room_reverb hands pedalboard (frames, 2) audio as it is; the samples are those of the
    channel-major (2, frames) call, to the bit."""
    from emomusic.audio import reverb_processor, room_reverb

    rng = np.random.default_rng(frames)
    a = (rng.standard_normal((frames, 2)) * 0.3).astype(np.float32)
    pad = np.zeros((int(round(0.5 * 22050)), 2), dtype=np.float32)
    want = reverb_processor(0.3)(np.ascontiguousarray(np.concatenate([a, pad]).T), 22050.0).T
    got = room_reverb(a, 22050, 0.3, tail_s=0.5)
    assert got.dtype == np.float32 and got.shape == (frames + pad.shape[0], 2)
    assert np.array_equal(got, want)
    short = room_reverb(a[:3], 22050, 0.3, tail_s=0.0)  # too short to tell the axes apart: the channel-major call
    assert np.array_equal(short, reverb_processor(0.3)(np.ascontiguousarray(a[:3].T), 22050.0).T)


def test_to_pcm16_rounds_half_to_even_and_clips():
    from emomusic.audio import to_pcm16

    rng = np.random.default_rng(3)
    x = (rng.standard_normal((4000, 2)) * 0.6).astype(np.float32)
    x[:8, 0] = np.array([0.5, 1.5, 2.5, -0.5, -2.5, 32766.5, 1e9, -1e9], dtype=np.float32) / np.float32(32767)
    for a in (x, x.astype(np.float64), x[:, 0]):
        assert np.array_equal(to_pcm16(a), np.round(np.clip(a, -1.0, 1.0) * 32767.0).astype(np.int16))
    assert to_pcm16(x).dtype == np.int16 and x[6, 0] > 1  # the input is left alone
    # integer samples and plain numbers (not arrays: the other path), the same rule by hand:
    # 1 -> 32767, 3 clips, 0.5 * 32767 = 16383.5 rounds to the even 16384, -0.25 -> -8191.75
    ints = to_pcm16(np.array([1, 0, -1, 3]))
    assert ints.dtype == np.int16 and ints.tolist() == [32767, 0, -32767, 32767]
    scalars = [to_pcm16(v) for v in (1.0, 2.0, 0.5, -0.25, -1.0)]
    assert all(s.dtype == np.int16 for s in scalars) and [int(s) for s in scalars] == [32767, 32767, 16384, -8192, -32767]


@pytest.mark.parametrize("hot", [0, 3, 500, 2048, 2049, 30000, 200000])
def test_near_peaks_is_every_frame_within_the_filter_reach_of_a_loud_one(hot):
    """Few loud frames or many (neighbourhoods apart, touching, overlapping, at the edges):
    exactly the frames within TAPS_HALF of a frame at the threshold, in order, once each."""
    from emomusic.audio import TAPS_HALF, near_peaks

    rng = np.random.default_rng(hot)
    n = 300_000
    level = rng.uniform(0.0, 0.49, n).astype(np.float32)
    loud = rng.choice(n, hot, replace=False)
    level[loud] = 0.5
    level[:1] = 0.5 if hot else level[:1]  # the edges too
    level[-1:] = 0.5 if hot else level[-1:]
    marks = np.zeros(n + 2 * TAPS_HALF, dtype=bool)
    for k in np.flatnonzero(level >= 0.5):
        marks[k: k + 2 * TAPS_HALF + 1] = True
    want = np.flatnonzero(marks[TAPS_HALF: TAPS_HALF + n])
    assert np.array_equal(near_peaks(level, 0.5), want)


def test_near_peaks_on_short_signals_with_runs_that_touch():
    """Loud frames 2 * TAPS_HALF + 1 and + 2 apart (neighbourhoods touching / one frame
    apart), signals shorter than one neighbourhood: the same frames as a dilated mask."""
    from emomusic.audio import TAPS_HALF, near_peaks

    rng = np.random.default_rng(5)
    w = 2 * TAPS_HALF + 1
    for n in [1, 2, TAPS_HALF, w, w + 1, 3 * w, 200]:
        for _ in range(40):
            level = np.zeros(n, dtype=np.float32)
            k = int(rng.integers(0, n))
            level[k] = 1.0
            for step in (w, w + 1, int(rng.integers(1, w + 3))):
                if k + step < n:
                    level[k + step] = 1.0
            marks = np.zeros(n + 2 * TAPS_HALF, dtype=bool)
            for j in np.flatnonzero(level >= 1.0):
                marks[j: j + w] = True
            want = np.flatnonzero(marks[TAPS_HALF: TAPS_HALF + n])
            got = near_peaks(level, 1.0)
            assert got.dtype == np.int64 and np.array_equal(got, want)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_interpolated_peaks_match_resample_poly_at_any_position(dtype):
    """Unsorted positions, the first and last frames (zeros outside), chunks of any size: the
    largest magnitude of resample_poly's 4x signal in [n, n + 1)."""
    from scipy.signal import resample_poly

    from emomusic.audio import interpolated_peaks

    rng = np.random.default_rng(11)
    a = (rng.standard_normal((5000, 2)) * 0.3).astype(np.float32)
    up = resample_poly(a.astype(np.float64), 4, 1, axis=0)
    pos = rng.permutation(np.unique(np.concatenate([rng.choice(5000, 700), [0, 1, 4998, 4999]])))
    want = np.abs(up.reshape(5000, 4, 2)).max(axis=(1, 2))[pos]
    for chunk in (1, 64, 1 << 15):
        got = interpolated_peaks(a, pos, chunk=chunk, dtype=dtype)
        assert np.allclose(got, want, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=0)
