"""Builder: output files, closed-loop retries, resume after an interruption, atomicity.

Uses a tiny deterministic engine built here (a scale over a drone, sine synthesis) and a
fixed estimator, so the tests need no model and run in a few seconds."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from emomusic.audio import loudness_db, read_wav
from emomusic.emotion import Emotion
from emomusic.errors import EmomusicError
from emomusic.io import read_piece
from emomusic.piece import KeySignature, Note, Piece, Tempo, Track
from emomusic.session.builder import build_session, work_dir_for
from emomusic.session.engines import Candidate, ClipRequest
from emomusic.session.planner import SessionPlan, plan_session
from emomusic.session.report import read_playlist
from emomusic.session.schedule import REFERENCE_LOUDNESS_DB

SR = 16000


class TinyEngine:
    """Deterministic: one note per beat up the scale of the requested key; the seed picks
    the starting degree. Renders with sines. ``fail_at``: raise when asked for that clip."""

    name = "tiny"
    measured_on = "piece"

    def __init__(self, fail_at: int | None = None):
        self.fail_at = fail_at
        self.generated: list[tuple[int, int]] = []  # (clip index, seed)
        self.rendered: list[int] = []

    def check(self) -> None:
        pass

    def generate(self, req: ClipRequest) -> Candidate:
        if self.fail_at is not None and req.index == self.fail_at:
            raise RuntimeError(f"engine exploded at clip {req.index}")
        self.generated.append((req.index, req.seed))
        scale = (0, 2, 4, 5, 7, 9, 11) if req.key.mode == "major" else (0, 2, 3, 5, 7, 8, 10)
        beats = int(math.ceil(req.beats)) + 1
        first = req.seed % 7
        notes = [Note(60 + req.key.tonic + scale[(first + b) % 7], float(b), 0.9, 80) for b in range(beats)]
        drone = [Note(48 + req.key.tonic, 0.0, float(beats), 60)]
        piece = Piece(tracks=[Track("Tune", 0, False, notes), Track("Drone", 48, False, drone)],
                      tempos=[Tempo(req.tempo)], keys=[KeySignature(req.key.tonic, req.key.mode)])
        return Candidate(piece, info={"engine": "tiny", "seed": req.seed})

    def render(self, cand: Candidate, req: ClipRequest, sample_rate: int) -> np.ndarray:
        self.rendered.append(req.index)
        piece = cand.piece
        n = int(piece.duration_seconds * sample_rate) + sample_rate // 4
        out = np.zeros(n, dtype=np.float32)
        for t in piece.tracks:
            for note in t.notes:
                i0 = int(piece.beat_to_seconds(note.start) * sample_rate)
                i1 = min(n, int(piece.beat_to_seconds(note.end) * sample_rate))
                tt = np.arange(i1 - i0) / sample_rate
                f = 440 * 2 ** ((note.pitch - 69) / 12)
                out[i0:i1] += 0.2 * np.sin(2 * np.pi * f * tt) * np.exp(-2 * tt)
        return np.repeat(out[:, None], 2, axis=1)


def target_estimator(piece: Piece) -> Emotion:
    """A fixed estimate; with the default tolerance of these tests nothing is retried."""
    return Emotion(0.0, 0.0)


def _plan(**kw) -> SessionPlan:
    args = dict(minutes=1, clip_seconds=10)
    args.update(kw)
    return plan_session(args.pop("start", "anxious"), args.pop("target", "calm"), **args)


def _build(plan, out, engine=None, **kw):
    kw.setdefault("sample_rate", SR)
    kw.setdefault("estimator", target_estimator)
    kw.setdefault("tolerance", 3.0)
    return build_session(plan, out, engine=engine or TinyEngine(), **kw)


def test_output_folder_is_complete_and_valid(tmp_path):
    plan = _plan()
    out = tmp_path / "session"
    summary = _build(plan, out)
    names = {p.name for p in out.iterdir()}
    assert {"session.wav", "session.mid", "clips", "playlist.m3u8", "session.json", "plan.json",
            "trajectory.png", "README.md"} <= names
    assert not work_dir_for(out).exists()
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())

    audio, sr = read_wav(out / "session.wav")
    assert sr == SR and audio.shape == (60 * SR, 2)
    assert np.abs(audio).max() > 0.01

    entries = read_playlist(out / "playlist.m3u8")
    assert len(entries) == 6
    assert sum(e[0] for e in entries) == pytest.approx(60)
    for (secs, title, f), c in zip(entries, plan.clips):
        assert (out / f).is_file() and title == c.title
        a, r = read_wav(out / f)
        assert a.shape[0] == round(secs * r)
        assert (out / f).with_suffix(".mid").is_file()

    data = json.loads((out / "session.json").read_text())
    assert data["adherence"] == summary["adherence"] and data["clips"] == summary["clips"]
    assert data["frames"] == 60 * SR and data["sample_rate"] == SR and data["duration_s"] == 60
    assert len(data["clips"]) == 6
    for c, w in zip(data["clips"], plan.clips):
        for key in ("target", "measured", "distance", "tempo", "key", "seed", "backend", "retries", "phase", "files"):
            assert key in c
        assert c["backend"] == "tiny"
        assert c["target"]["valence"] == pytest.approx(w.emotion.valence, abs=1e-4)
        assert c["distance"] == pytest.approx(Emotion.from_dict(c["measured"]).distance(w.emotion), abs=1e-3)
    assert SessionPlan.from_dict(data["plan"]).to_dict() == plan.to_dict()
    assert SessionPlan.load(out / "plan.json").to_dict() == plan.to_dict()

    midi = read_piece(out / "session.mid")
    markers = [m for m in midi.markers if m.text.startswith("clip ")]
    assert len(markers) == 6
    for m, c in zip(markers, plan.clips):
        assert midi.beat_to_seconds(m.beat) == pytest.approx(c.start_s, abs=0.02)
        assert m.text.startswith(f"clip {c.index:02d}")
    assert midi.duration_seconds <= 60 + 0.05

    assert (out / "trajectory.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    readme = (out / "README.md").read_text()
    assert "not a medical treatment" in readme


def test_clips_join_at_plan_times_and_levels(tmp_path):
    plan = _plan()
    out = tmp_path / "s"
    summary = _build(plan, out)
    offset = summary["session_level_offset_db"]
    assert -8.0 <= offset <= 0.0
    # the stated level: a clip at the plan's reference loudness (-20) sits at -16 LUFS
    assert summary["loudness"]["target_lufs"] == -16.0
    shift = -16.0 - REFERENCE_LOUDNESS_DB
    for c, w in zip(summary["clips"], plan.clips):
        # each clip sounds at the plan's loudness for it, at the stated level (less the one session offset)
        assert c["loudness_target_lufs"] == pytest.approx(w.loudness_db + shift, abs=1e-3)
        assert c["loudness_db"] == pytest.approx(w.loudness_db + shift + offset, abs=0.05)
    audio, sr = read_wav(out / "session.wav")
    for c, w in zip(summary["clips"], plan.clips):
        i0 = int(w.start_s * sr) + 3 * sr  # away from the crossfades
        seg = audio[i0: i0 + int((w.duration_s - 5) * sr)]
        assert loudness_db(seg, sr) == pytest.approx(w.loudness_db + shift + offset, abs=1.5)


def test_clip_gains_keep_planned_steps_with_a_peaky_clip():
    from emomusic.session.builder import ClipResult, clip_gains

    plan = _plan()
    results = [ClipResult(index=w.index, seed=0, retries=0, measured=None, distance=None, attempts=[],
                          loudness_db=-20.0, beats=1.0, info={}, peak=0.3, body_loudness_db=-20.0)
               for w in plan.clips]  # 10.3 dB of headroom each
    gains, offset = clip_gains(plan, results)
    assert offset == 0.0
    assert [round(-20 + g, 6) for g in gains] == [round(w.loudness_db, 6) for w in plan.clips]
    results[2].body_loudness_db = -34.0  # needs ~15 dB: over its 10.3 dB headroom, the limiter takes the rest
    gains, offset = clip_gains(plan, results)
    assert offset == 0.0 and gains[2] == pytest.approx(plan.clips[2].loudness_db + 34.0, abs=1e-9)
    # limiter budget (MAX_REDUCTION_DB, 8 dB) included: the headroom is 18.3 dB
    from emomusic.limiter import MAX_REDUCTION_DB

    results[2].body_loudness_db = -44.0  # needs ~24 dB: more than headroom + limiter, so the session steps down
    gains, offset = clip_gains(plan, results)
    room = 20 * math.log10(10 ** (-1 / 20) / 0.3) + MAX_REDUCTION_DB
    assert offset == pytest.approx(room - (plan.clips[2].loudness_db + 44.0), abs=1e-9)
    assert -8 < offset < -3
    levels = [r.body_loudness_db + g for r, g in zip(results, gains)]
    for lv, w in zip(levels, plan.clips):
        assert lv == pytest.approx(w.loudness_db + offset, abs=1e-6)
    results[2].body_loudness_db = -60.0  # beyond the largest offset: only that clip falls short
    gains, offset = clip_gains(plan, results)
    assert offset == -8.0
    levels = [r.body_loudness_db + g for r, g in zip(results, gains)]
    assert levels[2] < plan.clips[2].loudness_db - 8
    assert all(lv == pytest.approx(w.loudness_db - 8, abs=1e-6) for i, (lv, w) in enumerate(zip(levels, plan.clips)) if i != 2)


def test_retries_when_far_and_keeps_the_closest(tmp_path):
    plan = _plan()
    calls = {"n": 0}

    class Est:
        """Attempts 1 and 2 of every clip measure far away; attempt 3 hits the waypoint."""

        def __call__(self, piece):
            calls["n"] += 1
            k = (calls["n"] - 1) % 3
            w = plan.clips[(calls["n"] - 1) // 3]
            if k < 2:
                return Emotion(-w.emotion.valence, -w.emotion.arousal)
            return w.emotion

    engine = TinyEngine()
    summary = _build(plan, tmp_path / "s", engine=engine, estimator=Est(), max_retries=3, tolerance=0.2)
    for c, w in zip(summary["clips"], plan.clips):
        assert c["retries"] == 2
        assert c["distance"] == pytest.approx(0.0, abs=1e-6)
        assert c["seed"] != w.seed and c["seed"] == c["attempts"][2]["seed"]
        assert len({a["seed"] for a in c["attempts"]}) == 3
    # each clip generated three times, rendered once
    assert len(engine.generated) == 18 and engine.rendered == [1, 2, 3, 4, 5, 6]


def test_retry_limit_keeps_best(tmp_path):
    plan = _plan(minutes=0.5)
    dists = iter([0.9, 0.5, 0.7] * 10)

    def est(piece):
        return Emotion(next(dists), 0.0)

    # every waypoint at (0, 0), so the estimate's valence is the distance
    engine = TinyEngine()
    plan_d = plan.to_dict()
    for c in plan_d["clips"]:
        c["emotion"] = {"valence": 0.0, "arousal": 0.0}
        c.pop("tempo"); c.pop("key"); c.pop("loudness_db")
    plan_d["start"] = plan_d["target"] = {"valence": 0.0, "arousal": 0.0}
    flat = SessionPlan.from_dict(plan_d)
    summary = _build(flat, tmp_path / "s", engine=engine, estimator=est, max_retries=2, tolerance=0.1)
    for c in summary["clips"]:
        assert c["retries"] == 2
        assert c["distance"] == pytest.approx(0.5)
        assert c["within_tolerance"] is False
        assert c["seed"] == c["attempts"][1]["seed"]


def test_resume_after_interruption_reuses_finished_clips(tmp_path):
    plan = _plan()
    out = tmp_path / "s"
    with pytest.raises(EmomusicError, match=r"clip 4 of 6 failed .*--resume") as err:
        _build(plan, out, engine=TinyEngine(fail_at=4))
    assert "\n" not in str(err.value)
    assert not out.exists()  # no half output folder
    work = work_dir_for(out)
    finished = sorted(p.parent.name for p in work.glob("clip_*/result.json"))
    assert finished == ["clip_001", "clip_002", "clip_003"]

    engine = TinyEngine()
    summary = _build(plan, out, engine=engine, resume=True)
    assert [i for i, _ in engine.generated] == [4, 5, 6]
    assert engine.rendered == [4, 5, 6]
    assert summary["settings"]["resumed_clips"] == 3
    assert not work.exists()

    # the resumed session is identical to one built in one go
    fresh = tmp_path / "fresh"
    _build(plan, fresh)
    a, _ = read_wav(out / "session.wav")
    b, _ = read_wav(fresh / "session.wav")
    assert np.array_equal(a, b)
    assert (out / "session.mid").read_bytes() == (fresh / "session.mid").read_bytes()


def test_resume_refuses_another_plan_and_restart_without_resume(tmp_path):
    plan = _plan()
    out = tmp_path / "s"
    with pytest.raises(EmomusicError):
        _build(plan, out, engine=TinyEngine(fail_at=3))
    other = _plan(seed=9)
    with pytest.raises(EmomusicError, match="another plan"):
        _build(other, out, resume=True)
    engine = TinyEngine()
    _build(plan, out, engine=engine)  # no --resume: starts over
    assert [i for i, _ in engine.generated] == [1, 2, 3, 4, 5, 6]


def test_steady_session(tmp_path):
    plan = _plan(start="calm", target="calm", minutes=0.5)
    summary = _build(plan, tmp_path / "s")
    assert len({c["tempo"] for c in summary["clips"]}) == 1
    assert {c["target"]["label"] for c in summary["clips"]} == {"calm"}


def test_odd_length_is_exact(tmp_path):
    plan = plan_session("sad", "happy", minutes=0.61, clip_seconds=7)
    _build(plan, tmp_path / "s")
    audio, sr = read_wav(tmp_path / "s" / "session.wav")
    assert audio.shape[0] == round(0.61 * 60 * SR)


def test_refuses_to_replace_a_foreign_folder(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.txt").write_text("precious")
    with pytest.raises(EmomusicError, match="not an emomusic session folder"):
        _build(_plan(), out)
    assert (out / "thesis.txt").read_text() == "precious"
    assert not work_dir_for(out).exists()


def test_rebuild_replaces_a_previous_session(tmp_path):
    out = tmp_path / "s"
    _build(_plan(), out)
    _build(_plan(minutes=0.5), out)
    audio, _ = read_wav(out / "session.wav")
    assert audio.shape[0] == 30 * SR


def test_no_closed_loop(tmp_path):
    summary = _build(_plan(minutes=0.5), tmp_path / "s", estimator=None)
    assert all(c["measured"] is None and c["retries"] == 0 for c in summary["clips"])


@pytest.mark.parametrize("kw,msg", [(dict(max_retries=-1), "max retries"), (dict(tolerance=-1), "tolerance"),
                                    (dict(sample_rate=100), "sample rate"), (dict(threads=1), "unknown build setting 'threads'"),
                                    (dict(soundfont="/no/such.sf2"), "SoundFont not found")])
def test_bad_settings_leave_nothing(tmp_path, kw, msg):
    with pytest.raises(EmomusicError, match=msg):
        _build(_plan(), tmp_path / "s", **kw)
    assert list(tmp_path.iterdir()) == []


def test_rules_backend_end_to_end(tmp_path):
    plan = _plan(minutes=0.5)
    summary = build_session(plan, tmp_path / "s", backend="rules", sample_rate=SR)
    assert summary["backend"] == "rules"
    assert all(c["measured"] is not None for c in summary["clips"])
    audio, _ = read_wav(tmp_path / "s" / "session.wav")
    assert audio.shape[0] == 30 * SR


def test_rules_engine_builtin_synth_is_deterministic(tmp_path):
    from emomusic.session.engines import RulesEngine

    plan = _plan(minutes=0.5)
    _build(plan, tmp_path / "a", engine=RulesEngine(synth="builtin"))
    _build(plan, tmp_path / "b", engine=RulesEngine(synth="builtin"))
    a, _ = read_wav(tmp_path / "a" / "session.wav")
    b, _ = read_wav(tmp_path / "b" / "session.wav")
    assert a.shape[0] == 30 * SR and np.array_equal(a, b) and np.abs(a).max() > 0.01


class EmptyFirstEngine(TinyEngine):
    """The first attempt of every clip has no notes."""

    def generate(self, req):
        cand = super().generate(req)
        if req.seed < 1000:  # first attempts use the plan's seeds (small numbers)
            cand.piece.tracks = []
        return cand


def test_empty_candidates_are_regenerated(tmp_path):
    engine = EmptyFirstEngine()
    summary = _build(_plan(minutes=0.5), tmp_path / "s", engine=engine, max_retries=2)
    for c in summary["clips"]:
        assert c["retries"] == 1 and c["attempts"][0].get("empty") and c["measured"] is not None


class AlwaysEmptyEngine(TinyEngine):
    def generate(self, req):
        cand = super().generate(req)
        cand.piece.tracks = []
        return cand

    def render(self, cand, req, sample_rate):
        raise AssertionError("an empty piece must not be rendered")


def test_all_empty_attempts_give_a_silent_clip_not_a_crash(tmp_path):
    summary = _build(_plan(minutes=0.5), tmp_path / "s", engine=AlwaysEmptyEngine(), max_retries=1)
    assert all(c["info"].get("silent") and c["measured"] is None and c["retries"] == 1 for c in summary["clips"])
    audio, _ = read_wav(tmp_path / "s" / "session.wav")
    assert audio.shape[0] == 30 * SR and not audio.any()


class GappyFirstEngine(TinyEngine):
    """The first attempt of every clip stops playing after half the clip."""

    def generate(self, req):
        cand = super().generate(req)
        if req.seed < 1000:
            half = req.beats / 2
            for t in cand.piece.tracks:
                t.notes = [n for n in t.notes if n.start < half]
                t.notes = [n if n.end <= half else Note(n.pitch, n.start, half - n.start, n.velocity) for n in t.notes]
        return cand


def test_candidates_with_a_silent_end_are_regenerated(tmp_path):
    summary = _build(_plan(minutes=0.5), tmp_path / "s", engine=GappyFirstEngine(), max_retries=2)
    for c in summary["clips"]:
        assert c["retries"] == 1 and c["attempts"][0]["gap_s"] > 1.5 and "gap_s" not in c["attempts"][1]


def test_join_ramp_levels_the_join_and_fades_out():
    from emomusic.audio import rms_db
    from emomusic.session.builder import JOIN_MAX_DB, JOIN_RAMP_S, JOIN_WINDOW_S, join_ramp

    sr = 1000
    env = join_ramp(-20.0, -28.0, 20 * sr, sr)  # the next clip opens 8 dB quieter
    assert env.shape == (int(JOIN_RAMP_S * sr),) and env.dtype == np.float32
    assert 20 * np.log10(env[0]) == pytest.approx(8.0, abs=1e-4)  # starts at the difference
    assert 20 * np.log10(env[-1]) == pytest.approx(0.0, abs=0.01)  # ends at the clip's own level
    assert np.all(np.diff(env) <= 1e-7)  # monotone
    # a quiet opening after a loud close gets closer: the 3 s after the join move toward -20 dB
    rng = np.random.default_rng(0)
    nxt = (rng.standard_normal(20 * sr) * 10 ** (-28 / 20)).astype(np.float32)
    before = rms_db(nxt[: int(JOIN_WINDOW_S * sr)])
    fixed = nxt.copy()
    fixed[: env.shape[0]] *= env
    after = rms_db(fixed[: int(JOIN_WINDOW_S * sr)])
    assert abs(-20.0 - after) < abs(-20.0 - before) - 4
    assert np.array_equal(fixed[env.shape[0]:], nxt[env.shape[0]:])  # the rest is untouched
    # limits: clipped to the largest correction; small differences and silence are left alone
    assert 20 * np.log10(join_ramp(-10.0, -40.0, 20 * sr, sr)[0]) == pytest.approx(JOIN_MAX_DB, abs=1e-4)
    assert 20 * np.log10(join_ramp(-40.0, -10.0, 20 * sr, sr)[0]) == pytest.approx(-JOIN_MAX_DB, abs=1e-4)
    assert join_ramp(-20.0, -20.5, 20 * sr, sr) is None
    assert join_ramp(float("-inf"), -20.0, 20 * sr, sr) is None
    assert join_ramp(-90.0, -20.0, 20 * sr, sr) is None
    assert join_ramp(-20.0, -30.0, 2 * sr, sr).shape == (2 * sr,)  # never longer than the clip


class FadingEngine(TinyEngine):
    """Clips that end 20 dB quieter than they open: the worst case for a join."""

    def render(self, cand, req, sample_rate):
        audio = super().render(cand, req, sample_rate)
        cut = int(round((req.seconds - 5.0) * sample_rate))
        audio[max(0, cut):] *= 0.1
        return audio


def test_session_joins_are_level_bridged(tmp_path):
    from emomusic.audio import rms_db

    out = tmp_path / "s"
    summary = _build(_plan(minutes=0.5), out, engine=FadingEngine())
    audio, sr = read_wav(out / "session.wav")
    w = 3 * sr
    starts = [int(round(c["start_s"] * sr)) for c in summary["clips"]]
    assert len(starts) == 3
    for k, i in enumerate(starts[1:], start=1):
        before, after = rms_db(audio[i - w:i]), rms_db(audio[i:i + w])
        # the clip files keep their own levels: the same join there jumps by about 20 dB
        prev, nxt = read_wav(out / f"clips/clip_{k:02d}.wav")[0], read_wav(out / f"clips/clip_{k + 1:02d}.wav")[0]
        raw_jump = abs(rms_db(nxt[:w]) - rms_db(prev[-w:]))
        assert raw_jump > 12
        assert abs(after - before) < raw_jump - 6


def test_on_clip_reports_every_clip_also_when_resuming(tmp_path):
    plan = _plan()
    out = tmp_path / "s"
    seen = []
    with pytest.raises(EmomusicError):
        _build(plan, out, engine=TinyEngine(fail_at=3), on_clip=lambda d, t, r: seen.append((d, t, r.index)))
    assert seen == [(1, 6, 1), (2, 6, 2)]
    seen.clear()
    _build(plan, out, resume=True, on_clip=lambda d, t, r: seen.append((d, t, r.index)))
    assert seen == [(k, 6, k) for k in range(1, 7)]


def test_settings_object_and_overrides(tmp_path):
    from emomusic.session import BuildSettings

    settings = BuildSettings(sample_rate=SR, tolerance=3.0, max_retries=0)
    summary = build_session(_plan(minutes=0.5), tmp_path / "a", settings, engine=TinyEngine(), estimator=target_estimator)
    assert summary["settings"]["sample_rate"] == SR and summary["settings"]["max_retries"] == 0
    summary = build_session(_plan(minutes=0.5), tmp_path / "b", settings, engine=TinyEngine(), estimator=target_estimator,
                            max_retries=2)
    assert summary["settings"]["max_retries"] == 2 and settings.max_retries == 0  # the object is not changed


def test_writers_fill_the_summary_and_the_readme(tmp_path):
    from emomusic.session.writers import WRITERS, Output

    out = tmp_path / "s"
    summary = _build(_plan(minutes=0.5), out)
    assert list(summary["files"]) == [w.key for w in WRITERS]
    assert json.loads((out / "session.json").read_text())["files"] == summary["files"]
    readme = (out / "README.md").read_text()
    fake = Output(None, [], out, out, SR, [], summary, {})
    for w in WRITERS:
        assert (out / w.name.rstrip("/")).exists(), w.name
        line = w.describe(fake) if w.key != "session_wav" else f"`{w.name}`"
        assert line in readme, w.name
    assert all(c["files"]["wav"] == f"clips/clip_{c['index']:02d}.wav" for c in summary["clips"])


class ThreadsSpy(TinyEngine):
    def generate(self, req):
        import torch

        self.threads = torch.get_num_threads()
        return super().generate(req)


def test_the_build_leaves_torch_threads_to_the_caller(tmp_path):
    import torch

    from emomusic.session.runtime import torch_threads

    old = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        engine = ThreadsSpy()
        _build(_plan(minutes=0.5), tmp_path / "a", engine=engine)
        assert engine.threads == 2 and torch.get_num_threads() == 2  # not changed by the library
        with torch_threads(1, "symbolic"):  # what the CLI does around a build
            _build(_plan(minutes=0.5), tmp_path / "b", engine=engine)
        assert engine.threads == 1 and torch.get_num_threads() == 2  # restored
        with pytest.raises(EmomusicError, match="threads"):
            with torch_threads(0):
                pass
    finally:
        torch.set_num_threads(old)


def test_builds_in_parallel_threads_match_a_sequential_build(tmp_path):
    """A server runs builds in worker threads: two at once share the engines' caches (SoundFont,
    estimator, mood table) and still give the same bytes as one build alone."""
    import threading

    plan = _plan(minutes=1 / 3)  # two clips
    build_session(plan, tmp_path / "alone", backend="rules", sample_rate=SR)
    errors = []

    def run(name):
        try:
            build_session(plan, tmp_path / name, backend="rules", sample_rate=SR)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(f"t{k}",)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    ref = (tmp_path / "alone" / "session.wav").read_bytes()
    for k in range(2):
        assert (tmp_path / f"t{k}" / "session.wav").read_bytes() == ref
        assert (tmp_path / f"t{k}" / "session.mid").read_bytes() == (tmp_path / "alone" / "session.mid").read_bytes()


def test_stated_loudness_true_peak_ceiling_and_joins_in_lufs(tmp_path):
    from emomusic.audio import true_peak_db, window_lufs

    plan = _plan(minutes=0.5)
    quiet = _build(plan, tmp_path / "q", loudness=-20)
    loud = _build(plan, tmp_path / "l")  # the default, -16 LUFS
    assert quiet["loudness"]["target_lufs"] == -20.0 and loud["loudness"]["target_lufs"] == -16.0
    for cq, cl in zip(quiet["clips"], loud["clips"]):
        heard_q = cq["loudness_db"] - quiet["session_level_offset_db"]
        heard_l = cl["loudness_db"] - loud["session_level_offset_db"]
        assert heard_l - heard_q == pytest.approx(4.0, abs=0.05)  # 4 LU louder, the same steps
    for c in loud["clips"]:
        audio, sr = read_wav(tmp_path / "l" / c["files"]["wav"])
        assert true_peak_db(audio) <= -1.0 + 0.05  # the true-peak ceiling
    # joins: short-term loudness of the 3 s either side, as the clips were placed
    joins = loud["joins"]
    assert len(joins) == len(plan.clips) - 1
    for j in joins:
        prev, _ = read_wav(tmp_path / "l" / loud["clips"][j["clip"] - 2]["files"]["wav"])
        assert j["closing_lufs"] == pytest.approx(window_lufs(prev[-3 * SR:], SR), abs=0.3)
        diff = j["closing_lufs"] - j["opening_lufs"]
        assert j["bridge_db"] == (0.0 if abs(diff) < 1.0 else pytest.approx(max(-9, min(9, diff)), abs=0.01))


def test_clip_levels_equal_the_reference_meter():
    from emomusic.audio import integrated_lufs
    from emomusic.session.levels import clip_loudness

    rng = np.random.default_rng(5)
    for n in (int(0.3 * SR), 3 * SR + 17, 12 * SR + 5):
        audio = (rng.standard_normal((n, 2)) * np.linspace(0.001, 0.4, n)[:, None]).astype(np.float32)
        audio[n // 3: n // 2] = 0.0  # a silence the gates drop
        whole, body = clip_loudness(audio, SR, n * 2 // 3)
        # the K-weighting runs in float32 here (4x faster): within 0.001 LU of pyloudnorm
        assert whole == pytest.approx(integrated_lufs(audio, SR), abs=1e-3)
        assert body == pytest.approx(integrated_lufs(audio[: n * 2 // 3], SR), abs=1e-3)
    assert clip_loudness(np.zeros((SR, 2), np.float32), SR, SR // 2) == (-math.inf, -math.inf)


class _BlockingEngine(TinyEngine):
    """A TinyEngine whose first clip waits until the test says go (a build in progress)."""

    def __init__(self, started, go):
        super().__init__()
        self.started, self.go = started, go

    def generate(self, req: ClipRequest) -> Candidate:
        if req.index == 1:
            self.started.set()
            assert self.go.wait(30)
        return super().generate(req)


def test_two_builds_into_one_folder_do_not_share_it(tmp_path):
    import threading

    out = tmp_path / "s"
    started, go, result = threading.Event(), threading.Event(), {}

    def first():
        result["first"] = _build(_plan(), out, engine=_BlockingEngine(started, go))

    t = threading.Thread(target=first)
    t.start()
    try:
        assert started.wait(30)
        with pytest.raises(EmomusicError, match="being written by another") as e:  # refused at once
            _build(_plan(seed=9), out)
        assert "\n" not in str(e.value)
    finally:
        go.set()
        t.join(60)
    assert result["first"]["clips"] and (out / "session.wav").is_file()
    assert not list(tmp_path.glob(".s.*.partial")) and not (tmp_path / ".s.lock").exists()
    assert _build(_plan(seed=9), out)["clips"]  # once the first is done, the folder is free again


@pytest.mark.parametrize("field, value", [("name", "x\nEXTINF:-1,/etc/passwd"), ("description", "a\rb"),
                                          ("title", "clip\x00")])
def test_control_characters_in_plan_texts_are_refused(tmp_path, field, value):
    plan = _plan()
    if field == "title":
        plan.clips[0].title = value
    else:
        setattr(plan, field, value)
    with pytest.raises(EmomusicError, match="control characters"):
        _build(plan, tmp_path / "s")
    assert not (tmp_path / "s").exists()
    d = _plan().to_dict()
    d["name"] = "x\ny"
    with pytest.raises(EmomusicError, match="control characters"):
        SessionPlan.from_dict(d)


def test_worker_threads_do_not_change_the_output(tmp_path, monkeypatch):
    """Rendering on worker threads (stage 1) and finishing clips ahead (stage 2) give the same
    files, byte for byte, as one thread doing everything in order; the clip files are what
    session.wav holds between the openings, at their levels, under the true-peak ceiling."""
    import emomusic.session.assemble as assemble
    import emomusic.session.builder as builder
    from emomusic.audio import true_peak_db

    plan = _plan(minutes=1, clip_seconds=20)
    threaded = _build(plan, tmp_path / "a")
    monkeypatch.setattr(builder, "RENDER_WORKERS", 1)
    monkeypatch.setattr(assemble, "AHEAD", 1)
    serial = _build(plan, tmp_path / "b")
    assert (tmp_path / "a" / "session.wav").read_bytes() == (tmp_path / "b" / "session.wav").read_bytes()
    for c in threaded["clips"]:
        assert (tmp_path / "a" / c["files"]["wav"]).read_bytes() == (tmp_path / "b" / c["files"]["wav"]).read_bytes()
    assert [c["gain_db"] for c in threaded["clips"]] == [c["gain_db"] for c in serial["clips"]]
    session, sr = read_wav(tmp_path / "a" / "session.wav")
    assert true_peak_db(session) <= -1.0 + 0.01
    assert threaded["session_true_peak_dbtp"] == pytest.approx(true_peak_db(session), abs=0.05)
    fade = int(round(plan.crossfade_s * sr))
    checked = 0
    for c, w in zip(threaded["clips"][1:-1], plan.clips[1:-1]):
        clip, _ = read_wav(tmp_path / "a" / c["files"]["wav"])
        a = int(round(w.start_s * sr)) + fade + sr + int(assemble.JOIN_RAMP_S * sr)  # past the opening
        b = a + sr
        k = a - int(round(w.start_s * sr))
        if b - int(round(w.start_s * sr)) < clip.shape[0] - int(0.05 * sr):
            assert np.abs(session[a:b] - clip[k:k + sr]).max() <= 1.5 / 32767
            checked += 1
    assert checked >= 1
    assert threaded["loudness"]["limiter"]["ceiling_dbtp"] == -1.0


def test_timings_give_wall_and_cpu_seconds_per_stage(tmp_path):
    summary = _build(_plan(), tmp_path / "session")
    t = summary["timings_s"]
    for stage in ("generate", "estimate", "render", "write", "clips_total", "limit", "clip_wav", "session_wav", "files"):
        assert t[stage] >= 0 and t[f"{stage}_cpu"] >= 0, stage
    assert t["render_cpu"] > 0 and t["limit_cpu"] > 0  # measured on the worker threads
    assert t["clips_total_cpu"] <= t["clips_total"] + 0.05  # the main thread's CPU inside the stage's wall time



def test_scipy_is_imported_by_one_render_worker_not_the_main_thread(tmp_path):
    """The render workers' scipy (about 1.2 s of imports) is imported by the first worker while
    the main thread goes on choosing clips, and by that one thread only (two threads importing
    scipy at once can fail). A fresh interpreter, so that nothing imported scipy before."""
    import os
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(f"""
        import importlib.abc, sys, threading
        seen = []
        class Spy(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name.split(".")[0] == "scipy":
                    seen.append(threading.current_thread().name)
        sys.meta_path.insert(0, Spy())
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        from test_builder import TinyEngine, _build, _plan
        _build(_plan(minutes=0.5), {str(tmp_path / "s")!r}, engine=TinyEngine())
        print(sorted(set(seen)))
    """)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split() == ["['emomusic-render_0']"], run.stdout
