"""Benchmark of the melody path: parse rate, template fidelity, quadrant accuracy, novelty, speed.

    python benchmarks/melody.py              # 1,000 tunes of 16 bars over the 4 quadrants
    python benchmarks/melody.py --quick      # 40 tunes of 8 bars (a minute or two)

Emotions: 25 points per quadrant drawn uniformly inside it (|v|, |a| in [0.2, 1]), several
tunes each; half of the calls ask for chord symbols. Every tune returned by
``generate_melodies`` is parsed again here, independently, by music21 and abc2midi.
Prints a Markdown table (``--json`` for JSON).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def phrase_keys(canon, bars: int = 4) -> list[tuple]:
    """Transposition-invariant keys of every ``bars``-bar window: (duration, interval to the
    window's first pitch | rest) per event."""
    out = []
    evs_per_bar = [[(d, p) for _, d, p in bar] for bar in canon.bars]
    for s in range(0, len(evs_per_bar) - bars + 1):
        evs = [e for b in evs_per_bar[s:s + bars] for e in b]
        ref = next((p for _, p in evs if p is not None), None)
        if ref is None:
            continue
        out.append(tuple((d, "r" if p is None else p - ref) for d, p in evs))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1000, help="tunes in all (default 1000)")
    ap.add_argument("--bars", type=int, default=16)
    ap.add_argument("--quick", action="store_true", help="40 tunes of 8 bars")
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--corpus", nargs="*", default=None,
                    help="ABC corpus for novelty (default: Nottingham + music21 collections)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--form", default=None, help="form for every tune (default: by length, AA'BB' or AA'BA' (by seed) for 16 bars; 'none')")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.n, args.bars = 40, 8

    import torch

    torch.set_num_threads(args.threads)
    from emomusic.attributes import measure, template
    from emomusic.emotion import Emotion
    from emomusic.melody.api import load_melody_model
    from emomusic.melody import generate_melodies
    from emomusic.melody.corpus import build_corpus, to_bin
    from emomusic.melody.validate import check_abc2midi, check_music21
    from emomusic.paths import data_dir

    model, tok, cfg = load_melody_model(args.checkpoint)
    stats = cfg.get("stats", {})
    rng = random.Random(args.seed)
    points_per_q = 25 if args.n >= 100 else max(1, args.n // 4)
    per_point = max(1, args.n // (4 * points_per_q))
    jobs = []
    for qi, (sv, sa) in enumerate(((1, 1), (-1, 1), (-1, -1), (1, -1))):
        for j in range(points_per_q):
            emo = Emotion(sv * rng.uniform(0.2, 1.0), sa * rng.uniform(0.2, 1.0))
            jobs.append((emo, per_point, (qi * points_per_q + j) % 2 == 1))
    # warm-up (imports, parser caches) outside the timing
    generate_melodies(Emotion(0.5, 0.5), bars=2, checkpoint=args.checkpoint)

    tunes, resampled, gen_seconds = [], 0, 0.0
    from tqdm import tqdm

    for k, (emo, n, chords) in enumerate(tqdm(jobs, desc="generating", unit="call", file=sys.stderr)):
        t0 = time.perf_counter()
        out = generate_melodies(emo, bars=args.bars, n=n, seed=args.seed * 10_000 + k, chords=chords,
                                checkpoint=args.checkpoint, form=args.form)
        gen_seconds += time.perf_counter() - t0
        resampled += out[0].attributes.get("resampled", 0)
        tunes.extend((emo, t) for t in out)

    # speed of one warm tune (median of 20 calls) and of a batch of 32, without the parser checks
    single = []
    for k in range(20):
        t0 = time.perf_counter()
        generate_melodies(Emotion(0.6, 0.5), bars=16, seed=k, checkpoint=args.checkpoint, form=args.form)
        single.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    generate_melodies(Emotion(-0.6, -0.5), bars=16, n=32, seed=1, checkpoint=args.checkpoint, form=args.form)
    batch = (time.perf_counter() - t0) / 32

    # phrases that close on their cadence: the last note of each planned cadence bar
    cad_ok = cad_n = 0
    for _, t in tunes:
        plan = t.attributes.get("form") or {}
        sections = plan.get("sections", [])
        for i, sec in enumerate(sections):
            if sec.get("cadence") not in ("half", "authentic"):
                continue
            last = [p for _, _, p in t.canon.bars[sec["start_bar"] + sec["bars"] - 1] if p is not None]
            if not last:
                continue
            rel = (last[-1] - t.canon.key.tonic) % 12
            cad_n += 1
            cad_ok += rel == 0 if sec["cadence"] == "authentic" else rel in (7, 11, 10, 2)

    # independent parse check
    m21_ok = a2m_ok = 0
    for emo, t in tqdm(tunes, desc="re-parsing", unit="tune", file=sys.stderr):
        bars = len(t.canon.bars)
        m21_ok += check_music21(t.abc, n_bars=bars, n_notes=len(t.canon.pitches()),
                                quarters=bars * t.canon.bar_units / 4, expand=True) is None
        a2m_ok += check_abc2midi(t.abc) is None
    total = len(tunes)

    # template fidelity
    mode_ok = tempo_ok = reg_ok = dens_ok = spread_ok = dens_bin_ok = spread_bin_ok = 0
    mode_by_chords = {False: [], True: []}  # the same mode check, split by --chords
    dens_err, spread_err = [], []
    for emo, t in tunes:
        tpl = template(emo)
        mel = t.piece
        meas = measure(mel)
        melody_only = type(mel)(tracks=[mel.tracks[0]], tempos=mel.tempos, keys=mel.keys,
                                time_signatures=mel.time_signatures)
        mm = measure(melody_only)
        mode_ok += meas.mode == tpl.mode
        mode_by_chords[bool(t.attributes.get("chords"))].append(meas.mode == tpl.mode)
        tempo_ok += abs(mel.tempo - tpl.tempo_bpm) <= 1.0
        reg_ok += abs(mm.register - tpl.register) <= 6.0
        dens_err.append(abs(mm.note_density - tpl.note_density))
        dens_ok += dens_err[-1] <= 0.5
        spread_err.append(abs(mm.pitch_spread - tpl.pitch_spread))
        spread_ok += spread_err[-1] <= 1.5
        c = t.attributes["controls"]
        f_den = len(t.canon.pitches()) / (len(t.canon.bars) * t.canon.bar_units / 4)
        f_sd = statistics.pstdev(t.canon.pitches())
        if stats:
            dens_bin_ok += to_bin(f_den, stats["density_edges"]) == c["density"]
            spread_bin_ok += to_bin(f_sd, stats["sd_edges"]) == c["spread"]

    # quadrant accuracy with the project's estimator
    try:
        from emomusic.estimator import estimate_emotion

        est = [estimate_emotion(t.piece) for _, t in tunes]
        q_acc = sum(e.quadrant == emo.quadrant for e, (emo, _) in zip(est, tunes)) / total
        v_acc = sum((e.valence >= 0) == (emo.valence >= 0) for e, (emo, _) in zip(est, tunes)) / total
        a_acc = sum((e.arousal >= 0) == (emo.arousal >= 0) for e, (emo, _) in zip(est, tunes)) / total
        per_q = {}
        for q in ("Q1", "Q2", "Q3", "Q4"):
            idx = [i for i, (emo, _) in enumerate(tunes) if emo.quadrant == q]
            per_q[q] = sum(est[i].quadrant == q for i in idx) / max(1, len(idx))
        # the same accuracy split by --chords (melody alone vs melody + chord track)
        per_q_chords = {}
        for ch in (False, True):
            row = {}
            for q in ("all", "Q1", "Q2", "Q3", "Q4"):
                idx = [i for i, (emo, t) in enumerate(tunes) if bool(t.attributes.get("chords")) == ch
                       and (q == "all" or emo.quadrant == q)]
                row[q] = sum(est[i].quadrant == tunes[i][0].quadrant for i in idx) / max(1, len(idx))
            per_q_chords[ch] = row
    except Exception as exc:  # estimator checkpoint missing
        q_acc = v_acc = a_acc = None
        per_q = {"error": f"{type(exc).__name__}: {exc}"}
        per_q_chords = {}

    # novelty against the corpus
    corpus_paths = args.corpus if args.corpus is not None else [str(data_dir() / "nottingham" / "ABC_cleaned"), "music21"]
    try:
        corpus = build_corpus(corpus_paths)
        ref = {k for c in corpus for k in phrase_keys(c)}
        gen = [k for _, t in tunes for k in phrase_keys(t.canon)]
        copied = sum(k in ref for k in gen) / max(1, len(gen))
    except Exception as exc:
        copied, ref = None, set()
        print(f"novelty skipped: {exc}", file=sys.stderr)

    rows = [
        ("tunes generated (bars each)", f"{total} ({args.bars})"),
        ("music21 parse rate", f"{m21_ok / total:.1%}"),
        ("abc2midi parse rate", f"{a2m_ok / total:.1%}"),
        ("first-try failures resampled", f"{resampled}"),
        ("mode as requested (Krumhansl key finding on the piece)", f"{mode_ok / total:.1%}"),
        ("  without / with --chords", " / ".join(f"{sum(v) / len(v):.1%}" if v else "n/a" for v in mode_by_chords.values())),
        ("tempo = template tempo (+-1 BPM)", f"{tempo_ok / total:.1%}"),
        ("register within 6 semitones of template", f"{reg_ok / total:.1%}"),
        ("density within 0.5 notes/beat of template", f"{dens_ok / total:.1%} (mean error {statistics.fmean(dens_err):.2f})"),
        ("pitch spread within 1.5 semitones of template", f"{spread_ok / total:.1%} (mean error {statistics.fmean(spread_err):.2f})"),
        ("density bin = conditioned bin", f"{dens_bin_ok / total:.1%}" if stats else "n/a"),
        ("spread bin = conditioned bin", f"{spread_bin_ok / total:.1%}" if stats else "n/a"),
        ("quadrant accuracy (emomusic.estimator)", "n/a" if q_acc is None else f"{q_acc:.1%}"),
        ("  valence sign / arousal sign", "n/a" if q_acc is None else f"{v_acc:.1%} / {a_acc:.1%}"),
        ("  per quadrant", ", ".join(f"{k} {v:.0%}" if isinstance(v, float) else str(v) for k, v in per_q.items())),
        *[(f"  {'with' if ch else 'without'} --chords: all; per quadrant",
           f"{row['all']:.1%}; " + ", ".join(f"{q} {row[q]:.0%}" for q in ("Q1", "Q2", "Q3", "Q4")))
          for ch, row in per_q_chords.items()],
        ("4-bar phrases copied from corpus", "n/a" if copied is None else f"{copied:.2%} (of {len(gen)} vs {len(ref)})"),
        ("form", f"{args.form or 'default by length'} "
                 f"({', '.join(f'{k} {v}' for k, v in sorted(Counter(t.attributes['form']['form'] for _, t in tunes).items()))}"
                 f" of {len(tunes)} tunes of {args.bars} bars)"),
        ("phrase ends on the planned cadence tone", f"{cad_ok / cad_n:.1%} of {cad_n}" if cad_n else "n/a"),
        ("tunes / second (grammar check, model load excluded)", f"{total / gen_seconds:.2f}"),
        ("one 16-bar tune, warm (median of 20)", f"{statistics.median(single) * 1000:.0f} ms"),
        ("batch of 32 tunes of 16 bars, per tune", f"{batch * 1000:.0f} ms"),
    ]
    if args.json:
        print(json.dumps({k: v for k, v in rows}, indent=2))
        return
    print(f"| metric ({args.threads} torch thread(s), checkpoint {args.checkpoint or 'emomusic/checkpoints/melody'}) | value |")
    print("|---|---|")
    for k, v in rows:
        print(f"| {k} | {v} |")


if __name__ == "__main__":
    main()
