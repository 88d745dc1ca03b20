"""Session fixtures for the MusicGen tests: a tiny random MusicGen and MusicGen-Melody saved
with save_pretrained, a synthetic mood-tagged audio set in the MTG-Jamendo layout, and one
LoRA adapter trained on it. Nothing is downloaded."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Every clip test runs torch on one thread (the machine has two cores)."""


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    from emomusic.clip.tiny import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("mg") / "tiny-musicgen", seed=0)


@pytest.fixture(scope="session")
def tiny_other_dir(tmp_path_factory):
    """Same architecture, different random weights: adapters of tiny_dir must be refused."""
    from emomusic.clip.tiny import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("mg") / "tiny-musicgen-other", seed=7)


@pytest.fixture(scope="session")
def tiny_melody_dir(tmp_path_factory):
    from emomusic.clip.tiny import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("mg") / "tiny-musicgen-melody", melody=True, seed=0)


@pytest.fixture(scope="session")
def tiny(tiny_dir):
    from emomusic.clip.loading import load_model

    return load_model(tiny_dir)


@pytest.fixture(scope="session")
def toy_data(tmp_path_factory):
    from emomusic.clip.tiny import write_toy_dataset

    root = tmp_path_factory.mktemp("toy")
    tsv = write_toy_dataset(root, n_tracks=8, seconds=2.0)
    return tsv, root / "audio"


@pytest.fixture(scope="session")
def trained_adapter(tmp_path_factory, tiny_dir, toy_data):
    from emomusic.clip.train import train_lora

    tsv, audio = toy_data
    out = tmp_path_factory.mktemp("adapters") / "toy-lora"
    metrics = train_lora(
        tiny_dir, tsv, audio, out, steps=40, rank=4, lr=3e-3, batch_size=4, clip_seconds=1.0, max_clips=2,
        progress=False, seed=0,
    )
    return out, metrics
