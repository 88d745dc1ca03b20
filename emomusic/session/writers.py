"""The files of a session folder: one writer per file, in writing order.

Each writer owns one output: its name in the folder, its key in ``summary["files"]``, the
line the README gives it, and how it is written. :data:`WRITERS` is the registry: to add a
file, add a writer here (the summary, the README's file list and the CLI's help follow).
Writers run inside the output's :func:`emomusic.atomic.atomic_dir`; ``session.json`` is
written last (it records the timings).
"""

from __future__ import annotations

import math

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from emomusic.session.assemble import clip_dir, read_clip_audio, stream_session, write_pcm16
from emomusic.session.clips import ClipResult, frame_bounds, json_dump
from emomusic.session.plan import SessionPlan, mmss


@dataclass
class Output:
    """What the writers read, and the summary they fill."""

    plan: SessionPlan
    results: list[ClipResult]
    work: Path  # the build's work folder (the stored clips)
    folder: Path  # the output folder being written (a temporary folder until renamed)
    sample_rate: int
    gains: list[float]
    summary: dict
    timings: dict
    clip_files: list[dict] = field(default_factory=list)  # per clip: {"wav": ..., "midi": ...}
    clip_wavs: dict = field(default_factory=dict)  # clip position -> its WAV in the folder (written with session.wav)


@dataclass(frozen=True)
class Writer:
    key: str  # in summary["files"]
    name: str  # path in the folder
    write: Callable[[Output], bool]  # False: not written (the summary then records None)
    describe: Callable[[Output], str]  # its line in the README's file list
    timing: str = "files"
    early: bool = False  # reads only the plan and the clips' scores and results: written beside session.wav


def _clip_wav(out: Output, i: int, audio) -> None:
    """clips/clip_NN.wav: the clip as session.wav holds it (its level, limited), without the
    crossfade tail (a short fade-out instead); called by the session.wav writer."""
    from emomusic.audio import fit_length

    (out.folder / "clips").mkdir(exist_ok=True)
    bounds = frame_bounds(out.plan, out.sample_rate)
    wav = f"clips/clip_{out.plan.clips[i].index:02d}.wav"
    write_pcm16(out.folder / wav, fit_length(audio, bounds[i][1], fade_seconds=0.05, sample_rate=out.sample_rate),
                out.sample_rate)
    out.clip_wavs[i] = wav


def _write_clips(out: Output) -> bool:
    """clips/: each clip at its planned level (WAV, written with session.wav), and its MIDI
    and ABC where there is one."""
    (out.folder / "clips").mkdir(exist_ok=True)
    for i, w in enumerate(out.plan.clips):
        stem, src = f"clip_{w.index:02d}", clip_dir(out.work, w.index)
        wav = out.clip_wavs.get(i)
        if wav is None:  # session.wav was not written (a writer list without it)
            audio = read_clip_audio(out.plan, out.work, i, out.sample_rate, _stored_frames(out, i), 0.0)
            from emomusic.session.assemble import finish_clip

            audio, _ = finish_clip(audio, out.gains[i], out.sample_rate, frame_bounds(out.plan, out.sample_rate)[i][1],
                                   out.summary["loudness"]["target_lufs"] is not None)
            _clip_wav(out, i, audio)
            wav = out.clip_wavs[i]
        midi = None
        if (src / "clip.mid").is_file():
            midi = f"clips/{stem}.mid"
            shutil.copyfile(src / "clip.mid", out.folder / midi)
        if (src / "clip.abc").is_file():
            shutil.copyfile(src / "clip.abc", out.folder / f"clips/{stem}.abc")
        out.clip_files.append({"wav": wav, "midi": midi})
        out.summary["clips"][i]["files"] = out.clip_files[-1]
    return True


def _stored_frames(out: Output, i: int) -> int:
    fade = int(round(out.plan.crossfade_s * out.sample_rate))
    return frame_bounds(out.plan, out.sample_rate)[i][1] + (fade if i < len(out.plan.clips) - 1 else 0)


def _write_session_wav(out: Output) -> bool:
    levelled = out.summary["loudness"]["target_lufs"] is not None
    peak, joins, done = stream_session(out.plan, out.work, out.folder / "session.wav", out.sample_rate, out.gains,
                                       bridges=levelled, peaks=[r.peak for r in out.results],
                                       clip_sink=lambda i, a: _clip_wav(out, i, a), limited=levelled,
                                       levels=[r.body_loudness_db for r in out.results], timings=out.timings)
    out.summary["session_peak"] = round(peak, 4)  # true peak (linear)
    out.summary["session_true_peak_dbtp"] = round(20 * math.log10(peak), 2) if peak > 0 else None
    out.summary["joins"] = joins
    _record_limiter(out, done)
    return True


