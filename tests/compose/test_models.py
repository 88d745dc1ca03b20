"""Configs, representation, VAE / diffusion-GAN networks, training smoke tests, sampling."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from emomusic.compose.config import DiffGANConfig, VAEConfig
from emomusic.compose.diffgan import DiffusionGAN, Schedule
from emomusic.compose.representation import notes_to_segments, segments_to_notes, transpose_segments
from emomusic.compose.vae import SegmentVAE, vae_loss
from emomusic.errors import CheckpointError, EmomusicError
from emomusic.piece import Note

torch.set_num_threads(1)


@pytest.mark.parametrize("cls", [VAEConfig, DiffGANConfig])
@pytest.mark.parametrize("preset", ["debug", "default", "large"])
def test_config_json_round_trip(cls, preset):
    cfg = cls.preset(preset)
    again = cls.from_json(cfg.to_json())
    assert again == cfg
    assert json.loads(cfg.to_json())["kind"] == cls.kind


def test_config_rejects_unknown_field_and_wrong_kind():
    d = VAEConfig.preset("debug").to_dict()
    d["bogus"] = 1
    with pytest.raises(CheckpointError, match="unknown fields"):
        VAEConfig.from_dict(d)
    with pytest.raises(CheckpointError, match="expected 'diffgan'"):
        DiffGANConfig.from_dict(VAEConfig().to_dict())
    with pytest.raises(EmomusicError, match="unknown preset"):
        VAEConfig.preset("huge")


def test_roll_round_trip_keeps_notes():
    cfg = VAEConfig()
    notes = [Note(60, 0.0, 1.0, 80), Note(64, 0.5, 0.25, 100), Note(67, 7.75, 2.0, 50), Note(72, 9.0, 0.5, 64)]
    segs, ok = notes_to_segments(notes, cfg, min_notes=1)
    assert segs.shape == (2, 3, cfg.n_steps, cfg.n_pitches)
    back = segments_to_notes(segs, cfg)
    assert [(n.pitch, n.start) for n in back] == [(60, 0.0), (64, 0.5), (67, 7.75), (72, 9.0)]
    # a note crossing the segment end is cut at the segment end
    assert back[2].duration == pytest.approx(0.25)
    assert back[1].velocity == 100 and back[0].duration == 1.0
    assert ok.tolist() == [True, True]
    up = transpose_segments(segs, 2)
    assert [(n.pitch) for n in segments_to_notes(up, cfg)] == [62, 66, 69, 74]
    # the melody's lower threshold: the top cell of a step where nothing from its lowest pitch up
    # is sure enough, never a chord, nothing where a surer onset sounds in the register
    roll = np.zeros((1, 3, cfg.n_steps, cfg.n_pitches), np.float32)
    roll[0, 1] = 1.0
    roll[0, 2] = 0.5
    at = lambda t, p, v: roll.__setitem__((0, 0, t, p - cfg.pitch_low), v)  # noqa: E731
    at(0, 72, 0.5), at(0, 67, 0.5), at(0, 48, 0.5)  # step 0: two melody candidates and a low one
    at(4, 76, 0.9), at(4, 79, 0.5)  # step 4: a sure onset, and a weaker one above it
    at(8, 62, 0.2)  # step 8: too unsure even for the melody
    plain = [(n.pitch, n.start) for n in segments_to_notes(roll, cfg, 0.6)]
    assert plain == [(76, 1.0)]
    got = [(n.pitch, n.start) for n in segments_to_notes(roll, cfg, 0.6, melody=(60, 0.4))]
    assert got == [(72, 0.0), (76, 1.0)]
    assert [(n.pitch, n.start) for n in segments_to_notes(roll, cfg, 0.6, melody=(49, 0.1))] == [(72, 0.0), (76, 1.0), (62, 2.0)]


def test_store_rolls_match_direct_segments():
    from tiny import tiny_items

    from emomusic.compose.data import store_from_notes

    cfg = VAEConfig.preset("debug")
    items = tiny_items(2, 4)
    store = store_from_notes(items, cfg.segment_beats, cfg.steps_per_beat)
    direct, _ = notes_to_segments(items[0][2], cfg)
    idx = store.file_segments()[0]
    np.testing.assert_array_equal(store.rolls(idx, cfg), direct)
    assert store.file_va[0].tolist() == pytest.approx([0.6, 0.6])


def test_vae_shapes():
    cfg = VAEConfig.preset("debug")
    net = SegmentVAE(cfg)
    x = torch.zeros(3, 3, cfg.n_steps, cfg.n_pitches)
    mu, logvar = net.encode(x)
    assert mu.shape == logvar.shape == (3, cfg.latent_dim)
    assert net.decode(mu).shape == x.shape


def _tiny_batch(cfg, n=4):
    from tiny import tiny_store

    store = tiny_store(4, 4)
    return torch.from_numpy(store.rolls(np.arange(n), cfg))


def test_vae_training_loss_decreases():
    torch.manual_seed(0)
    cfg = VAEConfig.preset("debug")
    net = SegmentVAE(cfg)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    x = _tiny_batch(cfg)
    g = torch.Generator().manual_seed(0)
    losses = []
    for step in range(12):
        out = vae_loss(net, x, step=0, generator=g)
        assert torch.isfinite(out["loss"])
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(float(out["loss"].detach()))
    assert losses[-1] < losses[0] * 0.8


def test_denoiser_and_discriminator_shapes():
    cfg = DiffGANConfig.preset("debug")
    m = DiffusionGAN(cfg)
    x = torch.randn(2, cfg.seq_len, cfg.latent_dim)
    cond = torch.zeros(2, cfg.seq_len, 2)
    mask = torch.ones(2, cfg.seq_len, dtype=torch.bool)
    t = torch.tensor([1.0, 4.0])
    assert m.G(x, torch.randn(2, cfg.z_dim), t, cond, mask).shape == x.shape
    assert m.D(x, x, torch.tensor([1, 4]), cond, mask).shape == (2,)


def test_schedule_and_respacing():
    s = Schedule(4)
    assert s.alpha_bar[0] == 1.0 and s.alpha_bar[-1] < 1e-3
    assert bool((s.alpha_bar[1:] < s.alpha_bar[:-1]).all())
    assert s.set_timesteps(4) == [4, 3, 2, 1]
    assert s.set_timesteps(2) == [4, 1]
    assert s.set_timesteps(1) == [4]
    with pytest.raises(EmomusicError, match="trained with 4"):
        s.set_timesteps(8)
    with pytest.raises(EmomusicError):
        s.set_timesteps(0)


def test_diffgan_training_smoke_losses_finite_and_g_improves():
    torch.manual_seed(0)
    cfg = DiffGANConfig.preset("debug")
    m = DiffusionGAN(cfg)
    x0 = torch.randn(4, cfg.seq_len, cfg.latent_dim)
    batch = {"x0": x0, "cond": torch.full((4, cfg.seq_len, 2), 0.6)}
    opt_g = torch.optim.Adam(m.G.parameters(), lr=2e-3)
    opt_d = torch.optim.Adam(m.D.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(2):
        out = m(batch, generator=g)
        for v in out.values():
            assert torch.isfinite(v)
        opt_d.zero_grad()
        opt_g.zero_grad()
        gd = torch.autograd.grad(out["d_loss"], list(m.D.parameters()), retain_graph=True, allow_unused=True)
        gg = torch.autograd.grad(out["g_loss"], list(m.G.parameters()), allow_unused=True)
        for p, gr in zip(m.D.parameters(), gd):
            p.grad = gr
        for p, gr in zip(m.G.parameters(), gg):
            p.grad = gr
        opt_d.step()
        opt_g.step()
    # the generator's adversarial loss against a frozen D goes down on a repeated batch
    def g_loss():
        torch.manual_seed(1)
        return float(m(batch, generator=torch.Generator().manual_seed(5), r1=False)["g_loss"].detach())

    before = g_loss()
    for _ in range(8):
        out = m(batch, generator=torch.Generator().manual_seed(5), r1=False)
        opt_g.zero_grad()
        gg = torch.autograd.grad(out["g_loss"], list(m.G.parameters()), allow_unused=True)
        for p, gr in zip(m.G.parameters(), gg):
            p.grad = gr
        opt_g.step()
    assert g_loss() < before


def test_sampling_shapes_seeds_guidance_and_inpainting():
    torch.manual_seed(0)
    cfg = DiffGANConfig.preset("debug")
    m = DiffusionGAN(cfg).eval()
    cond = torch.tensor([0.6, -0.6])

    def sample(seed, **kw):
        return m.sample(cond, n=3, generator=torch.Generator().manual_seed(seed), **kw)

    a = sample(0)
    assert a.shape == (3, cfg.seq_len, cfg.latent_dim)
    assert torch.equal(a, sample(0))
    assert not torch.allclose(a, sample(1))
    assert not torch.allclose(sample(0, guidance=1.0), sample(0, guidance=3.0))
    assert sample(0, steps=2).shape == a.shape
    with pytest.raises(EmomusicError):
        sample(0, steps=5)
    with pytest.raises(EmomusicError, match="guidance"):
        sample(0, guidance=float("nan"))
    known = torch.randn(3, cfg.seq_len, cfg.latent_dim)
    mask = torch.zeros(3, cfg.seq_len, dtype=torch.bool)
    mask[:, :2] = True
    out = sample(0, known=known, known_mask=mask)
    assert torch.equal(out[:, :2], known[:, :2])
    assert not torch.allclose(out[:, 2:], known[:, 2:])


def test_valence_guidance_changes_output_and_vanishes_at_zero_valence():
    torch.manual_seed(0)
    cfg = DiffGANConfig.preset("debug")
    m = DiffusionGAN(cfg).eval()

    def sample(v, vg):
        return m.sample(torch.tensor([v, 0.5]), n=2, generator=torch.Generator().manual_seed(0), valence_guidance=vg)

    assert not torch.allclose(sample(0.8, 0.0), sample(0.8, 2.0))
    assert torch.allclose(sample(0.0, 0.0), sample(0.0, 2.0), atol=1e-5)
    with pytest.raises(EmomusicError):
        sample(0.5, -1.0)


def test_end_of_step_bookkeeping(tmp_path):
    """The per-step tail both training loops share: log row, bar, divergence, periodic save, budget."""
    import math
    import time

    import torch

    from emomusic.compose.train import _end_of_step, _Log

    class Bar:
        def __init__(self):
            self.n, self.post = 0, {}

        def update(self, k):
            self.n += k

        def set_postfix(self, d):
            self.post = d

    saves = []
    log, bar = _Log(tmp_path / "loss_log.csv", ["step", "loss", "seconds"]), Bar()
    kw = dict(acc=None, log=log, bar=bar, total=10, save_every=2, save=saves.append, what="VAE",
              postfix={"loss": ("loss", "{:.2f}")})
    last, stop = _end_of_step(2, {"loss": torch.tensor(1.5)}, t0=time.time(), max_minutes=None, **kw)
    assert last == {"loss": 1.5} and not stop and saves == [False] and bar.n == 1 and bar.post == {"loss": "1.50"}
    assert log.rows[-1]["step"] == 2 and log.rows[-1]["loss"] == 1.5
    _, stop = _end_of_step(3, {"loss": torch.tensor(1.0)}, t0=time.time(), max_minutes=None, **kw)
    assert not stop and saves == [False]  # not a save step
    _, stop = _end_of_step(4, {"loss": torch.tensor(1.0)}, t0=time.time() - 120, max_minutes=1.0, **kw)
    assert stop and saves == [False]  # out of time: no periodic save (the loop saves once at the end)
    with pytest.raises(EmomusicError, match="VAE training diverged at step 5"):
        _end_of_step(5, {"loss": torch.tensor(math.nan)}, t0=time.time(), max_minutes=None, **kw)


def _generator_weights(folder):
    from safetensors.torch import load_file

    return {k: v for k, v in load_file(str(folder / "model.safetensors")).items()}


def test_diffgan_warm_start_continues_a_checkpoint(debug_ckpt, tmp_path, monkeypatch):
    """--init-from: the generator and latent statistics come from the checkpoint; during the
    discriminator-only steps the generator stays as it was, afterwards it trains; the meta and
    the model card say where it started; a mismatched source is a clear error."""
    import emomusic.compose.train as T
    from emomusic.compose.modelcard import write_diffgan_card
    from tiny import tiny_store

    torch.set_num_threads(1)
    store = tiny_store()
    cfg = DiffGANConfig.preset("debug")
    cfg.latent_dim = VAEConfig.preset("debug").latent_dim
    src = debug_ckpt / "diffgan"
    before = _generator_weights(src)
    res = T.train_diffgan(store, debug_ckpt / "vae", tmp_path / "warm", cfg, steps=2, progress=False, transposes=(0,),
                          init_from=src)
    after = _generator_weights(tmp_path / "warm")
    assert set(after) == set(before)
    assert all(torch.equal(after[k], before[k]) for k in before)  # 2 < WARM_START_D_STEPS: D only
    meta = json.loads((tmp_path / "warm" / "config.json").read_text())["meta"]
    assert meta["init_from"]["steps"] == 2 and meta["init_from"]["d_only_steps"] == T.WARM_START_D_STEPS
    write_diffgan_card(tmp_path / "warm", res, command="test", n_files=store.n_files)
    assert "Warm start" in (tmp_path / "warm" / "MODEL_CARD.md").read_text()
    # without the discriminator-only phase the generator moves at once, from the same start
    monkeypatch.setattr(T, "WARM_START_D_STEPS", 0)
    T.train_diffgan(store, debug_ckpt / "vae", tmp_path / "warm0", cfg, steps=2, progress=False, transposes=(0,),
                    init_from=src)
    moved = _generator_weights(tmp_path / "warm0")
    assert torch.equal(moved["latent_mean"], before["latent_mean"])
    assert any(not torch.equal(moved[k], before[k]) for k in before if k.startswith("G."))
    # the source must share the generator's architecture and the VAE
    other = DiffGANConfig.preset("debug")
    other.latent_dim, other.d_model = cfg.latent_dim, cfg.d_model * 2
    with pytest.raises(CheckpointError, match="d_model"):
        T.train_diffgan(store, debug_ckpt / "vae", tmp_path / "bad", other, steps=1, progress=False,
                        transposes=(0,), init_from=src)
    vcfg = VAEConfig.preset("debug")
    T.train_vae(store, tmp_path / "vae2", vcfg, steps=1, progress=False, held_share=0.25, seed=5)
    with pytest.raises(CheckpointError, match="another VAE"):
        T.train_diffgan(store, tmp_path / "vae2", tmp_path / "bad", cfg, steps=1, progress=False,
                        transposes=(0,), init_from=src)
    with pytest.raises(CheckpointError, match="not found"):
        T.train_diffgan(store, debug_ckpt / "vae", tmp_path / "bad", cfg, steps=1, progress=False,
                        transposes=(0,), init_from=tmp_path / "missing")


def test_vae_decoder_only_fine_tune_keeps_the_latent_space(debug_ckpt, tmp_path):
    """train_vae(init_from=, decoder_only=True): the encoder tensors stay byte for byte (same
    encoder_sha1), the decoder trains, the meta says where it started, and the diffusion-GAN
    trained on the first VAE loads with the new one; a VAE trained on (encoder too) is refused."""
    import shutil

    import emomusic.compose.train as T
    from emomusic.compose.api import ComposeEngine
    from emomusic.compose.checkpoint import encoder_sha1, file_sha1
    from tiny import tiny_store

    torch.set_num_threads(1)
    store = tiny_store()
    src = debug_ckpt / "vae"
    vcfg = VAEConfig.preset("debug")
    T.train_vae(store, tmp_path / "dec", vcfg, steps=3, progress=False, held_share=0.25, init_from=src, decoder_only=True)
    T.train_vae(store, tmp_path / "all", vcfg, steps=3, progress=False, held_share=0.25, init_from=src)
    before, dec, full = (_generator_weights(d) for d in (src, tmp_path / "dec", tmp_path / "all"))
    enc_keys = [k for k in before if k.startswith(("enc.", "to_stats."))]
    dec_keys = [k for k in before if k.startswith(("dec.", "from_z."))]
    assert enc_keys and dec_keys and set(enc_keys) | set(dec_keys) == set(before)
    assert all(torch.equal(dec[k], before[k]) for k in enc_keys)
    assert any(not torch.equal(dec[k], before[k]) for k in dec_keys)
    assert any(not torch.equal(full[k], before[k]) for k in enc_keys)
    w = "model.safetensors"
    assert encoder_sha1(tmp_path / "dec" / w) == encoder_sha1(src / w) != encoder_sha1(tmp_path / "all" / w)
    assert file_sha1(tmp_path / "dec" / w) != file_sha1(src / w)
    meta = json.loads((tmp_path / "dec" / "config.json").read_text())["meta"]
    assert meta["init_from"]["decoder_only"] is True and meta["init_from"]["sha1"] == file_sha1(src / w)
    from emomusic.compose.modelcard import write_vae_card

    res = T.TrainResult(3, 1.0, {"loss": 1.0, "bce": 1.0, "kl": 1.0})
    write_vae_card(tmp_path / "dec", res, command="test", data=["tiny"], n_files=store.n_files, n_segments=len(store))
    card = (tmp_path / "dec" / "MODEL_CARD.md").read_text()
    assert "Warm start" in card and "decoder only" in card and encoder_sha1(src / w) in card
    # the diffusion-GAN of debug_ckpt (trained on src) goes with the fine-tuned decoder, not with "all"
    for name, ok in (("dec", True), ("all", False)):
        ck = tmp_path / f"ck_{name}"
        shutil.copytree(debug_ckpt, ck)
        for f in (tmp_path / name).iterdir():
            if f.is_file():
                shutil.copy(f, ck / "vae" / f.name)
        if ok:
            assert ComposeEngine.load(ck).vae.cfg.latent_dim == vcfg.latent_dim
        else:
            with pytest.raises(CheckpointError, match="another VAE"):
                ComposeEngine.load(ck)
    # resuming the decoder-only run without the flag would train the encoder: refused
    with pytest.raises(CheckpointError, match="decoder-only"):
        T.train_vae(store, tmp_path / "dec", vcfg, steps=4, progress=False, held_share=0.25)
    with pytest.raises(EmomusicError, match="needs --init-from"):
        T.train_vae(store, tmp_path / "x", vcfg, steps=1, progress=False, decoder_only=True)
    other = VAEConfig.preset("debug")
    other.hidden *= 2
    with pytest.raises(CheckpointError, match="hidden"):
        T.train_vae(store, tmp_path / "y", other, steps=1, progress=False, init_from=src)
