"""Benchmark the session builder: trajectory adherence, smoothness, speed and memory.

Builds sessions end to end (plan -> clips -> closed loop -> render -> files) into a
temporary folder and prints a Markdown table:

* adherence: mean and max valence-arousal distance between each clip's waypoint and its
  measured emotion; Pearson correlation between clip index and measured valence/arousal
  (next to the same correlation for the planned waypoints);
* smoothness: largest tempo step and loudness step between consecutive clips (plan), the
  largest step of the clips' measured loudness, and the largest and median RMS level jump
  at a join (3 s before vs 3 s after each join in session.wav; a rest at a clip end shows
  up here);
* speed: wall-clock seconds end to end, times faster than real time, where the time goes
  (generate / estimate / render / write / session.wav / files), peak memory (RSS).

Examples::

    python benchmarks/session.py                                  # 15 min anxious -> calm, symbolic
    python benchmarks/session.py --backend rules --presets all     # every preset, model-free engine
    python benchmarks/session.py --backend melody --minutes 5 --json
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def pearson(x, y) -> float | None:
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 3 or x.std() == 0 or y.std() == 0:
        return None
    return float(np.corrcoef(x, y)[0, 1])


def join_jumps(wav: Path, starts: list[float], window: float = 3.0) -> list[float]:
    """|level(window after) - level(window before)| in dB (RMS) at each join."""
    import soundfile as sf

    from emomusic.audio import rms_db

    out = []
    with sf.SoundFile(str(wav)) as f:
        sr = f.samplerate
        for t in starts[1:]:
            i = int(round(t * sr))
            n = int(window * sr)
            f.seek(max(0, i - n))
            a = f.read(n, dtype="float32", always_2d=True)
            b = f.read(n, dtype="float32", always_2d=True)
            la, lb = rms_db(a), rms_db(b)
            if math.isfinite(la) and math.isfinite(lb):
                out.append(abs(lb - la))
    return out


def run_one(args, start, target, options, label: str) -> dict:
    from emomusic.session import BuildSettings, build_session, plan_session

    plan = plan_session(start, target, options)
    settings = BuildSettings(backend=args.backend, model=args.model, adapter=args.adapter, soundfont=args.soundfont,
                             sample_rate=args.sample_rate, max_retries=args.max_retries, tolerance=args.tolerance)
    with tempfile.TemporaryDirectory(prefix="emomusic-session-bench-", dir=args.tmp) as tmp:
        out = Path(tmp) / "session"
        t0 = time.perf_counter()
        summary = build_session(plan, out, settings)
        wall = time.perf_counter() - t0
        starts = [c.start_s for c in plan.clips]
        jumps = join_jumps(out / "session.wav", starts, args.join_window)
        if args.keep:
            import shutil

            dest = Path(args.keep) / label
            if dest.exists():
                shutil.rmtree(dest)
            shutil.copytree(out, dest)
    clips = summary["clips"]
    measured = [c["measured"] for c in clips]
    idx = [c["index"] for c in clips if c["measured"]]
    mv = [m["valence"] for m in measured if m]
    ma = [m["arousal"] for m in measured if m]
    dists = [c["distance"] for c in clips if c["distance"] is not None]
    loud = [c["loudness_db"] for c in clips]
    return {
        "label": label,
        "backend": summary["backend"],
        "estimator": summary["estimator"],
        "minutes": plan.minutes,
        "clips": len(clips),
        "mean_distance": float(np.mean(dists)) if dists else None,
        "max_distance": float(np.max(dists)) if dists else None,
        "within_tolerance": summary["adherence"]["within_tolerance"],
        "quadrant_match": summary["adherence"]["quadrant_match"],
        "retries": sum(c["retries"] for c in clips),
        "corr_index_valence": pearson(idx, mv),
        "corr_index_arousal": pearson(idx, ma),
        "planned_corr_valence": pearson([c.index for c in plan.clips], [c.emotion.valence for c in plan.clips]),
        "planned_corr_arousal": pearson([c.index for c in plan.clips], [c.emotion.arousal for c in plan.clips]),
        "max_tempo_step_pct": 100 * max(plan.tempo_steps() or [0.0]),
        "max_plan_loudness_step_db": max(plan.loudness_steps() or [0.0]),
        "max_clip_loudness_step_db": max((abs(b - a) for a, b in zip(loud, loud[1:])), default=0.0),
        "max_join_jump_db": max(jumps, default=0.0),
        "median_join_jump_db": float(np.median(jumps)) if jumps else 0.0,
        "wall_s": wall,
        "realtime_factor": plan.total_seconds / wall,
        "timings_s": summary["timings_s"],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }


def _run(args, run) -> dict:
    start, target, opts, label = run
    print(f"building {label} ...", file=sys.stderr)
    return run_one(args, start, target, opts, label)


def fmt(x, nd=2) -> str:
    if x is None:
        return "n/a"
    if isinstance(x, float):
        return f"{x:.{nd}f}"
    return str(x)


def print_table(rows: list[dict]) -> None:
    metrics = [
        ("backend", "backend", None),
        ("clips", "clips", None),
        ("mean planned-measured distance", "mean_distance", 3),
        ("max planned-measured distance", "max_distance", 3),
        ("clips within tolerance", "within_tolerance", None),
        ("clips in the planned quadrant", "quadrant_match", None),
        ("retries (total)", "retries", None),
        ("corr(clip index, measured valence)", "corr_index_valence", 2),
        ("  same for the plan", "planned_corr_valence", 2),
        ("corr(clip index, measured arousal)", "corr_index_arousal", 2),
        ("  same for the plan", "planned_corr_arousal", 2),
        ("largest tempo step (plan, %)", "max_tempo_step_pct", 1),
        ("largest loudness step (plan, dB)", "max_plan_loudness_step_db", 2),
        ("largest loudness step (clips measured, dB)", "max_clip_loudness_step_db", 2),
        ("largest level jump at a join (RMS, window each side, dB)", "max_join_jump_db", 2),
        ("median level jump at a join (dB)", "median_join_jump_db", 2),
        ("end to end (s)", "wall_s", 1),
        ("x real time", "realtime_factor", 1),
        ("peak memory RSS (MB)", "peak_rss_mb", 0),
    ]
    print("| metric | " + " | ".join(r["label"] for r in rows) + " |")
    print("|---|" + "---|" * len(rows))
    for name, key, nd in metrics:
        print(f"| {name} | " + " | ".join(fmt(r[key], nd) if nd is not None else fmt(r[key]) for r in rows) + " |")
    keys = ["generate", "estimate", "render", "write", "session_wav", "files"]
    for k in keys:
        print(f"| time: {k} (s) | " + " | ".join(fmt(r["timings_s"].get(k), 2) for r in rows) + " |")
    print()
    print(f"estimator: {rows[0]['estimator']}")


def main(argv=None) -> int:
    from emomusic.session import BuildSettings, PlanSettings

    b, p = BuildSettings(), PlanSettings()
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backend", default=b.backend, choices=BuildSettings.backends)
    ap.add_argument("--model", default=None)
    ap.add_argument("--adapter", default=None)
    ap.add_argument("--soundfont", default=None)
    ap.add_argument("--from", dest="start", default="anxious")
    ap.add_argument("--to", dest="target", default="calm")
    ap.add_argument("--minutes", type=float, default=p.minutes)
    ap.add_argument("--clip-seconds", type=float, default=p.clip_seconds)
    ap.add_argument("--presets", default=None, help="comma-separated preset names, or 'all'")
    ap.add_argument("--sample-rate", type=int, default=b.sample_rate)
    ap.add_argument("--max-retries", type=int, default=b.max_retries)
    ap.add_argument("--tolerance", type=float, default=b.tolerance)
    ap.add_argument("--join-window", type=float, default=3.0, help="seconds each side of a join for the level jump")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (shared machine: 1)")
    ap.add_argument("--tmp", default=None, help="folder for the temporary session (default: system temp)")
    ap.add_argument("--keep", default=None, help="copy each built session folder here")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    runs = []
    if args.presets:
        from emomusic.session import load_preset, preset_names

        names = preset_names() if args.presets == "all" else args.presets.split(",")
        for name in names:
            start, target, settings = load_preset(name)
            # the journey and its length as in the preset; the plan's own defaults otherwise
            opts = PlanSettings(**{k: getattr(settings, k) for k in ("minutes", "clip_seconds", "match_minutes",
                                                                      "settle_minutes", "path", "strategy",
                                                                      "heart_rate", "via")})
            runs.append((start, target, opts, name))
    else:
        runs.append((args.start, args.target, PlanSettings(minutes=args.minutes, clip_seconds=args.clip_seconds),
                     f"{args.start}->{args.target} {args.minutes:g} min"))
    from emomusic.session.runtime import torch_threads

    with torch_threads(args.threads, args.backend):  # the caller sets torch's threads, not the library
        rows = [_run(args, run) for run in runs]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
