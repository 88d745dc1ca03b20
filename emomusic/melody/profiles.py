"""The training tunes' pitch-class profile per mode: what the decoder's key steering aims at.

The decoder steers the running pitch-class histogram of a tune toward a target profile
(:meth:`emomusic.melody.grammar.TuneSpec.profile_bias`), so the requested mode stays audible.
Aimed at the Krumhansl-Kessler probe-tone profile, the steering spreads a tune's time over the
scale more evenly than folk tunes do (pitch-class entropy 2.71 against 2.64 in the held-out
tunes) while making the key clearer (key strength 0.88 against 0.85): probe-tone ratings are
not how often tunes sound each degree. The target is therefore the duration-weighted
pitch-class distribution of the training tunes in that mode (relative to the tonic), written
into the checkpoint's config (``profiles``) by ``scripts/melody_contour.py`` and
``emomusic train melody``; modes with fewer than :data:`MIN_TUNES` tunes keep the
Krumhansl-Kessler profile.
"""

from __future__ import annotations

MIN_TUNES = 50


def mode_profiles(tunes) -> dict:
    """{mode: {"tunes": n, "profile": 12 shares, tonic first}} over ``tunes``
    (:class:`~emomusic.melody.notation.CanonTune`), duration-weighted, for modes with at least
    :data:`MIN_TUNES` tunes."""
    sums: dict[str, list[float]] = {}
    counts: dict[str, int] = {}
    for t in tunes:
        h = sums.setdefault(t.key.mode, [0.0] * 12)
        counts[t.key.mode] = counts.get(t.key.mode, 0) + 1
        for bar in t.bars:
            for _, dur, p in bar:
                if p is not None:
                    h[(p - t.key.tonic) % 12] += dur
    out = {}
    for mode, h in sorted(sums.items()):
        total = sum(h)
        if counts[mode] >= MIN_TUNES and total > 0:
            out[mode] = {"tunes": counts[mode], "profile": [round(v / total, 5) for v in h]}
    return out
