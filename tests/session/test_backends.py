"""The real engines behind the builder: symbolic (compose; shipped checkpoint, else the
engine's debug checkpoint trained in code), melody (shipped checkpoint) and musicgen (the
tiny, randomly initialised MusicGen-Melody built in code by emomusic.clip.tiny). A missing or
broken shipped checkpoint fails these tests; nothing is skipped."""

from __future__ import annotations

import pytest

from emomusic.audio import read_wav
from emomusic.errors import EmomusicError
from emomusic.io import read_piece
from emomusic.session import build_session, plan_session

SR = 16000


def _plan(minutes=0.4, clip_seconds=8):
    return plan_session("anxious", "calm", minutes=minutes, clip_seconds=clip_seconds)


@pytest.mark.slow
def test_musicgen_melody_backend(tmp_path):
    from emomusic.clip import tiny

    import torch

    torch.set_num_threads(1)
    model = tiny.save_tiny_model(tmp_path / "tiny-melody", melody=True)
    plan = plan_session("anxious", "calm", minutes=0.4, clip_seconds=8)
    summary = build_session(plan, tmp_path / "out", backend="musicgen", model=model, sample_rate=16000, max_retries=1)
    assert summary["backend"] == "musicgen" and summary["measured_on"] == "melody"
    assert all(c["measured"] is not None for c in summary["clips"])
    audio, sr = read_wav(tmp_path / "out" / "session.wav")
    assert sr == 16000 and audio.shape[0] == 24 * 16000
    assert (tmp_path / "out" / "session.mid").is_file()


@pytest.mark.slow
def test_musicgen_text_only_model_has_no_midi_and_no_measurement(tmp_path):
    from emomusic.clip import tiny

    model = tiny.save_tiny_model(tmp_path / "tiny", melody=False)
    plan = _plan(minutes=0.2, clip_seconds=6)
    summary = build_session(plan, tmp_path / "out", backend="musicgen", model=model, sample_rate=16000)
    assert summary["measured_on"] == "none" and summary["files"]["session_mid"] is None
    assert all(c["measured"] is None and c["retries"] == 0 for c in summary["clips"])
    audio, sr = read_wav(tmp_path / "out" / "session.wav")
    assert audio.shape[0] == 12 * 16000
    assert not (tmp_path / "out" / "session.mid").exists()
    assert "no `session.mid`" in (tmp_path / "out" / "README.md").read_text()


def test_musicgen_needs_a_model(tmp_path):
    plan = plan_session("anxious", "calm", minutes=0.5, clip_seconds=10)
    with pytest.raises(EmomusicError, match="--model"):
        build_session(plan, tmp_path / "o", backend="musicgen")
    with pytest.raises(EmomusicError):
        build_session(plan, tmp_path / "o", backend="musicgen", model=tmp_path / "missing")
    assert list(tmp_path.iterdir()) == []


def test_real_symbolic_backend(tmp_path):
    from emomusic.session.engines import SymbolicEngine

    SymbolicEngine().check()  # the shipped checkpoint: missing or broken fails the test
    plan = _plan(minutes=0.5, clip_seconds=10)
    summary = build_session(plan, tmp_path / "s", backend="symbolic", sample_rate=22050, max_retries=1)
    assert summary["backend"] == "symbolic"
    audio, sr = read_wav(tmp_path / "s" / "session.wav")
    assert audio.shape[0] == 30 * sr
    midi = read_piece(tmp_path / "s" / "session.mid")
    assert len([m for m in midi.markers if m.text.startswith("clip ")]) == len(plan.clips)


def test_symbolic_backend_with_debug_checkpoint(tmp_path):
    """The symbolic adapter end to end on the compose engine's debug checkpoint (trained two
    steps in code by tests/compose/tiny.py): compose -> conform -> estimate -> render."""
    from helpers import load_file

    ckpt = load_file("tests/compose/tiny.py").make_debug_checkpoint(tmp_path / "ckpt")
    plan = _plan(minutes=0.4, clip_seconds=8)
    summary = build_session(plan, tmp_path / "s", backend="symbolic", model=ckpt, sample_rate=SR, max_retries=1)
    assert summary["backend"] == "symbolic"
    audio, sr = read_wav(tmp_path / "s" / "session.wav")
    assert audio.shape[0] == 24 * sr
    midi = read_piece(tmp_path / "s" / "session.mid", allow_empty=True)
    assert len([m for m in midi.markers if m.text.startswith("clip ")]) == len(plan.clips)
    assert [k.mode for k in midi.keys] == [c.key.mode for c in plan.clips]


def test_real_melody_backend(tmp_path):
    from emomusic.session.engines import MelodyEngine

    MelodyEngine().check()  # the shipped checkpoint: missing or broken fails the test
    plan = _plan(minutes=0.2, clip_seconds=6)
    summary = build_session(plan, tmp_path / "s", backend="melody", sample_rate=16000, max_retries=0)
    assert summary["backend"] == "melody"
    audio, sr = read_wav(tmp_path / "s" / "session.wav")
    assert audio.shape[0] == 12 * sr
    assert all(c["measured"] is not None for c in summary["clips"])
    assert all((tmp_path / "s" / "clips" / f"clip_{c.index:02d}.abc").is_file() for c in plan.clips)


def test_symbolic_prefetch_uses_the_batched_latents(tmp_path):
    """SymbolicEngine.prefetch samples the requests' latents at once (compose.draft_many);
    generate then finishes the prefetched draft. A request prefetched alone gives compose's
    piece to the bit; forget drops the drafts not used."""
    from helpers import load_file

    from emomusic.emotion import Emotion
    from emomusic.form import resolve_form
    from emomusic.piece import KeySignature
    from emomusic.session.engines import ClipRequest, SymbolicEngine

    ckpt = load_file("tests/compose/tiny.py").make_debug_checkpoint(tmp_path / "ckpt")
    form = resolve_form("ABAB", 8)
    reqs = [ClipRequest(index=i + 1, emotion=Emotion(0.5 - 0.3 * i, 0.4), seconds=12.0, tempo=80.0,
                        key=KeySignature(2, "major"), seed=100 + i, bars_wanted=8, form=form) for i in range(3)]
    plain = SymbolicEngine(model=ckpt)
    want = [plain.generate(r) for r in reqs]
    eng = SymbolicEngine(model=ckpt)
    eng.prefetch(reqs[:1])
    assert eng.generate(reqs[0]).piece.notes == want[0].piece.notes
    eng.prefetch(reqs)
    assert set(eng._drafts) == set(reqs)
    got = eng.generate(reqs[1])
    assert got.info == want[1].info == {"engine": "compose", "form_followed": True}
    assert got.piece.n_bars == 8 and got.piece.notes
    eng.forget(reqs)
    assert eng._drafts == {}
