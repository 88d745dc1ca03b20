#!/usr/bin/env python
"""Benchmark of the symbolic engine (``emomusic compose``) against its baselines.

Prints markdown tables (and writes ``--json``):

1. **Emotion control** - ``--per-quadrant`` pieces at each quadrant centre; the share the
   project's estimator (:func:`emomusic.estimator.estimate_emotion`) puts in the requested
   quadrant, and per-axis (valence, arousal) sign agreement; the arousal agreement per quadrant
   again with velocity read as unknown (``neutral=VELOCITY_FEATURES``: is the texture itself
   excited or calm, not only its loudness). Systems: the diffusion-GAN with
   and without the post-hoc attribute template, the autoregressive baseline (same template
   applied, and without), and random N(0, I) latents decoded by the engine's VAE (with and
   without the template: what the template alone achieves, and chance).
2. **Continuous control** - valence swept over ``--sweep`` values in [-1, 1] at arousal 0
   (and arousal at valence 0), ``--sweep-seeds`` seeds each; Spearman correlation of
   requested vs estimated values (all pieces, and of the per-value means).
3. **Quality** - overlapping area (OA) of pitch, duration, IOI, velocity and pitch-class
   histograms against EMOPIA val clips; muspy-style descriptors; diversity between seeds;
   near-copy share of generated 2-bar segments against EMOPIA train segments.
4. **Speed** (model load excluded) - one 16-bar piece (median of ``--speed-reps``), batch of
   64, real-time factor (seconds of music per second of compute), ratio against the
   autoregressive baseline at equal length, and the wall time of ``emomusic compose`` from a
   cold start (a fresh process).

Run from the repository root::

    python benchmarks/compose.py --emopia ../shared/data/emopia --json out/bench_compose.json
    python benchmarks/compose.py --quick            # a few pieces per cell, minutes not hours

EMOPIA val is the reference set and is never used for training; EMOPIA train is the corpus
for the near-copy check.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from emomusic import metrics as M  # noqa: E402
from emomusic.emotion import QUADRANTS, Emotion  # noqa: E402
from emomusic.errors import EmomusicError  # noqa: E402
from emomusic.piece import Piece  # noqa: E402

Generate = Callable[[Emotion, int, int, int], "list[Piece]"]  # (emotion, bars, n, seed)


@dataclass
class System:
    name: str
    generate: Generate
    description: str
    raw_of: str | None = None  # when set: this system = template applied to ``raw_of``'s pieces
    fingerprint: str = ""  # identifies the weights, for the on-disk piece cache


# -- systems ------------------------------------------------------------------------------------
def _template(pieces: list[Piece], emotion: Emotion) -> list[Piece]:
    from emomusic.attributes import DEFAULT_CONTROLS, apply_template

    # the same post-hoc template as compose() applies (tempo, loudness, register and mode)
    controls = DEFAULT_CONTROLS + ("mode",)
    return [apply_template(p, emotion, controls=controls) if p.notes else p for p in pieces]  # an empty piece stays empty


def diffgan_systems(checkpoint: str | None, steps: int, guidance: float | None, form: str | None = None) -> list[System]:
    from emomusic.compose import ComposeEngine, compose

    ComposeEngine.load(checkpoint)  # fail early (CheckpointError) when there is no checkpoint
    extra = {} if guidance is None else {"guidance": guidance}
    if form is not None:
        extra["form"] = form

    def with_template(e, bars, n, seed):
        return compose(e, bars=bars, n=n, seed=seed, steps=steps, apply_template=True, checkpoint=checkpoint, **extra)

    def without(e, bars, n, seed):
        return compose(e, bars=bars, n=n, seed=seed, steps=steps, apply_template=False, checkpoint=checkpoint, **extra)

    def no_texture(e, bars, n, seed):
        return compose(e, bars=bars, n=n, seed=seed, steps=steps, apply_template=True, checkpoint=checkpoint,
                       texture=False, **extra)

    return [
        System("diffgan", with_template, f"VAE + {steps}-step latent diffusion-GAN, attribute template and piano texture applied"),
        System("diffgan-no-template", without, f"VAE + {steps}-step latent diffusion-GAN, piano texture, no template"),
        System("diffgan-no-texture", no_texture, f"VAE + {steps}-step latent diffusion-GAN, attribute template, "
               "generated notes only (no accompaniment added)"),
    ]


def random_latent_generator(checkpoint: str | None) -> Generate:
    """The engine's VAE decoder applied to random N(0, I) latents (no diffusion, no emotion).

    Uses ``ComposeEngine.random_latents`` / ``decode`` / ``to_piece``: the same decoding and
    piece building as ``compose``, only the latents differ.
    """
    from emomusic.compose import ComposeEngine

    engine = ComposeEngine.load(checkpoint)

    def gen(e: Emotion, bars: int, n: int, seed: int) -> list[Piece]:
        segments = int(math.ceil(bars / engine.segment_bars))
        notes = engine.decode(engine.random_latents(n, segments, seed=seed))
        return [engine.to_piece(nt, [e] * segments, bars, title="random latents") for nt in notes]

    return gen


def random_latent_systems(checkpoint: str | None) -> list[System]:
    gen = random_latent_generator(checkpoint)
    return [
        System("random-latent-no-template", gen, "VAE decoder on random N(0, I) latents (no emotion)"),
        System("random-latent", gen, "random latents + attribute template (the template alone)", raw_of="random-latent-no-template"),
    ]


def baseline_systems(checkpoint: str | None, guidance: float) -> list[System]:
    from emomusic.compose.baseline import load_baseline

    model = load_baseline(checkpoint)
    from emomusic.paths import checkpoint_path

    w = Path(checkpoint or checkpoint_path("baseline")) / "model.safetensors"
    fp = f"{w.resolve()}:{w.stat().st_size}:{w.stat().st_mtime_ns}"

    def raw(e, bars, n, seed):
        out = []
        for i in range(0, n, 16):  # batches of 16 keep memory and padding waste small
            out += model.generate(e, bars=bars, n=min(16, n - i), seed=seed + i, guidance=guidance)
        return out

    return [
        System("baseline-no-template", raw, "autoregressive REMI transformer, raw output", fingerprint=fp),
        System("baseline", raw, "autoregressive REMI transformer + attribute template", raw_of="baseline-no-template"),
    ]


# -- measurements ---------------------------------------------------------------------------------
def _piece_to_json(p: Piece) -> dict:
    return {"tempo": p.tempo, "notes": [[n.pitch, n.start, n.duration, n.velocity] for n in p.notes]}


def _piece_from_json(d: dict) -> Piece:
    from emomusic.piece import Note, Tempo, Track

    return Piece(tracks=[Track("Piano", 0, False, [Note(int(a), float(b), float(c), int(v)) for a, b, c, v in d["notes"]])],
                 tempos=[Tempo(float(d["tempo"]))])


class Runner:
    """Generates each (system, emotion, bars, n, seed) once; template variants reuse raw pieces.

    With ``cache_dir``, raw pieces of systems with a ``fingerprint`` are kept on disk (JSON),
    so a later run (e.g. after the engine checkpoint changes) does not regenerate them.
    """

    def __init__(self, systems: list[System], cache_dir: Path | None = None):
        self.systems = {s.name: s for s in systems}
        self.cache: dict[tuple, list[Piece]] = {}
        self.seconds: dict[str, float] = {}
        self.cache_dir = cache_dir

    def _disk(self, s: System, key: tuple) -> Path | None:
        if self.cache_dir is None or not s.fingerprint:
            return None
        import hashlib

        h = hashlib.sha1(json.dumps([s.fingerprint, *key], default=str).encode()).hexdigest()[:20]
        return self.cache_dir / f"{s.name}_{h}.json"

    def pieces(self, name: str, emotion: Emotion, bars: int, n: int, seed: int) -> list[Piece]:
        key = (name, emotion.as_tuple(), bars, n, seed)
        if key not in self.cache:
            s = self.systems[name]
            if s.raw_of:
                self.cache[key] = _template(self.pieces(s.raw_of, emotion, bars, n, seed), emotion)
                return self.cache[key]
            disk = self._disk(s, key)
            if disk is not None and disk.is_file():
                self.cache[key] = [_piece_from_json(d) for d in json.loads(disk.read_text())]
                return self.cache[key]
            t = time.perf_counter()
            self.cache[key] = list(s.generate(emotion, bars, n, seed))
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t
            if disk is not None:
                from emomusic.atomic import write_text_atomic

                write_text_atomic(disk, json.dumps([_piece_to_json(p) for p in self.cache[key]]))
        return self.cache[key]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _miss(requested: Emotion) -> Emotion:
    """Stand-in estimate for a piece without notes: wrong on both axes (a failure, not chance)."""
    return Emotion(-0.5 if requested.valence >= 0 else 0.5, -0.5 if requested.arousal >= 0 else 0.5)


def emotion_control(runner: Runner, names: list[str], per_quadrant: int, bars: int, estimate,
                    estimate_nv=None) -> tuple[dict, dict]:
    """``estimate_nv``: the estimator with velocity read as unknown (arousal column without velocity)."""
    results, pieces = {}, {}
    for name in names:
        req, est, est_nv, all_pieces = [], [], [], []
        per_q, per_q_nv = {}, {}
        empty = 0
        for qi, q in enumerate(QUADRANTS):
            e = Emotion.from_quadrant(q)
            ps = runner.pieces(name, e, bars, per_quadrant, 1000 * qi)
            ests = [_miss(e) if est is None else est for est in map(estimate, ps)]
            empty += sum(1 for p in ps if not p.notes)
            per_q[q] = M.quadrant_agreement([e] * len(ps), ests)["quadrant"]
            if estimate_nv is not None:
                nv = [_miss(e) if x is None else x for x in map(estimate_nv, ps)]
                per_q_nv[q] = M.quadrant_agreement([e] * len(ps), nv)["arousal"]
                est_nv += nv
            req += [e] * len(ps)
            est += ests
            all_pieces += ps
        r = M.quadrant_agreement(req, est)
        r["per_quadrant"] = per_q
        if estimate_nv is not None:
            r["arousal_no_velocity"] = M.quadrant_agreement(req, est_nv)["arousal"]
            r["arousal_no_velocity_per_quadrant"] = per_q_nv
        r["empty_pieces"] = empty
        results[name] = r
        pieces[name] = all_pieces
        log(f"  emotion control {name}: quadrant {r['quadrant']:.3f}")
    return results, pieces


def continuous_control(runner: Runner, names: list[str], values: int, seeds: int, bars: int, estimate) -> dict:
    grid = np.linspace(-1.0, 1.0, values)
    out = {}
    for name in names:
        r = {}
        for axis in ("valence", "arousal"):
            req, est, means, used = [], [], [], []
            for gi, x in enumerate(grid):
                e = Emotion(float(x), 0.0) if axis == "valence" else Emotion(0.0, float(x))
                ps = runner.pieces(name, e, bars, seeds, 50_000 + 100 * gi + (0 if axis == "valence" else 7))
                vals = [getattr(x, axis) for x in map(estimate, ps) if x is not None]  # empty pieces have no estimate
                if not vals:
                    continue
                req += [float(x)] * len(vals)
                est += vals
                means.append(float(np.mean(vals)))
                used.append(float(x))
            r[axis] = {"spearman": M.spearman(req, est), "spearman_of_means": M.spearman(used, means),
                       "estimated_means": [round(m, 3) for m in means]}
        out[name] = r
        log(f"  continuous {name}: valence rho {r['valence']['spearman']:.3f}, arousal rho {r['arousal']['spearman']:.3f}")
    return out


def read_clip_list(emopia: Path, split: str, limit: int | None = None, with_names: bool = False):
    """EMOPIA clips of ``split`` as pieces (and their file names with ``with_names``)."""
    from emomusic.io import read_piece

    listing = emopia / "split" / f"{split}_clip.csv"
    with open(listing, newline="") as fh:
        names = [row["clip_name"] for row in csv.DictReader(fh)]
    if limit:
        names = names[:limit]
    out, kept = [], []
    for nm in names:
        try:
            out.append(read_piece(emopia / "midis" / nm))
            kept.append(nm)
        except EmomusicError:
            continue
    return (out, kept) if with_names else out


def read_midi_folder(folder: Path, limit: int) -> list[Piece]:
    from emomusic.io import read_piece

    files = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in (".mid", ".midi"))[:limit]
    out = []
    for f in files:
        try:
            out.append(read_piece(f))
        except EmomusicError:
            continue
    return out


def quality(pieces: dict[str, list[Piece]], reference: list[Piece], corpus: M.SegmentSet | None, runner: Runner,
            div_names: list[str], div_n: int, bars: int) -> dict:
    out = {}
    ref_summary = _mean_summary(reference)
    out["reference"] = {"descriptors": ref_summary, "n": len(reference)}
    for name, ps in pieces.items():
        r = {"oa": M.oa_report(ps, reference), "descriptors": _mean_summary(ps), "n": len(ps)}
        if corpus is not None:
            r["near_copy"] = M.near_copy_rate(ps, corpus, bars=2)
        if name in div_names:
            divs = [M.diversity(runner.pieces(name, Emotion.from_quadrant(q), bars, div_n, 1000 * qi)[:div_n])
                    for qi, q in enumerate(QUADRANTS)]
            r["diversity"] = float(np.nanmean(divs))
        out[name] = r
    return out


def _mean_summary(pieces: list[Piece]) -> dict:
    rows = [M.summary(p) for p in pieces]
    out = {}
    for k in rows[0] if rows else ():
        vals = [r[k] for r in rows if not math.isnan(r[k])]
        out[k] = float(np.mean(vals)) if vals else math.nan
    return out


def _median_time(fn, reps: int) -> float:
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return float(statistics.median(ts))


def _music_seconds(p: Piece, bars: int) -> float:
    """Length of the requested ``bars`` bars in seconds through the piece's tempo map."""
    return p.beat_to_seconds(max(p.end_beat, bars * p.time_signature.bar_beats))


