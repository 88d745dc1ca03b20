"""LoRA adapters (peft) on MusicGen's decoder attention projections.

An adapter folder is peft's format -- ``adapter_config.json`` (with ``base_model_name_or_path``
naming the base model) and ``adapter_model.safetensors`` -- plus ``emomusic_adapter.json``, which
records what the adapter belongs to: the base's model type, a fingerprint of its architecture
(a hash of the sub-configs' shapes) and a probe of its decoder weights (a few embedding values),
so an adapter trained on one checkpoint is refused, with a clear error, on another. It also
records the training command, data, steps and losses.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from emomusic.errors import CheckpointError

ADAPTER_META = "emomusic_adapter.json"
# The decoder's self- and cross-attention projections: decoder.model.decoder.layers.N.{self_attn,encoder_attn}.{q,k,v,out}_proj
TARGET_MODULES = r".*decoder\.model\.decoder\.layers\.\d+\.(self_attn|encoder_attn)\.(q_proj|k_proj|v_proj|out_proj)"
WEIGHT_PROBE = 16


def weight_probe(model) -> list[float]:
    """A few values of the decoder's first codebook embedding (never a LoRA target)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    w = base.decoder.model.decoder.embed_tokens[0].weight.detach().float().flatten()[:WEIGHT_PROBE]
    return [round(float(x), 6) for x in w.cpu()]


def add_lora(loaded, rank: int = 8, alpha: float | None = None, dropout: float = 0.05):
    """Wrap ``loaded.model`` with fresh LoRA layers (in place); returns the PeftModel."""
    from peft import LoraConfig, get_peft_model

    if loaded.adapter is not None:
        raise CheckpointError("this model already has an adapter")
    if rank < 1:
        raise CheckpointError(f"LoRA rank must be >= 1, got {rank}")
    cfg = LoraConfig(
        r=int(rank),
        lora_alpha=float(alpha if alpha is not None else 2 * rank),
        lora_dropout=float(dropout),
        target_modules=TARGET_MODULES,
        bias="none",
    )
    from emomusic.clip.loading import quiet_transformers

    probe = weight_probe(loaded.model)
    with quiet_transformers():
        peft_model = get_peft_model(loaded.model, cfg)
    peft_model.peft_config["default"].base_model_name_or_path = loaded.source
    loaded.model = peft_model
    loaded.adapter = "(new)"
    loaded.extra["weight_probe"] = probe
    return peft_model


def adapter_metadata(loaded, **info) -> dict:
    return {
        "format": "emomusic-musicgen-lora/1",
        "base_model": loaded.source,
        "base_model_type": loaded.model_type,
        "base_fingerprint": loaded.fingerprint,
        "base_weight_probe": loaded.extra.get("weight_probe") or weight_probe(loaded.model),
        "target_modules": TARGET_MODULES,
        **info,
    }


def save_adapter(loaded, folder: Path, meta: dict) -> None:
    """Write the adapter (peft format) and the emomusic record into ``folder`` (an existing,
    usually temporary, folder: callers wrap this in ``atomic_dir``)."""
    model = loaded.model
    if not hasattr(model, "peft_config"):
        raise CheckpointError("the model has no LoRA adapter to save")
    from emomusic.clip.loading import quiet_transformers

    with quiet_transformers():
        model.save_pretrained(str(folder), safe_serialization=True)
    (Path(folder) / ADAPTER_META).write_text(json.dumps(meta, indent=2), encoding="utf-8")


def read_adapter_meta(folder: str | os.PathLike) -> dict:
    folder = Path(folder)
    if not folder.exists():
        raise CheckpointError(f"adapter folder not found: {folder}")
    if not folder.is_dir():
        raise CheckpointError(f"--adapter must be a folder, but {folder} is a file")
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        if not (folder / name).is_file():
            raise CheckpointError(f"{folder} is not a LoRA adapter: it has no {name}")
    try:
        peft_cfg = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise CheckpointError(f"{folder / 'adapter_config.json'} is not valid JSON: {exc}") from None
    if not isinstance(peft_cfg, dict):
        raise CheckpointError(f"{folder / 'adapter_config.json'} is not an adapter config (not a JSON object)")
    from emomusic.clip.loading import check_safetensors

    check_safetensors(folder / "adapter_model.safetensors")
    meta_path = folder / ADAPTER_META
    meta = {}
    if meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError) as exc:
            raise CheckpointError(f"{meta_path} is not valid JSON: {exc}") from None
        if not isinstance(meta, dict):
            raise CheckpointError(f"{meta_path} is not adapter metadata (not a JSON object)")
    meta.setdefault("base_model", peft_cfg.get("base_model_name_or_path"))
    meta["peft"] = peft_cfg
    return meta


def check_adapter_base(loaded, meta: dict, folder) -> None:
    """Refuse an adapter made for another base model (architecture or weights)."""
    import math

    base = meta.get("base_model") or "an unknown model"
    mt = meta.get("base_model_type")
    if mt and mt != loaded.model_type:
        raise CheckpointError(f"adapter {folder} was trained on a {mt} model ({base}), but {loaded.source} is {loaded.model_type}")
    fp = meta.get("base_fingerprint")
    if fp and fp != loaded.fingerprint:
        raise CheckpointError(
            f"adapter {folder} was trained on {base} (architecture {fp}), which does not match {loaded.source} "
            f"(architecture {loaded.fingerprint})"
        )
    probe = meta.get("base_weight_probe")
    if probe:
        mine = weight_probe(loaded.model)
        scale = max(1e-6, max(abs(x) for x in probe))
        if len(mine) != len(probe) or any(not math.isclose(a, b, abs_tol=2e-3 * scale + 1e-3 * abs(b)) for a, b in zip(mine, probe)):
            raise CheckpointError(
                f"adapter {folder} was trained on {base}, whose weights differ from {loaded.source}'s "
                "(same architecture, different checkpoint)"
            )
    if not fp and not probe:
        # a plain peft adapter (not made by emomusic): at least the recorded base name must agree
        pb = meta.get("peft", {}).get("base_model_name_or_path")
        if pb and Path(str(pb)).name != Path(str(loaded.source)).name:
            raise CheckpointError(f"adapter {folder} was made for {pb}, not {loaded.source}")


def load_adapter(loaded, folder: str | os.PathLike, trainable: bool = False):
    """Attach the adapter in ``folder`` to ``loaded`` (in place) after checking its base."""
    from peft import PeftModel

    from emomusic.clip.loading import quiet_transformers

    if loaded.adapter is not None:
        raise CheckpointError("this model already has an adapter")
    meta = read_adapter_meta(folder)
    check_adapter_base(loaded, meta, folder)
    probe = weight_probe(loaded.model)
    try:
        with quiet_transformers():
            model = PeftModel.from_pretrained(loaded.model, str(folder), is_trainable=trainable)
    except Exception as exc:  # ValueError, RuntimeError, KeyError, OSError, SafetensorError, ...
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise CheckpointError(f"cannot load adapter {folder}: {first}") from None
    model.eval()
    loaded.model = model
    loaded.adapter = str(folder)
    loaded.extra["weight_probe"] = probe
    loaded.extra["adapter_meta"] = {k: v for k, v in meta.items() if k != "peft"}
    return model
