"""compose_many / draft_many: many compose calls with the diffusion model batched, each call
keeping its own emotion, form plan and seed (debug checkpoint trained in code)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from emomusic.compose import compose, compose_many
from emomusic.compose import repeats
from emomusic.compose.api import ComposeEngine, draft_many
from emomusic.compose.diffgan import generators, randn
from emomusic.emotion import Emotion
from emomusic.errors import EmomusicError
from emomusic.form import resolve_form

torch.set_num_threads(1)


def test_randn_rows_draw_what_they_would_draw_alone():
    rows = randn((3, 5, 4), generators([7, 8, 9]))
    for r, seed in enumerate([7, 8, 9]):
        alone = torch.randn((1, 5, 4), generator=torch.Generator().manual_seed(seed))
        assert torch.equal(rows[r:r + 1], alone)
    assert torch.equal(randn((2, 3), generators(5)), torch.randn((2, 3), generator=torch.Generator().manual_seed(5)))
    with pytest.raises(EmomusicError, match="2 generators for a batch of 3"):
        randn((3, 4), generators([1, 2]))


def test_one_seed_in_a_list_samples_the_same_bits(debug_ckpt):
    eng = ComposeEngine.load(debug_ckpt)
    conds = np.full((1, 6, 2), 0.4, np.float32)  # longer than the debug window: windowed continuation
    assert np.array_equal(eng.generate(conds, seed=[11]), eng.generate(conds, seed=11))
    plan = resolve_form("AABA", 8)
    assert np.array_equal(repeats.generate_with_form(eng, conds[:, :4], plan, seed=[3]),
                          repeats.generate_with_form(eng, conds[:, :4], plan, seed=3))
    with pytest.raises(EmomusicError, match="2 seeds for 1 sequences"):
        eng.generate(conds, seed=[1, 2])


def _calls(ckpt):
    form = resolve_form("AABA", 8)
    return [dict(emotion=Emotion(v, a), bars=8, seed=s, form=form, checkpoint=ckpt, tempo=100.0)
            for v, a, s in [(0.6, 0.6, 1), (-0.6, 0.5, 2), (0.2, -0.7, 3), (-0.5, -0.5, 4)]]


def test_a_call_alone_is_compose_to_the_bit(debug_ckpt):
    for call in _calls(debug_ckpt)[:2]:
        (draft,) = draft_many([call])
        args = {k: v for k, v in call.items() if k != "emotion"}
        (want,) = compose(call["emotion"], **args)
        (got,) = draft.finish()
        assert got.notes == want.notes and got.markers == want.markers and got.tempos == want.tempos


def test_calls_sharing_a_plan_are_sampled_in_one_batch(debug_ckpt, monkeypatch):
    seen = []
    real = repeats.generate_with_form

    def spy(eng, conds, plan, **kw):
        seen.append((conds.shape[0], kw["seed"]))
        return real(eng, conds, plan, **kw)

    monkeypatch.setattr(repeats, "generate_with_form", spy)
    calls = _calls(debug_ckpt)
    drafts = draft_many(calls)
    assert seen == [(4, [1, 2, 3, 4])]  # one batch, one seed per row
    seen.clear()
    alone = [draft_many([c])[0] for c in calls]
    assert seen == [(1, [c["seed"]]) for c in calls]
    for d, a in zip(drafts, alone):  # the same noise per row: only the float arithmetic differs
        assert d.latents.shape == a.latents.shape == (1, 4, ComposeEngine.load(debug_ckpt).vae.cfg.latent_dim)
        np.testing.assert_allclose(d.latents, a.latents, atol=1e-4)
    pieces = compose_many(calls)
    assert [len(p) for p in pieces] == [1, 1, 1, 1]
    assert all(p[0].n_bars == 8 and p[0].notes for p in pieces)


def test_batches_split_by_plan_length_and_repeat_choice(debug_ckpt, monkeypatch):
    seen = []
    real = repeats.generate_with_form

    def spy(eng, conds, plan, **kw):
        seen.append((plan, conds.shape[1], tuple(kw["seed"])))
        return real(eng, conds, plan, **kw)

    monkeypatch.setattr(repeats, "generate_with_form", spy)
    aaba8, abab8 = resolve_form("AABA", 8), resolve_form("ABAB", 8)
    steady = dict(emotion=Emotion(0.5, 0.5), bars=8, checkpoint=debug_ckpt)
    calls = [dict(steady, seed=1, form=aaba8), dict(steady, seed=2, form=abab8), dict(steady, seed=3, form=aaba8),
             dict(steady, seed=4, form=aaba8, to=Emotion(-0.8, -0.8)),  # its repeats move: re-conditioned
             dict(steady, seed=5, form="none", bars=6)]
    draft_many(calls)
    assert sorted((p.text, S, s) for p, S, s in seen) == [("AABA", 4, (1, 3)), ("AABA", 4, (4,)), ("ABAB", 4, (2,)),
                                                          ("none", 3, (5,))]
    c = np.array([[0.5, 0.5]] * 4, np.float32)
    assert repeats.return_choices(c, aaba8, 2) == (True, True)
    moving = c.copy()
    moving[3] = [-0.5, -0.5]
    assert repeats.return_choices(moving, aaba8, 2) == (True, False)
    assert repeats.return_choices(c, resolve_form("none", 8), 2) == ()


def test_n_pieces_in_a_call_are_composed_as_compose_does(debug_ckpt):
    call = dict(emotion=Emotion(0.3, 0.3), bars=6, n=2, seed=9, checkpoint=debug_ckpt, threshold=0.3)
    (got,) = compose_many([call])
    want = compose(call.pop("emotion"), **call)
    assert [p.notes for p in got] == [p.notes for p in want]


@pytest.mark.parametrize("call, match", [
    ({"bars": 0}, "bars"), ({"seed": -1}, "seed"), ({"colour": "red"}, "bad compose arguments"),
])
def test_bad_calls_fail_before_sampling(debug_ckpt, call, match):
    with pytest.raises(EmomusicError, match=match):
        draft_many([dict(emotion=Emotion(0, 0), checkpoint=debug_ckpt), dict(call, emotion=Emotion(0, 0),
                                                                            checkpoint=debug_ckpt)])
