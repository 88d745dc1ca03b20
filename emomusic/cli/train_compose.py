"""``emomusic train vae | diffgan | baseline``: training commands of the symbolic engine.

torch is imported inside the commands, so loading this module stays cheap.
"""

from __future__ import annotations

from pathlib import Path

import click

from emomusic.cli.common import seed_option
from emomusic.errors import EmomusicError

# ---- train vae / train diffgan: the engine's commands go here (owned by the engine) ----
def _command_line(name: str) -> str:
    """The command as typed (option names from click), for the model card."""
    ctx = click.get_current_context()
    parts = [f"emomusic train {name}"]
    for param in ctx.command.params:
        v = ctx.params.get(param.name)
        if v is None or v == () or param.name == "threads" or not isinstance(param, click.Option):
            continue
        opt = max(param.opts, key=len)
        if param.is_flag or isinstance(v, bool):
            if param.secondary_opts:
                parts.append(opt if v else max(param.secondary_opts, key=len))
            elif v:
                parts.append(opt)
        elif isinstance(v, tuple):
            parts.extend(f"{opt} {x}" for x in v)
        else:
            parts.append(f"{opt} {v}")
    return " ".join(parts)


def _common_train_checks(steps, max_minutes, device):
    if steps is not None and steps < 1:
        raise EmomusicError(f"--steps must be >= 1, got {steps}")
    if max_minutes is not None and not max_minutes > 0:
        raise EmomusicError(f"--max-minutes must be > 0, got {max_minutes}")


def _engine_training_options(f):
    """Options shared by ``train vae`` and ``train diffgan``."""
    for opt in reversed([
        click.option("--out", "-o", "out_dir", type=click.Path(path_type=Path), required=True, help="Checkpoint folder to write."),
        click.option("--preset", type=click.Choice(["debug", "default", "large"]), default="default", show_default=True,
                     help="debug: tiny (tests); default: sized for a CPU; large: for a GPU."),
        click.option("--steps", type=int, default=None, help="Total optimisation steps (default: the preset's)."),
        click.option("--batch-size", type=int, default=None, help="Override the preset's batch size."),
        click.option("--max-minutes", type=float, default=None, help="Stop (and save) after this wall-clock budget."),
        click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True),
        click.option("--threads", type=int, default=None, help="torch CPU threads."),
        click.option("--resume/--no-resume", default=True, show_default=True, help="Continue from OUT's training state if present."),
        seed_option(help="Random seed."),
        click.option("--cache", "cache_dir", type=click.Path(path_type=Path), default=None,
                     help="Cache folder (default: EMOMUSIC_CACHE, .cache/ in a source checkout, else ~/.cache/emomusic)."),
    ]):
        f = opt(f)
    return f


def _store(list_files, store_path, segment_beats, steps_per_beat, cache_dir):
    """A segment store: read from ``store_path`` when it exists, else built from the files
    ``list_files()`` returns (called only then; written to ``store_path`` when given, so another
    machine can train without the MIDI)."""
    from emomusic.compose.data import SegmentStore, build_store
    from emomusic.paths import cache_dir as default_cache

    if store_path is not None and store_path.is_file():
        try:
            store = SegmentStore.load(store_path)
        except Exception as exc:  # a corrupt or foreign file: one clear line
            raise EmomusicError(f"{store_path} is not a segment store ({exc.__class__.__name__})") from None
        if (store.segment_beats, store.steps_per_beat) != (segment_beats, steps_per_beat):
            raise EmomusicError(f"{store_path} holds {store.segment_beats}-beat segments at {store.steps_per_beat} "
                                f"steps per beat; this model needs {segment_beats} at {steps_per_beat}")
        return store
    files = list_files()
    if not files:
        raise EmomusicError(f"segment store {store_path} not found and no MIDI data given")
    store = build_store(files, segment_beats, steps_per_beat, cache_dir=cache_dir or default_cache())
    if store_path is not None:
        store_path.parent.mkdir(parents=True, exist_ok=True)
        store.save(store_path)
    return store


_STORE_HELP = ("Segment store (.npz): read it if it exists (no MIDI needed), else write it after reading "
               "the MIDI, to train elsewhere (e.g. a GPU machine) from that one file.")


@click.command("vae")
@click.option("--data", "data_dirs", type=click.Path(path_type=Path), multiple=True,
              help="MIDI folders (repeatable): e.g. POP909, VGMIDI unlabelled, EMOPIA (train split only).")
