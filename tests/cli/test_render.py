"""``emomusic render``: good paths, bad inputs, exit codes, no partial files."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from emomusic.cli import cli, main
from emomusic.io import write_piece
from emomusic.sf2 import write_simple_soundfont


@pytest.fixture
def sine_sf2(tmp_path):
    x = 0.8 * np.sin(2 * np.pi * 440 * np.arange(4400) / 44000)
    return write_simple_soundfont(tmp_path / "sine.sf2", [dict(samples=x, sample_rate=44000, root_key=69, loop=(1000, 3000))])


@pytest.fixture
def midi(tmp_path, piano_piece):
    return write_piece(piano_piece, tmp_path / "in.mid")


def run_main(args) -> int:
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    return exc.value.code


def test_render_midi_json(tmp_path, midi, sine_sf2, piano_piece):
    out = tmp_path / "out.wav"
    res = CliRunner().invoke(cli, ["render", str(midi), str(out), "--soundfont", str(sine_sf2), "--json"])
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)
    assert info["sample_rate"] == 44100 and info["channels"] == 2
    assert info["seconds"] >= piano_piece.duration_seconds
    assert 0 < info["peak"] < 1.0
    data, sr = sf.read(str(out), always_2d=True)
    assert sr == 44100 and data.shape[1] == 2
    assert data.shape[0] / sr == pytest.approx(info["seconds"], abs=1e-3)
    # levelled to -16 LUFS unless the -1 dBTP ceiling stops it first
    assert info["loudness_target_lufs"] == -16.0 and info["true_peak_dbtp"] <= -0.95
    assert info["loudness_lufs"] == pytest.approx(-16.0, abs=0.2) or info["true_peak_dbtp"] >= -1.1
    assert info["synth"] in ("fluidsynth", "numpy")


def test_render_options_synth_loudness_reverb(tmp_path, midi, sine_sf2):
    from emomusic.audio import integrated_lufs

    runner = CliRunner()
    outs = {}
    for name, extra in [("dry", ["--loudness", "-30"]), ("wet", ["--loudness", "-30", "--reverb", "0.5"]),
                        ("off", ["--loudness", "off"])]:
        out = tmp_path / f"{name}.wav"
        res = runner.invoke(cli, ["render", str(midi), str(out), "-s", str(sine_sf2), "--synth", "numpy", "--json", *extra])
        assert res.exit_code == 0, res.output
        outs[name] = (json.loads(res.output), *sf.read(str(out), always_2d=True))
    info, dry, sr = outs["dry"]
    assert info["synth"] == "numpy" and integrated_lufs(dry, sr) == pytest.approx(-30.0, abs=0.1)
    winfo, wet, _ = outs["wet"]
    assert wet.shape[0] == pytest.approx(dry.shape[0] + 2 * sr, abs=2)  # the reverb tail
    def rms(x):
        return float(np.sqrt(np.mean(np.square(x))))

    tail = wet[dry.shape[0]: dry.shape[0] + sr // 2]  # where the dry render has ended
    assert rms(tail) > 1e-3 * rms(wet) and rms(wet[-2000:]) < 0.5 * rms(tail)  # a decaying tail
    oinfo, off, _ = outs["off"]
    assert oinfo["loudness_target_lufs"] is None and oinfo["loudness_lufs"] != pytest.approx(-16.0, abs=0.5)


def test_bad_render_options_exit_2(tmp_path, midi, sine_sf2, capsys):
    for args, word in [(["--loudness", "loud"], "loudness"), (["--loudness", "0"], "loudness"),
                       (["--reverb", "2"], "reverb"), (["--synth", "timidity"], "synth")]:
        assert run_main(["render", midi, tmp_path / "out.wav", "-s", sine_sf2, *args]) == 2
        assert word in capsys.readouterr().err.lower()
    assert _no_wav(tmp_path)


def test_explicit_fluidsynth_falls_back_with_a_message(tmp_path, midi, sine_sf2, monkeypatch):
    from emomusic import render_fluidsynth

    monkeypatch.setitem(render_fluidsynth._STATE, "mod", None)  # as if libfluidsynth were missing
    out = tmp_path / "f.wav"
    res = CliRunner().invoke(cli, ["render", str(midi), str(out), "-s", str(sine_sf2), "--synth", "fluidsynth", "--json"])
    assert res.exit_code == 0, res.output
    assert "FluidSynth is not available" in res.stderr
    assert json.loads(res.stdout)["synth"] == "numpy"
    res = CliRunner().invoke(cli, ["render", str(midi), str(tmp_path / "a.wav"), "-s", str(sine_sf2)])
    assert res.exit_code == 0 and "FluidSynth" not in res.stderr  # auto: silent fallback


@pytest.mark.parametrize("ext", [".abc", ".musicxml"])
def test_render_abc_and_musicxml(tmp_path, piano_piece, sine_sf2, ext):
    src = write_piece(piano_piece, tmp_path / f"in{ext}")
    out = tmp_path / "o.wav"
    res = CliRunner().invoke(cli, ["render", str(src), str(out), "-s", str(sine_sf2), "--sample-rate", "22050"])
    assert res.exit_code == 0, res.output
    assert "wrote" in res.output
    assert sf.info(str(out)).samplerate == 22050


def test_render_with_default_soundfont(tmp_path, midi, piano_piece):
    from emomusic.audio import chroma

    out = tmp_path / "d.wav"
    main(["render", str(midi), str(out)])  # success returns normally
    data, sr = sf.read(str(out), always_2d=True)
    assert piano_piece.duration_seconds <= data.shape[0] / sr <= piano_piece.duration_seconds + 6
    # the piece is in C major: its scale's pitch classes carry nearly all the chroma energy
    c = chroma(data, sr).sum(axis=0)
    assert c[[0, 2, 4, 5, 7, 9, 11]].sum() > 0.85 * c.sum()


def _no_wav(folder) -> bool:
    return not [p for p in os.listdir(folder) if p.endswith(".wav") or ".wav." in p]


@pytest.mark.parametrize(
    "content,suffix",
    [(b"", ".mid"), (b"MThd garbage", ".mid"), (b"X:1\nT:x\n", ".abc"), (b"<score", ".musicxml"), (b"hello", ".txt")],
    ids=["empty-midi", "corrupt-midi", "abc-without-key", "broken-xml", "unknown-extension"],
)
def test_bad_input_exits_2_without_output(tmp_path, sine_sf2, content, suffix, capsys):
    src = tmp_path / f"bad{suffix}"
    src.write_bytes(content)
    assert run_main(["render", src, tmp_path / "out.wav", "--soundfont", sine_sf2]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert _no_wav(tmp_path)


def test_missing_input(tmp_path, sine_sf2, capsys):
    assert run_main(["render", tmp_path / "nope.mid", tmp_path / "out.wav", "-s", sine_sf2]) == 2
    assert "no such file" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["missing", "garbage", "folder"])
def test_bad_soundfont_exits_2(tmp_path, midi, kind, capsys):
    sf2 = tmp_path / "x.sf2"
    if kind == "garbage":
        sf2.write_bytes(b"RIFF\x04\x00\x00\x00junk")
    elif kind == "folder":
        sf2.mkdir()
    assert run_main(["render", midi, tmp_path / "out.wav", "--soundfont", sf2]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Error: ") and "SoundFont" in err
    assert _no_wav(tmp_path)


def test_bad_options_exit_2(tmp_path, midi, sine_sf2, capsys):
    assert run_main(["render", midi, tmp_path / "out.mp3", "-s", sine_sf2]) == 2
    assert ".wav" in capsys.readouterr().err
    assert run_main(["render", midi, tmp_path / "out.wav", "-s", sine_sf2, "--sample-rate", "5"]) == 2
    assert "sample rate" in capsys.readouterr().err
    assert run_main(["render", midi, tmp_path / "out.wav", "--sample-rate", "fast"]) == 2
    assert _no_wav(tmp_path)


def test_unwritable_output_exits_2(tmp_path, midi, sine_sf2, capsys):
    # a path under a file cannot be created, whoever runs the test (root included)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert run_main(["render", midi, blocker / "out.wav", "-s", sine_sf2]) == 2
    assert capsys.readouterr().err.startswith("Error: ")
    # an existing folder in the way of the output
    (tmp_path / "dir.wav").mkdir()
    assert run_main(["render", midi, tmp_path / "dir.wav", "-s", sine_sf2]) == 2
    if os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        try:
            assert run_main(["render", midi, ro / "out.wav", "-s", sine_sf2]) == 2
            assert os.listdir(ro) == []
        finally:
            ro.chmod(0o700)


def test_failure_during_write_leaves_no_file(tmp_path, midi, sine_sf2, monkeypatch):
    import soundfile

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(soundfile, "write", boom)
    monkeypatch.setattr(soundfile.SoundFile, "write", boom)  # the render is written block by block
    assert run_main(["render", midi, tmp_path / "out.wav", "-s", sine_sf2]) == 2
    assert _no_wav(tmp_path)


def test_end_to_end_subprocess_without_torch(tmp_path, midi, sine_sf2, cli_imports):
    out = tmp_path / "e.wav"
    r = cli_imports(["render", midi, out, "-s", sine_sf2])
    assert r.codes == [0]
    assert "torch" not in r.imported
    assert out.exists()
    bad = subprocess.run([sys.executable, "-m", "emomusic", "render", str(tmp_path / "none.mid"), str(out)],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.startswith("Error: ") and "Traceback" not in bad.stderr
