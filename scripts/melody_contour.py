#!/usr/bin/env python
"""Fit a melody checkpoint's contour prior and write it into its config.json.

1. Counts the interval-class transitions of the training tunes (the same corpus and
   train/validation split as ``emomusic train melody``, ``emomusic.melody.train._is_val``, so
   the held-out tunes are never looked at; ``emomusic train melody`` records these counts
   itself).
2. Fits the decoder's bonus table (:func:`emomusic.melody.contour.fit_bonus`): generates
   ``--tunes`` tunes of 16 bars (the four quadrant centres, with and without chords, seeds
   from 7,000,000 on: none that the benchmarks use) with the current table, counts their
   transitions and moves the table by log P_corpus - log P_generated, ``--iterations`` times.

Only the ``contour`` entry of the config changes; the weights are not touched.

    python scripts/melody_contour.py ../shared/data/nottingham/ABC_cleaned music21 \\
        -o emomusic/checkpoints/melody [--tunes 400] [--iterations 4]
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpus", nargs="+", help="ABC files or folders, or 'music21' (as emomusic train melody --corpus)")
    ap.add_argument("-o", "--checkpoint", required=True, help="checkpoint folder whose config.json gets the entry")
    ap.add_argument("--tunes", type=int, default=400, help="generated tunes per fitting iteration")
    ap.add_argument("--iterations", type=int, default=4)
    args = ap.parse_args(argv)
    from emomusic.emotion import QUADRANTS, Emotion
    from emomusic.melody.api import generate_melodies
    from emomusic.melody.contour import ContourPrior, corpus_entry, fit_bonus, transition_counts
    from emomusic.melody.corpus import build_corpus
    from emomusic.melody.profiles import mode_profiles
    from emomusic.melody.train import TrainOptions, _is_val

    path = Path(args.checkpoint) / "config.json"
    if not path.exists():
        print(f"Error: no config.json in {args.checkpoint}", file=sys.stderr)
        return 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tunes = build_corpus(args.corpus, progress=True)
    fraction = TrainOptions().val_fraction
    train = [t for t in tunes if not _is_val(t, fraction)]
    entry = corpus_entry(train)
    cfg = json.loads(path.read_text())
    cfg.pop("contour", None)
    cfg["profiles"] = mode_profiles(train)  # the key steering's targets, used while fitting
    path.write_text(json.dumps(cfg, indent=2) + "\n")  # fit with no prior to start from
    per = max(1, args.tunes // 8)

    def measure(table):
        prior = ContourPrior(table)
        lines = []
        for qi, q in enumerate(QUADRANTS):
            for chords in (False, True):
                got = generate_melodies(Emotion.from_quadrant(q), bars=16, n=per, chords=chords, contour=prior,
                                        seed=7_000_000 + 1000 * qi + 100 * chords, checkpoint=args.checkpoint)
                lines += [t.canon.pitches() for t in got]
        return transition_counts(lines)

    table, history = fit_bonus(entry["counts"], measure, iterations=args.iterations, log=print)
    final = fit_bonus(entry["counts"], lambda _: measure(table), iterations=1)[1][0]
    print(f"after the fit: distance to the corpus {final:.4f}")
    entry["bonus"] = [[round(v, 4) for v in r] for r in table]
    entry["fit"] = {"tunes_per_iteration": per * 8, "iterations": args.iterations,
                    "distance": [round(d, 4) for d in history + [final]],
                    "how": "scripts/melody_contour.py: bonus += log P_corpus - log P_generated per iteration"}
    cfg["contour"] = entry
    path.write_text(json.dumps(cfg, indent=2) + "\n")
    print(f"{path}: contour prior from {len(train)} training tunes (of {len(tunes)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
