"""``emomusic render IN OUT.wav``: MIDI / ABC / MusicXML to WAV through a SoundFont."""

from __future__ import annotations

import time
from pathlib import Path

import click

from emomusic.cli.common import echo_json, json_option


@click.command()
@click.argument("input_path", metavar="IN", type=click.Path(path_type=Path, dir_okay=True))
@click.argument("output", metavar="OUT.wav", type=click.Path(path_type=Path))
@click.option("--soundfont", "-s", type=click.Path(path_type=Path), default=None,
              help="SoundFont 2 file (default: TimGM6mb.sf2 from the pretty_midi package).")
@click.option("--sample-rate", type=int, default=44100, show_default=True, help="Output sample rate in Hz.")
@click.option("--synth", type=click.Choice(["auto", "fluidsynth", "numpy"]), default="auto", show_default=True,
              help="SoundFont player: FluidSynth (libfluidsynth) or emomusic's numpy player; auto = FluidSynth when installed.")
@click.option("--loudness", default="-16", show_default=True, metavar="LUFS|off",
              help="Level the WAV to this integrated loudness (EBU R 128 / BS.1770), true peak <= -1 dBTP; 'off' keeps the mix as rendered.")
@click.option("--reverb", type=float, default=0.0, show_default=True, help="Room reverb amount, 0 (dry) .. 1.")
@json_option
def render(input_path: Path, output: Path, soundfont: Path | None, sample_rate: int, synth: str, loudness: str,
           reverb: float, as_json: bool) -> None:
    """Render IN (.mid, .abc, .musicxml/.xml/.mxl) to a 16-bit stereo WAV file."""
    from emomusic.errors import EmomusicError
    from emomusic.io import format_for, read_piece
    from emomusic.render import _check_reverb, _check_sample_rate, check_loudness, default_soundfont, resolve_synth, render_to_file

    # Validate everything cheap before reading or synthesising.
    if output.suffix.lower() != ".wav":
        raise EmomusicError(f"OUT must be a .wav file, got {output.name}")
    sr = _check_sample_rate(sample_rate)
    target = None if str(loudness).strip().lower() == "off" else check_loudness(loudness)
    _check_reverb(reverb)
    player, note = resolve_synth(synth)
    if note:
        click.echo(f"Warning: {note}", err=True)
    format_for(input_path, None, ("midi", "abc", "musicxml"))
    sf_path = soundfont if soundfont is not None else default_soundfont()
    from emomusic.sf2 import load_soundfont

    load_soundfont(sf_path)  # a bad SoundFont fails here, before any work
    from emomusic.atomic import check_target, check_writable_dir

    check_writable_dir(output.parent if str(output.parent) else Path("."))
    check_target(output)
    piece = read_piece(input_path)
    t0 = time.perf_counter()
    done = render_to_file(piece, output, soundfont=sf_path, sample_rate=sr, synth=player, reverb=reverb,
                          loudness=False if target is None else target)
    elapsed = time.perf_counter() - t0
    info = {  # measured while writing: the file is not read back (a long render stays small in memory)
        "input": str(input_path),
        "output": str(output),
        "soundfont": str(sf_path),
        "sample_rate": sr,
        "channels": 2,
        "seconds": round(done["frames"] / sr, 3),
        "piece_seconds": round(piece.duration_seconds, 3),
        "peak": done["peak"],
        "synth": player,
        "reverb": reverb,
        "loudness_target_lufs": target,
        "loudness_lufs": done["loudness_lufs"],
        "true_peak_dbtp": done["true_peak_dbtp"],
        "limiter_db": done["limiter_db"],
        "render_seconds": round(elapsed, 3),
    }
    if as_json:
        echo_json(info)
    else:
        click.echo(f"wrote {output} ({info['seconds']:.1f} s, {sr} Hz stereo, {player}, "
                   f"{info['loudness_lufs'] if info['loudness_lufs'] is not None else float('-inf'):.1f} LUFS) in {elapsed:.2f} s")
