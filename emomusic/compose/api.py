"""The symbolic engine's public API: :func:`compose` and the lower-level :class:`ComposeEngine`.

``ComposeEngine.load(checkpoint)`` loads a checkpoint folder holding ``vae/`` and ``diffgan/``
once (cached per folder); ``generate`` samples segment latents for per-segment emotions,
``decode`` turns latents into notes, ``encode`` maps pieces or rolls to latents, and
``to_piece`` builds the multi-track, DAW-ready :class:`Piece`.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from emomusic.emotion import Emotion, parse_emotion
from emomusic.errors import CheckpointError, EmomusicError
from emomusic.form import FormPlan, piece_forms
from emomusic.piece import KeySignature, Marker, Note, Piece, Tempo, TimeSignature, Track, without_overlaps

from .repeats import generate_with_form, note_repeats, restore_repeats
from .representation import notes_to_segments, segments_to_notes

DIVERSITY = 1.0  # how far each piece's player style moves from the emotion's defaults (compose/style.py)
SECTION_BARS = 4  # a marker (and, when the emotion moves, a template section) every 4 bars
MAX_BARS = 512
MAX_N = 1024
DEFAULT_TEMPO = 120.0  # EMOPIA's grid; the template replaces it unless apply_template=False
MELODY_PROGRAM = 0  # Acoustic Grand Piano
ACCOMP_PROGRAM = 0
_CACHE: dict[tuple, "ComposeEngine"] = {}
_LOCK = threading.Lock()


def _check_int(name: str, value, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise EmomusicError(f"{name} must be a whole number, got {value!r}")
    if not lo <= int(value) <= hi:
        raise EmomusicError(f"{name} must be in {lo}..{hi}, got {value}")
    return int(value)


class ComposeEngine:
    """A loaded VAE + diffusion-GAN pair."""

    def __init__(self, vae, diffgan, meta: dict | None = None, device: str = "cpu", path: Path | None = None):
        if vae.cfg.latent_dim != diffgan.cfg.latent_dim:
            raise CheckpointError(f"VAE latent size {vae.cfg.latent_dim} does not match the diffgan's {diffgan.cfg.latent_dim}")
        self.vae = vae.eval()
        self.model = diffgan.eval()
        self.meta = meta or {}
        self.device = device
        self.path = path

    # -- loading -----------------------------------------------------------------------------------
    @classmethod
    def load(cls, checkpoint: str | Path | None = None, device: str = "cpu") -> "ComposeEngine":
        """Load ``checkpoint`` (a folder with ``vae/`` and ``diffgan/``; default: the shipped one)."""
        from emomusic.paths import checkpoint_path

        root = Path(checkpoint) if checkpoint is not None else checkpoint_path("compose")
        if not root.is_dir():
            raise CheckpointError(f"compose checkpoint not found: {root}")
        vae_dir, dg_dir = root / "vae", root / "diffgan"
        for d in (vae_dir, dg_dir):
            if not (d / "config.json").is_file() or not (d / "model.safetensors").is_file():
                raise CheckpointError(f"compose checkpoint {root} is incomplete: {d.name}/config.json and "
                                      f"{d.name}/model.safetensors are needed")
        stamp = tuple((p.stat().st_mtime_ns, p.stat().st_size) for p in
                      (vae_dir / "config.json", vae_dir / "model.safetensors", dg_dir / "config.json", dg_dir / "model.safetensors"))
        key = (str(root.resolve()), stamp, device)
        with _LOCK:
            if key in _CACHE:
                return _CACHE[key]
            from .checkpoint import same_latent_space
            from .train import load_diffgan, load_vae

            vae = load_vae(vae_dir, device)
            model, meta = load_diffgan(dg_dir, device)
            if not same_latent_space(meta, vae_dir / "model.safetensors"):
                raise CheckpointError(f"{dg_dir} was trained on another VAE than {vae_dir}")
            eng = cls(vae, model, meta, device, root)
            while len(_CACHE) >= 4:  # a few engines (e.g. the shipped one + a test checkpoint)
                _CACHE.pop(next(iter(_CACHE)))
            _CACHE[key] = eng
            return eng

    @property
    def segment_bars(self) -> int:
        return self.vae.cfg.bars_per_segment

    @property
    def seq_len(self) -> int:
        return self.model.cfg.seq_len

    # -- sampling -------------------------------------------------------------------------------
    def generate(self, conds, *, seed: int = 0, steps: int | None = None, guidance: float | None = None,
                 overlap: int | None = None, progress: bool = False, valence_guidance: float | None = None) -> np.ndarray:
        """Latents (n, S, D) (VAE space) for per-segment conditions ``conds`` (n, S, 2).

        ``S`` may exceed the trained sequence length: windows of ``seq_len`` segments are
        generated one after another, each keeping the previous window's last ``overlap``
        latents fixed (re-noised at every step, inpainting-style) so the texture continues.
        ``seed``: one seed for the batch, or a list with one per sequence (each sequence then
        draws the noise it would draw alone with its seed).
        """
        import torch

        conds = np.asarray(conds, dtype=np.float32)
        if conds.ndim != 3 or conds.shape[2] != 2:
            raise EmomusicError("conditions must have shape (n, segments, 2)")
        if not np.isfinite(conds).all() or np.abs(conds).max() > 1:
            raise EmomusicError("conditions must be finite valence/arousal values in [-1, 1]")
        n, S, _ = conds.shape
        L = self.seq_len
        overlap = L // 2 if overlap is None else int(overlap)
        if not 0 <= overlap < L:
            raise EmomusicError(f"overlap must be in 0..{L - 1}")
        from .diffgan import generators

        if isinstance(seed, (list, tuple)) and len(seed) != conds.shape[0]:
            raise EmomusicError(f"{len(seed)} seeds for {conds.shape[0]} sequences")
        g = generators(seed, self.device)
        D = self.model.cfg.latent_dim
        out = torch.zeros(n, S, D)
        c = torch.from_numpy(conds).to(self.device)
        windows = []
        have = 0
        while have < S:
            start = 0 if have == 0 else have - overlap
            end = min(S, start + L)
            windows.append((start, have, end))
            have = end
        from tqdm import tqdm

        with torch.no_grad():
            for start, known_to, end in tqdm(windows, desc="composing", disable=not progress or len(windows) < 2):
                w = end - start
                known = known_mask = None
                if known_to > start:
                    known = torch.zeros(n, w, D, device=self.device)
                    known[:, : known_to - start] = out[:, start:known_to].to(self.device)
                    known_mask = torch.zeros(n, w, dtype=torch.bool, device=self.device)
                    known_mask[:, : known_to - start] = True
                x = self.model.sample(c[:, start:end], generator=g, steps=steps, guidance=guidance, known=known,
                                      known_mask=known_mask, valence_guidance=valence_guidance)
                out[:, start:end] = x.cpu()
        return self.model.denormalise(out.to(self.device)).cpu().numpy()

    def random_latents(self, n: int, segments: int, seed: int = 0) -> np.ndarray:
        """N(0, I) latents in the VAE's space (the benchmark's random-latent baseline)."""
        rng = np.random.default_rng(seed)
        return rng.standard_normal((n, segments, self.vae.cfg.latent_dim)).astype(np.float32)

    # -- VAE ---------------------------------------------------------------------------------------
    def decode_rolls(self, latents) -> np.ndarray:
        """Latents (n, S, D) -> rolls (n, S, 3, T, P) with onset probabilities."""
        import torch

        from .vae import decode_probs

        lat = torch.as_tensor(np.asarray(latents, dtype=np.float32))
        n, S, D = lat.shape
        outs = []
        with torch.no_grad():
            flat = lat.reshape(n * S, D).to(self.device)
            for i in range(0, len(flat), 512):
                outs.append(decode_probs(self.vae.decode(flat[i:i + 512])).cpu().numpy())
        rolls = np.concatenate(outs) if outs else np.zeros((0, 3, self.vae.cfg.n_steps, self.vae.cfg.n_pitches), np.float32)
        return rolls.reshape(n, S, *rolls.shape[1:])

    def decode(self, latents, threshold: float | None = None, melody: tuple[int, float] | None = None) -> list[list[Note]]:
        """Latents (n, S, D) -> one note list per sequence (beats from 0); ``threshold`` on the
        onset probability (default: the VAE config's ``decode_threshold``); ``melody`` =
        (lowest pitch, threshold): a lower threshold for the top note of a step where nothing
        in the melody's register reaches ``threshold`` (:func:`segments_to_notes`)."""
        threshold = self.vae.cfg.decode_threshold if threshold is None else float(threshold)
        return [segments_to_notes(r, self.vae.cfg, threshold, melody=melody) for r in self.decode_rolls(latents)]

    def encode(self, items) -> np.ndarray:
        """Pieces (or note lists) -> posterior means (n, S, D); rolls (B, 3, T, P) -> (B, D)."""
        import torch

        cfg = self.vae.cfg
        if isinstance(items, np.ndarray):
            with torch.no_grad():
                mu, _ = self.vae.encode(torch.from_numpy(items.astype(np.float32)).to(self.device))
            return mu.cpu().numpy()
        seqs = []
        for it in items:
            notes = it.notes if isinstance(it, Piece) else it
            segs, _ = notes_to_segments(notes, cfg, min_notes=0)
            seqs.append(segs)
        S = max((len(s) for s in seqs), default=0)
        out = np.zeros((len(seqs), S, cfg.latent_dim), np.float32)
        for i, segs in enumerate(seqs):
            if len(segs):
                out[i, : len(segs)] = self.encode(segs)
        return out

    # -- pieces ------------------------------------------------------------------------------------
    def to_piece(self, notes: Sequence[Note], emotions: Sequence[Emotion], bars: int, *, tempo: float | None = None,
                 key: KeySignature | None = None, title: str = "") -> Piece:
        """Notes + per-segment emotions -> a multi-track piece with key, tempo, metre and markers."""
        from emomusic.attributes import estimate_key

        bar_beats = 4.0
        total = bars * bar_beats
        kept = []
        for nt in notes:
            if nt.start >= total - 1e-6:
                continue
            kept.append(replace(nt, duration=max(0.25, min(nt.duration, total - nt.start))) if nt.start + nt.duration > total else nt)
        shift = 0
        if kept:
            tonic, mode, _, _ = estimate_key(kept)
        else:
            tonic, mode = 0, "major"
        if key is not None:
            have_root = tonic if mode == "major" else (tonic + 3) % 12
            want_root = key.tonic if key.mode == "major" else (key.tonic + 3) % 12
            shift = ((want_root - have_root + 6) % 12) - 6
            if shift:
                kept = [replace(nt, pitch=min(108, max(21, nt.pitch + shift))) for nt in kept]
            ksig = KeySignature(key.tonic, key.mode, 0.0)
        else:
            ksig = KeySignature(int(tonic), mode, 0.0)
        melody, accomp = split_hands(kept)
        seg_beats = self.segment_bars * bar_beats
        markers = []
        for b in range(0, bars, SECTION_BARS):
            segs = [emotions[min(len(emotions) - 1, int((b + j) * bar_beats // seg_beats))] for j in range(min(SECTION_BARS, bars - b))]
            markers.append(Marker(_mean(segs).marker_text(), b * bar_beats))
        return Piece(
            tracks=[Track("Melody", MELODY_PROGRAM, False, melody), Track("Accompaniment", ACCOMP_PROGRAM, False, accomp)],
            tempos=[Tempo(float(tempo) if tempo else DEFAULT_TEMPO, 0.0)],
            keys=[ksig],
            time_signatures=[TimeSignature(4, 4, 0.0)],
            markers=markers,
            title=title,
        )


def _mean(emotions: Sequence[Emotion]) -> Emotion:
    v = float(np.mean([e.valence for e in emotions]))
    a = float(np.mean([e.arousal for e in emotions]))
    return Emotion(max(-1.0, min(1.0, v)), max(-1.0, min(1.0, a)))


def split_hands(notes: Sequence[Note], min_melody_pitch: int = 55) -> tuple[list[Note], list[Note]]:
    """Skyline split: the highest note of each onset (if >= ``min_melody_pitch``) is the melody,
    cut so the melody stays monophonic; everything else is accompaniment."""
    groups: dict[float, list[Note]] = {}
    for nt in notes:
        groups.setdefault(round(nt.start, 4), []).append(nt)
    melody, accomp = [], []
    for start in sorted(groups):
        g = sorted(groups[start], key=lambda x: x.pitch)
        if g[-1].pitch >= min_melody_pitch:
            melody.append(g[-1])
            accomp.extend(g[:-1])
        else:
            accomp.extend(g)
    mono = []
    for i, nt in enumerate(melody):
        if i + 1 < len(melody) and nt.start + nt.duration > melody[i + 1].start:
            nt = replace(nt, duration=max(0.125, melody[i + 1].start - nt.start))
        mono.append(nt)
    return mono, sorted(accomp, key=lambda x: (x.start, x.pitch))


def emotion_path(start: Emotion, end: Emotion | None, segments: int) -> list[Emotion]:
    """Per-segment emotions: constant, or a linear morph from ``start`` to ``end``."""
    if end is None or segments == 1:
        return [start] * segments
    return [start.lerp(end, i / (segments - 1)) for i in range(segments)]


def _apply_template(piece: Piece, emotions: Sequence[Emotion], moving: bool, seg_beats: float = 8.0,
                    mode: bool = True) -> Piece:
    """The post-hoc template: tempo, loudness, register and (``mode``) the parallel major/minor."""
    from emomusic.attributes import DEFAULT_CONTROLS, apply_template
    from emomusic.piece import concatenate

    if not piece.notes:
        return piece
    extra = ("mode",) if mode else ()
    if not moving:
        return apply_template(piece, emotions[0], controls=DEFAULT_CONTROLS + extra)
    # the emotion moves: register once for the mean emotion (no octave jumps between sections),
    # tempo, loudness and mode per section (a section whose valence changes sign modulates to
    # the parallel key)
    whole = apply_template(piece, _mean(emotions), controls=("register",))
    sec = SECTION_BARS * 4.0
    n_sec = int(math.ceil(whole.end_beat / sec - 1e-6)) or 1
    parts = []
    for i in range(n_sec):
        lo, hi = i * sec, (i + 1) * sec
        tracks = [replace(t, notes=[replace(nt, start=nt.start - lo) for nt in t.notes if lo <= nt.start < hi])
                  for t in whole.tracks]
        marks = [replace(m, beat=m.beat - lo) for m in whole.markers if lo <= m.beat < hi]
        sec_em = [e for j, e in enumerate(emotions) if lo <= j * seg_beats < hi] or [emotions[-1]]
        em = _mean(sec_em)
        part = replace(whole, tracks=tracks, markers=marks, tempos=[Tempo(whole.tempo, 0.0)],
                       keys=[replace(k, beat=0.0) for k in whole.keys[:1]], time_signatures=[TimeSignature(4, 4, 0.0)])
        if any(t.notes for t in tracks):
            part = apply_template(part, em, controls=("tempo", "velocity") + extra)
        parts.append(part)
    out = concatenate(parts, lengths=[sec] * n_sec)
    keys = []
    for k in out.keys:  # a key change only where the key does change
        if not keys or (k.tonic, k.mode) != (keys[-1].tonic, keys[-1].mode):
            keys.append(k)
    out.keys = keys if mode else out.keys[:1]
    out.time_signatures = out.time_signatures[:1]
    out.title = piece.title
    return out


def _notes_to_mode(notes: Sequence[Note], emotion: Emotion) -> list[Note]:
    """Raw notes moved to the template mode of ``emotion`` (before a fixed ``key=`` transposition)."""
    from emomusic.modes import template_mode

    choice = template_mode([notes], emotion)
    return list(notes) if choice is None else choice[0][0]


def with_form(piece: Piece, plan: FormPlan) -> Piece:
    """The finished piece with the plan's cadences (in the key it ends up in, after the
    template) and its section markers before the emotion markers at the same beat."""
    from .cadence import apply_cadences

    out = apply_cadences(piece, plan)
    for t in out.tracks:  # still one voice per key after the cadence chords
        t.notes = without_overlaps(t.notes)
    out.markers = sorted(plan.markers(out.time_signature.bar_beats) + list(out.markers), key=lambda m: m.beat)
    return out


MAX_RESAMPLES = 4  # extra draws for pieces that decode to fewer notes than bars


def _generate(eng: "ComposeEngine", conds: np.ndarray, plans: list[FormPlan], seed: int, **kw) -> np.ndarray:
    """Latents for ``conds`` (n, S, 2), piece i following ``plans[i]``: pieces that share a plan
    are generated together, each group with ``seed`` plus its first piece's index (one plan for
    all: :func:`~emomusic.compose.repeats.generate_with_form` with ``seed``)."""
    groups: dict[FormPlan, list[int]] = {}
    for i, plan in enumerate(plans):
        groups.setdefault(plan, []).append(i)
    out = None
    for plan, idx in groups.items():
        lat = generate_with_form(eng, conds[idx], plan, seed=seed + idx[0], **kw)
        if out is None:
            out = np.zeros((len(plans),) + lat.shape[1:], dtype=lat.dtype)
        out[idx] = lat
    return out


def compose(emotion: Emotion | str, *, to: Emotion | str | None = None, bars: int = 16, n: int = 1, seed: int = 0,
            steps: int = 4, guidance: float | None = None, tempo: float | None = None, key: KeySignature | None = None,
            apply_template: bool = True, checkpoint: str | Path | None = None, progress: bool = False,
            threshold: float | None = None, form: "str | FormPlan | None" = None, texture: bool = True,
            diversity: float = DIVERSITY) -> list[Piece]:
    """Compose ``n`` multi-track piano pieces of ``bars`` bars for ``emotion`` (morphing to ``to``).

    ``guidance`` None uses the checkpoint's default classifier-free guidance scale (1 = off).
    ``tempo`` (BPM) and ``key`` override the tempo and key (the piece is transposed to ``key``).
    ``apply_template`` moves tempo/loudness/register toward the emotion's attribute template and
    re-maps the pitches to the template's mode (major for valence >= 0, minor below: a
    parallel-mode re-mapping, see ``emomusic.modes.mode_mapping``). With ``key`` the mode is set before the piece is
    transposed, so the result lies in ``key`` or its relative major/minor (the key signature is
    ``key`` as given).
    ``threshold``: onset probability threshold of the VAE decoder (default: the checkpoint's,
    raised for calm emotions when ``texture`` is on, see ``texture.calm_threshold``).
    ``form``: the musical form (:func:`emomusic.form.resolve_form`): None picks one for each
    piece by length and its seed (:func:`emomusic.form.piece_forms`), ``"none"`` is through-composed (no
    repeats, no planned cadences), else a string such as ``"AABA"`` / ``"AA'BA"`` or a :class:`FormPlan`. Repeated
    sections reuse their first statement's latents (:mod:`emomusic.compose.repeats`), phrases
    end on the plan's cadences (:mod:`emomusic.compose.cadence`), and the sections are marked
    (markers ``A``, ``A'``, ``B`` ... beside the emotion markers).
    ``texture`` adds a harmony-aware piano accompaniment (left-hand patterns by arousal, chord
    tones under the melody, the plan's cadence chords; :func:`emomusic.compose.texture.add_texture`)
    to the generated notes.
    ``diversity`` (0..1): how far each piece's player style (onset budget of the left hand, bass
    register, colour tones, passing notes, quick repeated notes;
    :func:`emomusic.compose.style.draw_style` with the
    piece's seed ``seed + i``) moves from the emotion's defaults, as real pianists differ; 0
    plays every piece with the plain rules. Only the texture and its passing notes use it.
    """
    job = _prepare(emotion, to=to, bars=bars, n=n, seed=seed, steps=steps, guidance=guidance, tempo=tempo, key=key,
                   apply_template=apply_template, checkpoint=checkpoint, threshold=threshold, form=form, texture=texture,
                   diversity=diversity)
    lat = _generate(job.eng, job.conds, job.plans, job.seed, steps=job.steps, guidance=job.guidance, progress=progress)
    return _finish(job, lat)


def compose_many(calls: Sequence[dict]) -> list[list[Piece]]:
    """``[compose(**call) for call in calls]`` with the diffusion model run once for every
    group of pieces that can share a batch (one piece each, the same form plan, length,
    steps, guidance and checkpoint; :func:`draft_many`): the per-call cost of the small
    transformer is paid once per group. Each call keeps its own emotion, form plan and seed:
    its noise is what ``compose(**call)`` draws; only the model's float arithmetic differs in
    a batch (last bits, about 1e-6 in the latents), so the notes are the same unless an onset
    probability lies that close to the threshold."""
    return [d.finish() for d in draft_many(calls)]


class Draft:
    """A :func:`compose` call whose latents are sampled (:func:`draft_many`); :meth:`finish`
    decodes them into what the call returns."""

    def __init__(self, job: "_Job", latents: np.ndarray):
        self.job = job
        self.latents = latents

    def finish(self) -> list[Piece]:
        return _finish(self.job, self.latents)


def draft_many(calls: Sequence[dict]) -> list[Draft]:
    """The checked calls (each a dict of :func:`compose`'s arguments, ``emotion`` included)
    with their latents, sampled in batches (:func:`compose_many`). Bad arguments fail here,
    before any sampling, with compose's messages."""
    import inspect

    sig = inspect.signature(compose)
    jobs = []
    for call in calls:
        try:
            bound = sig.bind(**call)
        except TypeError as exc:
            raise EmomusicError(f"bad compose arguments: {exc}") from None
        bound.apply_defaults()
        args = dict(bound.arguments)
        args.pop("progress")
        jobs.append(_prepare(**args))
    return [Draft(job, lat) for job, lat in zip(jobs, _sample_jobs(jobs))]


def _sample_jobs(jobs: list["_Job"]) -> list[np.ndarray]:
    """Latents of each job, as :func:`compose` samples them; single-piece jobs that share a
    form plan (and length, steps, guidance, checkpoint and the plan's repeat choices) in one
    batch, each row with its own seed's generator."""
    from .repeats import generate_with_form, return_choices

    out: list = [None] * len(jobs)
    groups: dict[tuple, list[int]] = {}
    for i, job in enumerate(jobs):
        if job.n != 1:  # compose's own grouping of n pieces (one generator per plan group)
            out[i] = _generate(job.eng, job.conds, job.plans, job.seed, steps=job.steps, guidance=job.guidance)
            continue
        plan = job.plans[0]
        key = (id(job.eng), plan, job.conds.shape[1], job.steps, job.guidance,
               return_choices(job.conds[0], plan, job.eng.segment_bars))
        groups.setdefault(key, []).append(i)
    for (_, plan, _, steps, guidance, _), idx in groups.items():
        eng = jobs[idx[0]].eng
        conds = np.concatenate([jobs[i].conds for i in idx])
        lat = generate_with_form(eng, conds, plan, seed=[jobs[i].seed for i in idx], steps=steps, guidance=guidance)
        for row, i in enumerate(idx):
            out[i] = lat[row:row + 1]
    return out


@dataclass
class _Job:
    """One :func:`compose` call, checked (what :func:`_finish` needs besides the latents)."""

    emotion: Emotion
    target: Emotion | None
    bars: int
    n: int
    seed: int
    steps: int
    guidance: float | None
    tempo: float | None
    key: KeySignature | None
    apply_template: bool
    threshold: float | None
    texture: bool
    plans: list
    eng: "ComposeEngine"
    emos: list
    conds: np.ndarray
    diversity: float = DIVERSITY


def _prepare(emotion, *, to, bars, n, seed, steps, guidance, tempo, key, apply_template, checkpoint, threshold, form,
             texture, diversity=DIVERSITY) -> "_Job":
    """compose's arguments checked, the engine loaded, the forms and conditions chosen."""
    emotion = parse_emotion(emotion)
    target = parse_emotion(to) if to is not None else None
    bars = _check_int("bars", bars, 1, MAX_BARS)
    n = _check_int("n", n, 1, MAX_N)
    from emomusic.validation import check_fraction, check_seed

    seed = check_seed(seed)  # the one seed rule of every command and API (0..2**32-1)
    steps = _check_int("steps", steps, 1, 1000)
    if guidance is not None:
        try:
            guidance = float(guidance)
        except (TypeError, ValueError):
            raise EmomusicError(f"guidance must be a number, got {guidance!r}") from None
        if not math.isfinite(guidance) or guidance < 0:
            raise EmomusicError(f"guidance must be a finite number >= 0, got {guidance}")
    if tempo is not None:
        try:
            tempo = float(tempo)
        except (TypeError, ValueError):
            raise EmomusicError(f"tempo must be a number, got {tempo!r}") from None
        if not math.isfinite(tempo) or not 20 <= tempo <= 300:
            raise EmomusicError(f"tempo must be between 20 and 300 BPM, got {tempo}")
    if key is not None and not isinstance(key, KeySignature):
        raise EmomusicError(f"key must be a KeySignature, got {type(key).__name__}")
    diversity = check_fraction(diversity, "diversity")
    plans = piece_forms(form, bars, emotion, n, seed)
    eng = ComposeEngine.load(checkpoint)
    if steps > eng.model.cfg.timesteps:
        raise EmomusicError(f"this model was trained with {eng.model.cfg.timesteps} denoising steps; use steps 1..{eng.model.cfg.timesteps}")
    S = int(math.ceil(bars / eng.segment_bars))
    emos = emotion_path(emotion, target, S)
    conds = np.array([[e.as_tuple() for e in emos]] * n, dtype=np.float32)
    return _Job(emotion, target, bars, n, seed, steps, guidance, tempo, key, apply_template, threshold, texture, plans, eng,
                emos, conds, diversity)


def _finish(job: "_Job", lat: np.ndarray) -> list[Piece]:
    """The pieces of ``job`` from its sampled latents ``lat`` (n, S, D): decode (redrawing
    samples that decode to too few notes), template, texture, the form's cadences."""
    emotion, target, bars, seed, steps, guidance = job.emotion, job.target, job.bars, job.seed, job.steps, job.guidance
    tempo, key, apply_template, threshold, texture = job.tempo, job.key, job.apply_template, job.threshold, job.texture
    plans, eng, emos, conds = job.plans, job.eng, job.emos, job.conds
    pieces = []
    moving = target is not None and target.as_tuple() != emotion.as_tuple()
    label = f"{emotion}" + (f" -> {target}" if moving else "")
    melody = None
    if texture and threshold is None:  # calm pieces decode sparser (the texture fills them in), the melody line less sparse
        from .texture import decode_thresholds

        threshold, melody = decode_thresholds(eng.vae.cfg.decode_threshold, _mean(emos))
    all_notes = [note_repeats(nt, plan, eng.segment_bars) for nt, plan in zip(eng.decode(lat, threshold=threshold, melody=melody), plans)]
    best = np.array(lat, copy=True)
    # A sample can decode to (almost) nothing; redraw those with derived seeds so no one gets
    # an empty file. Deterministic: the same seed gives the same redraws.
    for attempt in range(1, MAX_RESAMPLES + 1):
        sparse = [i for i, nt in enumerate(all_notes) if len(nt) < bars]
        if not sparse:
            break
        lat2 = _generate(eng, conds[sparse], [plans[i] for i in sparse], seed + 7919 * attempt, steps=steps, guidance=guidance)
        for j, (i, nt) in enumerate(zip(sparse, eng.decode(lat2, threshold=threshold, melody=melody))):
            nt = note_repeats(nt, plans[i], eng.segment_bars)
            if len(nt) > len(all_notes[i]):
                all_notes[i] = nt
                best[i] = lat2[j]
    sparse = [i for i, nt in enumerate(all_notes) if len(nt) < bars]
    if sparse:
        # Last resort: lower the onset threshold of those samples to keep their `bars` most
        # likely onsets (a weak model, e.g. a debug checkpoint, still gives a playable piece).
        base = eng.vae.cfg.decode_threshold if threshold is None else float(threshold)
        for i, roll in zip(sparse, eng.decode_rolls(best[sparse])):
            onset = np.sort(roll[:, 0].ravel())
            all_notes[i] = note_repeats(segments_to_notes(roll, eng.vae.cfg, min(base, float(onset[-bars]))), plans[i],
                                        eng.segment_bars)
    for i, notes in enumerate(all_notes):
        if apply_template and key is not None:
            # a fixed key: choose the mode first, then to_piece transposes to key (or its relative)
            notes = _notes_to_mode(notes, _mean(emos))
        p = eng.to_piece(notes, emos, bars, tempo=tempo, key=key, title=f"emomusic: {label}")
        if apply_template:
            p = _apply_template(p, emos, moving, eng.segment_bars * 4.0, mode=key is None)
            if tempo:
                p.tempos = [Tempo(float(tempo), 0.0)]
        for t in p.tracks:  # one voice per key, as a MIDI file holds it (so counts agree with the file);
            # an exact return stays exact after the template's global mode step (a morph's returns
            # were re-conditioned on their own emotion: they keep their notes)
            t.notes = without_overlaps(restore_repeats(t.notes, plans[i]) if apply_template and not moving else t.notes)
        pieces.append(p)
    if texture:  # passing notes in the melody's thirds, then the piano texture around the generated
        # notes, on the plan's chords at its cadences
        from .articulation import articulate
        from .passing import add_passing_tones
        from .style import piece_styles
        from .texture import add_texture

        seg_beats = eng.segment_bars * 4.0
        styles = piece_styles(seed, len(pieces), job.diversity)  # each piece its own player
        pieces = [add_passing_tones(p, emos, seed=seed + i, segment_beats=seg_beats, form=plans[i],
                                    ornament=styles[i].ornament, repeats=styles[i].repeats)
                  for i, p in enumerate(pieces)]
        pieces = [add_texture(p, emos, form=plans[i], seed=seed + i, segment_beats=seg_beats, style=styles[i])
                  for i, p in enumerate(pieces)]
        # each piece holds its notes as one real player would: how many notes sound at once drawn
        # from real music's range at the emotion (articulation.py)
        pieces = [articulate(p, emos, seed=seed + i) for i, p in enumerate(pieces)]
    # the form's cadences (in the key the template left) and section markers come last
    return [with_form(p, plan) for p, plan in zip(pieces, plans)]
