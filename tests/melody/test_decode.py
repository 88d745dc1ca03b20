"""The constrained sampler: token choice (temperature, top-k, top-p) and the lone-tune fast path."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from emomusic.form import parse_form
from emomusic.melody.decode import Sampling, _filter_sample, sample_tunes
from emomusic.melody.grammar import TuneSpec
from emomusic.melody.notation import Key
from emomusic.melody.tokenizer import Controls


def _draws(logits, allowed, sampling, n=4000, bias=None, seed=0):
    rng = np.random.default_rng(seed)
    return Counter(_filter_sample(np.asarray(logits, np.float32), allowed, sampling, rng, bias) for _ in range(n))


def test_sampling_follows_the_tempered_softmax_over_the_allowed_tokens():
    logits = np.zeros(10, np.float32)
    logits[[2, 5, 7]] = [1.0, 0.0, -1.0]
    logits[0] = 50.0  # not allowed: must never come out
    got = _draws(logits, [2, 5, 7], Sampling(temperature=2.0, top_k=0, top_p=1.0))
    assert set(got) == {2, 5, 7}
    w = np.exp(np.array([1.0, 0.0, -1.0]) / 2.0)
    want = w / w.sum()
    for tok, p in zip((2, 5, 7), want):
        assert abs(got[tok] / 4000 - p) < 0.03


def test_top_k_top_p_and_bias_cut_the_tail():
    logits = np.array([3.0, 2.0, 1.0, 0.0, -1.0], np.float32)
    allowed = [0, 1, 2, 3, 4]
    assert set(_draws(logits, allowed, Sampling(1.0, top_k=2, top_p=1.0))) == {0, 1}
    assert set(_draws(logits, allowed, Sampling(1.0, top_k=0, top_p=1e-6))) == {0}  # the best is always kept
    # p = 0.64, 0.24, 0.09, ...: top-p 0.8 keeps the first two (0.64 < 0.8), not the third (0.88 >= 0.8)
    assert set(_draws(logits, allowed, Sampling(1.0, top_k=0, top_p=0.8))) == {0, 1}
    assert set(_draws(logits, allowed, Sampling(1.0, top_k=1, top_p=1.0), bias=[0, 0, 0, 0, 10.0])) == {4}
    assert _filter_sample(logits, [3], Sampling(), np.random.default_rng(0)) == 3


def test_sampling_is_seeded():
    logits = np.linspace(0, 1, 8).astype(np.float32)
    a = [_filter_sample(logits, list(range(8)), Sampling(), np.random.default_rng(5)) for _ in range(20)]
    b = [_filter_sample(logits, list(range(8)), Sampling(), np.random.default_rng(5)) for _ in range(20)]
    assert a == b


@pytest.mark.parametrize("form", ["AABB", "none"])
def test_a_lone_tune_decodes_as_it_does_inside_a_batch(debug_checkpoint, form):
    """The lone-tune path feeds copied bars and forced tokens in one model step; the batch path
    feeds them one by one. Same seed, same tokens."""
    from emomusic.melody.api import load_melody_model

    model, tok, _ = load_melody_model(debug_checkpoint)
    specs = [TuneSpec(Key(2, "minor"), m, 8, Controls(), seed=s, form=parse_form(form, 8), low=60, high=79)
             for s, m in ((3, "6/8"), (4, "4/4"), (5, "3/4"))]
    batch = sample_tunes(model, tok, specs)
    for spec, ids in zip(specs, batch):
        assert sample_tunes(model, tok, [spec]) == [ids]
        assert len(tok.decode(ids).bars) == 8


def _numpy_filter_sample(logits, allowed, s, rng, bias=None):
    """The sampler written with numpy arrays (float64), as an independent oracle."""
    if len(allowed) == 1:
        return allowed[0]
    lg = np.asarray(logits, dtype=np.float64)[allowed]
    if bias is not None:
        lg += bias
    order = np.argsort(-lg, kind="stable")
    if s.top_k and s.top_k > 0:
        order = order[:s.top_k]
    w = np.exp((lg[order] - lg[order[0]]) * (1.0 / max(s.temperature, 1e-5)))
    cum = np.cumsum(w)
    m = len(w)
    if 0 < s.top_p < 1:
        m = max(1, int(np.searchsorted(cum - w, s.top_p * cum[-1], side="left")))
    j = min(int(np.searchsorted(cum[:m], rng.random() * cum[m - 1], side="right")), m - 1)
    return allowed[int(order[j])]


def test_sampler_draws_the_same_tokens_as_its_numpy_formulation():
    """The sampler works on Python floats (faster for a few dozen tokens); with the same random
    stream it picks exactly the tokens the array formulation picks, ties and biases included."""
    rng = np.random.default_rng(11)
    for trial in range(600):
        logits = (rng.standard_normal(60) * rng.uniform(0.1, 6)).astype(np.float32)
        if trial % 5 == 0:
            logits = np.round(logits)  # ties: the stable order decides
        allowed = sorted(rng.choice(60, int(rng.integers(2, 30)), replace=False).tolist())
        bias = rng.standard_normal(len(allowed)).tolist() if trial % 2 else None
        s = Sampling(float(rng.uniform(0.5, 2.0)), int(rng.integers(0, 20)), float(rng.choice([0.5, 0.8, 0.95, 1.0])))
        seed = int(rng.integers(1 << 30))
        g1, g2 = np.random.default_rng(seed), np.random.default_rng(seed)
        want = [_numpy_filter_sample(logits, allowed, s, g1, bias) for _ in range(3)]
        assert [_filter_sample(logits, allowed, s, g2, bias) for _ in range(3)] == want
