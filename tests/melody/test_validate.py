"""The ABC checkers the melody API relies on: each check catches what it names, counts what
music21 counts (no chord symbols, no grace notes), and a checker that cannot run never passes."""

from __future__ import annotations

import shutil

import pytest

from emomusic.errors import EmomusicError
from emomusic.melody.validate import abc2midi_available, check_abc, check_abc2midi, check_music21

needs_abc2midi = pytest.mark.skipif(shutil.which("abc2midi") is None, reason="abc2midi (Debian package abcmidi) is not installed")

# 3 bars of 4/4 with L:1/8: 5 notes, 12 quarter notes
GOOD = "X:1\nT:x\nM:4/4\nL:1/8\nK:G\nA2 B2 c4 | c8 | d4 z4 |]\n"


@pytest.mark.parametrize("n_notes", [4, 6, 10])
def test_music21_note_count_must_match_exactly(n_notes):
    assert check_music21(GOOD, n_notes=5) is None
    problem = check_music21(GOOD, n_notes=n_notes)
    assert problem == f"music21: read 5 notes, expected {n_notes}"


def test_music21_bar_count_and_length():
    assert check_music21(GOOD, n_bars=3, quarters=12) is None
    assert check_music21(GOOD, n_bars=4) == "music21: read 3 bars, expected 4"
    assert check_music21(GOOD, n_bars=2) == "music21: read 3 bars, expected 2"
    assert check_music21(GOOD, quarters=11) == "music21: read 12 quarter notes, expected 11"
    assert check_music21(GOOD, quarters=13) is not None
    assert check_music21(GOOD.replace("c4 |", "c3 |"), quarters=12) == "music21: read 11.5 quarter notes, expected 12"


def test_music21_counts_neither_chord_symbols_nor_grace_notes():
    text = 'X:1\nT:x\nM:4/4\nL:1/8\nK:C\n"Am" A2 {g}B2 "G" c4 | "C" [CEG]8 |]\n'
    # A, B, c and the chord [CEG] (one element): 4; the grace note and the symbols do not count
    assert check_music21(text, n_bars=2, n_notes=4, quarters=8) is None
    assert check_music21(text, n_notes=5) is not None


def test_music21_reports_what_it_cannot_parse():
    assert check_music21("X:1\nK:C\nL:1/8\n[CEG\n").startswith("music21: ABCHandlerException: Bad chord")
    assert check_music21("X:1\nL:1/0\nK:C\nC2\n").startswith("music21: ZeroDivisionError")


@needs_abc2midi
def test_abc2midi_accepts_good_and_names_the_fault_in_bad_abc():
    assert abc2midi_available()
    assert check_abc2midi(GOOD) is None
    bad = check_abc2midi(GOOD.replace("c8", "^^^c8"))
    assert bad is not None and bad.startswith("abc2midi:") and "\n" not in bad
    assert check_abc2midi(GOOD.replace("c8", '"Am c8')) is not None  # unclosed chord symbol
    assert check_abc(GOOD, n_bars=3, n_notes=5, quarters=12, missing_ok=False) is None
    assert check_abc(GOOD, n_notes=6, missing_ok=False).startswith("music21:")  # music21 is asked first
    assert check_abc(GOOD.replace("c8", "^^^c8"), missing_ok=False).startswith("abc2midi:")


@needs_abc2midi
def test_abc2midi_time_limit_is_reported(monkeypatch):
    import subprocess

    def slow(*a, **k):
        raise subprocess.TimeoutExpired(cmd="abc2midi", timeout=k.get("timeout"))

    monkeypatch.setattr(subprocess, "run", slow)
    assert check_abc2midi(GOOD, timeout=0.01) == "abc2midi: timed out"
    seen = {}

    def record(cmd, **k):  # the limit reaches the subprocess call
        seen.update(k)
        raise subprocess.TimeoutExpired(cmd="abc2midi", timeout=k.get("timeout"))

    monkeypatch.setattr(subprocess, "run", record)
    check_abc2midi(GOOD, timeout=3.5)
    assert seen["timeout"] == 3.5
    check_abc2midi(GOOD)
    assert seen["timeout"] == 20.0


def test_a_missing_abc2midi_is_an_error_not_a_pass(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # a folder without abc2midi
    assert not abc2midi_available()
    with pytest.raises(EmomusicError) as exc:
        check_abc2midi(GOOD)
    assert str(exc.value) == "abc2midi is not installed (Debian package abcmidi): cannot check ABC with it"
    with pytest.raises(EmomusicError):
        check_abc(GOOD, missing_ok=False)
    # the melody API generates without abc2midi (music21 alone), and says nothing false:
    assert check_abc2midi(GOOD.replace("c8", "^^^c8"), missing_ok=True) is None
    assert check_abc(GOOD, n_notes=6) is not None and check_abc(GOOD, n_notes=5) is None


@needs_abc2midi
def test_abc2midi_must_write_a_midi_file(monkeypatch):
    import subprocess

    real = subprocess.run

    def no_output(cmd, **k):  # a clean exit that wrote nothing
        return real(["true"], **k)

    monkeypatch.setattr(subprocess, "run", no_output)
    assert check_abc2midi(GOOD) == "abc2midi: wrote no MIDI file"

    def failing(cmd, **k):
        return real(["sh", "-c", "echo 'Error in line 3' >&2; exit 0"], **k)

    monkeypatch.setattr(subprocess, "run", failing)
    assert check_abc2midi(GOOD) == "abc2midi: Error in line 3"

    def exit_status(cmd, **k):
        return real(["sh", "-c", "echo boom; exit 3"], **k)

    monkeypatch.setattr(subprocess, "run", exit_status)
    assert check_abc2midi(GOOD) == "abc2midi: exit status 3: boom"

    def long_error(cmd, **k):  # the reason keeps the first 200 characters
        return real(["sh", "-c", "printf 'x%.0s' $(seq 300); exit 4"], **k)

    monkeypatch.setattr(subprocess, "run", long_error)
    assert check_abc2midi(GOOD) == "abc2midi: exit status 4: " + "x" * 200

    def long_error_line(cmd, **k):
        return real(["sh", "-c", "printf 'error %.0s' $(seq 60)"], **k)

    monkeypatch.setattr(subprocess, "run", long_error_line)
    assert check_abc2midi(GOOD) == "abc2midi: " + ("error " * 60).strip()[:200]

    def empty_file(cmd, **k):  # a clean exit that wrote an empty MIDI file
        open(cmd[-1], "wb").close()
        return real(["true"], **k)

    monkeypatch.setattr(subprocess, "run", empty_file)
    assert check_abc2midi(GOOD) == "abc2midi: wrote no MIDI file"


def test_check_abc_passes_every_expectation_to_music21():
    assert check_abc(GOOD, n_bars=3, n_notes=5, quarters=12, missing_ok=True) is None
    assert check_abc(GOOD, n_bars=4, missing_ok=True) == "music21: read 3 bars, expected 4"
    assert check_abc(GOOD, n_notes=4, missing_ok=True) == "music21: read 5 notes, expected 4"
    assert check_abc(GOOD, quarters=11, missing_ok=True) == "music21: read 12 quarter notes, expected 11"
