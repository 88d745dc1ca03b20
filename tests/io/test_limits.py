"""Bounded reading (issue #13): a hostile file gets a one-line error, quickly, before any
large allocation; a corrupt one always says why."""

from __future__ import annotations

import time
import zipfile

import mido
import numpy as np
import pytest

from emomusic import limits
from emomusic.errors import CheckpointError, PieceFormatError
from emomusic.io import read_piece
from emomusic.io.abc import abc_to_piece
from emomusic.piece import Note, Piece, Tempo, Track

TUNE = "X:1\nT:t\n{fields}K:C\nCDEF GABc|{body}\n"


def _midi(path, events, ppq=480):
    mf = mido.MidiFile(ticks_per_beat=ppq)
    tr = mido.MidiTrack(events)
    mf.tracks.append(tr)
    mf.save(path)
    return path


def test_a_ten_hour_note_is_refused_before_rendering(tmp_path):
    path = _midi(tmp_path / "long.mid", [mido.Message("note_on", note=60, velocity=80, time=0),
                                         mido.Message("note_off", note=60, velocity=0, time=480 * 2 * 36000)])
    with pytest.raises(PieceFormatError, match="too long .*at most 60 minutes"):
        read_piece(path)


def test_an_hour_of_music_is_fine_and_more_is_refused(tmp_path):
    ok = _midi(tmp_path / "ok.mid", [mido.Message("note_on", note=60, velocity=80, time=0),
                                     mido.Message("note_off", note=60, velocity=0, time=480 * 2 * 3500)])
    assert read_piece(ok).duration_seconds == pytest.approx(3500)
    fast = _midi(tmp_path / "fast.mid", [mido.MetaMessage("set_tempo", tempo=1, time=0),  # 60,000,000 BPM
                                         mido.Message("note_on", note=60, velocity=80, time=0),
                                         mido.Message("note_off", note=60, velocity=0, time=480 * 70_000)])
    with pytest.raises(PieceFormatError, match="too long .*beats"):
        read_piece(fast)


def test_too_many_notes_stop_the_reader_early(tmp_path, monkeypatch):
    monkeypatch.setattr(limits, "MAX_NOTES", 50)
    events = []
    for i in range(80):
        events += [mido.Message("note_on", note=60, velocity=80, time=1), mido.Message("note_off", note=60, time=1)]
    with pytest.raises(PieceFormatError, match="too many notes"):
        read_piece(_midi(tmp_path / "many.mid", events))


def test_oversized_files_are_refused_before_parsing(tmp_path, monkeypatch):
    monkeypatch.setattr(limits, "MAX_MIDI_BYTES", 1000)
    monkeypatch.setattr(limits, "MAX_ABC_BYTES", 200)
    monkeypatch.setattr(limits, "MAX_MUSICXML_BYTES", 1000)
    big = tmp_path / "big.mid"
    big.write_bytes(b"MThd" + b"\0" * 2000)
    with pytest.raises(PieceFormatError, match="too large to read as MIDI"):
        read_piece(big)
    abc = tmp_path / "big.abc"
    abc.write_text(TUNE.format(fields="", body="CDEF|" * 100))
    with pytest.raises(PieceFormatError, match="too large"):
        read_piece(abc)
    mxl = tmp_path / "bomb.mxl"  # small on disk, huge unpacked
    with zipfile.ZipFile(mxl, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("score.xml", "<" + " " * 100_000 + ">")
    assert mxl.stat().st_size < 1000
    with pytest.raises(PieceFormatError, match="unpacked"):
        read_piece(mxl)


def test_corrupt_tempo_and_metre_events_are_skipped(tmp_path):
    path = tmp_path / "odd.mid"
    _midi(path, [mido.MetaMessage("time_signature", numerator=3, denominator=4, time=0),
                 mido.Message("note_on", note=60, velocity=80, time=0),
                 mido.Message("note_off", note=60, velocity=0, time=480)])
    data = bytearray(path.read_bytes())
    i = data.index(b"\xff\x58\x04") + 3
    data[i + 1] = 200  # denominator 2**200
    path.write_bytes(bytes(data))
    p = read_piece(path)
    assert [(t.numerator, t.denominator) for t in p.time_signatures] == [(4, 4)]


def test_unreadable_midi_always_says_why(tmp_path):
    good = tmp_path / "good.mid"
    events = []
    for i in range(40):
        events += [mido.Message("note_on", note=50 + i, velocity=80, time=10),
                   mido.MetaMessage("text", text="x" * (i % 5), time=0),
                   mido.Message("note_off", note=50 + i, time=100)]
    _midi(good, events)
    data = good.read_bytes()
    rng = np.random.default_rng(0)
    reasons = []
    for k in range(120):
        b = bytearray(data)
        if k % 3 == 0:
            b = b[: int(rng.integers(5, len(b)))]  # truncated
        else:
            for _ in range(int(rng.integers(1, 8))):
                b[int(rng.integers(0, len(b)))] = int(rng.integers(0, 256))
        bad = tmp_path / f"bad{k}.mid"
        bad.write_bytes(bytes(b))
        try:
            read_piece(bad)
        except PieceFormatError as exc:
            msg = str(exc)
            assert "\n" not in msg and not msg.rstrip().endswith(":"), msg
            reasons.append(msg)
    assert len(reasons) > 30


@pytest.mark.parametrize("field, match", [
    ("M:99999/1\n", "metre"), ("M:-3/4\n", "metre"), ("M:3/0\n", "metre"), ("M:7/5\n", "metre"),
    ("L:1000/1\n", "unit note length"), ("L:1/3\n", "unit note length"), ("L:0/8\n", "unit note length"),
    ("Q:1/4=0\n", "tempo"), ("Q:1/4=99999\n", "tempo"),
])
def test_abc_fields_out_of_range_are_refused_before_music21(field, match):
    t0 = time.perf_counter()
    with pytest.raises(PieceFormatError, match=match):
        abc_to_piece(TUNE.format(fields=field, body=""))
    assert time.perf_counter() - t0 < 1.0  # refused by the pre-check, not after parsing


@pytest.mark.parametrize("body, match", [
    ("C5275 D", "note length"), ("z99999|", "note length"), ("C/99999 D", "note length"),
    ("(999CDE", "tuplet"), ("[M:99/4]CD", "metre"), ("[L:64/1]CD", "unit note length"),
    ("|" + "C64 " * 1000, "too long"),
])
def test_abc_body_out_of_range_is_refused(body, match):
    with pytest.raises(PieceFormatError, match=match):
        abc_to_piece(TUNE.format(fields="L:1/4\n", body=body))


def test_sane_abc_still_reads():
    p = abc_to_piece(TUNE.format(fields="M:6/8\nL:1/8\nQ:3/8=80\n", body="(3CDE [M:2+3/8] C2 D3|"))
    assert len(p.notes) == 13


def test_parse_time_limit(monkeypatch):
    from emomusic.io import abc as abcmod

    def slow(text, source):
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < 30:
            pass

    monkeypatch.setattr(limits, "PARSE_SECONDS", 0.5)
    monkeypatch.setattr(abcmod, "_parse_with_music21", slow)
    t0 = time.perf_counter()
    with pytest.raises(PieceFormatError, match="took longer than"):
        abc_to_piece(TUNE.format(fields="", body=""))
    assert time.perf_counter() - t0 < 5


def test_time_limit_restores_an_outer_alarm():
    import signal

    fired = []
    old = signal.signal(signal.SIGALRM, lambda *a: fired.append(1))
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.6)
        with limits.time_limit(5, "x"):
            pass
        assert signal.getitimer(signal.ITIMER_REAL)[0] > 0.3
        time.sleep(0.8)
        assert fired == [1]
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


