"""A SoundFont 2 parser and sample-playback synthesizer in numpy.

No native library is needed, so WAV rendering installs from PyPI alone. What is
implemented (SoundFont 2.04 terms):

* RIFF ``sfbk`` parsing: ``phdr pbag pgen inst ibag igen shdr`` and the 16-bit ``smpl``
  chunk (``sm24`` is ignored; modulators ``pmod``/``imod`` are ignored and the default
  velocity curve below is used instead).
* Preset choice by (bank, program); bank 128 for drums; falls back to the nearest bank
  that has the program, then to program 0.
* Zones: global zones, key and velocity ranges (preset ranges intersected with
  instrument ranges), preset generators added to instrument generators as the spec says.
* Pitch: root key (``overridingRootKey`` or the sample's original pitch), coarse / fine
  tune, sample pitch correction, ``scaleTuning``; 4-point cubic interpolation resampling.
* Sample address offsets (fine + coarse), loop modes 0 (none), 1 (continuous) and 3
  (loop while held, then play to the end).
* Volume envelope: delay, attack (linear amplitude), hold, decay and release (linear in
  dB, 100 dB full scale, as the spec defines), sustain level, ``keynumToVolEnvHold`` /
  ``keynumToVolEnvDecay``; initial attenuation (with the 0.4 scale of EMU hardware that
  FluidSynth also applies); pan (constant power).
* Velocity: gain ``(velocity / 127) ** 2`` (40 dB range, close to the spec's default
  concave velocity-to-attenuation modulator).
* Low-pass filter: ``initialFilterFc`` / ``initialFilterQ`` as a resonant 2-pole low-pass
  (:func:`emomusic.sf2_dsp.lowpass_coefficients`, the reading FluidSynth uses), swept by the modulation
  envelope (``modEnvToFilterFc``, :func:`mod_envelope`: delay, attack, hold, decay,
  sustain; not its release); it is applied to the cached waveform before the volume
  envelope.
* Exclusive classes (a new note of a class cuts the part's sounding notes of that class)
  and the pitch wheel (per-frame playback rate for notes under a bend); the sustain pedal
  is applied by :mod:`emomusic.render` (notes held until the pedal lifts).

Not implemented: the modulation envelope's pitch route and release, LFOs, modulators
(``pmod``/``imod`` and the default ones other than velocity-to-volume), chorus. Reverb is a
separate room reverb on the mix (:mod:`emomusic.render`).

Speed: sample data is converted to float32 once per file; the resampled (and looped) and
filtered waveform of each (sample zone, pitch, filter) is computed once and cached, then
every note is a slice times an envelope added into the mix. No per-sample Python loops.
"""

from __future__ import annotations

import math
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from emomusic.errors import EmomusicError
from emomusic.sf2_dsp import (  # noqa: F401 - re-exported: the player's signal processing
    _SILENCE_CB,
    EXCLUSIVE_RELEASE_S,
    bend_curve,
    cut_exclusive,
    lowpass_coefficients,
    mod_envelope,
    voice_filter,
)

# Generator numbers used here (SoundFont 2.04, section 8.1.2).
G_START_OFS, G_END_OFS, G_STARTLOOP_OFS, G_ENDLOOP_OFS = 0, 1, 2, 3
G_START_COARSE, G_END_COARSE = 4, 12
G_FILTER_FC, G_FILTER_Q, G_MODENV_TO_FC = 8, 9, 11
G_DELAY_MOD, G_ATTACK_MOD, G_HOLD_MOD, G_DECAY_MOD, G_SUSTAIN_MOD = 25, 26, 27, 28, 29
G_KEY_TO_MOD_HOLD, G_KEY_TO_MOD_DECAY = 31, 32
G_PAN = 17
G_DELAY_VOL, G_ATTACK_VOL, G_HOLD_VOL, G_DECAY_VOL, G_SUSTAIN_VOL, G_RELEASE_VOL = 33, 34, 35, 36, 37, 38
G_KEY_TO_HOLD, G_KEY_TO_DECAY = 39, 40
G_INSTRUMENT, G_KEY_RANGE, G_VEL_RANGE = 41, 43, 44
G_STARTLOOP_COARSE = 45
G_ATTENUATION = 48
G_ENDLOOP_COARSE = 50
G_COARSE_TUNE, G_FINE_TUNE, G_SAMPLE_ID, G_SAMPLE_MODES = 51, 52, 53, 54
G_SCALE_TUNING, G_EXCLUSIVE_CLASS = 56, 57
G_ROOT_KEY = 58

