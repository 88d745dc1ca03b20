"""Benchmark the session builder: trajectory adherence, smoothness, speed and memory.

Builds sessions end to end (plan -> clips -> closed loop -> render -> files) into a
temporary folder and prints a Markdown table:

* adherence: mean and max valence-arousal distance between each clip's waypoint and its
  measured emotion; Pearson correlation between clip index and measured valence/arousal
  (next to the same correlation for the planned waypoints);
* smoothness: largest tempo step and loudness step between consecutive clips (plan, and
  the played tempi after the phrase fit), the largest step of the clips' measured
  loudness, and the largest and median level jump at a join in short-term LUFS (3 s before
  vs 3 s after each join in session.wav, and before the level bridge from session.json);
* phrasing: clips in whole phrases, where the final cadence falls before the join;
* level: the stated level, session.wav's integrated loudness, offset and true peak;
* speed: wall-clock and CPU seconds (the process, all threads) end to end, the load average,
  times faster than real time, where the time goes: CPU and wall seconds per stage (generate /
  estimate / render / write / limit / clip files / session.wav / files; CPU per thread, so it is
  honest on a shared machine), peak memory (RSS).

Examples::

    python benchmarks/session.py                                  # 15 min anxious -> calm, symbolic
    python benchmarks/session.py --backend rules --presets all     # every preset, model-free engine
    python benchmarks/session.py --backend melody --minutes 5 --json
"""

from __future__ import annotations

import argparse
import json
import math
import os
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
    """|level(window after) - level(window before)| at each join of session.wav, in LU:
    short-term loudness (BS.1770 K-weighted, ungated, the 3 s windows either side)."""
    import soundfile as sf

    from emomusic.audio import window_lufs

    out = []
    with sf.SoundFile(str(wav)) as f:
        sr = f.samplerate
        for t in starts[1:]:
            i = int(round(t * sr))
            n = int(window * sr)
            f.seek(max(0, i - n))
            a = f.read(n, dtype="float32", always_2d=True)
            b = f.read(n, dtype="float32", always_2d=True)
            la, lb = window_lufs(a, sr), window_lufs(b, sr)
            if math.isfinite(la) and math.isfinite(lb):
                out.append(abs(lb - la))
    return out


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def run_one(args, start, target, options, label: str) -> dict:
    from emomusic.session import BuildSettings, build_session, plan_session

    plan = plan_session(start, target, options)
    settings = BuildSettings(backend=args.backend, model=args.model, adapter=args.adapter, soundfont=args.soundfont,
                             sample_rate=args.sample_rate, max_retries=args.max_retries, tolerance=args.tolerance,
                             loudness=args.loudness, reverb=args.reverb)
    with tempfile.TemporaryDirectory(prefix="emomusic-session-bench-", dir=args.tmp) as tmp:
        out = Path(tmp) / "session"
        load0 = os.getloadavg()[0]
        t0, c0 = time.perf_counter(), cpu_seconds()
        summary = build_session(plan, out, settings)
        wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
        load = max(load0, os.getloadavg()[0])
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # before the measurements below
        starts = [c.start_s for c in plan.clips]
        jumps = join_jumps(out / "session.wav", starts, args.join_window)
        from emomusic.audio import integrated_lufs, read_wav

        audio, sr = read_wav(out / "session.wav")
        session_lufs = integrated_lufs(audio, sr)
        del audio
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
    phr = [c.get("phrasing") for c in clips]
    phrased = [p for p in phr if p]
    leads = [p["join_s"] - p["cadence_s"] for p in phrased]
    played = [p["tempo"] for p in phrased]
    joins = summary.get("joins", [])
    built = [abs(j["opening_lufs"] - j["closing_lufs"]) for j in joins
             if j["opening_lufs"] is not None and j["closing_lufs"] is not None]
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
        "max_join_jump_unbridged_db": max(built, default=0.0),
        "median_join_jump_unbridged_db": float(np.median(built)) if built else 0.0,
        "loudness_target_lufs": summary["loudness"]["target_lufs"],
        "session_lufs": session_lufs,
        "session_offset_db": summary["session_level_offset_db"],
        "session_true_peak_dbtp": summary.get("session_true_peak_dbtp"),
        "phrased_clips": len(phrased),
        "form_followed": sum(1 for p in phrased if p.get("form_followed")),
        "cadence_in_window": sum(1 for x in leads if 0.1 - 1e-3 <= x <= 2.0 + 1e-3),
        "max_cadence_lead_s": max(leads, default=None),
        "median_cadence_lead_s": float(np.median(leads)) if leads else None,
        "max_played_tempo_step_pct": 100 * max((abs(b / a - 1) for a, b in zip(played, played[1:])), default=0.0),
        "max_tempo_nudge_pct": 100 * max((abs(p["tempo_nudge"] - 1) for p in phrased), default=0.0),
        "wall_s": wall,
        "cpu_s": cpu,
        "load_average": load,
        "realtime_factor": plan.total_seconds / wall,
        "timings_s": summary["timings_s"],
        "peak_rss_mb": rss,
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


