"""LoRA training, adapter format, reload, base matching."""

import json
import shutil

import numpy as np
import pytest

from emomusic.emotion import parse_emotion
from emomusic.errors import CheckpointError, EmomusicError


def test_training_lowers_the_loss(trained_adapter):
    _, m = trained_adapter
    assert m["steps"] == 40 and m["clips"] == 16 and m["tracks"] == 8
    assert m["loss_after"] < m["loss_before"] - 0.05, m
    assert 0 < m["trainable_parameters"] < 20_000


def test_adapter_is_peft_format_and_records_its_base(trained_adapter, tiny_dir, tiny):
    from safetensors.torch import load_file

    out, _ = trained_adapter
    names = {p.name for p in out.iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "emomusic_adapter.json", "MODEL_CARD.md"} <= names
    assert not any(n.endswith((".bin", ".pt")) for n in names)
    cfg = json.loads((out / "adapter_config.json").read_text())
    assert cfg["base_model_name_or_path"] == str(tiny_dir)
    assert cfg["peft_type"] == "LORA" and cfg["r"] == 4
    meta = json.loads((out / "emomusic_adapter.json").read_text())
    assert meta["base_fingerprint"] == tiny.fingerprint and meta["base_model_type"] == "musicgen"
    assert meta["steps"] == 40 and meta["loss_after"] < meta["loss_before"]
    weights = load_file(out / "adapter_model.safetensors")
    assert weights and all("lora_" in k for k in weights)
    # only decoder attention projections carry LoRA
    assert all(".decoder.model.decoder.layers." in k and ("self_attn" in k or "encoder_attn" in k) for k in weights)
    assert any(k.endswith("lora_B.weight") and float(v.abs().max()) > 0 for k, v in weights.items())


def test_adapter_reloads_and_reproduces(trained_adapter, tiny_dir):
    from emomusic.clip import generate_clip
    from emomusic.clip.loading import load_model

    out, _ = trained_adapter
    e = parse_emotion("sad")
    a, _ = generate_clip(e, model=tiny_dir, adapter=out, seconds=1.0, seed=2)
    b, _ = generate_clip(e, model=load_model(tiny_dir), adapter=out, seconds=1.0, seed=2)
    np.testing.assert_array_equal(a, b)


def test_adapter_changes_the_model(trained_adapter, tiny_dir):
    import torch

    from emomusic.clip.data import delay_labels
    from emomusic.clip.loading import load_model
    from emomusic.clip.lora import load_adapter

    out, _ = trained_adapter
    plain, adapted = load_model(tiny_dir), load_model(tiny_dir)
    load_adapter(adapted, out)
    tok = plain.tokenizer(["calm piano"], return_tensors="pt")
    labels = delay_labels(torch.randint(0, 64, (1, 4, 10)), 64)
    with torch.no_grad():
        lp = plain.model(**tok, labels=labels).logits
        la = adapted.model(**tok, labels=labels).logits
    assert (lp - la).abs().max() > 1e-3


def test_mismatched_base_is_refused(trained_adapter, tiny_other_dir, tiny_melody_dir):
    from emomusic.clip.loading import load_model
    from emomusic.clip.lora import load_adapter

    out, _ = trained_adapter
    with pytest.raises(CheckpointError, match="weights differ"):
        load_adapter(load_model(tiny_other_dir), out)
    with pytest.raises(CheckpointError, match="musicgen_melody"):
        load_adapter(load_model(tiny_melody_dir), out)


def test_architecture_mismatch_is_refused(trained_adapter, tiny_dir, tmp_path):
    from emomusic.clip.loading import load_model
    from emomusic.clip.lora import load_adapter

    out, _ = trained_adapter
    bad = tmp_path / "a"
    shutil.copytree(out, bad)
    meta = json.loads((bad / "emomusic_adapter.json").read_text())
    meta["base_fingerprint"] = "0123456789abcdef"
    (bad / "emomusic_adapter.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="does not match"):
        load_adapter(load_model(tiny_dir), bad)


@pytest.mark.parametrize("case", ["missing", "file", "no_weights", "bad_config"])
def test_bad_adapter_folders(trained_adapter, tiny, tmp_path, case):
    from emomusic.clip.lora import read_adapter_meta

    out, _ = trained_adapter
    path = tmp_path / "ad"
    if case == "file":
        path.write_text("x")
    elif case != "missing":
        shutil.copytree(out, path)
        if case == "no_weights":
            (path / "adapter_model.safetensors").unlink()
        else:
            (path / "adapter_config.json").write_text("{")
    with pytest.raises(CheckpointError):
        read_adapter_meta(path)


def test_resume_continues_the_step_count(trained_adapter, tiny_dir, toy_data, tmp_path):
    from emomusic.clip.train import train_lora

    out, _ = trained_adapter
    tsv, audio = toy_data
    copy = tmp_path / "resumed"
    shutil.copytree(out, copy)
    m = train_lora(tiny_dir, tsv, audio, copy, steps=3, lr=3e-3, clip_seconds=1.0, max_clips=1, resume=True, progress=False)
    assert m["steps"] == 43
    assert json.loads((copy / "emomusic_adapter.json").read_text())["steps"] == 43


def test_training_argument_errors(tiny_dir, toy_data, tmp_path):
    from emomusic.clip.train import train_lora

    tsv, audio = toy_data
    for kwargs, msg in [
        ({"steps": 0}, "--steps"),
        ({"rank": 0}, "--rank"),
        ({"lr": -1.0}, "--lr"),
        ({"device": "tpu"}, "--device"),
        ({"resume": True}, "no adapter to resume"),
    ]:
        with pytest.raises(EmomusicError, match=msg):
            train_lora(tiny_dir, tsv, audio, tmp_path / "x", progress=False, **kwargs)
    (tmp_path / "f").write_text("x")
    with pytest.raises(EmomusicError, match="is a file"):
        train_lora(tiny_dir, tsv, audio, tmp_path / "f", steps=1, progress=False)


def test_stereo_model_trains_and_continues(tmp_path, toy_data):
    """musicgen-stereo layout: mono codec, 8 interleaved codebooks; labels match transformers'
    stereo delay pattern, training runs, continuation keeps both channels."""
    import torch

    from emomusic.clip import generate_clip
    from emomusic.clip.data import delay_labels
    from emomusic.clip.loading import load_model
    from emomusic.clip.tiny import save_tiny_model
    from emomusic.clip.train import train_lora

    d = save_tiny_model(tmp_path / "stereo", stereo=True)
    lm = load_model(d)
    assert lm.num_codebooks == 8
    codes = torch.randint(0, 64, (1, 8, 5))
    prompt = torch.cat([torch.full((1, 8, 1), 64), codes], dim=2).reshape(8, 6)
    _, pattern = lm.model.decoder.build_delay_pattern_mask(prompt, 64, max_length=5 + 4)
    assert torch.equal(delay_labels(codes, 64, audio_channels=2).transpose(1, 2), pattern.reshape(1, 8, 9)[:, :, 1:])
    tsv, audio = toy_data
    m = train_lora(d, tsv, audio, tmp_path / "lora", steps=3, lr=3e-3, clip_seconds=1.0, max_clips=1, progress=False)
    assert m["steps"] == 3
    info = {}
    a, sr = generate_clip(parse_emotion("calm"), model=d, adapter=tmp_path / "lora", seconds=6.0, info=info)
    assert a.shape == (6 * sr, 2) and info["windows"] == 2
