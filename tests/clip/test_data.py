"""MTG-Jamendo TSV layout, tags -> valence/arousal, clips -> EnCodec codes, delay-pattern labels."""

import pytest

from emomusic.errors import EmomusicError

HEADER = "TRACK_ID\tARTIST_ID\tALBUM_ID\tPATH\tDURATION\tTAGS\n"


def test_read_tsv_maps_mood_tags_to_valence_arousal(tmp_path):
    from emomusic.clip.data import read_tsv
    from emomusic.moods import mood_emotion

    tsv = tmp_path / "m.tsv"
    tsv.write_text(
        HEADER
        + "track_1\tartist_1\talbum_1\t01/1.mp3\t200.5\tgenre---pop\tmood/theme---calm\tmood/theme---relaxing\n"
        + "track_2\tartist_2\talbum_2\t02/2.mp3\t100\tmood/theme---energetic\n"
        + "track_3\tartist_3\talbum_3\t03/3.mp3\t90\tmood/theme---film\tgenre---rock\n"
        + "\n"
    )
    tracks, stats = read_tsv(tsv)
    assert stats == {"rows": 4, "tracks": 2, "skipped_no_mood": 1}
    t1, t2 = tracks
    assert t1.track_id == "track_1" and t1.path == "01/1.mp3" and t1.duration == 200.5
    assert t1.mood_words == ["calm", "relaxing"]
    calm, relax = mood_emotion("calm"), mood_emotion("relaxing")
    assert t1.emotion.valence == pytest.approx((calm.valence + relax.valence) / 2)
    assert t1.emotion.arousal == pytest.approx((calm.arousal + relax.arousal) / 2)
    assert t1.emotion.arousal < 0 < t2.emotion.arousal
    assert "genre---pop" in t1.tags


@pytest.mark.parametrize(
    "text, msg",
    [
        ("", "empty"),
        ("ID\tPATH\n", "MTG-Jamendo layout"),
        (HEADER + "t\ta\tb\tp\n", "at least 5"),
        (HEADER + "t\ta\tb\tp\tlong\tmood/theme---calm\n", "DURATION"),
        (HEADER + "t\ta\tb\tp\t10\tmood/theme---film\n", "no track has a mood"),
    ],
)
def test_bad_tsv_is_a_clear_error(tmp_path, text, msg):
    from emomusic.clip.data import read_tsv

    tsv = tmp_path / "bad.tsv"
    tsv.write_text(text)
    with pytest.raises(EmomusicError, match=msg):
        read_tsv(tsv)


def test_missing_tsv(tmp_path):
    from emomusic.clip.data import read_tsv

    with pytest.raises(EmomusicError, match="no such TSV"):
        read_tsv(tmp_path / "nope.tsv")


def test_cut_clips_exact_and_spread():
    import numpy as np

    from emomusic.clip.data import cut_clips

    audio = np.arange(1000, dtype=np.float32)[:, None]
    clips = cut_clips(audio, 100, 3)
    assert len(clips) == 3 and all(c.shape == (100, 1) for c in clips)
    assert clips[0][0, 0] == 0 and clips[-1][-1, 0] == 999
    assert cut_clips(audio[:50], 100, 3) == []


def test_build_examples_encodes_with_the_models_codec(tiny, toy_data):
    import torch

    from emomusic.clip.data import build_examples

    tsv, audio = toy_data
    examples, stats = build_examples(tiny, tsv, audio, clip_seconds=1.0, max_clips=2)
    assert stats["clips"] == len(examples) == 16 and stats["missing_audio"] == 0
    ex = examples[0]
    assert ex.codes.shape == (4, 50) and ex.codes.dtype == torch.long
    assert int(ex.codes.min()) >= 0 and int(ex.codes.max()) < 64
    assert "calm" in ex.text and ex.emotion.arousal < 0
    with pytest.raises(EmomusicError, match="at most"):
        build_examples(tiny, tsv, audio, clip_seconds=20.0)
    with pytest.raises(EmomusicError, match="audio folder"):
        build_examples(tiny, tsv, audio / "nope", clip_seconds=1.0)


def test_missing_audio_files_are_counted_then_error(tiny, toy_data, tmp_path):
    from emomusic.clip.data import build_examples

    tsv, _ = toy_data
    (tmp_path / "empty").mkdir()
    with pytest.raises(EmomusicError, match="8 audio files missing"):
        build_examples(tiny, tsv, tmp_path / "empty", clip_seconds=1.0)


def test_delay_labels_match_transformers_delay_pattern(tiny):
    import torch

    from emomusic.clip.data import delay_labels

    k, t, pad = 4, 7, 64
    codes = torch.randint(0, 64, (2, k, t))
    labels = delay_labels(codes, pad)
    assert labels.shape == (2, t + k - 1, k)
    # transformers' generation: the start token is prepended to the codes, then each codebook
    # is delayed by its index; codebook i's codes sit at positions 1 + i .. t + i
    prompt = torch.cat([torch.full((2, k, 1), pad), codes], dim=2).reshape(2 * k, t + 1)
    _, pattern = tiny.model.decoder.build_delay_pattern_mask(prompt, pad, max_length=t + k)
    pattern = pattern.reshape(2, k, t + k)
    assert (pattern != -1).all()
    assert torch.equal(labels.transpose(1, 2), pattern[:, :, 1:])
    # the model's own shift reproduces the decoder input that generation would feed
    from transformers.models.musicgen.modeling_musicgen import shift_tokens_right

    shifted = shift_tokens_right(labels, pad, pad)
    assert torch.equal(shifted, pattern[:, :, :-1])


def test_delay_labels_stereo_pairs_share_a_delay():
    import torch

    from emomusic.clip.data import delay_labels

    codes = torch.arange(8 * 3).reshape(1, 8, 3)
    lab = delay_labels(codes, 99, audio_channels=2)
    assert lab.shape == (1, 3 + 4 - 1, 8)
    assert lab[0, 0, 0] == 0 and lab[0, 0, 1] == 3 and lab[0, 0, 2] == 99 and lab[0, 1, 2] == 6
