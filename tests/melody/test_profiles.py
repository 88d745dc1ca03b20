"""The key steering's target: the training tunes' pitch-class profile per mode."""

from __future__ import annotations

import pytest

from emomusic.melody.grammar import TuneSpec
from emomusic.melody.notation import CanonTune, Key, parse_key
from emomusic.melody.profiles import MIN_TUNES, mode_profiles
from emomusic.melody.tokenizer import Controls


def _tune(key, pitches):
    return CanonTune(key=key, meter="4/4", bars=[[(None, 4, p) for p in pitches]])


def test_mode_profiles_are_duration_weighted_relative_to_the_tonic():
    # G major tunes: G G D rest -> degrees 0, 0, 7 (the rest skipped); D major: D F# A A -> 0, 4, 7, 7
    tunes = [_tune(Key(7, "major"), [67, 67, 74, None])] * MIN_TUNES + [_tune(Key(2, "major"), [62, 66, 69, 69])] * MIN_TUNES
    tunes += [_tune(Key(9, "minor"), [69, 72, 76, 69])] * (MIN_TUNES - 1)  # too few minor tunes: left out
    got = mode_profiles(tunes)
    assert set(got) == {"major"} and got["major"]["tunes"] == 2 * MIN_TUNES
    want = [0.0] * 12
    want[0], want[4], want[7] = 3 / 7, 1 / 7, 3 / 7  # 2 + 1 quarters of tonic, 1 of the third, 1 + 2 of the fifth
    assert got["major"]["profile"] == pytest.approx(want, abs=1e-5)


def test_spec_target_profile_from_the_corpus_or_krumhansl():
    key = parse_key("Am")
    kk = TuneSpec(key, "4/4", 4, Controls(), 0).target_profile()
    prof = [0.3, 0, 0.05, 0.15, 0, 0.1, 0, 0.2, 0.02, 0.0, 0.15, 0.03]
    mine = TuneSpec(key, "4/4", 4, Controls(), 0, profile=tuple(prof)).target_profile()
    assert set(mine) == set(kk) == {9, 11, 0, 2, 4, 5, 7, 8}  # A natural minor + G#
    assert sum(mine.values()) == pytest.approx(1.0)
    # shares follow the profile (floor 1%): the tonic (A) 0.3, the fourth (D) 0.1, the sixth (F) 0.02
    assert mine[9] / mine[2] == pytest.approx(3.0) and mine[5] / mine[2] == pytest.approx(0.2)
    assert mine[8] / mine[2] == pytest.approx(0.3)  # G#, the raised seventh: 0.03
    assert mine != kk


def test_generate_melodies_steers_toward_the_configs_profile(debug_checkpoint, tmp_path, sampled_specs):
    from helpers import checkpoint_with

    import emomusic.melody.api as api
    from emomusic.emotion import Emotion

    seen = sampled_specs
    major = [0.25, 0, 0.15, 0, 0.15, 0.1, 0, 0.2, 0, 0.1, 0, 0.05]
    minor = [0.25, 0, 0.15, 0.15, 0, 0.1, 0, 0.2, 0.02, 0, 0.12, 0.01]
    ckpt = checkpoint_with(debug_checkpoint, tmp_path / "with_profiles",
                           profiles={"major": {"tunes": 100, "profile": major}, "minor": {"tunes": 100, "profile": minor},
                                     "mixolydian": {"tunes": 60, "profile": major[:10] + [0.05, 0]}})
    api.generate_melodies(Emotion(0.6, 0.6), bars=4, key="D", checkpoint=ckpt)
    api.generate_melodies(Emotion(0.6, 0.6), bars=4, key="Dmix", checkpoint=ckpt)
    api.generate_melodies(Emotion(0.6, 0.6), bars=4, key="Dm", checkpoint=ckpt)  # minor: Krumhansl, always
    api.generate_melodies(Emotion(0.6, 0.6), bars=4, key="D", checkpoint=debug_checkpoint)  # no profiles
    assert [s.profile for s in seen] == [tuple(major), tuple(major[:10] + [0.05, 0]), None, None]
