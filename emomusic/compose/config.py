"""Dataclass configs of the symbolic engine (VAE + latent diffusion-GAN), JSON round trip.

Every config has a ``debug`` preset (tiny, for tests), a ``default`` preset (sized for a
CPU) and a ``large`` preset (for a GPU: bigger batches; a wider, deeper diffusion-GAN). Unknown keys in a saved config raise :class:`CheckpointError`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields

from emomusic.errors import CheckpointError, EmomusicError

PRESETS = ("debug", "default", "large")


class _JSONConfig:
    kind = "config"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["kind"] = self.kind
        return d

    @classmethod
    def from_dict(cls, d: dict):
        if not isinstance(d, dict):
            raise CheckpointError(f"{cls.kind} config must be a JSON object")
        d = dict(d)
        kind = d.pop("kind", cls.kind)
        if kind != cls.kind:
            raise CheckpointError(f"checkpoint holds a {kind!r} model, expected {cls.kind!r}")
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise CheckpointError(f"{cls.kind} config has unknown fields: {', '.join(sorted(unknown))}")
        for k, v in list(d.items()):
            if isinstance(v, list):
                d[k] = tuple(v)
        return cls(**d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str):
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as exc:
            raise CheckpointError(f"{cls.kind} config is not valid JSON: {exc}") from None

    @classmethod
    def preset(cls, name: str):
        if name not in PRESETS:
            raise EmomusicError(f"unknown preset {name!r}; use one of {', '.join(PRESETS)}")
        return cls._preset(name)


@dataclass
class VAEConfig(_JSONConfig):
    """Segment VAE over a piano roll of ``bars_per_segment`` bars at ``steps_per_beat``."""

    kind = "vae"
    preset_name: str = "default"
    # representation
    bars_per_segment: int = 2
    beats_per_bar: int = 4
    steps_per_beat: int = 4  # 16th notes
    pitch_low: int = 21
    pitch_high: int = 108  # inclusive (88 piano keys)
    # network
    latent_dim: int = 64
    hidden: int = 192
    # training
    batch_size: int = 64
    lr: float = 1e-3
    steps: int = 3000
    kl_weight: float = 0.05  # beta after annealing
    kl_anneal_steps: int = 1000
    free_bits: float = 0.1  # nats per latent dimension
    onset_pos_weight: float = 4.0
    attr_weight: float = 10.0  # duration + velocity squared errors, summed over a segment's onsets
    transpose: int = 5  # random transposition in [-transpose, transpose]
    # decoding: onset probability threshold (onsets were trained with pos_weight, so 0.5 is too dense:
    # 0.65-0.7 gives as many notes as the input and the best held-out onset F1; 0.75 gave the best
    # emotion control of generated pieces with the shipped checkpoint, see docs/compose.md)
    decode_threshold: float = 0.75

    @property
    def n_pitches(self) -> int:
        return self.pitch_high - self.pitch_low + 1

    @property
    def n_steps(self) -> int:
        return self.bars_per_segment * self.beats_per_bar * self.steps_per_beat

    @property
    def segment_beats(self) -> int:
        return self.bars_per_segment * self.beats_per_bar

    @classmethod
    def _preset(cls, name):
        if name == "debug":
            return cls(preset_name="debug", latent_dim=8, hidden=16, batch_size=4, steps=2, kl_anneal_steps=2,
                       pitch_low=48, pitch_high=83)
        if name == "large":
            return cls(preset_name="large", batch_size=256, steps=30000)
        return cls()


@dataclass
class DiffGANConfig(_JSONConfig):
    """Conditional denoising diffusion-GAN over a sequence of ``seq_len`` segment latents."""

    kind = "diffgan"
    preset_name: str = "default"
    latent_dim: int = 64  # must equal the VAE's
    seq_len: int = 8  # segments per sequence (8 x 2 bars = 16 bars)
    # schedule (Xiao et al. 2022: discretised VP-SDE)
    timesteps: int = 4
    beta_min: float = 0.1
    beta_max: float = 20.0
    # generator / discriminator
    d_model: int = 128
    n_layers: int = 3
    n_heads: int = 4
    z_dim: int = 32
    d_model_disc: int = 96
    n_layers_disc: int = 2
    # conditioning
    cond_dropout: float = 0.15
    cond_jitter: float = 0.15  # std of jitter around EMOPIA quadrant centres
    labelled_share: float = 0.35  # share of each batch from EMOPIA-labelled windows when soft-labelled ones exist
    guidance: float = 3.0  # default classifier-free guidance scale at sampling
    valence_guidance: float = 0.0  # contrastive guidance away from (-v, a) at sampling (0 = off)
    # training
    batch_size: int = 64
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    steps: int = 4000
    r1_gamma: float = 0.05
    r1_every: int = 4  # lazy R1 (StyleGAN2): penalise every k-th step with weight k
    recon_weight: float = 1.0  # L2 on the x0 prediction added to the generator's GAN loss (0 = pure GAN)
    ema: float = 0.999

    @classmethod
    def _preset(cls, name):
        if name == "debug":
            return cls(preset_name="debug", latent_dim=8, seq_len=4, d_model=32, n_layers=1, n_heads=2, z_dim=8,
                       d_model_disc=32, n_layers_disc=1, batch_size=4, steps=2, ema=0.9)
        if name == "large":
            return cls(preset_name="large", d_model=192, n_layers=4, d_model_disc=128, batch_size=256, steps=40000,
                       ema=0.9995)
        return cls()
