"""Jobs: sessions, two at once, a full queue (429), TTL clean-up, abandoned and cancelled jobs,
thread safety around the library, and the ``emomusic serve`` command."""

from __future__ import annotations

import threading
import time
import zipfile
from io import BytesIO

import pytest

from emomusic.paths import checkpoint_path

needs_compose = pytest.mark.skipif(not (checkpoint_path("compose") / "diffgan" / "model.safetensors").is_file(),
                                   reason="shipped compose checkpoint missing")

SHORT = {"minutes": 0.5, "clip_seconds": 10, "backend": "rules"}


def test_session_job_builds_and_serves_its_files(client, wait_job, job_dirs):
    body = dict(SHORT, start={"valence": -0.4, "arousal": 0.6}, target="calm", via=[{"valence": 0.2, "arousal": -0.2}],
                seed=2)
    r = client.post("/api/session", json=body)
    assert r.status_code == 202, r.text
    started = r.json()
    assert started["clips"] == 3 and len(started["plan"]) == 3 and started["plan"][0]["start_s"] == 0
    job = wait_job(client, started["url"])
    assert job["state"] == "done" and job["progress"] == 1.0, job
    res = job["result"]
    assert len(res["clips"]) == 3 and res["backend"] == "rules"
    assert all(c["measured"] is not None and -1 <= c["measured"]["valence"] <= 1 for c in res["clips"])
    assert {"session_wav", "session_mid", "playlist", "zip"} <= set(res["files"])
    wav = client.get(res["files"]["session_wav"]).content
    assert wav[:4] == b"RIFF"
    z = zipfile.ZipFile(BytesIO(client.get(res["files"]["zip"]).content))
    names = set(z.namelist())
    assert {"session/session.wav", "session/session.mid", "session/playlist.m3u8"} <= names
    assert "#EXTM3U" in client.get(res["files"]["playlist"]).text
    assert job_dirs(client) == [res["id"]]


def test_session_from_preset_with_override(client, wait_job):
    r = client.post("/api/session", json={"preset": "sleep-wind-down", "minutes": 0.5, "clip_seconds": 10,
                                          "backend": "rules"})
    assert r.status_code == 202, r.text
    assert r.json()["minutes"] == 0.5
    assert wait_job(client, r.json()["url"])["state"] == "done"


