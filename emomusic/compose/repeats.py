"""Form in the symbolic engine: sections that return reuse their first statement's latents.

The engine samples one latent per 2-bar segment (:meth:`ComposeEngine.generate`). With a
:class:`~emomusic.form.FormPlan` the sections are filled in order, each in windows of at most
the model's sequence length that continue the latents already chosen before them
(inpainting, as the engine's windowed continuation does):

* ``new`` (first statement of a letter): fresh latents; the window also looks ahead so every
  window has the trained length where the piece allows: look-ahead positions that a later
  return of an earlier section will hold are fixed to those latents (the B of AABA is
  generated between the A before it and the A after it, so it leads back into A), the other
  look-ahead positions are sampled and dropped;
* ``repeat`` (same label as its first statement): the first statement's latents, copied
  exactly (the VAE decodes each segment alone, so the notes are the same);
* ``variation`` (a prime, ``A'``): the opening half of the first statement's segments is
  copied, the rest is re-noised to :data:`VARIATION_START` and denoised again under the
  section's emotion with the copied opening as context (SDEdit): the phrase starts as before
  and continues differently (the choice is measured in docs/compose.md). A one-segment
  phrase has no opening to keep: the whole segment is varied.
* a ``repeat`` whose emotion moved by more than :data:`REPEAT_TOLERANCE` from its first
  statement's (a ``--to`` morph) is re-conditioned like a variation.

A plan whose section boundaries fall inside a segment (phrases of an odd number of bars)
is generated through-composed and repeated at the note level afterwards
(:func:`copy_sections`). Cadences are applied later, on the finished piece
(:mod:`emomusic.compose.cadence`), so a repeat that ends a period closes where its first
statement asked a question.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Sequence

import numpy as np

from emomusic.form import FormPlan
from emomusic.piece import Note

if TYPE_CHECKING:  # pragma: no cover
    from .api import ComposeEngine

VARIATION_START = 1  # trained timestep (of 4) a varied repeat is re-noised to before denoising again
VARIATION_KEEP = 0.5  # share of a varied repeat's segments copied exactly (its opening)
REPEAT_TOLERANCE = 0.25  # a repeat whose emotion moved further (valence or arousal) is re-conditioned like a variation


def segment_spans(plan: FormPlan, segment_bars: int, segments: int) -> list[tuple[int, int]] | None:
    """The segment range ``[a, b)`` of each section, or None when a section boundary falls
    inside a segment (the plan is then followed at the note level, :func:`copy_sections`)."""
    spans = []
    for i, s in enumerate(plan.sections):
        last = i == len(plan.sections) - 1
        if s.start_bar % segment_bars or (not last and s.end_bar % segment_bars):
            return None
        spans.append((s.start_bar // segment_bars, min(segments, -(-s.end_bar // segment_bars))))
    return spans


def return_choices(conds, plan: FormPlan, segment_bars: int) -> tuple[bool, ...]:
    """For one sequence's conditions ``conds`` (S, 2): per return of a section (a section with a
    first statement), whether its emotion stayed within :data:`REPEAT_TOLERANCE` of the first
    statement's (the choice :func:`generate_with_form` makes for a batch as a whole: sequences
    batched together must agree). Empty when the plan is followed at the note level."""
    conds = np.asarray(conds, dtype=np.float32)
    S = conds.shape[0]
    spans = None if plan.through_composed else segment_spans(plan, segment_bars, S)
    if spans is None or len(plan) == 1:
        return ()
    out = []
    for i in range(len(plan)):
        j = plan.first_statement(i)
        if j is None:
            continue
        (a, b), (fa, fb) = spans[i], spans[j]
        m = min(b - a, fb - fa)
        out.append(bool(np.abs(conds[a:a + m] - conds[fa:fa + m]).max(initial=0.0) <= REPEAT_TOLERANCE))
    return tuple(out)


def generate_with_form(eng: "ComposeEngine", conds, plan: FormPlan, *, seed: int = 0, steps: int | None = None,
                       guidance: float | None = None, progress: bool = False,
                       variation_start: int = VARIATION_START) -> np.ndarray:
    """Latents (n, S, D) (VAE space) for per-segment conditions ``conds`` (n, S, 2) that
    follow ``plan``: repeats reuse their first statement's latents (see the module doc).

    A through-composed plan, or one whose sections do not fall on segment boundaries, is
    :meth:`ComposeEngine.generate` itself (same seed, same latents). ``seed``: one for the
    batch, or a list with one per sequence (as :meth:`ComposeEngine.generate`); a return's
    choice between an exact copy and a re-conditioned one (:func:`return_choices`) is made
    for the whole batch, so batch only sequences whose choices agree."""
    conds = np.asarray(conds, dtype=np.float32)
    S = conds.shape[1] if conds.ndim == 3 else 0
    spans = None if plan.through_composed else segment_spans(plan, eng.segment_bars, S)
    if spans is None or len(plan) == 1:
        return eng.generate(conds, seed=seed, steps=steps, guidance=guidance, progress=progress)
    import torch

    model = eng.model
    L, D = eng.seq_len, model.cfg.latent_dim
    n = conds.shape[0]
    from .diffgan import generators

    g = generators(seed, eng.device)
    c = torch.from_numpy(conds).to(eng.device)
    out = torch.zeros(n, S, D, device=eng.device)  # normalised latents

    def fixed_copies(i: int) -> dict[int, int]:
        """Segments of later sections already known while section ``i`` is generated: the
        copied segments of returns of sections generated before it (position -> source)."""
        fixed = {}
        for i2 in range(i + 1, len(plan)):
            j2 = plan.first_statement(i2)
            if j2 is None or j2 >= i:
                continue
            (a2, b2), (fa2, fb2) = spans[i2], spans[j2]
            m2 = min(b2 - a2, fb2 - fa2)
            copied = m2 if plan.role(i2) == "repeat" and same_emotion(a2, fa2, m2) else int(m2 * VARIATION_KEEP)
            fixed.update({a2 + t: fa2 + t for t in range(copied)})
        return fixed

    def same_emotion(a: int, fa: int, m: int) -> bool:
        return float((c[:, a:a + m] - c[:, fa:fa + m]).abs().max()) <= REPEAT_TOLERANCE

    def fill(a: int, b: int, src: torch.Tensor | None = None, start: int | None = None,
             ahead: dict[int, int] | None = None) -> None:
        """Sample out[:, a:b] in windows continuing what lies before ``a``; with ``src`` (the
        latents to vary, b - a long) start from ``src`` re-noised to timestep ``start``;
        ``ahead``: look-ahead positions whose latents are already known (a return of an
        earlier section), kept fixed so the section leads into it."""
        pos = a
        while pos < b:
            if src is None:  # a full-length window where the piece allows: look ahead
                w0 = max(0, min(pos - L // 2, S - L))
                end = min(S, w0 + L)
            else:
                w0 = max(0, pos - max(L // 2, L - (b - pos)))
                end = min(b, w0 + L)
            ctx = pos - w0
            keep = min(b, end)
            known = mask = init = None
            later = [p for p in range(keep, end) if p in (ahead or {})]
            if ctx or later:
                known = torch.zeros(n, end - w0, D, device=eng.device)
                known[:, :ctx] = out[:, w0:pos]
                mask = torch.zeros(n, end - w0, dtype=torch.bool, device=eng.device)
                mask[:, :ctx] = True
                for p in later:
                    known[:, p - w0] = out[:, ahead[p]]
                    mask[:, p - w0] = True
            if src is not None:
                init = torch.zeros(n, end - w0, D, device=eng.device)
                init[:, :ctx] = out[:, w0:pos]
                init[:, ctx:] = src[:, pos - a:end - a]
            x = model.sample(c[:, w0:end], generator=g, steps=steps, guidance=guidance, known=known,
                             known_mask=mask, init=init, start=start if src is not None else None)
            out[:, pos:keep] = x[:, ctx:ctx + keep - pos]
            pos = keep

    from tqdm import tqdm

    with torch.no_grad():
        for i in tqdm(range(len(plan)), desc="composing", disable=not progress or len(plan) < 2):
            a, b = spans[i]
            j = plan.first_statement(i)
            if j is None or b <= a:
                fill(a, b, ahead=fixed_copies(i))
                continue
            fa, fb = spans[j]
            m = min(b - a, fb - fa)  # a section longer than its first statement continues fresh
            src = out[:, fa:fa + m].clone()
            if plan.role(i) == "repeat" and same_emotion(a, fa, m):
                out[:, a:a + m] = src
            else:  # the opening returns as it was, the continuation is varied (and re-conditioned)
                keep = int(m * VARIATION_KEEP)
                out[:, a:a + keep] = src[:, :keep]
                fill(a + keep, a + m, src[:, keep:], variation_start)
            if a + m < b:
                fill(a + m, b)
    return model.denormalise(out).cpu().numpy()


def _statement(notes: Sequence[Note], plan: FormPlan, j: int, at_bar: int, bars: int, bar_beats: float) -> list[Note]:
    """The notes starting in the first ``bars`` bars of section ``j``, moved to start at bar ``at_bar``."""
    lo = plan.sections[j].start_bar * bar_beats
    shift = at_bar * bar_beats - lo
    return [replace(nt, start=nt.start + shift) for nt in notes if lo - 1e-6 <= nt.start < lo + bars * bar_beats - 1e-6]


def note_repeats(notes: Sequence[Note], plan: FormPlan, segment_bars: int) -> list[Note]:
    """Decoded ``notes`` with the plan's repeats made at the note level when the latents could
    not carry them (:func:`copy_sections` when a section boundary falls inside a segment;
    otherwise the notes as they are)."""
    if plan.through_composed or segment_spans(plan, segment_bars, 1 << 30) is not None:
        return list(notes)
    return copy_sections(notes, plan)


def copy_sections(notes: Sequence[Note], plan: FormPlan, bar_beats: float = 4.0) -> list[Note]:
    """The note-level form, for plans whose sections do not fall on segment boundaries:
    a ``repeat`` gets its first statement's notes (shifted to its bars), a ``variation``
    gets them in every bar but its last, which keeps the notes generated there (a varied
    ending). New sections keep their notes. Notes are cut at section ends."""
    if plan.through_composed:
        return list(notes)
    out: list[Note] = []
    for i, s in enumerate(plan.sections):
        lo, hi = s.start_bar * bar_beats, s.end_bar * bar_beats
        own = [nt for nt in notes if lo - 1e-6 <= nt.start < hi - 1e-6]
        j = plan.first_statement(i)
        if j is None:
            out += own
            continue
        copied_bars = min(s.bars, plan.sections[j].bars) - (1 if plan.role(i) == "variation" else 0)
        out += _statement(notes, plan, j, s.start_bar, copied_bars, bar_beats)
        out += [nt for nt in own if nt.start >= lo + copied_bars * bar_beats - 1e-6]
    ends = [s.end_bar * bar_beats for s in plan.sections]
    clipped = []
    for nt in out:
        end = next((e for e in ends if nt.start < e - 1e-6), ends[-1])
        clipped.append(replace(nt, duration=max(0.125, min(nt.duration, end - nt.start))) if nt.end > end + 1e-6 else nt)
    clipped.sort(key=lambda x: (x.start, x.pitch))
    return clipped


def restore_repeats(notes: Sequence[Note], plan: FormPlan, bar_beats: float = 4.0) -> list[Note]:
    """``notes`` with every exact ``repeat`` section made its first statement's notes again
    (shifted to its bars, cut at its end); other sections as they are. The latents of a
    repeat are its first statement's, but the template's mode step is global (it moves the
    longest chromatic notes of the piece, one statement's and not the other's): this keeps
    an exact return exact after it."""
    if plan.through_composed:
        return list(notes)
    out: list[Note] = []
    for i, s in enumerate(plan.sections):
        lo, hi = s.start_bar * bar_beats, s.end_bar * bar_beats
        j = plan.first_statement(i)
        if j is None or plan.role(i) != "repeat" or plan.sections[j].bars != s.bars:
            out += [nt for nt in notes if lo - 1e-6 <= nt.start < hi - 1e-6]
            continue
        copied = _statement(notes, plan, j, s.start_bar, s.bars, bar_beats)
        out += [replace(nt, duration=min(nt.duration, hi - nt.start)) for nt in copied]
    out += [nt for nt in notes if nt.start >= plan.bars * bar_beats - 1e-6]
    return sorted(out, key=lambda n: (n.start, n.pitch))
