"""``emomusic train vae`` / ``train diffgan`` on tiny MIDI files written in code, then compose from them."""

from __future__ import annotations

import csv
import json

import pytest
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
    card = (ck / "diffgan" / "MODEL_CARD.md").read_text()
    assert "EMOPIA train clips (val never used)" in card and "Soft-labelled" not in card
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
    # a decoder-only fine-tune: the diffusion-GAN above keeps working with the new VAE
    import shutil

    ck2 = tmp_path / "ckpt2"
    shutil.copytree(ck / "diffgan", ck2 / "diffgan")
    r = CliRunner().invoke(cli, ["train", "vae", "--data", str(emopia), "--preset", "debug", "--steps", "2", "--threads", "1",
                                 "--cache", str(tmp_path / "cache"), "--init-from", str(ck / "vae"), "--decoder-only",
                                 "-o", str(ck2 / "vae")], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert "--init-from" in json.loads((ck2 / "vae" / "config.json").read_text())["meta"]["command"]
    r = CliRunner().invoke(cli, ["compose", "--mood", "calm", "--bars", "4", "--checkpoint", str(ck2), "-o",
                                 str(tmp_path / "y.mid")], catch_exceptions=False)
    assert r.exit_code == 0, r.output


def _fake_unlabelled(root):
    from tiny import tiny_items

    root.mkdir(parents=True)
    for name, _, arr in tiny_items(4, 10, seed=5):
        notes = [Note(int(p), float(s), float(d), int(v)) for p, s, d, v in arr]
        write_piece(Piece(tracks=[Track("Piano", 0, False, notes)]), root / f"pop_{name}")
    return root


def test_train_with_a_segment_store_and_soft_labels(tmp_path):
    """--store writes a store from the MIDI once; later runs (another machine) need only that file;
    --data adds unlabelled MIDI that the estimator labels."""
    emopia = _fake_emopia(tmp_path / "emopia")
    pop = _fake_unlabelled(tmp_path / "pop")
    cache = ["--cache", str(tmp_path / "cache"), "--threads", "1", "--preset", "debug", "--steps", "1"]
    store = tmp_path / "seg" / "store.npz"
    r = CliRunner().invoke(cli, ["train", "vae", "--data", str(emopia), "--data", str(pop), "--store", str(store),
                                 "-o", str(tmp_path / "vae"), *cache], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert store.is_file() and "12 files" in r.output
    # the store alone is enough (the MIDI folders are gone)
    import shutil

    shutil.rmtree(emopia)
    shutil.rmtree(pop)
    r = CliRunner().invoke(cli, ["train", "vae", "--store", str(store), "-o", str(tmp_path / "vae2"), *cache],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert f"segment store {store}" in (tmp_path / "vae2" / "MODEL_CARD.md").read_text()
    r = CliRunner().invoke(cli, ["train", "diffgan", "--vae", str(tmp_path / "vae"), "--store", str(store),
                                 "-o", str(tmp_path / "dg"), *cache], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    card = (tmp_path / "dg" / "MODEL_CARD.md").read_text()
    assert "Soft-labelled:" in card and "estimator" in card
    r = CliRunner().invoke(cli, ["train", "diffgan", "--vae", str(tmp_path / "vae"), "--store", str(store),
                                 "--no-soft-labels", "-o", str(tmp_path / "dg2"), *cache], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert "unconditional branch only" in (tmp_path / "dg2" / "MODEL_CARD.md").read_text()
    # --init-from: continue dg's generator (warm start); a source of another VAE is a clear error
    r = CliRunner().invoke(cli, ["train", "diffgan", "--vae", str(tmp_path / "vae"), "--store", str(store),
                                 "--init-from", str(tmp_path / "dg"), "-o", str(tmp_path / "dg3"), *cache],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert "Warm start: the generator continues" in (tmp_path / "dg3" / "MODEL_CARD.md").read_text()
    r = CliRunner().invoke(cli, ["train", "diffgan", "--vae", str(tmp_path / "vae2"), "--store", str(store),
                                 "--init-from", str(tmp_path / "dg"), "-o", str(tmp_path / "dg4"), *cache])
    assert r.exit_code != 0 and "another VAE" in str(r.exception)


def test_train_store_errors(tmp_path):
    from emomusic.cli import main

    base = ["--preset", "debug", "--steps", "1", "--threads", "1"]
    for args, msg in [
        (["train", "vae", "-o", str(tmp_path / "v"), *base], "--data"),
        (["train", "diffgan", "--vae", str(tmp_path / "v"), "-o", str(tmp_path / "d"), *base], "--emopia"),
    ]:
        r = CliRunner().invoke(cli, args)
        assert r.exit_code != 0 and msg in str(r.exception), r.output
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a store")
    with pytest.raises(SystemExit) as e:
        main(["train", "vae", "--store", str(bad), "-o", str(tmp_path / "v"), *base])
    assert e.value.code == 2
    assert not (tmp_path / "v").exists()


LAUNCHERS = {
    "torchrun": ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"],
    # the launcher the README names; --multi_gpu starts torch.distributed processes, which use
    # gloo on a machine without GPUs
    "accelerate": ["-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                   "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0"],
}


@pytest.mark.parametrize("launcher", sorted(LAUNCHERS))
def test_train_runs_in_two_processes(tmp_path, launcher):
    """`accelerate launch` / torchrun as on several GPUs, on the CPU (gloo): two processes
    train together (gradients averaged, a shared stop), only the main one writes files."""
    import os
    import subprocess
    import sys

    import torch

    if not torch.distributed.is_available():
        pytest.skip("torch.distributed is not available in this build")
    from tiny import tiny_store

    store = tmp_path / "store.npz"
    tiny_store().save(store)
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", HF_HOME=str(tmp_path / "hf"))
    run = [sys.executable, *LAUNCHERS[launcher], "-m", "emomusic", "train"]
    common = ["--store", str(store), "--preset", "debug", "--threads", "1", "--cache", str(tmp_path / "cache")]
    r = subprocess.run(run + ["vae", "--steps", "3", "-o", str(tmp_path / "vae"), *common], env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("trained 3 steps") == 1  # the main process reports, the other stays quiet
    assert len(list(csv.DictReader(open(tmp_path / "vae" / "loss_log.csv")))) == 3
    assert json.loads((tmp_path / "vae" / "config.json").read_text())["meta"]["processes"] == 2
    # a wall-clock budget that runs out at once: both processes must stop at the same step
    r = subprocess.run(run + ["diffgan", "--vae", str(tmp_path / "vae"), "--steps", "50", "--max-minutes", "0.0001",
                              "-o", str(tmp_path / "dg"), *common], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    rows = list(csv.DictReader(open(tmp_path / "dg" / "loss_log.csv")))
    assert 1 <= len(rows) < 50
    assert (tmp_path / "dg" / "MODEL_CARD.md").is_file()
    assert json.loads((tmp_path / "dg" / "config.json").read_text())["meta"]["processes"] == 2


def test_gpu_training_script_runs_on_the_cpu(tmp_path):
    """scripts/gpu_train_compose.sh (how the shipped checkpoint was trained) on a tiny store."""
    import os
    import subprocess
    import sys
    import tarfile
    from pathlib import Path

    from tiny import tiny_store

    repo = Path(__file__).resolve().parents[2]
    store = tmp_path / "store.npz"
    tiny_store(n_files=8, bars=20).save(store)
    env = dict(os.environ, PYTHON=sys.executable, STORE=str(store), CACHE=str(tmp_path / "cache"), OMP_NUM_THREADS="1")
    r = subprocess.run(["bash", str(repo / "scripts" / "gpu_train_compose.sh"), "cpu", "0.0001", "0.0001",
                        str(tmp_path / "out")], cwd=repo, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    log = (tmp_path / "out" / "log.txt").read_text()
    assert "vae rc=0" in log and "diffgan rc=0" in log, log[-2000:]
    for part in ("vae", "diffgan"):
        with tarfile.open(tmp_path / "out" / f"{part}.tar") as tf:
            names = set(tf.getnames())
        assert {f"{part}/config.json", f"{part}/model.safetensors", f"{part}/MODEL_CARD.md"} <= names
        assert not any("train_state" in n for n in names)
    # a later session continues that checkpoint: the VAE stage is skipped, the diffusion-GAN warm-starts
    first = tmp_path / "first"
    for part in ("vae", "diffgan"):
        with tarfile.open(tmp_path / "out" / f"{part}.tar") as tf:
            tf.extractall(first, filter="data")
    env2 = dict(env, VAE_DIR=str(first / "vae"), INIT=str(first / "diffgan"))
    r = subprocess.run(["bash", str(repo / "scripts" / "gpu_train_compose.sh"), "cpu", "0", "0.0001",
                        str(tmp_path / "out2")], cwd=repo, env=env2, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    log = (tmp_path / "out2" / "log.txt").read_text()
    assert f"vae skipped: using {first / 'vae'}" in log and "diffgan rc=0" in log, log[-2000:]
    assert not (tmp_path / "out2" / "vae.tar").exists()
    with tarfile.open(tmp_path / "out2" / "diffgan.tar") as tf:
        tf.extractall(tmp_path / "second", filter="data")
    meta = json.loads((tmp_path / "second" / "diffgan" / "config.json").read_text())["meta"]
    assert meta["init_from"]["path"] == str(first / "diffgan")
