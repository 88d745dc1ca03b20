"""``emomusic analyze FILE`` and ``emomusic emotions``: no neural network, no torch."""

from __future__ import annotations

from pathlib import Path

import click

from emomusic.cli.common import echo_json, json_option
from emomusic.emotion import QUADRANT_NAMES, QUADRANTS
from emomusic.errors import EmomusicError


def analyze_file(path: Path, fmt: str | None = None, estimator: Path | None = None) -> dict:
    """The JSON-ready analysis of one music file (also used by other commands and tests)."""
    from emomusic.estimator import estimate_details, load_estimator
    from emomusic.io import read_piece
    from emomusic.moods import nearest_moods

    model = load_estimator(estimator)  # fail on a missing model before reading the file
    piece = read_piece(path, fmt)
    det = estimate_details(piece, model)
    attrs = det["attributes"]
    emo = det["emotion"]
    return {
        "file": str(path),
        "valence": round(det["valence"], 4),
        "arousal": round(det["arousal"], 4),
        "quadrant": det["quadrant"],
        "quadrant_name": QUADRANT_NAMES[det["quadrant"]],
        "quadrant_probs": {q: round(p, 4) for q, p in det["quadrant_probs"].items()},
        "key": attrs.key_name,
        "attributes": attrs.to_dict(),
        "nearest_moods": [m.word for m in nearest_moods(emo, 3)],
        "n_notes": len(piece.notes),
        "n_tracks": len(piece.tracks),
        "duration_beats": round(piece.end_beat, 3),
        "duration_seconds": round(piece.duration_seconds, 3),
        "features": {k: round(v, 4) for k, v in det["features"].items()},
    }


def _format_text(r: dict) -> str:
    a = r["attributes"]
    lines = [
        f"file            {r['file']}",
        f"length          {r['duration_seconds']:.1f} s, {r['duration_beats']:.1f} beats, "
        f"{r['n_notes']} notes in {r['n_tracks']} track(s)",
        "",
        "measured attributes",
        f"  key           {r['key']} (major {a['major_prob']:.2f}, key fit r = {a['key_confidence']:.2f})",
        f"  tempo         {a['tempo_bpm']:.1f} BPM",
        f"  register      mean MIDI pitch {a['register']:.1f}, spread {a['pitch_spread']:.1f} semitones, "
        f"range {a['pitch_range']:.0f}",
        f"  density       {a['note_density']:.2f} notes/beat, {a['onset_density']:.2f} onsets/beat, "
        f"polyphony {a['polyphony']:.1f}",
        f"  loudness      mean velocity {a['velocity']:.0f}",
        f"  articulation  {a['articulation']:.2f} (0.5 staccato .. 1.0 legato)",
        "",
        "estimated emotion",
        f"  valence       {r['valence']:+.2f}",
        f"  arousal       {r['arousal']:+.2f}",
        f"  quadrant      {r['quadrant']} ({r['quadrant_name']})",
        "  probabilities " + ", ".join(f"{q} {p:.2f}" for q, p in r["quadrant_probs"].items()),
        f"  nearest moods {', '.join(r['nearest_moods'])}",
    ]
    return "\n".join(lines)


@click.command()
@click.argument("file", type=click.Path(path_type=Path, dir_okay=True))
@click.option("--format", "fmt", type=click.Choice(["midi", "abc", "musicxml"]), default=None,
              help="Read FILE as this format instead of guessing from its extension.")
@click.option("--estimator", type=click.Path(path_type=Path), default=None,
              help="Estimator folder or estimator.json (default: the shipped emomusic/checkpoints/estimator).")
@json_option
def analyze(file: Path, fmt: str | None, estimator: Path | None, as_json: bool) -> None:
    """Measure FILE's musical attributes (MIDI, ABC or MusicXML) and estimate its emotion.

    Prints key and mode, tempo, register, density, loudness and articulation, then the
    estimated valence, arousal and quadrant (Q1 happy, Q2 tense, Q3 sad, Q4 calm).
    """
    result = analyze_file(file, fmt, estimator)
    if as_json:
        echo_json(result)
    else:
        click.echo(_format_text(result))


@click.command()
@click.option("--quadrant", "-q", type=click.Choice(list(QUADRANTS), case_sensitive=False), default=None,
              help="Only the words of one quadrant.")
@click.option("--sort", "sort_by", type=click.Choice(["table", "word", "valence", "arousal"]), default="table",
              show_default=True, help="Row order.")
@json_option
def emotions(quadrant: str | None, sort_by: str, as_json: bool) -> None:
    """List the mood words with their valence-arousal coordinates, quadrant and source.

    Any word here works as --mood WORD, --from WORD or --to WORD.
    """
    from emomusic.moods import mood_table

    rows = list(mood_table().values())
    if quadrant:
        rows = [m for m in rows if m.emotion.quadrant == quadrant.upper()]
    if sort_by == "word":
        rows.sort(key=lambda m: m.word)
    elif sort_by in ("valence", "arousal"):
        rows.sort(key=lambda m: getattr(m, sort_by), reverse=True)
    if not rows:  # pragma: no cover - every quadrant has words
        raise EmomusicError("no mood words match")
    if as_json:
        echo_json({"count": len(rows), "moods": [m.to_dict() for m in rows]})
        return
    width = max(len(m.word) for m in rows)
    click.echo(f"{'word':<{width}}  valence  arousal  quadrant  source")
    for m in rows:
        q = m.emotion.quadrant
        click.echo(f"{m.word:<{width}}  {m.valence:+7.2f}  {m.arousal:+7.2f}  {q:<8}  {m.source}")
    click.echo(f"\n{len(rows)} words. Q1 happy/excited, Q2 tense/angry, Q3 sad/depressed, Q4 calm/relaxed.")
