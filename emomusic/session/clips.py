"""Stage 1 of a build: one clip, as a pipeline of small steps.

:class:`ClipMaker` makes clip ``i`` of a plan: **generate** candidates (seed after seed,
each conformed to the waypoint's tempo and key and measured), let the
:class:`~emomusic.session.policy.AcceptancePolicy` accept one or pick the best take,
**render** it once (with a tempo ramp toward the neighbouring clips, cut to the clip plus
its crossfade tail, stored at a fixed peak), and **store** it in the work folder
(``clip.mid``, ``audio.wav``, ``clip.abc`` where there is one, then ``result.json`` last,
as the clip's commit mark, read back as a :class:`ClipResult` by a resumed build).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np

from emomusic.emotion import Emotion
from emomusic.errors import EmomusicError
from emomusic.piece import Marker, Piece, Tempo
from emomusic.session.clip_engine import Candidate, ClipEngine, ClipRequest, conform, trim
from emomusic.session.phrasing import PhraseFit, fit_phrases, hold_final
from emomusic.session.plan import SessionPlan, Waypoint
from emomusic.session.policy import AcceptancePolicy, Attempt, silent_gap

END_FADE_SECONDS = 3.0  # the session ends with a fade-out of up to this (a quarter of the last clip)
STORE_PEAK = 0.9  # clips are stored at this true peak (linear); gains are applied at assembly


@dataclass
class ClipResult:
    """What a finished clip left in the work folder (``result.json``) and session.json reads."""

    index: int
    seed: int  # the kept take's seed
    retries: int
    measured: Emotion | None  # the kept take's estimated emotion (None: not measured)
    distance: float | None  # valence-arousal distance to the waypoint
    attempts: list[dict]
    loudness_db: float  # integrated loudness of the stored audio (whole clip incl. tail), LUFS
    beats: float  # length of the clip in beats (its tempo map), for session.mid
    info: dict
    peak: float = 0.0  # true peak of the stored audio (linear)
    body_loudness_db: float = -120.0  # integrated loudness (LUFS) of the stored audio without the crossfade tail
    phrasing: dict | None = None  # the clip's phrase layout (phrasing.PhraseFit.to_dict + form_followed); None: unphrased engine

    def to_dict(self) -> dict:
        return {
            "index": self.index,
            "seed": self.seed,
            "retries": self.retries,
            "measured": None if self.measured is None else self.measured.to_dict(),
            "distance": None if self.distance is None else round(self.distance, 4),
            "attempts": self.attempts,
            "loudness_db": round(self.loudness_db, 3),
            "beats": self.beats,
            "info": self.info,
            "peak": round(self.peak, 6),
            "body_loudness_db": round(self.body_loudness_db, 4),
            "phrasing": self.phrasing,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "ClipResult":
        return cls(
            index=int(d["index"]),
            seed=int(d["seed"]),
            retries=int(d["retries"]),
            measured=None if d.get("measured") is None else Emotion.from_dict(d["measured"]),
            distance=d.get("distance"),
            attempts=list(d.get("attempts", [])),
            loudness_db=float(d["loudness_db"]),
            beats=float(d["beats"]),
            info=dict(d.get("info", {})),
            peak=float(d["peak"]),
            body_loudness_db=float(d["body_loudness_db"]),
            phrasing=d.get("phrasing"),
        )


def frame_bounds(plan: SessionPlan, sample_rate: int) -> list[tuple[int, int]]:
    """(start frame, frames) of each clip: rounded once from the cumulative start times,
    so the frames add up exactly to the session length."""
    edges = [int(round(c.start_s * sample_rate)) for c in plan.clips] + [int(round(plan.total_seconds * sample_rate))]
    return [(edges[i], edges[i + 1] - edges[i]) for i in range(len(plan.clips))]


def ramp_tempo(piece: Piece, tempo: float, before: float | None, after: float | None, seconds: float,
               plan: SessionPlan | None = None) -> Piece:
    """Tempo ramp over the clip's ``seconds``: from the meeting point with the previous
    clip's tempo, to the plan tempo at the middle, to the meeting point with the next
    clip's (:meth:`StepRule.meeting_point`: half of each planned step; one tempo event per
    beat; the last tempo holds through the crossfade tail). Consecutive clips therefore meet
    at (nearly) the same tempo, and no step inside a clip exceeds the plan's step rule."""
    from emomusic.session.schedule import TEMPO_STEP

    rule = plan.tempo_rule if plan is not None else TEMPO_STEP
    t_in = rule.meeting_point(tempo, before) if before else tempo
    t_out = rule.meeting_point(tempo, after) if after else tempo
    if abs(t_in - tempo) < 1e-6 and abs(t_out - tempo) < 1e-6:
        return replace(piece, tempos=[Tempo(round(tempo, 3), 0.0)])
    length = max(1.0, seconds * tempo / 60.0)  # beats (the ramp is symmetric around `tempo`)
    half = length / 2.0
    points = [float(b) for b in range(int(math.floor(length)) + 1)]
    if length - points[-1] > 1e-6:
        points.append(length)
    tempos = []
    for b in points:
        if b <= half:
            bpm = t_in * (tempo / t_in) ** (b / half)
        else:
            bpm = tempo * (t_out / tempo) ** ((b - half) / (length - half))
        tempos.append(Tempo(round(bpm, 3), round(b, 6)))
    return replace(piece, tempos=tempos)


