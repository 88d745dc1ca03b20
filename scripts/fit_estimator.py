#!/usr/bin/env python
"""Fit emomusic's emotion estimator on EMOPIA (train split) and report it on the val split.

    python scripts/fit_estimator.py --emopia /work/shared/data/emopia -o emomusic/checkpoints/estimator

Labels come from the clip file names: Q1..Q4 -> valence sign (Q1, Q4 positive) and arousal
sign (Q1, Q2 positive). For each axis an L2-regularised logistic regression on
standardised features is fitted with numpy/scipy. Training rows are every clip *and* its
top-voice melody (``emomusic.estimator.melody_line``, same label), so that single melodies,
which the melody engine writes, are not out of distribution (``--no-augment`` turns this
off). The feature set and the regularisation strength of each axis are chosen by
song-grouped 5-fold cross-validation on the *train* split only (criterion: mean accuracy on
held-out clips and held-out melodies); the val split is scored once, at the end, and
written to the model card.

Writes ``estimator.json`` (the parameters the package loads), ``config.json`` (how it was
fitted) and ``MODEL_CARD.md`` into the output folder, atomically.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
import time
from pathlib import Path

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # 2 shared cores: stay on one
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from scipy.optimize import minimize  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from emomusic.estimator import ALL_FEATURES, EstimatorModel, LogisticAxis, extract_features, melody_line  # noqa: E402
from emomusic.io import read_piece  # noqa: E402

# Candidate feature sets (named, nested from the template attributes outward).
FEATURE_SETS = {
    "attributes": (
        "mode_evidence", "register", "pitch_spread", "log_notes_per_second", "velocity", "articulation",
        "polyphony",
    ),
    "attributes+harmony": (
        "mode_evidence", "register", "pitch_spread", "log_notes_per_second", "velocity", "articulation",
        "polyphony", "key_confidence", "major_triad_share", "minor_triad_share", "pc_entropy", "dissonance",
    ),
    "attributes+rhythm": (
        "mode_evidence", "register", "pitch_spread", "log_notes_per_second", "velocity", "articulation",
        "polyphony", "log_onsets_per_second", "ioi_log_mean", "ioi_log_std", "log_duration_mean",
        "velocity_std", "melody_register", "bass_register", "pitch_range",
    ),
    # Everything but the nominal tempo, which is constant (120 BPM) across EMOPIA's transcriptions.
    "all": tuple(f for f in ALL_FEATURES if f != "log_tempo"),
}
C_GRID = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)  # inverse L2 strength (per sample)
QUADRANT_SIGNS = {"Q1": (1, 1), "Q2": (0, 1), "Q3": (0, 0), "Q4": (1, 0)}


# ---------------------------------------------------------------------------------------
def read_split(emopia: Path, name: str) -> list[str]:
    path = emopia / "split" / name
    if not path.is_file():
        sys.exit(f"error: {path} not found (is --emopia the EMOPIA folder?)")
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [r["clip_name"] for r in rows if r.get("clip_name")]


def song_of(clip: str) -> str:
    # Q1_<youtube id>_<n>.mid ; the id itself may contain underscores.
    stem = clip.rsplit(".", 1)[0]
    return stem[3:].rsplit("_", 1)[0]


def featurise(emopia: Path, clips: list[str], cache_dir: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Feature matrices of the clips and of their top-voice melodies (rows = clips that could
    be read) and the kept clip names (cached by code and clip list)."""
    code = (REPO / "emomusic" / "estimator.py").read_bytes() + (REPO / "emomusic" / "attributes.py").read_bytes()
    tag = hashlib.sha1(code + "\n".join(clips).encode()).hexdigest()[:12]
    cache = cache_dir / f"emopia_features_{tag}.npz"
    if cache.is_file():
        z = np.load(cache, allow_pickle=False)
        return z["X"], z["Xm"], [str(c) for c in z["clips"]]
    rows, mrows, kept = [], [], []
    t0 = time.time()
    for i, clip in enumerate(clips):
        path = emopia / "midis" / clip
        try:
            piece = read_piece(path)
            feats = extract_features(piece)
            mfeats = extract_features(melody_line(piece))
        except Exception as exc:  # a missing or unreadable clip is reported and skipped
            print(f"  skip {clip}: {exc}", file=sys.stderr)
            continue
        rows.append([feats[f] for f in ALL_FEATURES])
        mrows.append([mfeats[f] for f in ALL_FEATURES])
        kept.append(clip)
        if (i + 1) % 200 == 0:
            print(f"  features {i + 1}/{len(clips)} ({time.time() - t0:.0f} s)", file=sys.stderr)
    X, Xm = np.array(rows, dtype=float), np.array(mrows, dtype=float)
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.savez(cache, X=X, Xm=Xm, clips=np.array(kept))
    return X, Xm, kept


def labels(clips: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    q = np.array([c[:2] for c in clips])
    v = np.array([QUADRANT_SIGNS[x][0] for x in q], dtype=float)
    a = np.array([QUADRANT_SIGNS[x][1] for x in q], dtype=float)
    return v, a, q


# ---------------------------------------------------------------------------------------
def fit_logistic(Z: np.ndarray, y: np.ndarray, C: float) -> tuple[np.ndarray, float]:
    """Minimise mean log-loss + ||w||^2 / (2 C n) (bias unpenalised) with L-BFGS."""
    n, d = Z.shape
    lam = 1.0 / (C * n)

    def loss(theta):
        w, b = theta[:d], theta[d]
        s = Z @ w + b
        # log(1 + exp(-y's)) with y' in {-1, +1}, numerically stable
        ys = np.where(y > 0.5, s, -s)
        ll = np.logaddexp(0.0, -ys).mean()
        p = 1.0 / (1.0 + np.exp(-s))
        g = (p - y) / n
        grad = np.concatenate([Z.T @ g + lam * w, [g.sum()]])
        return ll + 0.5 * lam * w @ w, grad

    res = minimize(loss, np.zeros(d + 1), jac=True, method="L-BFGS-B", options={"maxiter": 2000})
    return res.x[:d], float(res.x[d])


def standardise(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = X.mean(axis=0)
    scale = X.std(axis=0)
    scale[scale < 1e-9] = 1.0
    return mean, scale


def group_folds(groups: list[str], k: int, seed: int = 0) -> list[np.ndarray]:
    songs = sorted(set(groups))
    rng = np.random.default_rng(seed)
    rng.shuffle(songs)
    fold_of = {s: i % k for i, s in enumerate(songs)}
    f = np.array([fold_of[g] for g in groups])
    return [np.where(f == i)[0] for i in range(k)]


def training_rows(X: np.ndarray, Xm: np.ndarray | None, idx: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``idx`` of the clips, plus the same rows of their melodies when ``Xm`` is given."""
    if Xm is None:
        return X[idx], y[idx]
    return np.vstack([X[idx], Xm[idx]]), np.concatenate([y[idx], y[idx]])


def cv_accuracy(X, Xm, y, cols: list[int], C: float, folds: list[np.ndarray], augment: bool = True) -> tuple[float, float]:
    """(accuracy on held-out clips, accuracy on held-out melodies) over song-grouped folds."""
    ok_clip = ok_mel = 0
    for test in folds:
        train = np.setdiff1d(np.arange(len(y)), test)
        Xt, yt = training_rows(X, Xm if augment else None, train, y)
        mean, scale = standardise(Xt[:, cols])
        w, b = fit_logistic((Xt[:, cols] - mean) / scale, yt, C)
        for M, which in ((X, "clip"), (Xm, "mel")):
            s = ((M[test][:, cols] - mean) / scale) @ w + b
            hits = int(np.sum((s > 0) == (y[test] > 0.5)))
            if which == "clip":
                ok_clip += hits
            else:
                ok_mel += hits
    return ok_clip / len(y), ok_mel / len(y)


def select(X, Xm, y, groups, name: str, folds_k: int, repeats: int, augment: bool) -> tuple[str, float, dict, dict]:
    """Best (feature set, C) by CV; the score is the mean of clip and melody accuracy
    (clip accuracy alone without augmentation)."""
    table = {}
    for fs_name, fs in FEATURE_SETS.items():
        cols = [ALL_FEATURES.index(f) for f in fs]
        for C in C_GRID:
            accs = np.array([cv_accuracy(X, Xm, y, cols, C, group_folds(groups, folds_k, seed=r), augment)
                             for r in range(repeats)]).mean(axis=0)
            table[f"{fs_name} C={C:g}"] = {"clips": round(float(accs[0]), 4), "melodies": round(float(accs[1]), 4)}
    score = (lambda k: (table[k]["clips"] + table[k]["melodies"]) / 2) if augment else (lambda k: table[k]["clips"])
    best = max(table, key=score)
    fs_name, c = best.split(" C=")
    print(f"  {name}: best CV {table[best]} with {best}", file=sys.stderr)
    return fs_name, float(c), table[best], table


# ---------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--emopia", type=Path, required=True, help="EMOPIA folder (midis/, split/)")
    ap.add_argument("-o", "--output", type=Path, default=REPO / "emomusic" / "checkpoints" / "estimator")
    ap.add_argument("--cache", type=Path, default=REPO / ".cache" / "estimator")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=3, help="CV repeats with different song shuffles")
    ap.add_argument("--no-augment", dest="augment", action="store_false",
                    help="train on the clips only, not also on their top-voice melodies")
    args = ap.parse_args(argv)

    t0 = time.time()
    train_clips = read_split(args.emopia, "train_clip.csv")
    val_clips = read_split(args.emopia, "val_clip.csv")
    print(f"featurising {len(train_clips)} train + {len(val_clips)} val clips", file=sys.stderr)
    Xtr, Xtr_m, train_kept = featurise(args.emopia, train_clips, args.cache)
    Xva, Xva_m, val_kept = featurise(args.emopia, val_clips, args.cache)
    vtr, atr, qtr = labels(train_kept)
    vva, ava, qva = labels(val_kept)
    groups = [song_of(c) for c in train_kept]
    overlap = set(groups) & {song_of(c) for c in val_kept}
    if overlap:
        print(f"warning: {len(overlap)} songs appear in both splits", file=sys.stderr)

    def fit_variant(augment: bool):
        print(f"choosing feature sets and regularisation by song-grouped CV on train "
              f"({'clips + melodies' if augment else 'clips only'})", file=sys.stderr)
        choice, cv_tables = {}, {}
        for axis, y in (("valence", vtr), ("arousal", atr)):
            fs_name, C, acc, table = select(Xtr, Xtr_m, y, groups, axis, args.folds, args.repeats, augment)
            choice[axis] = {"feature_set": fs_name, "C": C, "cv_accuracy": acc}
            cv_tables[axis] = table
        # Final fit on all of train: the union of the chosen features; an axis's unused ones get weight 0.
        used = [f for f in ALL_FEATURES if any(f in FEATURE_SETS[choice[ax]["feature_set"]] for ax in choice)]
        cols = [ALL_FEATURES.index(f) for f in used]
        everything = np.arange(len(train_kept))
        X_fit, _ = training_rows(Xtr, Xtr_m if augment else None, everything, vtr)
        mean, scale = standardise(X_fit[:, cols])
        axes = {}
        for axis, y in (("valence", vtr), ("arousal", atr)):
            mine = [i for i, f in enumerate(used) if f in FEATURE_SETS[choice[axis]["feature_set"]]]
            _, y_fit = training_rows(Xtr, Xtr_m if augment else None, everything, y)
            w_sub, b = fit_logistic(((X_fit[:, cols] - mean) / scale)[:, mine], y_fit, choice[axis]["C"])
            w = np.zeros(len(used))
            w[mine] = w_sub
            axes[axis] = LogisticAxis(w, b)
        model = EstimatorModel(tuple(used), mean, scale, axes["valence"], axes["arousal"], meta={})
        metrics = {
            "train": scores(*model.predict_probs(Xtr[:, cols]), vtr, atr, qtr),
            "val": scores(*model.predict_probs(Xva[:, cols]), vva, ava, qva),
            "val_melodies": scores(*model.predict_probs(Xva_m[:, cols]), vva, ava, qva),
        }
        return model, used, choice, cv_tables, metrics

    def scores(pv, pa, v, a, q):
        pred_q = np.where(pv > 0.5, np.where(pa > 0.5, "Q1", "Q4"), np.where(pa > 0.5, "Q2", "Q3"))
        per_q = {k: round(float(np.mean(pred_q[q == k] == k)), 4) for k in ("Q1", "Q2", "Q3", "Q4") if np.any(q == k)}
        confusion = {k: {p: int(np.sum((q == k) & (pred_q == p))) for p in ("Q1", "Q2", "Q3", "Q4")} for k in ("Q1", "Q2", "Q3", "Q4")}
        return {
            "n": int(len(q)),
            "quadrant_accuracy": round(float(np.mean(pred_q == q)), 4),
            "valence_accuracy": round(float(np.mean((pv > 0.5) == (v > 0.5))), 4),
            "arousal_accuracy": round(float(np.mean((pa > 0.5) == (a > 0.5))), 4),
            "per_quadrant_recall": per_q,
            "confusion_true_by_pred": confusion,
        }

    model, used, choice, cv_tables, metrics = fit_variant(args.augment)
    # The other variant, fitted the same way, is reported as an ablation (never shipped).
    _, _, alt_choice, _, alt_metrics = fit_variant(not args.augment)
    short = ("quadrant_accuracy", "valence_accuracy", "arousal_accuracy")
    metrics["ablation"] = {
        "augment_with_melodies": not args.augment,
        "choice": alt_choice,
        "val": {k: alt_metrics["val"][k] for k in short},
        "val_melodies": {k: alt_metrics["val_melodies"][k] for k in short},
    }
    majority = max(("Q1", "Q2", "Q3", "Q4"), key=lambda k: np.sum(qtr == k))
    metrics["val_majority_baseline"] = round(float(np.mean(qva == majority)), 4)
    model.meta = {
        "data": "EMOPIA (Hung et al. 2021), train split (split/train_clip.csv)",
        "n_train": int(len(train_kept)),
        "augment_with_melodies": bool(args.augment),
        "choice": choice,
        "val": metrics["val"],
    }
    config = {
        "command": "python scripts/fit_estimator.py --emopia <DATA>/emopia -o emomusic/checkpoints/estimator"
        + (f" --folds {args.folds}" if args.folds != 5 else "") + (f" --repeats {args.repeats}" if args.repeats != 3 else "")
        + ("" if args.augment else " --no-augment"),
        "augment_with_melodies": bool(args.augment),
        "model": "two L2-regularised logistic regressions (valence > 0, arousal > 0) on standardised features",
        "features": used,
        "feature_sets": {k: list(v) for k, v in FEATURE_SETS.items()},
        "C_grid": list(C_GRID),
        "cv": {"folds": args.folds, "repeats": args.repeats, "grouping": "song id"},
        "choice": choice,
        "cv_tables": cv_tables,
        "metrics": metrics,
        "train_clips": len(train_kept),
        "val_clips": len(val_kept),
        "skipped": {"train": len(train_clips) - len(train_kept), "val": len(val_clips) - len(val_kept)},
        "seconds": round(time.time() - t0, 1),
    }

    from emomusic.atomic import atomic_path

    out = args.output
    out.mkdir(parents=True, exist_ok=True)
    model.save(out)
    with atomic_path(out / "config.json") as tmp:
        tmp.write_text(json.dumps(config, indent=1) + "\n", encoding="utf-8")
    with atomic_path(out / "MODEL_CARD.md") as tmp:
        tmp.write_text(model_card(config, model), encoding="utf-8")
    print(json.dumps({"choice": choice, "val": metrics["val"], "val_melodies": {k: metrics["val_melodies"][k] for k in
                      ("quadrant_accuracy", "valence_accuracy", "arousal_accuracy")}, "train": {k: metrics["train"][k] for k in
                      ("quadrant_accuracy", "valence_accuracy", "arousal_accuracy")}}, indent=1))
    print(f"wrote {out} in {time.time() - t0:.0f} s", file=sys.stderr)
    return 0


def model_card(cfg: dict, model: EstimatorModel) -> str:
    v, t, vm = cfg["metrics"]["val"], cfg["metrics"]["train"], cfg["metrics"]["val_melodies"]
    ch = cfg["choice"]

    def cv_text(c):
        return f"clips {c['clips']:.3f}, melodies {c['melodies']:.3f}"

    aug = cfg.get("augment_with_melodies", True)
    ab = cfg["metrics"]["ablation"]
    weights = "\n".join(
        f"| {f} | {model.valence.weights[i]:+.3f} | {model.arousal.weights[i]:+.3f} |" for i, f in enumerate(model.features)
    )
    conf = "\n".join(
        f"| {q} | " + " | ".join(str(v["confusion_true_by_pred"][q][p]) for p in ("Q1", "Q2", "Q3", "Q4")) + " |"
        for q in ("Q1", "Q2", "Q3", "Q4")
    )
    return f"""# emomusic emotion estimator (symbolic MER)

Piece -> valence, arousal in [-1, 1] and a quadrant Q1..Q4. Used by `emomusic analyze`, by the
engines and by the session builder to check what they produce.

## Model
- Features: measured musical attributes and a few extra descriptors computed by
  `emomusic.estimator.extract_features` (numpy only; see `docs/attributes.md`).
- Two L2-regularised logistic regressions on standardised features: P(valence > 0) and
  P(arousal > 0). Output `valence = 2 P(v>0) - 1`, `arousal = 2 P(a>0) - 1`; quadrant from the
  signs; quadrant probabilities are products of the two axis probabilities.
- Training rows: every train clip{' and its top-voice melody (`emomusic.estimator.melody_line`, same label), so single melodies such as the melody engine writes are inside the training distribution' if aug else ' (no melody augmentation)'}.
- Chosen by song-grouped {cfg['cv']['folds']}-fold cross-validation on the train split
  ({cfg['cv']['repeats']} shuffles; criterion {'mean of held-out clip and melody accuracy' if aug else 'held-out clip accuracy'}), never on val:
  valence uses `{ch['valence']['feature_set']}` (C = {ch['valence']['C']:g}; CV accuracy
  {cv_text(ch['valence']['cv_accuracy'])}), arousal uses `{ch['arousal']['feature_set']}`
  (C = {ch['arousal']['C']:g}; CV accuracy {cv_text(ch['arousal']['cv_accuracy'])}). The full CV
  table is in `config.json`.
- Parameters: `estimator.json` ({len(model.features)} features; plain JSON, no pickle).

## Data
- EMOPIA (Hung et al., ISMIR 2021): piano clips transcribed from pop songs, labelled by
  quadrant. Train: `split/train_clip.csv` ({cfg['train_clips']} clips read, {cfg['skipped']['train']} skipped);
  evaluation: `split/val_clip.csv` ({cfg['val_clips']} clips, song-disjoint from train).
- Labels from the file-name prefix: Q1/Q4 -> valence > 0, Q1/Q2 -> arousal > 0.
- Licence of the training data: the EMOPIA release copy has no licence file and secondary
  statements conflict (MusPy: CC BY 4.0; the Hugging Face copy: CC BY-NC-SA 4.0); we treat it
  as CC BY-NC-SA 4.0 (research / non-commercial, attribution, share-alike). The MIDI are
  automatic transcriptions of piano covers of copyrighted pop songs. The fitted parameters
  (a few dozen numbers) derive from it: treat them as research / non-commercial.

## Results (measured; reproduce with the command below)
| split | n | 4-quadrant accuracy | valence-sign accuracy | arousal-sign accuracy |
|---|---|---|---|---|
| val | {v['n']} | {v['quadrant_accuracy']:.3f} | {v['valence_accuracy']:.3f} | {v['arousal_accuracy']:.3f} |
| val, top-voice melodies only | {vm['n']} | {vm['quadrant_accuracy']:.3f} | {vm['valence_accuracy']:.3f} | {vm['arousal_accuracy']:.3f} |
| train clips (fit) | {t['n']} | {t['quadrant_accuracy']:.3f} | {t['valence_accuracy']:.3f} | {t['arousal_accuracy']:.3f} |

The headline numbers are the first row (full clips). The melody row scores the same val
clips reduced to their top voice, a check that single melodies are read sensibly.
Majority-class baseline on val (4Q): {cfg['metrics']['val_majority_baseline']:.3f}.
Per-quadrant recall on val: {', '.join(f'{k} {x:.2f}' for k, x in v['per_quadrant_recall'].items())}.

Ablation, fitted and chosen the same way {'without' if aug else 'with'} melody augmentation (not shipped):
val clips {ab['val']['quadrant_accuracy']:.3f} / {ab['val']['valence_accuracy']:.3f} / {ab['val']['arousal_accuracy']:.3f},
val melodies {ab['val_melodies']['quadrant_accuracy']:.3f} / {ab['val_melodies']['valence_accuracy']:.3f} / {ab['val_melodies']['arousal_accuracy']:.3f}
(4Q / valence / arousal). Melody augmentation was chosen on train CV, where melody valence
accuracy is about 0.70 with it and 0.52 without, at the same clip accuracy. It was not chosen on val,
and val does not confirm the gain. On val clips the variant without it is a few clips better, and
on val melodies the two are alike. Evidence from melodies without labels (measured during
development, not by this script): on 173 Nottingham folk melodies, both variants rank major
tunes above minor ones by about 0.45-0.5 in valence. The clips-only variant reads 75 % of the
major tunes as negative; the shipped one reads all tunes as positive (minor dance tunes included).
On single melodies, compare valences with each other rather than reading their sign.

Val confusion (rows true, columns predicted):

| true \\ pred | Q1 | Q2 | Q3 | Q4 |
|---|---|---|---|---|
{conf}

Published symbolic 4-quadrant classifiers on EMOPIA reach about 0.6-0.7 (deep models on
full token sequences); this model is a small linear one on interpretable features, so expect
less on valence. Arousal is the easier axis, as in the literature.

## Weights (standardised features)
| feature | valence | arousal |
|---|---|---|
{weights}

## Command
```
{cfg['command']}
```
Fitting took {cfg['seconds']:.0f} s on one CPU thread of a shared 2-core machine (features cached in
.cache/estimator).

## Limits
- EMOPIA is pop piano; the nominal tempo of its transcriptions is always 120 BPM, so the model
  sees speed only as notes/onsets per second (tempo counts through them). Melodies are covered
  only as top voices of piano clips; trust the signs more than the magnitudes there.
- The outputs are P(axis > 0) rescaled to [-1, 1], so they are confidences rather than
  calibrated valence-arousal coordinates. A clear Q4 clip gives an arousal near -1, not the
  -0.6 of "calm".
- Only 32 val songs: a val accuracy is uncertain by several points.
"""


if __name__ == "__main__":
    sys.exit(main())
