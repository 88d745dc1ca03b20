#!/usr/bin/env python
"""Print the articulation targets of compose (``emomusic.compose.articulation.POLYPHONY_LOG``).

Reads an EMOPIA folder's ``split`` clips (default: the train split, never the val clips the
realism benchmark compares against), cuts each clip to its first ``--bars`` bars as the realism
benchmark does, and prints, per quadrant (the clip name's prefix), the mean and standard
deviation of the log of the number of pitches sounding at once (``fit_targets``) as JSON.
The clips are read and cut by ``benchmarks/realism.py`` itself (``emopia_clips``,
``read_emopia``), so the targets are measured on exactly what the realism test compares.
Numbers derived from the data; no data is copied.

    python scripts/articulation_targets.py ../shared/data/emopia [--split train] [--bars 16]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("emopia", help="EMOPIA folder (split/<split>_clip.csv and midis/)")
    ap.add_argument("--split", default="train")
    ap.add_argument("--bars", type=int, default=16)
    args = ap.parse_args(argv)
    if args.bars < 1:
        print("Error: --bars must be at least 1", file=sys.stderr)
        return 2
    # the realism benchmark's own reader: its listing, the same clips skipped, cut to the same bars
    from benchmarks.realism import emopia_clips, read_emopia

    from emomusic.compose.articulation import fit_targets
    from emomusic.errors import EmomusicError

    folder = Path(args.emopia)
    try:
        clips = read_emopia(folder, emopia_clips(folder, args.split), args.bars, args.split)
    except EmomusicError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"clips": len(clips.pieces), "polyphony_log": fit_targets(clips.pieces, clips.quadrants)}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
