"""Audio helpers on numpy arrays: WAV I/O, loudness (BS.1770 LUFS), normalisation, crossfades, resampling.

Audio is float32, shape ``(frames, channels)``; mono input of shape ``(frames,)`` is
accepted and treated as one channel. WAV files are written atomically as 16-bit PCM.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np

from emomusic.atomic import atomic_path
from emomusic.errors import EmomusicError

DEFAULT_SAMPLE_RATE = 44100


def as_2d(audio: np.ndarray) -> np.ndarray:
    a = np.asarray(audio, dtype=np.float32)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise ValueError(f"audio must be (frames,) or (frames, channels), got shape {a.shape}")
    return a


def to_stereo(audio: np.ndarray) -> np.ndarray:
    a = as_2d(audio)
    if a.shape[1] == 2:
        return a
    if a.shape[1] == 1:
        return np.repeat(a, 2, axis=1)
    return a[:, :2]


def write_wav(path: str | Path, audio: np.ndarray, sample_rate: int, peak: float = 0.98) -> Path:
    """Write 16-bit PCM. Audio is scaled down (never clipped) if its peak exceeds ``peak``."""
    import soundfile as sf

    a = as_2d(audio)
    if not np.all(np.isfinite(a)):
        raise EmomusicError("audio contains NaN or infinite samples")
    m = float(np.max(np.abs(a))) if a.size else 0.0
    if m > peak:
        a = a * (peak / m)
    with atomic_path(path) as tmp:
        sf.write(str(tmp), a, int(sample_rate), subtype="PCM_16", format="WAV")
    return Path(path)


def sample_peak(audio: np.ndarray) -> float:
    """The largest magnitude of the samples (0.0 when empty; NaN when there is one):
    ``np.max(np.abs(audio))`` from the largest and the smallest value, without a copy."""
    a = np.asarray(audio)
    if a.size == 0:
        return 0.0
    hi, lo = float(np.max(a)), float(np.min(a))
    return hi if math.isnan(hi) else max(hi, -lo)


def to_pcm16(audio: np.ndarray) -> np.ndarray:
    """16-bit samples of float audio (clipped to [-1, 1], scaled by 32767, rounded half to
    even), converted in numpy: one temporary, scaled and rounded in place (the same values as
    ``np.round(np.clip(audio, -1, 1) * 32767).astype(np.int16)``)."""
    a = np.clip(audio, -1.0, 1.0)
    if not (isinstance(a, np.ndarray) and a.dtype.kind == "f"):
        return np.round(a * 32767.0).astype(np.int16)
    a *= a.dtype.type(32767.0)
    np.rint(a, out=a)
    return a.astype(np.int16)


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    import soundfile as sf

    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:
        raise EmomusicError(f"cannot read {path} as audio: {exc}") from None
    return data, int(sr)


def rms_db(audio: np.ndarray) -> float:
    """RMS level in dBFS (-inf for silence)."""
    a = as_2d(audio)
    if a.size == 0:
        return -math.inf
    r = float(np.sqrt(np.mean(np.square(a, dtype=np.float64))))
    return 20 * math.log10(r) if r > 0 else -math.inf


# -- loudness (ITU-R BS.1770-4 / EBU R 128) ----------------------------------------------
# Rendered WAVs and sessions are levelled to LISTENING_LUFS integrated loudness, with the
# true peak (4x oversampled) at most TRUE_PEAK_DBTP; see docs/audio.md.
LISTENING_LUFS = -16.0
TRUE_PEAK_DBTP = -1.0
SHORT_TERM_S = 3.0  # EBU Tech 3341 short-term window
MOMENTARY_S = 0.4


def _k_filters(sample_rate: int):
    """The BS.1770 K-weighting (pre-filter shelf + RLB high-pass) as pyloudnorm builds it,
    so window loudness here and pyloudnorm's integrated loudness use the same weighting."""
    from pyloudnorm import IIRfilter

    shelf = IIRfilter(4.0, 1 / math.sqrt(2), 1500.0, sample_rate, "high_shelf")
    hp = IIRfilter(0.0, 0.5, 38.0, sample_rate, "high_pass")
    return [(f.b, f.a, f.passband_gain) for f in (shelf, hp)]


