"""``emomusic clip`` and ``emomusic train musicgen-lora`` from the command line (tiny models)."""

import json
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from emomusic.cli import cli, main


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Every test here runs torch on one thread (the machine has two cores)."""


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from emomusic.clip.tiny import save_tiny_model, write_toy_dataset

    root = tmp_path_factory.mktemp("clipcli")
    tsv = write_toy_dataset(root / "toy", n_tracks=4, seconds=1.5)
    return {
        "base": save_tiny_model(root / "tiny", seed=0),
        "other": save_tiny_model(root / "tiny-other", seed=9),
        "melody": save_tiny_model(root / "tiny-melody", melody=True),
        "tsv": tsv,
        "audio": root / "toy" / "audio",
        "root": root,
    }


def _exit_code(args, capsys):
    with pytest.raises(SystemExit) as exc:
        main(args)
    err = capsys.readouterr().err
    return exc.value.code, err


def test_clip_writes_a_wav_of_the_asked_length(models, tmp_path):
    import soundfile as sf

    out = tmp_path / "calm.wav"
    res = CliRunner().invoke(cli, ["clip", "--model", str(models["base"]), "--mood", "calm", "--seconds", "1.5",
                                   "--seed", "3", "--json", "-o", str(out)])
    assert res.exit_code == 0, res.output
    info = json.loads(res.stdout)
    assert info["output"] == str(out) and info["sample_rate"] == 16000 and "calm" in info["prompt"]
    data, sr = sf.read(out)
    assert sr == 16000 and len(data) == 24000


def test_clip_resamples_and_continues(models, tmp_path):
    import soundfile as sf

    out = tmp_path / "long.wav"
    res = CliRunner().invoke(cli, ["clip", "--model", str(models["base"]), "-v", "-0.5", "-a", "0.6", "--seconds", "6",
                                   "--sample-rate", "22050", "--prompt", "dark synth", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "2 window(s)" in res.output
    info = sf.info(str(out))
    assert info.samplerate == 22050 and info.frames == 6 * 22050


def test_clip_with_melody(models, tmp_path, piano_piece):
    import soundfile as sf

    from emomusic.io import write_piece

    mid = tmp_path / "tune.mid"
    write_piece(piano_piece, mid)
    out = tmp_path / "mel.wav"
    res = CliRunner().invoke(cli, ["clip", "--model", str(models["melody"]), "--mood", "happy", "--melody", str(mid),
                                   "--seconds", "1", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert sf.info(str(out)).frames == 16000


@pytest.mark.parametrize(
    "extra, msg",
    [
        (["--seconds", "0"], "--seconds must be > 0"),
        (["--seconds", "-2"], "--seconds must be > 0"),
        (["-o", "OUT.mp3"], "must be a .wav"),
        (["--sample-rate", "10"], "sample rate"),
        (["--valence", "2", "--arousal", "0"], "valence"),
        (["--mood", "calmm"], "unknown mood word"),
        (["--model", "NOPE"], "model folder not found"),
        (["--adapter", "NOPE"], "adapter folder not found"),
    ],
)
def test_clip_bad_input_exit_2_one_line(models, tmp_path, capsys, extra, msg):
    base = ["clip", "--model", str(models["base"]), "--seconds", "1", "-o", str(tmp_path / "x.wav")]
    if not any(e in extra for e in ("--mood", "--valence")):
        base += ["--mood", "calm"]
    args = base + [str(tmp_path / e) if e in ("NOPE", "OUT.mp3") else e for e in extra]
    code, err = _exit_code(args, capsys)
    assert code == 2, err
    assert err.startswith("Error: ") and msg in err and err.count("\n") == 1
    assert not any(p.suffix == ".wav" for p in tmp_path.iterdir())  # nothing half-written


def test_melody_on_a_plain_model_is_exit_2(models, tmp_path, capsys, piano_piece):
    from emomusic.io import write_piece

    mid = tmp_path / "t.mid"
    write_piece(piano_piece, mid)
    code, err = _exit_code(["clip", "--model", str(models["base"]), "--mood", "calm", "--melody", str(mid),
                            "--seconds", "1", "-o", str(tmp_path / "x.wav")], capsys)
    assert code == 2 and "MusicGen-Melody" in err


def test_train_then_clip_with_adapter_end_to_end(models, tmp_path, capsys):
    import soundfile as sf

    adapter = tmp_path / "lora"
    main(["train", "musicgen-lora", "--base", str(models["base"]), "--data", str(models["tsv"]),
          "--audio-dir", str(models["audio"]), "-o", str(adapter), "--steps", "8", "--rank", "2",
          "--lr", "3e-3", "--clip-seconds", "1", "--threads", "1", "--json"])  # success returns (no exit)
    result = json.loads(capsys.readouterr().out)
    assert result["steps"] == 8 and (adapter / "adapter_model.safetensors").is_file()
    assert (adapter / "MODEL_CARD.md").read_text().count("musicgen-lora") >= 1
    out = tmp_path / "adapted.wav"
    main(["clip", "--model", str(models["base"]), "--adapter", str(adapter), "--mood", "sad",
          "--seconds", "1", "-o", str(out)])
    data, sr = sf.read(out)
    assert sr == 16000 and len(data) == 16000 and np.abs(data).max() > 0
    # the adapter is refused on another base
    code, err = _exit_code(["clip", "--model", str(models["other"]), "--adapter", str(adapter), "--mood", "sad",
                            "--seconds", "1", "-o", str(tmp_path / "y.wav")], capsys)
    assert code == 2 and "weights differ" in err and not (tmp_path / "y.wav").exists()


@pytest.mark.parametrize(
    "change, msg",
    [
        ({"--steps": "0"}, "--steps must be > 0"),
        ({"--rank": "0"}, "--rank must be > 0"),
        ({"--base": "NOPE"}, "model folder not found"),
        ({"--data": "NOPE"}, "no such TSV"),
        ({"--audio-dir": "NOPE"}, "audio folder not found"),
        ({"--cond-dropout": "1.5"}, "--cond-dropout"),
    ],
)
def test_train_bad_input_exit_2(models, tmp_path, capsys, change, msg):
    opts = {"--base": str(models["base"]), "--data": str(models["tsv"]), "--audio-dir": str(models["audio"]),
            "-o": str(tmp_path / "ad"), "--steps": "2"}
    opts.update({k: (str(tmp_path / v) if v == "NOPE" else v) for k, v in change.items()})
    args = ["train", "musicgen-lora"] + [x for kv in opts.items() for x in kv]
    code, err = _exit_code(args, capsys)
    assert code == 2 and msg in err, err
    assert not (tmp_path / "ad").exists()


def test_clip_help_does_not_import_torch(cli_imports):
    r = cli_imports(["clip", "--help"], ["train", "musicgen-lora", "--help"])
    assert r.codes == [0, 0]
    assert not r.imported & {"torch", "transformers", "peft"}
    assert "--adapter" in r.stdout and "--audio-dir" in r.stdout


@pytest.mark.slow
def test_console_script_end_to_end(models, tmp_path):
    """One real process: exit code 0 and a WAV; a bad model exits 2 with one line."""
    out = tmp_path / "p.wav"
    ok = subprocess.run([sys.executable, "-m", "emomusic", "clip", "--model", str(models["base"]), "--mood", "calm",
                         "--seconds", "0.5", "--threads", "1", "-o", str(out)], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr and out.is_file()
    bad = subprocess.run([sys.executable, "-m", "emomusic", "clip", "--model", str(tmp_path / "none"), "--mood", "calm",
                          "-o", str(tmp_path / "q.wav")], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.strip().startswith("Error: ") and "Traceback" not in bad.stderr
