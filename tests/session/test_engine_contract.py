"""The clip-engine contract, one test body over every backend in the registry
(BuildSettings.backends): the same seed gives the same clip; the audio comes back as
(frames, 2) float32 and the pipeline cuts it to the asked length; a bad setup raises
EmomusicError before any work is done. Each backend runs on its smallest real setup
(rules: none; symbolic: the shipped checkpoint, else the debug one trained in code;
melody: the shipped checkpoint; musicgen: the tiny model built in code); a missing or
broken shipped checkpoint fails, it is never skipped."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from emomusic.errors import EmomusicError
from emomusic.session import BuildSettings, build_session, plan_session
from emomusic.session.clip_engine import ClipEngine
from emomusic.session.clips import ClipMaker
from emomusic.session.engines import ENGINES, make_engine
from emomusic.session.policy import AcceptancePolicy

SR = 16000
PLAN = plan_session("anxious", "calm", minutes=0.2, clip_seconds=6)  # two clips of 6 s


def _symbolic(tmp: Path) -> dict:
    """The shipped checkpoint (a broken one fails the test: check() raises), else, for a
    copy of the package without it, the debug checkpoint trained in code."""
    from emomusic.paths import checkpoint_path
    from emomusic.session.engines import SymbolicEngine

    if checkpoint_path("compose").exists():
        SymbolicEngine().check()
        return {}
    from helpers import load_file

    return {"model": load_file("tests/compose/tiny.py").make_debug_checkpoint(tmp / "compose")}


def _melody(tmp: Path) -> dict:
    from emomusic.session.engines import MelodyEngine

    MelodyEngine().check()  # the shipped checkpoint: missing or broken fails the test
    return {}


def _musicgen(tmp: Path) -> dict:
    from emomusic.clip import tiny

    return {"model": tiny.save_tiny_model(tmp / "tiny-melody", melody=True)}


SETUPS = {"rules": lambda tmp: {}, "symbolic": _symbolic, "melody": _melody, "musicgen": _musicgen}


@pytest.fixture(scope="module")
def setup_for(tmp_path_factory, one_torch_thread):
    cache: dict[str, dict] = {}

    def get(backend: str) -> dict:
        if backend not in cache:
            cache[backend] = SETUPS[backend](tmp_path_factory.mktemp(backend))
        return cache[backend]

    return get


class Spy:
    """The engine under test, recording what its render returns."""

    def __init__(self, engine):
        self.engine, self.raw = engine, []
        self.name, self.measured_on = engine.name, engine.measured_on

    def check(self):
        self.engine.check()

    def generate(self, req):
        return self.engine.generate(req)

    def render(self, cand, req, sample_rate):
        audio = self.engine.render(cand, req, sample_rate)
        self.raw.append((audio, req.seconds))
        return audio


def _first_clip(engine):
    maker = ClipMaker(PLAN, engine, None, AcceptancePolicy(max_retries=0), SR,
                      dict.fromkeys(("generate", "estimate", "render", "write"), 0.0))
    take, _ = maker.choose(0)
    return take, maker.render(0, take), maker.frames(0)


def test_every_backend_has_a_contract_setup():
    assert set(SETUPS) == set(ENGINES) == set(BuildSettings.backends)


@pytest.mark.parametrize("backend", BuildSettings.backends)
def test_same_seed_same_clip_and_audio_format(backend, setup_for):
    setup = setup_for(backend)
    runs = []
    for _ in range(2):  # a fresh engine each time: nothing carried over
        engine = Spy(make_engine(backend, **setup))
        assert isinstance(engine.engine, ClipEngine) and engine.name == backend
        engine.check()
        runs.append((engine, *_first_clip(engine)))
    (e1, take1, r1, frames), (e2, take2, r2, _) = runs
    audio, seconds = e1.raw[0]
    assert audio.ndim == 2 and audio.shape[1] == 2 and audio.dtype == np.float32
    assert audio.shape[0] >= 0.9 * seconds * SR and np.isfinite(audio).all() and np.abs(audio).max() > 0
    assert r1.audio.shape == (frames, 2) and r1.audio.dtype == np.float32  # the asked length, exactly
    assert take1.seed == take2.seed == PLAN.clips[0].seed
    assert np.array_equal(r1.audio, r2.audio)
    if r1.piece is not None:
        assert [(n.pitch, n.start, n.duration) for n in r1.piece.notes] == \
               [(n.pitch, n.start, n.duration) for n in r2.piece.notes]


@pytest.mark.parametrize("backend", BuildSettings.backends)
def test_bad_setup_fails_before_any_work(backend, tmp_path):
    missing = tmp_path / "missing"
    bad = {"soundfont": missing} if backend == "rules" else {"model": missing}
    with pytest.raises(EmomusicError, match="not found"):
        BuildSettings(backend=backend, **bad).validate()
    out = tmp_path / "out"
    with pytest.raises(EmomusicError):
        build_session(PLAN, out, backend=backend, sample_rate=SR, **bad)
    assert list(tmp_path.iterdir()) == []  # no output, no work folder
    # a file that exists but is no checkpoint / SoundFont: the engine's own check refuses it
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "config.json").write_text("{}")
    (junk / "x.sf2").write_bytes(b"not a soundfont")
    bad = {"soundfont": junk / "x.sf2"} if backend == "rules" else {"model": junk}
    engine = make_engine(backend, **bad)
    with pytest.raises(EmomusicError):
        engine.check()
