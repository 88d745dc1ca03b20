"""Parse, clean and label the ABC melody corpus; print counts per quadrant.

    python scripts/build_abc_corpus.py ../shared/data/nottingham/ABC_cleaned music21

``music21`` stands for music21's bundled O'Neill's 1850, Ryan's Mammoth and Aird's Airs
collections (Essen is non-commercial and skipped). The parsed corpus is cached under
.cache/melody/ (or $EMOMUSIC_CACHE/melody), where `emomusic train melody` finds it again.
"""

from __future__ import annotations

import argparse
import collections
import json


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("paths", nargs="+", help="ABC files or folders, or 'music21'")
    ap.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = ap.parse_args()

    from emomusic.melody.corpus import augment, build_corpus, label_tunes, quadrant_counts

    tunes = build_corpus(args.paths, progress=True)
    stats = label_tunes(tunes)
    aug = augment(tunes)
    by_source = collections.Counter(t.source.split("/")[0] for t in tunes)
    modes = collections.Counter(t.key.mode for t in tunes)
    meters = collections.Counter(t.meter for t in tunes)
    summary = {
        "tunes": len(tunes),
        "with_chords": sum(t.has_chords for t in tunes),
        "by_collection": dict(by_source),
        "modes": dict(modes),
        "meters": dict(meters),
        "quadrants": quadrant_counts(tunes),
        "quadrants_after_augmentation": quadrant_counts(aug),
        "stats": stats,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        for k, v in summary.items():
            print(f"{k}: {v}")


if __name__ == "__main__":
    main()
