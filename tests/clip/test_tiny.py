"""The tiny MusicGen built from configs: size, save/load through the CLI's loader, tokenizer."""

import json

import pytest

from emomusic.errors import CheckpointError


def test_tiny_model_is_a_few_hundred_thousand_parameters():
    from emomusic.clip.tiny import build_tiny_model, count_parameters

    for melody in (False, True):
        model, _ = build_tiny_model(melody=melody)
        n = count_parameters(model)
        assert 100_000 <= n["total"] <= 600_000, n
        assert n["decoder"] > 10_000 and n["text_encoder"] > 1_000


def test_saved_folder_layout_and_load(tiny_dir, tiny):
    names = {p.name for p in tiny_dir.iterdir()}
    assert {"config.json", "model.safetensors", "generation_config.json", "tokenizer.json", "preprocessor_config.json"} <= names
    assert not any(n.endswith((".bin", ".pt", ".pkl")) for n in names)
    cfg = json.loads((tiny_dir / "config.json").read_text())
    assert cfg["model_type"] == "musicgen"
    assert cfg["decoder"]["decoder_start_token_id"] == cfg["decoder"]["pad_token_id"] == cfg["decoder"]["vocab_size"]
    gen = json.loads((tiny_dir / "generation_config.json").read_text())
    assert gen["decoder_start_token_id"] == gen["pad_token_id"] == cfg["decoder"]["vocab_size"]
    assert tiny.model_type == "musicgen" and not tiny.is_melody
    assert tiny.sample_rate == 16000 and tiny.frame_rate == 50 and tiny.num_codebooks == 4
    assert 4.5 < tiny.native_seconds < 5.5


def test_melody_model_loads(tiny_melody_dir):
    from emomusic.clip.loading import load_model

    lm = load_model(tiny_melody_dir)
    assert lm.is_melody and lm.chroma_rate == pytest.approx(16000 / 2048) and lm.chroma_length == 40


def test_tokenizer_works_offline_and_maps_unknown_words(tiny):
    tok = tiny.tokenizer
    ids = tok("Calm piano, 60 bpm, zzzunknown")["input_ids"]
    assert ids[-1] == tok.eos_token_id
    assert tok.unk_token_id in ids
    assert tok.convert_tokens_to_ids("calm") != tok.unk_token_id


def test_codes_matter_to_the_codec(tiny):
    import torch

    torch.manual_seed(0)
    a = torch.randint(0, 64, (1, 1, 4, 20))
    b = torch.randint(0, 64, (1, 1, 4, 20))
    codec = tiny.model.audio_encoder
    da = codec.decode(a, [None]).audio_values
    db = codec.decode(b, [None]).audio_values
    assert da.shape == (1, 1, 20 * 320)
    assert (da - db).abs().max() > 1e-4


def test_same_seed_same_weights_and_fingerprint(tmp_path):
    from emomusic.clip.loading import load_model
    from emomusic.clip.lora import weight_probe
    from emomusic.clip.tiny import save_tiny_model

    a = load_model(save_tiny_model(tmp_path / "a", seed=3))
    b = load_model(save_tiny_model(tmp_path / "b", seed=3))
    c = load_model(save_tiny_model(tmp_path / "c", seed=4))
    assert a.fingerprint == b.fingerprint == c.fingerprint
    assert weight_probe(a.model) == weight_probe(b.model) != weight_probe(c.model)


@pytest.mark.parametrize("case", ["missing", "file", "no_config", "bad_json", "other_model", "no_weights"])
def test_bad_model_folders_are_clear_errors(tmp_path, tiny_dir, case):
    import shutil

    from emomusic.clip.loading import load_model

    path = tmp_path / "m"
    if case == "file":
        path.write_text("x")
    elif case != "missing":
        shutil.copytree(tiny_dir, path)
        if case == "no_config":
            (path / "config.json").unlink()
        elif case == "bad_json":
            (path / "config.json").write_text("{not json")
        elif case == "other_model":
            (path / "config.json").write_text(json.dumps({"model_type": "bert"}))
        elif case == "no_weights":
            (path / "model.safetensors").unlink()
    with pytest.raises(CheckpointError) as exc:
        load_model(path)
    assert "\n" not in str(exc.value)


def test_hub_id_is_not_downloaded_without_permission(monkeypatch, tmp_path):
    from emomusic.clip.loading import load_model

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(CheckpointError, match="allow-download"):
        load_model("facebook/musicgen-small")