def _record_limiter(out: Output, done: list[dict]) -> None:
    """Per clip: the gain as applied, the limiter's largest reduction, the level reached; and
    the session's limiter summary (a note when it worked more than limiter.NOTICE_DB)."""
    from emomusic.limiter import NOTICE_DB

    worst = 0.0
    for c, r, d in zip(out.summary["clips"], out.results, done):
        c["gain_db"] = round(float(d["gain_db"]), 3)
        c["limiter_db"] = d["limiter_db"]
        if d.get("opening_limiter_db") is not None:
            c["opening_limiter_db"] = d["opening_limiter_db"]
        if d["loudness_lufs"] is not None:
            c["loudness_db"] = d["loudness_lufs"]
        worst = max(worst, d["limiter_db"], d.get("opening_limiter_db", 0.0))
    lim = {"max_gain_reduction_db": round(worst, 2), "ceiling_dbtp": out.summary["loudness"]["true_peak_ceiling_dbtp"]}
    if worst > NOTICE_DB:
        lim["note"] = (f"the true-peak limiter took up to {worst:.1f} dB off the loudest peaks "
                       f"(more than {NOTICE_DB:g} dB) so that the clips reach their levels")
    out.summary["loudness"]["limiter"] = lim


def _write_session_mid(out: Output) -> bool:
    """One continuous MIDI with a marker per clip; only when every clip has a score."""
    from emomusic.io import read_piece, write_piece
    from emomusic.piece import Marker, concatenate

    files = [clip_dir(out.work, w.index) / "clip.mid" for w in out.plan.clips]
    if not files or not all(f.is_file() for f in files):
        return False
    pieces = [read_piece(f, allow_empty=True) for f in files]
    for p, w in zip(pieces, out.plan.clips):
        p.markers = [Marker(f"clip {w.index:02d} {w.phase} {w.emotion.marker_text()}", 0.0)]
    whole = concatenate(pieces, lengths=[r.beats for r in out.results])
    whole.title = out.plan.name or "emomusic session"
    write_piece(whole, out.folder / "session.mid")
    return True


def _write_playlist(out: Output) -> bool:
    from emomusic.session.report import write_playlist

    write_playlist(out.folder / "playlist.m3u8", out.plan, [e["wav"] for e in out.clip_files])
    return True


def _write_plan(out: Output) -> bool:
    json_dump(out.folder / "plan.json", out.plan.to_dict())
    return True


def _write_trajectory(out: Output) -> bool:
    from emomusic.session.plot import plot_trajectory

    plot_trajectory(out.folder / "trajectory.png", out.plan, [r.measured for r in out.results])
    return True


def _write_readme(out: Output) -> bool:
    from emomusic.session.report import write_readme

    lines = [line for w in WRITERS if (line := w.describe(out))]
    write_readme(out.folder / "README.md", out.plan, out.summary, lines)
    return True


def _write_summary(out: Output) -> bool:
    out.summary["timings_s"] = {k: round(v, 3) for k, v in out.timings.items()}
    json_dump(out.folder / "session.json", out.summary)
    return True


WRITERS: tuple[Writer, ...] = (
    Writer("session_wav", "session.wav", _write_session_wav,
           lambda o: f"- `session.wav`: the whole session, exactly {mmss(o.plan.total_seconds)} long.",
           timing="session_wav"),
    Writer("session_mid", "session.mid", _write_session_mid,
           lambda o: "- `session.mid`: the same music as one MIDI file for a DAW, with a marker at the start of each clip."
           if o.summary["files"].get("session_mid") else "- (no `session.mid`: this backend makes audio only)",
           early=True),
    Writer("clips", "clips/", _write_clips,
           lambda o: "- `clips/`: each clip as WAV (and MIDI where there is one)."),
    Writer("playlist", "playlist.m3u8", _write_playlist,
           lambda o: "- `playlist.m3u8`: the clips in order with durations and titles."),
    Writer("plan", "plan.json", _write_plan,
           lambda o: "- `plan.json`: the editable plan (waypoints, tempi, keys, loudness, seeds)."),
    Writer("trajectory", "trajectory.png", _write_trajectory,
           lambda o: "- `trajectory.png`: planned (blue) and measured (red) emotion of each clip on the valence-arousal circle.",
           early=True),
    Writer("readme", "README.md", _write_readme, lambda o: ""),
    Writer("session_json", "session.json", _write_summary,
           lambda o: "- `session.json`: the plan and, per clip, target and measured emotion, distance, tempo, key, seed, retries."),
)


def file_names() -> list[str]:
    """The names a session folder holds (for help texts and docs)."""
    return [w.name for w in WRITERS]


def write_outputs(out: Output, writers: tuple[Writer, ...] = WRITERS) -> None:
    """Run the writers in order; ``summary["files"]`` maps each key to its name (None: not written).

    The ``early`` writers (session.mid, trajectory.png: they read only the plan, the clips'
    MIDI and their results) run one after the other on a helper thread from the start,
    beside session.wav, whose streaming leaves a core partly idle (its clips wait on the
    assemble workers); each is waited for at its own turn, so the files, the summary and any
    error are those of running them in order. Nothing is left running when this returns or
    raises."""
    from concurrent.futures import ThreadPoolExecutor

    from emomusic.session.timing import timed

    files = out.summary.setdefault("files", {})
    files.update({w.key: w.name for w in writers})

    def run(w: Writer) -> bool:
        with timed(out.timings, w.timing):
            return w.write(out)

    started = {}
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="emomusic-writer") as pool:
        try:
            for w in writers:
                if w.early:
                    started[w.key] = pool.submit(run, w)
            for w in writers:
                done = started[w.key].result() if w.key in started else run(w)
                if not done:
                    files[w.key] = None
        finally:
            for fut in started.values():  # after an error: the ones not begun are dropped, a running one finishes
                fut.cancel()


__all__ = ["WRITERS", "Output", "Writer", "file_names", "write_outputs"]
