"""The contour prior: interval classes, transition counts, the bonus table and its effect on decoding."""

from __future__ import annotations

import math

import numpy as np
import pytest

from emomusic.melody.contour import (
    N_CLASSES, N_STATES, ContourPrior, contour_state, corpus_entry, fit_bonus, interval_class, log_probs,
    transition_counts,
)
from emomusic.melody.decode import sample_tunes
from emomusic.melody.grammar import Grammar, TuneSpec, _State
from emomusic.melody.notation import Key
from emomusic.melody.tokenizer import Controls, Tokenizer


def test_interval_classes():
    assert [interval_class(i) for i in (0, 1, 2, 3, 4, 5, 7, 8, 12, 19)] == [0, 1, 1, 2, 2, 3, 3, 4, 4, 4]
    assert [interval_class(-i) for i in (1, 2, 3, 4, 5, 7, 8, 12)] == [-1, -1, -2, -2, -3, -3, -4, -4]


def test_states_are_distinct_and_checked():
    states = {contour_state(m, r) for m in (-4, -3, -2, -1, 1, 2, 3, 4) for r in (False, True)}
    states.add(contour_state(0, False))
    assert states == set(range(N_STATES))
    assert contour_state(0, True) == contour_state(0, False) == N_STATES - 1
    with pytest.raises(ValueError):
        contour_state(5, False)


def test_transition_counts_by_hand():
    # 60 62 64 64 62 67 67: up step from the start, up step after a step up, repeat after a step up,
    # step down after (step up, repeat), leap up after a step down, repeat after a leap up
    c = transition_counts([[60, 62, 64, 64, 62, 67, 67], [70]])
    want = {(contour_state(0, False), 1): 1, (contour_state(1, False), 1): 1, (contour_state(1, False), 0): 1,
            (contour_state(1, True), -1): 1, (contour_state(-1, False), 3): 1, (contour_state(3, False), 0): 1}
    got = {(s, k - 4): n for s, row in enumerate(c) for k, n in enumerate(row) if n}
    assert got == want
    assert len(c) == N_STATES and all(len(r) == N_CLASSES for r in c)


def test_log_probs_and_the_prior_table():
    counts = [[0] * N_CLASSES for _ in range(N_STATES)]
    counts[contour_state(1, False)][1 + 4] = 91  # after a step up: mostly another step up
    lp = log_probs(counts)
    row = lp[contour_state(1, False)]
    assert sum(math.exp(v) for v in row) == pytest.approx(1.0)
    assert row[1 + 4] == pytest.approx(math.log(92 / 100)) and row[-1 + 4] == pytest.approx(math.log(1 / 100))
    assert lp[contour_state(-3, True)] == pytest.approx([math.log(1 / 9)] * N_CLASSES)  # unseen: uniform
    prior = ContourPrior(lp, weight=0.5)
    assert prior.row(1, False) == pytest.approx([0.5 * v for v in row])
    assert prior.bias(1, False, 60, 62) == prior.row(1, False)[1 + 4]
    assert prior.bias(1, False, 60, 59) == prior.row(1, False)[-1 + 4]
    assert prior.bias(0, False, 60, 72) == 0.5 * lp[N_STATES - 1][4 + 4]
    with pytest.raises(ValueError):
        ContourPrior(lp[:-1])
    with pytest.raises(ValueError):
        log_probs([[-1] * N_CLASSES] * N_STATES)
    with pytest.raises(ValueError):
        ContourPrior([[math.nan] * N_CLASSES] * N_STATES)


def test_from_config():
    table = [[0.5] * N_CLASSES for _ in range(N_STATES)]
    assert ContourPrior.from_config({}) is None
    assert ContourPrior.from_config({"contour": {"counts": table}}) is None  # counts, no fitted table
    assert ContourPrior.from_config({"contour": {"bonus": table}}, 0.0) is None
    assert ContourPrior.from_config({"contour": {"bonus": table}}, 2.0).row(1, False) == (1.0,) * N_CLASSES


def _toy_sampler(skew, n=3000, seed=0):
    """A Markov line whose next interval class is drawn from the target's conditional times a fixed
    distortion ``skew`` (class + 4 -> weight) times exp(bonus): what a model with a bias looks like."""
    def measure(table):
        rng = np.random.default_rng(seed)
        lp = log_probs(TARGET)
        line, pitch, last, rep = [60], 60, 0, False
        for _ in range(n):
            st = contour_state(last, rep)
            w = np.exp(np.array(lp[st]) + np.array(table[st])) * skew
            c = int(rng.choice(N_CLASSES, p=w / w.sum())) - 4
            pitch += {0: 0, 1: 2, 2: 3, 3: 5, 4: 9}[abs(c)] * (1 if c > 0 else -1)
            line.append(pitch)
            last, rep = (c, False) if c else (last, True)
        return transition_counts([line])
    return measure


TARGET = [[(30 if k == 5 else 10 if k in (3, 4) else 4) for k in range(N_CLASSES)] for _ in range(N_STATES)]


