"""Loading a MusicGen checkpoint (transformers format) from a folder, or a hub id when allowed.

A checkpoint folder is what ``save_pretrained`` writes (or ``huggingface-cli download
facebook/musicgen-small --local-dir DIR`` fetches): ``config.json`` with ``model_type``
``musicgen`` or ``musicgen_melody``, weights (``model.safetensors`` or sharded safetensors),
tokenizer files and ``preprocessor_config.json``. Nothing is downloaded unless the caller passes
``allow_download=True`` (``emomusic clip --allow-download``) *and* gives a hub id.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from emomusic.errors import CheckpointError

MODEL_TYPES = ("musicgen", "musicgen_melody")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass
class LoadedModel:
    """A MusicGen model with what generation and training need around it."""

    model: object  # MusicgenForConditionalGeneration | MusicgenMelodyForConditionalGeneration
    tokenizer: object
    source: str  # folder path or hub id
    model_type: str  # "musicgen" | "musicgen_melody"
    sample_rate: int
    frame_rate: float  # codec frames (decoder steps) per second
    num_codebooks: int
    max_positions: int
    chroma_rate: float | None = None  # melody models: chroma frames per second
    chroma_length: int | None = None
    fingerprint: str = ""
    adapter: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def is_melody(self) -> bool:
        return self.model_type == "musicgen_melody"

    @property
    def native_seconds(self) -> float:
        """Longest clip one generation window produces: min(30 s, decoder positions)."""
        steps = self.max_positions - self.num_codebooks - 1
        return min(30.0, steps / self.frame_rate)


@contextlib.contextmanager
def quiet_transformers():
    """Silence transformers' info/warning chatter (e.g. 'pad_token_id outside vocabulary', which
    is MusicGen's design: pad = codebook size)."""
    import warnings

    from transformers.utils import logging as tlog

    old = tlog.get_verbosity()
    bars = tlog.is_progress_bar_enabled()
    tlog.set_verbosity_error()
    tlog.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning)
            warnings.filterwarnings("ignore", message=".*gradient_checkpointing.*")
            yield
    finally:
        tlog.set_verbosity(old)
        if bars:
            tlog.enable_progress_bar()


