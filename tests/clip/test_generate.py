"""generate_clip: duration, sample rate, seeding, windowed continuation, melody conditioning."""

import numpy as np
import pytest

from emomusic.emotion import Emotion, parse_emotion
from emomusic.errors import EmomusicError

CALM = parse_emotion("calm")


def test_duration_sample_rate_and_loudness(tiny):
    from emomusic.audio import loudness_db
    from emomusic.clip import generate_clip

    info = {}
    audio, sr = generate_clip(CALM, model=tiny, seconds=1.3, seed=0, info=info)
    assert sr == 16000 and audio.dtype == np.float32
    assert audio.shape == (round(1.3 * 16000), 1)
    assert np.all(np.isfinite(audio)) and np.abs(audio).max() <= 0.98 + 1e-6
    assert loudness_db(audio, sr) == pytest.approx(-20.0, abs=1.0)
    assert info["windows"] == 1 and "calm" in info["prompt"]
    audio2, sr2 = generate_clip(CALM, model=tiny, seconds=1.3, seed=0, sample_rate=22050)
    assert sr2 == 22050 and audio2.shape == (round(1.3 * 22050), 1)


def test_same_seed_same_audio_other_seed_differs(tiny):
    import torch

    from emomusic.clip import generate_clip

    torch.manual_seed(123)
    state = torch.get_rng_state()
    a, _ = generate_clip(CALM, model=tiny, seconds=1.0, seed=5)
    assert torch.equal(state, torch.get_rng_state())  # caller's RNG untouched
    b, _ = generate_clip(CALM, model=tiny, seconds=1.0, seed=5)
    c, _ = generate_clip(CALM, model=tiny, seconds=1.0, seed=6)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-4


def test_prompt_changes_the_output(tiny, monkeypatch):
    """The emotion reaches the audio through the prompt text, and only through it."""
    import emomusic.clip.prompt as prompt_mod
    from emomusic.clip import generate_clip
    from emomusic.clip.prompt import build_prompt

    happy, sad = Emotion(0.8, 0.8), Emotion(-0.8, -0.8)
    info_a, info_b = {}, {}
    a, _ = generate_clip(happy, model=tiny, seconds=1.0, seed=1, info=info_a)
    b, _ = generate_clip(sad, model=tiny, seconds=1.0, seed=1, info=info_b)
    assert info_a["prompt"] == build_prompt(happy) and info_b["prompt"] == build_prompt(sad)
    assert np.abs(a - b).max() > 1e-4
    # the user's extra text changes the audio of the same emotion and seed
    c, _ = generate_clip(happy, model=tiny, seconds=1.0, seed=1, prompt="solo harp")
    assert np.abs(a - c).max() > 1e-4
    # with one fixed prompt text, the two emotions give the same audio
    monkeypatch.setattr(prompt_mod, "build_prompt", lambda emotion, extra=None, n_moods=3: "calm piano")
    a2, _ = generate_clip(happy, model=tiny, seconds=1.0, seed=1)
    b2, _ = generate_clip(sad, model=tiny, seconds=1.0, seed=1)
    np.testing.assert_array_equal(a2, b2)


def test_plan_windows():
    from emomusic.clip.api import plan_windows

    assert plan_windows(100, 250, 40) == [(0, 100)]
    w = plan_windows(600, 250, 40)
    assert w[0] == (0, 250)
    assert all(start == done - 40 for (start, _), done in zip(w[1:], np.cumsum([n for _, n in w])[:-1]))
    assert sum(n for _, n in w) == 600 and all(n <= 250 - 40 for _, n in w[1:])


def test_windowed_continuation_beyond_native_window(tiny, monkeypatch):
    """7 s from a 5 s model: two windows, the second prompted with the first one's tail codes,
    joined by an equal-power crossfade over the shared stretch."""
    import emomusic.audio as audio_mod
    from emomusic.clip import generate_clip

    calls = {}
    real = audio_mod.crossfade_concat

    def spy(clips, sample_rate, fade_seconds):
        calls.setdefault("fades", []).append(fade_seconds)
        return real(clips, sample_rate, fade_seconds)

    monkeypatch.setattr(audio_mod, "crossfade_concat", spy)
    prompts = []
    orig_generate = type(tiny.model).generate

    def gen(self, *args, **kwargs):
        prompts.append(kwargs.get("decoder_input_ids"))
        return orig_generate(self, *args, **kwargs)

    monkeypatch.setattr(type(tiny.model), "generate", gen)
    info = {}
    audio, sr = generate_clip(CALM, model=tiny, seconds=7.0, seed=0, info=info)
    assert audio.shape == (7 * 16000, 1)
    assert info["windows"] == 2 and info["window_seconds"] == pytest.approx(5.0)
    assert prompts[0] is None and prompts[1].shape == (4, round(info["overlap_seconds"] * 50))
    assert calls["fades"] == [pytest.approx(info["overlap_seconds"])]
    # a shorter explicit window gives more windows, same length
    audio3, _ = generate_clip(CALM, model=tiny, seconds=3.0, seed=0, window_seconds=1.0, overlap_seconds=0.2, info=info)
    assert info["windows"] == 4 and audio3.shape == (3 * 16000, 1)


