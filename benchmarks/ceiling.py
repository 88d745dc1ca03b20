#!/usr/bin/env python
"""Where the compose engine's distance from real music comes from (issue #11).

The realism benchmark (``benchmarks/realism.py``) tells ``emomusic compose`` pieces from
EMOPIA's val clips about 0.81 of the time. This script runs the same classifier two-sample
test (same features, same forest) on *real* music sent through each stage of the engine, so
that the number each stage costs can be read off:

1. ``real``: EMOPIA train clips (as many per quadrant as val has) as they are: real vs real.
2. ``roll``: the same clips as the VAE reads them (16th-note piano roll of 2-bar segments),
   decoded back exactly: what the representation itself loses.
3. ``vae``: the same clips through the VAE (posterior mean -> decoder) at onset threshold 0.5
   and at the checkpoint's own threshold: what the VAE's reconstruction loses.
4. ``latents``: the clips' latents (the same posterior means) decoded by ``compose`` in
   place of the diffusion-GAN's samples (form none, as a clip has no plan; the emotion is
   the clip's quadrant centre): with the template only (``texture=False``) and with the
   whole texture (the default). A perfect latent model would give this row.
5. ``model``: ``compose`` with its own latents, form none (compare with row 4), and as shipped
   (default form: the realism benchmark's headline, here on these clips' quadrant mix).

Each row: the C2ST's mean +- SD over ``--repeats`` fold seeds against EMOPIA val (first
``--bars`` bars, compose's feature columns), and the per-feature means that differ most.

    python benchmarks/ceiling.py                                   # ../shared/data/emopia
    python benchmarks/ceiling.py --write-docs docs/benchmarks.md   # replace its block there
"""

from __future__ import annotations

import argparse
import datetime as _dt
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.realism import (  # noqa: E402
    TREES, PieceSet, c2st, c2st_columns, crop, emopia_sets, f3, nanmean, standardized_difference, write_docs,
)
from emomusic import realism as R  # noqa: E402
from emomusic.emotion import QUADRANTS, Emotion  # noqa: E402
from emomusic.errors import EmomusicError  # noqa: E402
from emomusic.piece import Piece, Tempo, TimeSignature, Track  # noqa: E402

DOC_BEGIN = "<!-- ceiling:begin -->"
DOC_END = "<!-- ceiling:end -->"


def _piece(notes, bars: int) -> Piece:
    return crop(Piece(tracks=[Track("Piano", 0, False, list(notes))], tempos=[Tempo(120.0)],
                      time_signatures=[TimeSignature(4, 4)]), bars)


def roll_pieces(eng, pieces: list[Piece], bars: int) -> list[Piece]:
    """Each piece as the VAE's piano roll, decoded back exactly (threshold 0.5 on a 0/1 roll)."""
    from emomusic.compose.representation import notes_to_segments, segments_to_notes

    cfg = eng.vae.cfg
    return [_piece(segments_to_notes(notes_to_segments(p.notes, cfg, min_notes=0)[0], cfg, 0.5), bars) for p in pieces]


def vae_pieces(eng, latents: list[np.ndarray], threshold: float, bars: int) -> list[Piece]:
    """Each piece's posterior means through the decoder at ``threshold``."""
    return [_piece(eng.decode(lat[None], threshold=threshold)[0], bars) for lat in latents]


def latent_pieces(eng, latents: list[np.ndarray], quadrants: list[str], bars: int, texture: bool, seed: int,
                  checkpoint) -> list[Piece]:
    """Each piece's posterior means decoded by compose (form none) in place of the model's samples
    (through :class:`emomusic.compose.api.Draft`: the call's own sample is drawn, then replaced)."""
    from emomusic.compose.api import draft_many

    out = []
    for i, (lat, q) in enumerate(zip(latents, quadrants)):
        use_bars = min(bars, len(lat) * eng.segment_bars)
        call = {"emotion": Emotion.from_quadrant(q), "bars": use_bars, "n": 1, "seed": seed + i, "form": "none",
                "texture": texture, "checkpoint": checkpoint}
        draft = draft_many([call])[0]
        draft.latents = lat[None, : draft.latents.shape[1]].astype(np.float32)
        out.append(crop(draft.finish()[0], bars))
    return out


def model_pieces(quadrants: list[str], bars: int, seed: int, checkpoint, form: str | None = "none") -> list[Piece]:
    """``compose``'s own pieces, as many per quadrant as ``quadrants`` has (``form`` None: its default)."""
    from emomusic.compose import compose

    out = []
    extra = {} if form is None else {"form": form}
    for qi, q in enumerate(QUADRANTS):
        n = sum(x == q for x in quadrants)
        if n:
            out += [crop(p, bars) for p in compose(Emotion.from_quadrant(q), bars=bars, n=n, seed=seed + 1000 * qi,
                                                   checkpoint=checkpoint, **extra)]
    return out