def prefetch_chunk(i: int, n: int) -> range:
    """The clips whose first takes are prefetched together with clip ``i``'s (of ``n``):
    chunks doubling in length (1, 2, 4, 8, ...), so the first clip is ready soon (its render
    starts while the next clips are made) and later clips share larger batches."""
    start = (1 << (i + 1).bit_length() - 1) - 1
    return range(start, min(n, 2 * start + 1))


def json_dump(path: Path, obj) -> None:
    from emomusic.atomic import write_text_atomic

    write_text_atomic(path, json.dumps(obj, indent=2) + "\n")


@dataclass
class Rendered:
    audio: np.ndarray  # (frames, 2) float32, clip plus crossfade tail, at STORE_PEAK
    piece: Piece | None  # the clip's score with its tempo ramp (None: audio-only engine)
    beats: float
    info: dict


class ClipMaker:
    """Makes the clips of one build: generate -> accept (policy) -> render -> store."""

    def __init__(self, plan: SessionPlan, engine: ClipEngine, estimator: Callable[[Piece], Emotion] | None,
                 policy: AcceptancePolicy, sample_rate: int, timings: dict):
        self.plan, self.engine, self.estimator, self.policy = plan, engine, estimator, policy
        self.sample_rate = sample_rate
        self.bounds = frame_bounds(plan, sample_rate)
        self.timings = timings
        # engines that compose in phrases get whole phrases ending just before each join
        self.fits: list[PhraseFit] | None = None
        if getattr(engine, "phrased", False):
            self.fits = fit_phrases(plan, float(getattr(engine, "bar_beats", 4.0)), getattr(engine, "form_kind", "piece"))
        self.tempi = [f.tempo for f in self.fits] if self.fits else [w.tempo for w in plan.clips]
        self._prefetched: set[int] = set()  # first clips of the prefetch chunks asked for (choose)

    def _timed(self, key: str):
        """Wall and CPU seconds of the block to the build's timings (emomusic.session.timing)."""
        from emomusic.session.timing import timed

        return timed(self.timings, key)

    def seconds(self, i: int) -> float:
        """Audio a clip needs: its duration plus the crossfade tail (none for the last)."""
        w = self.plan.clips[i]
        return w.duration_s + (self.plan.crossfade_s if i < len(self.plan.clips) - 1 else 0.0)

    def frames(self, i: int) -> int:
        fade = int(round(self.plan.crossfade_s * self.sample_rate)) if i < len(self.plan.clips) - 1 else 0
        return self.bounds[i][1] + fade

    # -- generate and accept ------------------------------------------------------------
    def request(self, i: int, seed: int) -> ClipRequest:
        """What the engine is asked for clip ``i`` (0-based) at ``seed``."""
        w = self.plan.clips[i]
        fit = self.fits[i] if self.fits else None
        return ClipRequest(index=w.index, emotion=w.emotion, seconds=self.seconds(i), tempo=self.tempi[i], key=w.key,
                           seed=seed, bars_wanted=None if fit is None else fit.bars,
                           form=None if fit is None else fit.form)

    def attempt(self, w: Waypoint, seed: int, seconds: float) -> Attempt:
        """Generate one candidate at ``seed``, conform it, measure it and score it."""
        i = w.index - 1
        tempo = self.tempi[i]
        req = replace(self.request(i, seed), seconds=seconds)
        with self._timed("generate"):
            cand = self.engine.generate(req)
            if cand.piece is not None:
                cand = replace(cand, piece=conform(cand.piece, tempo, w.key))
            if cand.measure_piece is not None:
                cand = replace(cand, measure_piece=conform(cand.measure_piece, tempo, w.key))
        target = cand.measured_piece
        a = Attempt(seed=seed, empty=target is not None and not target.notes, candidate=cand, request=req)
        with self._timed("estimate"):
            if self.estimator is not None and target is not None and not a.empty:
                try:
                    a.measured = self.estimator(target)
                    a.distance = a.measured.distance(w.emotion)
                except EmomusicError:  # e.g. nothing pitched to measure: treat like an empty clip
                    a.measured, a.distance, a.empty = None, math.inf, True
        a.gap_s = 0.0 if a.empty or cand.piece is None else silent_gap(cand.piece, w.duration_s)
        a.score = self.policy.score(a)
        return a

    def choose(self, i: int) -> tuple[Attempt, list[Attempt]]:
        """Try seeds until the policy accepts a take; the best take and every attempt.

        An engine with ``prefetch`` (the symbolic one: its diffusion model is cheaper per
        piece in a batch) is first asked for the first takes of this clip's prefetch chunk
        (:func:`prefetch_chunk`, fixed by clip index, so a resumed build batches the same
        requests), and, when the first take is not accepted, for all the retry seeds at once."""
        w = self.plan.clips[i]
        prefetch = getattr(self.engine, "prefetch", None)
        forget = getattr(self.engine, "forget", lambda requests: None)
        seeds = list(self.policy.seeds(w.seed))
        chunk = prefetch_chunk(i, len(self.plan.clips))
        if prefetch is not None and chunk.start not in self._prefetched:
            self._prefetched.add(chunk.start)
            firsts = [self.request(j, self.plan.clips[j].seed) for j in chunk]
            with self._timed("generate"):
                prefetch(firsts)
            forget(firsts[:i - chunk.start])  # finished clips of a resumed build
        attempts: list[Attempt] = []
        best = None
        for k, seed in enumerate(seeds):
            if k == 1 and prefetch is not None:
                with self._timed("generate"):
                    prefetch([self.request(i, s) for s in seeds[1:]])
            a = self.attempt(w, seed, self.seconds(i))
            attempts.append(a)
            if self.policy.better(a, best):
                best = a
            if self.policy.accept(a):
                break
        if prefetch is not None:  # retry seeds prefetched but not needed
            forget([self.request(i, s) for s in seeds[len(attempts):]])
        assert best is not None
        return best, attempts

    # -- render -------------------------------------------------------------------------
    def render(self, i: int, take: Attempt) -> Rendered:
        """The kept take with its tempo ramp, rendered once, fitted to the clip's frames and
        stored at a fixed peak (the loudness plan is applied at assembly, see clip_gains)."""
        from emomusic.audio import fit_length, true_peak

        plan, w, n, seconds = self.plan, self.plan.clips[i], len(self.plan.clips), self.seconds(i)
        cand: Candidate = take.candidate
        tempo, fit = self.tempi[i], (self.fits[i] if self.fits else None)
        before = self.tempi[i - 1] if i > 0 else None
        after = self.tempi[i + 1] if i < n - 1 else None
        piece, beats = None, w.duration_s * tempo / 60.0
        info = dict(cand.info)
        if cand.piece is not None:
            piece = ramp_tempo(cand.piece, tempo, before, after, w.duration_s, plan)
            if fit is not None:  # the final chord held through the join (a fermata)
                piece = hold_final(piece, fit.bars * fit.bar_beats, piece.seconds_to_beat(seconds))
            beats = piece.seconds_to_beat(w.duration_s)
            cand = replace(cand, piece=trim(piece, piece.seconds_to_beat(seconds)), info=info)
        if fit is not None:
            info["phrasing"] = dict(fit.to_dict(), form_followed=bool(info.pop("form_followed", False)))
        with self._timed("render"):
            if cand.piece is not None and not any(t.notes for t in cand.piece.tracks):
                # every attempt came back empty: the clip is silence (recorded), not a failed build
                audio = np.zeros((int(round(seconds * self.sample_rate)), 2), dtype=np.float32)
                cand.info["silent"] = True
            else:
                audio = self.engine.render(cand, replace(take.request, seconds=seconds), self.sample_rate)
            end_fade = min(END_FADE_SECONDS, w.duration_s / 4) if i == n - 1 else 0.0
            audio = fit_length(audio, self.frames(i), fade_seconds=end_fade, sample_rate=self.sample_rate)
            peak = true_peak(audio) if audio.size else 0.0
            if peak > 0:
                audio *= np.float32(STORE_PEAK / peak)
        return Rendered(audio, piece, float(beats), info)

    # -- store --------------------------------------------------------------------------
    def store(self, i: int, take: Attempt, attempts: list[Attempt], r: Rendered, clip_dir: Path) -> ClipResult:
        from emomusic.io import write_piece
        from emomusic.session.assemble import write_pcm16
        from emomusic.session.levels import clip_loudness

        w, sr = self.plan.clips[i], self.sample_rate
        with self._timed("write"):
            peak = STORE_PEAK if r.audio.size and np.any(r.audio) else 0.0  # true peak, set by render()
            level, body_level = clip_loudness(r.audio, sr, self.bounds[i][1])  # = audio.loudness_db of each, faster
            clip_dir.mkdir(parents=True, exist_ok=True)
            if r.piece is not None:
                clip_piece = trim(r.piece, r.beats)
                clip_piece.title = w.title
                clip_piece.markers = [Marker(f"clip {w.index:02d} {w.phase} {w.emotion.marker_text()}", 0.0)]
                write_piece(clip_piece, clip_dir / "clip.mid")
            write_pcm16(clip_dir / "audio.wav", r.audio, sr)
        result = ClipResult(
            index=w.index, seed=take.seed, retries=len(attempts) - 1, measured=take.measured,
            distance=None if take.measured is None else float(take.measured.distance(w.emotion)),
            attempts=[a.to_dict(self.policy.max_gap_s) for a in attempts],
            # rounded as in result.json, so a resumed build computes the very same gains
            loudness_db=round(float(level), 3) if math.isfinite(level) else -120.0,
            peak=round(peak, 6),
            body_loudness_db=round(float(body_level), 4) if math.isfinite(body_level) else -120.0,
            beats=r.beats,
            info={k: v for k, v in r.info.items() if isinstance(v, (str, int, float, bool)) and k != "abc"},
            phrasing=r.info.get("phrasing"),
        )
        if r.info.get("abc"):
            from emomusic.atomic import write_text_atomic

            write_text_atomic(clip_dir / "clip.abc", str(r.info["abc"]))
        json_dump(clip_dir / "result.json", result.to_dict())  # last: marks the clip finished
        return result

    def finish(self, i: int, take: Attempt, attempts: list[Attempt], clip_dir: Path) -> ClipResult:
        """Render the kept take and store it (the part the builder runs on its worker thread)."""
        return self.store(i, take, attempts, self.render(i, take), clip_dir)

    def make(self, i: int, clip_dir: Path) -> ClipResult:
        take, attempts = self.choose(i)
        return self.finish(i, take, attempts, clip_dir)


__all__ = ["ClipMaker", "ClipResult", "Rendered", "frame_bounds", "prefetch_chunk", "ramp_tempo"]
