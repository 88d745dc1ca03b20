"""Broken MusicGen folders and adapters give one line (issue #13): pickle or corrupt
weights, an EnCodec whose codebooks do not fit the decoder, a truncated adapter."""

from __future__ import annotations

import json
import pickle
import shutil

import pytest

from emomusic.cli import main
from emomusic.errors import CheckpointError


def _cli(args, capsys):
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), err
    return exc.value.code, lines[0]


def test_pickle_weights_are_refused_in_one_line(tiny_dir, tmp_path, capsys):
    bad = tmp_path / "pickled"
    shutil.copytree(tiny_dir, bad)
    (bad / "model.safetensors").write_bytes(pickle.dumps({"weights": list(range(100))}))
    code, line = _cli(["clip", "--model", bad, "--mood", "calm", "--seconds", "1", "-o", tmp_path / "x.wav"], capsys)
    assert code == 2 and "not a valid safetensors file" in line and "pickle" in line
    (bad / "model.safetensors").unlink()
    (bad / "pytorch_model.bin").write_bytes(pickle.dumps({}))
    code, line = _cli(["clip", "--model", bad, "--mood", "calm", "--seconds", "1", "-o", tmp_path / "x.wav"], capsys)
    assert code == 2 and "safetensors only" in line
    assert not (tmp_path / "x.wav").exists()


def test_truncated_weights_are_one_line(tiny_dir, tmp_path, capsys):
    bad = tmp_path / "truncated"
    shutil.copytree(tiny_dir, bad)
    data = (bad / "model.safetensors").read_bytes()
    (bad / "model.safetensors").write_bytes(data[: len(data) // 2])  # header intact, tensors cut
    code, line = _cli(["clip", "--model", bad, "--mood", "calm", "--seconds", "1", "-o", tmp_path / "x.wav"], capsys)
    assert code == 2 and "cannot load MusicGen" in line


def test_codebook_mismatch_names_both_numbers(tiny_dir, tmp_path):
    from emomusic.clip.loading import load_model

    bad = tmp_path / "mismatch"
    shutil.copytree(tiny_dir, bad)
    cfg = json.loads((bad / "config.json").read_text())
    cfg["audio_encoder"]["target_bandwidths"] = [2 * b for b in cfg["audio_encoder"]["target_bandwidths"]]
    (bad / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError) as exc:
        load_model(bad)
    n = cfg["decoder"]["num_codebooks"]
    assert f"yields {2 * n} codebooks" in str(exc.value) and f"decoder expects {n}" in str(exc.value)


def test_corrupt_adapters_are_one_line(tiny_dir, tmp_path, capsys):
    ad = tmp_path / "ad"
    ad.mkdir()
    (ad / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 4}))
    (ad / "adapter_model.safetensors").write_bytes(pickle.dumps([1, 2, 3]))
    code, line = _cli(["clip", "--model", tiny_dir, "--adapter", ad, "--mood", "calm", "--seconds", "1",
                       "-o", tmp_path / "x.wav"], capsys)
    assert code == 2 and "not a valid safetensors file" in line
    (ad / "adapter_config.json").write_text("[1, 2]")
    code, line = _cli(["clip", "--model", tiny_dir, "--adapter", ad, "--mood", "calm", "--seconds", "1",
                       "-o", tmp_path / "x.wav"], capsys)
    assert code == 2 and "not an adapter config" in line


def test_truncated_adapter_weights(trained_adapter, tiny, tmp_path):
    from emomusic.clip.loading import load_model
    from emomusic.clip.lora import load_adapter

    out, _ = trained_adapter
    bad = tmp_path / "ad"
    shutil.copytree(out, bad)
    data = (bad / "adapter_model.safetensors").read_bytes()
    (bad / "adapter_model.safetensors").write_bytes(data[: len(data) - 100])
    with pytest.raises(CheckpointError) as exc:
        load_adapter(load_model(tiny.source), bad)
    assert "\n" not in str(exc.value)


def test_clip_on_a_full_disk(tiny_dir, tmp_path, capsys, monkeypatch):
    """The clip is generated, then the write fails as libsndfile does on a full disk."""
    import errno

    import soundfile

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(soundfile, "write", full)
    out = tmp_path / "c.wav"
    code, line = _cli(["clip", "--model", tiny_dir, "--mood", "calm", "--seconds", "0.5", "-o", out], capsys)
    assert code == 2 and line == f"Error: cannot write {out}: no space left on device"
    assert sorted(p.name for p in tmp_path.iterdir()) == []
