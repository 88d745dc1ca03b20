"""A true-peak look-ahead limiter: lets a level reach its loudness target while the true
peak (4x oversampled, :func:`emomusic.audio.true_peak`) stays under a ceiling.

How it works (all numpy, streaming in blocks of any size; see :class:`Limiter`):

1. **Needed gain**: for every frame the largest magnitude of the 4x interpolated signal in
   ``[n, n + 1)`` (scipy ``resample_poly``'s filter, the one :func:`~emomusic.audio.true_peak`
   measures with), computed only around samples within 6 dB of the ceiling; the gain in dB
   that brings it to the ceiling less a small margin (0 dB where nothing is that loud).
2. **Look-ahead and hold**: the smallest needed gain over the next ``lookahead`` (5 ms)
   plus the interpolation filter's reach either side, so the gain is already down when the
   peak arrives.
3. **Release**: the gain recovers at a constant ``release_db_s`` (default 30 dB/s: a 6 dB
   reduction is gone after 200 ms): ``g[n] = min(need[n], g[n-1] + r)``.
4. **Attack**: a moving average over the look-ahead (in dB), which turns every step into a
   5 ms ramp; the average of values that are each at most the needed gain is at most the
   needed gain, so the ceiling holds.

A 5 ms attack is short enough that the ramp is inaudible on piano onsets and long enough
not to distort (no sample is clipped, the gain curve has no corners); the slow linear
release does not pump on the few dB this limiter is allowed to take (the callers bound the
gain reduction: :data:`MAX_REDUCTION_DB`, and report when it worked more than
:data:`NOTICE_DB`). Deterministic: same input, same output, whatever the block sizes.
"""

from __future__ import annotations

import math

import numpy as np

from emomusic.audio import OVERSHOOT, TAPS_HALF, as_2d, frame_level, interpolated_peaks, near_peaks

LOOKAHEAD_S = 0.005  # attack ramp and look-ahead
RELEASE_DB_S = 30.0  # recovery speed
MARGIN_DB = 0.1  # aimed this far under the ceiling (the gain varies inside the interpolation window)
MAX_REDUCTION_DB = 6.0  # callers never ask the limiter for more gain reduction than this
NOTICE_DB = 3.0  # reduction above this is reported ("the limiter worked N dB")


