"""The rule-based sketch engine: no model, deterministic per seed (tests, previews, benchmarks)."""

from __future__ import annotations

import math

import numpy as np

from emomusic.emotion import Emotion
from emomusic.errors import EmomusicError
from emomusic.piece import KeySignature, Note, Piece, Tempo, TimeSignature, Track
from emomusic.session.clip_engine import Candidate, ClipRequest, check_soundfont, soundfont_render

_MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
_MINOR_SCALE = (0, 2, 3, 5, 7, 8, 10)
_PROGRESSIONS = {
    "major": ((0, 4, 5, 3), (0, 3, 4, 0), (0, 5, 3, 4), (0, 3, 0, 4)),  # scale degrees of chord roots
    "minor": ((0, 5, 2, 6), (0, 3, 4, 0), (0, 5, 3, 4), (0, 6, 5, 4)),
}


def rules_piece(emotion: Emotion, bars: int, tempo: float, key: KeySignature, seed: int, form=None) -> Piece:
    """A small two-part arrangement (melody + chords) following the attribute template:
    density and velocity from arousal, register from valence, the plan's key and tempo.

    ``form`` (an :class:`emomusic.form.FormPlan` of ``bars`` bars) shapes the phrases: the
    last bar of each phrase is its cadence (a dominant chord for a half cadence, the tonic
    for an authentic one) and the piece ends on the tonic, melody and chord held for the
    whole last bar."""
    from emomusic.attributes import template

    rng = np.random.default_rng(seed)
    tmpl = template(emotion)
    scale = _MAJOR_SCALE if key.mode == "major" else _MINOR_SCALE
    tonic = key.tonic % 12
    prog = _PROGRESSIONS[key.mode][int(rng.integers(len(_PROGRESSIONS[key.mode])))]
    centre = int(round(tmpl.register)) + (0 if tmpl.octave_shift == 0 else 0)
    # per-beat subdivision from the template density (notes per beat of the melody)
    sub = 1 if tmpl.note_density < 1.2 else 2 if tmpl.note_density < 2.2 else 4
    vel = int(np.clip(tmpl.velocity, 30, 115))
    spread = max(2.0, tmpl.pitch_spread)

    def scale_pitch(deg: int, base: int) -> int:
        octave, d = divmod(deg, 7)
        return base + 12 * octave + scale[d]

    base = 12 * ((centre - tonic) // 12) + tonic  # tonic in the melody register
    melody, chords = [], []
    deg = 0
    cadence_at = {} if form is None else dict(form.cadences())  # last bar of a phrase -> cadence
    for bar in range(bars):
        root = prog[bar % len(prog)]
        cadence = cadence_at.get(bar)
        if cadence == "half":
            root = 4
        elif cadence == "authentic" or bar == bars - 1 and form is not None:
            root = 0
        chord_degs = [root, root + 2, root + 4]
        start = bar * 4.0
        if form is not None and bar == bars - 1:  # the final cadence: tonic chord and tonic note, held
            for d in chord_degs:
                chords.append(Note(scale_pitch(d, base - 12 - (12 if tmpl.register < 62 else 0)), start, 4.0, max(1, vel - 18)))
            deg = 7 * int(round(deg / 7))
            melody.append(Note(int(np.clip(scale_pitch(deg, base), 21, 108)), start, 4.0, max(1, min(127, vel))))
            continue
        for d in chord_degs:
            chords.append(Note(scale_pitch(d, base - 12 - (12 if tmpl.register < 62 else 0)), start, 3.9, max(1, vel - 18)))
        beat_len = 1.0 / sub
        for k in range(4 * sub):
            if rng.random() < 0.12 and k % sub:  # a few rests inside beats
                continue
            on_beat = k % sub == 0
            if on_beat and rng.random() < 0.6:
                target = min(chord_degs, key=lambda c: abs(c - deg))  # lean on chord tones
                deg = target + 7 * int(round((deg - target) / 7))
            else:
                deg += int(rng.choice([-2, -1, -1, 1, 1, 2]))
            lim = max(2, int(round(spread / 1.7)))
            deg = int(np.clip(deg, -lim, lim + 2))
            pitch = scale_pitch(deg, base)
            accent = 8 if on_beat else 0
            melody.append(Note(int(np.clip(pitch, 21, 108)), start + k * beat_len, beat_len * tmpl.articulation, max(1, min(127, vel + accent))))
    return Piece(
        tracks=[Track("Melody", 0, False, melody, 0), Track("Chords", 0, False, chords, 1)],
        tempos=[Tempo(float(tempo))],
        keys=[KeySignature(tonic, key.mode)],
        time_signatures=[TimeSignature(4, 4)],
        title=f"rules {emotion.marker_text()}",
    )


def synth_render(piece: Piece, sample_rate: int, tail_seconds: float = 1.0) -> np.ndarray:
    """A small additive piano-like synth (3 harmonics, exponential decay), stereo."""
    notes = [n for t in piece.tracks if not t.is_drum for n in t.notes]
    total = piece.duration_seconds + tail_seconds
    out = np.zeros(int(math.ceil(total * sample_rate)) + 1, dtype=np.float32)
    cache: dict[tuple[int, int], np.ndarray] = {}
    for n in notes:
        t0 = piece.beat_to_seconds(n.start)
        t1 = piece.beat_to_seconds(n.end)
        length = int((t1 - t0 + 0.25) * sample_rate)
        if length <= 0:
            continue
        ck = (n.pitch, length)
        wave = cache.get(ck)
        if wave is None:
            t = np.arange(length, dtype=np.float32) / sample_rate
            f = 440.0 * 2.0 ** ((n.pitch - 69) / 12.0)
            w = np.sin(2 * np.pi * f * t) + 0.4 * np.sin(4 * np.pi * f * t) + 0.15 * np.sin(6 * np.pi * f * t)
            env = np.exp(-t * (1.5 + f / 600.0))
            rel = int(0.25 * sample_rate)
            env[-rel:] *= np.linspace(1.0, 0.0, rel, dtype=np.float32)
            atk = min(length, int(0.005 * sample_rate))
            env[:atk] *= np.linspace(0.0, 1.0, atk, dtype=np.float32)
            wave = (w * env).astype(np.float32)
            cache[ck] = wave
        i0 = int(t0 * sample_rate)
        seg = out[i0 : i0 + length]
        seg += wave[: len(seg)] * (n.velocity / 127.0) * 0.15
    peak = float(np.max(np.abs(out))) if out.size else 0.0
    if peak > 0.95:
        out *= 0.95 / peak
    return np.repeat(out[:, None], 2, axis=1)


class RulesEngine:
    """Model-free sketch engine: :func:`rules_piece`, rendered through the SoundFont when
    emomusic.render and a SoundFont are available (``synth="auto"``), else by the built-in
    additive synth (``synth="builtin"``)."""

    name = "rules"
    measured_on = "piece"
    phrased = True  # asks for whole phrases (emomusic.session.phrasing)
    form_kind = "piece"
    bar_beats = 4.0

    def __init__(self, soundfont=None, synth: str = "auto", use_soundfont: bool | None = None):
        if use_soundfont is not None:  # older spelling
            synth = "soundfont" if use_soundfont else "builtin"
        if synth not in ("auto", "soundfont", "builtin"):
            raise EmomusicError(f"synth must be auto, soundfont or builtin, got {synth!r}")
        self.soundfont = soundfont
        self.reverb = 0.0  # room reverb amount on the render (engine_for sets BuildSettings.reverb)
        self.player = "auto"  # the SoundFont player (engine_for sets BuildSettings.synth)
        self.synth = synth

    def _soundfont_ok(self) -> bool:
        try:
            from emomusic.render import default_soundfont

            if self.soundfont is None:
                default_soundfont()
            return True
        except (ImportError, EmomusicError):
            return False

    def check(self) -> None:
        if self.synth == "auto":
            self.synth = "soundfont" if (self.soundfont is not None or self._soundfont_ok()) else "builtin"
        if self.synth == "soundfont":
            check_soundfont(self.soundfont)

    def generate(self, request: ClipRequest) -> Candidate:
        piece = rules_piece(request.emotion, request.bars(), request.tempo, request.key, request.seed, form=request.form)
        return Candidate(piece, info={"engine": "rules", "synth": self.synth, "form_followed": request.form is not None})

    def render(self, candidate: Candidate, request: ClipRequest, sample_rate: int) -> np.ndarray:
        if self.synth == "auto":
            self.check()
        if self.synth == "soundfont":
            return soundfont_render(candidate.piece, sample_rate, self.soundfont, self.reverb, self.player,
                                request.seconds)
        return synth_render(candidate.piece, sample_rate)