@click.option("--store", "store_path", type=click.Path(path_type=Path, dir_okay=False), default=None, help=_STORE_HELP)
@click.option("--init-from", "init_from", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Start from this VAE checkpoint's weights (same --preset) instead of a new network.")
@click.option("--decoder-only", is_flag=True, default=False,
              help="With --init-from: train the decoder only. The encoder, and so the latents a diffusion-GAN "
                   "was trained on, stay as they were: that diffusion-GAN keeps working with the new VAE.")
@_engine_training_options
def train_vae(data_dirs, store_path, init_from, decoder_only, out_dir, preset, steps, batch_size, max_minutes, device,
              threads, resume, seed, cache_dir):
    """Train the segment VAE (stage 1) on piano MIDI."""
    _common_train_checks(steps, max_minutes, device)
    if not data_dirs and store_path is None:
        raise EmomusicError("give MIDI folders with --data, or a segment store with --store")
    if decoder_only and init_from is None:
        raise EmomusicError("--decoder-only needs --init-from (the VAE whose encoder is kept)")
    if init_from is not None and not (init_from / "config.json").is_file():
        raise EmomusicError(f"--init-from {init_from}: no VAE checkpoint there (config.json missing)")
    import torch

    from emomusic.compose.config import VAEConfig
    from emomusic.compose.data import corpus_files
    from emomusic.compose.modelcard import write_vae_card
    from emomusic.compose.train import train_vae as run

    if threads:
        torch.set_num_threads(threads)
    cfg = VAEConfig.preset(preset)
    if batch_size:
        cfg.batch_size = batch_size
    store = _store(lambda: corpus_files(data_dirs) if data_dirs else [], store_path, cfg.segment_beats,
                   cfg.steps_per_beat, cache_dir)
    data = [str(d) for d in data_dirs] or [f"segment store {store_path}"]
    click.echo(f"vae: {store.n_files} files, {int(store.seg_ok.sum())} segments", err=True)
    command = _command_line("vae")
    res = run(store, out_dir, cfg, steps=steps, device=device, seed=seed, resume=resume, max_minutes=max_minutes,
              meta={"command": command, "data": data}, init_from=init_from, decoder_only=decoder_only)
    if not res.is_main:  # another process of a multi-process run: the main one writes the files
        return
    write_vae_card(out_dir, res, command=command, data=data, n_files=store.n_files,
                   n_segments=int(store.seg_ok.sum()), device=device)
    m = res.metrics
    click.echo(f"trained {res.steps} steps in {res.seconds / 60:.1f} min; held-out onset F1 {m.get('val_f1', float('nan')):.3f} -> {out_dir}")


@click.command("diffgan")
@click.option("--vae", "vae_dir", type=click.Path(path_type=Path), required=True, help="Trained VAE checkpoint folder.")
@click.option("--emopia", "emopia_dir", type=click.Path(path_type=Path), default=None,
              help="EMOPIA folder (midis/ + split/); only split/train_clip.csv is used (the labelled data).")
@click.option("--data", "data_dirs", type=click.Path(path_type=Path), multiple=True,
              help="Unlabelled MIDI folders (repeatable), e.g. POP909 and VGMIDI: soft-labelled by the estimator.")
@click.option("--store", "store_path", type=click.Path(path_type=Path, dir_okay=False), default=None, help=_STORE_HELP)
@click.option("--soft-labels/--no-soft-labels", default=True, show_default=True,
              help="Label unlabelled windows with the project's estimator (else they train the unconditional branch only).")
@click.option("--workers", type=int, default=1, show_default=True, help="Processes for soft labelling.")
@click.option("--init-from", "init_from", type=click.Path(path_type=Path), default=None,
              help="Warm start: a trained diffgan folder (same --preset and VAE) whose generator this run continues; "
                   "the discriminator starts fresh and trains alone for the first 200 steps.")
@_engine_training_options
def train_diffgan(vae_dir, emopia_dir, data_dirs, store_path, soft_labels, workers, init_from, out_dir, preset, steps,
                  batch_size, max_minutes, device, threads, resume, seed, cache_dir):
    """Train the emotion-conditioned latent diffusion-GAN (stage 2): EMOPIA train clips are the
    labelled data; unlabelled MIDI (--data) joins with soft labels from the estimator."""
    _common_train_checks(steps, max_minutes, device)
    if emopia_dir is None and not data_dirs and store_path is None:
        raise EmomusicError("give the labelled data with --emopia (and unlabelled MIDI with --data), or --store")
    if workers < 1:
        raise EmomusicError(f"--workers must be >= 1, got {workers}")
    import numpy as np
    import torch

    from emomusic.compose.config import DiffGANConfig
    from emomusic.compose.data import corpus_files, emopia_files
    from emomusic.compose.modelcard import write_diffgan_card
    from emomusic.compose.train import load_vae, sequence_windows
    from emomusic.compose.train import train_diffgan as run
    from emomusic.paths import cache_dir as default_cache

    if threads:
        torch.set_num_threads(threads)
    vae = load_vae(vae_dir)
    cfg = DiffGANConfig.preset(preset)
    cfg.latent_dim = vae.cfg.latent_dim
    if batch_size:
        cfg.batch_size = batch_size
    def list_files():
        files = emopia_files(emopia_dir, "train") if emopia_dir is not None else []
        seen = {p for p, _ in files}
        return files + [(p, va) for p, va in (corpus_files(data_dirs) if data_dirs else []) if p not in seen]

    store = _store(list_files, store_path, vae.cfg.segment_beats, vae.cfg.steps_per_beat, cache_dir)
    soft = None
    wins = sequence_windows(store, cfg.seq_len)
    unlabelled = np.isnan(store.file_va[store.seg_file[wins[:, 0]], 0]) if len(wins) else np.zeros(0, bool)
    if soft_labels and unlabelled.any():
        from emomusic.compose.softlabel import soft_labels as label

        soft = label(store, wins, which=unlabelled, cache_dir=cache_dir or default_cache(), workers=workers)
    command = _command_line("diffgan")
    res = run(store, vae_dir, out_dir, cfg, steps=steps, device=device, seed=seed, resume=resume,
              max_minutes=max_minutes, meta={"command": command}, cache_dir=cache_dir or default_cache(), soft=soft,
              init_from=init_from)
    if not res.is_main:  # another process of a multi-process run: the main one writes the files
        return
    write_diffgan_card(out_dir, res, command=command, n_files=store.n_files, device=device)
    click.echo(f"trained {res.steps} steps in {res.seconds / 60:.1f} min -> {out_dir}")



# ---- train baseline (autoregressive transformer; emomusic.compose.baseline) ----
@click.command("baseline")
@click.option("--data", "data_dir", type=click.Path(path_type=Path), required=True,
              help="EMOPIA folder (midis/ and split/); only split/train_clip.csv is used.")
@click.option("--out", "-o", "out_dir", type=click.Path(path_type=Path), required=True, help="Checkpoint folder to write.")
@click.option("--preset", type=click.Choice(["debug", "default"]), default="default", show_default=True)
@click.option("--steps", type=int, default=None, help="Total optimisation steps (default: the preset's).")
@click.option("--batch-size", type=int, default=None, help="Override the preset's batch size.")
@click.option("--max-minutes", type=float, default=None, help="Stop (and save) after this wall-clock budget.")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice).")
@click.option("--resume/--no-resume", default=True, show_default=True, help="Continue from OUT's training state if present.")
@click.option("--val-share", type=float, default=0.04, show_default=True,
              help="Share of training *songs* held out for a validation loss (EMOPIA val is never used).")
