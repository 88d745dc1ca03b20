"""Session presets: JSON files in ``playlists/`` (see :func:`emomusic.paths.playlists_dir`).

A preset names a journey and its options; every key is optional except ``from``/``to``::

    {"name": "anxiety-to-calm", "description": "...", "from": "anxious", "to": "calm",
     "via": [], "minutes": 15, "clip_seconds": 30, "match_minutes": 2, "settle_minutes": 3,
     "path": "eased", "strategy": "iso", "heart_rate": null}

Command-line flags override the preset's values.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from emomusic.errors import EmomusicError

PRESET_KEYS = {
    "name", "description", "from", "to", "via", "minutes", "clip_seconds", "match_minutes",
    "settle_minutes", "path", "strategy", "heart_rate", "tonic", "crossfade_s", "references",
}


def preset_files() -> dict[str, Path]:
    from emomusic.paths import playlists_dir

    d = playlists_dir()
    if not d.is_dir():
        return {}
    return {p.stem: p for p in sorted(d.glob("*.json"))}


def list_presets() -> list[dict]:
    out = []
    for name in preset_files():
        try:
            out.append(load_preset(name))
        except EmomusicError:
            continue
    return out


def load_preset(name: str) -> dict:
    """The preset ``name`` (a file stem in playlists/, or a path to a preset JSON file)."""
    files = preset_files()
    key = str(name).strip()
    path = files.get(key) or files.get(key.lower().replace(" ", "-").replace("_", "-"))
    if path is None and (key.endswith(".json") and Path(key).is_file()):
        path = Path(key)
    if path is None:
        known = ", ".join(files) or "none installed"
        raise EmomusicError(f"unknown session preset {name!r}; available: {known}")
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise EmomusicError(f"cannot read session preset {path}: {exc}") from None
    if not isinstance(d, dict):
        raise EmomusicError(f"session preset {path} must be a JSON object")
    unknown = sorted(set(d) - PRESET_KEYS)
    if unknown:
        raise EmomusicError(f"session preset {path.name}: unknown key {unknown[0]!r} (known: {', '.join(sorted(PRESET_KEYS))})")
    for k in ("from", "to"):
        if k not in d:
            raise EmomusicError(f"session preset {path.name} lacks {k!r}")
    d.setdefault("name", path.stem)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9 _.-]*", str(d["name"])):
        raise EmomusicError(f"session preset {path.name}: bad name {d['name']!r}")
    if "description" in d:  # it reaches playlist.m3u8 and the README: no control characters
        from emomusic.validation import clean_text

        d["description"] = clean_text(d["description"], f"session preset {path.name}: description", 2000)
    return d