def _read_config(folder: Path) -> dict:
    cfg = folder / "config.json"
    if not cfg.is_file():
        raise CheckpointError(f"{folder} is not a MusicGen checkpoint: it has no config.json")
    try:
        data = json.loads(cfg.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{cfg} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{cfg} is not a model config")
    return data


def check_safetensors(path: Path) -> None:
    """Cheaply check that ``path`` is a safetensors file (an 8-byte header length, then a
    JSON header): a pickle, a truncated download or any other file gets one line here."""
    import struct

    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(8)
            n = struct.unpack("<Q", head)[0] if len(head) == 8 else -1
            if not 2 <= n <= min(100 << 20, size - 8):
                raise ValueError("no safetensors header")
            header = json.loads(fh.read(n).decode("utf-8"))
        if not isinstance(header, dict):
            raise ValueError("the header is not a JSON object")
    except (OSError, ValueError, struct.error) as exc:
        why = "it looks like a pickle, which is never loaded" if head[:1] == b"\x80" or head[:2] == b"PK" else str(exc)
        raise CheckpointError(f"{path} is not a valid safetensors file ({why})") from None


def check_model_folder(path: str | os.PathLike) -> tuple[Path, str]:
    """Validate a checkpoint folder cheaply (no torch): returns (folder, model_type)."""
    folder = Path(path)
    if not folder.exists():
        raise CheckpointError(f"model folder not found: {folder}")
    if not folder.is_dir():
        raise CheckpointError(f"--model must be a checkpoint folder, but {folder} is a file")
    data = _read_config(folder)
    mt = data.get("model_type")
    if mt not in MODEL_TYPES:
        raise CheckpointError(f"{folder} holds a {mt!r} model, not MusicGen (model_type musicgen or musicgen_melody)")
    weights = sorted(folder.glob("*.safetensors"))
    if not weights:
        if list(folder.glob("*.bin")) or list(folder.glob("*.pt")) or list(folder.glob("*.pth")):
            raise CheckpointError(f"{folder} has only pickle weights (*.bin); emomusic loads safetensors only "
                                  "(convert them, or download the model's model.safetensors)")
        raise CheckpointError(f"{folder} has no weights (model.safetensors)")
    for w in weights:
        check_safetensors(w)
    if not ((folder / "tokenizer.json").is_file() or (folder / "spiece.model").is_file()):
        raise CheckpointError(f"{folder} has no tokenizer (tokenizer.json or spiece.model)")
    return folder, mt


def config_fingerprint(config_dict: dict) -> str:
    """A stable hash of a model's architecture (sub-configs' shapes), used to tie adapters to
    their base. Version-dependent bookkeeping keys are ignored."""
    import hashlib

    keep = {}
    for part in ("text_encoder", "audio_encoder", "decoder"):
        sub = config_dict.get(part) or {}
        keep[part] = {
            k: sub.get(k)
            for k in sorted(sub)
            if k in {
                "model_type", "vocab_size", "d_model", "d_kv", "d_ff", "num_layers", "num_heads", "hidden_size",
                "num_hidden_layers", "num_attention_heads", "ffn_dim", "num_codebooks", "max_position_embeddings",
                "sampling_rate", "codebook_size", "upsampling_ratios", "num_filters", "audio_channels",
                "target_bandwidths", "codebook_dim",
            }
        }
    keep["model_type"] = config_dict.get("model_type")
    text = json.dumps(keep, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def load_model(
    model: str | os.PathLike,
    *,
    device: str = "cpu",
    allow_download: bool = False,
    dtype=None,
) -> LoadedModel:
    """Load a MusicGen / MusicGen-Melody checkpoint and its tokenizer.

    ``model`` is a folder, or a hub id (``facebook/musicgen-small``) used only with
    ``allow_download=True``; otherwise only local files and the local hub cache are read.
    """
    src = str(model)
    local = Path(src)
    if local.exists() or not _HUB_ID.match(src):
        folder, mt = check_model_folder(local)
        target, local_only = str(folder), True
        cfg_dict = _read_config(folder)
    else:
        target, local_only = src, not allow_download
        mt, cfg_dict = None, None
    import torch
    from transformers import AutoConfig, AutoTokenizer

    with quiet_transformers():
        try:
            config = AutoConfig.from_pretrained(target, local_files_only=local_only)
        except OSError as exc:
            if local_only and not local.exists():
                raise CheckpointError(
                    f"model {src!r} is not a folder here and not in the local hub cache; download it first "
                    f"(huggingface-cli download {src} --local-dir DIR) or pass --allow-download on an online machine"
                ) from None
            raise CheckpointError(f"cannot load the config of {src}: {str(exc).splitlines()[0]}") from None
        mt = config.model_type
        if mt == "musicgen":
            from transformers import MusicgenForConditionalGeneration as cls
        elif mt == "musicgen_melody":
            from transformers import MusicgenMelodyForConditionalGeneration as cls
        else:
            raise CheckpointError(f"{src} holds a {mt!r} model, not MusicGen")
        try:
            net = cls.from_pretrained(target, local_files_only=local_only, dtype=dtype or torch.float32,
                                      use_safetensors=True)
            tok = AutoTokenizer.from_pretrained(target, local_files_only=local_only)
        except Exception as exc:  # OSError, ValueError, RuntimeError, SafetensorError, ...
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
            raise CheckpointError(f"cannot load MusicGen from {src}: {first}") from None
    _check_codebooks(net, src)
    net.eval()
    net.to(device)
    cfg_dict = config.to_dict()
    dec = net.decoder.config
    codec = net.config.audio_encoder
    chroma_rate = chroma_length = None
    if mt == "musicgen_melody":
        fe = _feature_extractor_settings(target, local_only)
        chroma_rate = fe["sampling_rate"] / fe["hop_length"]
        chroma_length = int(getattr(net.config, "chroma_length", 235))
    gc = net.generation_config
    pad = dec.pad_token_id if dec.pad_token_id is not None else dec.vocab_size
    if gc.pad_token_id is None:
        gc.pad_token_id = pad
    if gc.decoder_start_token_id is None:
        gc.decoder_start_token_id = dec.decoder_start_token_id if dec.decoder_start_token_id is not None else pad
    return LoadedModel(
        model=net,
        tokenizer=tok,
        source=src,
        model_type=mt,
        sample_rate=int(codec.sampling_rate),
        frame_rate=float(codec.frame_rate),
        num_codebooks=int(dec.num_codebooks),
        max_positions=int(dec.max_position_embeddings),
        chroma_rate=chroma_rate,
        chroma_length=chroma_length,
        fingerprint=config_fingerprint(cfg_dict),
    )


def _check_codebooks(net, src: str) -> None:
    """The EnCodec of a checkpoint must yield as many codebooks per frame as its decoder
    predicts; otherwise generation fails deep inside attention with a size mismatch."""
    codec_cfg = net.config.audio_encoder
    dec_cfg = net.decoder.config
    bandwidths = list(getattr(codec_cfg, "target_bandwidths", None) or [])
    quantizer = getattr(getattr(net, "audio_encoder", None), "quantizer", None)
    if quantizer is None or not hasattr(quantizer, "get_num_quantizers_for_bandwidth"):
        return
    per_channel = int(quantizer.get_num_quantizers_for_bandwidth(bandwidths[0] if bandwidths else None))
    channels = int(getattr(dec_cfg, "audio_channels", 1) or 1)
    expected = int(dec_cfg.num_codebooks)
    if per_channel * channels != expected:
        raise CheckpointError(
            f"{src}: its EnCodec yields {per_channel * channels} codebooks per frame ({per_channel} x {channels} "
            f"channel(s)) but its decoder expects {expected}; audio_encoder and decoder do not belong together"
        )


def _feature_extractor_settings(target: str, local_only: bool) -> dict:
    """MusicGen-Melody's chroma settings, read as JSON (its feature extractor class needs
    torchaudio, which emomusic does not use)."""
    folder = Path(target)
    path = folder / "preprocessor_config.json"
    if not path.is_file():
        try:
            from huggingface_hub import hf_hub_download

            path = Path(hf_hub_download(target, "preprocessor_config.json", local_files_only=local_only))
        except Exception:
            return {"sampling_rate": 32000, "hop_length": 4096}
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{path} is not valid JSON: {exc}") from None
    return {"sampling_rate": int(d.get("sampling_rate", 32000)), "hop_length": int(d.get("hop_length", 4096))}