def compare_rows(real: PieceSet, rows: list[tuple[str, PieceSet]], repeats: int, trees: int) -> list[dict]:
    cols = c2st_columns("compose")
    a = real.X[:, cols]
    out = []
    for label, ps in rows:
        b = ps.X[:, cols]
        accs = [c2st(a, b, seed=s, trees=trees)["accuracy"] for s in range(repeats)]
        d = standardized_difference(a, b)
        order = np.argsort(-np.abs(d))[:3]
        top = [(R.FEATURES[cols[i]], nanmean(a[:, i]), nanmean(b[:, i]), float(d[i])) for i in order]
        out.append({"label": label, "n": len(ps.pieces), "mean": float(np.mean(accs)), "sd": float(np.std(accs)),
                    "each": accs, "top": top})
    return out


def table(results: list[dict]) -> list[str]:
    lines = ["| real music through ... | C2ST vs EMOPIA val (mean +- SD over fold seeds) | pieces | biggest differences (real -> this, Cohen's d) |",
             "|---|---|---|---|"]
    for r in results:
        top = "; ".join(f"{f} {f3(x)} -> {f3(y)} ({d:+.1f})" for f, x, y, d in r["top"])
        lines.append(f"| {r['label']} | **{f3(r['mean'])}** +- {f3(r['sd'])} | {r['n']} | {top} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    from emomusic.paths import data_dir

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--emopia", default=str(data_dir() / "emopia"))
    ap.add_argument("--bars", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=4, help="fold seeds per row (default 4)")
    ap.add_argument("--trees", type=int, default=TREES)
    ap.add_argument("--checkpoint", default=None, help="compose checkpoint (default: the shipped one)")
    ap.add_argument("--write-docs", default=None, help="markdown file whose ceiling block (between markers) is replaced")
    args = ap.parse_args(argv)
    if args.bars < 2 or args.trees < 1 or not 1 <= args.repeats <= 20:
        ap.error("--bars must be at least 2, --trees at least 1, --repeats 1..20")
    import torch

    from emomusic.compose.api import ComposeEngine

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    try:
        val, train = emopia_sets(Path(args.emopia), args.bars, args.seed, None)
        eng = ComposeEngine.load(args.checkpoint)
        latents = [eng.encode([p])[0] for p in train.pieces]
        keep = [i for i, lat in enumerate(latents) if len(lat)]  # a clip with no segment has no latents
        latents = [latents[i] for i in keep]
        q = [train.quadrants[i] for i in keep]
        th = eng.vae.cfg.decode_threshold
        sets = [("real: EMOPIA train clips as they are (real vs real)", train.pieces),
                ("roll: the VAE's 16th-note roll, decoded exactly", roll_pieces(eng, train.pieces, args.bars)),
                ("vae: VAE reconstruction, onset threshold 0.5", vae_pieces(eng, latents, 0.5, args.bars))]
        if th != 0.5:
            sets.append((f"vae: VAE reconstruction, onset threshold {th:g} (the checkpoint's)",
                         vae_pieces(eng, latents, th, args.bars)))
        sets += [("latents: compose's decoding + template (no texture), form none",
                  latent_pieces(eng, latents, q, args.bars, False, args.seed, args.checkpoint)),
                 ("latents: compose's decoding + template + texture (the default), form none",
                  latent_pieces(eng, latents, q, args.bars, True, args.seed, args.checkpoint)),
                 ("model: `compose` with its own latents, form none", model_pieces(q, args.bars, args.seed, args.checkpoint)),
                 ("model: `compose` as shipped (its own latents, default form)",
                  model_pieces(q, args.bars, args.seed, args.checkpoint, form=None))]
    except EmomusicError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2
    rows = [(label, PieceSet(label, [p for p in ps if p.notes], [])) for label, ps in sets]
    results = compare_rows(val, rows, args.repeats, args.trees)
    lines = ["### Pipeline ceiling (written by `benchmarks/ceiling.py`)", "",
             f"EMOPIA val ({len(val.pieces)} clips, first {args.bars} bars) against real music sent through each stage "
             f"of the compose engine ({len(train.pieces)} EMOPIA train clips, as many per quadrant as val), and "
             "against the engine itself; C2ST features and forest as in the realism test.", "",
             f"Run: `python benchmarks/ceiling.py --bars {args.bars} --seed {args.seed} --repeats {args.repeats}` "
             f"({_dt.date.today().isoformat()}).", "", *table(results), "",
             f"Total time {time.perf_counter() - t0:.0f} s (torch threads 1)."]
    text = "\n".join(lines)
    print(text)
    if args.write_docs:
        write_docs(Path(args.write_docs), text, begin=DOC_BEGIN, end=DOC_END)
    return 0


if __name__ == "__main__":
    sys.exit(main())
