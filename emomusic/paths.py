"""Where shipped files live.

The shipped checkpoints, tokenizer configs and session presets are package data: they sit
inside the ``emomusic`` package (``emomusic/checkpoints``, ``emomusic/tokenizers``,
``emomusic/playlists``), so a source checkout, an editable install, ``pip install .``, a
wheel and an sdist all find them from any working folder with no set-up.

Environment overrides: ``EMOMUSIC_CHECKPOINTS``, ``EMOMUSIC_TOKENIZERS`` and
``EMOMUSIC_PLAYLISTS`` point at other folders; ``EMOMUSIC_DATA`` names the folder holding
the training data sets (default ``../shared/data`` beside the repository) for scripts and
the data-marked tests.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent


def _override(name: str, default: Path) -> Path:
    env = os.environ.get(name)
    return Path(env) if env else default


def checkpoints_dir() -> Path:
    return _override("EMOMUSIC_CHECKPOINTS", PACKAGE_DIR / "checkpoints")


def checkpoint_path(name: str) -> Path:
    """Folder of the shipped checkpoint ``name`` (e.g. ``"compose"``)."""
    return checkpoints_dir() / name


def tokenizers_dir() -> Path:
    return _override("EMOMUSIC_TOKENIZERS", PACKAGE_DIR / "tokenizers")


def playlists_dir() -> Path:
    return _override("EMOMUSIC_PLAYLISTS", PACKAGE_DIR / "playlists")


def data_dir() -> Path:
    return _override("EMOMUSIC_DATA", REPO_DIR.parent / "shared" / "data")


def cache_dir() -> Path:
    """Where training caches go: ``EMOMUSIC_CACHE``, else ``.cache/`` in a source checkout
    (git-ignored), else the user's cache folder (an installed package never writes into
    site-packages)."""
    env = os.environ.get("EMOMUSIC_CACHE")
    if env:
        return Path(env)
    if (REPO_DIR / "pyproject.toml").is_file():
        return REPO_DIR / ".cache"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "emomusic"
