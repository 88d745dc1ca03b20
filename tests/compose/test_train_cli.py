"""``emomusic train vae`` / ``train diffgan`` on tiny MIDI files written in code, then compose from them."""

from __future__ import annotations

import csv

from click.testing import CliRunner

from emomusic.cli import cli
from emomusic.io import write_piece
from emomusic.piece import Note, Piece, Track


def _fake_emopia(root):
    from tiny import tiny_items

    (root / "midis").mkdir(parents=True)
    (root / "split").mkdir()
    names = []
    for name, _, arr in tiny_items(8, 10):
        notes = [Note(int(p), float(s), float(d), int(v)) for p, s, d, v in arr]
        write_piece(Piece(tracks=[Track("Piano", 0, False, notes)]), root / "midis" / name)
        names.append(name)
    with open(root / "split" / "train_clip.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["", "clip_name"])
        for i, n in enumerate(names):
            w.writerow([i, n])
    with open(root / "split" / "val_clip.csv", "w", newline="") as fh:
        fh.write(",clip_name\n0,Q1_never_read_1.mid\n")
    return root


def test_train_vae_and_diffgan_debug_then_compose(tmp_path):
    emopia = _fake_emopia(tmp_path / "emopia")
    ck = tmp_path / "ckpt"
    r = CliRunner().invoke(cli, ["train", "vae", "--data", str(emopia), "--preset", "debug", "--steps", "2", "--threads", "1",
                                 "--cache", str(tmp_path / "cache"), "-o", str(ck / "vae")], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    card = (ck / "vae" / "MODEL_CARD.md").read_text()
    assert "onset F1" in card and "non-commercial" in card and "emomusic train vae" in card
    r = CliRunner().invoke(cli, ["train", "diffgan", "--vae", str(ck / "vae"), "--emopia", str(emopia), "--preset", "debug",
                                 "--steps", "2", "--threads", "1", "--cache", str(tmp_path / "cache"), "-o",
                                 str(ck / "diffgan")], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert "EMOPIA train split only" in (ck / "diffgan" / "MODEL_CARD.md").read_text()
    # resumable: two more steps continue the log
    r = CliRunner().invoke(cli, ["train", "diffgan", "--vae", str(ck / "vae"), "--emopia", str(emopia), "--preset", "debug",
                                 "--steps", "4", "--threads", "1", "--cache", str(tmp_path / "cache"), "-o",
                                 str(ck / "diffgan")], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert len(list(csv.DictReader(open(ck / "diffgan" / "loss_log.csv")))) == 4
    out = tmp_path / "x.mid"
    r = CliRunner().invoke(cli, ["compose", "--mood", "calm", "--bars", "4", "--checkpoint", str(ck), "-o", str(out)],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert out.is_file()
