"""Emotion -> MusicGen text prompt.

The prompt has three parts, all derived from the valence-arousal point:

* mood words: the nearest words of the mood table (:func:`emomusic.moods.nearest_moods`), the
  vocabulary MusicGen fine-tuned on MTG-Jamendo mood tags responds to;
* tempo, mode and dynamics from the attribute template (:func:`emomusic.attributes.template`):
  ``72 bpm``, ``minor key``, ``soft``/``loud``, ``legato``/``staccato``;
* instrumentation chosen from the template's loudness and register (soft and low -> warm pads and
  cello; loud and high -> drums, bass and synth), so the timbre moves with the emotion.

The user's own ``--prompt`` text is appended. No torch: this module is cheap to import.
"""

from __future__ import annotations

from emomusic.emotion import Emotion
from emomusic.errors import EmomusicError

MAX_PROMPT_CHARS = 500


def _tempo_words(bpm: float) -> str:
    if bpm < 66:
        return "very slow"
    if bpm < 84:
        return "slow"
    if bpm < 112:
        return "moderate"
    if bpm < 140:
        return "fast"
    return "very fast"


def _dynamics_words(velocity: float, articulation: float) -> list[str]:
    out = []
    if velocity < 60:
        out.append("soft")
    elif velocity > 88:
        out.append("loud")
    if articulation >= 0.92:
        out.append("legato")
    elif articulation <= 0.76:
        out.append("staccato")
    return out


def _instruments(valence: float, arousal: float, velocity: float, register: float) -> list[str]:
    """Two or three instrument groups; continuous in the inputs except at a few thresholds."""
    if arousal < -0.3:
        inst = ["gentle piano", "warm strings pads"] if valence >= 0 else ["sparse piano", "cello"]
    elif arousal < 0.3:
        inst = ["acoustic guitar", "piano", "light percussion"] if valence >= 0 else ["piano", "strings", "low bass"]
    else:
        inst = ["drums", "bass", "bright synth"] if valence >= 0 else ["heavy drums", "distorted bass", "dark strings"]
    if register > 68 and "flute" not in inst and arousal < 0.3:
        inst.append("flute")
    return inst


def build_prompt(emotion: Emotion, extra: str | None = None, n_moods: int = 3) -> str:
    """A text prompt for ``emotion``; ``extra`` (the user's ``--prompt``) is appended."""
    from emomusic.attributes import template
    from emomusic.moods import nearest_moods

    if not isinstance(emotion, Emotion):
        raise EmomusicError(f"build_prompt needs an Emotion, got {type(emotion).__name__}")
    attrs = template(emotion)
    moods = [m.word for m in nearest_moods(emotion, n_moods)]
    if emotion.label and emotion.label.lower() not in moods:
        moods.insert(0, emotion.label.lower())
    parts = [", ".join(moods) + " instrumental music"]
    tempo = f"{_tempo_words(attrs.tempo_bpm)} tempo, {int(round(attrs.tempo_bpm))} bpm"
    parts.append(tempo)
    parts.append(f"{attrs.mode} key")
    dyn = _dynamics_words(attrs.velocity, attrs.articulation)
    if dyn:
        parts.append(" and ".join(dyn))
    parts.append("with " + ", ".join(_instruments(emotion.valence, emotion.arousal, attrs.velocity, attrs.register)))
    text = ", ".join(parts)
    if extra is not None:
        extra = " ".join(str(extra).split())
        if extra:
            text = f"{text}, {extra}"
    if len(text) > MAX_PROMPT_CHARS:
        raise EmomusicError(f"the prompt is too long ({len(text)} characters; at most {MAX_PROMPT_CHARS})")
    return text


def tags_prompt(emotion: Emotion, tags: list[str]) -> str:
    """The training prompt of a tagged track: its own mood tags first, then the emotion prompt."""
    words = []
    for t in tags:
        w = t.split("---", 1)[-1].strip().lower()
        if w and w not in words:
            words.append(w)
    base = build_prompt(emotion)
    return (", ".join(words) + ", " + base) if words else base
