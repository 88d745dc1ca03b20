#!/usr/bin/env python
"""Piano texture of compose pieces against real EMOPIA piano clips, per quadrant.

For each quadrant, the real clips of EMOPIA's **train** split (val stays for evaluation; the
split files are ``split/train_clip.csv``, the quadrant is the file-name prefix) give the
10th-90th percentile range of each texture descriptor
(:func:`emomusic.compose.texture.texture_features`): sounding notes at once (polyphony),
notes per beat and per second, pitch spread (standard deviation and 10-90 range), the share
of notes below MIDI 48, and what the left hand does (onsets per beat below middle C, notes
per such onset). ``compose`` pieces at the quadrant centre are measured the same way, with
the piano texture (``texture=True``, the default) and without it; the table gives their
median and the share of pieces inside the real range.

EMOPIA's transcriptions sit on a nominal 120 BPM grid, so their "beats" are half seconds;
compose pieces have the attribute template's tempo (faster when excited, slower when calm).
Notes per second compares the two in real time.

    python benchmarks/texture.py --emopia ../shared/data/emopia
    python benchmarks/texture.py --quick        # 8 pieces per quadrant, 60 clips per quadrant
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from emomusic.compose.texture import TEXTURE_FEATURES, texture_features  # noqa: E402
from emomusic.emotion import QUADRANTS, Emotion  # noqa: E402
from emomusic.errors import EmomusicError  # noqa: E402

LABELS = {
    "polyphony": "sounding notes at once",
    "notes_per_beat": "notes per beat",
    "notes_per_second": "notes per second",
    "pitch_spread": "pitch spread (std)",
    "pitch_range_10_90": "pitch range 10-90 %",
    "low_share": "share below MIDI 48",
    "lh_onsets_per_beat": "left-hand onsets per beat",
    "lh_notes_per_onset": "left-hand notes per onset",
}


def real_features(emopia: Path, split: str = "train", limit: int | None = None,
                  quadrants=QUADRANTS) -> dict[str, list[dict]]:
    """Texture features of the EMOPIA clips of ``split``, by quadrant (``limit`` clips per quadrant)."""
    from emomusic.io import read_piece

    listing = emopia / "split" / f"{split}_clip.csv"
    if not listing.is_file():
        raise EmomusicError(f"EMOPIA split not found: {listing} (give --emopia)")
    with open(listing, newline="") as fh:
        names = [row["clip_name"] for row in csv.DictReader(fh)]
    out: dict[str, list[dict]] = {q: [] for q in quadrants}
    for nm in names:
        q = nm[:2]
        if q not in out or (limit and len(out[q]) >= limit):
            continue
        try:
            piece = read_piece(emopia / "midis" / nm)
            out[q].append(texture_features(piece))
        except EmomusicError:
            continue
    return out


def ranges(rows: dict[str, list[dict]], lo: float = 10, hi: float = 90) -> dict[str, dict[str, tuple[float, float, float]]]:
    """quadrant -> feature -> (p_lo, median, p_hi)."""
    out = {}
    for q, rs in rows.items():
        out[q] = {}
        for f in TEXTURE_FEATURES:
            v = np.array([r[f] for r in rs], dtype=float)
            out[q][f] = tuple(float(x) for x in np.percentile(v, [lo, 50, hi])) if v.size else (np.nan,) * 3
    return out


def generated_features(n: int, bars: int, texture: bool, checkpoint: str | None = None) -> dict[str, list[dict]]:
    from emomusic.compose import compose

    out = {}
    for qi, q in enumerate(QUADRANTS):  # the seeds of benchmarks/compose.py's emotion control
        ps = compose(Emotion.from_quadrant(q), bars=bars, n=n, seed=1000 * qi, texture=texture, checkpoint=checkpoint)
        out[q] = [texture_features(p) for p in ps if p.notes]
    return out


def summary(gen: dict[str, list[dict]], real: dict) -> dict:
    """quadrant -> feature -> {"median", "inside"} (share of pieces inside the real 10-90 range)."""
    out = {}
    for q, rs in gen.items():
        out[q] = {}
        for f in TEXTURE_FEATURES:
            v = np.array([r[f] for r in rs], dtype=float)
            lo, _, hi = real[q][f]
            out[q][f] = {"median": float(np.median(v)) if v.size else float("nan"),
                         "inside": float(np.mean((v >= lo) & (v <= hi))) if v.size else float("nan")}
    return out


def markdown(res: dict) -> str:
    m = res["meta"]
    lines = [f"Real: EMOPIA {m['split']} clips ({m['real_clips']}); generated: {m['per_quadrant']} pieces per quadrant, "
             f"{m['bars']} bars, seeds as benchmarks/compose.py; {'QUICK run' if m['quick'] else 'full run'} "
             f"({m['minutes']:.1f} min).", ""]
    lines.append("| quadrant | descriptor | EMOPIA p10-p90 (median) | compose, no texture: median (inside) | compose: median (inside) |")
    lines.append("|---|---|---|---|---|")
    for q in QUADRANTS:
        for f in TEXTURE_FEATURES:
            lo, med, hi = res["real"][q][f]
            a = res["no_texture"][q][f]
            b = res["texture"][q][f]
            lines.append(f"| {q} | {LABELS[f]} | {lo:.2f}-{hi:.2f} ({med:.2f}) | {a['median']:.2f} ({a['inside']:.0%}) | "
                         f"{b['median']:.2f} ({b['inside']:.0%}) |")
    lines.append("")
    lines.append("| system | share inside the EMOPIA range, all descriptors and quadrants |")
    lines.append("|---|---|")
    for name in ("no_texture", "texture"):
        vals = [res[name][q][f]["inside"] for q in QUADRANTS for f in TEXTURE_FEATURES]
        lines.append(f"| compose{'' if name == 'texture' else ', no texture'} | {np.nanmean(vals):.0%} |")
    return "\n".join(lines) + "\n"


def run(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--emopia", type=Path, default=None, help="EMOPIA folder (default: $EMOMUSIC_DATA/emopia)")
    ap.add_argument("--split", default="train", help="EMOPIA split giving the real ranges (default: train)")
    ap.add_argument("--per-quadrant", type=int, default=50, help="compose pieces per quadrant")
    ap.add_argument("--bars", type=int, default=16)
    ap.add_argument("--real-limit", type=int, default=None, help="at most this many clips per quadrant")
    ap.add_argument("--compose-checkpoint", default=None)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--quick", action="store_true", help="a smoke run: 8 pieces per quadrant, 60 clips per quadrant")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--markdown", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.quick:
        args.per_quadrant = min(args.per_quadrant, 8)
        args.real_limit = args.real_limit or 60
    import torch

    torch.set_num_threads(args.threads)
    from emomusic.paths import data_dir

    emopia = args.emopia or data_dir() / "emopia"
    t0 = time.time()
    real_rows = real_features(emopia, args.split, args.real_limit)
    real = ranges(real_rows)
    res = {"real": real,
           "no_texture": summary(generated_features(args.per_quadrant, args.bars, False, args.compose_checkpoint), real),
           "texture": summary(generated_features(args.per_quadrant, args.bars, True, args.compose_checkpoint), real)}
    res["meta"] = {"split": args.split, "real_clips": {q: len(v) for q, v in real_rows.items()},
                   "per_quadrant": args.per_quadrant, "bars": args.bars, "quick": args.quick,
                   "minutes": (time.time() - t0) / 60}
    text = markdown(res)
    print(text)
    from emomusic.atomic import write_text_atomic

    if args.json:
        write_text_atomic(args.json, json.dumps(res, indent=2))
    if args.markdown:
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
