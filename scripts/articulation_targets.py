#!/usr/bin/env python
"""Print the articulation targets of compose (``emomusic.compose.articulation.POLYPHONY_LOG``).

Reads an EMOPIA folder's ``split`` clips (default: the train split, never the val clips the
realism benchmark compares against), cuts each clip to its first ``--bars`` bars as the realism
benchmark does, and prints, per quadrant (the clip name's prefix), the mean and standard
deviation of the log of the number of pitches sounding at once (``fit_targets``) as JSON.
Numbers derived from the data; no data is copied.

    python scripts/articulation_targets.py ../shared/data/emopia [--split train] [--bars 16]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def crop(piece, bars: int):
    """The first ``bars`` bars of ``piece``: the notes starting there, cut at the end."""
    from dataclasses import replace

    end = bars * piece.time_signature.bar_beats
    return replace(piece, tracks=[replace(t, notes=[replace(n, duration=min(n.duration, end - n.start))
                                                    for n in t.notes if n.start < end - 1e-6]) for t in piece.tracks])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("emopia", help="EMOPIA folder (split/<split>_clip.csv and midis/)")
    ap.add_argument("--split", default="train")
    ap.add_argument("--bars", type=int, default=16)
    args = ap.parse_args(argv)
    from emomusic.compose.articulation import fit_targets
    from emomusic.errors import EmomusicError
    from emomusic.io import read_piece

    folder = Path(args.emopia)
    listing = folder / "split" / f"{args.split}_clip.csv"
    if not listing.is_file() or args.bars < 1:
        print(f"Error: no EMOPIA split listing at {listing}" if args.bars >= 1 else "Error: --bars must be at least 1",
              file=sys.stderr)
        return 2
    with open(listing, newline="") as fh:
        names = [row["clip_name"] for row in csv.DictReader(fh)]
    pieces, quads = [], []
    for name in names:
        try:
            pieces.append(crop(read_piece(folder / "midis" / name), args.bars))
        except EmomusicError:
            continue
        quads.append(name[:2])
    print(json.dumps({"clips": len(pieces), "polyphony_log": fit_targets(pieces, quads)}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
