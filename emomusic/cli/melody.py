"""``emomusic melody``: ABC melodies for an emotion, written as ABC, MIDI, MusicXML, WAV, SVG or PNG."""

from __future__ import annotations

from pathlib import Path

import click

from emomusic.cli.common import FORMAT_SUFFIX, echo_json, emotion_options, json_option, output_format, resolve_emotion, seed_option
from emomusic.errors import EmomusicError

FORMATS = ("abc", "midi", "musicxml", "wav", "svg", "png")


def _format(output: Path, n: int, fmt: str | None) -> str:
    return output_format(output, n, fmt, FORMATS, "abc")


def write_tune(tune, path: Path, fmt: str, soundfont: str | None = None) -> None:
    from emomusic.atomic import write_text_atomic

    if fmt == "abc":
        write_text_atomic(path, tune.abc)
    elif fmt in ("svg", "png"):
        from emomusic.io.engrave import write_sheet

        write_sheet(tune.abc, path, fmt)
    else:
        from emomusic.io import write_piece

        opts = {"soundfont": soundfont} if (fmt == "wav" and soundfont) else {}
        write_piece(tune.piece, path, fmt, **opts)


def _preflight(fmt: str) -> None:
    """Missing external tools are reported before any generation."""
    if fmt in ("svg", "png"):
        from emomusic.io.engrave import engraver_available, png_converter

        if not engraver_available():
            raise EmomusicError("sheet music needs abcm2ps (install the Debian/Ubuntu package 'abcm2ps')")
        if fmt == "png" and png_converter() is None:
            raise EmomusicError("PNG output needs rsvg-convert (Debian package 'librsvg2-bin') or 'pip install cairosvg'")


@click.command("melody")
@emotion_options
@click.option("--bars", type=int, default=16, show_default=True, help="Bars per melody.")
@click.option("--n", "n", type=int, default=1, show_default=True, help="How many melodies (-o is then a folder).")
@seed_option
@click.option("--chords", is_flag=True, help="Also write chord symbols (\"Am\"); MIDI/WAV then have a chord track.")
@click.option("--meter", type=str, default=None, help="Metre: 2/4 3/4 4/4 2/2 3/8 6/8 9/8 12/8 (default: by emotion).")
@click.option("--key", type=str, default=None, help="Key, e.g. G, Dm, F#m, Ador, Gmix (default: by emotion).")
@click.option("--tempo", type=float, default=None, help="Tempo in BPM (default: the emotion's template).")
@click.option("--form", type=str, default=None,
              help="Sections in phrases, e.g. AABB, AABA, AA'BB (' = varied repeat), or none (default by length, per tune: AA'BB', AA'BC or AA'BA' for 16 bars).")
@click.option("--variation", type=click.FloatRange(0, 1), default=0.2, show_default=True,  # melody.api.VARIATION
              help="How soon a varied repeat (A') leaves its first statement: 0 = only its closing bar is new, "
                   "1 = only its opening bar is kept.")
@click.option("--diversity", type=click.FloatRange(0, 1), default=1.0, show_default=True,  # melody.api.DIVERSITY
              help="How far each tune's range, density, key steering and scale (degrees left out) move from the "
                   "emotion's template, as real tunes of one mood differ: 0 = the template's own settings.")
@click.option("--check", type=click.Choice(["parsers", "grammar"]), default="parsers", show_default=True,
              help="parsers: music21 and abc2midi read every tune before it is written; grammar: trust the decoder (faster).")
@click.option("--format", "fmt", type=str, default=None, help="abc|midi|musicxml|wav|svg|png (default: from -o, or abc).")
@click.option("--checkpoint", type=click.Path(path_type=Path), default=None, help="Melody checkpoint folder.")
@click.option("--soundfont", type=click.Path(path_type=Path), default=None, help="SoundFont for WAV output.")
@json_option
@click.option("--output", "-o", type=click.Path(path_type=Path), required=True, help="Output file, or folder with --n > 1.")
def melody(valence, arousal, mood, bars, n, seed, chords, meter, key, tempo, form, variation, diversity, check, fmt,
           checkpoint, soundfont, as_json, output):
    """Write ABC melodies for an emotion (attribute template + ABC language model).

    Every tune is accepted by music21 and abc2midi before it is written. Examples:

      emomusic melody --mood melancholic -o tune.abc

      emomusic melody -v 0.7 -a 0.6 --chords --meter 6/8 --key Gmix -o jig.mid

      emomusic melody --mood happy --form AABA --bars 32 -o song.abc

      emomusic melody --mood calm --n 4 --format svg -o sheets/
    """
    emotion = resolve_emotion(valence, arousal, mood)
    from emomusic.atomic import check_writable_dir
    from emomusic.cli.common import output_paths
    from emomusic.melody.api import check_options, resolve_key

    check_options(bars, n, meter, tempo)
    resolve_key(key)
    from emomusic.form import resolve_form

    resolve_form(form, bars, emotion, kind="tune")  # a bad --form fails before anything is generated
    f = _format(output, n, fmt)
    _preflight(f)
    if soundfont is not None and not soundfont.is_file():
        raise EmomusicError(f"no such SoundFont: {soundfont}")
    if n == 1:
        if output.exists() and output.is_dir():
            raise EmomusicError(f"cannot write {output}: a folder of that name exists")
        check_writable_dir(output.parent if str(output.parent) else Path("."))
        from emomusic.atomic import check_target

        check_target(output)  # a device, pipe or socket is refused before any work
        paths = [output]
    else:
        stem = (emotion.label or emotion.quadrant).replace(" ", "_")
        paths = [p.with_suffix(FORMAT_SUFFIX[f]) for p in output_paths(output, n, f, f"melody_{stem}")]
        check_writable_dir(output)

    from emomusic.melody import generate_melodies

    tunes = generate_melodies(emotion, bars=bars, n=n, seed=seed, chords=chords, meter=meter, key=key, tempo=tempo,
                              checkpoint=checkpoint, progress=n > 1, form=form, variation=variation,
                              diversity=diversity, check=check)
    if n > 1:
        from emomusic.atomic import atomic_dir

        # The folder's files appear together or not at all (an existing folder keeps its other files).
        with atomic_dir(output, merge=True) as tmp:
            for tune, p in zip(tunes, paths):
                write_tune(tune, tmp / p.name, f, soundfont and str(soundfont))
    else:
        for tune, p in zip(tunes, paths):
            write_tune(tune, p, f, soundfont and str(soundfont))
    if as_json:
        echo_json({"emotion": emotion.to_dict(), "format": f,
                   "melodies": [{"path": str(p), "title": t.title, "seed": t.seed, **{k: t.attributes[k] for k in (
                       "quadrant", "key", "mode", "meter", "bars", "tempo_bpm", "dynamic", "octave_shift", "chords", "form",
                       "settings")}}
                       for t, p in zip(tunes, paths)]})
    else:
        for t, p in zip(tunes, paths):
            a = t.attributes
            click.echo(f"wrote {p}  ({a['key']}, {a['meter']}, {a['tempo_bpm']} BPM, {a['bars']} bars, "
                       f"form {a['form']['form']}, {a['dynamic']})")
