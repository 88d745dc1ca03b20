"""Session presets: JSON files in ``playlists/`` (see :func:`emomusic.paths.playlists_dir`).

A preset names a journey and its plan settings; every key is optional except ``from``/``to``::

    {"name": "anxiety-to-calm", "description": "...", "from": "anxious", "to": "calm",
     "via": [], "minutes": 15, "clip_seconds": 30, "match_minutes": 2, "settle_minutes": 3,
     "path": "eased", "strategy": "iso", "heart_rate": null}

The allowed keys are ``from``, ``to``, ``references`` and the fields of
:class:`~emomusic.session.settings.PlanSettings`. :func:`load_preset` merges a preset with
overrides (the caller's values win), so the CLI and the web server share one rule.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from emomusic.emotion import Emotion
from emomusic.errors import EmomusicError
from emomusic.session.checks import emotion_field
from emomusic.session.settings import PlanSettings

JOURNEY_KEYS = ("from", "to")
PRESET_KEYS = frozenset({*JOURNEY_KEYS, "references", *PlanSettings.keys()})


def preset_files() -> dict[str, Path]:
    from emomusic.paths import playlists_dir

    d = playlists_dir()
    if not d.is_dir():
        return {}
    return {p.stem: p for p in sorted(d.glob("*.json"))}


def preset_names() -> list[str]:
    """Names of the installed presets (file stems in playlists/)."""
    return list(preset_files())


def list_presets() -> list[dict]:
    """Every readable preset as its dict (``name`` filled in)."""
    out = []
    for name in preset_files():
        try:
            out.append(read_preset(name))
        except EmomusicError:
            continue
    return out


def _preset_path(name) -> Path:
    files = preset_files()
    key = str(name).strip()
    path = files.get(key) or files.get(key.lower().replace(" ", "-").replace("_", "-"))
    if path is None and (key.endswith(".json") and Path(key).is_file()):
        path = Path(key)
    if path is None:
        known = ", ".join(files) or "none installed"
        raise EmomusicError(f"unknown session preset {name!r}; available: {known}")
    return path


def read_preset(name) -> dict:
    """The preset ``name`` (a file stem in playlists/, or a path to a preset JSON file) as
    its checked dict."""
    path = _preset_path(name)
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise EmomusicError(f"cannot read session preset {path}: {exc}") from None
    if not isinstance(d, dict):
        raise EmomusicError(f"session preset {path} must be a JSON object")
    unknown = sorted(set(d) - PRESET_KEYS)
    if unknown:
        raise EmomusicError(f"session preset {path.name}: unknown key {unknown[0]!r} (known: {', '.join(sorted(PRESET_KEYS))})")
    for k in JOURNEY_KEYS:
        if k not in d:
            raise EmomusicError(f"session preset {path.name} lacks {k!r}")
    d.setdefault("name", path.stem)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9 _.-]*", str(d["name"])):
        raise EmomusicError(f"session preset {path.name}: bad name {d['name']!r}")
    if "description" in d:  # it reaches playlist.m3u8 and the README: no control characters
        from emomusic.validation import clean_text

        d["description"] = clean_text(d["description"], f"session preset {path.name}: description", 2000)
    return d


def load_preset(name_or_path, *, start: Emotion | str | None = None, target: Emotion | str | None = None,
                **overrides) -> tuple[Emotion, Emotion, PlanSettings]:
    """``(start, target, settings)`` of a preset, with ``start`` / ``target`` and any
    :class:`PlanSettings` field in ``overrides`` replacing the preset's (None: not given)."""
    d = read_preset(name_or_path)
    values = {k: v for k, v in d.items() if k not in PRESET_KEYS - set(PlanSettings.keys())}
    values.update({k: v for k, v in overrides.items() if v is not None})
    settings = PlanSettings.from_dict(values)
    where = f"session preset {d['name']}"
    start_e = emotion_field(start if start is not None else d["from"], f"{where} 'from'" if start is None else "start")
    target_e = emotion_field(target if target is not None else d["to"], f"{where} 'to'" if target is None else "target")
    return start_e, target_e, settings


def plan_from_preset(name_or_path, **overrides):
    """The plan of a preset (see :func:`load_preset` for ``overrides``)."""
    from emomusic.session.planner import plan_session

    start, target, settings = load_preset(name_or_path, **overrides)
    return plan_session(start, target, settings)


__all__ = ["PRESET_KEYS", "list_presets", "load_preset", "plan_from_preset", "preset_names", "read_preset"]
