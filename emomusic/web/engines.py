"""The web layer's only door to the music: thin calls of the public Python API.

Each method runs in a worker thread (see :mod:`emomusic.web.jobs`), writes its files into
the job's folder through the library's writers, and returns a JSON-ready dict. Nothing
here makes music: the values come from compose / melody / estimator / io as they are.
Tests swap an :class:`Engines` for a fake through FastAPI's ``dependency_overrides``.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Callable

from emomusic.emotion import Emotion
from emomusic.errors import EmomusicError, PieceFormatError
from emomusic.piece import Piece

from .jobs import Job

# Uploaded ABC and MusicXML are parsed by music21 in a child process, for two reasons:
# * time: emomusic.limits times a parse out with SIGALRM, which acts only in a main thread
#   (the child's), and the parent kills a child that outlives READ_TIMEOUT_S;
# * module-level state: emomusic.io.abc patches music21 process-wide while it reads
#   (``_chord_ties_patch`` swaps ``music21.abcFormat.translate.parseABCNote``); overlapping
#   reads in server threads would restore each other's patch and leave it installed.
READ_TIMEOUT_S = 60.0

READ_SUFFIXES = {".mid": "midi", ".midi": "midi", ".abc": "abc", ".musicxml": "musicxml", ".xml": "musicxml",
                 ".mxl": "musicxml"}


def accepts(func: Callable, name: str) -> bool:
    """Whether ``func`` takes a keyword ``name`` (options that newer engines add, e.g. ``form``)."""
    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def piano_roll(piece: Piece, limit: int = 4000) -> dict:
    """The notes as ``[start_beat, duration_beats, pitch, velocity, track]`` for the page's picture."""
    notes = []
    for ti, t in enumerate(piece.tracks):
        for n in t.notes:
            notes.append([round(n.start, 4), round(n.duration, 4), n.pitch, n.velocity, ti])
    notes.sort()
    beats_per_bar = 4.0
    if piece.time_signatures:
        ts = piece.time_signatures[0]
        beats_per_bar = ts.numerator * 4.0 / ts.denominator
    return {"tracks": [t.name for t in piece.tracks], "beats": round(piece.end_beat, 4),
            "beats_per_bar": beats_per_bar, "notes": notes[:limit]}


def analysis(piece: Piece) -> dict:
    """Measured attributes and the estimated emotion of ``piece`` (emomusic.estimator)."""
    from emomusic.estimator import estimate_details, load_estimator
    from emomusic.moods import nearest_moods

    det = estimate_details(piece, load_estimator())
    emo: Emotion = det["emotion"]
    return {
        "valence": round(det["valence"], 4),
        "arousal": round(det["arousal"], 4),
        "quadrant": det["quadrant"],
        "quadrant_probs": {q: round(p, 4) for q, p in det["quadrant_probs"].items()},
        "nearest_moods": [m.word for m in nearest_moods(emo, 3)],
        "attributes": det["attributes"].to_dict(),
        "notes": len(piece.notes),
        "tracks": [t.name for t in piece.tracks],
        "seconds": round(piece.duration_seconds, 3),
    }


def _read_child_main() -> None:
    """``python -c`` entry of the reader process: argv = path, format, result file."""
    import pickle
    import sys

    path, fmt, out = sys.argv[1:4]
    try:
        from emomusic.io import read_piece

        result = (True, read_piece(path, fmt))  # in this process's main thread: limits' timeout acts
    except EmomusicError as exc:
        result = (False, str(exc))
    except Exception as exc:  # music21 raises many kinds
        result = (False, f"cannot read the file as {fmt} ({type(exc).__name__})")
    with open(out, "wb") as f:
        pickle.dump(result, f)


def read_upload(path: Path, fmt: str, timeout: float = READ_TIMEOUT_S) -> Piece:
    """``read_piece(path, fmt)``; ABC and MusicXML in a child process that is killed after
    ``timeout`` seconds (MIDI is read here: mido is fast and the size bound suffices)."""
    from emomusic.io import read_piece

    if fmt == "midi":
        return read_piece(path, fmt)
    import os
    import pickle
    import subprocess
    import sys

    import emomusic

    out = Path(path).with_name(Path(path).name + ".piece")
    env = dict(os.environ)
    root = str(Path(emomusic.__file__).resolve().parents[1])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    try:
        proc = subprocess.run([sys.executable, "-c", "from emomusic.web.engines import _read_child_main; _read_child_main()",
                               str(path), fmt, str(out)], env=env, capture_output=True, timeout=timeout)
        if proc.returncode != 0 or not out.is_file():
            raise PieceFormatError(f"cannot read the {fmt} file (the reader stopped)")
        with open(out, "rb") as f:  # written just now by our own reader process
            ok, value = pickle.load(f)
    except subprocess.TimeoutExpired:
        raise PieceFormatError(f"reading the {fmt} file took longer than {timeout:g} s") from None
    finally:
        out.unlink(missing_ok=True)
    if not ok:
        raise PieceFormatError(value)
    return value


