"""Prefetching engines (the symbolic one batches its diffusion model): the builder asks for the
first takes of fixed chunks of clips and for a clip's retry seeds at once; the session is the
one built without prefetching."""

from __future__ import annotations

import math

import numpy as np
import pytest

from emomusic.audio import read_wav
from emomusic.emotion import Emotion
from emomusic.errors import EmomusicError
from emomusic.piece import KeySignature, Note, Piece, Tempo, Track
from emomusic.session.builder import build_session, work_dir_for
from emomusic.session.clips import prefetch_chunk
from emomusic.session.engines import Candidate, ClipRequest
from emomusic.session.planner import plan_session

SR = 8000


class Plain:
    """Deterministic pieces from the request (the seed picks the first degree); sine render."""

    name = "plain"
    measured_on = "piece"

    def __init__(self, fail_at: int | None = None):
        self.fail_at = fail_at
        self.generated: list[tuple[int, int]] = []

    def check(self) -> None:
        pass

    def piece(self, req: ClipRequest) -> Piece:
        beats = int(math.ceil(req.beats)) + 1
        notes = [Note(60 + req.key.tonic + (req.seed + b) % 12, float(b), 0.9, 80) for b in range(beats)]
        return Piece(tracks=[Track("Tune", 0, False, notes)], tempos=[Tempo(req.tempo)],
                     keys=[KeySignature(req.key.tonic, req.key.mode)])

    def generate(self, req: ClipRequest) -> Candidate:
        if self.fail_at is not None and req.index == self.fail_at:
            raise RuntimeError(f"engine exploded at clip {req.index}")
        self.generated.append((req.index, req.seed))
        return Candidate(self.piece(req), info={"engine": self.name})

    def render(self, cand: Candidate, req: ClipRequest, sample_rate: int) -> np.ndarray:
        n = int(req.seconds * sample_rate)
        t = np.arange(n) / sample_rate
        f = 220 * 2 ** ((cand.piece.notes[0].pitch - 57) / 12)
        return np.repeat((0.2 * np.sin(2 * np.pi * f * t)).astype(np.float32)[:, None], 2, axis=1)


class Prefetching(Plain):
    """Records what it is asked to prefetch and forget; generate uses (and drops) the draft."""

    name = "prefetching"

    def __init__(self, fail_at: int | None = None):
        super().__init__(fail_at)
        self.drafts: dict[ClipRequest, Piece] = {}
        self.batches: list[list[tuple[int, int]]] = []
        self.forgotten: list[tuple[int, int]] = []
        self.from_draft = 0

    def prefetch(self, requests):
        self.batches.append([(r.index, r.seed) for r in requests])
        for r in requests:
            self.drafts.setdefault(r, self.piece(r))

    def forget(self, requests):
        for r in requests:
            if self.drafts.pop(r, None) is not None:
                self.forgotten.append((r.index, r.seed))

    def generate(self, req):
        cand = super().generate(req)
        if req in self.drafts:
            self.from_draft += 1
            assert self.drafts.pop(req).notes == cand.piece.notes
        return cand


def _plan():
    return plan_session("anxious", "calm", minutes=1, clip_seconds=6)  # 10 clips


def test_prefetch_chunks_double_and_cover_every_clip_once():
    for n in (1, 2, 7, 10, 30):
        chunks = []
        for i in range(n):
            ch = prefetch_chunk(i, n)
            assert i in ch
            if not chunks or chunks[-1] != ch:
                chunks.append(ch)
        assert [j for ch in chunks for j in ch] == list(range(n))
        assert [len(ch) for ch in chunks[:-1]] == [2 ** k for k in range(len(chunks) - 1)]


def test_builder_prefetches_chunks_and_retries_and_builds_the_same_session(tmp_path):
    plan = _plan()
    far = {i: 2 for i in range(len(plan.clips))}  # attempts 1 and 2 of every clip are far away
    far[0] = 0  # clip 1 is accepted at once

    engine, plain = Prefetching(), Plain()

    def estimator_for(eng):
        def est(piece):
            i, seed = eng.generated[-1]
            w = plan.clips[i - 1]
            k = (seed - w.seed) // 7919
            return w.emotion if k >= far[i - 1] else Emotion(-w.emotion.valence, -w.emotion.arousal)
        return est

    a = build_session(plan, tmp_path / "a", engine=engine, estimator=estimator_for(engine), sample_rate=SR,
                      max_retries=3, tolerance=0.2)
    b = build_session(plan, tmp_path / "b", engine=plain, estimator=estimator_for(plain), sample_rate=SR,
                      max_retries=3, tolerance=0.2)
    assert engine.generated == plain.generated
    assert [c["retries"] for c in a["clips"]] == [0] + [2] * 9
    seeds = [w.seed for w in plan.clips]
    retries = lambda i: [(i + 1, seeds[i] + k * 7919) for k in (1, 2, 3)]  # noqa: E731
    firsts = lambda ch: [(j + 1, seeds[j]) for j in ch]  # noqa: E731
    want = [firsts([0]), firsts([1, 2]), retries(1), retries(2), firsts(range(3, 7))]
    want += [retries(i) for i in range(3, 7)] + [firsts(range(7, 10))] + [retries(i) for i in range(7, 10)]
    assert engine.batches == want
    assert engine.forgotten == [(i + 1, seeds[i] + 3 * 7919) for i in range(1, 10)]  # the unused fourth seed
    assert engine.drafts == {} and engine.from_draft == len(engine.generated)
    wa, _ = read_wav(tmp_path / "a" / "session.wav")
    wb, _ = read_wav(tmp_path / "b" / "session.wav")
    assert np.array_equal(wa, wb)
    assert (tmp_path / "a" / "session.mid").read_bytes() == (tmp_path / "b" / "session.mid").read_bytes()


def test_a_resumed_build_prefetches_the_same_chunk(tmp_path):
    plan = _plan()
    out = tmp_path / "s"
    with pytest.raises(EmomusicError, match="clip 3 of 10 failed"):
        build_session(plan, out, engine=Prefetching(fail_at=3), estimator=None, sample_rate=SR)
    assert sorted(p.parent.name for p in work_dir_for(out).glob("clip_*/result.json")) == ["clip_001", "clip_002"]
    engine = Prefetching()
    build_session(plan, out, engine=engine, estimator=None, sample_rate=SR, resume=True)
    seeds = [w.seed for w in plan.clips]
    # clip 2 was finished before: its first take is in the batch (the same batch as in one go), then dropped
    assert engine.batches[0] == [(2, seeds[1]), (3, seeds[2])]
    assert (2, seeds[1]) in engine.forgotten and engine.drafts == {}
    assert [i for i, _ in engine.generated] == list(range(3, 11))