@functools.lru_cache(maxsize=8)
def k_sos(sample_rate: int) -> np.ndarray:
    """The K-weighting as one second-order-sections array (pyloudnorm's two biquads, each
    with its passband gain folded into the numerator), for ``scipy.signal.sosfilt``."""
    rows = []
    for b, a, g in _k_filters(int(sample_rate)):
        b, a = np.asarray(b, dtype=np.float64), np.asarray(a, dtype=np.float64)
        rows.append(np.concatenate([g * b / a[0], a / a[0]]))
    return np.vstack(rows)


def k_weighted(audio: np.ndarray, sample_rate: int, dtype=np.float64, channels_first: bool = False) -> np.ndarray:
    """The K-weighted signal (same shape as ``as_2d(audio)``), filtered in ``dtype``:
    float64 by default; float32 is about four times faster and agrees with it to well
    under 0.001 LU on music (tests/test_audio.py). ``channels_first``: the same values as
    a ``(channels, frames)`` array, each channel contiguous (sosfilt then runs along
    contiguous rows: about 40 % faster on a stereo clip)."""
    from scipy.signal import sosfilt

    sos = k_sos(int(sample_rate)).astype(dtype)
    if channels_first:
        return sosfilt(sos, np.ascontiguousarray(as_2d(audio).T, dtype=dtype), axis=-1)
    x = as_2d(audio).astype(dtype, copy=False)
    return sosfilt(sos, x, axis=0)


def _power_to_lufs(power: float) -> float:
    return -0.691 + 10 * math.log10(power) if power > 0 else -math.inf


def window_lufs(audio: np.ndarray, sample_rate: int) -> float:
    """Ungated K-weighted loudness of the whole of ``audio`` in LUFS: the momentary
    loudness for a 400 ms block, the short-term loudness for a 3 s block (EBU Tech 3341).
    Stereo channels are summed in power (weight 1 each), as BS.1770 says."""
    a = as_2d(audio)
    if a.shape[0] == 0:
        return -math.inf
    z = np.mean(np.square(k_weighted(a, sample_rate)), axis=0)
    return _power_to_lufs(float(np.sum(z[:2])) + 1.41 * float(np.sum(z[3:5])) + (float(z[2]) if z.size > 2 else 0.0))


def short_term_lufs(audio: np.ndarray, sample_rate: int, hop_s: float = 0.1) -> np.ndarray:
    """Short-term loudness (3 s windows, ungated) every ``hop_s`` seconds, in LUFS; one
    value per window that fits (a single window over everything for shorter audio)."""
    a = as_2d(audio)
    if a.shape[0] == 0:
        return np.zeros(0)
    n = int(round(SHORT_TERM_S * sample_rate))
    k = np.square(k_weighted(a, sample_rate))
    w = np.zeros(k.shape[1])  # L, R, C, Ls, Rs as window_lufs; a sixth channel (LFE) and beyond are not measured
    w[:5] = [1.0, 1.0, 1.0, 1.41, 1.41][: min(5, k.shape[1])]
    p = k @ w
    if p.shape[0] <= n:
        return np.array([_power_to_lufs(float(np.mean(p)))])
    c = np.concatenate([[0.0], np.cumsum(p)])
    hop = max(1, int(round(hop_s * sample_rate)))
    starts = np.arange(0, p.shape[0] - n + 1, hop)
    power = (c[starts + n] - c[starts]) / n
    with np.errstate(divide="ignore"):
        return np.where(power > 0, -0.691 + 10 * np.log10(np.maximum(power, 1e-300)), -np.inf)


