"""Render speed of the numpy SoundFont synthesizer (emomusic.render), one core.

    python benchmarks/render_speed.py [--soundfont PATH] [--repeats 3]

Prints a table: piece, audio seconds, notes, render seconds (first call = cold caches,
best of the rest = warm), real-time factor. Pieces are built in code with a fixed seed.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from emomusic.piece import Note, Piece, Tempo, Track  # noqa: E402
from emomusic.render import default_soundfont, render_piece  # noqa: E402


def piano_piece(seconds: float, bpm: float = 100.0, seed: int = 0) -> Piece:
    """Solo piano: an eighth-note melody over half-note triads and a bass line."""
    rng = np.random.default_rng(seed)
    beats = int(seconds * bpm / 60)
    mel = [Note(int(rng.integers(64, 84)), i * 0.5, 0.45, int(rng.integers(60, 110))) for i in range(beats * 2)]
    chords = [Note(int(p + 2 * (b % 4)), b * 2.0, 1.9, 70) for b in range(beats // 2) for p in (48, 52, 55)]
    bass = [Note(36 + int(b % 5), b * 1.0, 0.9, 80) for b in range(beats)]
    return Piece(tracks=[Track("Piano", 0, False, mel + chords + bass)], tempos=[Tempo(bpm)])


def band_piece(seconds: float, bpm: float = 110.0, seed: int = 1) -> Piece:
    """Four parts: piano, strings pad, bass, drums (a session-builder-like texture)."""
    rng = np.random.default_rng(seed)
    beats = int(seconds * bpm / 60)
    piano = [Note(int(rng.integers(60, 84)), i * 0.5, 0.45, int(rng.integers(60, 110))) for i in range(beats * 2)]
    pad = [Note(p + 2 * (b % 4), b * 4.0, 4.0, 60) for b in range(beats // 4) for p in (55, 59, 62)]
    bass = [Note(36 + int(b % 5), b * 1.0, 0.9, 85) for b in range(beats)]
    drums = [Note(36 if b % 2 == 0 else 38, float(b), 0.2, 100) for b in range(beats)]
    drums += [Note(42, b * 0.5, 0.1, 70) for b in range(beats * 2)]
    return Piece(
        tracks=[Track("Piano", 0, False, piano), Track("Strings", 48, False, pad), Track("Bass", 33, False, bass),
                Track("Drums", 0, True, drums)],
        tempos=[Tempo(bpm)],
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--soundfont", default=None)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    sf = args.soundfont or default_soundfont()
    print(f"SoundFont: {sf}")
    print(f"{'piece':<22}{'audio s':>9}{'notes':>8}{'cold s':>9}{'warm s':>9}{'x real time (warm)':>20}")
    for name, piece in [("piano 30 s", piano_piece(30)), ("band 30 s", band_piece(30)),
                        ("piano 15 min", piano_piece(900)), ("band 15 min", band_piece(900))]:
        from emomusic import sf2

        sf2._LOADED.clear()  # cold: parse the SoundFont and fill the caches again
        t = time.perf_counter()
        audio = render_piece(piece, soundfont=sf)
        cold = time.perf_counter() - t
        warm = []
        for _ in range(max(1, args.repeats - 1)):
            t = time.perf_counter()
            render_piece(piece, soundfont=sf)
            warm.append(time.perf_counter() - t)
        secs = audio.shape[0] / 44100
        n = sum(len(t.notes) for t in piece.tracks)
        print(f"{name:<22}{secs:>9.1f}{n:>8}{cold:>9.2f}{min(warm):>9.2f}{secs / min(warm):>20.0f}")


if __name__ == "__main__":
    main()
