"""Rendering: speed of both SoundFont players, how close the numpy player is to FluidSynth,
and what the BS.1770 loudness measure changes against the old RMS one. One core.

    python benchmarks/render.py [--soundfont PATH ...] [--repeats 2] [--quick] [--markdown OUT.md]

Tables:
1. speed: piece, player, audio seconds, notes, cold seconds (SoundFont parsed, caches empty),
   warm seconds (best of the repeats), x real time;
2. numpy player vs FluidSynth per SoundFont: chroma similarity, spectral-centroid ratio,
   integrated-loudness difference, for the current player and the one before issue #13
   (``--before`` points at its sf2.py, e.g. ``git show 0bc4c75:emomusic/sf2.py > /tmp/sf2_old.py``);
3. loudness: the old measure (gated RMS, channels averaged) against integrated LUFS.
Pieces are built in code with fixed seeds.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from emomusic.audio import chroma_similarity, integrated_lufs, spectral_centroid  # noqa: E402
from emomusic.piece import Note, Pedal, Piece, Tempo, Track  # noqa: E402
from emomusic.render import default_soundfont, note_events, render_piece  # noqa: E402

SR = 44100


def piano_piece(seconds: float, bpm: float = 100.0, seed: int = 0) -> Piece:
    """Solo piano: an eighth-note melody over half-note triads and a bass line, pedalled per bar."""
    rng = np.random.default_rng(seed)
    beats = int(seconds * bpm / 60)
    mel = [Note(int(rng.integers(64, 84)), i * 0.5, 0.45, int(rng.integers(60, 110))) for i in range(beats * 2)]
    chords = [Note(int(p + 2 * (b % 4)), b * 2.0, 1.9, 70) for b in range(beats // 2) for p in (48, 52, 55)]
    bass = [Note(36 + int(b % 5), b * 1.0, 0.9, 80) for b in range(beats)]
    pedals = [Pedal(b * 4.0, 3.8) for b in range(beats // 4)]
    return Piece(tracks=[Track("Piano", 0, False, mel + chords + bass, pedals=pedals)], tempos=[Tempo(bpm)])


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


def old_loudness_db(audio: np.ndarray, sample_rate: int, window_s: float = 0.4) -> float:
    """The measure emomusic.audio.loudness_db used before issue #13 (for comparison only):
    400 ms blocks, unweighted mean power over channels, -70 dB and relative -10 dB gates."""
    a = np.asarray(audio, dtype=np.float64).reshape(len(audio), -1)
    n = max(1, int(window_s * sample_rate))
    blocks = a[: a.shape[0] // n * n].reshape(-1, n, a.shape[1])
    power = np.mean(blocks**2, axis=(1, 2))
    power = power[power > 10 ** (-70 / 10)]
    rel = 10 * math.log10(float(np.mean(power))) - 10
    gated = power[10 * np.log10(power) > rel]
    return 10 * math.log10(float(np.mean(gated if gated.size else power)))


def load_old_player(path: str | None):
    if not path:
        return None
    spec = importlib.util.spec_from_file_location("sf2_before", path)
    mod = importlib.util.module_from_spec(spec)
    import sys

    sys.modules["sf2_before"] = mod
    spec.loader.exec_module(mod)
    return mod


def table(title: str, head: list[str], rows: list[list]) -> str:
    out = [f"### {title}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out) + "\n"


def speed(soundfont, repeats: int, quick: bool) -> str:
    from emomusic import render_fluidsynth, sf2

    pieces = [("piano 30 s", piano_piece(30)), ("band 30 s", band_piece(30))]
    if not quick:
        pieces += [("piano 15 min", piano_piece(900)), ("band 15 min", band_piece(900))]
    synths = ["numpy"] + (["fluidsynth"] if render_fluidsynth.available() else [])
    rows = []
    for name, piece in pieces:
        n = sum(len(t.notes) for t in piece.tracks)
        for synth in synths:
            sf2._LOADED.clear()  # cold: parse the SoundFont and fill the caches again
            t, c = time.perf_counter(), time.process_time()
            audio = render_piece(piece, soundfont=soundfont, synth=synth)
            cold, cold_cpu = time.perf_counter() - t, time.process_time() - c
            warm, warm_cpu = [], []
            for _ in range(max(1, repeats)):
                t, c = time.perf_counter(), time.process_time()
                render_piece(piece, soundfont=soundfont, synth=synth)
                warm.append(time.perf_counter() - t)
                warm_cpu.append(time.process_time() - c)
            secs = audio.shape[0] / SR
            rows.append([name, synth, f"{secs:.1f}", n, f"{cold:.2f} / {cold_cpu:.2f}", f"{min(warm):.2f} / {min(warm_cpu):.2f}",
                         f"{secs / min(warm_cpu):.0f}"])
            print(rows[-1], flush=True)
    return table(f"Speed ({os.path.basename(str(soundfont))}, one core)",
                 ["piece", "player", "audio s", "notes", "cold s (wall / CPU)", "warm s (wall / CPU)", "x real time (warm CPU)"], rows)


def closeness(soundfonts, before) -> str:
    from emomusic import render_fluidsynth
    from emomusic.sf2 import load_soundfont

    if not render_fluidsynth.available():
        return "FluidSynth is not installed: no comparison.\n"
    rows = []
    for sfp in soundfonts:
        for name, piece in [("piano 30 s", piano_piece(30)), ("band 30 s", band_piece(30))]:
            ref = render_piece(piece, soundfont=sfp, synth="fluidsynth")
            ours = render_piece(piece, soundfont=sfp, synth="numpy")
            row = [os.path.basename(str(sfp)), name, f"{chroma_similarity(ours, ref, SR):.3f}",
                   f"{spectral_centroid(ours, SR) / spectral_centroid(ref, SR):.3f}",
                   f"{integrated_lufs(ours, SR) - integrated_lufs(ref, SR):+.2f}"]
            if before is not None:
                sf_old = before.load_soundfont(sfp)
                old = before.synthesize(sf_old, [e[:6] for e in note_events(piece.__class__(
                    tracks=[Track(t.name, t.program, t.is_drum, t.notes, t.channel) for t in piece.tracks],
                    tempos=piece.tempos))], SR) * np.float32(0.5)
                row += [f"{chroma_similarity(old, ref, SR):.3f}", f"{spectral_centroid(old, SR) / spectral_centroid(ref, SR):.3f}"]
            rows.append(row)
            print(rows[-1], flush=True)
    head = ["SoundFont", "piece", "chroma sim.", "centroid ratio", "LUFS diff"]
    if before is not None:
        head += ["chroma sim. (before)", "centroid ratio (before, no pedal)"]
    return table("numpy player against FluidSynth (reference)", head, rows)


def loudness(soundfont) -> str:
    rows = []
    t = np.arange(4 * SR) / SR
    for name, x in [("sine 60 Hz, -13 dBFS RMS", 0.3 * np.sin(2 * np.pi * 60 * t)),
                    ("sine 1 kHz, -13 dBFS RMS", 0.3 * np.sin(2 * np.pi * 1000 * t)),
                    ("sine 5 kHz, -13 dBFS RMS", 0.3 * np.sin(2 * np.pi * 5000 * t))]:
        x = np.stack([x, x], axis=1)
        rows.append([name, f"{old_loudness_db(x, SR):.2f}", f"{integrated_lufs(x, SR):.2f}",
                     f"{integrated_lufs(x, SR) - old_loudness_db(x, SR):+.2f}"])
    for name, piece in [("piano 30 s (render)", piano_piece(30)), ("band 30 s (render)", band_piece(30))]:
        a = render_piece(piece, soundfont=soundfont)
        rows.append([name, f"{old_loudness_db(a, SR):.2f}", f"{integrated_lufs(a, SR):.2f}",
                     f"{integrated_lufs(a, SR) - old_loudness_db(a, SR):+.2f}"])
    for r in rows:
        print(r, flush=True)
    return table("Loudness: old measure (gated RMS) against BS.1770-4 integrated loudness",
                 ["signal", "old dB", "LUFS", "difference"], rows)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--soundfont", action="append", default=None, help="SoundFont(s) to compare (default: TimGM6mb)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="30 s pieces only")
    ap.add_argument("--before", default=None, help="sf2.py of the player before issue #13, for the comparison")
    ap.add_argument("--markdown", default=None)
    args = ap.parse_args()
    sfs = args.soundfont or [str(default_soundfont())]
    parts = [speed(sfs[0], args.repeats, args.quick), closeness(sfs, load_old_player(args.before)), loudness(sfs[0])]
    text = "\n".join(parts)
    print(text)
    if args.markdown:
        from emomusic.atomic import write_text_atomic

        write_text_atomic(args.markdown, text)


if __name__ == "__main__":
    main()
