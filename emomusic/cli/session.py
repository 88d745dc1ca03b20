"""``emomusic session``: plan and build an iso-principle listening session.

A thin layer over :mod:`emomusic.session`: option defaults come from
:class:`~emomusic.session.PlanSettings` / :class:`~emomusic.session.BuildSettings`, preset
merging from :func:`~emomusic.session.load_preset`, the backend fallback from
:func:`~emomusic.session.with_fallback`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from emomusic.cli.common import echo_json, json_option, seed_option
from emomusic.session.path import PATHS, STRATEGIES
from emomusic.session.settings import SYNTHS, BuildSettings, PlanSettings

_PLAN = PlanSettings()
_BUILD = BuildSettings()

# option -> PlanSettings field, for the journey options (a --plan file fixes all of them)
PLAN_OPTIONS = {"--minutes": "minutes", "--clip-seconds": "clip_seconds", "--match-minutes": "match_minutes",
                "--settle-minutes": "settle_minutes", "--path": "path_", "--strategy": "strategy",
                "--heart-rate": "heart_rate", "--seed": "seed"}


def _default(value) -> str:
    return f"  [default: {value:g}]" if isinstance(value, float) else f"  [default: {value}]"


@click.command()
@click.option("--from", "from_", metavar="MOOD|V,A", default=None, help="Where the listener is now: a mood word or 'V,A'.")
@click.option("--to", "to", metavar="MOOD|V,A", default=None, help="Where the session should lead.")
@click.option("--via", multiple=True, metavar="MOOD|V,A", help="A point the path passes through (repeatable).")
@click.option("--minutes", type=float, default=None, help="Session length in minutes." + _default(_PLAN.minutes))
@click.option("--clip-seconds", type=float, default=None, help="Length of each clip in seconds." + _default(_PLAN.clip_seconds))
@click.option("--match-minutes", type=float, default=None, help="Matching phase at the start mood." + _default(_PLAN.match_minutes))
@click.option("--settle-minutes", type=float, default=None, help="Settling phase at the target mood." + _default(_PLAN.settle_minutes))
@click.option("--backend", type=click.Choice(BuildSettings.backends), default=None,
              help="Clip engine: symbolic (compose + SoundFont, default; the model-free rules engine when its "
                   "checkpoint is missing), melody (ABC + SoundFont), musicgen (--model), rules (model-free sketch).")
@click.option("--model", type=click.Path(path_type=Path), default=None, help="Checkpoint of the backend (MusicGen folder for musicgen).")
@click.option("--adapter", type=click.Path(path_type=Path), default=None, help="LoRA adapter folder (musicgen).")
@click.option("--soundfont", "-s", type=click.Path(path_type=Path), default=None, help="SoundFont 2 file for rendering.")
@click.option("--path", "path_", type=click.Choice(PATHS), default=None, help="Shape of the journey." + _default(_PLAN.path))
@click.option("--strategy", type=click.Choice(STRATEGIES), default=None,
              help="iso: meet the current mood, then move; compensatory: target mood from the start." + _default(_PLAN.strategy))
@click.option("--heart-rate", type=float, default=None, metavar="BPM", help="Opening tempo: the listener's heart rate.")
@click.option("--preset", default=None, metavar="NAME", help="A session preset from emomusic/playlists/ (flags override it).")
@click.option("--list-presets", is_flag=True, help="List the presets and exit.")
@seed_option(default=None, help="Random seed (same seed, same session)." + _default(_PLAN.seed))
@click.option("--max-retries", type=int, default=_BUILD.max_retries, show_default=True, help="Extra seeds tried per clip far from its waypoint.")
@click.option("--tolerance", type=float, default=_BUILD.tolerance, show_default=True,
              help="Largest accepted valence-arousal distance between a clip and its waypoint.")
@click.option("--sample-rate", type=int, default=_BUILD.sample_rate, show_default=True, help="Sample rate of the WAV files.")
@click.option("--loudness", default=str(_BUILD.loudness), show_default=True, metavar="LUFS|off",
              help="Session level: LUFS of a clip at neutral arousal (the others at their planned offsets), "
                   "true peak at most -1 dBTP; 'off': clips as rendered.")
@click.option("--reverb", type=float, default=_BUILD.reverb, show_default=True,
              help="Room reverb on the SoundFont renders, 0 (dry) to 1.")
@click.option("--synth", type=click.Choice(list(SYNTHS)), default=_BUILD.synth, show_default=True,
              help="SoundFont player: auto (FluidSynth when installed, else the own player), fluidsynth, or numpy.")
@click.option("--threads", type=int, default=1, show_default=True,
              help="torch threads for the generators (small models: 1 is fastest on a shared CPU).")
@click.option("--plan-only", is_flag=True, help="Print (or with --plan-out, write) the plan as JSON; generate nothing.")
@click.option("--plan-out", type=click.Path(path_type=Path), default=None, help="With --plan-only: write the plan here.")
@click.option("--plan", "plan_file", type=click.Path(path_type=Path), default=None, help="Build this (edited) plan JSON.")
@click.option("--resume", is_flag=True, help="Continue an interrupted build of the same plan into the same folder.")
@click.option("--output", "-o", type=click.Path(path_type=Path), default=None, help="Output folder.")
@json_option
def session(from_, to, via, backend, model, adapter, soundfont, preset, list_presets, max_retries, tolerance,
            sample_rate, loudness, reverb, synth, threads, plan_only, plan_out, plan_file, resume, output, as_json, **plan_opts) -> None:
    """Build a listening session that moves from one mood to another (iso principle).

    \b
    Examples:
      emomusic session --from anxious --to calm -o out/
      emomusic session --preset anxiety-to-calm -o out/
      emomusic session --from sad --to 0.6,0.3 --minutes 10 --heart-rate 80 -o out/
      emomusic session --from anxious --to calm --plan-only --plan-out plan.json
      emomusic session --plan plan.json -o out/

    The folder gets FILES (session.wav exactly --minutes long). Not a medical treatment.
    """
    from emomusic.errors import EmomusicError

    if list_presets:
        return _list_presets(as_json)
    if plan_out is not None and not plan_only:
        raise EmomusicError("--plan-out goes with --plan-only")
    plan = _plan(from_, to, via, preset, plan_file, plan_opts)
    if plan_only:
        return _print_plan(plan, plan_out, as_json)
    if output is None:
        raise EmomusicError("give an output folder with -o DIR (or use --plan-only)")
    settings = BuildSettings(backend=backend or _BUILD.backend, model=model, adapter=adapter, soundfont=soundfont,
                             max_retries=max_retries, tolerance=tolerance, sample_rate=sample_rate,
                             loudness=loudness, reverb=reverb, synth=synth).validate()
    summary = _build(plan, output, settings, resume, threads, progress=not as_json and sys.stderr.isatty(),
                     fallback=backend is None)
    if as_json:
        echo_json(summary)
        return
    adh = summary["adherence"]
    dist = "" if adh["mean_distance"] is None else (
        f"; planned vs measured distance mean {adh['mean_distance']:.2f}, max {adh['max_distance']:.2f}"
    )
    m, s = divmod(int(round(summary["duration_s"])), 60)
    click.echo(f"wrote {output}/ ({m}:{s:02d}, {summary['clips_count']} clips, backend {summary['backend']}{dist})")


def _files_help() -> str:
    from emomusic.session.writers import file_names

    names = file_names()
    return ", ".join(names[:-1]) + " and " + names[-1]


session.help = session.help.replace("FILES", _files_help())


def _list_presets(as_json: bool) -> None:
    from emomusic.session.presets import list_presets

    items = list_presets()
    if as_json:
        echo_json(items)
        return
    for p in items:
        click.echo(f"{p['name']:<24s} {p['from']} -> {p['to']}, {p.get('minutes', _PLAN.minutes):g} min: "
                   f"{p.get('description', '')}")


def _plan(from_, to, via, preset, plan_file, plan_opts: dict):
    """The plan: a --plan file, or --from/--to (or a preset) with the journey options."""
    from emomusic.cli.common import resolve_point
    from emomusic.errors import EmomusicError
    from emomusic.session import SessionPlan, load_preset, plan_session

    if plan_file is not None:
        flags = {"--from": from_, "--to": to, "--preset": preset, "--via": via or None,
                 **{flag: plan_opts[name] for flag, name in PLAN_OPTIONS.items()}}
        given = [flag for flag, v in flags.items() if v is not None]
        if given:
            raise EmomusicError(f"--plan fixes the journey already; drop {', '.join(given)} (or edit the plan file)")
        return SessionPlan.load(plan_file)
    overrides = {name.rstrip("_"): plan_opts[name] for name in PLAN_OPTIONS.values() if plan_opts[name] is not None}
    start = resolve_point(from_, "--from") if from_ is not None else None
    target = resolve_point(to, "--to") if to is not None else None
    if via:
        overrides["via"] = [resolve_point(v, "--via") for v in via]
    if preset is not None:
        start, target, settings = load_preset(preset, start=start, target=target, **overrides)
        return plan_session(start, target, settings)
    if start is None or target is None:
        raise EmomusicError("give --from and --to (a mood word or V,A), or --preset NAME, or --plan FILE")
    return plan_session(start, target, PlanSettings(**overrides))


def _print_plan(plan, plan_out, as_json: bool) -> None:
    text = plan.to_json()
    if plan_out is None:
        click.echo(text)
        return
    from emomusic.atomic import write_text_atomic

    write_text_atomic(plan_out, text + "\n")
    if as_json:
        echo_json({"plan": str(plan_out), "clips": len(plan.clips), "minutes": plan.minutes})
    else:
        click.echo(f"wrote the plan ({len(plan.clips)} clips, {plan.minutes:g} min) to {plan_out}")


def _build(plan, output, settings: BuildSettings, resume: bool, threads: int, progress: bool,
           fallback: bool = False) -> dict:
    """build_session with torch's threads set here (the library leaves them alone), glibc's
    malloc keeping freed memory (runtime.retained_heap) and a tqdm bar fed by on_clip.
    ``fallback``: no --backend given, so an unusable default backend falls back to rules
    (with a warning); that check loads the model, so it runs with the build's torch threads
    too (torch's default two threads made the load about 0.8 s slower)."""
    from emomusic.session import build_session
    from emomusic.session.runtime import frozen_heap, retained_heap, torch_threads

    bar = None
    try:
        with torch_threads(threads, settings.backend), retained_heap():
            if fallback:
                from emomusic.session import with_fallback

                settings, warning = with_fallback(settings)
                if warning:
                    click.echo(f"warning: {warning}", err=True)
            if progress:
                from tqdm import tqdm

                bar = tqdm(total=len(plan.clips), desc="session clips", unit="clip", leave=False)
            with frozen_heap():
                return build_session(plan, output, settings, resume=resume,
                                     on_clip=None if bar is None else (lambda done, total, result: bar.update(1)))
    finally:
        if bar is not None:
            bar.close()
