"""Constrained sampling: the grammar of a tune is enforced at every step.

At each step a per-tune state machine (position in the bar, bars written, whether a
duration is waiting for its pitch, whether a chord was written here) masks every token
that would break the tune:

* durations only if they fit in what is left of the bar; ``BAR`` exactly when the bar
  is full; ``EOS`` exactly after the requested number of bars;
* pitches only inside the register window and the key's scale (plus the raised seventh
  in minor), no leap wider than the spread allows, the first note on the tonic triad and
  the final note on the tonic, bar downbeats on the tonic triad; a logit bonus steers the
  running pitch-class histogram toward the requested key's Krumhansl-Kessler profile
  (keeps the mode audible) and a penalty discourages a third repeated note;
* durations shorter than the density allows are masked, and a logit bonus steers density;
* chord symbols (with ``chords``) only at beat starts, required at each bar start, and only
  chords whose notes all belong to the key (the raised 7th counts in minor: E7 in A minor).

Then temperature, top-k and top-p (EMelodyGen's 1.2 / 8 / 0.8 by default) over the allowed
tokens. Each tune has its own ``torch.Generator``, so a tune depends on its seed only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from emomusic.melody.notation import DURATIONS, METERS, PITCH_MAX, PITCH_MIN, Key, chord_pitches
from emomusic.melody.tokenizer import N_PREFIX, Controls, Tokenizer

# Krumhansl & Kessler (1982) probe-tone profiles, tonic first
KK_MAJOR = (6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88)
KK_MINOR = (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17)


@dataclass
class TuneSpec:
    key: Key
    meter: str
    bars: int
    controls: Controls
    seed: int
    low: int = 60  # register window (inclusive)
    high: int = 86
    max_leap: int = 12
    min_duration: int = 1  # shortest note (sixteenths)
    tonal_bias: float = 1.0  # strength of the steering toward the key profile (keeps the mode audible)
    downbeat_triad: bool = True  # every bar's first note from the tonic triad
    repeat_penalty: float = 0.5  # logit penalty for a third repetition of the same pitch in a row
    duration_bias: dict = field(default_factory=dict)  # sixteenths -> logit bonus (density control)

    def triad(self) -> set[int]:
        pcs = self.key.pitch_classes()
        t = self.key.tonic
        third = next(((t + i) % 12 for i in (3, 4) if (t + i) % 12 in pcs), (t + 4) % 12)
        fifth = next(((t + i) % 12 for i in (7, 6, 8) if (t + i) % 12 in pcs), (t + 7) % 12)
        return {t, third, fifth}

    def third_pc(self) -> int:
        pcs = self.key.pitch_classes()
        t = self.key.tonic
        return next(((t + i) % 12 for i in (3, 4) if (t + i) % 12 in pcs), (t + 4) % 12)

    def target_profile(self) -> dict[int, float]:
        """Pitch class -> target share of sounding time: the Krumhansl-Kessler profile of the
        requested key (major profile for major-like modes, minor for minor-like) over the
        allowed pitch classes, lifted off its floor so its shape dominates, normalised."""
        prof = KK_MAJOR if self.key.is_major else KK_MINOR
        allowed = self.allowed_pitch_classes()
        raw = {(self.key.tonic + i) % 12: max(prof[i] - 2.0, 0.1) for i in range(12)
               if (self.key.tonic + i) % 12 in allowed}
        total = sum(raw.values())
        return {pc: v / total for pc, v in raw.items()}

    def profile_bias(self, hist: list[float], prior: float = 4.0) -> dict[int, float]:
        """Logit bonus per pitch class steering the running, duration-weighted pitch-class
        histogram ``hist`` toward :meth:`target_profile`: under-used degrees are favoured,
        over-used ones held back (``tonal_bias`` * log ratio, clipped to +-2)."""
        target = self.target_profile()
        total = sum(hist) + prior
        out = {}
        for pc, t in target.items():
            cur = (hist[pc] + prior * t) / total
            out[pc] = max(-2.0, min(2.0, self.tonal_bias * math.log(t / cur)))
        return out

    def allowed_pitch_classes(self) -> set[int]:
        pcs = set(self.key.pitch_classes())
        if self.key.mode == "minor":
            pcs.add((self.key.tonic + 11) % 12)  # leading tone (harmonic minor)
        return pcs


@dataclass
class _State:
    spec: TuneSpec
    pos: int = 0
    bars_done: int = 0
    pending_dur: int | None = None
    chord_here: bool = False
    last_pitch: int | None = None
    prev_pitch: int | None = None
    hist: list = field(default_factory=lambda: [0.0] * 12)  # sounding time per pitch class
    notes: int = 0
    done: bool = False
    tokens: list[int] = field(default_factory=list)


@dataclass
class Sampling:
    temperature: float = 1.2
    top_k: int = 8
    top_p: float = 0.8


class Grammar:
    """Builds the allowed-token mask for one tune state."""

    def __init__(self, tok: Tokenizer):
        self.tok = tok
        self.V = len(tok)

    def allowed(self, st: _State) -> tuple[list[int], list[float] | None]:
        """Allowed token ids and their logit biases (None: no bias)."""
        tok, spec = self.tok, st.spec
        bar_units, beat = METERS[spec.meter]
        if st.pending_dur is not None:
            final = st.bars_done == spec.bars - 1 and st.pos + st.pending_dur == bar_units
            pcs = {spec.key.tonic} if final else spec.allowed_pitch_classes()
            lo, hi = max(PITCH_MIN, spec.low), min(PITCH_MAX, spec.high)
            if st.last_pitch is not None:
                lo, hi = max(lo, st.last_pitch - spec.max_leap), min(hi, st.last_pitch + spec.max_leap)
            out = [tok.pitch_ids[p] for p in range(lo, hi + 1) if p % 12 in pcs]
            if not out:  # cannot happen with a window of an octave or more; keep a safe fallback
                out = [tok.pitch_ids[p] for p in range(max(PITCH_MIN, spec.low), min(PITCH_MAX, spec.high) + 1)
                       if p % 12 == spec.key.tonic]
            bias = None
            if spec.tonal_bias or spec.repeat_penalty:
                prof = spec.profile_bias(st.hist) if spec.tonal_bias else {}
                bias = []
                for i in out:
                    p = tok.id_to_pitch[i]
                    b = prof.get(p % 12, 0.0)
                    if spec.repeat_penalty and p == st.last_pitch == st.prev_pitch:
                        b -= spec.repeat_penalty
                    bias.append(b)
            if not final and st.notes > 0:
                out.append(tok.rest)
                if bias is not None:
                    bias.append(0.0)
            if st.notes == 0 or (spec.downbeat_triad and st.pos == 0):  # open (and start bars) on the tonic triad
                keep = [j for j, i in enumerate(out) if tok.id_to_pitch.get(i, -1) % 12 in spec.triad()]
                if keep:
                    out = [out[j] for j in keep]
                    bias = None if bias is None else [bias[j] for j in keep]
            return out, bias
        if st.pos == bar_units:
            return [tok.bar], None
        if st.bars_done >= spec.bars:
            return [tok.eos], None
        remaining = bar_units - st.pos
        if spec.controls.chords and st.pos % beat == 0 and not st.chord_here:
            fits = spec.allowed_pitch_classes()  # chords whose notes all belong to the key
            chords = [i for c, i in tok.chord_ids.items() if {p % 12 for p in chord_pitches(c)} <= fits]
            if st.pos == 0:
                return chords, None
        else:
            chords = []
        ds = [d for d in DURATIONS if d <= remaining and (d >= spec.min_duration or d == remaining)]
        if not ds:
            ds = [d for d in DURATIONS if d <= remaining]
        ids = chords + [tok.dur_ids[d] for d in ds]
        if spec.duration_bias:
            return ids, [0.0] * len(chords) + [spec.duration_bias.get(d, 0.0) for d in ds]
        return ids, None

    def advance(self, st: _State, t: int) -> None:
        tok = self.tok
        st.tokens.append(t)
        if t == tok.eos:
            st.done = True
        elif t == tok.bar:
            st.bars_done += 1
            st.pos = 0
            st.chord_here = False
        elif t in tok.id_to_chord:
            st.chord_here = True
        elif t in tok.id_to_dur:
            st.pending_dur = tok.id_to_dur[t]
        else:  # pitch or rest
            dur = st.pending_dur
            st.pos += st.pending_dur
            st.pending_dur = None
            st.chord_here = False
            st.notes += 1
            if t != tok.rest:
                st.prev_pitch, st.last_pitch = st.last_pitch, tok.id_to_pitch[t]
                st.hist[st.last_pitch % 12] += dur


def _filter_sample(logits: torch.Tensor, allowed: list[int], s: Sampling, gen: torch.Generator,
                   bias: list[float] | None = None) -> int:
    """Sample one token from ``logits`` (V,) restricted to ``allowed`` (plus ``bias``)."""
    if len(allowed) == 1:
        return allowed[0]
    idx = torch.tensor(allowed, dtype=torch.long)
    lg = logits[idx].float()
    if bias is not None:
        lg = lg + torch.tensor(bias, dtype=torch.float32)
    lg = lg / max(s.temperature, 1e-5)
    k = min(s.top_k, lg.numel()) if s.top_k and s.top_k > 0 else lg.numel()
    vals, order = torch.topk(lg, k)
    probs = torch.softmax(vals, dim=0)
    if 0 < s.top_p < 1:
        cum = torch.cumsum(probs, dim=0)
        keep = (cum - probs) < s.top_p  # always keeps the first
        probs = probs * keep
        probs = probs / probs.sum()
    u = torch.rand((), generator=gen).item()
    cum = torch.cumsum(probs, dim=0)
    j = int(torch.searchsorted(cum, torch.tensor(u * float(cum[-1]))).clamp(max=len(probs) - 1))
    return allowed[int(order[j])]


@torch.no_grad()
def sample_tunes(model, tok: Tokenizer, specs: list[TuneSpec], sampling: Sampling | None = None) -> list[list[int]]:
    """Token sequences (prefix included) for ``specs``, decoded together as one batch."""
    sampling = sampling or Sampling()
    model.eval()
    grammar = Grammar(tok)
    states = [_State(s) for s in specs]
    gens = [torch.Generator().manual_seed(int(s.seed) & 0x7FFFFFFFFFFFFFFF) for s in specs]
    prefix = torch.tensor([tok.prefix(s.key, s.meter, s.controls) for s in specs], dtype=torch.long)
    for st, row in zip(states, prefix.tolist()):
        st.tokens = list(row)
    context = model.config.context
    logits, cache = model(prefix, torch.arange(N_PREFIX), cache=None)
    last = logits[:, -1, :]
    t = N_PREFIX
    drop_chunk = max(1, context // 4)
    max_steps = max(s.bars for s in specs) * (max(METERS[s.meter][0] for s in specs) * 3 + 1) + 2
    for _ in range(max_steps):
        nxt = []
        for i, st in enumerate(states):
            if st.done:
                nxt.append(tok.pad)
                continue
            a, bias = grammar.allowed(st)
            choice = _filter_sample(last[i], a, sampling, gens[i], bias)
            grammar.advance(st, choice)
            nxt.append(choice)
        if all(st.done for st in states):
            break
        if cache[0][0].shape[2] >= context:  # slide the window, keep the control prefix
            cut = N_PREFIX + drop_chunk
            cache = [(torch.cat([k[:, :, :N_PREFIX], k[:, :, cut:]], 2), torch.cat([v[:, :, :N_PREFIX], v[:, :, cut:]], 2))
                     for k, v in cache]
        logits, cache = model(torch.tensor(nxt, dtype=torch.long)[:, None], torch.tensor([t]), cache=cache)
        last = logits[:, -1, :]
        t += 1
    for st in states:
        if not st.done:
            raise RuntimeError("decoder did not finish a tune (grammar bug)")
    return [st.tokens for st in states]
