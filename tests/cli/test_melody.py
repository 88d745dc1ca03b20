"""``emomusic melody`` and ``emomusic train melody``: formats, folders, bad input, seeds, training smoke test."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
from click.testing import CliRunner

from emomusic.cli import cli, main


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    import torch

    from emomusic.melody.model import MelodyLM, MelodyLMConfig, save_checkpoint
    from emomusic.melody.tokenizer import Tokenizer

    torch.manual_seed(0)
    tok = Tokenizer()
    path = tmp_path_factory.mktemp("cli_melody") / "ckpt"
    save_checkpoint(MelodyLM(MelodyLMConfig.preset("debug", len(tok))), path, {"tokens": tok.vocab})
    return str(path)


def run(args):
    return CliRunner().invoke(cli, args, catch_exceptions=False)


def exit_code(args):
    with pytest.raises(SystemExit) as e:
        main(args)
    return e.value.code


def _parses(abc_text):
    """music21 and abc2midi both accept the tune (a test without abc2midi skips, never passes)."""
    from emomusic.melody.validate import check_abc

    if shutil.which("abc2midi") is None:
        pytest.skip("abc2midi (Debian package abcmidi) is not installed")
    return check_abc(abc_text, missing_ok=False) is None


def test_abc_output(tmp_path, ckpt):
    out = tmp_path / "tune.abc"
    res = run(["melody", "--mood", "melancholic", "--bars", "4", "--checkpoint", ckpt, "-o", str(out)])
    assert res.exit_code == 0, res.output
    text = out.read_text()
    assert text.startswith("X:1\n") and "K:" in text and _parses(text)


@pytest.mark.parametrize("name,magic", [("t.mid", b"MThd"), ("t.wav", b"RIFF"), ("t.svg", b"<svg"), ("t.png", b"\x89PNG")])
def test_binary_formats(tmp_path, ckpt, name, magic):
    if name.endswith((".svg", ".png")) and shutil.which("abcm2ps") is None:
        pytest.skip("abcm2ps not installed")
    if name.endswith(".png"):
        from emomusic.io.engrave import png_converter

        if png_converter() is None:
            pytest.skip("no SVG->PNG converter (rsvg-convert or cairosvg)")
    out = tmp_path / name
    res = run(["melody", "-v", "0.5", "-a", "0.5", "--bars", "2", "--chords", "--checkpoint", ckpt, "-o", str(out)])
    assert res.exit_code == 0, res.output
    data = out.read_bytes()
    assert data.startswith(magic) or magic in data[:200]
    if name.endswith(".mid"):
        from emomusic.io import read_piece

        piece = read_piece(out)
        assert len([t for t in piece.tracks if t.notes]) == 2  # melody + chords


def test_musicxml_output(tmp_path, ckpt):
    out = tmp_path / "t.musicxml"
    res = run(["melody", "--mood", "calm", "--bars", "2", "--checkpoint", ckpt, "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "score-partwise" in out.read_text()


def test_many_into_folder_with_json(tmp_path, ckpt):
    out = tmp_path / "set"
    res = run(["melody", "--mood", "happy", "--n", "3", "--bars", "2", "--seed", "4", "--checkpoint", ckpt,
               "--json", "-o", str(out)])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    files = sorted(p.name for p in out.iterdir())
    assert files == ["melody_happy_001.abc", "melody_happy_002.abc", "melody_happy_003.abc"]
    assert [m["path"] for m in data["melodies"]] == [str(out / f) for f in files]
    assert data["emotion"]["quadrant"] == "Q1" and all(m["bars"] == 2 for m in data["melodies"])
    res = run(["melody", "--mood", "happy", "--n", "2", "--bars", "2", "--format", "midi", "--checkpoint", ckpt,
               "-o", str(out)])  # an existing folder keeps its other files
    assert res.exit_code == 0
    assert len(list(out.glob("*.abc"))) == 3 and len(list(out.glob("*.mid"))) == 2


def test_options_reach_the_tune(tmp_path, ckpt):
    out = tmp_path / "t.abc"
    res = run(["melody", "-v", "-0.5", "-a", "0.5", "--bars", "3", "--meter", "9/8", "--key", "Edor", "--tempo", "99",
               "--checkpoint", ckpt, "-o", str(out)])
    assert res.exit_code == 0, res.output
    lines = out.read_text().splitlines()
    assert "M:9/8" in lines and "K:Edor" in lines and "Q:1/4=99" in lines


def test_diversity_option(tmp_path, ckpt):
    """--diversity 0: every tune takes the template's bins; the default lets them differ (in --json)."""
    got = {}
    for div in ("0", None):
        out = tmp_path / f"d{div}"
        res = run(["melody", "--mood", "calm", "--n", "12", "--bars", "2", "--seed", "5", "--checkpoint", ckpt, "--json",
                   "-o", str(out)] + (["--diversity", div] if div else []))
        assert res.exit_code == 0, res.output
        got[div] = [m["settings"] for m in json.loads(res.stdout)["melodies"]]
    assert {(s["spread_bin"], s["density_bin"], s["tonal_scale"]) for s in got["0"]} == {(0, 0, 1.0)}  # calm: low bins
    assert len({(s["spread_bin"], s["density_bin"]) for s in got[None]}) > 1 and len({s["tonal_scale"] for s in got[None]}) > 6


