"""scripts/melody_contour.py end to end on a tiny corpus and the debug model: it writes the corpus's
transition counts, a fitted bonus table and the fit history, and the checkpoint then decodes with
that prior."""

from __future__ import annotations

import json
import shutil

from helpers import load_file

from emomusic.melody.contour import N_CLASSES, N_STATES, ContourPrior, transition_counts


def test_script_fits_and_writes_the_prior(debug_checkpoint, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EMOMUSIC_CACHE", str(tmp_path / "cache"))
    corpus = tmp_path / "tiny.abc"
    corpus.write_text(load_file("tests/melody/conftest.py").TINY_CORPUS)
    ckpt = tmp_path / "ckpt"
    shutil.copytree(debug_checkpoint, ckpt)
    script = load_file("scripts/melody_contour.py")
    assert script.main([str(corpus), "-o", str(ckpt), "--tunes", "8", "--iterations", "2"]) == 0
    cfg = json.loads((ckpt / "config.json").read_text())
    entry = cfg["contour"]
    from emomusic.melody.corpus import build_corpus

    tunes = build_corpus([corpus])
    assert entry["tunes"] == len(tunes) == 4  # no tune of the four falls in the validation split
    assert entry["counts"] == transition_counts([[p for p in t.pitches()] for t in tunes])
    assert len(entry["bonus"]) == N_STATES and {len(r) for r in entry["bonus"]} == {N_CLASSES}
    assert any(v != 0 for r in entry["bonus"] for v in r)
    assert len(entry["fit"]["distance"]) == 3 and entry["fit"]["tunes_per_iteration"] == 8
    assert cfg["profiles"] == {}  # fewer than 50 tunes in every mode: Krumhansl-Kessler stays
    assert ContourPrior.from_config(cfg) is not None
    assert "contour prior from 4 training tunes" in capsys.readouterr().out


def test_missing_config_is_an_error(tmp_path, capsys):
    assert load_file("scripts/melody_contour.py").main(["nothing.abc", "-o", str(tmp_path)]) == 2
    assert "Error" in capsys.readouterr().err
