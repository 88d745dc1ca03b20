"""``emomusic analyze`` and ``emomusic emotions``: output schema, bad input, no torch."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from emomusic.cli import cli, main
from emomusic.io import write_piece
from emomusic.piece import Note, Piece, Tempo, Track


@pytest.fixture
def midi_file(tmp_path, piano_piece):
    path = tmp_path / "piece.mid"
    write_piece(piano_piece, path)
    return path


def run_main(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


def test_analyze_json_schema(midi_file):
    res = CliRunner().invoke(cli, ["analyze", str(midi_file), "--json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.output)
    assert {"valence", "arousal", "quadrant", "attributes", "key", "nearest_moods", "quadrant_probs"} <= set(d)
    assert -1 <= d["valence"] <= 1 and -1 <= d["arousal"] <= 1
    assert d["quadrant"] in ("Q1", "Q2", "Q3", "Q4")
    a = d["attributes"]
    for k in ("tempo_bpm", "mode", "key_tonic", "register", "pitch_spread", "note_density", "velocity", "articulation"):
        assert k in a
    assert a["tempo_bpm"] == pytest.approx(100.0) and a["mode"] == "major" and d["key"] == "C major"
    assert d["n_notes"] == 20 and len(d["nearest_moods"]) == 3
    assert sum(d["quadrant_probs"].values()) == pytest.approx(1.0, abs=1e-3)


def test_analyze_text_output(midi_file):
    res = CliRunner().invoke(cli, ["analyze", str(midi_file)])
    assert res.exit_code == 0, res.output
    for word in ("C major", "100.0 BPM", "valence", "arousal", "quadrant", "nearest moods"):
        assert word in res.output


def test_analyze_directions_on_contrasting_files(tmp_path):
    def piece(bpm, vel, minor):
        third = 3 if minor else 4
        notes = [Note(48 + p, b * 1.0, 1.0, vel) for b in range(32) for p in (0, third, 7)]
        notes += [Note(72 + [0, 2, third, 5, 7][i % 5], i * 0.25, 0.2, vel) for i in range(128)]
        return Piece(tracks=[Track("Piano", 0, False, notes)], tempos=[Tempo(bpm)])

    write_piece(piece(170, 115, False), tmp_path / "up.mid")
    write_piece(piece(50, 35, True), tmp_path / "down.mid")
    up = json.loads(CliRunner().invoke(cli, ["analyze", str(tmp_path / "up.mid"), "--json"]).output)
    down = json.loads(CliRunner().invoke(cli, ["analyze", str(tmp_path / "down.mid"), "--json"]).output)
    assert up["arousal"] > down["arousal"] and up["valence"] > down["valence"]
    assert up["attributes"]["mode"] == "major" and down["attributes"]["mode"] == "minor"


def test_analyze_format_override(tmp_path, piano_piece):
    path = tmp_path / "piece.bin"
    write_piece(piano_piece, path, fmt="midi")
    res = CliRunner().invoke(cli, ["analyze", str(path), "--format", "midi", "--json"])
    assert res.exit_code == 0 and json.loads(res.output)["key"] == "C major"


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("missing.mid", None, "no such file"),
        ("corrupt.mid", b"MThd\x00\x00\x00\x06garbage-not-midi", "cannot read"),
        ("random.mid", bytes(range(256)) * 4, "cannot read"),
        ("empty.mid", b"", "empty"),
        ("notes.txt", b"hello", "extension"),
    ],
)
def test_analyze_bad_input_one_line_exit_2(tmp_path, capsys, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    code, out, err = run_main(["analyze", str(path)], capsys)
    assert code == 2
    assert err.startswith("Error:") and message in err and err.count("\n") == 1
    assert "Traceback" not in err and out == ""


def test_analyze_midi_without_notes_and_folder(tmp_path, capsys):
    silent = tmp_path / "silent.mid"
    write_piece(Piece(tracks=[Track("Piano", 0, False, [])], tempos=[Tempo(90)]), silent)
    code, _, err = run_main(["analyze", str(silent)], capsys)
    assert code == 2 and "no notes" in err
    drums_only = tmp_path / "drums.mid"
    write_piece(Piece(tracks=[Track("Kit", 0, True, [Note(36, 0, 1, 100)])]), drums_only)
    code, _, err = run_main(["analyze", str(drums_only)], capsys)
    assert code == 2 and "pitched notes" in err
    folder = tmp_path / "dir.mid"
    folder.mkdir()
    code, _, err = run_main(["analyze", str(folder)], capsys)
    assert code == 2 and "folder" in err


def test_analyze_bad_estimator_path(midi_file, tmp_path, capsys):
    code, _, err = run_main(["analyze", str(midi_file), "--estimator", str(tmp_path / "none")], capsys)
    assert code == 2 and "estimator" in err


def test_analyze_abc_and_musicxml(tmp_path, piano_piece):
    """Other formats through emomusic.io.read_piece."""
    abc = tmp_path / "tune.abc"
    abc.write_text("X:1\nT:Test\nM:4/4\nL:1/4\nQ:1/4=90\nK:Am\nA B c d | e d c B | A c e a | e4 |]\n")
    res = CliRunner().invoke(cli, ["analyze", str(abc), "--json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.output)
    assert d["attributes"]["tempo_bpm"] == pytest.approx(90.0, rel=0.02) and d["key"] == "A minor"
    xml = tmp_path / "piece.musicxml"
    write_piece(piano_piece, xml)
    res = CliRunner().invoke(cli, ["analyze", str(xml), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["key"] == "C major"


def test_emotions_json_and_text():
    res = CliRunner().invoke(cli, ["emotions", "--json"])
    assert res.exit_code == 0
    d = json.loads(res.output)
    assert d["count"] == len(d["moods"]) >= 40
    row = next(m for m in d["moods"] if m["word"] == "calm")
    assert {"word", "valence", "arousal", "quadrant", "source"} <= set(row)
    assert row["quadrant"] == "Q4" and row["valence"] > 0 > row["arousal"]
    text = CliRunner().invoke(cli, ["emotions"]).output
    assert "calm" in text and "source" in text and "sad" in text
    q2 = json.loads(CliRunner().invoke(cli, ["emotions", "--json", "--quadrant", "q2"]).output)
    assert q2["count"] > 0 and all(m["quadrant"] == "Q2" for m in q2["moods"])
    by_v = json.loads(CliRunner().invoke(cli, ["emotions", "--json", "--sort", "valence"]).output)["moods"]
    assert [m["valence"] for m in by_v] == sorted((m["valence"] for m in by_v), reverse=True)


def test_emotions_bad_option_exit_2(capsys):
    code, _, _ = run_main(["emotions", "--quadrant", "Q5"], capsys)
    assert code == 2


def test_analyze_does_not_import_torch(midi_file, cli_imports):
    r = cli_imports(["analyze", midi_file, "--json"])
    assert r.codes == [0]
    assert not r.imported & {"torch", "transformers", "music21", "matplotlib", "sklearn"}
    assert '"quadrant"' in r.stdout


def test_console_script_end_to_end(midi_file):
    res = subprocess.run(
        [sys.executable, "-m", "emomusic", "analyze", str(midi_file), "--json"], capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0 and json.loads(res.stdout)["quadrant"] in ("Q1", "Q2", "Q3", "Q4")
    bad = subprocess.run(
        [sys.executable, "-m", "emomusic", "analyze", str(midi_file.with_name("nope.mid"))], capture_output=True, text=True
    )
    assert bad.returncode == 2 and bad.stderr.startswith("Error:") and "Traceback" not in bad.stderr
