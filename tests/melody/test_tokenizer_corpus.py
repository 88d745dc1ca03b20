"""Tokenizer round trip, saved vocabulary, and corpus cleaning/labelling on a corpus built in code."""

from __future__ import annotations

import json
import random

import pytest

from emomusic.melody.corpus import (
    augment, build_corpus, clean_tune, label_tunes, quadrant_counts, split_tunes, tune_from_abc,
)
from emomusic.melody.notation import DURATIONS, CanonTune, parse_key
from emomusic.melody.tokenizer import N_PREFIX, Controls, Tokenizer, build_vocab, default_tokenizer_path


def _random_tune(rng: random.Random, chords: bool) -> CanonTune:
    from emomusic.melody.notation import METERS

    meter = rng.choice(list(METERS))
    units = METERS[meter][0]
    bars = []
    for _ in range(rng.randint(1, 6)):
        bar, pos = [], 0
        while pos < units:
            d = rng.choice([x for x in DURATIONS if x <= units - pos])
            chord = (rng.randrange(12), rng.choice(["", "m", "7", "m7", "dim"])) if chords and rng.random() < 0.3 else None
            pitch = None if rng.random() < 0.1 else rng.randint(48, 96)
            bar.append((chord, d, pitch))
            pos += d
        bars.append(bar)
    return CanonTune(parse_key(rng.choice(["G", "Em", "Ador", "Dmix", "Bb", "F#m"])), meter, bars)


@pytest.mark.parametrize("chords", [False, True])
def test_round_trip(chords):
    tok = Tokenizer()
    rng = random.Random(1)
    for _ in range(200):
        t = _random_tune(rng, chords)
        ids = tok.encode(t, Controls("Q2", 0, 2, 1, chords))
        back = tok.decode(ids)
        assert back.key == t.key and back.meter == t.meter and back.bars == t.bars
        assert ids[0] == tok.bos and ids[-1] == tok.eos and ids.count(tok.bar) == len(t.bars)


def test_chords_off_drops_chord_tokens():
    tok = Tokenizer()
    t = _random_tune(random.Random(3), True)
    ids = tok.encode(t, Controls(chords=False))
    assert not any(i in tok.id_to_chord for i in ids)
    assert [(d, p) for b in tok.decode(ids).bars for _, d, p in b] == [(d, p) for b in t.bars for _, d, p in b]


def test_saved_tokenizer_matches_code(tmp_path):
    saved = Tokenizer.load(default_tokenizer_path())
    assert saved.vocab == build_vocab()
    Tokenizer().save(tmp_path / "t.json")
    assert json.loads((tmp_path / "t.json").read_text())["tokens"] == build_vocab()
    assert len(Tokenizer().prefix(parse_key("G"), "6/8", Controls())) == N_PREFIX



@pytest.fixture
def tiny_text():
    from helpers import load_file

    return load_file("tests/melody/conftest.py").TINY_CORPUS


def test_split_clean_parse(tiny_text):
    texts = split_tunes(tiny_text)
    assert len(texts) == 4 and all(t.startswith("X:") for t in texts)
    abc, head = clean_tune(texts[1])
    assert head["key"] == parse_key("Ador") and head["meter"] == "3/4" and head["tempo"] == 60
    assert "w:" not in abc and "% comment" not in abc
    assert "K:G\n" in abc  # fed to parsers as the relative major; the mode is kept in head
    tunes = [tune_from_abc(t, "tiny") for t in texts]
    assert all(t is not None for t in tunes)
    jig, air, reel, sad = tunes
    assert jig.meter == "6/8" and jig.has_chords and len(jig.bars) == 8
    assert all(b[0][0] is not None for b in jig.bars)  # a chord at every bar start
    assert air.key.mode == "dorian" and air.bars[0] == [(None, 4, 69), (None, 4, 71), (None, 4, 72)]
    assert reel.key.mode == "mixolydian" and 72 in reel.pitches()  # =c is C natural
    assert sad.key == parse_key("Em")
    for t in tunes:
        t.check()


def test_label_and_balance(tiny_text):
    tunes = [tune_from_abc(t, "tiny") for t in split_tunes(tiny_text)]
    stats = label_tunes(tunes)
    assert {"sd_edges", "density_edges", "register_edges"} <= set(stats)
    labels = {t.title: t.label for t in tunes}
    assert labels["Test Air"] in ("Q2", "Q3") and labels["Sad Song"] in ("Q2", "Q3")  # minor-like modes
    assert labels["Test Jig"] in ("Q1", "Q4") and labels["Test Reel"] in ("Q1", "Q4")
    aug = augment(tunes, max_per_tune=6)
    counts = quadrant_counts(aug)
    assert sum(counts.values()) > len(tunes)
    for t in aug:
        ps = t.pitches()
        assert min(ps) >= 48 and max(ps) <= 96


def test_build_corpus_caches(tmp_path, tiny_text):
    src = tmp_path / "tiny.abc"
    src.write_text(tiny_text)
    cache = tmp_path / "cache"
    a = build_corpus([src], cache=cache)
    assert len(a) == 4 and len(list(cache.glob("corpus_*.json"))) == 1
    b = build_corpus([tmp_path], cache=cache)
    assert [t.to_dict() for t in a] == [t.to_dict() for t in b]


def test_bad_corpus_paths(tmp_path):
    from emomusic.errors import EmomusicError

    with pytest.raises(EmomusicError, match="no such"):
        build_corpus([tmp_path / "missing"], cache=tmp_path)
    with pytest.raises(EmomusicError, match="no .abc"):
        build_corpus([tmp_path], cache=tmp_path)


@pytest.mark.data
def test_nottingham_parses(shared_data):
    files = sorted((shared_data / "nottingham" / "ABC_cleaned").glob("*.abc"))
    texts = split_tunes(files[0].read_text())[:20]
    tunes = [tune_from_abc(t) for t in texts]
    ok = [t for t in tunes if t is not None]
    assert len(ok) >= 10  # tunes with metre or key changes are skipped by design
