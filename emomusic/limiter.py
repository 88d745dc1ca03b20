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
   reduction is gone after 200 ms, the largest allowed, 8 dB, after 270 ms): ``g[n] = min(need[n], g[n-1] + r)``.
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
MAX_REDUCTION_DB = 8.0  # callers never ask the limiter for more gain reduction than this
NOTICE_DB = 3.0  # reduction above this is reported ("the limiter worked N dB")


BLOCK = 32  # the gain is computed per block of this many frames and interpolated between blocks


class Limiter:
    """Streaming true-peak limiter for ``channels`` channels at ``sample_rate``.

    ``process(block)`` returns the limited audio delayed by up to :attr:`latency` frames
    (the first calls return fewer frames than they were given); ``flush()`` returns the
    rest. The concatenated outputs are exactly as long as the inputs, time-aligned with them
    (the delay is removed), and identical whatever the block sizes.

    The needed gain is found per frame (true peak of every interval near a loud sample),
    then reduced to one value per :data:`BLOCK` frames (the smallest), held, released and
    averaged at that rate, and interpolated (in dB) back to the frames; the hold reaches one
    block further either side, so the interpolated gain is still at most what every frame
    needs. ``max_reduction_db``: the largest gain reduction so far (dB, >= 0);
    ``peak_out``: the largest true peak of the output (linear; the interpolated peaks the
    limiter measured, times the gain it applied, and the output's sample peak)."""

    def __init__(self, sample_rate: int, ceiling_dbtp: float = -1.0, channels: int = 2, *,
                 lookahead_s: float = LOOKAHEAD_S, release_db_s: float = RELEASE_DB_S, margin_db: float = MARGIN_DB):
        if not (math.isfinite(ceiling_dbtp) and release_db_s > 0 and lookahead_s > 0):
            raise ValueError("limiter: ceiling, release and look-ahead must be finite and positive")
        self.sample_rate = int(sample_rate)
        self.channels = int(channels)
        self.ceiling = 10 ** ((ceiling_dbtp - margin_db) / 20)
        b = BLOCK
        self.look_b = max(1, int(round(lookahead_s * self.sample_rate / b)))  # attack, in blocks
        self.hold_b = self.look_b + -(-(2 * TAPS_HALF + 2) // b) + 1  # look-ahead + the filter's reach + 1 block
        self.release_b = release_db_s * b / self.sample_rate  # dB per block
        self.ctx = TAPS_HALF + 1  # frames of context either side of the blocks (interpolation)
        self.hist_b = self.hold_b  # blocks kept before the first block not yet output
        self.fut_b = self.hold_b + 1  # blocks needed after the last block output (+1: the next block's gain)
        self._buf = np.zeros((self.ctx + self.hist_b * b, self.channels), dtype=np.float32)  # silence before
        self._g_last = 0.0  # released gain of the last block output (dB)
        self._box: np.ndarray | None = None  # the last look_b-1 released block gains (None: nothing output yet)
        self.latency = (self.fut_b + 1) * b + self.ctx
        self.frames_in = 0
        self.frames_out = 0
        self.max_reduction_db = 0.0
        self.peak_out = 0.0

    def process(self, block: np.ndarray) -> np.ndarray:
        x = as_2d(block)
        if x.shape[1] != self.channels:
            raise ValueError(f"limiter: expected {self.channels} channels, got {x.shape[1]}")
        self.frames_in += x.shape[0]
        self._buf = np.concatenate([self._buf, x.astype(np.float32, copy=False)])
        return self._run()

    def flush(self) -> np.ndarray:
        """The frames still held back (the input's end, followed by silence)."""
        pad = np.zeros((self.fut_b * BLOCK + self.ctx + BLOCK, self.channels), dtype=np.float32)
        self._buf = np.concatenate([self._buf, pad])
        out = self._run()
        return out[: self.frames_in - (self.frames_out - out.shape[0])]

    def _run(self) -> np.ndarray:
        b, buf, ctx = BLOCK, self._buf, self.ctx
        avail = (buf.shape[0] - 2 * ctx) // b  # whole blocks with their context
        first, stop = self.hist_b, avail - self.fut_b  # blocks [first, stop) are output now
        if stop <= first:
            return np.zeros((0, self.channels), dtype=np.float32)
        nb = stop - first
        # 1. needed gain (dB, < 0) of each interval [k, k+1) near a loud sample that needs one:
        #    at the frames `at`, 0 dB elsewhere
        level = frame_level(buf)
        pos = near_peaks(level, OVERSHOOT * self.ceiling)
        pos = pos[(pos >= ctx - 1) & (pos < ctx + avail * b)]
        peaks = None
        at, need = pos[:0], np.zeros(0)
        if pos.size:
            peaks = interpolated_peaks(buf, pos, dtype=np.float32)
            over = peaks > self.ceiling
            at, need = pos[over], 20 * np.log10(self.ceiling / peaks[over])
        idle = self._g_last == 0.0 and (self._box is None or not self._box.any())
        lo_f, hi_f = ctx + (first - self.hold_b) * b, ctx + avail * b
        f0, f1 = ctx + first * b, ctx + stop * b  # the frames output now
        if idle and not np.any((at >= lo_f - 1) & (at < hi_f)):
            out = buf[f0:f1].copy()  # nothing to do: unity gain
            if self._box is not None or nb:
                self._box = np.zeros(self.look_b - 1)
            red, gain_f = 0.0, None
        else:
            # a frame's gain shapes the intervals on both its sides: per frame k the smaller need of
            # [k-1, k) and [k, k+1), per block the smallest of its frames (only the frames that need one)
            need_b = np.zeros(avail)
            for k in (at, at + 1):
                inside = (k >= ctx) & (k < hi_f)
                np.minimum.at(need_b, (k[inside] - ctx) // b, need[inside])
            # 2. look-ahead and hold, per block: min over [m - hold_b, m + hold_b]
            from scipy.ndimage import minimum_filter1d

            held = minimum_filter1d(need_b, size=2 * self.hold_b + 1, mode="constant", cval=0.0)[first:stop + 1]
            # 3. release: g[m] = min(held[m], g[m-1] + r), i.e. r*m + cummin(held - r*m), from the carried state
            ramp = self.release_b * np.arange(1, nb + 2, dtype=np.float64)
            g = np.minimum(np.minimum.accumulate(held - ramp) + ramp, self._g_last + ramp)
            # 4. attack: moving average over look_b blocks
            lb = self.look_b
            box = np.full(lb - 1, g[0]) if self._box is None else self._box
            ext = np.concatenate([box, g])
            c = np.concatenate([[0.0], np.cumsum(ext)])
            smooth = (c[lb:] - c[:-lb]) / lb  # nb + 1 values: the blocks output and the next
            self._g_last = float(g[nb - 1])
            self._box = ext[nb: nb + lb - 1] if lb > 1 else np.zeros(0)
            # 5. per frame: interpolated in dB between block starts; exactly 1 in the blocks whose
            #    gain is 0 dB at both ends (most of them), computed only where it is not
            frac = np.arange(b, dtype=np.float32) / b
            s0 = smooth[:-1].astype(np.float32)
            step = (smooth[1:] - smooth[:-1]).astype(np.float32)
            busy = np.flatnonzero((s0 != 0) | (step != 0))
            red = -float(min(0.0, smooth[:-1].min()))
            gain_f = np.ones((nb, b), dtype=np.float32)
            gain_f[busy] = np.exp((s0[busy, None] + step[busy, None] * frac[None, :]) * np.float32(math.log(10) / 20))
            gain_f = gain_f.ravel()
            out = buf[f0:f1] * gain_f[:, None]
        self.max_reduction_db = max(self.max_reduction_db, red)
        if out.size:
            self.peak_out = max(self.peak_out, float(np.max(frame_level(out))))
        if peaks is not None:  # interpolated peaks of the frames output, at their gain
            sel = (pos >= f0) & (pos < f1)
            if sel.any():
                g_at = 1.0 if gain_f is None else gain_f[pos[sel] - f0]
                self.peak_out = max(self.peak_out, float(np.max(peaks[sel] * g_at)))
        keep = ctx + self.hist_b * b
        self._buf = buf[f1 - keep:]
        n = f1 - f0
        self.frames_out += n
        return out


def limit(audio: np.ndarray, sample_rate: int, ceiling_dbtp: float = -1.0, **options) -> tuple[np.ndarray, float]:
    """``audio`` through a :class:`Limiter` at once: (limited float32 audio of the same
    shape, largest gain reduction in dB)."""
    a = as_2d(audio)
    lim = Limiter(sample_rate, ceiling_dbtp, a.shape[1], **options)
    out = np.concatenate([lim.process(a), lim.flush()])
    return out.reshape(np.shape(audio)) if np.ndim(audio) == 1 else out, lim.max_reduction_db


def limit_peak(audio: np.ndarray, sample_rate: int, ceiling_dbtp: float = -1.0, **options) -> tuple[np.ndarray, float, float]:
    """:func:`limit`, also returning the output's true peak as the limiter measured it
    (linear): (audio, largest gain reduction in dB, true peak)."""
    a = as_2d(audio)
    lim = Limiter(sample_rate, ceiling_dbtp, a.shape[1], **options)
    out = np.concatenate([lim.process(a), lim.flush()])
    return out, lim.max_reduction_db, lim.peak_out


__all__ = ["BLOCK", "Limiter", "limit", "limit_peak", "LOOKAHEAD_S", "MARGIN_DB", "MAX_REDUCTION_DB", "NOTICE_DB", "RELEASE_DB_S"]