_RANGE_GENS = (G_KEY_RANGE, G_VEL_RANGE)
_ADDRESS_GENS = (G_START_OFS, G_END_OFS, G_STARTLOOP_OFS, G_ENDLOOP_OFS, G_START_COARSE, G_END_COARSE,
                 G_STARTLOOP_COARSE, G_ENDLOOP_COARSE)
# Defaults of the generators we use (others default to 0).
_DEFAULTS = {
    G_DELAY_VOL: -12000, G_ATTACK_VOL: -12000, G_HOLD_VOL: -12000, G_DECAY_VOL: -12000,
    G_RELEASE_VOL: -12000, G_SCALE_TUNING: 100, G_ROOT_KEY: -1, G_FILTER_FC: 13500,
    G_DELAY_MOD: -12000, G_ATTACK_MOD: -12000, G_HOLD_MOD: -12000, G_DECAY_MOD: -12000,
}
MAX_RELEASE_S = 4.0  # a release tail is cut here (by then it is far below audibility)


def timecents_to_seconds(tc: float) -> float:
    return 2.0 ** (max(-12000.0, min(8000.0, tc)) / 1200.0)


@dataclass(frozen=True)
class SampleHeader:
    name: str
    start: int
    end: int
    loop_start: int
    loop_end: int
    sample_rate: int
    original_pitch: int
    pitch_correction: int
    sample_type: int


@dataclass
class Zone:
    gens: dict[int, int] = field(default_factory=dict)  # amounts (signed 16-bit)
    key_range: tuple[int, int] = (0, 127)
    vel_range: tuple[int, int] = (0, 127)
    link: int | None = None  # instrument index (preset zone) or sample index (instrument zone)


@dataclass
class Preset:
    name: str
    program: int
    bank: int
    zones: list[Zone]
    global_zone: Zone | None


@dataclass
class Instrument:
    name: str
    zones: list[Zone]
    global_zone: Zone | None


@dataclass(frozen=True)
class Voice:
    """Everything needed to play one sample zone for one key."""

    sample: int
    start: int
    end: int
    loop_start: int
    loop_end: int
    loop_mode: int
    ratio: float  # source samples advanced per output frame
    gain: float  # from initial attenuation
    pan: float  # -1 .. 1
    env: tuple[float, float, float, float, float, float]  # delay, attack, hold, decay (s), sustain cB, release (s)
    filter_fc: float = 13500.0  # low-pass cutoff, absolute cents
    filter_q: float = 0.0  # resonance, centibels above a non-resonant response
    exclusive: int = 0  # exclusive class: a new note of the class cuts sounding ones (0: none)
    mod_to_fc: float = 0.0  # modulation envelope -> filter cutoff, cents at full envelope
    mod_env: tuple[float, float, float, float, float] = (0.0, 0.0, 0.0, 0.0, 1.0)  # delay, attack, hold, decay (s), sustain 0..1


def _bad(path, why: str) -> EmomusicError:
    return EmomusicError(f"cannot use {path} as a SoundFont: {why}")


def _chunks(data: bytes, start: int, end: int, path):
    pos = start
    while pos + 8 <= end:
        cid = data[pos:pos + 4]
        size = struct.unpack_from("<I", data, pos + 4)[0]
        body = pos + 8
        if body + size > end:
            raise _bad(path, f"chunk {cid!r} runs past the end of the file (truncated?)")
        yield cid, body, size
        pos = body + size + (size & 1)


