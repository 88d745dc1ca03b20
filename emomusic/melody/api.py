"""``generate_melodies``: emotion -> ABC melodies that music21 and abc2midi accept."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

from emomusic.emotion import Emotion
from emomusic.errors import CheckpointError, EmomusicError
from emomusic.melody.notation import (
    METERS, CanonTune, Key, chord_pitches, parse_key, write_abc,
)
from emomusic.melody.template import (
    MAX_LEAPS, draw_tune_settings, duration_rule, melody_template, octave_shift_for, sampling_window,
)
from emomusic.piece import KeySignature, Marker, Note, Piece, Tempo, TimeSignature, Track

MAX_BARS = 256
MAX_N = 1000
BATCH = 32
MAX_ATTEMPTS = 8
# how soon a varied repeat (A') leaves its first statement (TuneSpec.bar_plan): with 0.2 a
# consequent phrase keeps its first two bars in 80% of the tunes; measured against the held-out
# folk tunes (benchmarks/realism.py), 0.2 matched their repeated 4-interval patterns (0.44 / 0.44;
# 0.3: 0.39, 0.5: 0.28, exact AABB repeats: 0.64)
VARIATION = 0.2
# chance that a later strain's phrase closes like the first strain's (TuneSpec.rhyme_bar; half of it
# at half cadences): 0.3 with the form weights of emomusic.form.TUNE_FORMS gives bar 16 = bar 8 in
# about 30% of 16-bar tunes and bar 12 = bar 4 in about 15%, the folk tunes' 25% and 12-16%
RHYME = 0.3
# rhythmic motifs (TuneSpec.rhythm_source): chance that a sampled bar inside a phrase takes the note
# lengths of the bar two before it, and that a phrase's second bar takes its first bar's. With a bar
# that already matches by chance about 19% of the time, 0.4 and 0.15 give the folk tunes' 46% and
# 34% (measured before the restated motifs, MOTIF: 52% and 29%; with them 60% for the third bar)
RHYTHM_SKIP = 0.4
RHYTHM_NEXT = 0.15
# a rhythmic motif keeps its source's contour (TuneSpec.motif_contour): bars with an earlier bar's
# rhythm and up/down pattern but other pitches were 3% of the generated bars, 17% of the folk tunes'
# (now 14%)
MOTIF_CONTOUR = True
# chance that such a motif is a diatonic sequence (TuneSpec.sequence): it keeps its source's scale steps
# too. Of the bars with an earlier bar's rhythm and contour at other pitches, the folk tunes' are
# sequences in 36%, the generated ones' in 7% without this, 31% with 0.6
SEQUENCE = 0.6
# chance that a phrase stated for the first time plays its opening bar again as its third bar
# (TuneSpec.restates_motif): the folk tunes do it in 17-22% of those phrases
MOTIF = 0.2
# how far each tune's settings move from the template (emomusic.melody.template.draw_tune_settings)
DIVERSITY = 1.0
# key steering (TuneSpec.tonal_bias): 0.6, plus up to 0.4 the sadder the tune, so the minor mode
# stays audible where the valence asks for it (mode as asked 96.0% -> 98.0%, quadrant accuracy
# 0.830 -> 0.845 on the melody benchmark's 200 tunes) while major tunes keep a real tune's key
# strength (1.0 everywhere: 0.92 against the held-out tunes' 0.85)
TONAL_BIAS, DARK_TONAL_BIAS = 0.6, 0.4
# how far the second part's window rises (TuneSpec.part_lift), by arousal (spread) bin: in the
# held-out tunes bars 9-16 lie 2.7 / 3.1 semitones above bars 1-8 in Q1 / Q2, 1.4 / 1.3 in Q3 / Q4
# (the training sample: 2.9 / 5.0, 2.0 / 0.9). A window wider than the line moves the line less than
# itself: lifts of 1 / 3 / 4 raised the generated second parts by 1.3 / 1.7 / 1.2 / 0.7; these by
# 2.1-2.2 / 2.4-3.1 / 1.5-1.6 / 0.4-0.8 (Q1 / Q2 / Q3 / Q4; two samples of 60 tunes per quadrant)
PART_LIFTS = {0: 2, 1: 5, 2: 8}
# weight of the corpus's contour prior (TuneSpec.contour, emomusic.melody.contour): 0 turns it off
CONTOUR_WEIGHT = 1.0
# steer toward the training tunes' pitch-class profile of the mode (config "profiles",
# emomusic.melody.profiles) instead of the Krumhansl-Kessler profile
USE_PROFILES = True
MELODY_PROGRAM = 0  # acoustic grand piano: every General MIDI SoundFont has it
CHORD_PROGRAM = 0


@dataclass
class Tune:
    """One generated melody: its ABC text, the same music as a :class:`Piece`, and what made it."""

    abc: str
    piece: Piece
    emotion: Emotion
    attributes: dict = field(default_factory=dict)
    canon: CanonTune | None = None
    seed: int = 0

    @property
    def title(self) -> str:
        return self.piece.title

    def to_dict(self) -> dict:
        return {"title": self.title, "seed": self.seed, "emotion": self.emotion.to_dict(),
                "attributes": self.attributes, "abc": self.abc}


def default_checkpoint() -> Path:
    from emomusic.paths import checkpoint_path

    return checkpoint_path("melody")


@lru_cache(maxsize=4)
def _load(path: str, mtime: float):
    from emomusic.melody.model import load_checkpoint
    from emomusic.melody.tokenizer import Tokenizer

    model, cfg = load_checkpoint(path)
    if "tokens" not in cfg:
        raise CheckpointError(f"{path}/config.json has no tokenizer vocabulary")
    tok = Tokenizer(cfg["tokens"])
    if len(tok) != model.config.vocab_size:
        raise CheckpointError(f"{path}: tokenizer and model vocabulary sizes differ")
    return model, tok, cfg


def load_melody_model(checkpoint: str | os.PathLike | None = None):
    """(model, tokenizer, config dict), cached per checkpoint folder and modification time."""
    p = Path(checkpoint) if checkpoint is not None else default_checkpoint()
    cfg = p / "config.json"
    if not cfg.exists():
        raise CheckpointError(f"no melody checkpoint at {p} (train one with 'emomusic train melody')")
    return _load(str(p.resolve()), cfg.stat().st_mtime + (p / "model.safetensors").stat().st_mtime
                 if (p / "model.safetensors").exists() else 0.0)


def _profile(profiles: dict, key: Key) -> tuple | None:
    """The config's pitch-class profile for ``key``'s mode (12 shares, tonic first), or None (the
    decoder steers toward the Krumhansl-Kessler profile). Major-like modes only: the training
    tunes in minor mostly avoid the sixth degree and the raised seventh (3% and 1% of their time),
    which is what tells a minor key from its relative major, and steering toward them let key
    finding hear 9% of the minor tunes without chords as major (mode as asked 99% -> 95%)."""
    if not key.is_major:
        return None
    entry = profiles.get(key.mode)
    if not entry or len(entry.get("profile", ())) != 12:
        return None
    return tuple(float(v) for v in entry["profile"])


def resolve_key(key) -> Key | None:
    if key is None:
        return None
    if isinstance(key, Key):
        return key
    if isinstance(key, KeySignature):
        return Key(key.tonic, key.mode if key.mode in ("major", "minor") else "major")
    if isinstance(key, str):
        return parse_key(key, strict=True)
    raise EmomusicError(f"key must be a name like 'Dm' or 'Ador', got {type(key).__name__}")


def check_options(bars, n, meter, tempo) -> None:
    if isinstance(bars, bool) or not isinstance(bars, int) or not 1 <= bars <= MAX_BARS:
        raise EmomusicError(f"bars must be a whole number from 1 to {MAX_BARS}, got {bars!r}")
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_N:
        raise EmomusicError(f"n must be a whole number from 1 to {MAX_N}, got {n!r}")
    if meter is not None and meter not in METERS:
        raise EmomusicError(f"unsupported metre {meter!r}; use one of {', '.join(METERS)}")
    if tempo is not None:
        try:
            t = float(tempo)
        except (TypeError, ValueError):
            raise EmomusicError(f"tempo must be a number of BPM, got {tempo!r}") from None
        if not 20 <= t <= 400:
            raise EmomusicError(f"tempo must be between 20 and 400 BPM, got {tempo}")


# Metric accents of the melody with abc2midi's default ``%%MIDI beat`` levels (105/95/80, which
# it applies when it plays the ABC): the first note of a bar +10, other notes on a beat 0,
# notes between beats -15, then shifted so the melody's mean velocity is the template
# velocity. (abc2midi itself gives the middle level only in 4/4 and compound metres; here
# every beat of the metre gets it.)
ACCENT_BAR, ACCENT_BEAT, ACCENT_OFFBEAT = 10, 0, -15


def metric_accents(canon: CanonTune) -> list[int]:
    """Velocity offset of every melody note (in order), mean zero, from its place in the bar."""
    beat = METERS[canon.meter][1]
    raw = []
    for bar in canon.bars:
        pos = 0
        first = True
        for _, dur, pitch in bar:
            if pitch is not None:
                raw.append(ACCENT_BAR if first else (ACCENT_BEAT if pos % beat == 0 else ACCENT_OFFBEAT))
                first = False
            pos += dur
    if not raw:
        return []
    mean = sum(raw) / len(raw)
    return [int(round(r - mean)) for r in raw]


def chord_voicing(chord) -> list[int]:
    """The chord track's notes for one chord symbol: its root in the bass octave (C2..B2), then
    the chord in root position from C3 up, so every chord is heard from its root and the
    tonic / dominant roots anchor the key."""
    tones = chord_pitches(chord, 48)
    return [36 + chord[0] % 12] + tones


def tune_to_piece(canon: CanonTune, tempo: float, velocity: int, emotion: Emotion | None = None,
                  title: str = "", accents: bool = True, form=None) -> Piece:
    """The Piece of a canonical tune: a melody track (with metric accents at abc2midi's default
    levels, around ``velocity``; ``accents=False`` for one flat velocity), plus a chord track
    when it has chords; ``form`` (a FormPlan) adds its section markers."""
    melody, chords = [], []
    chord_on: tuple | None = None
    beat = 0.0
    offsets = iter(metric_accents(canon) if accents else [])
    for bar in canon.bars:
        for chord, dur, pitch in bar:
            length = dur / 4.0
            if chord is not None:
                if chord_on is not None:
                    chords.append((chord_on[0], chord_on[1], beat - chord_on[1]))
                chord_on = (chord, beat)
            if pitch is not None:
                vel = max(1, min(127, int(velocity) + next(offsets, 0)))
                melody.append(Note(int(pitch), beat, length, vel))
            beat += length
    if chord_on is not None:
        chords.append((chord_on[0], chord_on[1], beat - chord_on[1]))
    tracks = [Track("Melody", MELODY_PROGRAM, False, melody, channel=0)]
    if chords:
        cv = max(1, min(127, int(velocity * 0.7)))
        notes = [Note(p, start, dur, cv) for c, start, dur in chords if dur > 0 for p in chord_voicing(c)]
        tracks.append(Track("Chords", CHORD_PROGRAM, False, notes, channel=1))
    num, den = canon.meter.split("/")
    markers = [Marker(emotion.marker_text(), 0.0)] if emotion is not None else []
    if form is not None:  # section markers A, A', B ... at the sections' first beats
        markers += form.markers(canon.bar_units / 4)
    return Piece(
        tracks=tracks,
        tempos=[Tempo(float(tempo))],
        keys=[KeySignature(canon.key.tonic, canon.key.piece_mode)],
        time_signatures=[TimeSignature(int(num), int(den))],
        markers=markers,
        title=title or canon.title,
    )


def _title(emotion: Emotion, i: int, seed: int) -> str:
    name = emotion.label or emotion.quadrant
    return f"{name.capitalize()} melody {i + 1} (seed {seed})"


def generate_melodies(emotion: Emotion, *, bars: int = 16, n: int = 1, seed: int = 0, chords: bool = False,
                      meter: str | None = None, key=None, tempo: float | None = None, checkpoint=None,
                      sampling=None, progress: bool = False, form=None, variation: float = VARIATION,
                      check: str = "grammar", contour=None, diversity: float = DIVERSITY) -> list[Tune]:
    """``n`` melodies of ``bars`` bars for ``emotion``.

    ``key`` is a name (``"Dm"``, ``"Ador"``, ``"Gmix"``), a :class:`Key` or a
    :class:`~emomusic.piece.KeySignature`; its mode overrides the template's. ``meter`` is
    one of 2/4 3/4 4/4 2/2 3/8 6/8 9/8 12/8. ``tempo`` (BPM) overrides the template tempo.
    ``form``: None (folk-tune default by length, each tune its own: AA'BB', AA'BC or AA'BA' for 16
    bars, drawn with the tune's seed ``seed + i``, see :func:`emomusic.form.default_form`),
    ``"none"`` (through-composed, no planned repeats), a string such as ``"AABA"`` /
    ``"AA'BB"`` or a :class:`~emomusic.form.FormPlan`. Repeated sections are copied bar for
    bar (and written once between ``|: :|``, with first and second endings where only the
    closing bars differ); a varied repeat (``A'``) opens like its first
    statement and goes its own way after a run of copied bars: its first bar always, each
    further bar with probability ``1 - variation`` (0..1) while the run holds, never its closing
    bar; every phrase ends on its cadence.
    ``check``: ``"grammar"`` (default) checks the canonical tune (every bar full, lengths the
    writer can spell, pitches in range): the constrained decoder and the code-written ABC make
    a tune that passes this parse in music21 and abc2midi (the test suite and
    ``benchmarks/melody.py`` check that on every tune they make); ``"parsers"`` also has each
    tune read by music21 (repeats expanded: every bar and note must come back) and abc2midi,
    about 0.2 s more per tune - ``emomusic melody`` does this before writing. Tunes that fail
    are resampled with another seed.
    ``diversity`` (0..1): how far each tune's settings move from the template, as real tunes of
    one mood differ (:func:`emomusic.melody.template.draw_tune_settings`: neighbouring spread and
    density bins, a scaled key steering, scale degrees the line leaves out; recorded in the tune's
    ``attributes["settings"]``); 0 gives every tune the template's own settings.
    ``contour``: the contour prior (:class:`emomusic.melody.contour.ContourPrior`); None uses the
    checkpoint's fitted table (``contour`` in its config.json; no prior if it has none).
    """
    if not isinstance(emotion, Emotion):
        raise EmomusicError(f"generate_melodies() needs an Emotion, got {type(emotion).__name__}")
    check_options(bars, n, meter, tempo)
    from emomusic.validation import check_fraction, check_seed

    seed = check_seed(seed)  # the one seed rule of every command and API
    want_key = resolve_key(key)
    if check not in ("parsers", "grammar"):
        raise EmomusicError(f"check must be 'parsers' or 'grammar', got {check!r}")
    variation, diversity = check_fraction(variation, "variation"), check_fraction(diversity, "diversity")
    from emomusic.melody.contour import ContourPrior

    if contour is not None and not isinstance(contour, ContourPrior):
        raise EmomusicError(f"contour must be a ContourPrior or None, got {type(contour).__name__}")
    from emomusic.form import piece_forms

    plans = piece_forms(form, bars, emotion, n, seed, kind="tune")  # each tune its own default form
    model, tok, cfg = load_melody_model(checkpoint)

    from emomusic.melody.decode import Sampling, sample_tunes
    from emomusic.melody.grammar import TuneSpec
    from emomusic.melody.tokenizer import Controls
    from emomusic.melody.validate import check_abc

    tpl = melody_template(emotion)
    bpm = float(tempo) if tempo is not None else tpl.tempo
    if contour is None:
        contour = ContourPrior.from_config(cfg, CONTOUR_WEIGHT)
    profiles = cfg.get("profiles", {}) if USE_PROFILES else {}

    def spec_for(i: int, attempt: int) -> TuneSpec:
        rng = random.Random(f"{seed}:{i}")
        k = want_key or tpl.default_key(rng)
        m = meter or tpl.default_meter(rng)
        st = draw_tune_settings(tpl, rng, diversity, k)
        controls = Controls(tpl.quadrant if want_key is None or k.is_major == (tpl.mode == "major") else _flip(tpl.quadrant),
                            tpl.register_bin, st.spread_bin, st.density_bin, bool(chords))
        low, high = sampling_window(tpl.register_bin, st.spread_bin)
        min_dur, dur_bias = duration_rule(st.density_bin, m)
        dark = max(0.0, min(1.0, -emotion.valence))
        spec = TuneSpec(k, m, bars, controls, seed=(seed * 1_000_003 + i * 7919 + attempt * 104_729),
                        low=low, high=high, max_leap=MAX_LEAPS[st.spread_bin], min_duration=min_dur,
                        duration_bias=dur_bias, darkness=dark,
                        tonal_bias=(TONAL_BIAS + DARK_TONAL_BIAS * dark) * st.tonal_scale,
                        part_lift=PART_LIFTS[st.spread_bin], form=plans[i], variation=variation, rhyme=RHYME, motif=MOTIF,
                        rhythm_skip=RHYTHM_SKIP, rhythm_next=RHYTHM_NEXT, motif_contour=MOTIF_CONTOUR, sequence=SEQUENCE,
                        contour=contour, profile=_profile(profiles, k), gaps=st.gaps)
        return spec, st

    results: dict[int, Tune] = {}
    failures: list[str] = []
    todo = list(range(n))
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=n, desc="melodies", unit="tune")
    for attempt in range(MAX_ATTEMPTS):
        if not todo:
            break
        retry = []
        for s in range(0, len(todo), BATCH):
            chunk = todo[s:s + BATCH]
            drawn = [spec_for(i, attempt) for i in chunk]
            specs = [d[0] for d in drawn]
            seqs = sample_tunes(model, tok, specs, sampling or Sampling())
            for i, (spec, st), ids in zip(chunk, drawn, seqs):
                canon = tok.decode(ids, title=_title(emotion, i, seed))
                shift = octave_shift_for(canon.pitches(), tpl.register)
                if shift:
                    canon = replace(canon, bars=[[(c, d, None if p is None else p + shift) for c, d, p in b] for b in canon.bars])
                comment = (f"emomusic melody: {emotion.marker_text()}; template {tpl.dynamic}, "
                           f"{int(round(bpm))} BPM, octave shift {shift:+d}")
                abc = write_abc(canon, tempo=bpm, dynamic=tpl.dynamic, comment=comment, form=plans[i])
                if check == "parsers":  # the repeats, played, give back every bar and note of the tune
                    problem = check_abc(abc, n_bars=len(canon.bars), n_notes=len(canon.pitches()),
                                        quarters=len(canon.bars) * canon.bar_units / 4, expand=True)
                else:
                    problem = check_canon(canon, bars)
                if problem:
                    failures.append(problem)
                    retry.append(i)
                    continue
                piece = tune_to_piece(canon, bpm, tpl.velocity, emotion, canon.title, form=plans[i])
                attrs = {
                    "quadrant": tpl.quadrant, "key": canon.key.abc, "mode": canon.key.mode, "meter": canon.meter,
                    "bars": len(canon.bars), "tempo_bpm": int(round(bpm)), "dynamic": tpl.dynamic,
                    "velocity": tpl.velocity, "octave_shift": shift, "chords": bool(chords),
                    "controls": spec.controls.to_dict(), "template": tpl.to_dict(),
                    "form": plans[i].to_dict(), "check": check, "settings": st.to_dict(),
                }
                results[i] = Tune(abc, piece, emotion, attrs, canon, spec.seed)
                if bar is not None:
                    bar.update(1)
        todo = retry
    if bar is not None:
        bar.close()
    if todo:
        raise EmomusicError(f"{len(todo)} of {n} melodies failed the ABC parsers after {MAX_ATTEMPTS} tries "
                            f"(last problem: {failures[-1] if failures else 'unknown'})")
    out = [results[i] for i in range(n)]
    for t in out:
        t.attributes["resampled"] = len(failures)
    return out


def check_canon(canon: CanonTune, bars: int) -> str | None:
    """None when the canonical tune is what the ABC writer needs (``bars`` full bars, note
    lengths it can write, pitches in range), else the reason."""
    if len(canon.bars) != bars:
        return f"decoded {len(canon.bars)} bars, expected {bars}"
    try:
        canon.check()
    except EmomusicError as exc:
        return str(exc)
    return None


def _flip(q: str) -> str:
    """The quadrant with the other valence sign (a --key whose mode contradicts the template)."""
    return {"Q1": "Q2", "Q2": "Q1", "Q3": "Q4", "Q4": "Q3"}[q]


def transpose_tune(tune: Tune, semitones: int) -> Tune:
    """The tune moved by ``semitones``: notes, chord symbols and the ``K:`` field (mode kept),
    headers rewritten by code (never glued), piece rebuilt."""
    if tune.canon is None:
        raise EmomusicError("this tune has no canonical form to transpose")
    canon = tune.canon.transposed(int(semitones))
    tempo = tune.piece.tempo
    dyn = tune.attributes.get("dynamic")
    from emomusic.form import FormPlan

    plan = FormPlan.from_dict(tune.attributes["form"]) if tune.attributes.get("form") else None
    abc = write_abc(canon, tempo=tempo, dynamic=dyn, comment=f"transposed {int(semitones):+d} semitones", form=plan)
    piece = tune_to_piece(canon, tempo, tune.attributes.get("velocity", 80), tune.emotion, tune.piece.title, form=plan)
    attrs = dict(tune.attributes, key=canon.key.abc)
    return Tune(abc, piece, tune.emotion, attrs, canon, tune.seed)
