"""The numpy decoding twin gives the torch model's logits (the reference) and follows weight changes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from emomusic.melody.fastlm import NumpyLM, numpy_twin
from emomusic.melody.model import MelodyLM, MelodyLMConfig


@pytest.fixture
def model():
    torch.manual_seed(3)
    m = MelodyLM(MelodyLMConfig(vocab_size=50, d_model=24, n_layers=2, n_heads=3, d_ff=40, context=64, dropout=0.0))
    with torch.no_grad():  # non-trivial norms and biases, so every parameter matters
        for p in m.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return m.eval()


def test_logits_match_torch_with_and_without_cache(model):
    idx = torch.randint(0, 50, (2, 17), generator=torch.Generator().manual_seed(0))
    lm = NumpyLM(model)
    with torch.no_grad():
        ref1, cache = model(idx[:, :9], torch.arange(9))
        ref2, _ = model(idx[:, 9:], torch.arange(9, 17), cache=cache)
        ref3, _ = model(idx[:, 9:10], torch.arange(9, 10), cache=cache)
    got1, npc = lm.forward(idx[:, :9].numpy(), np.arange(9))
    got2, _ = lm.forward(idx[:, 9:].numpy(), np.arange(9, 17), cache=npc)
    got3, _ = lm.forward(idx[:, 9:10].numpy(), np.arange(9, 10), cache=npc)
    for ref, got in ((ref1, got1), (ref2, got2), (ref3, got3)):
        assert got.shape == tuple(ref.shape)
        np.testing.assert_allclose(got, ref.numpy(), rtol=1e-4, atol=1e-4)
    assert np.abs(got1).max() > 0.1  # not a trivially small output


def test_positions_matter_and_the_cache_holds_keys(model):
    lm = NumpyLM(model)
    idx = np.array([[1, 2, 3, 4]])
    a, cache = lm.forward(idx, np.arange(4))
    b, _ = lm.forward(idx, np.arange(10, 14))
    assert len(cache) == 2 and cache[0][0].shape == (1, 3, 4, 8)
    np.testing.assert_allclose(a[:, 0], b[:, 0], rtol=1e-5, atol=1e-5)  # one token: rotation cancels
    assert np.abs(a[:, -1] - b[:, -1]).max() < 1e-4  # relative positions only (rotary)
    c, _ = lm.forward(idx[:, ::-1].copy(), np.arange(4))
    assert np.abs(a[:, -1] - c[:, -1]).max() > 1e-3  # order matters


def test_twin_is_cached_and_rebuilt_when_weights_change(model):
    t1 = numpy_twin(model)
    assert numpy_twin(model) is t1
    with torch.no_grad():
        model.ln_f.bias.add_(1.0)
    t2 = numpy_twin(model)
    assert t2 is not t1
    idx = torch.tensor([[3, 4, 5]])
    with torch.no_grad():
        ref, _ = model(idx)
    np.testing.assert_allclose(t2.forward(idx.numpy(), np.arange(3))[0], ref.numpy(), rtol=1e-4, atol=1e-4)


def test_one_token_steps_match_torch(model):
    """A batch of one fed token by token (the decoder's usual step, a separate code path) gives
    the torch model's logits at every position."""
    idx = torch.randint(0, 50, (1, 12), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref, _ = model(idx)
    lm = NumpyLM(model)
    got, cache = lm.forward(idx[:, :3].numpy(), np.arange(3))
    rows = [got[0, -1]]
    for t in range(3, 11):
        logits, cache = lm.forward(idx[:, t:t + 1].numpy(), np.arange(t, t + 1), cache=cache)
        assert logits.shape == (1, 1, 50)
        rows.append(logits[0, 0])
    np.testing.assert_allclose(np.array(rows), ref[0, 2:11].numpy(), rtol=1e-4, atol=1e-4)


def test_cache_grows_past_its_capacity_and_slides_keeping_the_prefix(model):
    idx = torch.randint(0, 50, (2, 21), generator=torch.Generator().manual_seed(2))
    lm = NumpyLM(model)
    cache = lm.new_cache(2, 4)  # too small: the buffer must grow
    _, cache = lm.forward(idx[:, :20].numpy(), np.arange(20), cache=cache)
    assert cache.n == 20 and cache.k.shape[3] >= 20
    cache = cache.slide(3, 10)  # keep positions 0-2 and 10-19
    assert cache.n == 13 and cache[0][0].shape == (2, 3, 13, 8)
    got, _ = lm.forward(idx[:, 20:21].numpy(), np.arange(20, 21), cache=cache)
    keep = torch.tensor([0, 1, 2] + list(range(10, 20)))
    with torch.no_grad():  # the torch model with its cache cut the same way (what decoding did before)
        _, tc = model(idx[:, :20], torch.arange(20), cache=None)
        tc = [(k[:, :, keep], v[:, :, keep]) for k, v in tc]
        ref, _ = model(idx[:, 20:21], torch.arange(20, 21), cache=tc)
    np.testing.assert_allclose(got[:, 0], ref[:, -1].numpy(), rtol=1e-4, atol=1e-4)
    with torch.no_grad():
        full, _ = model(idx)
    assert np.abs(got[:, 0] - full[:, -1].numpy()).max() > 1e-3  # the dropped tokens mattered
    with pytest.raises(ValueError):
        cache.slide(5, 4)


def test_last_only_gives_the_last_row_for_any_run_length(model):
    idx = torch.randint(0, 50, (1, 14), generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        ref, _ = model(idx)
    lm = NumpyLM(model)
    _, cache = lm.forward(idx[:, :6].numpy(), np.arange(6))
    for a, b in ((6, 8), (8, 9), (9, 14)):  # 2 tokens (one-token path), 1, 5 (batched path)
        got, cache = lm.forward(idx[:, a:b].numpy(), np.arange(a, b), cache=cache, last_only=True)
        assert got.shape == (1, 1, 50) and cache.n == b
        np.testing.assert_allclose(got[0, 0], ref[0, b - 1].numpy(), rtol=1e-4, atol=1e-4)


def test_runs_fed_at_once_match_torch_on_both_paths(model):
    """feed() sends short runs token by token and longer ones (a copied bar) through the
    many-row path; both give the torch model's logits for the run's last token, and the
    values cache keeps its shape (B, H, n, D) for readers."""
    idx = torch.randint(0, 50, (1, 20), generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        ref, _ = model(idx)
    lm = NumpyLM(model)
    _, cache = lm.forward(idx[:, :5].numpy(), np.arange(5))
    toks = idx[0].tolist()
    for a, b in ((5, 7), (7, 7 + NumpyLM.STEP_RUN + 4), (7 + NumpyLM.STEP_RUN + 4, 20)):
        got, cache = lm.feed(toks[a:b], a, cache)
        assert got.shape == (50,) and cache.n == b
        np.testing.assert_allclose(got, ref[0, b - 1].numpy(), rtol=1e-4, atol=1e-4)
    assert cache[1][1].shape == (1, 3, 20, 8)


def test_a_softmax_that_would_overflow_is_recomputed_shifted():
    """Scores far above exp's float32 range (88): the unshifted softmax overflows, feed()
    and forward() notice the logits are not finite and compute again with the scores
    shifted by their maximum, as torch does; the answer matches torch."""
    torch.manual_seed(8)
    m = MelodyLM(MelodyLMConfig(vocab_size=30, d_model=16, n_layers=2, n_heads=2, d_ff=32, context=32, dropout=0.0))
    with torch.no_grad():
        for blk in m.blocks:
            blk.qkv.weight[:32].mul_(300.0)  # queries and keys: scores in the thousands
    m.eval()
    idx = torch.randint(0, 30, (1, 9), generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        ref, _ = m(idx)
    lm = NumpyLM(m)
    _, cache = lm.forward(idx[:, :4].numpy(), np.arange(4))
    with np.errstate(over="ignore", invalid="ignore"):  # the unshifted softmax alone really overflows
        assert not np.isfinite(lm._step(int(idx[0, 4]), 4, cache.reserve(5))).all()
    rows = []
    for t in range(4, 9):
        got, cache = lm.feed([int(idx[0, t])], t, cache)
        rows.append(got)
    assert np.isfinite(np.array(rows)).all()
    np.testing.assert_allclose(np.array(rows), ref[0, 4:9].numpy(), rtol=1e-3, atol=1e-3)
    whole, _ = lm.forward(idx.numpy(), np.arange(9))
    np.testing.assert_allclose(whole[0], ref[0].numpy(), rtol=1e-3, atol=1e-3)