class Limiter:
    """Streaming true-peak limiter for ``channels`` channels at ``sample_rate``.

    ``process(block)`` returns the limited audio delayed by :attr:`latency` frames (the
    first call returns that many frames fewer than it was given); ``flush()`` returns the
    rest. The concatenated outputs are exactly as long as the inputs, time-aligned with them
    (the delay is removed), and identical whatever the block sizes.
    ``max_reduction_db`` is the largest gain reduction applied so far (dB, >= 0)."""

    def __init__(self, sample_rate: int, ceiling_dbtp: float = -1.0, channels: int = 2, *,
                 lookahead_s: float = LOOKAHEAD_S, release_db_s: float = RELEASE_DB_S, margin_db: float = MARGIN_DB):
        if not (math.isfinite(ceiling_dbtp) and release_db_s > 0 and lookahead_s > 0):
            raise ValueError("limiter: ceiling, release and look-ahead must be finite and positive")
        self.sample_rate = int(sample_rate)
        self.channels = int(channels)
        self.ceiling = 10 ** ((ceiling_dbtp - margin_db) / 20)
        self.look = max(1, int(round(lookahead_s * self.sample_rate)))
        self.hold = self.look + 2 * TAPS_HALF  # the needed gain is held over the look-ahead and the filter's reach
        self.release = release_db_s / self.sample_rate  # dB per frame
        # input kept back: history (interpolation + hold) before the first frame not yet
        # output, and the future those frames need
        self.history = TAPS_HALF + self.hold + 1
        self.future = self.hold + TAPS_HALF + 1
        self._buf = np.zeros((self.history, self.channels), dtype=np.float32)  # silence before the start
        self._g_last = 0.0  # released gain of the last frame output (dB)
        self._box: np.ndarray | None = None  # the last look-1 released gains (dB), for the attack average
        # (None at the start: nothing came before, so the first gain stands for the frames before it)
        self.latency = self.future
        self.frames_in = 0
        self.frames_out = 0
        self.max_reduction_db = 0.0
        self.frames_reduced = 0  # frames with more than 1 dB of gain reduction

    def process(self, block: np.ndarray) -> np.ndarray:
        x = as_2d(block)
        if x.shape[1] != self.channels:
            raise ValueError(f"limiter: expected {self.channels} channels, got {x.shape[1]}")
        self.frames_in += x.shape[0]
        self._buf = np.concatenate([self._buf, x.astype(np.float32, copy=False)])
        return self._run()

    def flush(self) -> np.ndarray:
        """The frames still held back (the input's end, followed by silence)."""
        pad = np.zeros((self.future, self.channels), dtype=np.float32)
        self._buf = np.concatenate([self._buf, pad])
        out = self._run()
        return out[: self.frames_in - (self.frames_out - out.shape[0])]

    def _run(self) -> np.ndarray:
        buf = self._buf
        total = buf.shape[0]
        first, stop = self.history, total - self.future  # frames [first, stop) are output now
        if stop <= first:
            return np.zeros((0, self.channels), dtype=np.float32)
        n = stop - first
        # 1. needed gain (dB, <= 0) of each interval [k, k+1) for k in [first - hold - 1, stop + hold)
        lo, hi = first - self.hold - 1, stop + self.hold
        seg = buf[lo - TAPS_HALF: hi + TAPS_HALF + 1]  # what the interpolation reads
        level = frame_level(seg)
        pos = near_peaks(level, OVERSHOOT * self.ceiling)
        pos = pos[(pos >= TAPS_HALF) & (pos < TAPS_HALF + (hi - lo))]
        need = np.zeros(hi - lo)
        if pos.size:
            peaks = interpolated_peaks(seg, pos)
            over = peaks > self.ceiling
            need[pos[over] - TAPS_HALF] = 20 * np.log10(self.ceiling / peaks[over])
        if not need.any() and self._g_last == 0.0 and (self._box is None or not self._box.any()):
            out = buf[first:stop].copy()  # nothing to do: unity gain
        else:
            # an interval's peak is shaped by the gains of both its frames
            need_f = np.minimum(need[1:], need[:-1])  # frames lo+1 .. hi-1
            # 2. look-ahead and hold: min over [k - (hold - look), k + hold]
            from scipy.ndimage import minimum_filter1d

            held = minimum_filter1d(need_f, size=2 * self.hold + 1, mode="constant", cval=0.0)
            held = held[first - (lo + 1): first - (lo + 1) + n]
            # 3. release: g[k] = min(held[k], g[k-1] + r), i.e. r*k + cummin(held - r*k) from the carried state
            ramp = self.release * np.arange(1, n + 1, dtype=np.float64)
            g = np.minimum.accumulate(held - ramp)
            g += ramp
            np.minimum(g, self._g_last + ramp, out=g)
            # 4. attack: moving average over the look-ahead
            box = np.full(self.look - 1, g[0]) if self._box is None else self._box
            ext = np.concatenate([box, g])
            c = np.cumsum(ext)
            smooth = c[self.look - 1:].copy()
            smooth[1:] -= c[: n - 1]
            smooth /= self.look
            self._g_last = float(g[-1])
            self._box = ext[ext.shape[0] - (self.look - 1):]
            red = -float(smooth.min())
            self.max_reduction_db = max(self.max_reduction_db, red)
            self.frames_reduced += int(np.count_nonzero(smooth < -1.0))
            gain = np.exp(smooth.astype(np.float32) * np.float32(math.log(10) / 20))
            out = buf[first:stop] * gain[:, None]
        self._buf = buf[stop - self.history:]
        self.frames_out += n
        return out


def limit(audio: np.ndarray, sample_rate: int, ceiling_dbtp: float = -1.0, **options) -> tuple[np.ndarray, float]:
    """``audio`` through a :class:`Limiter` at once: (limited float32 audio of the same
    shape, largest gain reduction in dB)."""
    a = as_2d(audio)
    lim = Limiter(sample_rate, ceiling_dbtp, a.shape[1], **options)
    out = np.concatenate([lim.process(a), lim.flush()])
    return out.reshape(np.shape(audio)) if np.ndim(audio) == 1 else out, lim.max_reduction_db


__all__ = ["Limiter", "limit", "LOOKAHEAD_S", "MARGIN_DB", "MAX_REDUCTION_DB", "NOTICE_DB", "RELEASE_DB_S"]
