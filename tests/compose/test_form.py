"""compose() with a FormPlan: repeats in the latents, note-level repeats, cadences, markers, 'none'."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from emomusic.compose import ComposeEngine, compose
from emomusic.compose.repeats import copy_sections, generate_with_form, note_repeats, restore_repeats, segment_spans
from emomusic.emotion import Emotion
from emomusic.errors import EmomusicError
from emomusic.form import (
    FormError, bar_slice, contrast, form_from_markers, parse_form, section_similarities, similarity, through_composed,
)
from emomusic.piece import Note, without_overlaps
from emomusic.paths import checkpoint_path

torch.set_num_threads(1)
shipped = pytest.mark.skipif(not (checkpoint_path("compose") / "diffgan" / "model.safetensors").is_file(),
                             reason="shipped compose checkpoint missing")


def _conds(n, S, va=(0.5, 0.5), to=None):
    if to is None:
        return np.tile(np.array(va, np.float32), (n, S, 1))
    path = np.linspace(va, to, S).astype(np.float32)
    return np.tile(path, (n, 1, 1))


def test_latents_follow_the_plan(debug_ckpt):
    eng = ComposeEngine.load(debug_ckpt)  # seq_len 4 < 8 segments: windows continue each other
    conds = _conds(2, 8)
    lat = generate_with_form(eng, conds, parse_form("AABA", 16), seed=3)
    assert lat.shape == (2, 8, eng.vae.cfg.latent_dim)
    np.testing.assert_array_equal(lat[:, 2:4], lat[:, 0:2])  # A again: the same latents
    np.testing.assert_array_equal(lat[:, 6:8], lat[:, 0:2])
    assert not np.allclose(lat[:, 4:6], lat[:, 0:2])  # B is new
    np.testing.assert_array_equal(lat, generate_with_form(eng, conds, parse_form("AABA", 16), seed=3))
    assert not np.allclose(lat, generate_with_form(eng, conds, parse_form("AABA", 16), seed=4))
    var = generate_with_form(eng, conds, parse_form("AA'BA", 16), seed=3)
    np.testing.assert_array_equal(var[:, 2], var[:, 0])  # a variation keeps its opening ...
    assert not np.allclose(var[:, 3], var[:, 1])  # ... and varies its continuation
    # a repeat under a --to morph is re-conditioned on its own emotion, keeping its opening
    morph = generate_with_form(eng, _conds(1, 8, (0.8, 0.8), (-0.8, -0.8)), parse_form("AABA", 16), seed=3)
    np.testing.assert_array_equal(morph[:, 6], morph[:, 0])
    assert not np.allclose(morph[:, 7], morph[:, 1])
    # 8-bar phrases (4 segments = the whole debug window) and a piece ending inside a segment
    long = generate_with_form(eng, _conds(1, 8), parse_form("AB", 16), seed=0)
    assert np.isfinite(long).all() and not np.allclose(long[:, 4:], long[:, :4])
    odd = generate_with_form(eng, _conds(1, 8), parse_form("A", 15), seed=0)  # one section: the engine's path
    np.testing.assert_array_equal(odd, eng.generate(_conds(1, 8), seed=0))


def test_through_composed_is_the_engine_itself(debug_ckpt):
    eng = ComposeEngine.load(debug_ckpt)
    conds = _conds(2, 6, (-0.4, 0.7), (0.3, -0.2))
    np.testing.assert_array_equal(generate_with_form(eng, conds, through_composed(12), seed=9),
                                  eng.generate(conds, seed=9))


def test_note_level_repeats_for_odd_phrases():
    plan = parse_form("AA'B", 9)  # phrases of 3 bars: boundaries inside 2-bar segments
    assert segment_spans(plan, 2, 5) is None and segment_spans(parse_form("AABA", 16), 2, 8) == [(0, 2), (2, 4), (4, 6), (6, 8)]
    notes = [Note(60 + b, b * 4.0 + i, 1.0 if (b, i) != (2, 3) else 3.0) for b in range(9) for i in range(4)]
    out = note_repeats(notes, plan, 2)
    first = [(n.pitch, n.start, n.duration) for n in out if n.start < 12]
    second = [(n.pitch, n.start - 12, n.duration) for n in out if 12 <= n.start < 24]
    assert second[:8] == first[:8]  # A' copies A's first two bars ...
    assert [p for p, _, _ in second[8:]] == [65] * 4  # ... and keeps its own last bar
    assert (62, 11.0, 1.0) in first  # a note held over a section end is cut there
    assert [n for n in out if n.start >= 24] == [n for n in notes if n.start >= 24]
    rep = copy_sections(notes, parse_form("AAB", 9))
    assert [(n.pitch, n.start - 12) for n in rep if 12 <= n.start < 24] == [(n.pitch, n.start) for n in rep if n.start < 12]
    assert note_repeats(notes, parse_form("AABA", 16), 2) == notes  # on segment boundaries: the latents did it


@pytest.mark.parametrize("form, match", [
    ("AXB?", "unknown symbol"), ("AAB", "do not divide"), ("ABCDEFGHABCDEFGH", "too long"), ("'A", "prime"),
])
def test_bad_forms_fail_before_loading(tmp_path, form, match):
    with pytest.raises(FormError, match=match):
        compose(Emotion(0, 0), bars=16, form=form, checkpoint=tmp_path / "missing")
    with pytest.raises(EmomusicError, match="covers 8 bars"):
        compose(Emotion(0, 0), bars=16, form=parse_form("AB", 8), checkpoint=tmp_path / "missing")


def test_compose_markers_and_cadences_on_debug_checkpoint(debug_ckpt):
    (p,) = compose(Emotion(0.6, -0.3), bars=12, form="ABA'", seed=2, checkpoint=debug_ckpt, threshold=0.3)
    plan = form_from_markers(p.markers, p.n_bars)
    assert plan is not None and plan.labels == ["A", "B", "A'"] and plan.phrase_bars == 4
    assert [m.text for m in p.markers if m.beat == 0.0] == ["A", Emotion(0.6, -0.3).marker_text()]
    last = p.tracks[0].notes[-1]
    assert (last.pitch - p.key.tonic) % 12 == 0 and last.end == 48.0 and last.duration >= 2.0


def _cadence_checks(p, plan):
    key = p.key
    third = 3 if key.mode == "minor" else 4
    for s in plan.sections:
        end = s.end_bar * 4.0
        last = [n for n in p.tracks[0].notes if n.start < end][-1]
        assert last.end == pytest.approx(end) and last.duration >= 2.0
        pc = (last.pitch - key.tonic) % 12
        assert pc == 0 if s.cadence == "authentic" else pc in (7, 10 if key.mode == "minor" else 11, 2)
    final = {(n.pitch - key.tonic) % 12 for n in p.notes if n.end >= plan.bars * 4.0 - 1e-6}
    assert final == {0, third, 7}  # the piece ends on the full tonic chord
    bass = min((n for n in p.notes if n.end >= plan.bars * 4.0 - 1e-6), key=lambda n: n.pitch)
    assert (bass.pitch - key.tonic) % 12 == 0


@shipped
def test_shipped_aaba_repeats_contrasts_and_cadences():
    plan = parse_form("AABA", 16)
    sims, cons, tune_cons = [], [], []
    for va in [(0.7, 0.6), (-0.6, 0.6), (-0.6, -0.6), (0.6, -0.5)]:
        for p in compose(Emotion(*va), bars=16, n=2, seed=11, form="AABA"):
            assert form_from_markers(p.markers, 16).labels == ["A", "A", "B", "A"]
            s, c = section_similarities(p.notes, plan), contrast(p.notes, plan)
            sims += [s[1], s[3]]
            cons.append(c[2])
            tune_cons.append(contrast(p.tracks[0].notes, plan)[2])
            # before the cadence (the ending is meant to differ, and so is the half bar before an
            # authentic cadence, which the plan fixes on V) a repeat is the same music
            for i in (1, 3):
                start = plan.sections[i].start_bar
                assert similarity(bar_slice(p.notes, 0, 2), bar_slice(p.notes, start, 2)) > 0.9
            _cadence_checks(p, plan)
    assert np.mean(sims) > 0.55 and np.median(sims) > 0.6  # whole sections, cadence bars included
    # B is new music (the piano texture plays the key's chords under every section: 0.15 without it;
    # a sparse calm piece whose few tune notes close both phrases alike reaches 0.36), and its tune most of all
    assert np.mean(cons) < 0.2 and max(cons) < 0.4
    assert np.mean(tune_cons) < 0.12 and max(tune_cons) <= 0.3


@shipped
def test_shipped_default_forms_variation_and_none():
    from emomusic.form import SONG_FORMS, default_form

    e = Emotion(-0.5, -0.4)
    # default: 4 phrases of 4 bars, each piece of a batch in a form drawn with its own seed
    pieces = compose(e, bars=16, n=6, seed=1)
    got = [form_from_markers(p.markers, 16) for p in pieces]
    assert [g.text for g in got] == [default_form(16, e, seed=1 + i).text for i in range(6)]
    assert all(g.text in SONG_FORMS and g.phrase_bars == 4 for g in got) and len({g.text for g in got}) >= 2
    (p16,) = compose(e, bars=16, seed=4)  # piece i of --seed s is in the form of --seed s+i
    assert form_from_markers(p16.markers, 16).text == got[3].text
    seed32 = next(s for s in range(50) if default_form(32, e, seed=s).text == "AA'BA'")
    (p32,) = compose(e, bars=32, seed=seed32)
    plan32 = form_from_markers(p32.markers, 32)
    assert plan32.phrase_bars == 8 and plan32.labels == ["A", "A'", "B", "A'"]
    _cadence_checks(p32, parse_form("AA'BA'", 32))
    melody32 = next(t for t in p32.tracks if t.name == "Melody").notes  # the tune (the accompaniment follows the chords)
    sims = section_similarities(melody32, plan32)
    assert min(sims[1], sims[3]) > 0.25 and min(sims[1], sims[3]) > contrast(melody32, plan32)[2] + 0.1
    # exact returns when the plan asks for them
    (exact,) = compose(e, bars=32, seed=1, form="AABA")
    assert min(x for x in section_similarities(exact.notes, parse_form("AABA", 32)) if x is not None) > 0.6
    # a variation: its melody measurably nearer its first statement than the new section's is
    # (the accompaniment of a varied return takes a pattern of its own, compose/texture.py)
    sims, cons = [], []
    for p in compose(e, bars=16, n=4, seed=1, form="AA'BA"):
        melody = next(t for t in p.tracks if t.name == "Melody").notes
        sims.append(section_similarities(melody, parse_form("AA'BA", 16))[1])
        cons.append(contrast(melody, parse_form("AA'BA", 16))[2])
    assert np.mean(sims) > 0.2 and np.mean(sims) > np.mean(cons) + 0.15
    # "none": the through-composed engine as it was (latents -> notes -> piece -> template;
    # without the piano texture, which is an addition of its own)
    from emomusic.compose.api import _apply_template, emotion_path

    e = Emotion(0.6, 0.6)
    none = compose(e, bars=16, n=2, seed=4, form="none", texture=False)
    eng = ComposeEngine.load()
    emos = emotion_path(e, None, 8)
    lat = eng.generate(np.array([[e.as_tuple()] * 8] * 2, np.float32), seed=4, steps=4)
    for p, notes in zip(none, eng.decode(lat)):
        assert len(notes) >= 16  # no redraw of sparse samples involved
        want = _apply_template(eng.to_piece(notes, emos, 16, title=p.title), emos, False)
        for t in want.tracks:  # compose keeps one voice per key, as the MIDI file holds it
            t.notes = without_overlaps(t.notes)
        assert p.notes == want.notes and p.markers == want.markers
        assert all(m.text.startswith("emotion ") for m in p.markers)


def test_sample_from_init_bad_start(debug_ckpt):
    m = ComposeEngine.load(debug_ckpt).model
    cond = torch.full((2, 4, 2), 0.5)
    init = m.sample(cond, generator=torch.Generator().manual_seed(0))
    for bad in (0, m.cfg.timesteps + 1, None):
        with pytest.raises(EmomusicError, match="start"):
            m.sample(cond, init=init, start=bad)


@shipped
def test_sample_from_init_sdedit():
    m = ComposeEngine.load().model
    cond = torch.full((16, 8, 2), 0.5)
    g = torch.Generator().manual_seed(0)
    init = m.sample(cond, generator=g)
    near = m.sample(cond, generator=g, init=init, start=1)
    far = m.sample(cond, generator=g, init=init, start=m.cfg.timesteps)
    fresh = m.sample(cond, generator=g)
    d = lambda a: float((a - init).pow(2).mean())  # noqa: E731
    assert d(near) < 0.5 * d(far) and d(near) < 0.5 * d(fresh)  # the lower the start, the more of init is kept


def test_new_section_leads_into_a_known_return(debug_ckpt, monkeypatch):
    eng = ComposeEngine.load(debug_ckpt)
    calls = []
    real = type(eng.model).sample

    def spy(self, cond, *a, **kw):
        x = real(self, cond, *a, **kw)
        calls.append((kw.get("known"), kw.get("known_mask"), x))
        return x

    monkeypatch.setattr(type(eng.model), "sample", spy)
    lat = generate_with_form(eng, _conds(1, 3), parse_form("ABA", 6), seed=0)  # one segment per phrase
    assert len(calls) == 2  # A (with its look-ahead), then B between the two A's
    known, mask, x = calls[1]
    assert mask.tolist() == [[True, False, True]]  # A before B and the returning A after it are fixed
    np.testing.assert_allclose(eng.model.denormalise(known[:, 2]).numpy(), lat[:, 2], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(lat[:, 2], lat[:, 0])


def test_restore_repeats_makes_exact_returns_exact_and_leaves_the_rest():
    plan = parse_form("AA'BA", 16)
    notes = [Note(60 + b, b * 4.0 + 0.5, 1.0, 80) for b in range(16)] + [Note(90, 15.0, 3.0, 80), Note(91, 62.0, 1.0, 80)]
    out = restore_repeats(notes, plan)
    first = [(n.pitch, n.start) for n in out if n.start < 16]
    assert first == [(60 + b, b * 4.0 + 0.5) for b in range(4)] + [(90, 15.0)]
    last = [(n.pitch, n.start - 48.0) for n in out if n.start >= 48]  # A returns exactly
    assert last == first
    assert all(n.end <= 64.0 + 1e-9 for n in out)  # cut at the section's end
    # the varied A' and B keep their own notes
    assert [(n.pitch, n.start) for n in out if 16 <= n.start < 48] == [(60 + b, b * 4.0 + 0.5) for b in range(4, 12)]
    assert restore_repeats(notes, parse_form("none", 16)) == notes


@shipped
def test_shipped_morph_returns_keep_their_own_notes():
    # happy -> sad over AABA: the last A was re-conditioned on its (sad) emotion; restoring exact
    # returns (restore_repeats) must not copy the happy first statement over it
    plan = parse_form("AABA", 16)
    (p,) = compose(Emotion(0.8, 0.6), to=Emotion(-0.8, -0.6), bars=16, seed=3, form="AABA")
    melody = p.tracks[0].notes  # the tune (0.45 when the happy A is copied over the sad return)
    assert similarity(bar_slice(melody, 0, 3), bar_slice(melody, plan.sections[3].start_bar, 3)) < 0.3
    (steady,) = compose(Emotion(0.8, 0.6), bars=16, seed=3, form="AABA")
    assert similarity(bar_slice(steady.notes, 0, 2), bar_slice(steady.notes, 12, 2)) > 0.9