# -- the estimator ---------------------------------------------------------------------
def _reference_triad_shares(notes, end_beat):
    """The straightforward per-window loop the linear version replaced."""
    import math

    from emomusic.estimator import _MAJ_TRIADS, _MIN_TRIADS

    n_win = max(1, int(math.ceil(end_beat)))
    chroma = np.zeros((n_win, 12))
    for n in notes:
        for w in range(int(n.start), max(int(n.start), min(n_win - 1, int(math.ceil(n.end)) - 1)) + 1):
            overlap = min(n.end, w + 1.0) - max(n.start, float(w))
            if overlap > 0:
                chroma[w, n.pitch % 12] += overlap
    tot = chroma.sum(axis=1)
    keep = tot > 1e-6
    c = chroma[keep] / tot[keep, None]
    smaj, smin = (c @ _MAJ_TRIADS.T).max(axis=1), (c @ _MIN_TRIADS.T).max(axis=1)
    strong = np.maximum(smaj, smin) > 0.5
    return float(np.sum(strong & (smaj > smin + 1e-9)) / len(c)), float(np.sum(strong & (smin > smaj + 1e-9)) / len(c))


def test_estimator_windows_match_the_reference_and_are_bounded():
    from emomusic.estimator import _triad_shares, estimate_emotion

    rng = np.random.default_rng(1)
    for _ in range(50):
        notes = [Note(int(rng.integers(40, 90)), float(rng.choice([rng.uniform(0, 30), rng.integers(0, 30)])),
                      float(rng.choice([rng.uniform(0.05, 9), rng.integers(1, 5)])), 80)
                 for _ in range(int(rng.integers(1, 40)))]
        end = max(n.end for n in notes)
        assert np.allclose(_triad_shares(notes, end), _reference_triad_shares(notes, end))
    huge = Piece(tracks=[Track("p", 0, False, [Note(60, 0.0, 1.0, 80), Note(64, 1e12, 1.0, 80)])], tempos=[Tempo(1e9)])
    with pytest.raises(PieceFormatError, match="too long"):
        estimate_emotion(huge)


def test_estimator_file_that_is_not_utf8_is_one_line(tmp_path):
    from emomusic.estimator import load_estimator

    (tmp_path / "estimator.json").write_bytes(b'{"format_version": 1, "x": "\xff\xfe"}')
    with pytest.raises(CheckpointError, match="not a UTF-8 JSON"):
        load_estimator(tmp_path)
    (tmp_path / "estimator.json").write_text("[1, 2]")
    with pytest.raises(CheckpointError, match="not a JSON object"):
        load_estimator(tmp_path)


def test_devices_and_pipes_are_not_read(tmp_path):
    import os

    fifo = tmp_path / "pipe.mid"
    os.mkfifo(fifo)
    for path in (fifo, "/dev/zero"):
        with pytest.raises(Exception, match="not a regular file"):
            read_piece(path, fmt="midi")