# per-stage timers of session.json's timings_s (emomusic.session.timing): CPU seconds of the
# threads that did the work, and their wall seconds (summed over worker threads)
STAGES = [
    ("generate", "stage 1, main thread"),
    ("estimate", "stage 1, main thread"),
    ("render", "stage 1, render workers"),
    ("write", "stage 1, render workers"),
    ("clips_total", "stage 1 wall; CPU of the main thread"),
    ("limit", "stage 2, assemble workers"),
    ("clip_wav", "stage 2, assemble workers"),
    ("session_wav", "stage 2 wall; CPU of the main thread"),
    ("files", "stage 2, main thread; session.mid and the plot on a helper thread"),
]


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
        ("largest tempo step (played, phrase-fitted, %)", "max_played_tempo_step_pct", 1),
        ("largest tempo nudge (%)", "max_tempo_nudge_pct", 1),
        ("clips in whole phrases (form followed)", "form_followed", None),
        ("final cadence 0.1-2 s before the join (clips)", "cadence_in_window", None),
        ("final cadence before the join, median / max (s)", "median_cadence_lead_s", 2),
        ("  max", "max_cadence_lead_s", 2),
        ("largest loudness step (plan, dB)", "max_plan_loudness_step_db", 2),
        ("largest loudness step (clips measured, dB)", "max_clip_loudness_step_db", 2),
        ("largest level jump at a join (short-term LUFS, 3 s each side, LU)", "max_join_jump_db", 2),
        ("median level jump at a join (LU)", "median_join_jump_db", 2),
        ("  same before the level bridge (session.json joins), largest", "max_join_jump_unbridged_db", 2),
        ("  median", "median_join_jump_unbridged_db", 2),
        ("stated level (LUFS at neutral arousal)", "loudness_target_lufs", 1),
        ("session.wav integrated loudness (LUFS)", "session_lufs", 1),
        ("session level offset (dB, for the -1 dBTP ceiling)", "session_offset_db", 2),
        ("session.wav true peak (dBTP)", "session_true_peak_dbtp", 2),
        ("end to end (s)", "wall_s", 1),
        ("CPU (s, this process, all threads)", "cpu_s", 1),
        ("load average (1 min, the larger of start and end)", "load_average", 1),
        ("x real time", "realtime_factor", 1),
        ("peak memory RSS (MB)", "peak_rss_mb", 0),
    ]
    print("| metric | " + " | ".join(r["label"] for r in rows) + " |")
    print("|---|" + "---|" * len(rows))
    for name, key, nd in metrics:
        print(f"| {name} | " + " | ".join(fmt(r[key], nd) if nd is not None else fmt(r[key]) for r in rows) + " |")
    for k, where in STAGES:
        print(f"| {k}: CPU / wall (s; {where}) | "
              + " | ".join(f"{fmt(r['timings_s'].get(k + '_cpu'), 2)} / {fmt(r['timings_s'].get(k), 2)}" for r in rows)
              + " |")
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
    ap.add_argument("--loudness", default=b.loudness, help="stated level, LUFS or 'off'")
    ap.add_argument("--reverb", type=float, default=b.reverb)
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
