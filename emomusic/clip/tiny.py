"""A tiny, randomly initialised MusicGen (and MusicGen-Melody) built from configs.

Used by the tests and by offline demos of ``emomusic clip`` / ``emomusic train musicgen-lora``:
the real checkpoints (``facebook/musicgen-small`` etc.) are hundreds of MB and cannot be
downloaded here. The tiny model has the same structure as the real one -- a T5 text encoder,
an EnCodec audio codec with 4 codebooks at 50 frames per second, and a MusicGen decoder that
predicts the codebooks with the delay pattern -- but only a few hundred thousand parameters,
so it generates noise-like audio in a fraction of a second. Its output is not music; it
exercises every code path (loading, prompting, LoRA, continuation, melody conditioning).

The text tokenizer is built in code (a ``tokenizers`` WordLevel model over the prompt
vocabulary, wrapped as a ``PreTrainedTokenizerFast``) because T5's sentencepiece model cannot
be downloaded offline.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from emomusic.atomic import atomic_dir

# Tiny codec: 16 kHz audio, hop 8*5*4*2 = 320 samples -> 50 frames/s, like MusicGen's EnCodec
# (32 kHz, hop 640). 4 codebooks of 64 entries (6 bits): 4 * 6 * 50 = 1.2 kbps.
TINY_SAMPLE_RATE = 16000
TINY_CODEBOOK_SIZE = 64
TINY_CODEBOOKS = 4
TINY_MAX_POSITIONS = 256  # decoder window: (256 - 5) / 50 -> about 5 s natively
TINY_CHROMA_HOP = 2048  # melody feature frames: 16000 / 2048 = 7.8 per second (as 32000 / 4096)
TINY_CHROMA_LENGTH = 40  # about 5 s of chroma

_SPECIAL = ["<pad>", "</s>", "<unk>"]


def _vocabulary() -> list[str]:
    """Words the prompt builder uses, plus the mood table and a few genre/instrument words."""
    from emomusic.moods import mood_table

    words = set(mood_table())
    words |= set(
        """a an and the with of in at for to by on bpm tempo key major minor mood music song track
        piece instrumental slow slowly fast quickly moderate moderately very gentle soft loud quiet
        bright dark warm calm tense happy sad energetic relaxing piano strings guitar acoustic
        electric synth pad pads ambient orchestral drums percussion bass cello violin flute choir
        organ bells harp pop rock jazz classical electronic lofi cinematic folk beat beats groove
        melody melodic harmony chords texture sparse dense legato staccato airy deep heavy light
        low high register steady driving pulsing flowing""".split()
    )
    for w in list(words):
        words.add(w.replace("-", " "))
    toks = sorted({t for w in words for t in w.split()})
    return _SPECIAL + [str(i) for i in range(10)] + [t for t in toks if t not in _SPECIAL and not t.isdigit()]


def build_tokenizer():
    """A fast tokenizer that works offline: lower-case, split on whitespace, punctuation
    and digits, one id per known word, ``<unk>`` for the rest, ``</s>`` appended."""
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(_vocabulary())}
    tok = Tokenizer(WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Whitespace(), pre_tokenizers.Digits(individual_digits=True)]
    )
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>", model_max_length=128
    )


def _configs(vocab_size: int, melody: bool, stereo: bool = False):
    from transformers import EncodecConfig, T5Config

    text = T5Config(
        vocab_size=vocab_size, d_model=32, d_kv=8, d_ff=64, num_layers=1, num_decoder_layers=1, num_heads=4,
        relative_attention_num_buckets=8, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
    )
    codec = EncodecConfig(
        sampling_rate=TINY_SAMPLE_RATE, audio_channels=1, normalize=False, num_filters=4, hidden_size=16,
        upsampling_ratios=[8, 5, 4, 2], codebook_size=TINY_CODEBOOK_SIZE, codebook_dim=16,
        num_lstm_layers=1, num_residual_layers=1, kernel_size=5, last_kernel_size=5, residual_kernel_size=3,
        target_bandwidths=[TINY_CODEBOOKS * 6 * 50 / 1000], chunk_length_s=None, overlap=None,
    )
    assert codec.frame_rate == 50 and codec.num_quantizers == TINY_CODEBOOKS, (codec.frame_rate, codec.num_quantizers)
    common = dict(
        vocab_size=TINY_CODEBOOK_SIZE, num_codebooks=TINY_CODEBOOKS * (2 if stereo else 1), hidden_size=48,
        num_hidden_layers=2, num_attention_heads=4, ffn_dim=96, max_position_embeddings=TINY_MAX_POSITIONS,
        audio_channels=2 if stereo else 1,
        pad_token_id=TINY_CODEBOOK_SIZE, bos_token_id=TINY_CODEBOOK_SIZE, decoder_start_token_id=TINY_CODEBOOK_SIZE,
        dropout=0.0, attention_dropout=0.0, activation_dropout=0.0, initializer_factor=0.2,
    )
    if melody:
        from transformers import MusicgenMelodyConfig, MusicgenMelodyDecoderConfig

        dec = MusicgenMelodyDecoderConfig(**common)
        return MusicgenMelodyConfig(
            text_encoder=text, audio_encoder=codec, decoder=dec, num_chroma=12, chroma_length=TINY_CHROMA_LENGTH
        )
    from transformers import MusicgenConfig, MusicgenDecoderConfig

    dec = MusicgenDecoderConfig(**common)
    return MusicgenConfig(text_encoder=text, audio_encoder=codec, decoder=dec)


def build_tiny_model(melody: bool = False, seed: int = 0, stereo: bool = False):
    """Return ``(model, tokenizer)``: a randomly initialised tiny MusicGen (or -Melody).
    ``stereo``: like musicgen-stereo-*, a mono codec and 2 x 4 interleaved codebooks."""
    import torch

    tokenizer = build_tokenizer()
    config = _configs(len(tokenizer), melody, stereo)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if melody:
            from transformers import MusicgenMelodyForConditionalGeneration as cls
        else:
            from transformers import MusicgenForConditionalGeneration as cls
        model = cls(config)
        # EnCodec's codebooks are buffers learned by k-means/EMA and start at zero; give them
        # random entries so different codes decode to different audio.
        with torch.no_grad():
            for layer in model.audio_encoder.quantizer.layers:
                cb = layer.codebook
                cb.embed.copy_(torch.randn_like(cb.embed))
                cb.embed_avg.copy_(cb.embed)
                cb.cluster_size.fill_(1.0)
                cb.inited.fill_(1.0)
    model.eval()
    gc = model.generation_config
    gc.decoder_start_token_id = TINY_CODEBOOK_SIZE
    gc.pad_token_id = TINY_CODEBOOK_SIZE
    gc.bos_token_id = TINY_CODEBOOK_SIZE
    gc.do_sample = True
    gc.guidance_scale = 3.0
    gc.top_k = 50
    gc.max_length = TINY_MAX_POSITIONS
    return model, tokenizer


def save_tiny_model(out: str | os.PathLike, melody: bool = False, seed: int = 0, stereo: bool = False) -> Path:
    """Build the tiny model and save it like a hub checkpoint: ``config.json``,
    ``generation_config.json``, ``model.safetensors``, tokenizer files and
    ``preprocessor_config.json`` (the feature extractor). Written atomically."""
    from transformers import EncodecFeatureExtractor

    from emomusic.clip.loading import quiet_transformers

    with quiet_transformers():
        model, tokenizer = build_tiny_model(melody=melody, seed=seed, stereo=stereo)
    out = Path(out)
    with atomic_dir(out) as tmp, quiet_transformers():
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        if melody:
            # MusicgenMelodyFeatureExtractor needs torchaudio; its settings are plain JSON, and
            # emomusic computes chroma from the notes itself (emomusic.clip.melody).
            fe = {
                "feature_extractor_type": "MusicgenMelodyFeatureExtractor",
                "processor_class": "MusicgenMelodyProcessor",
                "sampling_rate": TINY_SAMPLE_RATE,
                "hop_length": TINY_CHROMA_HOP,
                "n_fft": 4 * TINY_CHROMA_HOP,
                "num_chroma": 12,
                "chunk_length": 5,
                "feature_size": 12,
                "padding_value": 0.0,
                "padding_side": "right",
                "return_attention_mask": True,
            }
            (tmp / "preprocessor_config.json").write_text(json.dumps(fe, indent=2), encoding="utf-8")
        else:
            EncodecFeatureExtractor(feature_size=1, sampling_rate=TINY_SAMPLE_RATE).save_pretrained(tmp)
        (tmp / "README.md").write_text(
            "Tiny random MusicGen{} built by emomusic.clip.tiny for tests and offline demos. "
            "Not trained: its audio is noise.\n".format("-Melody" if melody else ""),
            encoding="utf-8",
        )
    return out


def count_parameters(model) -> dict[str, int]:
    return {
        "text_encoder": sum(p.numel() for p in model.text_encoder.parameters()),
        "audio_encoder": sum(p.numel() for p in model.audio_encoder.parameters()),
        "decoder": sum(p.numel() for p in model.decoder.parameters()),
        "total": sum(p.numel() for p in model.parameters()),
    }


TOY_TAGS = (
    ("mood/theme---calm", "mood/theme---relaxing"),
    ("mood/theme---happy", "mood/theme---upbeat"),
    ("mood/theme---sad", "mood/theme---melancholic"),
    ("mood/theme---energetic", "mood/theme---dark", "mood/theme---film"),
)


def write_toy_dataset(
    folder: str | os.PathLike, n_tracks: int = 8, seconds: float = 3.0, sample_rate: int = 16000, seed: int = 0
) -> Path:
    """A small synthetic mood-tagged audio set in the MTG-Jamendo layout, for tests and demos:
    ``folder/toy.tsv`` plus ``folder/audio/NN/ID.wav``. Calm/sad tracks are slow sine chords
    (major/minor), happy ones faster plucked major arpeggios, energetic/dark ones filtered noise
    bursts. Returns the TSV path."""
    import numpy as np

    from emomusic.audio import write_wav

    rng = np.random.default_rng(seed)
    folder = Path(folder)
    rows = ["TRACK_ID\tARTIST_ID\tALBUM_ID\tPATH\tDURATION\tTAGS"]
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    for i in range(n_tracks):
        kind = i % len(TOY_TAGS)
        root = 220.0 * 2 ** (rng.integers(0, 12) / 12)
        if kind in (0, 2):  # slow chord: major (calm) or minor (sad)
            third = 2 ** ((4 if kind == 0 else 3) / 12)
            x = sum(np.sin(2 * np.pi * root * r * t) for r in (1.0, third, 1.5))
            x *= 0.5 + 0.5 * np.sin(2 * np.pi * 0.5 * t)
        elif kind == 1:  # fast major arpeggio
            notes = root * np.array([1.0, 2 ** (4 / 12), 1.5, 2.0])
            idx = (t * 6).astype(int) % 4
            x = np.sin(2 * np.pi * notes[idx] * t) * np.exp(-((t * 6) % 1) * 4)
        else:  # noise bursts
            noise = rng.standard_normal(t.size)
            x = noise * (((t * 8) % 1) < 0.5)
        x = 0.3 * x / (np.max(np.abs(x)) + 1e-9)
        tid = f"track_{i:07d}"
        rel = f"{i % 100:02d}/{i}.wav"
        (folder / "audio" / rel).parent.mkdir(parents=True, exist_ok=True)
        write_wav(folder / "audio" / rel, x.astype(np.float32), sample_rate)
        rows.append("\t".join([tid, f"artist_{i:06d}", f"album_{i:06d}", rel, f"{seconds:.1f}", *TOY_TAGS[kind]]))
    tsv = folder / "toy.tsv"
    tsv.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return tsv
