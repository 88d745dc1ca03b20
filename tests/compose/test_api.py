"""Training loops, checkpoints (save/load/resume/mismatch) and compose() on a debug checkpoint."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
import torch

from emomusic.compose import ComposeEngine, compose
from emomusic.compose.api import split_hands
from emomusic.compose.config import VAEConfig
from emomusic.emotion import Emotion
from emomusic.errors import CheckpointError, EmomusicError
from emomusic.piece import KeySignature, Note

torch.set_num_threads(1)


def test_checkpoint_layout_and_loss_log(debug_ckpt):
    for part in ("vae", "diffgan"):
        d = debug_ckpt / part
        assert (d / "config.json").is_file() and (d / "model.safetensors").is_file()
        assert not list(d.glob("*.pt")) and not list(d.glob("*.pkl"))
        rows = list(csv.DictReader(open(d / "loss_log.csv")))
        assert len(rows) == 2 and all(np.isfinite(float(v)) for r in rows for k, v in r.items() if k != "step")
    meta = json.loads((debug_ckpt / "vae" / "config.json").read_text())["meta"]
    assert 0.0 <= meta["val_f1"] <= 1.0


def test_save_load_round_trip_gives_same_samples(debug_ckpt, tmp_path):
    eng = ComposeEngine.load(debug_ckpt)
    copy = tmp_path / "copy"
    shutil.copytree(debug_ckpt, copy)
    eng2 = ComposeEngine.load(copy)
    assert eng2 is not eng
    for a, b in zip(eng.vae.state_dict().values(), eng2.vae.state_dict().values()):
        assert torch.equal(a, b)
    conds = np.full((2, 4, 2), 0.5, np.float32)
    np.testing.assert_array_equal(eng.generate(conds, seed=3), eng2.generate(conds, seed=3))
    assert ComposeEngine.load(debug_ckpt) is eng  # cached


def test_resume_continues_steps(tmp_path):
    from tiny import tiny_store

    from emomusic.compose.train import train_vae

    store = tiny_store()
    cfg = VAEConfig.preset("debug")
    train_vae(store, tmp_path / "v", cfg, steps=2, progress=False)
    res = train_vae(store, tmp_path / "v", cfg, steps=3, progress=False)
    assert res.steps == 3
    assert len(list(csv.DictReader(open(tmp_path / "v" / "loss_log.csv")))) == 3
    other = VAEConfig.preset("debug")
    other.latent_dim = 4
    with pytest.raises(CheckpointError, match="another config"):
        train_vae(store, tmp_path / "v", other, steps=4, progress=False)


def test_missing_and_mismatched_checkpoints(debug_ckpt, tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        ComposeEngine.load(tmp_path / "nope")
    bad = tmp_path / "bad"
    shutil.copytree(debug_ckpt, bad)
    (bad / "diffgan" / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="incomplete"):
        ComposeEngine.load(bad)
    # a config that does not match the weights
    bad2 = tmp_path / "bad2"
    shutil.copytree(debug_ckpt, bad2)
    cfg = json.loads((bad2 / "vae" / "config.json").read_text())
    cfg["hidden"] = 24
    (bad2 / "vae" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="does not match"):
        ComposeEngine.load(bad2)
    # a diffgan trained on another VAE
    bad3 = tmp_path / "bad3"
    shutil.copytree(debug_ckpt, bad3)
    cfg = json.loads((bad3 / "diffgan" / "config.json").read_text())
    assert cfg["meta"]["vae_encoder_sha1"]  # the latent space: the VAE's encoder
    cfg["meta"]["vae_encoder_sha1"] = "0" * 16
    (bad3 / "diffgan" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="another VAE"):
        ComposeEngine.load(bad3)
    # a checkpoint from before the encoder hash: the whole VAE file is compared
    del cfg["meta"]["vae_encoder_sha1"]
    (bad3 / "diffgan" / "config.json").write_text(json.dumps(cfg))
    assert ComposeEngine.load(bad3).vae is not None
    cfg["meta"]["vae_sha1"] = "0" * 16
    (bad3 / "diffgan" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="another VAE"):
        ComposeEngine.load(bad3)
    bad4 = tmp_path / "bad4"
    shutil.copytree(debug_ckpt, bad4)
    (bad4 / "vae" / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError):
        ComposeEngine.load(bad4)


def test_compose_bars_tracks_markers_and_seeds(debug_ckpt):
    e = Emotion(0.7, 0.6)
    pieces = compose(e, bars=10, n=3, seed=1, checkpoint=debug_ckpt, threshold=0.3)
    assert len(pieces) == 3
    for p in pieces:
        assert p.n_bars == 10
        assert [t.name for t in p.tracks] == ["Melody", "Accompaniment"]
        assert p.key is not None and p.time_signature.numerator == 4
        emo = [m for m in p.markers if m.text.startswith("emotion ")]  # section markers sit beside them
        assert [m.beat for m in emo] == [0.0, 16.0, 32.0]
        assert all(m.text == e.marker_text() for m in emo)
        p.validate()
    again = compose(e, bars=10, n=3, seed=1, checkpoint=debug_ckpt, threshold=0.3)
    assert [p.notes for p in again] == [p.notes for p in pieces]
    other = compose(e, bars=10, n=3, seed=2, checkpoint=debug_ckpt, threshold=0.3)
    assert [p.notes for p in other] != [p.notes for p in pieces]


def test_compose_longer_than_window_and_morph(debug_ckpt):
    a, b = Emotion(0.8, 0.8), Emotion(-0.8, -0.8)
    (p,) = compose(a, to=b, bars=20, checkpoint=debug_ckpt, threshold=0.3)
    assert p.n_bars == 20  # 10 segments > the debug window of 4: windowed continuation
    texts = [m.text for m in p.markers if m.text.startswith("emotion ")]
    assert len(texts) == 5 and len(set(texts)) == 5
    vals = [float(t.split("v=")[1].split()[0]) for t in texts]
    assert vals == sorted(vals, reverse=True) and vals[0] > 0.5 and vals[-1] < -0.5
    assert len({tp.bpm for tp in p.tempos}) > 1  # the template follows the emotion per section


def test_compose_template_tempo_key_options(debug_ckpt):
    e = Emotion(-0.6, -0.6)
    (raw,) = compose(e, bars=4, apply_template=False, checkpoint=debug_ckpt, threshold=0.3)
    (tpl,) = compose(e, bars=4, apply_template=True, checkpoint=debug_ckpt, threshold=0.3)
    assert raw.tempo == 120.0 and tpl.tempo != 120.0
    (fixed,) = compose(e, bars=4, tempo=90, key=KeySignature(7, "major"), checkpoint=debug_ckpt, threshold=0.3)
    assert fixed.tempo == 90.0 and fixed.key.tonic == 7 and fixed.key.mode == "major"


@pytest.mark.parametrize("kw, match", [
    ({"bars": 0}, "bars"), ({"n": 0}, "n must"), ({"steps": 9}, "trained with"), ({"guidance": float("nan")}, "guidance"),
    ({"tempo": 1000}, "tempo"), ({"bars": 2.5}, "whole number"), ({"seed": -1}, "seed"), ({"seed": 2**32}, "seed"),
    ({"seed": "7"}, "seed"),
])
def test_compose_bad_arguments(debug_ckpt, kw, match):
    with pytest.raises(EmomusicError, match=match):
        compose(Emotion(0, 0), checkpoint=debug_ckpt, **kw)


def test_decode_melody_threshold_adds_top_notes_only(debug_ckpt):
    eng = ComposeEngine.load(debug_ckpt)
    cfg = eng.vae.cfg
    lat = eng.random_latents(2, 2, seed=3)
    rolls = eng.decode_rolls(lat)
    cut = float(np.quantile(rolls[:, :, 0], 0.98))
    low = float(np.quantile(rolls[:, :, 0], 0.9))
    mid = cfg.pitch_low + cfg.n_pitches // 2
    for plain, more in zip(eng.decode(lat, cut), eng.decode(lat, cut, (mid, low))):
        assert set(plain) <= set(more)
        added = sorted(set(more) - set(plain), key=lambda n: n.start)
        assert added and all(n.pitch >= mid for n in added)
        assert len({n.start for n in added}) == len(added)  # one note a step: a line, not chords
        assert not {n.start for n in added} & {n.start for n in plain if n.pitch >= mid}


def test_compose_guidance_changes_output(debug_ckpt):
    eng = ComposeEngine.load(debug_ckpt)
    conds = np.full((1, 4, 2), 0.6, np.float32)
    assert not np.allclose(eng.generate(conds, seed=0, guidance=1.0), eng.generate(conds, seed=0, guidance=4.0))


def test_encode_decode_and_random_latents(debug_ckpt):
    eng = ComposeEngine.load(debug_ckpt)
    cfg = eng.vae.cfg
    D, T, P, spb = cfg.latent_dim, cfg.n_steps, cfg.n_pitches, cfg.steps_per_beat
    seg_beats = cfg.bars_per_segment * cfg.beats_per_bar
    # random latents: N(0, I), seeded
    lat = eng.random_latents(2, 3, seed=0)
    assert lat.shape == (2, 3, D) and lat.dtype == np.float32
    assert np.array_equal(lat, eng.random_latents(2, 3, seed=0)) and not np.allclose(lat, eng.random_latents(2, 3, seed=1))
    big = eng.random_latents(64, 8, seed=5)
    assert abs(float(big.mean())) < 0.05 and abs(float(big.std()) - 1.0) < 0.05
    # rolls: (n, S, onset/duration/velocity, steps, pitches), probabilities
    rolls = eng.decode_rolls(lat)
    assert rolls.shape == (2, 3, 3, T, P) and 0 <= rolls.min() and rolls.max() <= 1
    # decode thresholds the onset channel: at 0 every cell is an onset, above 1 none is
    every = eng.decode(lat[:1], threshold=0.0)[0]
    assert len(every) == 3 * T * P
    assert {n.pitch for n in every} == set(range(cfg.pitch_low, cfg.pitch_low + P))
    assert {round(n.start * spb) for n in every} == set(range(3 * T))
    for n in every:  # a note never runs past its own segment
        seg_end = (n.start // seg_beats + 1) * seg_beats
        assert 1 / spb <= n.duration and n.end <= seg_end + 1e-9
    assert eng.decode(lat, threshold=1.01) == [[], []]
    some = eng.decode(lat[:1])[0]  # the config's threshold keeps exactly the cells at or above it
    assert len(some) == int((rolls[0, :, 0] >= cfg.decode_threshold).sum())
    # encode: posterior means, one per segment the notes reach; a piece moved by one segment
    # encodes its first segment where the original had it
    notes = [Note(60, 0, 1, 80), Note(64, 9, 1, 80)]
    enc = eng.encode([notes])
    assert enc.shape == (1, int(9 // seg_beats) + 1, D)
    assert np.array_equal(enc, eng.encode([notes]))  # deterministic: no sampling
    moved = eng.encode([[Note(n.pitch, n.start + seg_beats, n.duration, n.velocity) for n in notes]])
    assert moved.shape == (1, enc.shape[1] + 1, D)
    np.testing.assert_allclose(moved[0, 1:], enc[0], atol=1e-5)
    assert not np.allclose(enc[0, 0], enc[0, 1])  # different content, different latent


def test_split_hands_skyline():
    notes = [Note(48, 0, 2, 70), Note(64, 0, 2, 80), Note(67, 0, 1, 80), Note(69, 1, 1, 80), Note(40, 2, 1, 70)]
    mel, acc = split_hands(notes)
    assert [n.pitch for n in mel] == [67, 69]
    assert [n.pitch for n in acc] == [48, 64, 40]
    assert mel[0].start + mel[0].duration <= mel[1].start


def _c_major_notes(bars: int = 4) -> list[Note]:
    """I-IV-V-I in C major with a scale melody on top (what a decoder might return)."""
    chords, scale = [(0, 4, 7), (5, 9, 12), (7, 11, 14), (0, 4, 7)], [0, 2, 4, 5, 7, 9, 11, 12]
    notes = []
    for bar in range(bars):
        notes += [Note(48 + p, bar * 4.0, 4.0, 70) for p in chords[bar % 4]]
        notes += [Note(72 + scale[(bar * 4 + i) % 8], bar * 4.0 + i, 1.0, 80) for i in range(4)]
    return notes


def test_compose_template_sets_the_mode(debug_ckpt, monkeypatch):
    from emomusic.attributes import measure

    monkeypatch.setattr(ComposeEngine, "decode", lambda self, lat, threshold=None, melody=None: [_c_major_notes(16) for _ in lat])
    sad, happy = Emotion(-0.6, 0.4), Emotion(0.6, 0.4)
    (raw,) = compose(sad, bars=4, apply_template=False, checkpoint=debug_ckpt)
    assert (measure(raw).key_tonic, measure(raw).mode) == (0, "major")
    (p,) = compose(sad, bars=4, checkpoint=debug_ckpt)  # the template (with "mode") is on by default
    assert measure(p).mode == "minor" and (p.key.tonic, p.key.mode) == (0, "minor")
    # C minor: Eb and Ab, B in V (harmonic minor), Bb only as the seventh of a minor chord (i7, iv7)
    assert {n.pitch % 12 for n in p.notes} - {10} == {0, 2, 3, 5, 7, 8, 11}
    (q,) = compose(happy, bars=4, checkpoint=debug_ckpt)
    assert measure(q).mode == "major" and q.key == raw.key
    # a fixed key: the mode is chosen first, then the piece moves to the key (or its relative)
    (k,) = compose(sad, bars=4, key=KeySignature(9, "minor"), checkpoint=debug_ckpt)
    assert (k.key.tonic, k.key.mode) == (9, "minor") and (measure(k).key_tonic, measure(k).mode) == (9, "minor")
    # a morph from happy to sad modulates to the parallel minor where valence turns negative
    (m,) = compose(happy, to=sad, bars=16, checkpoint=debug_ckpt)
    assert [(ks.tonic, ks.mode) for ks in m.keys][0] == (0, "major") and m.keys[-1].mode == "minor"


def test_sparse_samples_are_resampled_deterministically(debug_ckpt, monkeypatch):
    """A sample that decodes to fewer notes than bars is drawn again; never an empty piece."""
    calls = []
    good = _c_major_notes(4)

    def fake_decode(self, lat, threshold=None, melody=None):
        calls.append(len(lat))
        # first call: sample 1 of 3 is empty; the redraw (1 sequence) is fine
        return [good, [], good] if len(calls) == 1 else [good for _ in lat]

    monkeypatch.setattr(ComposeEngine, "decode", fake_decode)
    pieces = compose(Emotion(0.5, 0.5), bars=4, n=3, seed=1, checkpoint=debug_ckpt)
    assert calls == [3, 1]
    assert all(len(p.notes) >= 4 for p in pieces)

    # a model that never passes the threshold: the most likely onsets are kept instead
    monkeypatch.setattr(ComposeEngine, "decode", lambda self, lat, threshold=None, melody=None: [[] for _ in lat])
    pieces = compose(Emotion(0.5, 0.5), bars=4, n=2, seed=1, checkpoint=debug_ckpt)
    assert all(len(p.notes) >= 4 for p in pieces)
    again = compose(Emotion(0.5, 0.5), bars=4, n=2, seed=1, checkpoint=debug_ckpt)
    assert [p.notes for p in pieces] == [p.notes for p in again]


def test_shipped_diffgan_records_the_shipped_vae_and_its_encoder():
    """The shipped diffusion-GAN names both the VAE file it was checked against and that VAE's
    encoder, so a decoder-only fine-tune of the shipped VAE loads beside it."""
    from emomusic.compose.checkpoint import encoder_sha1, file_sha1
    from emomusic.paths import checkpoint_path

    root = checkpoint_path("compose")
    meta = json.loads((root / "diffgan" / "config.json").read_text())["meta"]
    weights = root / "vae" / "model.safetensors"
    assert meta["vae_sha1"] == file_sha1(weights)
    assert meta["vae_encoder_sha1"] == encoder_sha1(weights)
