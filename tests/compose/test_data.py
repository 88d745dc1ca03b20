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
