"""Build emomusic/data/moods.json, the mood-word table, from published valence-arousal norms.

Usage:
    python scripts/build_moods.py --nrc ../shared/data/lexicons/nrc_vad/NRC-VAD-Lexicon.txt \
        --warriner ../shared/data/lexicons/warriner/Ratings_Warriner_et_al.csv \
        -o emomusic/data/moods.json

Only the numbers for the chosen words are written (rescaled to [-1, 1]); the lexicon files
themselves are not copied. NRC-VAD v1 scores 0..1 map by v -> 2v - 1; Warriner et al. (2013)
means 1..9 map by v -> (v - 5) / 4. Where both lexicons have a word its coordinate is the mean
of the two, and the source field names both.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

# Mood words: the MTG-Jamendo mood/theme tags that name moods, plus words therapists and
# listeners use for how they feel. Each is looked up in both lexicons.
MTG_JAMENDO_MOODS = [
    "calm", "dark", "deep", "dramatic", "dream", "emotional", "energetic", "epic", "fast", "fun",
    "funny", "groovy", "happy", "heavy", "hopeful", "inspiring", "love", "meditative",
    "melancholic", "melodic", "motivational", "positive", "powerful", "relaxing", "romantic",
    "sad", "sexy", "slow", "soft", "upbeat", "uplifting",
]
THERAPY_WORDS = [
    "anxious", "stressed", "tense", "angry", "peaceful", "content", "bored", "tired", "excited",
    "relaxed", "serene", "joyful", "cheerful", "nervous", "afraid", "furious", "frustrated",
    "depressed", "lonely", "gloomy", "sleepy", "exhausted", "alert", "enthusiastic", "satisfied",
    "grateful", "tender", "nostalgic", "restless", "irritated", "worried", "fearful", "miserable",
    "pleased", "delighted", "triumphant", "aggressive", "scared", "bright", "tranquil", "focused",
    "playful", "annoyed", "sorrowful", "elated", "agitated", "overwhelmed", "comfortable",
]


def load_nrc(path: Path) -> dict[str, tuple[float, float]]:
    out = {}
    with open(path, encoding="utf-8") as f:
        header = f.readline()
        if not header.lower().startswith("word"):
            f.seek(0)
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) >= 3:
                try:
                    out[parts[0].strip().lower()] = (2 * float(parts[1]) - 1, 2 * float(parts[2]) - 1)
                except ValueError:
                    continue
    return out


def load_warriner(path: Path) -> dict[str, tuple[float, float]]:
    out = {}
    with open(path, encoding="utf-8") as f:
        for row in csv.DictReader(f):
            out[row["Word"].strip().lower()] = (
                (float(row["V.Mean.Sum"]) - 5) / 4,
                (float(row["A.Mean.Sum"]) - 5) / 4,
            )
    return out


# Words missing from both lexicons are looked up by a close form; the source records it.
LEMMAS = {
    "fast": ["speedy", "quick", "rapid"],
    "inspiring": ["inspire", "inspired", "inspiration"],
    "melodic": ["melody", "melodious"],
    "focused": ["focus", "concentrated"],
}


def build(nrc: dict, warriner: dict) -> list[dict]:
    rows = []
    seen = set()
    for group, words in (("mtg-jamendo", MTG_JAMENDO_MOODS), ("therapy", THERAPY_WORDS)):
        for w in words:
            if w in seen:
                continue
            seen.add(w)
            vals, sources = [], []
            for key in [w] + LEMMAS.get(w, []):
                as_ = "" if key == w else f" as '{key}'"
                if key in nrc:
                    vals.append(nrc[key])
                    sources.append("NRC-VAD v1" + as_)
                if key in warriner:
                    vals.append(warriner[key])
                    sources.append("Warriner 2013" + as_)
                if vals:
                    break
            if not vals:
                print(f"skipping {w!r}: in neither lexicon")
                continue
            v = sum(p[0] for p in vals) / len(vals)
            a = sum(p[1] for p in vals) / len(vals)
            rows.append({
                "word": w,
                "valence": round(max(-1.0, min(1.0, v)), 3),
                "arousal": round(max(-1.0, min(1.0, a)), 3),
                "source": " + ".join(sources) + (" (mean)" if len(sources) > 1 else ""),
                "group": group,
            })
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nrc", type=Path, required=True)
    ap.add_argument("--warriner", type=Path, required=True)
    ap.add_argument("-o", "--output", type=Path, default=Path("emomusic/data/moods.json"))
    args = ap.parse_args()
    rows = build(load_nrc(args.nrc), load_warriner(args.warriner))
    doc = {
        "description": "Mood words with valence/arousal in [-1, 1], derived from published norms.",
        "scales": {"NRC-VAD v1": "v -> 2v - 1", "Warriner 2013": "v -> (v - 5) / 4"},
        "licence_note": "Numbers derived from NRC-VAD and Warriner et al. norms (non-commercial research terms).",
        "moods": rows,
    }
    args.output.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {len(rows)} moods to {args.output}")


if __name__ == "__main__":
    main()