@seed_option(help="Random seed.")
@click.option("--cache", "cache_dir", type=click.Path(path_type=Path), default=None,
              help="Token cache folder (default: EMOMUSIC_CACHE, .cache/ in a source checkout, else ~/.cache/emomusic).")
def train_baseline(data_dir, out_dir, preset, steps, batch_size, max_minutes, device, threads, resume, val_share, seed, cache_dir):
    """Train the autoregressive REMI transformer baseline on EMOPIA train clips."""
    if steps is not None and steps < 1:
        raise EmomusicError(f"--steps must be >= 1, got {steps}")
    if batch_size is not None and batch_size < 1:
        raise EmomusicError(f"--batch-size must be >= 1, got {batch_size}")
    if not 0 <= val_share < 0.5:
        raise EmomusicError(f"--val-share must be in [0, 0.5), got {val_share}")
    if not (data_dir / "split" / "train_clip.csv").is_file():
        raise EmomusicError(f"{data_dir} is not an EMOPIA folder (split/train_clip.csv missing)")
    import torch

    from emomusic.compose.baseline import BaselineConfig, load_emopia_tokens, make_tokenizer, train_baseline as run
    from emomusic.paths import cache_dir as default_cache

    if threads:
        torch.set_num_threads(threads)
    if device == "cuda" and not torch.cuda.is_available():
        raise EmomusicError("--device cuda: no CUDA device is available")
    tok = make_tokenizer()
    data = load_emopia_tokens(data_dir, tok, "train", cache_dir=cache_dir or default_cache())
    # song-disjoint hold-out: EMOPIA clip names are Qn_<songid>_<k>.mid
    songs = sorted({name[3:].rsplit("_", 1)[0] for _, _, name in data})
    import numpy as np

    rng = np.random.default_rng(1234)
    held = set(rng.choice(songs, size=int(round(len(songs) * val_share)), replace=False)) if val_share > 0 else set()
    train = [d for d in data if d[2][3:].rsplit("_", 1)[0] not in held]
    val = [d for d in data if d[2][3:].rsplit("_", 1)[0] in held]
    cfg = BaselineConfig.preset_config(preset)
    if batch_size:
        cfg.batch_size = batch_size
    click.echo(f"baseline: {len(train)} training clips, {len(val)} held-out clips ({len(held)} songs)", err=True)
    res = run(train, out_dir, cfg, tokenizer=tok, steps=steps, val_data=val or None, device=device, seed=seed,
              resume=resume, max_minutes=max_minutes, progress=True)
    from emomusic.compose.baseline import write_model_card

    params = click.get_current_context().params
    command = "emomusic train baseline " + " ".join(
        f"--{k.replace('_', '-')} {v}" if not isinstance(v, bool) else (f"--{k}" if v else f"--no-{k}")
        for k, v in params.items() if v is not None and k not in ("data_dir", "out_dir", "cache_dir")
    )
    command += f" --data {data_dir} --out {out_dir}"
    write_model_card(out_dir, res, command=command, n_train=len(train), n_val=len(val))
    val_txt = f", held-out loss {res.val_loss:.3f}" if res.val_loss is not None else ""
    click.echo(f"trained {res.steps} steps in {res.seconds / 60:.1f} min: loss {res.final_loss:.3f}{val_txt} -> {out_dir}")