def _name(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("latin-1").strip()


class SoundFont:
    """A parsed SoundFont 2 file. Use :func:`load_soundfont` to share one per path."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            raise EmomusicError(f"no such SoundFont: {self.path}") from None
        except IsADirectoryError:
            raise EmomusicError(f"{self.path} is a folder, not a SoundFont") from None
        except OSError as exc:
            raise _bad(self.path, exc.strerror or str(exc)) from None
        self._parse(data)
        self._wave_cache: dict[tuple, np.ndarray] = {}
        self._wave_cache_bytes = 0
        self._voice_cache: dict[tuple[int, int, int, int], list[Voice]] = {}

    # -- parsing -------------------------------------------------------------------------
    def _parse(self, data: bytes) -> None:
        p = self.path
        if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"sfbk":
            raise _bad(p, "not a RIFF sfbk file")
        riff_end = min(len(data), 8 + struct.unpack_from("<I", data, 4)[0])
        lists: dict[bytes, tuple[int, int]] = {}
        for cid, body, size in _chunks(data, 12, riff_end, p):
            if cid == b"LIST" and size >= 4:
                lists[data[body:body + 4]] = (body + 4, body + size)
        if b"sdta" not in lists or b"pdta" not in lists:
            raise _bad(p, "missing sdta or pdta list")
        smpl = None
        for cid, body, size in _chunks(data, *lists[b"sdta"], p):
            if cid == b"smpl":
                smpl = (body, size)
        if smpl is None or smpl[1] < 2:
            raise _bad(p, "no sample data (smpl chunk)")
        pd: dict[bytes, bytes] = {}
        for cid, body, size in _chunks(data, *lists[b"pdta"], p):
            pd[cid] = data[body:body + size]
        need = {b"phdr": 38, b"pbag": 4, b"pgen": 4, b"inst": 22, b"ibag": 4, b"igen": 4, b"shdr": 46}
        for cid, rec in need.items():
            if cid not in pd:
                raise _bad(p, f"missing {cid.decode()} chunk")
            if len(pd[cid]) % rec or len(pd[cid]) < 2 * rec:
                raise _bad(p, f"{cid.decode()} chunk has a bad size")
        try:
            self.samples = np.frombuffer(data, dtype="<i2", count=smpl[1] // 2, offset=smpl[0]).astype(np.float32)
            self.samples *= 1.0 / 32768.0
            phdr = list(struct.iter_unpack("<20sHHHIII", pd[b"phdr"]))
            pbag = list(struct.iter_unpack("<HH", pd[b"pbag"]))
            pgen = list(struct.iter_unpack("<Hh", pd[b"pgen"]))
            inst = list(struct.iter_unpack("<20sH", pd[b"inst"]))
            ibag = list(struct.iter_unpack("<HH", pd[b"ibag"]))
            igen = list(struct.iter_unpack("<Hh", pd[b"igen"]))
            shdr = list(struct.iter_unpack("<20sIIIIIBbHH", pd[b"shdr"]))
            self.sample_headers = [
                SampleHeader(_name(s[0]), s[1], s[2], s[3], s[4], s[5], s[6], s[7], s[9]) for s in shdr[:-1]
            ]
            self.instruments = [
                self._instrument(_name(inst[i][0]), inst[i][1], inst[i + 1][1], ibag, igen, G_SAMPLE_ID)
                for i in range(len(inst) - 1)
            ]
            self.presets = []
            for i in range(len(phdr) - 1):
                name, prog, bank, bag = _name(phdr[i][0]), phdr[i][1], phdr[i][2], phdr[i][3]
                ins = self._instrument(name, bag, phdr[i + 1][3], pbag, pgen, G_INSTRUMENT)
                self.presets.append(Preset(name, prog, bank, ins.zones, ins.global_zone))
        except (struct.error, IndexError, ValueError) as exc:
            raise _bad(p, f"corrupt preset data ({exc})") from None
        if not self.presets:
            raise _bad(p, "it has no presets")
        self.by_bank_program = {}
        for pr in self.presets:
            self.by_bank_program.setdefault((pr.bank, pr.program), pr)

    @staticmethod
    def _instrument(name, bag0, bag1, bags, gens, link_gen) -> Instrument:
        zones: list[Zone] = []
        global_zone = None
        for b in range(bag0, bag1):
            g0, g1 = bags[b][0], bags[b + 1][0]
            z = Zone()
            for oper, amount in gens[g0:g1]:
                if oper in _RANGE_GENS:
                    lo, hi = amount & 0xFF, (amount >> 8) & 0xFF
                    if oper == G_KEY_RANGE:
                        z.key_range = (lo, hi)
                    else:
                        z.vel_range = (lo, hi)
                elif oper == link_gen:
                    z.link = amount & 0xFFFF
                else:
                    z.gens[oper] = amount
            if z.link is None:
                if b == bag0 and global_zone is None:
                    global_zone = z
                continue
            zones.append(z)
        return Instrument(name, zones, global_zone)

    # -- lookup --------------------------------------------------------------------------
    def preset_for(self, program: int, is_drum: bool = False) -> Preset:
        bank = 128 if is_drum else 0
        p = self.by_bank_program.get((bank, program))
        if p is None and is_drum:
            p = self.by_bank_program.get((128, 0))
        if p is None:
            same = [pr for pr in self.presets if pr.program == program and (pr.bank == 128) == is_drum]
            p = min(same, key=lambda pr: pr.bank) if same else None
        if p is None:
            p = self.by_bank_program.get((bank, 0)) or self.by_bank_program.get((0, 0)) or self.presets[0]
        return p

    def voices(self, program: int, is_drum: bool, key: int, velocity: int) -> list[Voice]:
        """The sample zones that sound for ``key`` at ``velocity`` (cached)."""
        ck = (program, int(is_drum), key, velocity)
        hit = self._voice_cache.get(ck)
        if hit is not None:
            return hit
        out: list[Voice] = []
        preset = self.preset_for(program, is_drum)
        pg = preset.global_zone.gens if preset.global_zone else {}
        for pz in preset.zones:
            if not (_in(key, pz.key_range) and _in(velocity, pz.vel_range)):
                continue
            if pz.link is None or pz.link >= len(self.instruments):
                continue
            inst = self.instruments[pz.link]
            ig = inst.global_zone.gens if inst.global_zone else {}
            pgens = {**pg, **pz.gens}
            for iz in inst.zones:
                if not (_in(key, iz.key_range) and _in(velocity, iz.vel_range)):
                    continue
                if iz.link is None or iz.link >= len(self.sample_headers):
                    continue
                gens = {**ig, **iz.gens}
                for g, amount in pgens.items():  # preset generators are offsets
                    if g not in _ADDRESS_GENS and g not in (G_SAMPLE_MODES, G_ROOT_KEY):
                        gens[g] = gens.get(g, _DEFAULTS.get(g, 0)) + amount
                gens.pop(G_EXCLUSIVE_CLASS, None)
                if G_EXCLUSIVE_CLASS in iz.gens or G_EXCLUSIVE_CLASS in ig:  # instrument level only (spec)
                    gens[G_EXCLUSIVE_CLASS] = iz.gens.get(G_EXCLUSIVE_CLASS, ig.get(G_EXCLUSIVE_CLASS, 0))
                v = self._voice(iz.link, gens, key, velocity)
                if v is not None:
                    out.append(v)
        self._voice_cache[ck] = out
        return out

    def _voice(self, sample_index: int, gens: dict[int, int], key: int, velocity: int = 127) -> Voice | None:
        sh = self.sample_headers[sample_index]
        if sh.sample_type & 0x8000 or sh.sample_rate <= 0:  # ROM samples are not in the file
            return None
        g = lambda n: gens.get(n, _DEFAULTS.get(n, 0))  # noqa: E731
        n_data = self.samples.shape[0]
        start = sh.start + g(G_START_OFS) + 32768 * g(G_START_COARSE)
        end = sh.end + g(G_END_OFS) + 32768 * g(G_END_COARSE)
        ls = sh.loop_start + g(G_STARTLOOP_OFS) + 32768 * g(G_STARTLOOP_COARSE)
        le = sh.loop_end + g(G_ENDLOOP_OFS) + 32768 * g(G_ENDLOOP_COARSE)
        start, end = max(0, start), min(n_data - 1, end)
        if end - start < 2:
            return None
        mode = g(G_SAMPLE_MODES) & 3
        if mode == 2:  # "unused": treat as no loop (spec)
            mode = 0
        if mode and not (start <= ls < le <= end and le - ls >= 2):
            mode = 0
        root = g(G_ROOT_KEY)
        if not 0 <= root <= 127:
            root = sh.original_pitch if 0 <= sh.original_pitch <= 127 else 60
        cents = (key - root) * g(G_SCALE_TUNING) + 100 * g(G_COARSE_TUNE) + g(G_FINE_TUNE) + sh.pitch_correction
        ratio = 2.0 ** (cents / 1200.0) * sh.sample_rate
        atten = max(0.0, 0.4 * g(G_ATTENUATION))  # centibels, EMU scale as in FluidSynth
        pan = max(-500, min(500, g(G_PAN))) / 500.0
        hold_tc = g(G_HOLD_VOL) + (60 - key) * g(G_KEY_TO_HOLD)
        decay_tc = g(G_DECAY_VOL) + (60 - key) * g(G_KEY_TO_DECAY)
        env = (
            timecents_to_seconds(g(G_DELAY_VOL)),
            timecents_to_seconds(g(G_ATTACK_VOL)),
            timecents_to_seconds(hold_tc),
            timecents_to_seconds(decay_tc),
            float(max(0, min(1440, g(G_SUSTAIN_VOL)))),
            min(MAX_RELEASE_S, timecents_to_seconds(g(G_RELEASE_VOL))),
        )
        # The SF2 2.01 default velocity-to-cutoff modulator is not applied: FluidSynth 2.x (the
        # reference) renders the same cutoff at every velocity (tests/test_render.py checks it).
        fc = float(g(G_FILTER_FC))
        q = float(max(0, min(960, g(G_FILTER_Q))))
        mod_env = (
            timecents_to_seconds(g(G_DELAY_MOD)),
            timecents_to_seconds(g(G_ATTACK_MOD)),
            timecents_to_seconds(g(G_HOLD_MOD) + (60 - key) * g(G_KEY_TO_MOD_HOLD)),
            timecents_to_seconds(g(G_DECAY_MOD) + (60 - key) * g(G_KEY_TO_MOD_DECAY)),
            1.0 - max(0, min(1000, g(G_SUSTAIN_MOD))) / 1000.0,
        )
        return Voice(sample_index, start, end, ls, le, mode, ratio, 10 ** (-atten / 200.0), pan, env,
                     fc, q, int(g(G_EXCLUSIVE_CLASS)), float(max(-12000, min(12000, g(G_MODENV_TO_FC)))), mod_env)

    # -- synthesis -----------------------------------------------------------------------
    def wave(self, v: Voice, sample_rate: int, frames: int, held_frames: int) -> np.ndarray:
        """The resampled, low-pass filtered waveform of voice ``v``: at least ``frames`` long
        for a looped sample, the whole sample (possibly shorter) for an unlooped one. Cached
        per (sample zone, pitch, filter); loop mode 3 also per hold length."""
        ratio = v.ratio / sample_rate
        fkey = (round(v.filter_fc / 25.0), v.filter_q, v.mod_to_fc, v.mod_env if v.mod_to_fc else None)
        ck = (v.sample, v.start, v.end, v.loop_start, v.loop_end, v.loop_mode, round(ratio, 12),
              held_frames if v.loop_mode == 3 else -1, fkey)
        w = self._wave_cache.get(ck)
        if w is not None and (v.loop_mode != 1 or w.shape[0] >= frames):
            return w
        n = frames if w is None else max(frames, w.shape[0] * 3 // 2)
        w = voice_filter(self._render_wave(v, ratio, n, held_frames), v, sample_rate)
        if self._wave_cache_bytes > 512 * 2**20:
            self._wave_cache.clear()
            self._wave_cache_bytes = 0
        old = self._wave_cache.get(ck)
        self._wave_cache_bytes += w.nbytes - (old.nbytes if old is not None else 0)
        self._wave_cache[ck] = w
        return w

    def bent_wave(self, v: Voice, sample_rate: int, frames: int, held_frames: int, semitones: np.ndarray) -> np.ndarray:
        """Like :meth:`wave` for a note under the pitch wheel: ``semitones`` (one value per
        output frame, at least ``frames`` long) shifts the playback rate frame by frame. Not
        cached (bends are rare and differ per note)."""
        ratio = v.ratio / sample_rate
        mult = np.power(2.0, np.asarray(semitones[:frames], dtype=np.float64) / 12.0)
        return voice_filter(self._render_wave(v, ratio, frames, held_frames, mult), v, sample_rate)

    def _render_wave(self, v: Voice, ratio: float, frames: int, held_frames: int, mult: np.ndarray | None = None) -> np.ndarray:
        data = self.samples
        last = v.end - 1  # the last index that may be read (interpolation reads idx + 1)

        def advance(p0: float, n: int, k0: int = 0) -> np.ndarray:
            """``n`` read positions from ``p0``, steps of ``ratio`` (times ``mult[k0:]``)."""
            if mult is None:
                return p0 + ratio * np.arange(n, dtype=np.float64)
            steps = ratio * mult[k0:k0 + n]
            if steps.shape[0] < n:
                steps = np.concatenate([steps, np.full(n - steps.shape[0], steps[-1] if steps.size else ratio)])
            return p0 + np.concatenate([[0.0], np.cumsum(steps[:-1])]) if n else np.zeros(0)

        if v.loop_mode == 0:
            n = max(1, int((last - v.start) / ratio)) if mult is None else frames
            pos = advance(float(v.start), n)
            if mult is not None:
                pos = pos[pos < last] if pos[-1] >= last else pos
        else:
            ls, le = float(v.loop_start), float(v.loop_end)
            n = frames if v.loop_mode == 1 else min(frames, held_frames)
            pos = advance(float(v.start), n)
            over = pos >= le
            pos[over] = ls + np.mod(pos[over] - ls, le - ls)
            if v.loop_mode == 3:  # released: leave the loop and play on to the sample's end
                p0 = float(pos[-1]) if n else float(v.start)
                if mult is None:
                    tail = max(0, int((last - p0) / ratio))
                    rest = p0 + ratio * np.arange(1, tail + 1, dtype=np.float64)
                else:
                    rest = advance(p0, max(0, frames - n) + 1, n)[1:]
                    rest = rest[rest < last]
                pos = np.concatenate([pos, rest])
        pos = np.clip(pos, v.start, last - 1e-6)
        idx = pos.astype(np.int64)
        t = (pos - idx).astype(np.float32)
        # 4-point cubic (Catmull-Rom) interpolation, as FluidSynth's default 4th-order one:
        # linear interpolation would dull the highs of pitched-up samples.
        y0 = data[np.maximum(idx - 1, v.start)]
        y1 = data[idx]
        y2 = data[idx + 1]
        y3 = data[np.minimum(idx + 2, last)]
        c1 = 0.5 * (y2 - y0)
        c2 = y0 - 2.5 * y1 + 2.0 * y2 - 0.5 * y3
        c3 = 0.5 * (y3 - y0) + 1.5 * (y1 - y2)
        return ((c3 * t + c2) * t + c1) * t + y1

    @staticmethod
    def envelope(v: Voice, sample_rate: int, held_frames: int) -> np.ndarray:
        """Amplitude envelope: while held (``held_frames``) then the release tail."""
        delay, attack, hold, decay, sus_cb, release = v.env
        t = np.arange(held_frames, dtype=np.float32) / np.float32(sample_rate)
        cb = np.zeros(held_frames, dtype=np.float32)
        amp = np.ones(held_frames, dtype=np.float32)
        t_dec = t - np.float32(delay + attack + hold)
        dec = t_dec > 0
        cb[dec] = np.minimum(np.float32(sus_cb), t_dec[dec] * np.float32(1000.0 / decay))
        amp = np.power(np.float32(10.0), -cb / np.float32(200.0)) if np.any(dec) else amp
        amp[t < delay] = 0.0
        att = (t >= delay) & (t < delay + attack)
        amp[att] = (t[att] - np.float32(delay)) / np.float32(attack)
        level = float(amp[-1]) if held_frames else 0.0
        if level <= 10 ** (-_SILENCE_CB / 200):
            return amp
        start_cb = -200.0 * math.log10(level)
        rel_frames = int(math.ceil(release * (_SILENCE_CB - start_cb) / 1000.0 * sample_rate))
        if rel_frames <= 0:
            return amp
        tr = np.arange(1, rel_frames + 1, dtype=np.float32) / np.float32(sample_rate)
        rel = np.power(np.float32(10.0), -(np.float32(start_cb) + tr * np.float32(1000.0 / release)) / np.float32(200.0))
        return np.concatenate([amp, rel.astype(np.float32)])


def _in(x: int, rng: tuple[int, int]) -> bool:
    return rng[0] <= x <= rng[1]


_LOADED: dict[tuple[str, int, float], SoundFont] = {}


def load_soundfont(path: str | os.PathLike) -> SoundFont:
    """Parse ``path`` once per process (keyed by path, size and modification time)."""
    p = Path(path)
    if not p.exists():
        raise EmomusicError(f"no such SoundFont: {p}")
    if p.is_dir():
        raise EmomusicError(f"{p} is a folder, not a SoundFont")
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime)
    sf = _LOADED.get(key)
    if sf is None:
        if len(_LOADED) >= 4:
            _LOADED.clear()
        sf = _LOADED[key] = SoundFont(p)
    return sf


def synthesize(sf: SoundFont, notes, sample_rate: int = 44100) -> np.ndarray:
    """Mix ``notes`` into stereo float32 audio (unnormalised).

    ``notes`` is an iterable of ``(start_s, duration_s, pitch, velocity, program, is_drum)``,
    optionally followed by ``part`` (notes of one part share exclusive classes: a new note of
    a class cuts the part's sounding notes of that class) and ``bend`` (None, or a pair of
    arrays ``(times_s, semitones)``: the pitch-wheel steps from the note's start, times
    relative to it). Durations are as heard: the sustain pedal is applied by the caller.
    """
    voices = []
    total = 1
    env_cache: dict[tuple, np.ndarray] = {}
    for k, note in enumerate(notes):
        start_s, dur_s, pitch, vel, program, is_drum = note[:6]
        part = note[6] if len(note) > 6 else 0
        bend = note[7] if len(note) > 7 else None
        s0 = int(round(start_s * sample_rate))
        held = max(1, int(round(dur_s * sample_rate)))
        vel_gain = (max(1, min(127, int(vel))) / 127.0) ** 2
        for v in sf.voices(int(program), bool(is_drum), int(pitch), int(vel)):
            ek = (v.env, held)
            env = env_cache.get(ek)
            if env is None:
                env = env_cache[ek] = SoundFont.envelope(v, sample_rate, held)
            voices.append([s0, held, v, env, vel_gain, part, bend, k])
            total = max(total, s0 + env.shape[0])
    cut_exclusive(voices, sample_rate)
    left = np.zeros(total, dtype=np.float32)  # planar while mixing: contiguous adds
    right = np.zeros(total, dtype=np.float32)
    for s0, held, v, env, vel_gain, _, bend, _ in voices:
        if bend is None:
            w = sf.wave(v, sample_rate, env.shape[0], held)
        else:
            w = sf.bent_wave(v, sample_rate, env.shape[0], held, bend_curve(bend, env.shape[0], sample_rate))
        n = min(w.shape[0], env.shape[0])
        if n <= 0:
            continue
        seg = w[:n] * env[:n]
        theta = (v.pan + 1.0) * math.pi / 4.0
        g = v.gain * vel_gain
        gl, gr = g * math.cos(theta), g * math.sin(theta)
        if abs(gl - gr) < 1e-9 * max(gl, gr, 1e-30):
            seg *= np.float32(gl)
            left[s0:s0 + n] += seg
            right[s0:s0 + n] += seg
        else:
            left[s0:s0 + n] += seg * np.float32(gl)
            right[s0:s0 + n] += seg * np.float32(gr)
    return np.stack([left, right], axis=1)


# -- writing (tiny SoundFonts for tests and examples) -------------------------------------
def _riff_chunk(cid: bytes, body: bytes) -> bytes:
    pad = b"\0" if len(body) & 1 else b""
    return cid + struct.pack("<I", len(body)) + body + pad


def _name20(name: str) -> bytes:
    return name.encode("latin-1")[:19].ljust(20, b"\0")


def write_simple_soundfont(path: str | os.PathLike, presets: list[dict]) -> Path:
    """Write a minimal valid SoundFont 2 file: one instrument with one sample per preset.

    Each preset dict has ``samples`` (float array in [-1, 1]), ``sample_rate``,
    ``root_key``, optional ``loop`` ((start, end) sample indices, continuous loop),
    ``program`` and ``bank`` (default 0, 0), ``name`` and ``generators`` (extra instrument
    generators, {number: amount}). Used by the tests to check the synthesizer against a
    known signal without depending on any shipped SoundFont.
    """
    smpl = bytearray()
    shdr, inst, ibag, igen, phdr, pbag, pgen = b"", b"", b"", b"", b"", b"", b""
    n_ibag = n_igen = n_pbag = n_pgen = 0
    for i, pr in enumerate(presets):
        data = np.clip(np.asarray(pr["samples"], dtype=np.float64), -1.0, 1.0)
        pcm = np.round(data * 32767).astype("<i2")
        start = len(smpl) // 2
        smpl += pcm.tobytes() + b"\0" * 92  # 46 zero samples after each sample (spec)
        end = start + len(pcm)
        ls, le = pr.get("loop", (0, 0))
        shdr += struct.pack("<20sIIIIIBbHH", _name20(pr.get("name", f"s{i}")), start, end, start + ls, start + le,
                            int(pr["sample_rate"]), int(pr["root_key"]), 0, 0, 1)
        gens = dict(pr.get("generators", {}))
        if "loop" in pr:
            gens.setdefault(G_SAMPLE_MODES, 1)
        inst += struct.pack("<20sH", _name20(pr.get("name", f"i{i}")), n_ibag)
        ibag += struct.pack("<HH", n_igen, 0)
        n_ibag += 1
        ordered = sorted(gens.items(), key=lambda kv: (kv[0] != G_KEY_RANGE, kv[0] != G_VEL_RANGE, kv[0]))
        for oper, amount in ordered:
            if oper in _RANGE_GENS:
                lo, hi = amount
                igen += struct.pack("<HBB", oper, lo, hi)
            else:
                igen += struct.pack("<Hh", oper, int(amount))
        igen += struct.pack("<HH", G_SAMPLE_ID, i)
        n_igen += len(ordered) + 1
        phdr += struct.pack("<20sHHHIII", _name20(pr.get("name", f"p{i}")), int(pr.get("program", i)),
                            int(pr.get("bank", 0)), n_pbag, 0, 0, 0)
        pbag += struct.pack("<HH", n_pgen, 0)
        pgen += struct.pack("<HH", G_INSTRUMENT, i)
        n_pbag += 1
        n_pgen += 1
    shdr += struct.pack("<20sIIIIIBbHH", _name20("EOS"), 0, 0, 0, 0, 0, 0, 0, 0, 0)
    inst += struct.pack("<20sH", _name20("EOI"), n_ibag)
    ibag += struct.pack("<HH", n_igen, 0)
    igen += struct.pack("<HH", 0, 0)
    phdr += struct.pack("<20sHHHIII", _name20("EOP"), 0, 0, n_pbag, 0, 0, 0)
    pbag += struct.pack("<HH", n_pgen, 0)
    pgen += struct.pack("<HH", 0, 0)
    mod_end = b"\0" * 10
    info = b"INFO" + _riff_chunk(b"ifil", struct.pack("<HH", 2, 1)) + _riff_chunk(b"isng", b"EMU8000\0") \
        + _riff_chunk(b"INAM", b"emomusic test\0")
    sdta = b"sdta" + _riff_chunk(b"smpl", bytes(smpl))
    pdta = b"pdta" + b"".join(_riff_chunk(c, b) for c, b in [
        (b"phdr", phdr), (b"pbag", pbag), (b"pmod", mod_end), (b"pgen", pgen), (b"inst", inst),
        (b"ibag", ibag), (b"imod", mod_end), (b"igen", igen), (b"shdr", shdr)])
    body = b"sfbk" + _riff_chunk(b"LIST", info) + _riff_chunk(b"LIST", sdta) + _riff_chunk(b"LIST", pdta)
    from emomusic.atomic import write_bytes_atomic

    write_bytes_atomic(path, _riff_chunk(b"RIFF", body))
    return Path(path)
