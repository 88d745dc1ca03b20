"""``emomusic session``: plan-only, presets, edited plans, builds, bad input (exit 2, nothing left)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from emomusic.audio import read_wav
from emomusic.cli import cli, main
from emomusic.session.planner import SessionPlan

FAST = ["--minutes", "0.5", "--clip-seconds", "10", "--backend", "rules", "--sample-rate", "16000"]


def test_plan_only_prints_json():
    res = CliRunner().invoke(cli, ["session", "--from", "anxious", "--to", "calm", "--plan-only"])
    assert res.exit_code == 0, res.output
    plan = SessionPlan.from_json(res.output)
    assert len(plan.clips) == 30 and plan.start.label == "anxious" and plan.target.label == "calm"


def test_plan_only_options(tmp_path):
    out = tmp_path / "plan.json"
    res = CliRunner().invoke(cli, ["session", "--from", "-0.5,0.5", "--to", "0.5,-0.5", "--minutes", "10",
                                   "--clip-seconds", "20", "--heart-rate", "95", "--path", "arousal-first",
                                   "--strategy", "iso", "--seed", "7", "--plan-only", "--plan-out", str(out)])
    assert res.exit_code == 0, res.output
    plan = SessionPlan.load(out)
    assert plan.minutes == 10 and len(plan.clips) == 30 and plan.clips[0].tempo == pytest.approx(95)
    assert plan.path == "arousal-first" and plan.seed == 7


def test_preset_with_override():
    res = CliRunner().invoke(cli, ["session", "--preset", "anxiety-to-calm", "--minutes", "5", "--plan-only"])
    assert res.exit_code == 0, res.output
    plan = SessionPlan.from_json(res.output)
    assert plan.name == "anxiety-to-calm" and plan.minutes == 5 and plan.start.label == "anxious"


@pytest.mark.parametrize("name", ["anxiety-to-calm", "sadness-to-uplift", "fatigue-to-energy", "anger-to-calm",
                                  "sleep-wind-down", "music-care-u-sequence"])
def test_every_preset_plans(name):
    res = CliRunner().invoke(cli, ["session", "--preset", name, "--plan-only"])
    assert res.exit_code == 0, res.output
    SessionPlan.from_json(res.output)


def test_list_presets_json():
    res = CliRunner().invoke(cli, ["session", "--list-presets", "--json"])
    assert res.exit_code == 0
    names = {p["name"] for p in json.loads(res.output)}
    assert {"anxiety-to-calm", "sadness-to-uplift", "fatigue-to-energy", "anger-to-calm", "sleep-wind-down"} <= names


def test_build_and_rebuild_an_edited_plan(tmp_path):
    out = tmp_path / "out"
    res = CliRunner().invoke(cli, ["session", "--from", "anxious", "--to", "calm", *FAST, "-o", str(out), "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)
    assert summary["clips_count"] == 3 and summary["backend"] == "rules"
    audio, sr = read_wav(out / "session.wav")
    assert sr == 16000 and audio.shape[0] == 30 * 16000

    d = json.loads((out / "plan.json").read_text())
    d["clips"][1]["emotion"] = {"valence": 0.1, "arousal": 0.0}
    for k in ("tempo", "key", "loudness_db"):
        d["clips"][1].pop(k)
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(d))
    out2 = tmp_path / "out2"
    res = CliRunner().invoke(cli, ["session", "--plan", str(edited), "--backend", "rules", "--sample-rate", "16000",
                                   "-o", str(out2), "--json"])
    assert res.exit_code == 0, res.output
    s2 = json.loads(res.output)
    assert s2["clips"][1]["target"]["valence"] == pytest.approx(0.1)


def _exit_code(args):
    with pytest.raises(SystemExit) as exc:
        main(args)
    return exc.value.code


@pytest.mark.parametrize(
    "args,message",
    [
        (["--from", "anxous", "--to", "calm"], "unknown mood word"),
        (["--from", "anxious", "--to", "calm", "--minutes", "0"], "minutes must be > 0"),
        (["--from", "anxious", "--to", "calm", "--minutes", "-1"], "minutes must be > 0"),
        (["--from", "anxious", "--to", "calm", "--minutes", "1", "--clip-seconds", "90"], "longer than"),
        (["--from", "anxious", "--to", "calm", "--clip-seconds", "0"], "clip seconds"),
        (["--from", "anxious"], "give --from and --to"),
        (["--preset", "no-such-preset"], "unknown session preset"),
        (["--from", "anxious", "--to", "calm", "--heart-rate", "500"], "heart rate"),
        (["--from", "anxious", "--to", "calm", "--backend", "musicgen"], "--model"),
        (["--from", "anxious", "--to", "calm", "--tolerance", "-1", "--backend", "rules"], "tolerance"),
        (["--from", "anxious", "--to", "calm", "--backend", "rules", "--soundfont", "/no/such.sf2"], "SoundFont"),
        (["--from", "anxious", "--to", "calm", "--plan-out", "p.json"], "--plan-only"),
        (["--from", "anxious", "--to", "calm", "--seed", "-1"], "seed must be in 0"),
        (["--from", "anxious", "--to", "calm", "--model", "nonexist"], "model not found: nonexist"),
        (["--from", "anxious", "--to", "calm", "--backend", "melody", "--model", "nonexist"], "model not found"),
        (["--from", "anxious", "--to", "calm", "--threads", "0", "--backend", "rules"], "threads"),
        (["--from", "anxious", "--to", "calm", "--backend", "rules", "--loudness", "loud"], "loudness"),
        (["--from", "anxious", "--to", "calm", "--backend", "rules", "--loudness", "-3"], "-40..-6 LUFS"),
        (["--from", "anxious", "--to", "calm", "--backend", "rules", "--reverb", "2"], "reverb"),
    ],
)
def test_bad_input_exits_2_and_leaves_nothing(tmp_path, capsys, args, message):
    out = tmp_path / "out"
    assert _exit_code(["session", *args, "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Error: ") and message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_bad_plan_file(tmp_path, capsys):
    bad = tmp_path / "plan.json"
    bad.write_text("{}")
    assert _exit_code(["session", "--plan", str(bad), "-o", str(tmp_path / "o")]) == 2
    assert "lacks" in capsys.readouterr().err
    assert _exit_code(["session", "--plan", str(bad), "--from", "calm", "-o", str(tmp_path / "o")]) == 2
    assert "--plan fixes the journey" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_missing_output(capsys):
    assert _exit_code(["session", "--from", "anxious", "--to", "calm"]) == 2
    assert "-o" in capsys.readouterr().err


def test_subprocess_end_to_end(tmp_path):
    out = tmp_path / "journey"
    res = subprocess.run([sys.executable, "-m", "emomusic", "session", "--from", "sad", "--to", "happy", *FAST,
                          "-o", str(out)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "wrote" in res.stdout
    for name in ("session.wav", "session.mid", "playlist.m3u8", "session.json", "trajectory.png", "README.md"):
        assert (out / name).is_file()
    res = subprocess.run([sys.executable, "-m", "emomusic", "session", "--from", "sad", "--to", "happy",
                          "--minutes", "0", "-o", str(tmp_path / "bad")], capture_output=True, text=True)
    assert res.returncode == 2 and res.stderr.startswith("Error:") and not (tmp_path / "bad").exists()


def test_plan_only_does_not_import_torch(cli_imports):
    r = cli_imports(["session", "--from", "anxious", "--to", "calm", "--plan-only"])
    assert r.codes == [0]
    assert not r.imported & {"torch", "transformers", "matplotlib"}


def test_fresh_install_falls_back_to_rules_with_a_warning(tmp_path, monkeypatch):
    """No shipped checkpoints at all: the default backend falls back (with a warning) to the
    model-free engine and the estimator to the template inverse; session.json says so."""
    monkeypatch.setenv("EMOMUSIC_CHECKPOINTS", str(tmp_path / "no-checkpoints"))
    out = tmp_path / "out"
    res = CliRunner().invoke(cli, ["session", "--from", "anxious", "--to", "calm", "--minutes", "0.5",
                                   "--clip-seconds", "10", "--sample-rate", "16000", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "warning: symbolic backend unavailable" in res.output  # CliRunner mixes stderr in
    data = json.loads((out / "session.json").read_text())
    assert data["backend"] == "rules" and "estimator checkpoint missing" in data["estimator"]
    # asking for the symbolic backend explicitly is an error, not a fallback
    assert _exit_code(["session", "--from", "anxious", "--to", "calm", "--backend", "symbolic",
                       "-o", str(tmp_path / "o2")]) == 2
    assert not (tmp_path / "o2").exists()


@pytest.mark.parametrize("args,message", [
    (["--seed", "-1"], "seed must be in 0"),
    (["--model", "nonexist"], "model not found: nonexist"),  # an explicit model is never swapped for rules
    (["--preset", "anxiety-to-calm", "--seed", "-1"], "seed must be in 0"),
])
def test_bad_seed_or_model_fail_before_any_build(tmp_path, capsys, monkeypatch, args, message):
    import emomusic.session.builder as builder
    import emomusic.session.engines as engines

    def no_build(*a, **k):
        raise AssertionError("the build started")

    monkeypatch.setattr(builder, "build_session", no_build)
    monkeypatch.setattr(engines, "with_fallback", no_build)  # not even the backend check runs
    args = args if "--preset" in args else ["--from", "anxious", "--to", "calm", *args]
    assert _exit_code(["session", *args, "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Error: ") and message in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_options_derive_from_the_settings():
    from emomusic.cli.session import session as command
    from emomusic.session import BuildSettings, PlanSettings

    opts = {o.name: o for o in command.params}
    assert tuple(opts["backend"].type.choices) == BuildSettings.backends
    for name in ("max_retries", "tolerance", "sample_rate"):
        assert opts[name].default == getattr(BuildSettings(), name)
    for name in ("minutes", "clip_seconds", "match_minutes", "settle_minutes", "seed"):
        assert f"[default: {getattr(PlanSettings(), name):g}]" in opts[name].help


def test_progress_bar_follows_on_clip(tmp_path, monkeypatch):
    """The CLI's tqdm bar is fed by build_session's on_clip (one step per clip)."""
    import emomusic.cli.session as cli_session

    steps = []

    class Bar:
        def __init__(self, total, **kw):
            steps.append(("total", total))

        def update(self, n):
            steps.append(("update", n))

        def close(self):
            steps.append(("close",))

    import tqdm

    monkeypatch.setattr(tqdm, "tqdm", Bar)
    plan = cli_session._plan("anxious", "calm", (), None, None,
                             {"minutes": 0.5, "clip_seconds": 10, "match_minutes": None, "settle_minutes": None,
                              "path_": None, "strategy": None, "heart_rate": None, "seed": None})
    from emomusic.session import BuildSettings

    cli_session._build(plan, tmp_path / "o", BuildSettings(backend="rules", sample_rate=16000), False, 1, progress=True)
    assert steps == [("total", 3), ("update", 1), ("update", 1), ("update", 1), ("close",)]


def test_loudness_and_reverb_options(tmp_path):
    out = tmp_path / "out"
    res = CliRunner().invoke(cli, ["session", "--from", "anxious", "--to", "calm", *FAST, "--loudness", "off",
                                   "--reverb", "0", "-o", str(out), "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)
    assert summary["settings"]["loudness"] == "off" and summary["settings"]["reverb"] == 0.0
    assert summary["loudness"]["target_lufs"] is None
    assert all(c["gain_db"] == 0.0 for c in summary["clips"])  # clips as rendered
    assert all(j["bridge_db"] == 0.0 for j in summary["joins"])


def test_default_backend_check_runs_with_the_build_threads(tmp_path, capsys, monkeypatch):
    """Without --backend the default backend is checked (its model loaded) before the build,
    with torch's threads already set to --threads (torch's default made the load slower)."""
    import torch

    import emomusic.session as session_pkg
    from emomusic.errors import EmomusicError

    seen = []

    def check(settings):
        seen.append(torch.get_num_threads())
        raise EmomusicError("stop after the check")

    monkeypatch.setattr(session_pkg, "with_fallback", check)
    before = torch.get_num_threads()
    for threads in ("1", "2"):
        code = _exit_code(["session", "--from", "anxious", "--to", "calm", "--threads", threads,
                           "-o", str(tmp_path / "out")])
        assert code == 2 and "stop after the check" in capsys.readouterr().err
    assert seen == [1, 2]
    assert torch.get_num_threads() == before  # set back after the build