def integrated_lufs(audio: np.ndarray, sample_rate: int) -> float:
    """Integrated loudness in LUFS (ITU-R BS.1770-4: K-weighting, 400 ms blocks with 75 %
    overlap, -70 LUFS absolute and -10 LU relative gates), measured by pyloudnorm.
    Audio shorter than one block gets its ungated loudness; silence gives -inf."""
    import pyloudnorm

    a = as_2d(audio).astype(np.float64)
    if a.shape[0] == 0 or not np.any(a):
        return -math.inf
    if a.shape[0] < int(MOMENTARY_S * sample_rate) + 1:
        return window_lufs(a, sample_rate)
    meter = pyloudnorm.Meter(int(sample_rate))
    with np.errstate(divide="ignore", invalid="ignore"):
        level = float(meter.integrated_loudness(a[:, :5]))
    return level if math.isfinite(level) else -math.inf


def loudness_db(audio: np.ndarray, sample_rate: int, window_s: float = 0.4) -> float:
    """The loudness measure used for levelling: BS.1770-4 integrated loudness in LUFS
    (:func:`integrated_lufs`). ``window_s`` is accepted for older callers and ignored."""
    return integrated_lufs(audio, sample_rate)


OVERSHOOT = 0.5  # an inter-sample peak is taken to exceed its neighbouring samples by at most 6 dB
TAPS_HALF = 10  # the interpolation filter reaches this many samples either side (scipy resample_poly's)


@functools.lru_cache(maxsize=4)
def interpolation_phases(oversample: int) -> np.ndarray:
    """``(oversample, 2 * TAPS_HALF + 1)`` polyphase taps of scipy ``resample_poly``'s
    interpolation filter (Kaiser-windowed sinc, beta 5, 10 zero crossings each side): row
    ``p`` gives the value at ``n + p / oversample`` as ``sum_j H[p, j] * x[n + TAPS_HALF - j]``,
    exactly what ``resample_poly(x, oversample, 1)`` computes there (zeros outside ``x``)."""
    from scipy.signal import firwin

    up = int(oversample)
    half = TAPS_HALF * up
    h = firwin(2 * half + 1, 1.0 / up, window=("kaiser", 5.0)) * up
    out = np.zeros((up, 2 * TAPS_HALF + 1))
    for p in range(up):
        for j in range(2 * TAPS_HALF + 1):
            k = p + half + up * (j - TAPS_HALF)
            if 0 <= k <= 2 * half:
                out[p, j] = h[k]
    return out


def interpolated_peaks(a: np.ndarray, positions: np.ndarray, oversample: int = 4, chunk: int = 1 << 15,
                       dtype=np.float64) -> np.ndarray:
    """The largest magnitude of the ``oversample``-times interpolated signal (over the
    channels and the phases 0..oversample-1) in the interval ``[n, n + 1)`` of each frame
    ``n`` in ``positions`` (one value per position; computed in ``dtype``: float64 is
    exactly resample_poly's, float32 agrees to ~1e-6 relative)."""
    from numpy.lib.stride_tricks import sliding_window_view

    h = interpolation_phases(oversample).T.astype(dtype)  # (taps, phases)
    taps = h.shape[0]
    n = a.shape[0]
    positions = np.asarray(positions, dtype=np.int64)
    out = np.empty(positions.shape[0], dtype=np.float64)
    for s in range(0, positions.shape[0], chunk):
        p = positions[s:s + chunk]
        if p.size == 0:
            continue
        # the frames the chunk's windows reach, zeros outside the signal (as resample_poly pads),
        # reversed: the window of p, x[p + TAPS_HALF - j] for j = 0..taps-1, is then a
        # contiguous run (channels, taps) of a sliding-window view, gathered in one copy
        lo, hi = int(p.min()) - TAPS_HALF, int(p.max()) + TAPS_HALF + 1
        seg = np.zeros((hi - lo, a.shape[1]), dtype=dtype)
        seg[max(0, -lo): (hi - lo) - max(0, hi - n)] = a[max(0, lo): min(n, hi)]
        rev = seg[::-1]  # rev[m] = x[hi - 1 - m]
        win = sliding_window_view(rev, taps, axis=0)[hi - 1 - (p + TAPS_HALF)]  # (k, channels, taps)
        # stacked small products (one 2-D product of (k * channels, taps) gives the same values,
        # but OpenBLAS runs it on threads that then spin: twice the process CPU); the k rows of
        # channels * phases values reduced column by column (numpy reduces a short axis slowly)
        y = np.matmul(win, h).reshape(p.shape[0], -1)
        np.abs(y, out=y)
        m = y[:, 0].copy()
        for j in range(1, y.shape[1]):
            np.maximum(m, y[:, j], out=m)
        out[s:s + chunk] = m
    return out