@pytest.mark.parametrize("body,word", [
    ({"start": "anxious", "target": "calm", "minutes": 61}, "minutes"),
    ({"start": "anxious", "target": "calm", "minutes": 0}, "minutes"),
    ({"start": "anxious", "target": "calm", "minutes": float("nan")}, "minutes"),
    ({"start": "anxious", "target": "calm", "clip_seconds": 1}, "clip_seconds"),
    ({"start": "anxious", "target": "calm", "backend": "musicgen"}, "backend"),
    ({"start": "anxious", "target": "calm", "backend": "rules", "model": "/tmp/x"}, "model"),
    ({"start": "anxious", "minutes": 1}, "target"),
    ({"start": "nosuchmood", "target": "calm", "minutes": 1}, "unknown mood"),
    ({"start": {"valence": 3, "arousal": 0}, "target": "calm"}, "start"),
    ({"start": "anxious", "target": "calm", "via": ["calm"] * 5}, "via"),
    ({"preset": "no-such-preset"}, "unknown session preset"),
    ({"preset": "../../etc/passwd"}, "preset"),
    ({"preset": "/tmp/evil.json"}, "preset"),
    ({"start": "anxious", "target": "calm", "path": "zigzag"}, "path"),
])
def test_session_bad_input(client, job_dirs, body, word):
    import json

    r = client.post("/api/session", content=json.dumps(body), headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert word in detail and "\n" not in detail
    assert job_dirs(client) == []


def test_session_backend_that_cannot_run_is_refused_before_queueing(make_client, job_dirs, tmp_path):
    c = make_client(soundfont=tmp_path / "missing.sf2")
    r = c.post("/api/session", json=dict(SHORT, start="anxious", target="calm"))
    assert r.status_code == 422 and "SoundFont" in r.json()["detail"], r.text
    assert job_dirs(c) == []


@needs_compose
def test_two_requests_at_once_both_get_their_results(make_client):
    c = make_client(workers=2)
    out = {}

    def post(name, body):
        out[name] = c.post("/api/compose", json=body)

    threads = [threading.Thread(target=post, args=(f"r{i}", {"valence": 0.5 - i, "arousal": 0.3, "bars": 4, "seed": i}))
               for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert [out[k].status_code for k in ("r0", "r1")] == [200, 200]
    a, b = out["r0"].json(), out["r1"].json()
    assert a["id"] != b["id"] and a["emotion"]["valence"] == 0.5 and b["emotion"]["valence"] == -0.5
    assert c.get(a["files"]["midi"]).status_code == 200 and c.get(b["files"]["midi"]).status_code == 200


def test_two_sessions_at_once(make_client, wait_job):
    c = make_client(workers=2)
    ids = [c.post("/api/session", json=dict(SHORT, start=s, target="calm")).json() for s in ("anxious", "sad")]
    jobs = [wait_job(c, j["url"]) for j in ids]
    assert [j["state"] for j in jobs] == ["done", "done"]
    assert jobs[0]["result"]["files"]["session_wav"] != jobs[1]["result"]["files"]["session_wav"]


def test_queue_full_is_429(make_client, blocking_engines, wait_job):
    c = make_client(engines=blocking_engines, workers=1, max_queue=1)
    body = dict(SHORT, start="anxious", target="calm")
    first = c.post("/api/session", json=body)
    assert first.status_code == 202
    assert blocking_engines.started.wait(10)
    second = c.post("/api/session", json=body)  # waits in the queue
    assert second.status_code == 202 and c.get(second.json()["url"]).json()["state"] == "queued"
    third = c.post("/api/session", json=body)
    assert third.status_code == 429 and "busy" in third.json()["detail"]
    compose = c.post("/api/compose", json={"mood": "calm", "bars": 2})  # the one-shot calls share the bound
    assert compose.status_code == 429
    assert c.get("/api/health").json()["active_jobs"] == 2
    blocking_engines.release.set()
    assert wait_job(c, first.json()["url"])["state"] == "done"
    assert wait_job(c, second.json()["url"])["state"] == "done"
    assert c.post("/api/session", json=body).status_code == 202


def test_ttl_removes_finished_jobs(client, wait_job, job_dirs):
    jobs = client.app.state.jobs
    r = client.post("/api/session", json=dict(SHORT, start="anxious", target="calm")).json()
    done = wait_job(client, r["url"])
    url = done["result"]["files"]["session_wav"]
    assert client.get(url).status_code == 200
    assert jobs.sweep(time.monotonic() + jobs.ttl_s - 5) == []  # not yet
    assert jobs.sweep(time.monotonic() + jobs.ttl_s + 1) == [r["id"]]
    assert job_dirs(client) == []
    assert client.get(url).status_code == 404 and client.get(r["url"]).status_code == 404


def test_ttl_sweeper_runs_by_itself(make_client, wait_job, job_dirs):
    c = make_client(ttl_s=0.2, sweep_s=0.1)
    r = c.post("/api/session", json=dict(SHORT, start="anxious", target="calm")).json()
    wait_job(c, r["url"])
    t0 = time.monotonic()
    while job_dirs(c) and time.monotonic() - t0 < 10:
        time.sleep(0.1)
    assert job_dirs(c) == [] and c.get(r["url"]).status_code == 404


def test_abandoned_session_is_cancelled(make_client, blocking_engines, wait_job, job_dirs):
    c = make_client(engines=blocking_engines, abandon_s=30)
    r = c.post("/api/session", json=dict(SHORT, start="anxious", target="calm")).json()
    assert blocking_engines.started.wait(10)
    jobs = c.app.state.jobs
    jobs.sweep(time.monotonic() + 10)
    assert c.get(r["url"]).json()["state"] == "running"  # polled recently: kept
    jobs.sweep(time.monotonic() + 31)  # nobody polled for longer than abandon_s
    j = wait_job(c, r["url"])
    assert j["state"] == "cancelled" and "nobody asked" in j["error"]
    assert job_dirs(c) == []


def test_overlong_job_is_cancelled_and_client_can_cancel(make_client, blocking_engines, wait_job, job_dirs):
    c = make_client(engines=blocking_engines, max_job_s=60)
    r = c.post("/api/session", json=dict(SHORT, start="anxious", target="calm")).json()
    assert blocking_engines.started.wait(10)
    c.app.state.jobs.sweep(time.monotonic() + 61)
    j = wait_job(c, r["url"])
    assert j["state"] == "cancelled" and "longer than" in j["error"]
    blocking_engines.started.clear()
    r2 = c.post("/api/session", json=dict(SHORT, start="anxious", target="calm")).json()
    assert blocking_engines.started.wait(10)
    assert c.delete(r2["url"]).status_code == 200
    assert wait_job(c, r2["url"])["state"] == "cancelled"
    assert job_dirs(c) == []


def test_real_session_build_stops_when_cancelled(client, wait_job, job_dirs):
    """The clip engine is wrapped: a cancel between clips stops the builder and removes its folder."""
    r = client.post("/api/session", json={"start": "anxious", "target": "calm", "minutes": 2, "clip_seconds": 5,
                                          "backend": "rules"}).json()
    assert r["clips"] == 24
    t0 = time.monotonic()
    while (s := client.get(r["url"]).json())["progress"] == 0 and time.monotonic() - t0 < 30:
        time.sleep(0.02)
    assert s["state"] == "running" and 0 < s["progress"] < 0.5, s  # mid-build
    client.delete(r["url"])
    j = wait_job(client, r["url"])
    assert j["state"] == "cancelled" and "cancelled by the client" in j["error"], j
    assert job_dirs(client) == []


def test_failed_job_leaves_nothing(make_client, job_dirs):
    from emomusic.errors import EmomusicError
    from emomusic.web.engines import Engines

    class Failing(Engines):
        def compose(self, job, emotion, **kw):
            (job.folder / "half.mid").write_bytes(b"MThd")
            raise EmomusicError(f"could not write {job.folder / 'half.mid'}")

    class Crashing(Engines):
        def compose(self, job, emotion, **kw):
            raise RuntimeError("boom")

    c = make_client(engines=Failing())
    r = c.post("/api/compose", json={"mood": "calm"})
    assert r.status_code == 422 and r.json()["detail"] == "could not write half.mid"
    assert job_dirs(c) == []
    c2 = make_client(engines=Crashing())
    r = c2.post("/api/compose", json={"mood": "calm"})
    assert r.status_code == 500 and r.json()["detail"] == "internal error (RuntimeError: boom)"
    assert job_dirs(c2) == []


def test_uploads_are_parsed_in_a_child_process(tmp_path):
    """ABC / MusicXML uploads are read by music21 in a child process: its time limit acts there
    (SIGALRM needs a main thread), a reader that outlives the timeout is killed, and music21's
    process-wide ABC patch (emomusic.io.abc) never touches the server's threads."""
    from music21.abcFormat import translate

    from emomusic.errors import PieceFormatError
    from emomusic.web.engines import Engines, read_upload
    from emomusic.web.jobs import JobManager

    original = translate.parseABCNote
    abc = "X:1\nT:t\nM:4/4\nL:1/8\nK:C\n[CE]2- [CE]2 G4|c2B2 A4|\n"
    jm = JobManager(tmp_path / "jobs", workers=4, max_queue=16)
    eng = Engines()

    def work(job):
        p = job.folder / "x.abc"
        p.write_text(abc)
        return eng.analyze(job, p, "abc")

    jobs = [jm.submit("analyze", work) for _ in range(4)]
    for j in jobs:
        j.future.result(120)
    assert all(j.state == "done" and j.result["notes"] == 6 for j in jobs), [j.error for j in jobs]
    assert translate.parseABCNote is original
    jm.shutdown()
    slow = tmp_path / "t.abc"
    slow.write_text(abc)
    with pytest.raises(PieceFormatError, match="took longer than"):
        read_upload(slow, "abc", timeout=0.05)  # the child cannot even start in time: killed
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".piece") == []


def test_torch_threads_set_at_start(make_client):
    import torch

    make_client(torch_threads=1)
    assert torch.get_num_threads() == 1


def test_settings_validation():
    from emomusic.errors import EmomusicError
    from emomusic.web.config import Settings

    for bad in ({"workers": 0}, {"max_queue": -1}, {"ttl_s": float("nan")}, {"port": 70000}, {"nope": 1}):
        with pytest.raises(EmomusicError):
            Settings.from_dict(bad)
    s = Settings.from_dict(Settings(workers=2).to_dict())
    assert s.workers == 2 and not s.public and Settings(host="0.0.0.0").public


def test_serve_command(monkeypatch, tmp_path):
    from click.testing import CliRunner

    import uvicorn

    from emomusic.cli import cli

    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append((app, kw)))
    r = CliRunner().invoke(cli, ["serve", "--work-dir", str(tmp_path), "--workers", "2"])
    assert r.exit_code == 0, r.output
    app, kw = calls[-1]
    assert kw["host"] == "127.0.0.1" and kw["port"] == 8000 and "warning" not in r.output
    assert app.state.settings.workers == 2
    r = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0", "--port", "8123", "--work-dir", str(tmp_path)])
    assert r.exit_code == 0 and "warning: listening on 0.0.0.0" in r.output and calls[-1][1]["port"] == 8123
    for args in (["--port", "99999"], ["--workers", "0"], ["--ttl", "0"], ["--soundfont", str(tmp_path / "no.sf2")]):
        from emomusic.cli import main

        with pytest.raises(SystemExit) as exc:
            main(["serve", "--work-dir", str(tmp_path), *args])
        assert exc.value.code == 2, args