def test_seed_reproducible(tmp_path, ckpt):
    outs = []
    for i, seed in enumerate(["7", "7", "8"]):
        o = tmp_path / f"s{i}.abc"
        assert run(["melody", "--mood", "calm", "--bars", "3", "--seed", seed, "--checkpoint", ckpt, "-o", str(o)]).exit_code == 0
        outs.append(o.read_text())
    assert outs[0] == outs[1] and outs[0] != outs[2]


@pytest.mark.parametrize("args,msg", [
    (["--bars", "0"], "bars"),
    (["--n", "0"], "n must"),
    (["--meter", "5/4"], "metre"),
    (["--key", "Hm"], "key"),
    (["--tempo", "1000"], "tempo"),
    (["--format", "ogg"], "format"),
    (["--diversity", "1.5"], "diversity"),
    (["--diversity", "x"], "diversity"),
    (["--checkpoint", "/nonexistent/ckpt"], "checkpoint"),
])
def test_bad_input_exits_2_without_output(tmp_path, ckpt, capsys, args, msg):
    out = tmp_path / "bad.abc"
    base = ["melody", "--mood", "sad", "-o", str(out)]
    if "--checkpoint" not in args:
        base += ["--checkpoint", ckpt]
    assert exit_code(base + args) == 2
    err = capsys.readouterr().err
    assert err.startswith("Error:") and msg in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_bad_emotion_and_paths(tmp_path, ckpt, capsys):
    assert exit_code(["melody", "--mood", "zzzz-not-a-mood", "-o", str(tmp_path / "a.abc")]) == 2
    assert exit_code(["melody", "-v", "2", "-a", "0", "-o", str(tmp_path / "a.abc")]) == 2
    assert exit_code(["melody", "--mood", "sad", "--checkpoint", ckpt, "-o", str(tmp_path / "a.txt")]) == 2
    f = tmp_path / "file.abc"
    f.write_text("keep")
    assert exit_code(["melody", "--mood", "sad", "--n", "2", "--checkpoint", ckpt, "-o", str(f)]) == 2
    assert f.read_text() == "keep"
    assert exit_code(["melody", "--mood", "sad", "--checkpoint", ckpt, "-o", str(tmp_path / "x.abc"),
                      "--format", "midi"]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.abc"]


def test_train_melody_smoke_and_resume(tmp_path):
    from helpers import load_file

    mod = load_file("tests/melody/conftest.py")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "tiny.abc").write_text(mod.TINY_CORPUS)
    out = tmp_path / "ck"
    env_args = ["train", "melody", "--corpus", str(corpus), "--preset", "debug", "--steps", "2", "--batch-size", "2",
                "--eval-every", "1", "--save-every", "1", "--json", "-o", str(out)]
    import os

    os.environ["EMOMUSIC_CACHE"] = str(tmp_path / "cache")
    try:
        res = run(env_args)
        assert res.exit_code == 0, res.output
        cfg = json.loads((out / "config.json").read_text())
        assert cfg["train"]["step"] == 2 and cfg["preset"] == "debug" and len(cfg["train"]["history"]) == 2
        # the training tunes' contour transitions are recorded (the bonus table is fitted afterwards by
        # scripts/melody_contour.py); the control-bin statistics stay as they were
        assert sum(map(sum, cfg["contour"]["counts"])) > 20 and "bonus" not in cfg["contour"]
        assert "contour" not in cfg["stats"] and "profiles" not in cfg["stats"] and isinstance(cfg["profiles"], dict)
        assert (out / "model.safetensors").exists() and (out / "optimizer.safetensors").exists()
        assert not list(out.glob("*.pt")) and not list(out.glob("*.bin"))
        res = run(env_args[:7] + ["3"] + env_args[8:] + ["--resume"])
        assert res.exit_code == 0, res.output
        cfg = json.loads((out / "config.json").read_text())
        assert cfg["train"]["step"] == 3 and len(cfg["train"]["history"]) == 3
        # the trained checkpoint generates
        res = run(["melody", "--mood", "sad", "--bars", "2", "--checkpoint", str(out), "-o", str(tmp_path / "t.abc")])
        assert res.exit_code == 0, res.output
        assert exit_code(["train", "melody", "--corpus", str(tmp_path / "missing"), "-o", str(out)]) == 2
        assert exit_code(["train", "melody", "--corpus", str(corpus), "--steps", "0", "-o", str(out)]) == 2
    finally:
        os.environ.pop("EMOMUSIC_CACHE", None)


def test_end_to_end_subprocess(tmp_path, ckpt):
    out = tmp_path / "e2e.abc"
    r = subprocess.run([sys.executable, "-m", "emomusic", "melody", "--mood", "melancholic", "--bars", "4",
                        "--checkpoint", ckpt, "-o", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert _parses(out.read_text())
    r = subprocess.run([sys.executable, "-m", "emomusic", "melody", "--mood", "melancholic", "--bars", "-3",
                        "-o", str(tmp_path / "no.abc")], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.startswith("Error:") and not (tmp_path / "no.abc").exists()


def test_melody_help_does_not_import_torch(cli_imports):
    r = cli_imports(["melody", "--help"])
    assert r.codes == [0]
    assert not r.imported & {"torch", "music21"}