def speed(runner: Runner, engine: str | None, baseline: str | None, bars: int, reps: int, batch: int,
          baseline_reps: int, cold_start: bool, compose_checkpoint: str | None) -> dict:
    e = Emotion(0.7, 0.6)
    out: dict = {"bars": bars}
    for name, n_reps in ((engine, reps), (baseline, baseline_reps)):
        if not name:
            continue
        gen = runner.systems[name].generate
        gen(e, bars, 1, 12345)  # warm-up: loads the model (excluded) and fills caches
        ps = gen(e, bars, 1, 0)
        music = float(np.mean([_music_seconds(p, bars) for p in ps]))
        seeds = iter(range(1, 10_000))
        single = _median_time(lambda: gen(e, bars, 1, next(seeds)), n_reps)
        r = {"single_s": single, "music_s": music, "rtf_single": music / single}
        if name == engine and batch > 1:
            t = time.perf_counter()
            bp = gen(e, bars, batch, 777)
            bt = time.perf_counter() - t
            bmusic = float(sum(_music_seconds(p, bars) for p in bp))
            r.update(batch=batch, batch_s=bt, pieces_per_s=batch / bt, rtf_batch=bmusic / bt)
        out[name] = r
        log(f"  speed {name}: {single:.3f} s per {bars}-bar piece")
    if engine and baseline and engine in out and baseline in out:
        # equal length in bars: both generate `bars` bars; compare compute time per bar
        out["speedup_vs_baseline"] = out[baseline]["single_s"] / out[engine]["single_s"]
    if cold_start and engine:
        cmd = [sys.executable, "-m", "emomusic", "compose", "--valence", "0.7", "--arousal", "0.6"]
        if compose_checkpoint:
            cmd += ["--checkpoint", compose_checkpoint]
        times = []
        with tempfile.TemporaryDirectory() as d:
            for i in range(3):
                t = time.perf_counter()
                p = subprocess.run(cmd + ["-o", os.path.join(d, f"cold{i}.mid")], capture_output=True, text=True)
                times.append(time.perf_counter() - t)
                if p.returncode != 0:
                    out["cold_start_error"] = (p.stderr or p.stdout).strip().splitlines()[-1:]
                    break
        if "cold_start_error" not in out:
            out["cold_start_s"] = float(statistics.median(times))
            log(f"  cold start: {out['cold_start_s']:.2f} s")
    return out