def test_kept_results_are_bounded(tmp_path):
    from emomusic.web.jobs import JobManager

    jm = JobManager(tmp_path / "jobs", workers=1, max_queue=4, max_kept=3)

    def work(job):
        (job.folder / "f.txt").write_text("x")
        return {}

    ids = []
    for _ in range(5):
        j = jm.submit("t", work)
        j.future.result(10)
        ids.append(j.id)
    kept = sorted(p.name for p in (tmp_path / "jobs").iterdir())
    assert kept == sorted(ids[-3:])  # the oldest results went first
    assert jm.get(ids[0]) is None and jm.file(ids[-1], "f.txt") is None  # unregistered name
    jm.shutdown()
    assert not (tmp_path / "jobs").exists()


def test_server_removes_its_folder_but_not_the_work_dir(tmp_path):
    from fastapi.testclient import TestClient

    from emomusic.web.config import Settings
    from emomusic.web.main import create_app

    work = tmp_path / "work"
    work.mkdir()
    (work / "mine.txt").write_text("keep me")
    app = create_app(Settings(work_dir=work))
    with TestClient(app) as c:
        root = c.app.state.jobs.root
        assert root.parent == work and root.is_dir()
    assert not root.exists() and (work / "mine.txt").read_text() == "keep me"


def test_one_shot_request_whose_job_is_cancelled_before_it_starts(make_client, blocking_engines):
    """A compose waiting in the queue when its job is cancelled (e.g. shutdown) answers 503, one line."""
    c = make_client(engines=blocking_engines, workers=1, max_queue=2)
    c.post("/api/session", json=dict(SHORT, start="anxious", target="calm"))
    assert blocking_engines.started.wait(10)
    jobs = c.app.state.jobs
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("r", c.post("/api/compose", json={"mood": "calm", "bars": 2})))
    t.start()
    t0 = time.monotonic()
    while jobs.active_count() < 2 and time.monotonic() - t0 < 10:
        time.sleep(0.02)
    queued = next(j for j in list(jobs._jobs.values()) if j.kind == "compose")
    jobs.cancel(queued, "the server is shutting down")
    t.join(10)
    r = out["r"]
    assert r.status_code == 503 and r.json()["detail"] == "cancelled: the server is shutting down"
    blocking_engines.release.set()
