"""Reading real corpora (EMOPIA train split only) into segment stores; needs ../shared/data."""

from __future__ import annotations

import numpy as np
import pytest

from emomusic.compose.config import VAEConfig
from emomusic.compose.data import build_store, corpus_files, emopia_files
from emomusic.errors import EmomusicError


@pytest.mark.data
def test_emopia_train_only_and_store(shared_data, tmp_path):
    files = emopia_files(shared_data / "emopia", "train")
    val = {line.split(",")[1].strip() for line in (shared_data / "emopia" / "split" / "val_clip.csv").read_text().splitlines()[1:]}
    assert files and not ({p.name for p, _ in files} & val)
    assert {va for _, va in files} == {(0.6, 0.6), (-0.6, 0.6), (-0.6, -0.6), (0.6, -0.6)}
    cfg = VAEConfig()
    store = build_store(files[:20], cfg.segment_beats, cfg.steps_per_beat, cache_dir=tmp_path, progress=False)
    assert store.n_files == 20 and len(store) > 20 and store.seg_ok.mean() > 0.5
    rolls = store.rolls(np.arange(4), cfg)
    assert rolls.shape == (4, 3, 32, 88) and rolls[:, 0].sum() > 0
    again = build_store(files[:20], cfg.segment_beats, cfg.steps_per_beat, cache_dir=tmp_path, progress=False)
    np.testing.assert_array_equal(again.notes, store.notes)  # from the cache
    # an EMOPIA folder passed to corpus_files is read through its train split
    assert len(corpus_files([shared_data / "emopia"])) == len(files)


def test_corpus_files_errors(tmp_path):
    with pytest.raises(EmomusicError, match="not found"):
        corpus_files([tmp_path / "missing"])
    with pytest.raises(EmomusicError, match="no MIDI"):
        corpus_files([tmp_path])
    with pytest.raises(EmomusicError, match="not an EMOPIA folder"):
        emopia_files(tmp_path)


def _rolls_reference(store, idx, cfg, transpose):
    """One segment and one note at a time: the definition the batched version must match."""
    from emomusic.compose.representation import DURATION, ONSET, VELOCITY

    T, P = cfg.n_steps, cfg.n_pitches
    out = np.zeros((len(idx), 3, T, P), np.float32)
    for b, i in enumerate(idx):
        for pitch, start, dur, vel in store.notes[store.seg_ptr[i]:store.seg_ptr[i + 1]]:
            t = int(round(start * cfg.steps_per_beat))
            p = int(pitch) + int(transpose[b]) - cfg.pitch_low
            if not (0 <= t < T and 0 <= p < P):
                continue
            out[b, ONSET, t, p] = 1.0
            out[b, DURATION, t, p] = min(max(1, round(dur * cfg.steps_per_beat)), T - t) / T
            out[b, VELOCITY, t, p] = min(max(vel, 1), 127) / 127.0
    return out


def test_rolls_batched_matches_per_note_definition():
    from emomusic.compose.config import VAEConfig
    from emomusic.compose.data import store_from_notes

    cfg = VAEConfig.preset("default")
    rng = np.random.default_rng(3)
    items = []
    for f in range(5):
        n = int(rng.integers(0, 60))
        arr = np.stack([rng.integers(15, 115, n), rng.uniform(0, 40, n), rng.uniform(0.1, 9, n),
                        rng.integers(1, 128, n)], 1).astype(np.float32)
        items.append((f"f{f}.mid", (0.0, 0.0), arr))
    store = store_from_notes(items, cfg.segment_beats, cfg.steps_per_beat, min_notes=0)
    idx = rng.integers(0, len(store), 40)
    tr = rng.integers(-6, 7, 40)
    got = store.rolls(idx, cfg, tr)
    assert got[:, 0].sum() > 0
    np.testing.assert_array_equal(got, _rolls_reference(store, idx, cfg, tr))
    np.testing.assert_array_equal(store.rolls(idx, cfg), _rolls_reference(store, idx, cfg, np.zeros(40, int)))
    assert store.rolls([], cfg).shape == (0, 3, cfg.n_steps, cfg.n_pitches)