# -- report ---------------------------------------------------------------------------------------
def _f(x, fmt="{:.3f}") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return fmt.format(x)


def markdown(res: dict) -> str:
    lines = []
    meta = res["meta"]
    lines.append(f"Settings: {meta['per_quadrant']} pieces per quadrant, {meta['bars']} bars, sweep {meta['sweep']} values "
                 f"x {meta['sweep_seeds']} seeds, torch threads {meta['threads']}, {meta['cpu']}; "
                 f"{'QUICK run' if meta['quick'] else 'full run'} ({meta['minutes']:.1f} min).")
    lines.append("")
    if res.get("emotion"):
        lines.append("### Emotion control (estimator agreement with the requested emotion)")
        lines.append("")
        lines.append("| system | quadrant acc. | valence axis | arousal axis | Q1 | Q2 | Q3 | Q4 | n | empty |")
        lines.append("|---|---|---|---|---|---|---|---|---|---|")
        for name, r in res["emotion"].items():
            pq = r["per_quadrant"]
            lines.append(f"| {name} | {_f(r['quadrant'])} | {_f(r['valence'])} | {_f(r['arousal'])} | "
                         + " | ".join(_f(pq[q], "{:.2f}") for q in QUADRANTS) + f" | {r['n']} | {r.get('empty_pieces', 0)} |")
        if res.get("emotion_reference"):
            r = res["emotion_reference"]
            lines.append(f"| EMOPIA val clips (real music, labelled quadrant; the estimator's own accuracy) | {_f(r['quadrant'])} | "
                         f"{_f(r['valence'])} | {_f(r['arousal'])} | | | | | {r['n']} | |")
        if any("arousal_no_velocity" in r for r in res["emotion"].values()):
            lines.append("")
            lines.append("Arousal-axis agreement with velocity read as unknown (the estimator's velocity features at "
                         "their training mean: does the texture alone sound excited or calm?)")
            lines.append("")
            lines.append("| system | arousal axis (no velocity) | Q1 | Q2 | Q3 | Q4 |")
            lines.append("|---|---|---|---|---|---|")
            for name, r in res["emotion"].items():
                if "arousal_no_velocity" in r:
                    pq = r["arousal_no_velocity_per_quadrant"]
                    lines.append(f"| {name} | {_f(r['arousal_no_velocity'])} | " + " | ".join(_f(pq[q], "{:.2f}") for q in QUADRANTS) + " |")
        lines.append("")
    if res.get("continuous"):
        lines.append("### Continuous control (Spearman of requested vs estimated)")
        lines.append("")
        lines.append("| system | valence rho | valence rho (means) | arousal rho | arousal rho (means) |")
        lines.append("|---|---|---|---|---|")
        for name, r in res["continuous"].items():
            lines.append(f"| {name} | {_f(r['valence']['spearman'])} | {_f(r['valence']['spearman_of_means'])} | "
                         f"{_f(r['arousal']['spearman'])} | {_f(r['arousal']['spearman_of_means'])} |")
        lines.append("")
    if res.get("quality"):
        q = res["quality"]
        lines.append("### Quality against EMOPIA val clips (OA: 1 = identical distribution)")
        lines.append("")
        lines.append("| system | OA pitch | OA duration | OA IOI | OA velocity | OA pitch class | OA mean | diversity | near-copy (2-bar) | exact copy |")
        lines.append("|---|---|---|---|---|---|---|---|---|---|")
        for name, r in q.items():
            if name == "reference":
                continue
            oa = r["oa"]
            nc = r.get("near_copy", {})
            lines.append(f"| {name} | " + " | ".join(_f(oa[f]) for f in M.OA_FEATURES) + f" | {_f(oa['mean'])} | "
                         f"{_f(r.get('diversity'))} | {_f(nc.get('near_copy'), '{:.2%}')} | {_f(nc.get('exact_copy'), '{:.2%}')} |")
        if "near_copy_val" in res:
            nc = res["near_copy_val"]
            lines.append(f"| EMOPIA val (real, reference for near-copy) | | | | | | | | {_f(nc['near_copy'], '{:.2%}')} | {_f(nc['exact_copy'], '{:.2%}')} |")
        lines.append("")
        lines.append("| system | pitch-class entropy | scale consistency | groove consistency | empty-beat rate | polyphony | pitch range | notes/beat |")
        lines.append("|---|---|---|---|---|---|---|---|")
        keys = ("pitch_class_entropy", "scale_consistency", "groove_consistency", "empty_beat_rate", "polyphony", "pitch_range", "notes_per_beat")
        for name, r in q.items():
            d = r["descriptors"]
            label = "EMOPIA val (real)" if name == "reference" else name
            lines.append(f"| {label} | " + " | ".join(_f(d.get(k), "{:.2f}") for k in keys) + " |")
        lines.append("")
    if res.get("speed"):
        s = res["speed"]
        lines.append(f"### Speed ({s['bars']} bars, model load excluded, torch threads {meta['threads']})")
        lines.append("")
        lines.append("| system | one piece (median) | music per piece | real-time factor | batch | batch time | pieces/s | RTF at batch |")
        lines.append("|---|---|---|---|---|---|---|---|")
        for name, r in s.items():
            if not isinstance(r, dict) or "single_s" not in r:
                continue
            lines.append(f"| {name} | {_f(r['single_s'], '{:.3f} s')} | {_f(r['music_s'], '{:.1f} s')} | {_f(r['rtf_single'], '{:.0f}x')} | "
                         f"{r.get('batch', '')} | {_f(r.get('batch_s'), '{:.2f} s')} | {_f(r.get('pieces_per_s'), '{:.1f}')} | {_f(r.get('rtf_batch'), '{:.0f}x')} |")
        lines.append("")
        if "speedup_vs_baseline" in s:
            lines.append(f"Speed-up against the autoregressive baseline at equal length: **{s['speedup_vs_baseline']:.1f}x**.")
        if "cold_start_s" in s:
            lines.append(f"`emomusic compose --valence 0.7 --arousal 0.6 -o x.mid` from a cold start (fresh process, median of 3): **{s['cold_start_s']:.2f} s**.")
        if "cold_start_error" in s:
            lines.append(f"`emomusic compose` cold start failed: {s['cold_start_error']}")
        lines.append("")
    for name, err in res.get("skipped", {}).items():
        lines.append(f"- {name} not measured: {err}")
    return "\n".join(lines).rstrip() + "\n"