def frame_level(a: np.ndarray) -> np.ndarray:
    """Per-frame magnitude, the largest over the channels (float32; a loop over the
    channels: numpy reduces a short last axis slowly)."""
    level = np.abs(a[:, 0])
    for c in range(1, a.shape[1]):
        level = np.maximum(level, np.abs(a[:, c]))
    return level


def near_peaks(level: np.ndarray, threshold: float) -> np.ndarray:
    """Frames whose interpolation window (``TAPS_HALF`` either side) holds a sample of
    magnitude ``>= threshold``; ``level`` is the per-frame magnitude (max over channels).

    The union of the loud frames' neighbourhoods, built from their merged runs: time in the
    number of frames found, not in the length of ``level`` (scipy's ``maximum_filter1d`` of
    a mask took 20-25 ms per 35-s clip, ``np.unique`` of the neighbourhoods as long)."""
    hot = np.flatnonzero(level >= threshold)
    if hot.size == 0:
        return hot
    lo = np.maximum(hot - TAPS_HALF, 0)  # each loud frame's neighbourhood [lo, hi), in the signal
    hi = np.minimum(hot + TAPS_HALF + 1, level.shape[0])
    new = np.empty(hot.size, dtype=bool)  # a neighbourhood that does not reach the one before starts a run
    new[0] = True
    np.greater(lo[1:], hi[:-1], out=new[1:])
    starts = lo[new]
    ends = np.append(hi[:-1][new[1:]], hi[-1])  # a run ends where the next one starts (or at the last)
    lengths = ends - starts
    before = np.cumsum(lengths) - lengths  # frames listed before each run
    return np.arange(int(lengths.sum()), dtype=np.int64) + np.repeat(starts - before, lengths)


def true_peak(audio: np.ndarray, oversample: int = 4) -> float:
    """Linear true-peak estimate (BS.1770-4 annex 2): the largest magnitude of the signal
    upsampled ``oversample`` times with scipy ``resample_poly``'s filter; never below the
    sample peak.

    The interpolated signal is computed only around samples within 6 dB of the sample peak
    (:data:`OVERSHOOT`): elsewhere an inter-sample peak would have to exceed its samples by
    more than 6 dB, which band-limited audio does not do. Around them it is exactly
    ``resample_poly``'s (tests/test_audio.py), and a 15-minute mix takes a few milliseconds."""
    a = as_2d(audio)
    if a.size == 0:
        return 0.0
    level = frame_level(a)
    peak = float(np.max(level))
    if oversample <= 1 or peak == 0.0 or not math.isfinite(peak):
        return peak
    pos = near_peaks(level, OVERSHOOT * peak)
    return max(peak, float(np.max(interpolated_peaks(a, pos, oversample))))


def true_peak_db(audio: np.ndarray, oversample: int = 4) -> float:
    """True peak in dBTP (-inf for silence)."""
    p = true_peak(audio, oversample)
    return 20 * math.log10(p) if p > 0 else -math.inf


def lufs_gain_db(audio: np.ndarray, sample_rate: int, target_lufs: float = LISTENING_LUFS,
                 true_peak_dbtp: float = TRUE_PEAK_DBTP) -> float:
    """The gain in dB that brings ``audio`` to ``target_lufs``, lowered as far as needed to
    keep its true peak at or below ``true_peak_dbtp`` (0.0 for silence)."""
    level = integrated_lufs(audio, sample_rate)
    if not math.isfinite(level):
        return 0.0
    gain = target_lufs - level
    tp = true_peak_db(audio)
    if math.isfinite(tp) and tp + gain > true_peak_dbtp:
        gain = true_peak_dbtp - tp
    return gain


