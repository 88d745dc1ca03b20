"""Constrained sampling: the grammar of a tune (:mod:`emomusic.melody.grammar`) is enforced
at every step.

At each step the tune's grammar masks every token that would break the tune (bar lengths,
register, scale, leaps, cadences, chords; see :mod:`emomusic.melody.grammar`) and biases
some of the rest. Then temperature, top-k and top-p (1.2 / 16 / 0.95, see :class:`Sampling`)
over the allowed tokens. Bars that the tune's form repeats are copied from their first
statement (:meth:`~emomusic.melody.grammar.TuneSpec.bar_plan`). Each tune has its own random
generator (numpy's, seeded from the tune's seed), so a tune depends on its seed only.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from itertools import accumulate

import numpy as np

from emomusic.melody.grammar import Grammar, TuneSpec, _State
from emomusic.melody.notation import METERS
from emomusic.melody.tokenizer import N_PREFIX, Tokenizer


@dataclass
class Sampling:
    """Temperature, then top-k, then top-p over the grammar's allowed tokens. EMelodyGen's
    1.2 / 8 / 0.8 cut the tail where the leaps are: tunes moved in smaller intervals than real
    ones (mean 2.4 against 2.7 semitones, leaps 10% against 15%); 16 / 0.95 matches them."""

    temperature: float = 1.2
    top_k: int = 16
    top_p: float = 0.95


def _filter_sample(logits, allowed: list[int], s: Sampling, rng: np.random.Generator,
                   bias: list[float] | None = None) -> int:
    """Sample one token from ``logits`` (V,) restricted to ``allowed`` (plus ``bias``): temperature,
    then top-k, then top-p (the smallest head of the sorted distribution whose mass reaches
    ``top_p``; the most likely token is always kept).

    In plain Python floats (doubles, as numpy's float64), not numpy: a few dozen allowed
    tokens cost less as a list than the dozen numpy calls on tiny arrays did, and the sums,
    sorts and searches are the same (a stable sort, running sums left to right, binary
    searches), so the same tokens come out."""
    if len(allowed) == 1:
        return allowed[0]
    row = logits.tolist() if isinstance(logits, np.ndarray) else list(logits)
    lg = [row[i] for i in allowed]
    if bias is not None:
        lg = [a + b for a, b in zip(lg, bias)]
    order = sorted(range(len(lg)), key=lg.__getitem__, reverse=True)  # stable: ties keep their order
    if s.top_k and s.top_k > 0:
        order = order[:s.top_k]
    top, inv_t = lg[order[0]], 1.0 / max(s.temperature, 1e-5)
    w = [math.exp((lg[i] - top) * inv_t) for i in order]
    cum = list(accumulate(w))
    m = len(w)
    if 0 < s.top_p < 1:  # keep token i while the mass before it is under top_p
        m = max(1, bisect_left([c - x for c, x in zip(cum, w)], s.top_p * cum[-1]))
    j = min(bisect_right(cum, rng.random() * cum[m - 1], 0, m), m - 1)
    return allowed[order[j]]


def _plan_bar(st: _State, rng: random.Random) -> None:
    """At the start of a bar, queue the tokens of the earlier bar it copies (if the form says so)."""
    if st.done or st.forced or st.pos or st.pending_dur is not None or st.planned == st.bars_done:
        return
    if st.bars_done >= st.spec.bars:
        return
    st.planned = st.bars_done
    src = st.spec.bar_plan(st.bars_done, rng)
    if src is not None and src < len(st.bar_tokens):
        st.forced.extend(st.bar_tokens[src])


def sample_tunes(model, tok: Tokenizer, specs: list[TuneSpec], sampling: Sampling | None = None) -> list[list[int]]:
    """Token sequences (prefix included) for ``specs``, decoded together as one batch.

    Bars that the form repeats are copied from their first statement (their tokens still go
    through the grammar and the model, so what follows continues from them). A lone tune
    feeds every token it does not sample (a copied bar, a bar line, a token the grammar
    leaves no choice for) to the model together with the token before it, in one step.
    """
    sampling = sampling or Sampling()
    model.eval()
    grammar = Grammar(tok)
    states = [_State(s) for s in specs]
    gens = [np.random.default_rng(int(s.seed) & 0x7FFFFFFFFFFFFFFF) for s in specs]
    rngs = [random.Random(int(s.seed) ^ 0x5EED) for s in specs]
    prefix = np.array([tok.prefix(s.key, s.meter, s.controls) for s in specs], dtype=np.int64)
    for st, row in zip(states, prefix.tolist()):
        st.tokens = list(row)
        st.bar_start = len(st.tokens)
    context = model.config.context
    from emomusic.melody.fastlm import numpy_twin

    lm = numpy_twin(model)  # the same maths as model.forward, less overhead per step
    logits, cache = lm.forward(prefix, np.arange(N_PREFIX), cache=None, last_only=True)
    last = logits[:, -1, :]
    t = N_PREFIX
    drop_chunk = max(1, context // 4)
    max_steps = max(s.bars for s in specs) * (max(METERS[s.meter][0] for s in specs) * 3 + 1) + 2
    single = len(states) == 1
    for _ in range(max_steps):
        nxt = []
        for i, st in enumerate(states):
            if st.done:
                nxt.append([tok.pad])
                continue
            if single:
                nxt.append(_lone_step(grammar, st, last[i], sampling, gens[i], rngs[i]))
                continue
            _plan_bar(st, rngs[i])
            if st.forced:
                choice = st.forced.popleft()
            else:
                a, bias = grammar.allowed(st)
                choice = _filter_sample(last[i], a, sampling, gens[i], bias)
            grammar.advance(st, choice)
            nxt.append([choice])
        if all(st.done for st in states):
            break
        T = len(nxt[0])  # > 1 only for a lone tune
        if cache.n + T > context:  # slide the window, keep the control prefix
            cache = cache.slide(N_PREFIX, N_PREFIX + max(drop_chunk, cache.n + T - context))
        if single:  # a lone tune's run of tokens (NumpyLM.feed picks the cheaper path for its length)
            logits, cache = lm.feed(nxt[0], t, cache)
            last = logits[None]
        else:
            logits, cache = lm.forward(np.asarray(nxt, dtype=np.int64), np.arange(t, t + T), cache=cache, last_only=True)
            last = logits[:, -1, :]
        t += T
    for st in states:
        if not st.done:
            raise RuntimeError("decoder did not finish a tune (grammar bug)")
    return [st.tokens for st in states]


def _lone_step(grammar: Grammar, st: _State, logits, sampling: Sampling, gen, rng) -> list[int]:
    """One model step of a lone tune: the sampled token, then every token after it that needs no
    sampling (copied bars, a bar line, a token the grammar leaves alone), up to the next token
    that must be sampled (whose logits the model's step over these tokens gives) or the end."""
    run: list[int] = []
    first = True
    while not st.done:
        _plan_bar(st, rng)
        if st.forced:
            choice = st.forced.popleft()
        else:
            a, bias = st.next_allowed or grammar.allowed(st)
            st.next_allowed = None
            if len(a) == 1:
                choice = a[0]
            elif first:
                choice = _filter_sample(logits, a, sampling, gen, bias)
            else:
                st.next_allowed = (a, bias)  # asked again after the model's step: same state
                break
        first = False
        grammar.advance(st, choice)
        run.append(choice)
    return run