def test_fit_bonus_undoes_a_distortion():
    """A sampler that prefers going down (a skew) is brought back to the target's conditionals: the
    distance falls over the iterations and the fitted table favours going up."""
    skew = np.array([1, 1, 1, 6, 1, 0.3, 1, 1, 1], dtype=float)
    table, history = fit_bonus(TARGET, _toy_sampler(skew), iterations=3)
    assert history[0] > 0.2 and history[-1] < history[0] / 3
    row = table[contour_state(1, False)]
    assert row[1 + 4] - row[-1 + 4] > math.log(6 / 0.3) * 0.6  # most of the skew undone
    assert all(abs(v) <= 3.0 for r in table for v in r)
    # no skew: only sampling noise, well under the skewed sampler's distance
    assert fit_bonus(TARGET, _toy_sampler(np.ones(N_CLASSES)), iterations=1)[1][0] < history[0] / 2


def test_corpus_entry_counts_sounding_pitches_only():
    from emomusic.melody.notation import CanonTune

    bars = [[(None, 4, 60), (None, 4, None), (None, 4, 62), (None, 4, 64)], [(None, 16, 62)]]
    t = CanonTune(title="t", key=Key(0, "major"), meter="4/4", bars=bars)
    entry = corpus_entry([t])
    assert entry["tunes"] == 1
    assert entry["counts"] == transition_counts([[60, 62, 64, 62]])  # the rest is skipped


def test_grammar_tracks_the_contour_state():
    tok = Tokenizer()
    st = _State(TuneSpec(Key(0, "major"), "4/4", 2, Controls(), seed=0))
    g = Grammar(tok)

    def play(pitch):
        g.advance(st, tok.dur_ids[2])
        g.advance(st, tok.rest if pitch is None else tok.pitch_ids[pitch])

    play(60)
    assert (st.last_move, st.repeated) == (0, False)
    play(64)
    assert (st.last_move, st.repeated) == (2, False)
    play(64)
    assert (st.last_move, st.repeated) == (2, True)
    play(None)  # a rest does not touch the line
    assert (st.last_move, st.repeated) == (2, True)
    play(57)
    assert (st.last_move, st.repeated) == (-3, False)


def _change_rate(tok, seqs):
    rates = []
    for ids in seqs:
        p = np.array(tok.decode(ids).pitches())
        s = np.sign(np.diff(p))
        s = s[s != 0]
        rates.append(np.mean(s[1:] != s[:-1]))
    return float(np.mean(rates))


def test_the_prior_steers_the_decoded_contour(debug_checkpoint):
    """A prior that favours going on in the same direction gives fewer turns than no prior, and one
    that favours turning gives more (same model, same seeds)."""
    from emomusic.melody.api import load_melody_model

    model, tok, _ = load_melody_model(debug_checkpoint)

    def counts(same: bool):
        c = [[1] * N_CLASSES for _ in range(N_STATES)]
        for m in (-4, -3, -2, -1, 1, 2, 3, 4):
            for r in (False, True):
                up = (m > 0) == same
                c[contour_state(m, r)][(1 if up else -1) + 4] = 200
        return c

    def run(prior):
        prior = None if prior is None else ContourPrior(log_probs(prior))
        specs = [TuneSpec(Key(7, "major"), "4/4", 8, Controls(), seed=s, low=55, high=84, contour=prior,
                          tonal_bias=0.0, repeat_penalty=0.0) for s in range(12)]
        return _change_rate(tok, sample_tunes(model, tok, specs))

    plain = run(None)
    assert run(counts(True)) < plain - 0.15
    assert run(counts(False)) > plain + 0.15


def test_generate_melodies_uses_the_checkpoints_fitted_table(debug_checkpoint, tmp_path, sampled_specs):
    """The config's ``contour.bonus`` table reaches every tune's spec (scaled by CONTOUR_WEIGHT); a
    checkpoint without one decodes with no prior; an explicit prior wins; a wrong type is refused."""
    from helpers import checkpoint_with

    import emomusic.melody.api as api
    from emomusic.emotion import Emotion
    from emomusic.errors import EmomusicError

    seen = sampled_specs
    table = [[0.1 * (k - 4)] * N_CLASSES for k in range(N_STATES)]
    ckpt = checkpoint_with(debug_checkpoint, tmp_path / "with_contour",
                           contour={"counts": [[1] * N_CLASSES] * N_STATES, "bonus": table})

    api.generate_melodies(Emotion(0.5, 0.5), bars=4, n=2, checkpoint=ckpt)
    assert len(seen) == 2 and all(s.contour.rows == ContourPrior(table, api.CONTOUR_WEIGHT).rows for s in seen)
    seen.clear()
    api.generate_melodies(Emotion(0.5, 0.5), bars=4, checkpoint=debug_checkpoint)
    assert seen[0].contour is None
    seen.clear()
    mine = ContourPrior([[0.0] * N_CLASSES] * N_STATES)
    api.generate_melodies(Emotion(0.5, 0.5), bars=4, checkpoint=ckpt, contour=mine)
    assert seen[0].contour is mine
    with pytest.raises(EmomusicError, match="contour"):
        api.generate_melodies(Emotion(0.5, 0.5), bars=4, checkpoint=ckpt, contour="steps")


def test_class_index_table_matches_interval_class():
    from emomusic.melody.contour import CLASS_INDEX

    assert [CLASS_INDEX[i + 127] - 4 for i in range(-127, 128)] == [interval_class(i) for i in range(-127, 128)]