# -- main -----------------------------------------------------------------------------------------
def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--emopia", type=Path, default=None, help="EMOPIA folder (default: $EMOMUSIC_DATA/emopia)")
    ap.add_argument("--per-quadrant", type=int, default=50)
    ap.add_argument("--bars", type=int, default=16)
    ap.add_argument("--sweep", type=int, default=9, help="values from -1 to 1 per axis")
    ap.add_argument("--sweep-seeds", type=int, default=5)
    ap.add_argument("--diversity-n", type=int, default=10, help="pieces per quadrant compared pairwise")
    ap.add_argument("--speed-reps", type=int, default=20)
    ap.add_argument("--speed-bars", type=int, default=16)
    ap.add_argument("--baseline-reps", type=int, default=5)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=4, help="denoising steps of the diffusion-GAN")
    ap.add_argument("--guidance", type=float, default=None, help="classifier-free guidance (default: the engine's)")
    ap.add_argument("--baseline-guidance", type=float, default=1.0)
    ap.add_argument("--form", default=None, help="musical form of the diffusion-GAN's pieces (default: compose's, by length; "
                                                 "'none': through-composed)")
    ap.add_argument("--compose-checkpoint", default=None)
    ap.add_argument("--baseline-checkpoint", default=None)
    ap.add_argument("--estimator", default=None, help="estimator folder (default: emomusic/checkpoints/estimator)")
    ap.add_argument("--systems", default="diffgan,diffgan-no-template,diffgan-no-texture,baseline,baseline-no-template,random-latent,random-latent-no-template")
    ap.add_argument("--sections", default="emotion,continuous,quality,speed")
    ap.add_argument("--reference-limit", type=int, default=None, help="use only the first N val clips")
    ap.add_argument("--corpus-limit", type=int, default=None, help="use only the first N train clips for near-copy")
    ap.add_argument("--corpus-midi", type=Path, action="append", default=[],
                    help="extra training corpus folder (MIDI files, searched recursively) for the near-copy check; repeatable")
    ap.add_argument("--corpus-midi-limit", type=int, default=1000, help="at most this many files per --corpus-midi folder")
    ap.add_argument("--piece-cache", type=Path, default=None,
                    help="keep generated raw pieces here (JSON) and reuse them in later runs with the same weights")
    ap.add_argument("--no-cold-start", action="store_true")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--quick", action="store_true", help="a few pieces per cell (a smoke run, not the benchmark)")
    ap.add_argument("--json", type=Path, default=None, help="write all results as JSON here")
    ap.add_argument("--markdown", type=Path, default=None, help="also write the tables to this file")
    args = ap.parse_args(argv)
    if args.quick:
        args.per_quadrant = min(args.per_quadrant, 4)
        args.bars = min(args.bars, 8)
        args.sweep = min(args.sweep, 5)
        args.sweep_seeds = min(args.sweep_seeds, 2)
        args.diversity_n = min(args.diversity_n, 4)
        args.speed_reps = min(args.speed_reps, 3)
        args.baseline_reps = min(args.baseline_reps, 1)
        args.batch = min(args.batch, 8)
        args.reference_limit = args.reference_limit or 24
        args.corpus_limit = args.corpus_limit or 60
    return args


