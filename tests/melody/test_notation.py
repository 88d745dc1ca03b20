"""Keys with modes, spelling, header writing and transposition (no model, no parser needed)."""

from __future__ import annotations

import re

import pytest

from emomusic.errors import EmomusicError
from emomusic.melody.notation import CanonTune, Key, parse_chord_symbol, parse_key, write_abc


@pytest.mark.parametrize(
    "text,tonic,mode,abc",
    [
        ("G", 7, "major", "G"), ("Em", 4, "minor", "Em"), ("F#m", 6, "minor", "F#m"), ("Bb", 10, "major", "Bb"),
        ("Ador", 9, "dorian", "Ador"), ("ADor", 9, "dorian", "Ador"), ("Gmix", 7, "mixolydian", "Gmix"),
        ("D mixolydian", 2, "mixolydian", "Dmix"), ("A minor", 9, "minor", "Am"), ("Edorian", 4, "dorian", "Edor"),
        ("Ebmix", 3, "mixolydian", "Ebmix"), ("Dphr", 2, "phrygian", "Dphr"),
    ],
)
def test_parse_and_write_keys(text, tonic, mode, abc):
    k = parse_key(text, strict=True)
    assert (k.tonic, k.mode) == (tonic, mode)
    assert k.abc == abc
    assert parse_key(k.abc) == k  # what we write, we read back


def test_mode_signatures():
    assert parse_key("Ador").signature() == parse_key("G").signature()  # one sharp
    assert parse_key("Gmix").signature() == parse_key("C").signature()
    assert parse_key("Dm").signature()["B"] == -1
    assert parse_key("Edor").pitch_classes() == sorted({4, 6, 7, 9, 11, 1, 2})


@pytest.mark.parametrize("bad", ["", "H", "Xdor", "Gfoo", "G major extra"])
def test_bad_user_keys(bad):
    with pytest.raises(EmomusicError):
        parse_key(bad, strict=True)


def test_chord_symbols():
    assert parse_chord_symbol("G") == (7, "")
    assert parse_chord_symbol("F#m") == (6, "m")
    assert parse_chord_symbol("D7") == (2, "7")
    assert parse_chord_symbol("Am7") == (9, "m7")
    assert parse_chord_symbol("Bdim") == (11, "dim")
    assert parse_chord_symbol("C/e") == (0, "")
    assert parse_chord_symbol("xyz") is None


def _tune(key="Ador", meter="6/8"):
    return CanonTune(parse_key(key), meter, [
        [((9, "m"), 4, 69), (None, 2, 71), (None, 2, 72), (None, 2, 78), (None, 2, 77)],
        [((2, ""), 12, 81)],
    ], "T")


def _headers(abc):
    return [l for l in abc.splitlines() if re.match(r"^[A-Za-z]:", l)]


def test_headers_one_per_line_in_order():
    abc = write_abc(_tune(), tempo=93, dynamic="mf")
    heads = _headers(abc)
    assert [h[0] for h in heads] == ["X", "T", "M", "L", "Q", "K"]
    assert "K:Ador" in heads and "M:6/8" in heads and "Q:1/4=93" in heads
    for h in heads:  # nothing glued: exactly one field per line
        assert len(re.findall(r"(?:^|\|)\s*[XTMLQKV]:", h)) == 1
    assert "!mf!" in abc and '"Am"' in abc and '"D"' in abc
    assert abc.rstrip().endswith("|]")


def test_accidentals_explicit_against_mode_signature():
    body = write_abc(_tune()).splitlines()[-1]
    # A dorian has F#: F# is written plain, F natural needs '=' (and then every F in the bar is explicit)
    assert " f=f" in body or "f=f" in body


@pytest.mark.parametrize("shift", range(-6, 7))
def test_transposition_keeps_mode_and_headers(shift):
    t = _tune().transposed(shift)
    assert t.key.mode == "dorian" and t.key.tonic == (9 + shift) % 12
    abc = write_abc(t)
    heads = _headers(abc)
    assert [h[0] for h in heads] == ["X", "T", "M", "L", "Q", "K"]
    assert heads[-1] == f"K:{t.key.abc}" and t.key.abc.endswith("dor")
    assert t.bars[0][0][0] == ((9 + shift) % 12, "m")


def test_transposed_abc_parses_to_the_same_pitches():
    import music21
    for shift in (-5, 2, 6):
        t = _tune().transposed(shift)
        s = music21.converter.parse(write_abc(t), format="abc")
        got = [n.pitch.midi for n in s.recurse().notes if not type(n).__name__.endswith("Symbol")]
        assert got == t.pitches()
        ks = s.recurse().getElementsByClass("KeySignature")[0]
        assert getattr(ks, "mode", None) == "dorian"


def test_check_rejects_partial_bars():
    t = CanonTune(parse_key("C"), "4/4", [[(None, 4, 60)]])
    with pytest.raises(EmomusicError, match="needs 16"):
        t.check()
