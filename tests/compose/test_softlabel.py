"""Soft labels for unlabelled windows, and the diffusion-GAN trained with them."""

from __future__ import annotations

import math

import numpy as np
import pytest
from tiny import tiny_items

from emomusic.compose.config import VAEConfig
from emomusic.compose.data import store_from_notes
from emomusic.compose.softlabel import NOMINAL_BPM, soft_labels, window_piece
from emomusic.compose.train import sequence_windows
from emomusic.errors import EmomusicError


def _mixed_store():
    """Four labelled files and four unlabelled ones (NaN labels)."""
    items = tiny_items(8, 12)
    items = [(n, va if i < 4 else (math.nan, math.nan), a) for i, (n, va, a) in enumerate(items)]
    cfg = VAEConfig.preset("debug")
    return store_from_notes(items, cfg.segment_beats, cfg.steps_per_beat)


def test_window_piece_concatenates_segments_in_order():
    store = _mixed_store()
    wins = sequence_windows(store, 3)
    piece = window_piece(store, wins[0])
    seg = store.segment_beats
    assert piece.tempo == NOMINAL_BPM
    n_expected = sum(int(store.seg_ptr[s + 1] - store.seg_ptr[s]) for s in wins[0])
    assert len(piece.notes) == n_expected
    starts = [n.start for n in piece.notes]
    assert min(starts) >= 0 and max(starts) < 3 * seg
    # the second segment's notes are shifted by one segment length
    first_of_second = store.notes[store.seg_ptr[wins[0][1]]]
    assert any(n.pitch == int(first_of_second[0]) and n.start == pytest.approx(seg + first_of_second[1]) for n in piece.notes)


def test_soft_labels_only_where_asked_and_cached(tmp_path):
    store = _mixed_store()
    wins = sequence_windows(store, 3)
    unl = np.isnan(store.file_va[store.seg_file[wins[:, 0]], 0])
    assert unl.any() and (~unl).any()
    lab = soft_labels(store, wins, which=unl, cache_dir=tmp_path, progress=False)
    assert lab.shape == (len(wins), 2)
    assert np.isfinite(lab[unl]).all() and np.isnan(lab[~unl]).all()
    assert (np.abs(lab[unl]) <= 1).all()
    # the estimator reads major-triad windows as more positive than minor ones (tiny_items: even files major)
    files = store.seg_file[wins[:, 0]]
    major = unl & (files % 2 == 0)
    minor = unl & (files % 2 == 1)
    assert lab[major, 0].mean() > lab[minor, 0].mean()
    cached = list(tmp_path.glob("compose_softlabels_*.npy"))
    assert len(cached) == 1
    # a second call reads the cache (same values, even if the cache file is the only source)
    np.save(cached[0], np.where(np.isnan(lab), lab, 0.5).astype(np.float32))
    again = soft_labels(store, wins, which=unl, cache_dir=tmp_path, progress=False)
    assert np.allclose(again[unl], 0.5)


def test_soft_labels_reject_bad_mask():
    store = _mixed_store()
    wins = sequence_windows(store, 3)
    with pytest.raises(EmomusicError):
        soft_labels(store, wins, which=np.ones(len(wins) + 1, bool), progress=False)


def test_diffgan_trains_on_labelled_plus_soft_labelled(tmp_path, one_torch_thread):
    from emomusic.compose.checkpoint import read_config
    from emomusic.compose.config import DiffGANConfig
    from emomusic.compose.train import train_diffgan, train_vae

    store = _mixed_store()
    vcfg = VAEConfig.preset("debug")
    train_vae(store, tmp_path / "vae", vcfg, steps=1, progress=False, held_share=0.25)
    dcfg = DiffGANConfig.preset("debug")
    dcfg.latent_dim = vcfg.latent_dim
    wins = sequence_windows(store, dcfg.seq_len)
    unl = np.isnan(store.file_va[store.seg_file[wins[:, 0]], 0])
    soft = soft_labels(store, wins, which=unl, progress=False)
    res = train_diffgan(store, tmp_path / "vae", tmp_path / "dg", dcfg, steps=2, progress=False, transposes=(0,),
                        soft=soft)
    assert res.metrics["soft_labelled_windows"] == int(unl.sum())
    assert res.metrics["labelled_windows"] == int((~unl).sum())
    meta = read_config(tmp_path / "dg", "diffgan")["meta"]
    assert meta["soft_labelled_windows"] == int(unl.sum())
    with pytest.raises(EmomusicError, match="soft labels must have shape"):
        train_diffgan(store, tmp_path / "vae", tmp_path / "dg2", dcfg, steps=1, progress=False, transposes=(0,),
                      soft=soft[:-1])
