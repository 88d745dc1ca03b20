"""emomusic.session.assemble helpers."""

from __future__ import annotations

import numpy as np

from emomusic.session.assemble import LIMIT_KNEE, soft_limit


def test_soft_limit_leaves_the_knee_and_below_alone_and_bends_the_rest():
    rng = np.random.default_rng(3)
    quiet = (rng.uniform(-1, 1, (1000, 2)) * LIMIT_KNEE).astype(np.float32)
    quiet[0, 0], quiet[1, 1] = LIMIT_KNEE, -LIMIT_KNEE
    assert np.array_equal(soft_limit(quiet), quiet)  # at and under the knee: untouched
    loud = np.array([[0.5, -0.96], [1.2, -3.0], [0.99, 0.951]], dtype=np.float32)
    out = soft_limit(loud)
    assert out[0, 0] == 0.5 and np.all(np.abs(out) <= 0.99) and np.all(np.sign(out) == np.sign(loud))
    assert abs(out[0, 1]) > LIMIT_KNEE and abs(out[1, 1]) > abs(out[1, 0]) > abs(out[2, 0])  # smooth, monotonic
    assert loud[1, 0] == np.float32(1.2)  # the input is not changed