@pytest.mark.parametrize(
    "kwargs, msg",
    [
        ({"seconds": 0}, "seconds must be > 0"),
        ({"seconds": -1}, "seconds must be > 0"),
        ({"seconds": float("nan")}, "seconds"),
        ({"seconds": 1e6}, "at most"),
        ({"sample_rate": 100}, "sample rate"),
        ({"guidance": -1}, "guidance"),
        ({"window_seconds": 60}, "window"),
        ({"overlap_seconds": 9}, "overlap"),
    ],
)
def test_bad_arguments_are_clear_errors(tiny, kwargs, msg):
    from emomusic.clip import generate_clip

    args = {"seconds": 1.0, **kwargs}
    with pytest.raises(EmomusicError, match=msg):
        generate_clip(CALM, model=tiny, **args)


def test_emotion_must_be_typed(tiny):
    from emomusic.clip import generate_clip

    with pytest.raises(EmomusicError, match="Emotion"):
        generate_clip((0.5, 0.5), model=tiny, seconds=1.0)


# -- melody bridge ----------------------------------------------------------------------


def _scale_piece():
    from emomusic.piece import Note, Piece, Tempo, Track

    melody = [Note(p, float(i), 1.0, 90) for i, p in enumerate([60, 62, 64, 65, 67, 69, 71, 72])]
    bass = [Note(36, 0.0, 8.0, 60)]  # C under everything: the top voice must still win
    return Piece(tracks=[Track("Melody", 0, False, melody), Track("Bass", 32, False, bass)], tempos=[Tempo(120.0)])


def test_piece_chroma_follows_the_tune():
    from emomusic.clip.melody import piece_chroma

    piece = _scale_piece()  # 8 notes of 0.5 s at 120 BPM
    ch = piece_chroma(piece, frame_rate=4.0, start=0.0, seconds=4.0)
    assert ch.shape == (16, 12) and np.all(ch.sum(axis=1) == 1)
    pcs = ch.argmax(axis=1)
    assert list(pcs[::2]) == [0, 2, 4, 5, 7, 9, 11, 0]
    looped = piece_chroma(piece, frame_rate=4.0, start=4.0, seconds=1.0)  # the tune loops
    assert list(looped.argmax(axis=1)) == [0, 0, 2, 2]


def test_piece_chroma_rests_hold_previous_class():
    from emomusic.clip.melody import piece_chroma
    from emomusic.piece import Note, Piece, Track

    piece = Piece(tracks=[Track("m", 0, False, [Note(64, 1.0, 0.5), Note(67, 3.0, 0.5)])])
    pcs = piece_chroma(piece, 4.0, 0.0, 2.0).argmax(axis=1)  # 120 BPM: notes at 0.5 s and 1.5 s
    assert list(pcs) == [4, 4, 4, 4, 4, 4, 7, 7]


def test_melody_conditions_musicgen_melody(tiny_melody_dir, tmp_path):
    from emomusic.clip import generate_clip
    from emomusic.clip.loading import load_model
    from emomusic.io import write_piece
    from emomusic.piece import Note, Piece, Track

    lm = load_model(tiny_melody_dir)
    mid = tmp_path / "tune.mid"
    write_piece(_scale_piece(), mid)
    info = {}
    a, sr = generate_clip(CALM, model=lm, melody=mid, seconds=1.0, seed=0, info=info)
    assert a.shape == (16000, 1) and info["melody"] and info["model_type"] == "musicgen_melody"
    other = Piece(tracks=[Track("m", 0, False, [Note(61 + (i % 2) * 5, float(i), 1.0) for i in range(8)])])
    b, _ = generate_clip(CALM, model=lm, melody=other, seconds=1.0, seed=0)
    assert np.abs(a - b).max() > 1e-5  # the chroma reaches the decoder
    c, _ = generate_clip(CALM, model=lm, melody=mid, seconds=6.0, seed=0, info=info)  # continuation + melody
    assert c.shape == (6 * 16000, 1) and info["windows"] == 2


def test_melody_needs_a_melody_model(tiny, tmp_path):
    from emomusic.clip import generate_clip

    with pytest.raises(EmomusicError, match="MusicGen-Melody"):
        generate_clip(CALM, model=tiny, melody=_scale_piece(), seconds=1.0)
    with pytest.raises(EmomusicError, match="no such file"):
        generate_clip(CALM, model=tiny, melody=tmp_path / "nope.mid", seconds=1.0)


def test_guidance_off_differs_from_default(tiny, tiny_melody_dir):
    from emomusic.clip import generate_clip

    a, _ = generate_clip(CALM, model=tiny, seconds=1.0, seed=0, guidance=3.0)
    b, _ = generate_clip(CALM, model=tiny, seconds=1.0, seed=0, guidance=1.0)
    c, _ = generate_clip(CALM, model=tiny, seconds=1.0, seed=0, guidance=0.0)
    assert np.abs(a - b).max() > 1e-4
    np.testing.assert_array_equal(b, c)  # both mean "no guidance"
    m, _ = generate_clip(CALM, model=tiny_melody_dir, seconds=1.0, seed=0, guidance=1.0)
    assert m.shape == (16000, 1)