class Engines:
    """The API calls the routes make; one instance per app."""

    def __init__(self, soundfont: Path | None = None, compose_checkpoint: Path | None = None,
                 melody_checkpoint: Path | None = None):
        self.soundfont = soundfont
        self.compose_checkpoint = compose_checkpoint
        self.melody_checkpoint = melody_checkpoint

    # -- checks before a job is queued -------------------------------------------------------
    def check_key(self, key: str | None):
        if key is None:
            return None
        from emomusic.io.midi import parse_key_name

        k = parse_key_name(key)
        if k is None:
            raise EmomusicError(f"cannot read key {key!r}; use e.g. C, G, F#, Am, Ebm")
        return k

    def check_form(self, form: str | None, bars: int) -> None:
        """The form against the piece's length, by the library's own rule (emomusic.form), when
        that module is installed."""
        if form is None:
            return
        try:
            from emomusic.form import parse_form
        except ImportError:  # pragma: no cover - an engine without forms: the field is dropped
            return
        parse_form(form, bars)

    def check_melody(self, bars: int, meter: str | None, key: str | None, tempo: float | None) -> None:
        from emomusic.melody.api import check_options, resolve_key

        check_options(bars, 1, meter, tempo)
        resolve_key(key)

    # -- work (worker threads) -----------------------------------------------------------------
    def _write(self, job: Job, piece: Piece, stem: str, formats: tuple[str, ...],
               on_demand: tuple[str, ...] = ("musicxml",)) -> dict[str, str]:
        """Write ``formats`` now; those in ``on_demand`` (MusicXML: music21 is the slow part of
        an answer) are written on their first download."""
        from emomusic.io import FORMAT_EXTENSION, write_piece

        files = {}
        for i, fmt in enumerate(formats):
            job.report(0.4 + 0.5 * i / len(formats), f"writing {fmt}")
            path = job.folder / f"{stem}{FORMAT_EXTENSION[fmt]}"
            opts = {"soundfont": str(self.soundfont)} if (fmt == "wav" and self.soundfont) else {}
            if fmt in on_demand:
                files[fmt] = job.add_file(path.name, path, lambda p, fmt=fmt, opts=opts: write_piece(piece, p, fmt, **opts))
            else:
                write_piece(piece, path, fmt, **opts)
                files[fmt] = job.add_file(path.name, path)
        return files

    def compose(self, job: Job, emotion: Emotion, *, bars: int, seed: int, tempo: float | None = None,
                key: str | None = None, form: str | None = None) -> dict:
        from emomusic.compose import compose

        kwargs = dict(bars=bars, n=1, seed=seed, tempo=tempo, key=self.check_key(key), checkpoint=self.compose_checkpoint)
        if form is not None and accepts(compose, "form"):
            kwargs["form"] = form
        job.report(0.05, "composing")
        piece = compose(emotion, **kwargs)[0]
        files = self._write(job, piece, "compose", ("midi", "wav", "musicxml"))
        return {"id": job.id, "kind": "compose", "emotion": emotion.to_dict(), "files": files,
                "measured": analysis(piece), "roll": piano_roll(piece),
                "options": {"bars": bars, "seed": seed, "tempo": tempo, "key": key,
                            "form": kwargs.get("form")}}

    def melody(self, job: Job, emotion: Emotion, *, bars: int, seed: int, chords: bool = False,
               meter: str | None = None, key: str | None = None, tempo: float | None = None,
               form: str | None = None) -> dict:
        from emomusic.atomic import write_text_atomic
        from emomusic.melody import generate_melodies

        kwargs = dict(bars=bars, n=1, seed=seed, chords=chords, meter=meter, key=key, tempo=tempo,
                      checkpoint=self.melody_checkpoint)
        if form is not None and accepts(generate_melodies, "form"):
            kwargs["form"] = form
        job.report(0.05, "writing the melody")
        tune = generate_melodies(emotion, **kwargs)[0]
        abc_path = job.folder / "melody.abc"
        write_text_atomic(abc_path, tune.abc)
        files = {"abc": job.add_file(abc_path.name, abc_path)}
        files.update(self._write(job, tune.piece, "melody", ("midi", "wav", "musicxml")))
        from emomusic.io.engrave import abc_to_svg, engraver_available

        if engraver_available():
            svg_path = job.folder / "melody.svg"
            write_text_atomic(svg_path, abc_to_svg(tune.abc))
            files["svg"] = job.add_file(svg_path.name, svg_path)
        keep = ("quadrant", "key", "mode", "meter", "bars", "tempo_bpm", "dynamic", "chords")
        return {"id": job.id, "kind": "melody", "emotion": emotion.to_dict(), "files": files,
                "measured": analysis(tune.piece), "roll": piano_roll(tune.piece), "abc": tune.abc,
                "template": {k: tune.attributes.get(k) for k in keep},
                "options": {"bars": bars, "seed": seed, "chords": chords, "meter": meter, "key": key, "tempo": tempo,
                            "form": kwargs.get("form")}}

    def analyze(self, job: Job, path: Path, fmt: str) -> dict:
        job.report(0.1, "reading the file")
        piece = read_upload(path, fmt)
        job.report(0.6, "measuring")
        out = analysis(piece)
        out["roll"] = piano_roll(piece)
        out["format"] = fmt
        return out

    def session_plan(self, start, target, via, *, preset=None, **options):
        from . import sessions

        return sessions.plan(start, target, via, preset=preset, **options)

    def check_backend(self, backend: str) -> None:
        from . import sessions

        sessions.check_backend(backend, soundfont=self.soundfont)

    def session(self, job: Job, plan, backend: str) -> dict:
        from . import sessions

        return sessions.build(job, plan, backend, soundfont=self.soundfont)