def run(argv=None) -> dict:
    args = parse_args(argv)
    t_start = time.time()
    try:
        import torch

        torch.set_num_threads(args.threads)
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    from emomusic.paths import data_dir

    emopia = args.emopia or data_dir() / "emopia"
    sections = {s.strip() for s in args.sections.split(",") if s.strip()}
    wanted = [s.strip() for s in args.systems.split(",") if s.strip()]
    systems: list[System] = []
    skipped: dict[str, str] = {}
    builders = {
        "diffgan": lambda: diffgan_systems(args.compose_checkpoint, args.steps, args.guidance, args.form),
        "baseline": lambda: baseline_systems(args.baseline_checkpoint, args.baseline_guidance),
        "random-latent": lambda: random_latent_systems(args.compose_checkpoint),
    }
    for family, build in builders.items():
        members = [w for w in wanted if w == family or w in (f"{family}-no-template", f"{family}-no-texture")]
        if not members:
            continue
        try:
            built = {s.name: s for s in build()}
        except (EmomusicError, ImportError, AttributeError) as exc:
            for m in members:
                skipped[m] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            continue
        for m in members:  # a template variant needs its raw system in the runner
            s = built[m]
            if s.raw_of and s.raw_of not in [x.name for x in systems]:
                systems.append(built[s.raw_of])
            if m not in [x.name for x in systems]:
                systems.append(s)
    names = [w for w in wanted if w not in skipped]
    for n, e in skipped.items():
        log(f"skipping {n}: {e}")
    if not names:
        raise EmomusicError("no system could be loaded: " + "; ".join(f"{k}: {v}" for k, v in skipped.items()))
    runner = Runner(systems, args.piece_cache)

    from emomusic.estimator import estimate_emotion, load_estimator

    est_model = load_estimator(args.estimator)

    def estimate(p: Piece) -> Emotion | None:
        return estimate_emotion(p, est_model) if p.notes else None

    from emomusic.estimator import VELOCITY_FEATURES

    def estimate_nv(p: Piece) -> Emotion | None:
        return estimate_emotion(p, est_model, neutral=VELOCITY_FEATURES) if p.notes else None

    import platform

    res: dict = {"meta": {
        "per_quadrant": args.per_quadrant, "bars": args.bars, "sweep": args.sweep, "sweep_seeds": args.sweep_seeds,
        "threads": args.threads, "quick": args.quick, "steps": args.steps, "guidance": args.guidance,
        "form": args.form or "default",
        "cpu": f"{os.cpu_count()} CPU cores ({platform.machine()})", "systems": {s.name: s.description for s in systems},
        "command": "python benchmarks/compose.py " + " ".join(argv if argv is not None else sys.argv[1:]),
    }, "skipped": skipped}
    pieces: dict[str, list[Piece]] = {}
    if "emotion" in sections or "quality" in sections:
        log("emotion control ...")
        res["emotion"], pieces = emotion_control(runner, names, args.per_quadrant, args.bars, estimate, estimate_nv)
    if "continuous" in sections:
        log("continuous control ...")
        res["continuous"] = continuous_control(runner, names, args.sweep, args.sweep_seeds, args.bars, estimate)
    if "quality" in sections:
        log("quality ...")
        if not (emopia / "split" / "val_clip.csv").is_file():
            raise EmomusicError(f"EMOPIA not found at {emopia} (give --emopia)")
        reference, ref_names = read_clip_list(emopia, "val", args.reference_limit, with_names=True)
        labels = [Emotion.from_quadrant(nm[:2]) for nm in ref_names]
        res["emotion_reference"] = M.quadrant_agreement(labels, [estimate(p) or _miss(e) for p, e in zip(reference, labels)])
        corpus_pieces = read_clip_list(emopia, "train", args.corpus_limit)
        for folder in args.corpus_midi:
            corpus_pieces += read_midi_folder(folder, args.corpus_midi_limit)
        corpus = M.segment_set(corpus_pieces, bars=2, hop_bars=1)
        res["quality"] = quality(pieces, reference, corpus, runner, names, args.diversity_n, args.bars)
        res["near_copy_val"] = M.near_copy_rate(reference, corpus, bars=2)
        res["meta"]["reference_clips"] = len(reference)
        res["meta"]["corpus_clips"] = len(corpus_pieces)
    if "speed" in sections:
        log("speed ...")
        engine = "diffgan" if "diffgan" in runner.systems else None
        base = "baseline-no-template" if "baseline-no-template" in runner.systems else None
        res["speed"] = speed(runner, engine, base, args.speed_bars, args.speed_reps, args.batch, args.baseline_reps,
                             not args.no_cold_start, args.compose_checkpoint)
    res["meta"]["minutes"] = (time.time() - t_start) / 60
    res["generation_seconds"] = runner.seconds
    text = markdown(res)
    print(text)
    if args.json:
        from emomusic.atomic import write_text_atomic

        write_text_atomic(args.json, json.dumps(res, indent=2, default=lambda o: o.item() if hasattr(o, "item") else str(o)))
    if args.markdown:
        from emomusic.atomic import write_text_atomic

        write_text_atomic(args.markdown, text)
    return res


def main(argv=None) -> int:
    try:
        run(argv)
    except EmomusicError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
