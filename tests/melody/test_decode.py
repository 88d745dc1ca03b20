"""The constrained sampler: token choice (temperature, top-k, top-p) and the lone-tune fast path."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from emomusic.form import parse_form
from emomusic.melody.decode import Sampling, TuneSpec, _filter_sample, sample_tunes
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
