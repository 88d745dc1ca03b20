#!/usr/bin/env python
"""Realism benchmark (issue #11): can a classifier tell generated music from real music?

A classifier two-sample test (C2ST): every piece becomes a vector of the realism features of
:mod:`emomusic.realism` (melodic interval shape, contour, repeated 4-interval patterns,
chroma and bar self-similarity, cadences on long notes, key strength, pitch-class entropy,
dissonance, polyphony, pitch spread, notes per beat, low-register share; velocity, tempo and
mean register left out), and a random forest (scikit-learn, 200 trees) is scored by
stratified 5-fold cross-validation on "real or generated". Both sets are cut to the same
size (chance 0.5) and to the first ``--bars`` bars. 0.5 = indistinguishable, 1.0 = always
told apart.

Comparisons, pooled over the four quadrants and per quadrant:

* ``compose`` - ``emomusic compose`` pieces (``--n`` in all, a quarter at each quadrant
  centre) against EMOPIA **val** clips (never used to train the engine); sanity row: EMOPIA
  train clips (a sample of the same size per quadrant) against the same val clips.
* ``melody`` - ``emomusic melody`` tunes (no chords) against the melody model's **held-out**
  tunes (the validation split of its training corpus: the same hash of source and title as
  ``emomusic.melody.train``, from the ``--abc`` corpora), melody line only; sanity row: a
  sample of the training tunes against the held-out ones. Real tunes are labelled with the
  model's own quadrant rule (mode x pitch spread + density, statistics from its config).

With a ``form=`` keyword in ``compose`` / ``generate_melodies`` (inspected at run time) the
generated sets are made with the default form and with ``form="none"``; without it the
table says ``form: n/a``. Also printed: per-feature means (real vs generated, with the
standardised difference), the texture targets (real EMOPIA per-quadrant 10th-90th
percentile ranges of notes per beat, low-register share and polyphony, and the share of
generated pieces inside them), and the arousal-axis agreement per quadrant of the
project's estimator with and without its velocity features
(``estimate_emotion(..., neutral=VELOCITY_FEATURES)``: no refit, the velocity features
are held at their training mean).

Run from the repository root::

    python benchmarks/realism.py --n 100 --cache .cache/realism --write-docs docs/benchmarks.md
    python benchmarks/realism.py --n 40 --engines compose      # quicker
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import hashlib
import inspect
import json
import math
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from emomusic import realism as R  # noqa: E402
from emomusic.emotion import QUADRANTS, Emotion  # noqa: E402
from emomusic.errors import EmomusicError  # noqa: E402
from emomusic.piece import KeySignature, Note, Piece, Tempo, TimeSignature, Track  # noqa: E402

DOC_BEGIN = "<!-- realism:begin -->"
DOC_END = "<!-- realism:end -->"
FOLDS = 5
TREES = 200
REPEAT_SEED_STEP = 10007  # --repeats: the r-th extra generated set uses seed + r * this


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# -- statistics ---------------------------------------------------------------------------------------
def c2st(real: np.ndarray, generated: np.ndarray, seed: int = 0, folds: int = FOLDS, trees: int = TREES) -> dict:
    """Classifier two-sample test: cross-validated accuracy of telling the two sets apart.

    The larger set is subsampled (seeded) to the size of the smaller, so chance is 0.5. A
    random forest (``trees`` trees) is scored with stratified ``folds``-fold
    cross-validation; a ``nan`` feature becomes its column median in the training fold.
    Returns ``accuracy`` (mean over folds), ``sd`` (over folds), ``n`` (pieces per set) and
    ``importance`` (mean impurity importance per column). ``nan`` accuracy when a set has
    fewer than ``folds`` pieces.
    """
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import StratifiedKFold

    real, generated = np.asarray(real, float), np.asarray(generated, float)
    m = min(len(real), len(generated))
    if m < folds:
        return {"accuracy": math.nan, "sd": math.nan, "n": m, "importance": []}
    rng = np.random.default_rng(seed)
    real = real[np.sort(rng.choice(len(real), m, replace=False))]
    generated = generated[np.sort(rng.choice(len(generated), m, replace=False))]
    X = np.vstack([real, generated])
    y = np.r_[np.zeros(m, int), np.ones(m, int)]
    accs, imps = [], []
    for tr, te in StratifiedKFold(folds, shuffle=True, random_state=seed).split(X, y):
        with np.errstate(all="ignore"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                med = np.nanmedian(X[tr], axis=0)
        med = np.where(np.isnan(med), 0.0, med)
        Xtr = np.where(np.isnan(X[tr]), med, X[tr])
        Xte = np.where(np.isnan(X[te]), med, X[te])
        clf = RandomForestClassifier(n_estimators=trees, random_state=seed, n_jobs=1)
        clf.fit(Xtr, y[tr])
        accs.append(float((clf.predict(Xte) == y[te]).mean()))
        imps.append(clf.feature_importances_)
    return {"accuracy": float(np.mean(accs)), "sd": float(np.std(accs)), "n": m,
            "importance": [float(v) for v in np.mean(imps, axis=0)]}


def standardized_difference(real: np.ndarray, generated: np.ndarray) -> np.ndarray:
    """Per column (mean generated - mean real) / pooled SD (Cohen's d), ``nan`` ignored; 0 for constant columns."""
    real, generated = np.asarray(real, float), np.asarray(generated, float)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mr, mg = np.nanmean(real, axis=0), np.nanmean(generated, axis=0)
        sd = np.sqrt((np.nanvar(real, axis=0) + np.nanvar(generated, axis=0)) / 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        d = (mg - mr) / sd
    return np.where(sd > 0, d, 0.0)


def nanmean(x) -> float:
    x = np.asarray(x, float)
    x = x[~np.isnan(x)]
    return float(x.mean()) if x.size else math.nan


# -- pieces ----------------------------------------------------------------------------------------------
@dataclass
class PieceSet:
    """Pieces with their quadrant labels and (lazily) their feature matrix."""

    name: str
    pieces: list[Piece]
    quadrants: list[str]
    _X: np.ndarray | None = field(default=None, repr=False)

    @property
    def X(self) -> np.ndarray:
        if self._X is None:
            self._X = R.feature_matrix(self.pieces)
        return self._X

    def rows(self, q: str | None) -> np.ndarray:
        return self.X if q is None else self.X[[i for i, x in enumerate(self.quadrants) if x == q]]

    def count(self, q: str | None) -> int:
        return len(self.pieces) if q is None else sum(x == q for x in self.quadrants)


def crop(piece: Piece, bars: int) -> Piece:
    """The first ``bars`` bars of ``piece`` (notes starting there, cut at the end)."""
    end = bars * piece.time_signature.bar_beats
    tracks = []
    for t in piece.tracks:
        notes = [Note(n.pitch, n.start, min(n.duration, end - n.start), n.velocity) for n in t.notes if n.start < end - 1e-6]
        tracks.append(Track(t.name, t.program, t.is_drum, notes, t.channel))
    return Piece(tracks=tracks, tempos=list(piece.tempos), keys=list(piece.keys),
                 time_signatures=list(piece.time_signatures), title=piece.title)


def piece_to_json(p: Piece) -> dict:
    return {"tempo": p.tempo, "ts": [p.time_signature.numerator, p.time_signature.denominator],
            "key": [p.key.tonic, p.key.mode] if p.key else None, "title": p.title,
            "tracks": [[t.name, t.program, [[n.pitch, n.start, n.duration, n.velocity] for n in t.notes]]
                       for t in p.tracks if not t.is_drum]}


def piece_from_json(d: dict) -> Piece:
    return Piece(tracks=[Track(nm, int(pg), False, [Note(int(a), float(b), float(c), int(v)) for a, b, c, v in ns])
                         for nm, pg, ns in d["tracks"]],
                 tempos=[Tempo(float(d["tempo"]))], time_signatures=[TimeSignature(*d["ts"])],
                 keys=[KeySignature(d["key"][0], d["key"][1])] if d.get("key") else [], title=d.get("title", ""))


class Cache:
    """Optional JSON cache (``--cache``) of generated pieces and parsed real tunes."""

    def __init__(self, folder: str | None):
        self.folder = Path(folder) if folder else None

    def get(self, kind: str, key: list, make):
        if self.folder is None:
            return make()
        h = hashlib.sha1(json.dumps(key, default=str).encode()).hexdigest()[:20]
        f = self.folder / f"{kind}_{h}.json"
        if f.is_file():
            return json.loads(f.read_text())
        value = make()
        from emomusic.atomic import write_text_atomic

        self.folder.mkdir(parents=True, exist_ok=True)
        write_text_atomic(f, json.dumps(value))
        return value


def code_fingerprint() -> str:
    """A hash of emomusic's own source: generated pieces cached under another version of the
    code are made again (a change to the decoder or the form must show in the numbers)."""
    import emomusic

    h = hashlib.sha1()
    root = Path(emomusic.__file__).resolve().parent
    for f in sorted(root.rglob("*.py")):
        h.update(str(f.relative_to(root)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def fingerprint(folder: Path, names=("model.safetensors", "config.json")) -> str:
    parts = []
    for f in sorted(Path(folder).rglob("*")):
        if f.name in names:
            st = f.stat()
            parts.append(f"{f.relative_to(folder)}:{st.st_size}:{st.st_mtime_ns}")
    return "|".join(parts)


# -- real sets -------------------------------------------------------------------------------------------
def emopia_clips(emopia: Path, split: str) -> list[str]:
    listing = emopia / "split" / f"{split}_clip.csv"
    if not listing.is_file():
        raise EmomusicError(f"no EMOPIA split listing at {listing}")
    with open(listing, newline="") as fh:
        return [row["clip_name"] for row in csv.DictReader(fh)]


def read_emopia(emopia: Path, names: list[str], bars: int, name: str) -> PieceSet:
    from emomusic.io import read_piece

    pieces, quads = [], []
    for nm in names:
        try:
            p = read_piece(emopia / "midis" / nm)
        except EmomusicError:
            continue
        if p.notes:
            pieces.append(crop(p, bars))
            quads.append(nm[:2])
    return PieceSet(name, pieces, quads)


def emopia_sets(emopia: Path, bars: int, seed: int, real_n: int | None) -> tuple[PieceSet, PieceSet]:
    """(EMOPIA val clips, a seeded sample of EMOPIA train clips with as many per quadrant)."""
    val = emopia_clips(emopia, "val")
    rng = random.Random(seed)
    if real_n:
        val = [v for q in QUADRANTS for v in rng.sample([x for x in val if x.startswith(q)],
                                                          min(real_n, sum(x.startswith(q) for x in val)))]
    train = emopia_clips(emopia, "train")
    sample = []
    for q in QUADRANTS:
        pool = [x for x in train if x.startswith(q)]
        sample += rng.sample(pool, min(len(pool), sum(x.startswith(q) for x in val)))
    return read_emopia(emopia, val, bars, "EMOPIA val"), read_emopia(emopia, sample, bars, "EMOPIA train sample")


def abc_texts(paths: list[str]) -> list[tuple[str, str]]:
    from emomusic.melody.corpus import abc_files, split_tunes

    out = []
    for f in abc_files(paths):
        raw = f.read_text(encoding="utf-8", errors="replace")
        out.extend((t, f"{f.parent.name}/{f.name}") for t in split_tunes(raw))
    return out


def tune_sets(paths: list[str], bars: int, seed: int, real_n: int | None, cache: Cache,
              checkpoint: str | None) -> tuple[PieceSet, PieceSet, int]:
    """(held-out tunes, a seeded sample of training tunes of twice the size, tunes in the corpus).

    Held out = the melody model's validation split (``emomusic.melody.train._is_val``: a hash
    of source and title), so the model never trained on them. Only the tunes needed are parsed.
    """
    import warnings

    from emomusic.melody.api import load_melody_model, tune_to_piece
    from emomusic.melody.corpus import clean_tune, features, quadrant_of, tune_from_abc
    from emomusic.melody.notation import CanonTune
    from emomusic.melody.train import TrainOptions, _is_val

    stats = load_melody_model(checkpoint)[2]["stats"]
    fraction = TrainOptions().val_fraction
    texts = abc_texts(paths)
    held, rest = [], []
    for text, src in texts:
        c = clean_tune(text)
        if c is None:
            continue
        probe = SimpleNamespace(source=src, title=c[1]["title"])  # what the split hashes
        (held if _is_val(probe, fraction) else rest).append((text, src))
    rng = random.Random(seed)
    if real_n:
        held = rng.sample(held, min(len(held), 4 * real_n))
    rest = rng.sample(rest, min(len(rest), 2 * len(held)))

    def parse(items):
        out = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for text, src in items:
                t = tune_from_abc(text, src)
                if t is not None:
                    out.append(t.to_dict())
        return out

    def to_set(dicts, name):
        pieces, quads = [], []
        for d in dicts:
            t = CanonTune.from_dict(d)
            p = tune_to_piece(t, 120.0, 80, accents=False)
            p.tracks = [tr for tr in p.tracks if tr.name == "Melody"]  # the melody line only
            pieces.append(crop(p, bars))
            quads.append(quadrant_of(features(t), stats))
        return PieceSet(name, pieces, quads)

    key = [sorted(str(Path(p).resolve()) if p != "music21" else p for p in paths), fraction, seed, real_n, len(texts)]
    h = cache.get("heldout", key + ["held"], lambda: parse(held))
    r = cache.get("heldout", key + ["rest"], lambda: parse(rest))
    return to_set(h, "held-out tunes"), to_set(r, "training-tune sample"), len(texts)


# -- generated sets -----------------------------------------------------------------------------------------
def forms_for(fn) -> list[str | None]:
    """``[None, "none"]`` when ``fn`` takes ``form=`` (default form, then no form), else ``[None]``."""
    return [None, "none"] if "form" in inspect.signature(fn).parameters else [None]


def form_label(form: str | None, supported: bool) -> str:
    if not supported:
        return "form: n/a"
    return "form: default" if form is None else f"form: {form}"


def generate(engine: str, n: int, bars: int, seed: int, form: str | None, checkpoint: str | None,
             cache: Cache) -> PieceSet:
    per_q = [n // 4 + (1 if i < n % 4 else 0) for i in range(4)]
    pieces, quads = [], []
    extra = {} if form is None else {"form": form}
    if engine == "compose":
        from emomusic.compose import compose
        from emomusic.paths import checkpoint_path

        fp = fingerprint(Path(checkpoint) if checkpoint else checkpoint_path("compose"))
    else:
        from emomusic.melody import generate_melodies
        from emomusic.melody.api import default_checkpoint

        fp = fingerprint(Path(checkpoint) if checkpoint else default_checkpoint())
    for qi, q in enumerate(QUADRANTS):
        if not per_q[qi]:
            continue
        e = Emotion.from_quadrant(q)

        def make():
            if engine == "compose":
                ps = compose(e, bars=bars, n=per_q[qi], seed=seed + 1000 * qi, checkpoint=checkpoint, **extra)
            else:
                ps = [t.piece for t in generate_melodies(e, bars=bars, n=per_q[qi], seed=seed + 1000 * qi,
                                                         chords=False, checkpoint=checkpoint, **extra)]
            return [piece_to_json(p) for p in ps]

        got = cache.get(engine, [engine, fp, code_fingerprint(), q, per_q[qi], bars, seed, form], make)
        ps = [crop(piece_from_json(d), bars) for d in got]
        pieces += [p for p in ps if p.notes]
        quads += [q] * sum(1 for p in ps if p.notes)
    return PieceSet(f"{engine} generated", pieces, quads)


# -- measurements ------------------------------------------------------------------------------------------
def arousal_agreement(ps: PieceSet) -> dict:
    """Per quadrant: share of pieces whose estimated arousal sign matches the quadrant's,
    with all estimator features and with the velocity features neutral."""
    from emomusic.estimator import VELOCITY_FEATURES, axis_probabilities, estimate_details, load_estimator

    model = load_estimator()
    # P(arousal > 0) with all features and with the velocity features neutral (one extraction)
    probs = []
    for p in ps.pieces:
        d = estimate_details(p, model)
        probs.append((d["p_arousal_positive"], axis_probabilities(d["features"], model, VELOCITY_FEATURES)[1]))
    out = {}
    for q in (None, *QUADRANTS):
        idx = [i for i, x in enumerate(ps.quadrants) if q is None or x == q]
        if not idx:
            out[q or "all"] = {"with": math.nan, "without": math.nan, "n": 0}
            continue
        want = [Emotion.from_quadrant(ps.quadrants[i]).arousal >= 0 for i in idx]
        w = [probs[i][0] >= 0.5 for i in idx]
        wo = [probs[i][1] >= 0.5 for i in idx]
        out[q or "all"] = {"with": float(np.mean([a == b for a, b in zip(w, want)])),
                           "without": float(np.mean([a == b for a, b in zip(wo, want)])), "n": len(idx)}
    return out


def compare(real: PieceSet, other: PieceSet, seed: int, trees: int = TREES, cols: list[int] | None = None) -> dict:
    """C2ST and the biggest differences, pooled and per quadrant, on the feature columns
    ``cols`` (all of :data:`emomusic.realism.FEATURES` by default)."""
    cols = list(range(len(R.FEATURES))) if cols is None else list(cols)
    out = {}
    for q in (None, *QUADRANTS):
        a, b = real.rows(q)[:, cols], other.rows(q)[:, cols]
        r = c2st(a, b, seed=seed, trees=trees)
        d = standardized_difference(a, b) if len(a) and len(b) else np.zeros(len(cols))
        order = np.argsort(-np.abs(d))
        r["top"] = [(R.FEATURES[cols[i]], nanmean(a[:, i]), nanmean(b[:, i]), float(d[i])) for i in order[:3]]
        out[q or "all"] = r
    return out


def c2st_columns(engine: str) -> list[int]:
    """Feature columns of the C2ST for ``engine``: EMOPIA's bar lines are nominal (a fixed
    120 BPM grid, not the music's own bars), so the compose test leaves out the features that
    read the bar grid (:data:`emomusic.realism.GRID_FEATURES`); the tunes have real bars."""
    return [j for j, f in enumerate(R.FEATURES) if engine != "compose" or f not in R.GRID_FEATURES]


def texture(real: list[PieceSet], gens: dict[str, PieceSet]) -> dict:
    """Real per-quadrant 10th-90th percentile ranges of the texture features, and the share of
    generated pieces inside each range (and inside all three at once)."""
    idx = [R.FEATURES.index(f) for f in R.TEXTURE_FEATURES]
    out = {}
    for q in QUADRANTS:
        rx = np.vstack([s.rows(q)[:, idx] for s in real])
        lo, hi = np.nanpercentile(rx, 10, axis=0), np.nanpercentile(rx, 90, axis=0)
        row = {"real_n": int(len(rx)), "ranges": {f: (float(lo[j]), float(hi[j])) for j, f in enumerate(R.TEXTURE_FEATURES)},
               "real_median": {f: float(np.nanmedian(rx[:, j])) for j, f in enumerate(R.TEXTURE_FEATURES)}, "generated": {}}
        for label, g in gens.items():
            gx = g.rows(q)[:, idx]
            inside = (gx >= lo) & (gx <= hi)
            row["generated"][label] = {
                "n": int(len(gx)),
                "median": {f: nanmean([np.nanmedian(gx[:, j])]) if len(gx) else math.nan for j, f in enumerate(R.TEXTURE_FEATURES)},
                "inside": {f: float(inside[:, j].mean()) if len(gx) else math.nan for j, f in enumerate(R.TEXTURE_FEATURES)},
                "inside_all": float(inside.all(axis=1).mean()) if len(gx) else math.nan,
            }
        out[q] = row
    return out


def notes_per_second(piece: Piece) -> float:
    """Notes per second of real time (:attr:`emomusic.attributes.Attributes.notes_per_second`:
    first onset to last end, through the tempo map; EMOPIA's clips lie on a nominal 120 BPM grid
    that is their own seconds, two beats a second). ``nan`` without notes."""
    from emomusic.attributes import measure

    return measure(piece).notes_per_second if piece.notes else math.nan


def density_seconds(real: list[PieceSet], gens: dict[str, PieceSet]) -> dict:
    """Per quadrant: median notes per second of the real sets (pooled) and of each generated set.
    The texture targets are per beat, and EMOPIA's beats are nominal (half a second): this is
    what a listener hears, at each piece's own tempo."""
    out = {}
    for q in QUADRANTS:
        rv = [notes_per_second(p) for s in real for p, x in zip(s.pieces, s.quadrants) if x == q]
        row = {"real": float(np.nanmedian(rv)) if rv else math.nan, "real_n": len(rv), "generated": {}}
        for label, g in gens.items():
            gv = [notes_per_second(p) for p, x in zip(g.pieces, g.quadrants) if x == q]
            row["generated"][label] = float(np.nanmedian(gv)) if gv else math.nan
        out[q] = row
    return out


# -- report --------------------------------------------------------------------------------------------------
def f3(x) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3f}"


def f2(x) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.2f}"


def pct(x) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.0f}%"


def c2st_table(rows: list[tuple[str, dict]]) -> list[str]:
    out = ["| comparison | all quadrants: accuracy (0.5 = indistinguishable) | Q1 | Q2 | Q3 | Q4 | pieces per set (all) | biggest differences, all quadrants (real -> other, Cohen's d) |",
           "|---|---|---|---|---|---|---|---|"]
    for label, r in rows:
        a = r["all"]
        top = "; ".join(f"{n} {f3(mr)} -> {f3(mg)} ({d:+.1f})" for n, mr, mg, d in a["top"])
        qs = " | ".join(f"{f2(r[q]['accuracy'])} (n {r[q]['n']})" for q in QUADRANTS)
        out.append(f"| {label} | **{f3(a['accuracy'])}** +- {f3(a['sd'])} | {qs} | {a['n']} | {top} |")
    return out


def means_table(sets: list[PieceSet], ref: PieceSet, cols: list[int] | None = None) -> list[str]:
    head = "| feature | " + " | ".join(s.name for s in sets) + " | " + " | ".join(f"d({s.name})" for s in sets if s is not ref) + " |"
    out = [head, "|---" * (1 + len(sets) + len(sets) - 1) + "|"]
    ds = {s.name: standardized_difference(ref.X, s.X) for s in sets if s is not ref}
    for j, f in enumerate(R.FEATURES):
        vals = " | ".join(f3(nanmean(s.X[:, j])) for s in sets)
        dd = " | ".join(f"{ds[s.name][j]:+.2f}" for s in sets if s is not ref)
        name = f if cols is None or j in cols else f"{f} (not in the test)"
        out.append(f"| {name} | {vals} | {dd} |")
    return out


def texture_table(tex: dict) -> list[str]:
    out = []
    labels = list(next(iter(tex.values()))["generated"])
    head = "| quadrant | real n | " + " | ".join(f"{f}: real 10-90% (median)" for f in R.TEXTURE_FEATURES)
    head += " | " + " | ".join(f"{lb}: median / inside, per feature; all three" for lb in labels) + " |"
    out += [head, "|---" * (2 + len(R.TEXTURE_FEATURES) + len(labels)) + "|"]
    for q, row in tex.items():
        rng = " | ".join(f"{f2(row['ranges'][f][0])}-{f2(row['ranges'][f][1])} ({f2(row['real_median'][f])})" for f in R.TEXTURE_FEATURES)
        gens = []
        for lb in labels:
            g = row["generated"][lb]
            gens.append(", ".join(f"{f2(g['median'][f])} / {pct(g['inside'][f])}" for f in R.TEXTURE_FEATURES)
                        + f"; **{pct(g['inside_all'])}** (n {g['n']})")
        out.append(f"| {q} | {row['real_n']} | {rng} | " + " | ".join(gens) + " |")
    return out


def density_table(dens: dict) -> list[str]:
    labels = list(next(iter(dens.values()))["generated"])
    out = ["| quadrant | real: median notes per second (n) | " + " | ".join(labels) + " |",
           "|---" * (2 + len(labels)) + "|"]
    for q, row in dens.items():
        out.append(f"| {q} | {f2(row['real'])} ({row['real_n']}) | " + " | ".join(f2(row["generated"][lb]) for lb in labels) + " |")
    return out


def arousal_table(rows: list[tuple[str, dict]]) -> list[str]:
    out = ["| set | all: with velocity / without | Q1 | Q2 | Q3 | Q4 |", "|---|---|---|---|---|---|"]
    for label, r in rows:
        cells = [f"{pct(r[k]['with'])} / **{pct(r[k]['without'])}** (n {r[k]['n']})" for k in ("all", *QUADRANTS)]
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    return out


# -- main ------------------------------------------------------------------------------------------------------
def run_engine(engine: str, args, cache: Cache) -> tuple[list[str], dict]:
    lines, js = [], {}
    t0 = time.perf_counter()
    if engine == "compose":
        from emomusic.compose import compose as fn

        real, sanity = emopia_sets(Path(args.emopia), args.bars, args.seed, args.real_n)
        what = (f"`emomusic compose` ({args.n} pieces of {args.bars} bars, a quarter per quadrant centre) vs "
                f"EMOPIA val clips ({len(real.pieces)}, first {args.bars} bars); sanity: EMOPIA train clips vs EMOPIA val")
    else:
        from emomusic.melody import generate_melodies as fn

        real, sanity, n_texts = tune_sets(args.abc, args.bars, args.seed, args.real_n, cache, args.melody_checkpoint)
        what = (f"`emomusic melody` ({args.n} tunes of {args.bars} bars, no chords) vs the melody model's held-out "
                f"tunes ({len(real.pieces)} of {n_texts} in the corpus; melody line, first {args.bars} bars); "
                f"sanity: training tunes vs held-out")
    supported = len(forms_for(fn)) > 1
    gens: dict[str, PieceSet] = {}
    for form in forms_for(fn):
        label = f"{engine}, {form_label(form, supported)}"
        log(f"generating {label} ...")
        g = generate(engine, args.n, args.bars, args.seed, form,
                     args.compose_checkpoint if engine == "compose" else args.melody_checkpoint, cache)
        g.name = label
        gens[label] = g
    log(f"features ({engine}) ...")
    cols = c2st_columns(engine)
    rows = [(f"{label} vs {real.name}", compare(real, g, args.seed, args.trees, cols)) for label, g in gens.items()]
    rows.append((f"real vs real: {sanity.name} vs {real.name}", compare(real, sanity, args.seed, args.trees, cols)))
    js["c2st"] = {lb: r for lb, r in rows}
    if args.repeats > 1:  # more generated sets (other seeds, other folds): how much one run's number moves
        reps = {}
        for form in forms_for(fn):
            label = f"{engine}, {form_label(form, supported)}"
            accs = [js["c2st"][f"{label} vs {real.name}"]["all"]["accuracy"]]
            for r in range(1, args.repeats):
                log(f"generating {label}, repeat {r} ...")
                g = generate(engine, args.n, args.bars, args.seed + REPEAT_SEED_STEP * r, form,
                             args.compose_checkpoint if engine == "compose" else args.melody_checkpoint, cache)
                a, b = real.X[:, cols], g.X[:, cols]
                accs.append(c2st(a, b, seed=args.seed + r, trees=args.trees)["accuracy"])
            reps[label] = {"accuracy": accs, "mean": float(np.mean(accs)), "sd": float(np.std(accs))}
        js["repeats"] = reps
        lines_rep = [f"C2ST over {args.repeats} generated sets (seeds {args.seed}, {args.seed} + {REPEAT_SEED_STEP}, ...; "
                     "each with its own folds), pooled over the quadrants:", "",
                     "| set | mean +- SD | each |", "|---|---|---|"]
        lines_rep += [f"| {lb} | **{f3(v['mean'])}** +- {f3(v['sd'])} | {', '.join(f3(x) for x in v['accuracy'])} |"
                      for lb, v in reps.items()]
    else:
        lines_rep = []
    js["features"] = [R.FEATURES[j] for j in cols]
    left_out = [f for j, f in enumerate(R.FEATURES) if j not in cols]
    if left_out:
        what += (f". The test leaves out {', '.join(left_out)}: they read the bar grid, and EMOPIA's bar lines "
                 "are nominal (a fixed 120 BPM grid, not the music's bars); `recurrence` measures repetition "
                 "and return at any offset instead")
    lines += [f"#### {engine}", "", what + ".", "", *c2st_table(rows), ""]
    if lines_rep:
        lines += [*lines_rep, ""]
    sets = [real, sanity, *gens.values()]
    lines += [f"Per-feature means ({engine}; d = Cohen's d against {real.name}):", "", *means_table(sets, real, cols), ""]
    js["means"] = {s.name: {f: nanmean(s.X[:, j]) for j, f in enumerate(R.FEATURES)} for s in sets}
    if engine == "compose":
        tex = texture([real, sanity], gens)
        js["texture"] = tex
        lines += [f"Texture targets ({engine}): real EMOPIA (val + train sample) per-quadrant 10th-90th percentile "
                  "ranges; generated median / share inside the range per feature, and the share inside all three:", "",
                  *texture_table(tex), ""]
        dens = density_seconds([real, sanity], gens)
        js["notes_per_second"] = dens
        lines += [f"Density in real time ({engine}; not in the test, whose features count per beat: EMOPIA's beats are "
                  "a nominal half second, generated pieces' beats follow their own tempo):", "", *density_table(dens), ""]
    log(f"estimator ({engine}) ...")
    arows = [(s.name, arousal_agreement(s)) for s in [real, *gens.values()]]
    js["arousal"] = {lb: r for lb, r in arows}
    lines += [f"Arousal-axis agreement ({engine}; estimator with all features / **without its velocity features**; "
              "real sets scored against their own labels):", "", *arousal_table(arows), ""]
    js["seconds"] = time.perf_counter() - t0
    return lines, js


def write_docs(path: Path, text: str, begin: str = DOC_BEGIN, end: str = DOC_END) -> None:
    """Replace the block between the markers ``begin`` and ``end`` in ``path`` with ``text``
    (appended, with its markers, when they are not there)."""
    from emomusic.atomic import write_text_atomic

    old = path.read_text(encoding="utf-8") if path.is_file() else ""
    block = f"{begin}\n{text.rstrip()}\n{end}"
    if begin in old and end in old:
        i, j = old.index(begin), old.index(end) + len(end)
        new = old[:i] + block + old[j:]
    else:
        new = old.rstrip() + ("\n\n" if old else "") + block + "\n"
    write_text_atomic(path, new)


def main(argv: list[str] | None = None) -> int:
    from emomusic.paths import data_dir

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100, help="generated pieces per engine, over the 4 quadrants (default 100)")
    ap.add_argument("--bars", type=int, default=16, help="length of generated pieces; real ones are cut to it")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--engines", default="compose,melody", help="comma list: compose, melody")
    ap.add_argument("--emopia", default=str(data_dir() / "emopia"))
    ap.add_argument("--abc", action="append", default=None,
                    help="ABC corpus of the melody model (repeatable; 'music21' = its bundled collections; "
                         "default: Nottingham ABC_cleaned + music21)")
    ap.add_argument("--real-n", type=int, default=None, help="quick runs: at most this many EMOPIA val clips per quadrant, 4x as many held-out tunes in all")
    ap.add_argument("--repeats", type=int, default=1,
                    help="generated sets per engine and form (seed, seed + %d, ...): the C2ST's mean and SD over them" % REPEAT_SEED_STEP)
    ap.add_argument("--trees", type=int, default=TREES, help=f"trees of the random forest (default {TREES})")
    ap.add_argument("--compose-checkpoint", default=None)
    ap.add_argument("--melody-checkpoint", default=None)
    ap.add_argument("--cache", default=None, help="folder caching generated pieces and parsed real tunes")
    ap.add_argument("--json", default=None, help="write all numbers here")
    ap.add_argument("--write-docs", default=None, help="markdown file whose realism section (between markers) is replaced")
    args = ap.parse_args(argv)
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    bad = [e for e in engines if e not in ("compose", "melody")]
    if bad or not engines:
        ap.error(f"unknown engine {bad[0] if bad else '(none)'}; use compose and/or melody")
    if args.n < 4 or args.bars < 1 or args.trees < 1 or not 1 <= args.repeats <= 20:
        ap.error("--n must be at least 4, --bars and --trees at least 1, --repeats 1..20")
    if args.abc is None:
        args.abc = [str(data_dir() / "nottingham" / "ABC_cleaned"), "music21"]
    import torch

    torch.set_num_threads(1)
    cache = Cache(args.cache)
    t0 = time.perf_counter()
    lines = ["### Results (written by `benchmarks/realism.py`)", "",
             f"Random forest: scikit-learn, {args.trees} trees, stratified 5-fold CV; accuracy +- SD over the folds; "
             "0.5 = indistinguishable. Sets are cut to equal size and to the same number of bars.", "",
             f"Run: `python benchmarks/realism.py --n {args.n} --bars {args.bars} --seed {args.seed} --engines {','.join(engines)}"
             + (f" --real-n {args.real_n}" if args.real_n else "") + (f" --trees {args.trees}" if args.trees != TREES else "")
             + (f" --repeats {args.repeats}" if args.repeats > 1 else "") + f"` ({_dt.date.today().isoformat()}).", ""]
    js: dict = {"args": {k: v for k, v in vars(args).items()}}
    try:
        for engine in engines:
            eng_lines, eng_js = run_engine(engine, args, cache)
            lines += eng_lines
            js[engine] = eng_js
    except EmomusicError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2
    lines.append(f"Total time {time.perf_counter() - t0:.0f} s (torch threads 1).")
    text = "\n".join(lines)
    print(text)
    if args.json:
        from emomusic.atomic import write_text_atomic

        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(args.json, json.dumps(js, indent=1, default=str))
    if args.write_docs:
        write_docs(Path(args.write_docs), text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
