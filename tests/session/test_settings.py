"""PlanSettings / BuildSettings (JSON round trips, unknown keys, validate) and presets
(merging with overrides in the library)."""

from __future__ import annotations

import json

import pytest

from emomusic.emotion import Emotion
from emomusic.errors import EmomusicError
from emomusic.session import (
    BuildSettings,
    PlanError,
    PlanSettings,
    load_preset,
    plan_from_preset,
    plan_session,
    preset_names,
)
from emomusic.session.presets import PRESET_KEYS, read_preset


def test_plan_settings_round_trip_and_defaults_match_plan_session():
    s = PlanSettings(minutes=10, heart_rate=80, via=["calm", Emotion(0.1, 0.2)], tonic="D", seed=4, name="x")
    again = PlanSettings.from_dict(json.loads(json.dumps(s.to_dict())))
    assert plan_session("anxious", "calm", again).to_dict() == plan_session("anxious", "calm", s).to_dict()
    # plan_session's keywords are the settings' fields, with the same defaults
    assert plan_session("anxious", "calm").to_dict() == plan_session("anxious", "calm", PlanSettings()).to_dict()
    assert plan_session("anxious", "calm", PlanSettings(minutes=4), seed=2).to_dict() == \
        plan_session("anxious", "calm", minutes=4, seed=2).to_dict()


def test_build_settings_round_trip(tmp_path):
    sf = tmp_path / "x.sf2"
    sf.write_bytes(b"")
    s = BuildSettings(backend="rules", soundfont=sf, tolerance=0.4, sample_rate=22050)
    d = json.loads(json.dumps(s.to_dict()))
    assert d["soundfont"] == str(sf)
    assert BuildSettings.from_dict(d).validate().to_dict() == d
    assert BuildSettings.backends == ("symbolic", "melody", "musicgen", "rules")


@pytest.mark.parametrize("cls", [PlanSettings, BuildSettings])
def test_unknown_keys_are_named_with_the_known_ones(cls):
    with pytest.raises(EmomusicError, match=r"unknown .*'colour' \(known: .*") as err:
        cls.from_dict({"colour": "blue"})
    assert all(k in str(err.value) for k in cls.keys())
    with pytest.raises(EmomusicError, match="'colour'"):
        cls().replace(colour=1)


@pytest.mark.parametrize("kw,msg", [
    (dict(seed=-1), "seed must be 0"), (dict(seed=1.5), "seed must be a whole number"),
    (dict(minutes=0), "minutes must be > 0"), (dict(path="zigzag"), "path must be one of"),
    (dict(heart_rate=300), "heart rate"), (dict(tonic="H"), "tonic"), (dict(via=["nowhere"]), "via"),
    (dict(crossfade_s=20), "crossfade"), (dict(max_tempo_step=0.5), "max_tempo_step"),
    (dict(match_minutes=-1), "match minutes"),
])
def test_plan_settings_validate(kw, msg):
    with pytest.raises(PlanError, match=msg) as err:
        PlanSettings(**kw).validate()
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("kw,msg", [
    (dict(backend="nope"), "unknown backend"), (dict(max_retries=-1), "max retries"),
    (dict(max_retries=1.5), "max retries"), (dict(tolerance=float("nan")), "tolerance"),
    (dict(sample_rate=100), "sample rate"), (dict(backend="musicgen"), "--model"),
    (dict(model="/no/such/ckpt"), "model not found: /no/such/ckpt"),
    (dict(soundfont="/no/such.sf2"), "SoundFont not found"), (dict(adapter="/no/lora"), "adapter"),
])
def test_build_settings_validate(kw, msg):
    with pytest.raises(EmomusicError, match=msg):
        BuildSettings(**kw).validate()


def test_preset_keys_derive_from_plan_settings():
    assert set(PlanSettings.keys()) < PRESET_KEYS and {"from", "to", "references"} < PRESET_KEYS
    assert {"anxiety-to-calm", "sleep-wind-down"} <= set(preset_names())


def test_load_preset_merges_overrides():
    raw = read_preset("anxiety-to-calm")
    start, target, s = load_preset("anxiety-to-calm")
    assert start.label == raw["from"] and target.label == raw["to"]
    assert s.minutes == raw["minutes"] and s.name == "anxiety-to-calm"
    start, target, s = load_preset("anxiety-to-calm", target="happy", minutes=5, seed=9, heart_rate=None)
    assert target.label == "happy" and s.minutes == 5 and s.seed == 9 and s.heart_rate == raw.get("heart_rate")
    plan = plan_from_preset("anxiety-to-calm", minutes=5)
    assert plan.minutes == 5 and plan.name == "anxiety-to-calm"
    with pytest.raises(EmomusicError, match="unknown plan setting 'colour'"):
        load_preset("anxiety-to-calm", colour="red")
    with pytest.raises(EmomusicError, match="unknown session preset"):
        load_preset("no-such-preset")


def test_preset_file_with_an_unknown_key(tmp_path):
    p = tmp_path / "mine.json"
    p.write_text(json.dumps({"from": "sad", "to": "calm", "tempo": 3}))
    with pytest.raises(EmomusicError, match="unknown key 'tempo'"):
        load_preset(str(p))
    p.write_text(json.dumps({"from": "sad", "to": "calm", "seed": 4, "minutes": 3}))
    assert load_preset(str(p))[2].seed == 4


def test_with_fallback_swaps_only_the_default_backend_without_a_model(tmp_path, monkeypatch):
    from emomusic.session import with_fallback

    monkeypatch.setenv("EMOMUSIC_CHECKPOINTS", str(tmp_path / "no-checkpoints"))
    settings, warning = with_fallback(BuildSettings(sample_rate=16000))
    assert settings.backend == "rules" and settings.sample_rate == 16000
    assert warning.startswith("symbolic backend unavailable (") and "\n" not in warning
    for given in (BuildSettings(backend="melody"), BuildSettings(model=tmp_path)):
        assert with_fallback(given) == (given, None)  # another backend, or an explicit model: never swapped