def normalize_lufs(audio: np.ndarray, sample_rate: int, target_lufs: float = LISTENING_LUFS,
                   true_peak_dbtp: float = TRUE_PEAK_DBTP) -> np.ndarray:
    """Scale to ``target_lufs`` integrated loudness with the true peak at most
    ``true_peak_dbtp`` (a plain gain: no limiter, so quiet music with high peaks may stay
    below the target; :func:`integrated_lufs` of the result says where it landed)."""
    a = as_2d(audio)
    gain = lufs_gain_db(a, sample_rate, target_lufs, true_peak_dbtp)
    return (a * np.float32(10 ** (gain / 20))).astype(np.float32)


def normalize_loudness(audio: np.ndarray, sample_rate: int, target_db: float = -20.0, peak: float = 0.98) -> np.ndarray:
    """Scale to ``target_db`` LUFS integrated loudness, lowering the gain if the true peak
    would exceed ``peak`` (linear)."""
    return normalize_lufs(audio, sample_rate, target_db, 20 * math.log10(peak))


def crossfade_concat(clips: list[np.ndarray], sample_rate: int, fade_seconds: float) -> np.ndarray:
    """Join clips with equal-power crossfades of ``fade_seconds`` (sin/cos gains, so the
    summed power stays constant through each join). Output length is the sum of clip
    lengths minus one fade per join."""
    if not clips:
        return np.zeros((0, 2), dtype=np.float32)
    chans = max(as_2d(c).shape[1] for c in clips)
    items = [as_2d(c) if as_2d(c).shape[1] == chans else np.repeat(as_2d(c)[:, :1], chans, axis=1) for c in clips]
    fade = int(round(fade_seconds * sample_rate))
    out = items[0].copy()
    for clip in items[1:]:
        f = min(fade, out.shape[0], clip.shape[0])
        if f <= 0:
            out = np.concatenate([out, clip])
            continue
        t = (np.arange(f, dtype=np.float32) + 0.5) / f
        fade_out = np.cos(t * np.pi / 2)[:, None]
        fade_in = np.sin(t * np.pi / 2)[:, None]
        joined = out[-f:] * fade_out + clip[:f] * fade_in
        out = np.concatenate([out[:-f], joined, clip[f:]])
    return out.astype(np.float32)


def fit_length(audio: np.ndarray, frames: int, fade_seconds: float = 0.05, sample_rate: int = DEFAULT_SAMPLE_RATE) -> np.ndarray:
    """Cut or zero-pad to exactly ``frames``; a cut end gets a short fade-out (no click)."""
    a = as_2d(audio)
    if a.shape[0] >= frames:
        a = a[:frames].copy()
        f = min(frames, int(fade_seconds * sample_rate))
        if f > 0:
            a[-f:] *= np.linspace(1.0, 0.0, f, dtype=np.float32)[:, None]
        return a
    pad = np.zeros((frames - a.shape[0], a.shape[1]), dtype=np.float32)
    return np.concatenate([a, pad])


