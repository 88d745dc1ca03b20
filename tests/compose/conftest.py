from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session")
def debug_ckpt(tmp_path_factory):
    """A debug-preset compose checkpoint (vae/ + diffgan/) trained 2 steps each on tiny data."""
    from tiny import make_debug_checkpoint

    return make_debug_checkpoint(tmp_path_factory.mktemp("compose_ckpt"))
