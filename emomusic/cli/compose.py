"""``emomusic compose``: multi-track piano MIDI (or MusicXML / WAV) for an emotion.

Thin layer over :func:`emomusic.compose.compose`; torch is imported only when it runs.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import click

from emomusic.cli.common import (
    echo_json,
    emotion_options,
    json_option,
    output_format,
    resolve_emotion,
    resolve_point,
    seed_option,
)
from emomusic.errors import EmomusicError

FORMATS = ("midi", "musicxml", "wav")


def _format(output: Path, n: int, fmt: str | None) -> str:
    return output_format(output, n, fmt, FORMATS, "midi")


def _parse_key(text: str | None):
    if text is None:
        return None
    from emomusic.io.midi import parse_key_name

    k = parse_key_name(text.strip())
    if k is None:
        raise EmomusicError(f"cannot read key {text!r}; use e.g. C, G, F#, Am, Ebm")
    return k


@click.command("compose")
@emotion_options
@click.option("--to", "to", type=str, default=None, help="Morph to this emotion across the piece: a mood word or 'V,A'.")
@click.option("--to-valence", type=float, default=None, help="Morph target valence (with --to-arousal).")
@click.option("--to-arousal", type=float, default=None, help="Morph target arousal (with --to-valence).")
@click.option("--bars", type=int, default=16, show_default=True, help="Bars per piece (4/4).")
@click.option("--form", "form", type=str, default=None,
              help="Musical form: letters for equal phrases, ' for a varied repeat (AABA, AA'BA, ABAB), or 'none' "
                   "(through-composed). Default: by length, each piece drawing a song form with its seed "
                   "(16 bars: AA'BA', ABA'B', AA'BC, ABCA', AABA or ABCD).")
@click.option("--n", "n", type=int, default=1, show_default=True, help="How many pieces (-o is then a folder).")
@seed_option
@click.option("--steps", type=int, default=4, show_default=True, help="Denoising steps (1..the trained number, 4).")
@click.option("--guidance", type=float, default=None, help="Classifier-free guidance scale (1 = off; default: the checkpoint's).")
@click.option("--tempo", type=float, default=None, help="Tempo in BPM (default: the emotion's template).")
@click.option("--key", type=str, default=None, help="Transpose to this key, e.g. G or Em (default: as generated).")
@click.option("--format", "fmt", type=str, default=None, help="midi|musicxml|wav (default: from -o's extension; midi for --n > 1).")
@click.option("--checkpoint", type=click.Path(path_type=Path), default=None, help="Checkpoint folder with vae/ and diffgan/ (default: shipped).")
@click.option("--no-template", "no_template", is_flag=True, help="Do not apply the emotion's tempo/loudness/register/mode template.")
@click.option("--no-texture", "no_texture", is_flag=True, help="Only the generated notes: no piano accompaniment added.")
@click.option("--diversity", type=click.FloatRange(0, 1), default=1.0, show_default=True,  # compose.api.DIVERSITY
              help="How far each piece's player style (left-hand busyness, bass register, colour tones, passing notes, "
                   "repeated notes) "
                   "moves from the emotion's defaults, as real pianists differ: 0 = the plain rules for every piece.")
@click.option("--soundfont", type=click.Path(path_type=Path), default=None, help="SoundFont for WAV output.")
@json_option
@click.option("--output", "-o", type=click.Path(path_type=Path), required=True, help="Output file, or folder with --n > 1.")
def compose(valence, arousal, mood, to, to_valence, to_arousal, bars, form, n, seed, steps, guidance, tempo, key, fmt,
            checkpoint, no_template, no_texture, diversity, soundfont, as_json, output):
    """Compose multi-track piano music for an emotion (VAE + 4-step latent diffusion-GAN).

    The piece has a melody and an accompaniment track, key and time signatures, a tempo, a
    marker with the emotion every 4 bars and a marker per section of its form (A, A', B ...):
    repeated sections return, phrases end on half and authentic cadences. Examples:

    \b
      emomusic compose --valence 0.7 --arousal 0.6 -o happy.mid
      emomusic compose --mood calm --bars 32 --form "AA'BA" -o song.mid
      emomusic compose --mood sad --to calm --bars 32 -o journey.mid
      emomusic compose --mood tense --n 4 -o tense/
    """
    emotion = resolve_emotion(valence, arousal, mood)
    if to is not None and (to_valence is not None or to_arousal is not None):
        raise EmomusicError("use either --to or --to-valence/--to-arousal, not both")
    target = None
    if to is not None:
        target = resolve_point(to, "--to")
    elif to_valence is not None or to_arousal is not None:
        if to_valence is None or to_arousal is None:
            raise EmomusicError("--to-valence and --to-arousal go together")
        from emomusic.emotion import Emotion

        try:
            target = Emotion(to_valence, to_arousal)
        except EmomusicError as exc:
            raise EmomusicError(f"--to: {exc}") from None
    if not 1 <= bars <= 512:
        raise EmomusicError(f"--bars must be in 1..512, got {bars}")
    if not 1 <= n <= 1024:
        raise EmomusicError(f"--n must be in 1..1024, got {n}")
    if steps < 1:
        raise EmomusicError(f"--steps must be >= 1, got {steps}")
    if guidance is not None and (math.isnan(guidance) or math.isinf(guidance) or guidance < 0):
        raise EmomusicError(f"--guidance must be a finite number >= 0, got {guidance}")
    if tempo is not None and (math.isnan(tempo) or not 20 <= tempo <= 300):
        raise EmomusicError(f"--tempo must be between 20 and 300 BPM, got {tempo}")
    ksig = _parse_key(key)
    from emomusic.form import piece_forms

    plans = piece_forms(form, bars, emotion, n, seed)  # each piece's form, as compose makes it (a bad --form fails here)
    fmt = _format(output, n, fmt)
    from emomusic.atomic import check_writable_dir
    from emomusic.cli.common import output_paths

    paths = output_paths(output, n, fmt, "compose")
    check_writable_dir(output if n > 1 else (output.parent if str(output.parent) else Path(".")))
    if n == 1 and output.is_dir():
        raise EmomusicError(f"-o {output} is a folder; give a file name (or use --n > 1)")
    if n == 1:
        from emomusic.atomic import check_target

        check_target(output)  # a device, pipe or socket is refused before any work
    if soundfont is not None and not Path(soundfont).is_file():
        raise EmomusicError(f"SoundFont not found: {soundfont}")

    from emomusic.compose import ComposeEngine
    from emomusic.compose import compose as run
    from emomusic.compose.style import piece_styles

    t0 = time.time()
    ComposeEngine.load(checkpoint)  # checkpoint problems are reported before anything else
    pieces = run(emotion, to=target, bars=bars, n=n, seed=seed, steps=steps, guidance=guidance, tempo=tempo, key=ksig,
                 apply_template=not no_template, checkpoint=checkpoint, progress=not as_json, form=form,
                 texture=not no_texture, diversity=diversity)
    gen_s = time.time() - t0
    from emomusic.io import write_piece

    opts = {"soundfont": str(soundfont)} if (fmt == "wav" and soundfont) else {}
    if n > 1:
        from emomusic.atomic import atomic_dir

        # The folder's files appear together or not at all (an existing folder keeps its other files).
        with atomic_dir(output, merge=True) as tmp:
            for p, path in zip(pieces, paths):
                write_piece(p, tmp / path.name, fmt, **opts)
    else:
        write_piece(pieces[0], paths[0], fmt, **opts)
    if as_json:
        echo_json({
            "emotion": emotion.to_dict(),
            "to": target.to_dict() if target else None,
            "bars": bars, "n": n, "seed": seed, "steps": steps, "guidance": guidance, "format": fmt,
            "template": not no_template, "texture": not no_texture, "diversity": diversity,
            "form": plans[0].to_dict() if form is not None else None,  # the asked form (each file's: files[].form)
            "seconds": round(gen_s, 3),
            "files": [{"path": str(path), "form": plan.to_dict(), "bars": p.n_bars, "notes": len(p.notes), "tempo": round(p.tempo, 2),
                       "key": p.key.name if p.key else None, "tracks": [t.name for t in p.tracks],
                       "markers": [{"beat": m.beat, "text": m.text} for m in p.markers],
                       "style": style.to_dict() if not no_texture else None}
                      for p, path, plan, style in zip(pieces, paths, plans, piece_styles(seed, n, diversity))],
        })
    else:
        where = paths[0] if n == 1 else f"{output}/ ({n} files)"
        texts = list(dict.fromkeys(plan.text for plan in plans))
        shape = "through-composed" if texts == ["none"] else ("form " if len(texts) == 1 else "forms ") + ", ".join(texts)
        click.echo(f"composed {n} x {bars} bars ({shape}) "
                   f"for {emotion}{' -> ' + str(target) if target else ''} in {gen_s:.2f} s -> {where}")
