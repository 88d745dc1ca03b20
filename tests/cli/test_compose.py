"""``emomusic compose`` with the shipped checkpoint: files a DAW opens, --n folders, bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import mido
import pytest
from click.testing import CliRunner

from emomusic.cli import cli, main

# The shipped compose checkpoint is part of the package: a missing or broken one fails these tests.


def _run(args):
    return CliRunner().invoke(cli, args, catch_exceptions=False)


def test_compose_writes_daw_ready_midi(tmp_path):
    out = tmp_path / "happy.mid"
    res = _run(["compose", "--valence", "0.7", "--arousal", "0.6", "-o", str(out)])
    assert res.exit_code == 0, res.output
    mid = mido.MidiFile(out)
    assert mid.type == 1 and mid.ticks_per_beat == 480
    names = [t.name for t in mid.tracks]
    assert "Melody" in names and "Accompaniment" in names
    metas = [m for t in mid.tracks for m in t if m.is_meta]
    types = {m.type for m in metas}
    assert {"set_tempo", "time_signature", "key_signature", "marker"} <= types
    markers = [m.text for m in metas if m.type == "marker" and m.text.startswith("emotion ")]
    assert len(markers) == 4 and markers[0] == "emotion v=0.70 a=0.60 Q1"
    programs = [m for t in mid.tracks for m in t if m.type == "program_change"]
    assert programs
    from emomusic.io import read_piece

    p = read_piece(out)
    assert p.n_bars == 16 and len(p.notes) > 16


def test_compose_n_folder_json_and_morph(tmp_path):
    out = tmp_path / "set"
    res = _run(["compose", "--mood", "sad", "--to", "0.6,0.6", "--n", "3", "--bars", "8", "--json", "-o", str(out)])
    assert res.exit_code == 0, res.output
    files = sorted(out.iterdir())
    assert [f.name for f in files] == ["compose_001.mid", "compose_002.mid", "compose_003.mid"]
    info = json.loads(res.output)
    assert info["n"] == 3 and len(info["files"]) == 3
    texts = [m["text"] for m in info["files"][0]["markers"] if m["text"].startswith("emotion ")]
    assert len(texts) == 2 and texts[0] != texts[1]
    assert len({tuple(f["markers"][0].values()) for f in info["files"]}) == 1
    assert len({f.read_bytes() for f in files}) == 3  # every piece of a batch is different


def test_diversity_option_and_styles_in_json(tmp_path):
    """Each file's player style is in --json (the one compose drew for it); --diversity 0 plays
    every piece with the plain rules, and that changes the notes."""
    from emomusic.compose.style import PLAIN, draw_style

    got = {}
    for div in (None, "0"):
        out = tmp_path / f"d{div}"
        res = _run(["compose", "--mood", "happy", "--n", "2", "--bars", "8", "--seed", "5", "--json", "-o", str(out)]
                   + (["--diversity", div] if div else []))
        assert res.exit_code == 0, res.output
        got[div] = json.loads(res.output)
    assert got[None]["diversity"] == 1.0 and got["0"]["diversity"] == 0.0
    assert [f["style"] for f in got[None]["files"]] == [draw_style(5).to_dict(), draw_style(6).to_dict()]
    assert [f["style"] for f in got["0"]["files"]] == [PLAIN.to_dict()] * 2
    assert [f["notes"] for f in got[None]["files"]] != [f["notes"] for f in got["0"]["files"]]
    res = _run(["compose", "--mood", "happy", "--bars", "4", "--no-texture", "--json", "-o", str(tmp_path / "t.mid")])
    assert json.loads(res.output)["files"][0]["style"] is None  # no texture, no player


def test_compose_to_valence_arousal_and_no_template(tmp_path):
    from emomusic.compose import compose
    from emomusic.emotion import Emotion
    from emomusic.io import read_piece

    out = tmp_path / "x.mid"
    res = _run(["compose", "-v", "-0.5", "-a", "0.5", "--to-valence", "0.5", "--to-arousal", "-0.5", "--no-template",
                "--bars", "8", "--steps", "2", "--guidance", "1", "-o", str(out)])
    assert res.exit_code == 0, res.output
    # the journey: 2-bar segments at -0.5, -1/6, +1/6, +0.5 valence (arousal mirrored); a marker
    # every 4 bars holds its section's mean: (-1/3, +1/3) at beat 0, (+1/3, -1/3) at beat 16
    mid = mido.MidiFile(out)
    tick, marks = 0, []
    for m in mid.tracks[0]:
        tick += m.time
        if m.type == "marker":
            marks.append((tick / mid.ticks_per_beat, m.text))
    assert [mk for mk in marks if mk[1].startswith("emotion")] == [
        (0.0, "emotion v=-0.33 a=0.33 Q2"), (16.0, "emotion v=0.33 a=-0.33 Q4")]
    # beside them the default form of 8 bars: a 4-bar phrase and its varied answer
    assert [mk for mk in marks if not mk[1].startswith("emotion")] == [(0.0, "A"), (16.0, "A'")]
    # --no-template is the API's apply_template=False: the same notes, note for note (the CLI
    # adds no music of its own); the template would change them
    kw = dict(to=Emotion(0.5, -0.5), bars=8, steps=2, guidance=1.0, seed=0)
    (raw,) = compose(Emotion(-0.5, 0.5), apply_template=False, **kw)
    (templated,) = compose(Emotion(-0.5, 0.5), **kw)
    back = read_piece(out)
    got = sorted((n.pitch, round(n.start, 3), round(n.duration, 3), n.velocity) for n in back.notes)
    want = sorted((n.pitch, round(n.start, 3), round(n.duration, 3), n.velocity) for n in raw.notes)
    assert got == want
    assert want != sorted((n.pitch, round(n.start, 3), round(n.duration, 3), n.velocity) for n in templated.notes)
    assert back.tempo == pytest.approx(raw.tempo, abs=1e-3)


@pytest.mark.parametrize("args, msg", [
    (["--valence", "2", "--arousal", "0"], "valence"),
    (["--valence", "nan", "--arousal", "0"], "valence"),
    (["--mood", "flibbertigibbet"], "flibbertigibbet"),
    (["--mood", "calm", "--to", "nonsenseword"], "--to"),
    (["--mood", "calm", "--to-valence", "0.5"], "go together"),
    (["--mood", "calm", "--steps", "9"], "trained with"),
    (["--mood", "calm", "--bars", "0"], "--bars"),
    (["--mood", "calm", "--guidance", "-1"], "guidance"),
    (["--mood", "calm", "--format", "mp3"], "format"),
    (["--mood", "calm", "--key", "H#"], "key"),
    (["--mood", "calm", "--diversity", "1.5"], "diversity"),
    (["--mood", "calm", "--diversity", "much"], "diversity"),
])
def test_bad_input_exits_2_without_output(tmp_path, capsys, args, msg):
    out = tmp_path / "o.mid"
    with pytest.raises(SystemExit) as exc:
        main(["compose", *args, "-o", str(out)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("Error:") and msg in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_missing_checkpoint_and_unwritable_path(tmp_path, capsys):
    out = tmp_path / "o.mid"
    with pytest.raises(SystemExit) as exc:
        main(["compose", "--mood", "calm", "--checkpoint", str(tmp_path / "none"), "-o", str(out)])
    assert exc.value.code == 2 and "checkpoint" in capsys.readouterr().err
    assert not out.exists()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SystemExit) as exc:
        main(["compose", "--mood", "calm", "-o", str(blocker / "sub" / "o.mid")])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["compose", "--mood", "calm", "--n", "2", "-o", str(tmp_path / "x.mid")])
    assert exc.value.code == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_read_only_folder(unwritable_dir, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["compose", "--mood", "calm", "-o", str(unwritable_dir / "o.mid")])
    assert exc.value.code == 2
    assert "cannot write" in capsys.readouterr().err


def test_subprocess_end_to_end(tmp_path):
    out = tmp_path / "happy.mid"
    r = subprocess.run([sys.executable, "-m", "emomusic", "compose", "--valence", "0.7", "--arousal", "0.6", "-o", str(out)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert out.stat().st_size > 100
    r = subprocess.run([sys.executable, "-m", "emomusic", "compose", "--valence", "3", "-a", "0", "-o", str(out)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.startswith("Error:") and "Traceback" not in r.stderr


def test_train_commands_validate_before_work(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "vae", "--data", str(tmp_path / "missing"), "-o", str(tmp_path / "v")])
    assert exc.value.code == 2 and "not found" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["train", "diffgan", "--vae", str(tmp_path / "nov"), "--emopia", str(tmp_path), "-o", str(tmp_path / "d")])
    assert exc.value.code == 2 and "checkpoint" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["train", "vae", "--data", str(tmp_path), "--steps", "0", "-o", str(tmp_path / "v")])
    assert exc.value.code == 2 and "--steps" in capsys.readouterr().err
    # a decoder-only fine-tune needs the VAE it starts from
    for args, msg in ((["--decoder-only"], "needs --init-from"), (["--init-from", str(tmp_path)], "no VAE checkpoint")):
        with pytest.raises(SystemExit) as exc:
            main(["train", "vae", "--data", str(tmp_path), *args, "-o", str(tmp_path / "v")])
        err = capsys.readouterr().err
        assert exc.value.code == 2 and msg in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "v").exists()


# -- --form (issue #11) --------------------------------------------------------------------------
def test_form_markers_json_and_defaults(tmp_path):
    from emomusic.form import FormPlan, form_from_markers
    from emomusic.io import read_piece

    out = tmp_path / "song.mid"
    res = _run(["compose", "--mood", "calm", "--form", "AA'BA", "--seed", "3", "--json", "-o", str(out)])
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)
    plan = FormPlan.from_dict(info["form"])
    assert plan.text == "AA'BA" and info["form"]["phrase_bars"] == 4
    assert [s["cadence"] for s in info["form"]["sections"]] == ["half", "authentic", "half", "authentic"]
    back = read_piece(out)  # the section markers survive the MIDI file
    assert form_from_markers(back.markers, back.n_bars).labels == ["A", "A'", "B", "A"]
    assert sum(m.text.startswith("emotion ") for m in back.markers) == 4  # beside the emotion markers
    assert info["files"][0]["form"] == info["form"]
    # defaults by length: 16 bars -> 4 phrases of 4 bars, 32 -> phrases of 8; each file in its own
    # form (drawn with its seed), reported per file and written as its markers
    for bars, phrase in ((16, 4), (32, 8)):
        res = _run(["compose", "--mood", "happy", "--bars", str(bars), "--n", "3", "--seed", "4", "--json",
                    "-o", str(tmp_path / f"d{bars}")])
        assert res.exit_code == 0, res.output
        info = json.loads(res.output)
        assert info["form"] is None
        for f in info["files"]:
            form = f["form"]
            assert form["phrase_bars"] == phrase and len(form["sections"]) == 4
            assert [s["start_bar"] for s in form["sections"]] == [0, phrase, 2 * phrase, 3 * phrase]
            back = read_piece(f["path"])
            assert form_from_markers(back.markers, bars).text == form["form"]


def test_form_none_and_musicxml_rehearsal_marks(tmp_path):
    from emomusic.io import read_piece

    res = _run(["compose", "--mood", "sad", "--form", "none", "--json", "-o", str(tmp_path / "n.mid")])
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)
    assert info["form"]["form"] == "none" and len(info["form"]["sections"]) == 1
    assert all(m["text"].startswith("emotion ") for m in info["files"][0]["markers"])
    xml = tmp_path / "s.musicxml"
    res = _run(["compose", "--mood", "sad", "--form", "ABAB", "-o", str(xml)])
    assert res.exit_code == 0, res.output
    assert xml.read_text().count("<rehearsal") == 4
    back = read_piece(xml)
    assert [(m.text, m.beat) for m in back.markers if not m.text.startswith("emotion ")] == [
        ("A", 0.0), ("B", 16.0), ("A", 32.0), ("B", 48.0)]


@pytest.mark.parametrize("args, msg", [
    (["--form", "AXB?"], "unknown symbol '?'"),
    (["--form", "AAB"], "do not divide 16 bars"),
    (["--form", "ABCDEFGHABCDEFGH"], "too long for 16 bars"),
    (["--form", "AB", "--bars", "64"], "too short for 64 bars"),
    (["--form", "A'A"], "varied repeat"),
    (["--form", "AABA", "--bars", "6"], "do not divide 6 bars"),
    (["--form", "AABA", "--bars", "6", "--checkpoint", "MISSING"], "do not divide 6 bars"),  # before the model
])
def test_bad_form_exits_2_before_loading(tmp_path, capsys, args, msg):
    args = [str(tmp_path / "none") if a == "MISSING" else a for a in args]
    out = tmp_path / "o.mid"
    with pytest.raises(SystemExit) as exc:
        main(["compose", "--mood", "calm", *args, "-o", str(out)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("Error:") and msg in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []
