"""The ABC training corpus: split, clean, normalise, quantise, label, balance.

* :func:`split_tunes` splits multi-tune ABC files at ``X:`` lines.
* :func:`clean_tune` keeps the header fields the model uses (``X T M L Q K``), drops lyrics,
  comments, decorations, grace notes and other fields, and fixes ``K:`` to the relative
  major so any parser reads the pitches right (the mode is kept by our own ``K:`` reader).
* :func:`tune_from_abc` parses one tune with music21 and quantises it to a
  :class:`~emomusic.melody.notation.CanonTune` on a sixteenth grid: full bars only
  (pickups and partial bars are dropped), the top note of a chord, grace notes dropped,
  chord symbols kept at beat starts (Nottingham has them).
* :func:`label_tunes` puts every tune in a quadrant with the attribute template:
  valence from the mode (major-like vs minor-like, EMelodyGen's Rough4Q rule), arousal
  from pitch spread (standard deviation) and note density, both standardised on the corpus.
* :func:`augment` transposes tunes, more often for the smaller quadrants, to balance them.

The parsed corpus is cached as JSON under ``.cache/melody/``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import statistics
from pathlib import Path
from typing import Iterable

from emomusic.errors import EmomusicError
from emomusic.melody.notation import (
    DURATIONS, METERS, PITCH_MAX, PITCH_MIN, CanonTune, Key, normalise_meter, parse_chord_symbol, parse_key,
)

# music21's bundled ABC collections we train on (public-domain sources). Essen is flagged
# non-commercial in the issue and is skipped.
MUSIC21_COLLECTIONS = ("oneills1850", "ryansMammoth", "airdsAirs")
NONCOMMERCIAL_COLLECTIONS = ("essenFolksong",)
KEEP_FIELDS = ("X", "T", "M", "L", "Q", "K")


def music21_corpus_files(collections: Iterable[str] = MUSIC21_COLLECTIONS) -> list[Path]:
    from music21 import corpus

    out = []
    for p in corpus.getPaths(fileExtensions=("abc",)):
        p = Path(str(p))
        if p.parent.name in collections:
            out.append(p)
    return sorted(out)


def abc_files(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """ABC files named by ``paths`` (files, or folders searched recursively). ``music21``
    stands for music21's bundled O'Neill's, Ryan's Mammoth and Aird's Airs collections."""
    out: list[Path] = []
    for p in paths:
        if str(p) == "music21":
            out.extend(music21_corpus_files())
            continue
        p = Path(p)
        if p.is_dir():
            found = sorted(x for x in p.rglob("*") if x.suffix.lower() == ".abc" and x.is_file())
            if not found:
                raise EmomusicError(f"no .abc files in {p}")
            out.extend(found)
        elif p.is_file():
            out.append(p)
        else:
            raise EmomusicError(f"no such corpus file or folder: {p}")
    return out


def split_tunes(text: str) -> list[str]:
    """Split a multi-tune ABC text at ``X:`` lines; text before the first tune is dropped."""
    tunes, cur = [], None
    for line in text.splitlines():
        if re.match(r"^\s*X\s*:", line):
            if cur:
                tunes.append("\n".join(cur))
            cur = [line.strip()]
        elif cur is not None:
            cur.append(line.rstrip())
    if cur:
        tunes.append("\n".join(cur))
    return tunes


def _field(line: str) -> tuple[str, str] | None:
    m = re.match(r"^([A-Za-z]):(.*)$", line.strip())
    return (m.group(1), m.group(2).strip()) if m else None


def clean_tune(text: str) -> tuple[str, dict] | None:
    """Normalise one tune's text. Returns (clean ABC, header dict) or None if unusable.

    The header dict has ``title``, ``meter``, ``key`` (a :class:`Key`) and ``tempo``.
    """
    head: dict = {"title": "", "meter": None, "key": None, "tempo": None, "L": None}
    body: list[str] = []
    in_body = False
    for raw in text.splitlines():
        line = raw.split("%")[0].rstrip() if not raw.startswith("%%") else ""
        if not line.strip():
            if in_body and body:
                break  # a blank line ends the tune
            continue
        f = _field(line)
        if f and (not in_body or f[0] in "MKLQ" or f[0] in "wWPNHRSOBDZGICAF"):
            name, value = f
            if name in "wW":
                continue
            if not in_body:
                if name == "T" and not head["title"]:
                    head["title"] = value
                elif name == "M":
                    head["meter"] = value
                elif name == "L":
                    head["L"] = value
                elif name == "Q":
                    m = re.search(r"(\d+)\s*/\s*(\d+)\s*=\s*(\d+)", value) or re.search(r"^\s*(\d+)\s*$", value)
                    if m and len(m.groups()) == 3:
                        head["tempo"] = float(m.group(3)) * float(m.group(1)) / float(m.group(2)) * 4
                    elif m:
                        head["tempo"] = float(m.group(1))
                elif name == "K":
                    try:
                        head["key"] = parse_key(value)
                    except EmomusicError:
                        return None
                    in_body = True
            elif name in "MKL" and not body:
                # fields between K: and the first music line (Nottingham puts M: there)
                if name == "M":
                    head["meter"] = value
                elif name == "L":
                    head["L"] = value
                else:
                    try:
                        head["key"] = parse_key(value)
                    except EmomusicError:
                        return None
            elif name in "MKL":
                return None  # metre, length or key changes inside the tune: not modelled  # metre or key changes inside the tune: not modelled
            continue
        if in_body:
            body.append(line)
    if head["key"] is None or not body:
        return None
    meter = normalise_meter(head["meter"] or "4/4")
    if meter is None:
        return None
    head["meter"] = meter
    b = "\n".join(body)
    b = re.sub(r"![^!\n]*!", "", b)  # !decorations!
    b = re.sub(r"\+[^+\n]*\+", "", b)  # +decorations+
    b = re.sub(r"\{[^}]*\}", "", b)  # grace notes
    b = b.replace("\\\n", "\n")
    key = head["key"]
    # K: as the relative major: every parser reads the same key signature; the mode is ours.
    major = Key(key.major_tonic, "major").abc
    lines = ["X:1", f"T:{head['title'] or 'Untitled'}", f"M:{meter}", f"L:{head['L'] or ('1/8' if _eval_meter(meter) >= 0.75 else '1/16')}", f"K:{major}", b]
    return "\n".join(lines) + "\n", head


def _eval_meter(meter: str) -> float:
    n, d = meter.split("/")
    return int(n) / int(d)


def tune_from_abc(text: str, source: str = "") -> CanonTune | None:
    """Parse and quantise one tune; None when it cannot be used (reason: too short, odd metre...)."""
    cleaned = clean_tune(text)
    if cleaned is None:
        return None
    abc, head = cleaned
    try:
        from music21 import converter, harmony
        from music21.note import GeneralNote

        score = converter.parse(abc, format="abc")
    except Exception:
        return None
    parts = list(score.parts) if hasattr(score, "parts") and len(score.parts) else [score]
    part = parts[0]
    bar_units, beat_units = METERS[head["meter"]]
    measures = list(part.getElementsByClass("Measure"))
    bars = []
    current_chord = None
    for m in measures:
        if abs(float(m.duration.quarterLength) * 4 - bar_units) > 1e-6 or float(m.paddingLeft) > 0:
            continue
        onsets: dict[int, int | None] = {}
        chords: dict[int, tuple] = {}
        for el in m.recurse():
            off = el.getOffsetInHierarchy(m) if el.activeSite is not m else el.offset
            pos = float(off) * 4
            if isinstance(el, harmony.ChordSymbol):
                c = parse_chord_symbol(el.figure)
                if c is not None and abs(pos - round(pos)) < 1e-6 and round(pos) % beat_units == 0:
                    chords[int(round(pos))] = c
                continue
            if not isinstance(el, GeneralNote):
                continue
            if el.duration.isGrace or el.duration.quarterLength == 0:
                continue
            q = int(round(pos))
            if q >= bar_units or q in onsets:
                continue
            if el.isRest:
                pitch = None
            elif el.isChord:
                pitch = max(p.midi for p in el.pitches)
            else:
                pitch = el.pitch.midi
            onsets[q] = pitch
        if 0 not in onsets:
            continue
        starts = sorted(onsets)
        events = []
        for i, s in enumerate(starts):
            end = starts[i + 1] if i + 1 < len(starts) else bar_units
            chord = chords.get(s)
            # a chord between onsets moves to the next onset only if it is on a beat: already filtered
            for part_len in _split_duration(end - s):
                events.append((chord, part_len, onsets[s]))
                chord = None
        if chords and 0 not in chords and current_chord is not None:
            events[0] = (current_chord, events[0][1], events[0][2])
        for pos in sorted(chords):
            current_chord = chords[pos]
        bars.append(events)
    if len(bars) < 4:
        return None
    pitches = [p for bar in bars for _, _, p in bar if p is not None]
    if len(pitches) < 8 or min(pitches) < PITCH_MIN or max(pitches) > PITCH_MAX:
        return None
    has_chords = any(e[0] is not None for bar in bars for e in bar)
    if has_chords:
        # every bar starts with a chord (the one sounding), so the decoder can require one there
        sounding = None
        for bar in bars:
            if bar[0][0] is None and sounding is not None:
                bar[0] = (sounding, bar[0][1], bar[0][2])
            for c, _, _ in bar:
                if c is not None:
                    sounding = c
        if bars[0][0][0] is None:
            first = next(c for bar in bars for c, _, _ in bar if c is not None)
            bars[0][0] = (first, bars[0][0][1], bars[0][0][2])
    t = CanonTune(head["key"], head["meter"], bars, head["title"], source, head["tempo"])
    t.check()
    return t


def _split_duration(units: int) -> list[int]:
    out = []
    while units > 0:
        d = max(x for x in DURATIONS if x <= units)
        out.append(d)
        units -= d
    return out


# --------------------------------------------------------------------------------------
# features, labels, augmentation


def features(tune: CanonTune) -> dict:
    """Template features measured on a canonical tune (no parser needed)."""
    ps = tune.pitches()
    beats = len(tune.bars) * tune.bar_units / 4
    n_notes = len(ps)
    return {
        "mean_pitch": statistics.fmean(ps) if ps else 0.0,
        "pitch_sd": statistics.pstdev(ps) if len(ps) > 1 else 0.0,
        "density": n_notes / beats if beats else 0.0,  # notes per quarter-note beat
        "major": bool(tune.key.is_major),
    }


def bin_edges(values: list[float], n: int = 3) -> list[float]:
    s = sorted(values)
    return [s[int(len(s) * i / n)] for i in range(1, n)]


def to_bin(value: float, edges: list[float]) -> int:
    return sum(value >= e for e in edges)


def label_tunes(tunes: list[CanonTune]) -> dict:
    """Label every tune Q1..Q4 in place; return the statistics used (saved with the model).

    Valence: the mode (major, mixolydian, lydian -> positive; minor, dorian, phrygian,
    locrian -> negative). Arousal: z(pitch SD) + z(density) >= 0 -> high. This is
    EMelodyGen's Rough4Q (mode x pitch SD) plus note density from the attribute template;
    the corpus has almost no tempo markings, so tempo is a post-hoc control only.
    """
    if not tunes:
        raise EmomusicError("the corpus holds no usable tunes")
    feats = [features(t) for t in tunes]
    sd = [f["pitch_sd"] for f in feats]
    den = [f["density"] for f in feats]
    mp = [f["mean_pitch"] for f in feats]
    stats = {
        "sd_mean": statistics.fmean(sd), "sd_std": statistics.pstdev(sd) or 1.0,
        "density_mean": statistics.fmean(den), "density_std": statistics.pstdev(den) or 1.0,
        "sd_edges": bin_edges(sd), "density_edges": bin_edges(den), "register_edges": bin_edges(mp),
    }
    for t, f in zip(tunes, feats):
        t.features = f
        t.label = quadrant_of(f, stats)
    return stats


def arousal_score(f: dict, stats: dict) -> float:
    return (f["pitch_sd"] - stats["sd_mean"]) / stats["sd_std"] + (f["density"] - stats["density_mean"]) / stats["density_std"]


def quadrant_of(f: dict, stats: dict) -> str:
    high = arousal_score(f, stats) >= 0
    if f["major"]:
        return "Q1" if high else "Q4"
    return "Q2" if high else "Q3"


def augment(tunes: list[CanonTune], max_per_tune: int = 12, seed: int = 0) -> list[CanonTune]:
    """Transposed copies, balancing quadrants: each quadrant ends near the largest one's size
    (capped at ``max_per_tune`` versions of a tune). Copies stay inside the pitch range."""
    import random

    rng = random.Random(seed)
    by_q: dict[str, list[CanonTune]] = {}
    for t in tunes:
        by_q.setdefault(t.label, []).append(t)
    target = max(len(v) for v in by_q.values()) * 2
    out = []
    for q, items in sorted(by_q.items()):
        k = max(1, min(max_per_tune, math.ceil(target / len(items))))
        for t in items:
            ps = t.pitches()
            lo, hi = min(ps), max(ps)
            shifts = [s for s in range(-6, 7) if s != 0 and lo + s >= PITCH_MIN and hi + s <= PITCH_MAX]
            rng.shuffle(shifts)
            out.append(t)
            for s in shifts[: k - 1]:
                c = t.transposed(s)
                c.label, c.features = t.label, dict(t.features, mean_pitch=t.features["mean_pitch"] + s)
                out.append(c)
    return out


def quadrant_counts(tunes: Iterable[CanonTune]) -> dict[str, int]:
    c = {"Q1": 0, "Q2": 0, "Q3": 0, "Q4": 0}
    for t in tunes:
        c[t.label] += 1
    return c


# --------------------------------------------------------------------------------------
# building and caching


def cache_dir() -> Path:
    from emomusic.paths import cache_dir as root

    return root() / "melody"


def _fingerprint(files: list[Path]) -> str:
    h = hashlib.sha1(b"abc-corpus-v1")
    for f in files:
        st = f.stat()
        h.update(f"{f.resolve()}|{st.st_size}|{int(st.st_mtime)}".encode())
    return h.hexdigest()[:16]


def build_corpus(paths: Iterable[str | os.PathLike], cache: Path | None = None, progress: bool = False) -> list[CanonTune]:
    """Parse every tune in ``paths`` into canonical tunes (unlabelled), cached by file fingerprint."""
    files = abc_files(paths)
    if not files:
        raise EmomusicError("no corpus files given")
    cache = cache or cache_dir()
    target = cache / f"corpus_{_fingerprint(files)}.json"
    if target.exists():
        data = json.loads(target.read_text(encoding="utf-8"))
        return [CanonTune.from_dict(d) for d in data["tunes"]]
    texts = []
    for f in files:
        try:
            raw = f.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise EmomusicError(f"cannot read {f}: {exc.strerror}") from None
        texts.extend((t, f"{f.parent.name}/{f.name}") for t in split_tunes(raw))
    if not texts:
        raise EmomusicError("the corpus files hold no ABC tunes (no X: lines)")
    it = texts
    if progress:
        from tqdm import tqdm

        it = tqdm(texts, desc="parsing ABC", unit="tune")
    tunes = []
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for text, src in it:
            t = tune_from_abc(text, src)
            if t is not None:
                tunes.append(t)
    from emomusic.atomic import write_text_atomic

    cache.mkdir(parents=True, exist_ok=True)
    write_text_atomic(target, json.dumps({"files": [str(f) for f in files], "n_texts": len(texts),
                                          "tunes": [t.to_dict() for t in tunes]}))
    return tunes
