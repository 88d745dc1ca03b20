"""``emomusic session``: plan and build an iso-principle listening session."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from emomusic.cli.common import echo_json, json_option

BACKEND_CHOICES = ("symbolic", "melody", "musicgen", "rules")


@click.command()
@click.option("--from", "from_", metavar="MOOD|V,A", default=None, help="Where the listener is now: a mood word or 'V,A'.")
@click.option("--to", "to", metavar="MOOD|V,A", default=None, help="Where the session should lead.")
@click.option("--via", multiple=True, metavar="MOOD|V,A", help="A point the path passes through (repeatable).")
@click.option("--minutes", type=float, default=None, help="Session length in minutes.  [default: 15]")
@click.option("--clip-seconds", type=float, default=None, help="Length of each clip in seconds.  [default: 30]")
@click.option("--match-minutes", type=float, default=None, help="Matching phase at the start mood.  [default: 2]")
@click.option("--settle-minutes", type=float, default=None, help="Settling phase at the target mood.  [default: 2]")
@click.option("--backend", type=click.Choice(BACKEND_CHOICES), default=None,
              help="Clip engine: symbolic (compose + SoundFont, default), melody (ABC + SoundFont), "
                   "musicgen (--model), rules (model-free sketch).")
@click.option("--model", type=click.Path(path_type=Path), default=None, help="Checkpoint of the backend (MusicGen folder for musicgen).")
@click.option("--adapter", type=click.Path(path_type=Path), default=None, help="LoRA adapter folder (musicgen).")
@click.option("--soundfont", "-s", type=click.Path(path_type=Path), default=None, help="SoundFont 2 file for rendering.")
@click.option("--path", "path_", type=click.Choice(["eased", "linear", "arousal-first", "valence-first"]), default=None,
              help="Shape of the journey.  [default: eased]")
@click.option("--strategy", type=click.Choice(["iso", "compensatory"]), default=None,
              help="iso: meet the current mood, then move; compensatory: target mood from the start.  [default: iso]")
@click.option("--heart-rate", type=float, default=None, metavar="BPM", help="Opening tempo: the listener's heart rate.")
@click.option("--preset", default=None, metavar="NAME", help="A session preset from emomusic/playlists/ (flags override it).")
@click.option("--list-presets", is_flag=True, help="List the presets and exit.")
@click.option("--seed", type=int, default=None, help="Random seed (same seed, same session).  [default: 0]")
@click.option("--max-retries", type=int, default=3, show_default=True, help="Extra seeds tried per clip far from its waypoint.")
@click.option("--tolerance", type=float, default=0.6, show_default=True,
              help="Largest accepted valence-arousal distance between a clip and its waypoint.")
@click.option("--sample-rate", type=int, default=44100, show_default=True, help="Sample rate of the WAV files.")
@click.option("--threads", type=int, default=1, show_default=True,
              help="torch threads for the generators (small models: 1 is fastest on a shared CPU).")
@click.option("--plan-only", is_flag=True, help="Print (or with --plan-out, write) the plan as JSON; generate nothing.")
@click.option("--plan-out", type=click.Path(path_type=Path), default=None, help="With --plan-only: write the plan here.")
@click.option("--plan", "plan_file", type=click.Path(path_type=Path), default=None, help="Build this (edited) plan JSON.")
@click.option("--resume", is_flag=True, help="Continue an interrupted build of the same plan into the same folder.")
@click.option("--output", "-o", type=click.Path(path_type=Path), default=None, help="Output folder.")
@json_option
def session(from_, to, via, minutes, clip_seconds, match_minutes, settle_minutes, backend, model, adapter, soundfont,
            path_, strategy, heart_rate, preset, list_presets, seed, max_retries, tolerance, sample_rate, threads, plan_only,
            plan_out, plan_file, resume, output, as_json) -> None:
    """Build a listening session that moves from one mood to another (iso principle).

    \b
    Examples:
      emomusic session --from anxious --to calm -o out/
      emomusic session --preset anxiety-to-calm -o out/
      emomusic session --from sad --to 0.6,0.3 --minutes 10 --heart-rate 80 -o out/
      emomusic session --from anxious --to calm --plan-only --plan-out plan.json
      emomusic session --plan plan.json -o out/

    The folder gets session.wav (exactly --minutes long), session.mid, clips/, playlist.m3u8,
    session.json, plan.json, trajectory.png and a README. Not a medical treatment.
    """
    from emomusic.errors import EmomusicError

    if list_presets:
        from emomusic.session.presets import list_presets as _list

        items = _list()
        if as_json:
            echo_json(items)
        else:
            for p in items:
                click.echo(f"{p['name']:<24s} {p['from']} -> {p['to']}, {p.get('minutes', 15):g} min: {p.get('description', '')}")
        return

    from emomusic.cli.common import resolve_point
    from emomusic.session.planner import SessionPlan, plan_session

    if plan_out is not None and not plan_only:
        raise EmomusicError("--plan-out goes with --plan-only")
    if plan_file is not None:
        given = [n for n, v in (("--from", from_), ("--to", to), ("--preset", preset), ("--via", via or None),
                                ("--minutes", minutes), ("--clip-seconds", clip_seconds), ("--path", path_),
                                ("--strategy", strategy), ("--heart-rate", heart_rate), ("--seed", seed),
                                ("--match-minutes", match_minutes), ("--settle-minutes", settle_minutes)) if v is not None]
        if given:
            raise EmomusicError(f"--plan fixes the journey already; drop {', '.join(given)} (or edit the plan file)")
        plan = SessionPlan.load(plan_file)
    else:
        cfg: dict = {}
        if preset is not None:
            from emomusic.session.presets import load_preset

            cfg = load_preset(preset)
        start_text = from_ if from_ is not None else cfg.get("from")
        target_text = to if to is not None else cfg.get("to")
        if start_text is None or target_text is None:
            raise EmomusicError("give --from and --to (a mood word or V,A), or --preset NAME, or --plan FILE")
        start = resolve_point(str(start_text), "--from")
        target = resolve_point(str(target_text), "--to")
        via_texts = list(via) if via else list(cfg.get("via") or [])
        via_points = [resolve_point(str(v), "--via") for v in via_texts]

        def pick(flag, key, default):
            return flag if flag is not None else cfg.get(key, default)

        plan = plan_session(
            start,
            target,
            minutes=pick(minutes, "minutes", 15.0),
            clip_seconds=pick(clip_seconds, "clip_seconds", 30.0),
            match_minutes=pick(match_minutes, "match_minutes", 2.0),
            settle_minutes=pick(settle_minutes, "settle_minutes", 2.0),
            path=pick(path_, "path", "eased"),
            strategy=pick(strategy, "strategy", "iso"),
            heart_rate=pick(heart_rate, "heart_rate", None),
            seed=pick(seed, "seed", 0),
            via=via_points,
            tonic=cfg.get("tonic"),
            crossfade_s=cfg.get("crossfade_s"),
            name=str(cfg.get("name", "")),
            description=str(cfg.get("description", "")),
        )

    if plan_only:
        text = plan.to_json()
        if plan_out is not None:
            from emomusic.atomic import write_text_atomic

            write_text_atomic(plan_out, text + "\n")
            if as_json:
                echo_json({"plan": str(plan_out), "clips": len(plan.clips), "minutes": plan.minutes})
            else:
                click.echo(f"wrote the plan ({len(plan.clips)} clips, {plan.minutes:g} min) to {plan_out}")
        else:
            click.echo(text)
        return

    if output is None:
        raise EmomusicError("give an output folder with -o DIR (or use --plan-only)")
    chosen = backend or "symbolic"
    if backend is None:
        # default backend: fall back to the model-free engine (with a warning) when the
        # symbolic engine or its checkpoint is missing, so a fresh install still works
        from emomusic.session.engines import make_engine

        try:
            make_engine("symbolic", model=model, soundfont=soundfont).check()
        except EmomusicError as exc:
            click.echo(f"warning: symbolic backend unavailable ({exc}); using --backend rules", err=True)
            chosen = "rules"
    from emomusic.session.builder import build_session

    summary = build_session(
        plan,
        output,
        backend=chosen,
        model=model,
        adapter=adapter,
        soundfont=soundfont,
        resume=resume,
        max_retries=max_retries,
        tolerance=tolerance,
        progress=not as_json and sys.stderr.isatty(),
        sample_rate=sample_rate,
        threads=threads,
    )
    if as_json:
        echo_json(summary)
        return
    adh = summary["adherence"]
    dist = "" if adh["mean_distance"] is None else (
        f"; planned vs measured distance mean {adh['mean_distance']:.2f}, max {adh['max_distance']:.2f}"
    )
    m, s = divmod(int(round(summary["duration_s"])), 60)
    click.echo(
        f"wrote {output}/ ({m}:{s:02d}, {summary['clips_count']} clips, backend {summary['backend']}{dist})"
    )
