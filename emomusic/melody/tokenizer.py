"""Tokens for canonical ABC tunes: control prefix, then note-level events bar by bar.

A sequence is::

    BOS KEY_<pc> MODE_<mode> METER_<m> QUAD_<Q> REG_<b> SPR_<b> DEN_<b> CHORDS_<0|1>
    ( [CH_<root>_<quality>] DUR_<sixteenths> (P_<midi> | REST) )* BAR  ... BAR EOS

Nine control tokens condition the model: key, mode, metre, quadrant, register (mean pitch),
pitch spread (standard deviation), note density and whether chord symbols are wanted
(``REG/SPR/DEN`` are tertile bins of the corpus statistics, saved with the model). The
event grammar is what :mod:`emomusic.melody.grammar` enforces while :mod:`emomusic.melody.decode`
samples. The vocabulary is saved as ``emomusic/tokenizers/abc_melody.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from emomusic.errors import CheckpointError, EmomusicError
from emomusic.melody.notation import (
    CHORD_QUALITIES, DURATIONS, METERS, MODES, PITCH_MAX, PITCH_MIN, CanonTune, Key,
)

N_PREFIX = 9
VERSION = 1


@dataclass(frozen=True)
class Controls:
    """What the model is conditioned on (besides key, mode and metre)."""

    quadrant: str = "Q1"
    register: int = 1  # 0 low, 1 mid, 2 high
    spread: int = 1  # pitch SD bin
    density: int = 1  # notes-per-beat bin
    chords: bool = False

    def to_dict(self) -> dict:
        return {"quadrant": self.quadrant, "register": self.register, "spread": self.spread,
                "density": self.density, "chords": self.chords}


def build_vocab() -> list[str]:
    v = ["PAD", "BOS", "EOS", "BAR"]
    v += [f"KEY_{i}" for i in range(12)]
    v += [f"MODE_{m}" for m in MODES]
    v += [f"METER_{m}" for m in METERS]
    v += [f"QUAD_Q{i}" for i in range(1, 5)]
    v += [f"{k}_{b}" for k in ("REG", "SPR", "DEN") for b in range(3)]
    v += ["CHORDS_0", "CHORDS_1"]
    v += [f"CH_{r}_{q or 'maj'}" for r in range(12) for q in CHORD_QUALITIES]
    v += [f"DUR_{d}" for d in DURATIONS]
    v += [f"P_{p}" for p in range(PITCH_MIN, PITCH_MAX + 1)]
    v += ["REST"]
    return v


class Tokenizer:
    def __init__(self, vocab: list[str] | None = None):
        self.vocab = list(vocab or build_vocab())
        self.index = {t: i for i, t in enumerate(self.vocab)}
        if len(self.index) != len(self.vocab):
            raise CheckpointError("tokenizer vocabulary has duplicates")
        ix = self.index
        self.pad, self.bos, self.eos, self.bar = ix["PAD"], ix["BOS"], ix["EOS"], ix["BAR"]
        self.rest = ix["REST"]
        self.dur_ids = {d: ix[f"DUR_{d}"] for d in DURATIONS}
        self.pitch_ids = {p: ix[f"P_{p}"] for p in range(PITCH_MIN, PITCH_MAX + 1)}
        self.chord_ids = {(r, q): ix[f"CH_{r}_{q or 'maj'}"] for r in range(12) for q in CHORD_QUALITIES}
        self.id_to_dur = {v: k for k, v in self.dur_ids.items()}
        self.id_to_pitch = {v: k for k, v in self.pitch_ids.items()}
        self.id_to_chord = {v: k for k, v in self.chord_ids.items()}

    def __len__(self) -> int:
        return len(self.vocab)

    # -- persistence ------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"name": "abc_melody", "version": VERSION, "n_prefix": N_PREFIX, "durations_in_sixteenths": list(DURATIONS),
                "pitch_range": [PITCH_MIN, PITCH_MAX], "meters": list(METERS), "tokens": self.vocab}

    def save(self, path: str | Path) -> None:
        from emomusic.atomic import write_text_atomic

        write_text_atomic(path, json.dumps(self.to_dict(), indent=1) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "Tokenizer":
        try:
            d = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"cannot read tokenizer {path}: {exc}") from None
        if d.get("name") != "abc_melody" or d.get("version") != VERSION:
            raise CheckpointError(f"{path} is not an abc_melody v{VERSION} tokenizer")
        return cls(d["tokens"])

    # -- encoding -----------------------------------------------------------------------
    def prefix(self, key: Key, meter: str, controls: Controls) -> list[int]:
        ix = self.index
        if meter not in METERS:
            raise EmomusicError(f"unsupported metre {meter!r}; use one of {', '.join(METERS)}")
        return [
            self.bos, ix[f"KEY_{key.tonic}"], ix[f"MODE_{key.mode}"], ix[f"METER_{meter}"],
            ix[f"QUAD_{controls.quadrant}"], ix[f"REG_{controls.register}"], ix[f"SPR_{controls.spread}"],
            ix[f"DEN_{controls.density}"], ix["CHORDS_1" if controls.chords else "CHORDS_0"],
        ]

    def encode_bars(self, bars, chords: bool = True) -> list[int]:
        out = []
        for bar in bars:
            for chord, dur, pitch in bar:
                if chords and chord is not None:
                    out.append(self.chord_ids[chord])
                out.append(self.dur_ids[dur])
                out.append(self.rest if pitch is None else self.pitch_ids[pitch])
            out.append(self.bar)
        return out

    def encode(self, tune: CanonTune, controls: Controls) -> list[int]:
        return self.prefix(tune.key, tune.meter, controls) + self.encode_bars(tune.bars, controls.chords) + [self.eos]

    def bar_starts(self, ids: list[int]) -> list[int]:
        """Indices in ``ids`` where a bar begins (after the prefix and after each BAR)."""
        starts = [N_PREFIX]
        starts += [i + 1 for i, t in enumerate(ids) if t == self.bar and i + 1 < len(ids) and ids[i + 1] != self.eos]
        return starts

    # -- decoding ----------------------------------------------------------------------
    def decode(self, ids: list[int], title: str = "") -> CanonTune:
        """Inverse of :meth:`encode` (the controls other than key/mode/metre are not kept)."""
        if len(ids) < N_PREFIX or ids[0] != self.bos:
            raise EmomusicError("token sequence does not start with a control prefix")
        v = self.vocab
        key = Key(int(v[ids[1]].split("_")[1]), v[ids[2]].split("_", 1)[1])
        meter = v[ids[3]].split("_", 1)[1]
        bars, bar, chord, dur = [], [], None, None
        for t in ids[N_PREFIX:]:
            if t == self.eos:
                break
            if t == self.bar:
                bars.append(bar)
                bar = []
            elif t in self.id_to_chord:
                chord = self.id_to_chord[t]
            elif t in self.id_to_dur:
                dur = self.id_to_dur[t]
            elif t == self.rest or t in self.id_to_pitch:
                if dur is None:
                    raise EmomusicError("a pitch without a duration in the token sequence")
                bar.append((chord, dur, None if t == self.rest else self.id_to_pitch[t]))
                chord, dur = None, None
            else:
                raise EmomusicError(f"unexpected token {v[t]} in a tune body")
        if bar:
            bars.append(bar)
        return CanonTune(key, meter, bars, title)


def default_tokenizer_path() -> Path:
    from emomusic.paths import tokenizers_dir

    return tokenizers_dir() / "abc_melody.json"
