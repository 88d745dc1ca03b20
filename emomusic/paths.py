"""Where shipped files live.

Shipped checkpoints sit in the repository's top-level ``checkpoints/`` folder (next to the
``emomusic`` package in a source or editable install). ``EMOMUSIC_CHECKPOINTS`` points
elsewhere; ``EMOMUSIC_DATA`` names the folder holding the training data sets (default
``../shared/data`` beside the repository) for scripts and the data-marked tests.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent


def checkpoints_dir() -> Path:
    env = os.environ.get("EMOMUSIC_CHECKPOINTS")
    return Path(env) if env else REPO_DIR / "checkpoints"


def checkpoint_path(name: str) -> Path:
    """Folder of the shipped checkpoint ``name`` (e.g. ``"compose"``)."""
    return checkpoints_dir() / name


def tokenizers_dir() -> Path:
    return REPO_DIR / "tokenizers"


def playlists_dir() -> Path:
    env = os.environ.get("EMOMUSIC_PLAYLISTS")
    return Path(env) if env else REPO_DIR / "playlists"


def data_dir() -> Path:
    env = os.environ.get("EMOMUSIC_DATA")
    return Path(env) if env else REPO_DIR.parent / "shared" / "data"