def resample(audio: np.ndarray, sr_from: int, sr_to: int) -> np.ndarray:
    """Band-limited polyphase resampling (scipy)."""
    if sr_from == sr_to:
        return as_2d(audio).copy()
    from scipy.signal import resample_poly

    g = math.gcd(int(sr_from), int(sr_to))
    return resample_poly(as_2d(audio), sr_to // g, sr_from // g, axis=0).astype(np.float32)


REVERB_TAIL_S = 2.0


def reverb_processor(amount: float, room_size: float = 0.5):
    """The room reverb (pedalboard's Freeverb-style ``Reverb``) of :func:`room_reverb`:
    wet level ``amount``, dry level ``1 - amount / 2``; call it with ``reset=False`` to run
    a stream block by block."""
    from pedalboard import Reverb

    return Reverb(room_size=float(room_size), damping=0.5, wet_level=float(amount), dry_level=1.0 - float(amount) / 2,
                  width=1.0)


def room_reverb(audio: np.ndarray, sample_rate: int, amount: float = 0.2, room_size: float = 0.5,
                tail_s: float = REVERB_TAIL_S) -> np.ndarray:
    """A room reverb (pedalboard's Freeverb-style ``Reverb``, damping 0.5, full stereo width)
    mixed in at ``amount`` (0 = dry, 1 = all wet): wet level ``amount``, dry level
    ``1 - amount / 2``. The output
    is ``tail_s`` longer than the input, so the reverb tail is not cut. Deterministic."""
    a = to_stereo(audio)
    if amount <= 0:
        return a.copy()
    pad = np.zeros((int(round(tail_s * sample_rate)), 2), dtype=np.float32)
    x = np.concatenate([a, pad])
    fx = reverb_processor(amount, room_size)
    if x.shape[0] > 16:  # (frames, 2) as it is: pedalboard reads the longer axis as time (no transposed copies)
        return np.asarray(fx(x, float(sample_rate)), dtype=np.float32)
    return np.ascontiguousarray(fx(np.ascontiguousarray(x.T), float(sample_rate)).T).astype(np.float32)


# -- spectral descriptors (used to compare renderers) -------------------------------------
def _frames_power(audio: np.ndarray, n_fft: int) -> np.ndarray:
    m = as_2d(audio).astype(np.float64).mean(axis=1)
    k = m.shape[0] // n_fft
    if k == 0:
        m = np.pad(m, (0, n_fft - m.shape[0]))
        k = 1
    return np.abs(np.fft.rfft(m[: k * n_fft].reshape(k, n_fft) * np.hanning(n_fft), axis=1)) ** 2


def spectral_centroid(audio: np.ndarray, sample_rate: int, n_fft: int = 4096) -> float:
    """Power-weighted mean frequency (Hz) of the whole signal (channels averaged)."""
    p = _frames_power(audio, n_fft).sum(axis=0)
    f = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    return float((p * f).sum() / p.sum()) if p.sum() > 0 else 0.0


def chroma(audio: np.ndarray, sample_rate: int, n_fft: int = 8192, fmin: float = 55.0, fmax: float = 5000.0) -> np.ndarray:
    """Chroma per frame, shape ``(frames, 12)`` (pitch class 0 = C): STFT power between
    ``fmin`` and ``fmax`` summed per pitch class (each bin to its nearest semitone)."""
    p = _frames_power(audio, n_fft)
    f = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    sel = (f >= fmin) & (f <= fmax)
    pc = np.mod(np.round(12 * np.log2(f[sel] / 440.0)) + 9, 12).astype(int)
    out = np.zeros((p.shape[0], 12))
    for c in range(12):
        out[:, c] = p[:, sel][:, pc == c].sum(axis=1)
    return out


def chroma_similarity(a: np.ndarray, b: np.ndarray, sample_rate: int) -> float:
    """Mean cosine similarity of the frame chroma of ``a`` and ``b`` (frames where either
    is silent are skipped); 1.0 = the same pitch classes in the same proportions."""
    ca, cb = chroma(a, sample_rate), chroma(b, sample_rate)
    n = min(ca.shape[0], cb.shape[0])
    ca, cb = ca[:n], cb[:n]
    na, nb = np.linalg.norm(ca, axis=1), np.linalg.norm(cb, axis=1)
    ok = (na > 1e-6 * max(na.max(initial=0), 1e-30)) & (nb > 1e-6 * max(nb.max(initial=0), 1e-30))  # -60 dB
    if not ok.any():
        return 0.0
    return float(np.mean(np.sum(ca[ok] * cb[ok], axis=1) / (na[ok] * nb[ok])))
