"""Melodies with form: parts that come back, phrases that close on cadences, ABC repeats."""

from __future__ import annotations

import re
import shutil
import subprocess

import mido
import pytest

from emomusic.emotion import Emotion
from emomusic.errors import EmomusicError
from emomusic.form import FormPlan, contrast, default_form, parse_form, section_similarities
from emomusic.melody.grammar import TuneSpec
from emomusic.melody.notation import METERS, CanonTune, Key, repeat_layout, write_abc, written_counts
from emomusic.melody.tokenizer import Controls
from emomusic.melody.validate import check_abc2midi, check_music21
from emomusic.paths import checkpoint_path

SHIPPED = checkpoint_path("melody")
needs_model = pytest.mark.skipif(not (SHIPPED / "model.safetensors").exists(), reason="no shipped melody checkpoint")
needs_abc2midi = pytest.mark.skipif(shutil.which("abc2midi") is None, reason="abc2midi (Debian 'abcmidi') not installed")


def _gen(**kw):
    from emomusic.melody.api import generate_melodies

    kw.setdefault("check", "grammar")
    return generate_melodies(kw.pop("emotion", Emotion(0.6, 0.5)), **kw)


def _plan(tune) -> FormPlan:
    return FormPlan.from_dict(tune.attributes["form"])


def _last_note(bar):
    """(pitch, duration in sixteenths) of the last sounding note of a canonical bar."""
    for chord, dur, pitch in reversed(bar):
        if pitch is not None:
            return pitch, dur
    return None, 0


# -- the plan inside the decoder --------------------------------------------------------------------

def _spec(form: str, bars: int = 16, meter: str = "4/4", variation: float = 0.5) -> TuneSpec:
    return TuneSpec(Key(7, "major"), meter, bars, Controls(), seed=1, form=parse_form(form, bars), variation=variation)


def test_spec_cadences_follow_the_plan():
    spec = _spec("AABA")
    assert [spec.cadence_at(b) for b in range(16) if spec.cadence_at(b)] == ["half", "authentic", "half", "authentic"]
    assert [b for b in range(16) if spec.cadence_at(b)] == [3, 7, 11, 15]
    assert spec.cadence_pitch_classes("authentic") == {7}  # G
    assert spec.cadence_pitch_classes("half") == {2, 6, 9}  # D, F#, A: the dominant chord's tones
    none = TuneSpec(Key(7, "major"), "4/4", 16, Controls(), seed=1)
    assert [b for b in range(16) if none.cadence_at(b)] == [15]  # no form: only the close
    assert {m: _spec("AB", 4, m).cadence_units() for m in ("4/4", "3/4", "2/4", "6/8", "12/8")} == {
        "4/4": 8, "3/4": 8, "2/4": 4, "6/8": 6, "12/8": 12}


def test_spec_bar_plan_copies_repeats_and_varies_primes():
    import random

    spec = _spec("AABA")
    rng = random.Random(0)
    plan = [spec.bar_plan(b, rng) for b in range(16)]
    # the second A copies bars 0-2 and closes anew (its cadence differs); B is new; the last A
    # copies its first statement's bars 0-2 and closes anew (half -> authentic)
    assert plan == [None, None, None, None, 0, 1, 2, None, None, None, None, None, 0, 1, 2, None]
    keep = _spec("AA'", 8, variation=0.0)
    assert [keep.bar_plan(b, rng) for b in range(8)] == [None] * 4 + [0, 1, 2, None]
    fresh = _spec("AA'", 8, variation=1.0)
    assert [fresh.bar_plan(b, rng) for b in range(8)] == [None] * 4 + [0, None, None, None]


def test_a_varied_repeat_keeps_a_run_of_opening_bars_drawn_per_tune():
    """A' copies its first bar, then each further bar while the run holds (probability 1 -
    variation), never a bar after a sampled one and never its closing bar; the run is drawn
    from the tune's seed, so it differs between tunes and repeats for the same seed."""
    runs = []
    for seed in range(400):
        spec = TuneSpec(Key(7, "major"), "4/4", 16, Controls(), seed=seed, form=parse_form("AA'BB'", 16), variation=0.5)
        plan = [spec.bar_plan(b) for b in range(16)]
        for start, src in ((4, 0), (12, 8)):
            kept = [plan[start + o] for o in range(4)]
            run = sum(1 for k in kept if k is not None)
            assert kept == [src + o for o in range(run)] + [None] * (4 - run)  # a prefix, closing bar sampled
            assert 1 <= run <= 3
            runs.append(run)
        assert plan == [spec.bar_plan(b) for b in range(16)]  # the same every time it is asked
    share = {r: runs.count(r) / len(runs) for r in (1, 2, 3)}
    assert abs(share[1] - 0.5) < 0.06 and abs(share[2] - 0.25) < 0.06 and abs(share[3] - 0.25) < 0.06


def test_later_strains_rhyme_with_the_first_strains_closing_bars():
    """With chance ``rhyme`` (half of it at half cadences) a section of a later part closes with the
    closing bar of the latest earlier section of another letter and the same cadence; the first
    part never rhymes, nor does a section whose closing bar is already a copy."""
    def plan(form, rhyme, seed=0):
        spec = TuneSpec(Key(7, "major"), "4/4", 16, Controls(), seed=seed, form=parse_form(form, 16), rhyme=rhyme)
        return {b: spec.bar_plan(b) for b in (3, 7, 11, 15)}

    assert plan("AA'BB'", 1.0)[15] == 7 and plan("AA'BC", 1.0)[15] == 7  # the tune ends like the A part
    assert plan("AA'BB'", 1.0)[3] is None and plan("AA'BB'", 1.0)[7] is None  # the first part is sampled
    assert plan("AA'BA'", 1.0)[15] is None  # A' returns: same letter, no rhyme
    assert plan("AABB", 1.0)[15] == 7  # B's repeat closes anew (authentic after half): like the A part
    assert plan("ABAB", 1.0)[15] == 7 and plan("ABAB", 0.0)[15] == 7  # an exact repeat copies its own close
    for form in ("AA'BB'", "AA'BC", "ABCD"):
        assert set(plan(form, 0.0).values()) == {None}  # rhyme 0: closing bars sampled
    assert plan("ABCD", 1.0)[15] == 7  # D (authentic) rhymes with B, the latest authentic close
    halves, fulls = [], []
    for seed in range(2000):
        p = plan("AA'BB'", 0.3, seed)
        assert p[11] in (None, 3) and p[15] in (None, 7)
        halves.append(p[11] == 3)
        fulls.append(p[15] == 7)
        if seed < 20:
            assert p == plan("AA'BB'", 0.3, seed)  # drawn from the tune's seed
    assert abs(sum(fulls) / 2000 - 0.3) < 0.035 and abs(sum(halves) / 2000 - 0.15) < 0.03


def test_the_final_close_is_the_bar_the_last_bar_copies():
    def spec(form, rhyme=0.0):
        return TuneSpec(Key(7, "major"), "4/4", 16, Controls(), seed=0, form=parse_form(form, 16) if form else None,
                        rhyme=rhyme)

    assert spec("AA'BB'", 1.0).final_close() == 7  # bar 16 rhymes with bar 8
    assert spec("AA'BB'").final_close() == 15 and spec(None).final_close() == 15
    assert spec("ABAB").final_close() == 7  # an exact repeat copies B's close
    assert spec("AABB").final_close() == 15  # B's repeat closes anew (authentic after half)


def test_a_rhythmic_motif_keeps_its_sources_contour():
    """With motif_contour, each note of a rhythmic-motif bar (after the bar's first) moves as the
    source bar's note at the same place moved: up, down or repeated; without it, any way."""
    from emomusic.melody.grammar import Grammar, _State
    from emomusic.melody.tokenizer import Tokenizer

    tok = Tokenizer()

    def state(contour):
        spec = TuneSpec(Key(0, "major"), "4/4", 16, Controls(), seed=0, form=parse_form("AA'BB'", 16),
                        rhythm_skip=1.0, motif_contour=contour, low=55, high=84, tonal_bias=0.0, contour=None)
        g, st = Grammar(tok), _State(spec)
        for bar in ([(4, 60), (4, 64), (4, 64), (4, 62)], [(16, 67)]):  # bar 1: up, repeat, down
            for dur, pitch in bar:
                g.advance(st, tok.dur_ids[dur])
                g.advance(st, tok.pitch_ids[pitch])
            g.advance(st, tok.bar)
        return g, st

    g, st = state(True)
    assert g.motif_steps(st) == {4: 1, 8: 0, 12: -1}
    moves = []
    for pitch in (69, None, None, None):  # bar 3 takes bar 1's rhythm: from A4, then as bar 1 moved
        g.advance(st, tok.dur_ids[4])
        allowed = sorted(tok.id_to_pitch[i] for i in g.allowed(st)[0] if i in tok.id_to_pitch)
        if st.pos:
            moves.append({(p > st.last_pitch) - (p < st.last_pitch) for p in allowed})
        pick = pitch if pitch is not None else (allowed[0] if moves[-1] == {-1} else allowed[-1])
        g.advance(st, tok.pitch_ids[pick])
    assert moves == [{1}, {0}, {-1}]
    g, st = state(False)
    assert g.motif_steps(st) == {4: 1, 8: 0, 12: -1}  # (known, not used)
    g.advance(st, tok.dur_ids[4])
    g.advance(st, tok.pitch_ids[69])
    g.advance(st, tok.dur_ids[4])
    free = {(p > 69) - (p < 69) for p in (tok.id_to_pitch[i] for i in g.allowed(st)[0] if i in tok.id_to_pitch)}
    assert free == {-1, 0, 1}


def test_a_sequence_keeps_its_sources_scale_steps():
    """A rhythmic-motif bar drawn as a sequence moves by as many scale steps as its source did (a
    diatonic transposition: C-E-E-D from A becomes A-C-C-B in C major); scale_steps counts
    degrees of the tune's key."""
    from emomusic.melody.grammar import Grammar, _State
    from emomusic.melody.tokenizer import Tokenizer

    tok = Tokenizer()
    spec = TuneSpec(Key(0, "major"), "4/4", 16, Controls(), seed=0, form=parse_form("AA'BB'", 16),
                    rhythm_skip=1.0, motif_contour=True, sequence=1.0, low=55, high=84, tonal_bias=0.0, contour=None)
    assert spec.is_sequence(2) and not spec.is_sequence(0) and not spec.is_sequence(3)
    assert [spec.scale_steps(60, p) for p in (64, 72, 59, 48, 61)] == [2, 7, -1, -7, 0]
    assert not TuneSpec(Key(0, "major"), "4/4", 16, Controls(), seed=0, form=parse_form("AA'BB'", 16),
                        rhythm_skip=1.0, motif_contour=False, sequence=1.0).is_sequence(2)  # only with the contour rule
    g, st = Grammar(tok), _State(spec)
    for bar in ([(4, 60), (4, 64), (4, 64), (4, 62)], [(16, 67)]):
        for dur, pitch in bar:
            g.advance(st, tok.dur_ids[dur])
            g.advance(st, tok.pitch_ids[pitch])
        g.advance(st, tok.bar)
    assert g.motif_degrees(st) == {4: 2, 8: 0, 12: -1}
    got = []
    for first in (69, None, None, None):
        g.advance(st, tok.dur_ids[4])
        allowed = sorted(tok.id_to_pitch[i] for i in g.allowed(st)[0] if i in tok.id_to_pitch)
        pick = first if first is not None else allowed[0]
        if first is None:
            got.append(allowed)
        g.advance(st, tok.pitch_ids[pick])
    assert got == [[72], [72], [71]]
    shares = [TuneSpec(Key(0, "major"), "4/4", 16, Controls(), seed=s, form=parse_form("AA'BB'", 16), rhythm_skip=1.0,
                       motif_contour=True, sequence=0.6).is_sequence(2) for s in range(1000)]
    assert abs(sum(shares) / 1000 - 0.6) < 0.05


def test_rhymes_and_motifs_in_longer_and_uneven_forms():
    from emomusic.form import Section

    five = TuneSpec(Key(7, "major"), "4/4", 20, Controls(), seed=0, form=parse_form("ABCDE", 20), rhyme=1.0)
    assert five.bar_plan(19) == 15  # E rhymes with D, the latest authentic close of another letter (not B)
    assert five.bar_plan(15) == 7  # D with B
    assert five.final_close() == 7  # the chain E -> D -> B: bar 8 is where the tune's last notes are made
    # 8-bar phrases: the motif comes back at the phrase's third bar only
    eight = TuneSpec(Key(7, "major"), "4/4", 16, Controls(), seed=0, form=parse_form("AB", 16), motif=1.0)
    assert [eight.bar_plan(b) for b in range(8)] == [None, None, 0, None, None, None, None, None]
    # a repeat longer than its first statement: the bars past it are sampled, its close may rhyme
    plan = FormPlan((Section("A", 0, 2, "authentic"), Section("B", 2, 2, "half"), Section("B", 4, 4, "authentic")))
    uneven = TuneSpec(Key(7, "major"), "4/4", 8, Controls(), seed=0, form=plan, rhyme=1.0)
    assert [uneven.bar_plan(b) for b in range(8)] == [None, None, None, None, 2, 3, None, 1]


def test_the_lead_into_a_copy_keeps_the_cadence_and_takes_the_nearest_tones():
    """Where no cadence tone lies within max_leap of the copied bar's first note, the last note is
    the cadence tone nearest to it (not the tonic fallback, not a rest)."""
    from emomusic.melody.grammar import Grammar, _State
    from emomusic.melody.tokenizer import Tokenizer

    tok = Tokenizer()
    spec = TuneSpec(Key(0, "major"), "4/4", 16, Controls(), seed=0, form=parse_form("AABA", 16),
                    low=55, high=91, max_leap=5, part_lift=0, tonal_bias=0.0, contour=None)
    assert spec.bar_plan(4) == 0 and spec.cadence_at(3) == "half"
    g, st = Grammar(tok), _State(spec)
    for b, pitches in enumerate(((84, 83, 81, 79), (77, 76, 74, 72), (71, 69, 67, 65))):  # bar 1 opens on C6
        for p in pitches:
            g.advance(st, tok.dur_ids[4])
            g.advance(st, tok.pitch_ids[p])
        g.advance(st, tok.bar)
    for p in (64, 62, 60):
        g.advance(st, tok.dur_ids[4])
        g.advance(st, tok.pitch_ids[p])
    g.advance(st, tok.dur_ids[4])  # the half close, a leap of at most 5 from C4, leads into C6
    ids = g.allowed(st)[0]
    assert tok.rest not in ids
    assert sorted(tok.id_to_pitch[i] for i in ids) == [62]  # D: the half-cadence tone nearest to C6


def test_the_last_note_before_a_copied_bar_leads_into_it():
    """The bar before a copied bar ends within max_leap of the copied bar's first note (the line
    does not jump into a repeat or a rhyme); other bars' last notes range over the whole window."""
    from emomusic.melody.grammar import Grammar, _State
    from emomusic.melody.tokenizer import Tokenizer

    tok = Tokenizer()
    spec = TuneSpec(Key(0, "major"), "4/4", 16, Controls(), seed=0, form=parse_form("AA'BB'", 16), rhyme=1.0,
                    low=55, high=91, max_leap=12, part_lift=0, tonal_bias=0.0, contour=None)
    assert spec.bar_plan(15) == 7
    g, st = Grammar(tok), _State(spec)
    for b in range(15):
        for pitch in ((72, 76, 79, 84) if b != 7 else (60, 64, 67, 60)):  # bar 7 (A' closes): opens on C4
            if st.pos == 12 and spec.cadence_at(b) is not None:
                pitch = 67 if spec.cadence_at(b) == "half" else 72
            g.advance(st, tok.dur_ids[4])
            if b == 14 and st.pos == 12:
                ids = g.allowed(st)[0]
                allowed = [tok.id_to_pitch[i] for i in ids if i in tok.id_to_pitch]
                assert allowed and max(allowed) <= 60 + 12 and min(allowed) >= 72 - 12  # near C4, a leap from C5 at most
                assert tok.rest not in ids  # a rest would leave the leap open
                free_st = _State(TuneSpec(Key(0, "major"), "4/4", 16, Controls(), seed=0, form=parse_form("AA'BB'", 16),
                                          low=55, high=91, max_leap=12, part_lift=0, tonal_bias=0.0))
                free_st.__dict__.update({k: v for k, v in st.__dict__.items() if k != "spec"})
                free_ids = g.allowed(free_st)[0]
                free = [tok.id_to_pitch[i] for i in free_ids if i in tok.id_to_pitch]
                assert max(free) > 72 and tok.rest in free_ids  # without the rhyme: anywhere near the line, or a rest
            g.advance(st, tok.pitch_ids[pitch])
        g.advance(st, tok.bar)
    assert st.bars_done == 15


def test_a_first_statement_may_restate_its_opening_bar_as_its_third():
    def spec(form, motif, seed=0, bars=16, variation=0.5):
        return TuneSpec(Key(7, "major"), "4/4", bars, Controls(), seed=seed, form=parse_form(form, bars), motif=motif,
                        variation=variation)

    full = spec("AA'BC", 1.0)
    assert [full.bar_plan(b) for b in (0, 1, 2, 3, 8, 9, 10, 11, 12, 14)] == [None, None, 0, None, None, None, 8, None, None, 12]
    assert spec("AA'BB'", 1.0, variation=0.0).bar_plan(6) == 2  # A' copies A's third bar (itself bar 1 again)
    assert spec("AA'BB'", 1.0, variation=1.0).bar_plan(6) is None  # a varied repeat does not restate by itself
    assert all(spec("AABB", 1.0, bars=8).bar_plan(b) in (None, 0, 1, 4, 5) for b in range(8))  # 2-bar phrases: never
    assert spec("AABB", 1.0, bars=8).bar_plan(2) == 0  # (bar 2 is the second A: a plain repeat)
    assert all(spec("AA'BC", 0.0).bar_plan(b) is None for b in (2, 10, 14))
    shares = [spec("AA'BB'", 0.2, seed).bar_plan(2) == 0 for seed in range(2000)]
    assert abs(sum(shares) / 2000 - 0.2) < 0.03
    assert [spec("AA'BB'", 0.2, s).bar_plan(10) for s in range(30)] == [spec("AA'BB'", 0.2, s).bar_plan(10) for s in range(30)]


def test_rhythmic_motifs_take_an_earlier_bars_lengths_inside_a_phrase():
    """A sampled bar that does not close its phrase may take the rhythm of the bar two before it
    (chance rhythm_skip) or, as the phrase's second bar, of the phrase's first bar (rhythm_next);
    copied bars, closing bars, first bars and tunes without a form never do."""
    def spec(form, skip, nxt, seed=0, bars=16):
        return TuneSpec(Key(7, "major"), "4/4", bars, Controls(), seed=seed, form=parse_form(form, bars) if form else None,
                        rhythm_skip=skip, rhythm_next=nxt, variation=1.0)

    s = spec("AA'BB'", 1.0, 1.0)
    # A: bar 1 <- 0, bar 2 <- 0 (two before); A' copies bar 4, samples 5 and 6; B like A; closing bars never
    assert [s.rhythm_source(b) for b in range(16)] == [None, 0, 0, None, None, 4, 4, None,
                                                      None, 8, 8, None, None, 12, 12, None]
    only_skip = spec("AA'BB'", 1.0, 0.0)
    assert [only_skip.rhythm_source(b) for b in range(8)] == [None, None, 0, None, None, None, 4, None]
    assert all(spec("AA'BB'", 0.0, 0.0).rhythm_source(b) is None for b in range(16))
    assert all(spec(None, 1.0, 1.0).rhythm_source(b) is None for b in range(16))  # no form, no motifs
    assert all(spec("none", 1.0, 1.0).rhythm_source(b) is None for b in range(16))
    eight = spec("AB", 1.0, 0.0, bars=16)  # 8-bar phrases: every inner bar from two before
    assert [eight.rhythm_source(b) for b in range(8)] == [None, None, 0, 1, 2, 3, 4, None]
    kept = spec("AA'BB'", 1.0, 1.0)
    kept.variation = 0.0  # A' copies bars 4-6: none of them takes a rhythm
    assert [kept.rhythm_source(b) for b in (4, 5, 6)] == [None, None, None]
    hits = {1: 0, 2: 0}
    for seed in range(2000):
        sp = spec("AA'BB'", 0.4, 0.15, seed)
        hits[1] += sp.rhythm_source(1) == 0
        hits[2] += sp.rhythm_source(2) == 0
        if seed < 10:
            assert [sp.rhythm_source(b) for b in range(16)] == [spec("AA'BB'", 0.4, 0.15, seed).rhythm_source(b) for b in range(16)]
    assert abs(hits[2] / 2000 - 0.4) < 0.035 and abs(hits[1] / 2000 - 0.15) < 0.025


def test_a_bar_with_a_rhythmic_motif_is_offered_only_its_sources_lengths():
    from emomusic.melody.grammar import Grammar, _State
    from emomusic.melody.tokenizer import Tokenizer

    tok = Tokenizer()
    spec = TuneSpec(Key(0, "major"), "4/4", 16, Controls(), seed=0, form=parse_form("AA'BB'", 16),
                    rhythm_skip=1.0, rhythm_next=0.0)
    assert spec.rhythm_source(2) == 0 and spec.rhythm_source(1) is None
    g, st = Grammar(tok), _State(spec)
    first = [(6, 60), (2, None), (4, 64), (4, 67)]  # dotted quarter, eighth rest, two quarters

    def durations():
        return sorted(tok.id_to_dur[i] for i in g.allowed(st)[0] if i in tok.id_to_dur)

    for bar in (first, [(16, 62)]):
        for dur, pitch in bar:
            g.advance(st, tok.dur_ids[dur])
            g.advance(st, tok.rest if pitch is None else tok.pitch_ids[pitch])
        g.advance(st, tok.bar)
    seen = []
    for dur, pitch in first:
        assert durations() == [dur]  # bar 3 is offered bar 1's lengths, one at a time
        seen.append(dur)
        g.advance(st, tok.dur_ids[dur])
        g.advance(st, tok.pitch_ids[65])  # its pitches are its own (a rest in bar 1 may be a note here)
    assert seen == [6, 2, 4, 4]
    g.advance(st, tok.bar)
    assert len(durations()) > 3  # bar 4 closes the phrase: free again


def test_the_window_rises_in_the_second_part():
    spec = TuneSpec(Key(7, "major"), "4/4", 16, Controls(), seed=0, form=parse_form("AA'BB'", 16),
                    low=60, high=76, part_lift=3)
    assert [spec.window_at(b) for b in (0, 7, 8, 15)] == [(60, 76), (60, 76), (63, 79), (63, 79)]
    flat = TuneSpec(Key(7, "major"), "4/4", 16, Controls(), seed=0, low=60, high=76, part_lift=3)
    assert flat.window_at(12) == (60, 76)  # no form, no parts


# -- writing repeats --------------------------------------------------------------------------------

def _canon(bars_pitches, meter="4/4") -> CanonTune:
    units = METERS[meter][0]
    bars = [[(None, units // len(ps), p) for p in ps] for ps in bars_pitches]
    return CanonTune(Key(0, "major"), meter, bars, title="t")


def test_repeat_layout_endings_exact_repeats_and_written_out_sections():
    a = [[60, 62, 64, 65], [67, 65, 64, 62], [64, 65, 67, 69], [67, 67, 67, 67]]
    a2_close = [[72, 72, 72, 72]]
    b = [[69, 71, 72, 74], [72, 71, 69, 67], [65, 67, 69, 71], [72, 72, 72, 72]]
    canon = _canon(a + a[:3] + a2_close + b + b)
    plan = parse_form("AABB", 16)
    layout = repeat_layout(canon, plan)
    assert [k for k, _, _ in layout] == [0, 1, 2, 3, 7, 8, 9, 10, 11]
    assert [m for _, m, _ in layout] == ["|:", "", "", "[1", "[2", "|:", "", "", ""]
    assert [e for _, _, e in layout][-1] == ":|"
    abc = write_abc(canon, form=plan)
    assert "% form AABB" in abc
    body = abc.split("K:C\n", 1)[1]
    assert body.startswith("|: ") and "| [1 " in body and re.search(r":\|\s+\[2 ", body)
    assert re.search(r"c2 \|: A2", body)  # the second part's repeat opens on the bar line
    assert written_counts(canon, plan) == (9, 36, 36.0)
    assert check_music21(abc, n_bars=9, n_notes=36, quarters=36.0) is None
    assert check_music21(abc, n_bars=16, n_notes=64, quarters=64.0, expand=True) is None
    # AABA: the returning A is written out; without a form every bar is written once
    aaba = _canon(a + a[:3] + a2_close + b + a)
    assert [k for k, _, _ in repeat_layout(aaba, parse_form("AABA", 16))][-4:] == [12, 13, 14, 15]
    assert [m for _, m, _ in repeat_layout(aaba, None)] == [""] * 16
    assert repeat_layout(aaba, None)[-1][2] == "|]"
    assert "|:" not in write_abc(aaba, form=parse_form("ABCD", 16))


@needs_abc2midi
def test_abc2midi_plays_the_repeats(tmp_path):
    a = [[60, 62, 64, 65], [67, 65, 64, 62]]
    canon = _canon(a + [[60, 62, 64, 65], [72, 71, 72, 74]] + [[69, 71, 72, 74], [67, 67, 67, 67]] * 2)
    abc = write_abc(canon, form=parse_form("AABB", 8))
    (tmp_path / "t.abc").write_text(abc)
    subprocess.run(["abc2midi", str(tmp_path / "t.abc"), "-o", str(tmp_path / "t.mid")], check=True, capture_output=True)
    played = [m.note for t in mido.MidiFile(tmp_path / "t.mid").tracks for m in t if m.type == "note_on" and m.velocity > 0]
    assert played == [p for bar in canon.bars for _, _, p in bar]


# -- generated tunes --------------------------------------------------------------------------------

@needs_abc2midi
def test_repeat_layout_writes_endings_of_two_bars_and_writes_out_longer_differences():
    a = [[60, 62, 64, 65], [67, 65, 64, 62], [64, 65, 67, 69], [67, 67, 67, 67]]
    a2 = a[:2] + [[65, 64, 62, 60], [60, 60, 60, 60]]  # a consequent: same opening, last two bars new
    b = [[69, 71, 72, 74], [72, 71, 69, 67], [65, 67, 69, 71], [72, 72, 72, 72]]
    b2 = b[:1] + [[74, 72, 71, 69], [67, 65, 64, 62], [60, 60, 60, 60]]  # only one bar kept: written out
    canon = _canon(a + a2 + b + b2)
    plan = parse_form("AA'BB'", 16)
    layout = repeat_layout(canon, plan)
    assert [k for k, _, _ in layout] == [0, 1, 2, 3, 6, 7] + list(range(8, 16))
    assert [m for _, m, _ in layout][:6] == ["|:", "", "[1", "", "[2", ""]
    assert [e for _, _, e in layout][:6] == ["|", "|", "|", ":|", "|", "|"]
    abc = write_abc(canon, form=plan)
    assert written_counts(canon, plan) == (14, 56, 56.0)
    assert check_music21(abc, n_bars=14, n_notes=56, quarters=56.0) is None
    assert check_music21(abc, n_bars=16, n_notes=64, quarters=64.0, expand=True) is None
    assert check_abc2midi(abc) is None


@needs_model
def test_default_tune_forms_are_periods_or_a_rounded_form_with_markers_and_endings():
    """16 bars, each tune its own form by its seed: two strains, each a parallel period
    (AA'BB'), a rounded form whose second strain closes with its first phrase (AA'BA'), or a
    second strain of two phrases (AA'BC). A varied repeat opens with its first statement's
    opening bar(s) and closes anew on the tonic, and where the consequent only differs in its
    closing bars the ABC writes them as first and second endings."""
    endings, seen = 0, set()
    for seed in range(12):
        tune = _gen(seed=seed)[0]
        plan = _plan(tune)
        assert plan.text == default_form(16, Emotion(0.6, 0.5), "tune", seed=seed).text  # the tune's own seed
        assert plan.text in ("AA'BB'", "AA'BA'", "AA'BC") and plan.phrase_bars == 4
        seen.add(plan.text)
        last = plan.text[-2:] if plan.text[-1] == "'" else plan.text[-1]
        beats = tune.canon.bar_units / 4
        assert [(m.text, m.beat) for m in tune.piece.markers if m.text[0] in "ABC"] == [
            ("A", 0.0), ("A'", 4 * beats), ("B", 8 * beats), (last, 12 * beats)]
        bars = tune.canon.bars
        assert bars[4] == bars[0]  # the consequent opens like the antecedent
        if last == "C":  # a new phrase
            assert bars[12] not in (bars[0], bars[8])
        else:  # the last phrase: B's or A's opening
            assert bars[12] == (bars[8] if last == "B'" else bars[0])
        assert bars[7] != bars[3] and bars[15] != bars[11]  # and closes differently
        assert [c for _, c in plan.cadences()] == ["half", "authentic", "half", "authentic"]
        endings += "[1" in tune.abc and "[2" in tune.abc
    assert seen == {"AA'BB'", "AA'BA'", "AA'BC"}
    assert endings >= 4  # most tunes are written with repeat signs and two endings
    # an asked form is every tune's form
    assert {_plan(t).text for t in _gen(seed=0, n=3, form="AABB")} == {"AABB"}


@needs_model
@pytest.mark.parametrize("meter,form", [("4/4", "AABA"), ("3/4", "AABA"), ("6/8", "AABA"), ("4/4", "AA'BB'"),
                                        ("6/8", "AA'BC"), ("3/4", "ABAB")])
def test_phrases_close_on_cadences_with_long_notes(meter, form):
    for seed in range(3):
        tune = _gen(seed=seed, meter=meter, form=form, chords=True, emotion=Emotion(-0.5, 0.4))[0]
        spec_key = tune.canon.key
        plan = _plan(tune)
        hold = _spec("AB", 4, meter).cadence_units()
        for bar, kind in plan.cadences():
            pitch, dur = _last_note(tune.canon.bars[bar])
            if kind == "authentic":  # on the tonic; the tune's last close lands on a long note
                assert dur >= hold or bar < len(tune.canon.bars) - 1, (meter, seed, bar, tune.canon.bars[bar])
                assert pitch % 12 == spec_key.tonic
            else:
                assert (pitch - spec_key.tonic) % 12 in (7, 11, 10, 2)
            first_chord = next(c for c, _, _ in tune.canon.bars[bar] if c is not None)
            want_root = spec_key.tonic if kind == "authentic" else (spec_key.tonic + 7) % 12
            assert first_chord[0] == want_root


@needs_model
@needs_abc2midi
def test_rhymed_strains_close_alike_on_the_tonic_and_parse():
    """Decoded with rhyme 1, the tune's last bar is the A part's closing bar (the tonic close) in
    every form whose later sections have other letters, and the ABC written with repeats parses."""
    from emomusic.melody.api import load_melody_model
    from emomusic.melody.decode import sample_tunes

    model, tok, _ = load_melody_model()
    for form, meter in (("AA'BB'", "6/8"), ("AA'BC", "4/4")):
        plan = parse_form(form, 16)
        specs = [TuneSpec(Key(2, "major"), meter, 16, Controls(), seed=s, form=plan, rhyme=1.0) for s in range(4)]
        halves = 0
        for spec, ids in zip(specs, sample_tunes(model, tok, specs)):
            canon = tok.decode(ids)
            assert canon.bars[15] == canon.bars[7] and _last_note(canon.bars[15])[0] % 12 == 2
            assert _last_note(canon.bars[15])[1] >= spec.cadence_units()  # the tune still ends long
            if spec.bar_plan(11) == 3:
                assert canon.bars[11] == canon.bars[3]
                halves += 1
            abc = write_abc(canon, form=plan)
            n = len(canon.pitches())
            assert check_music21(abc, n_bars=16, n_notes=n, quarters=16 * canon.bar_units / 4, expand=True) is None
            assert check_abc2midi(abc) is None
        assert halves >= 1, form


@needs_model
def test_decoded_first_statements_restate_their_opening_bar():
    from emomusic.melody.api import load_melody_model
    from emomusic.melody.decode import sample_tunes

    model, tok, _ = load_melody_model()
    specs = [TuneSpec(Key(4, "minor"), "2/4", 16, Controls(), seed=s, form=parse_form("AA'BC", 16), motif=1.0)
             for s in range(4)]
    for spec, ids in zip(specs, sample_tunes(model, tok, specs)):
        bars = tok.decode(ids).bars
        assert bars[2] == bars[0] and bars[10] == bars[8] and bars[14] == bars[12]
        assert bars[1] != bars[0]


@needs_model
def test_decoded_bars_keep_their_rhythmic_motifs():
    """Decoded with rhythm_skip 1, every bar with a rhythm source has its source's note lengths
    (with chords too: a chord symbol does not move the rhythm), and its own pitches."""
    from emomusic.melody.api import load_melody_model
    from emomusic.melody.decode import sample_tunes

    model, tok, _ = load_melody_model()
    moved = same = total = seq_same = seq_total = 0

    def _degrees(spec, bar):  # the scale steps of each sounding note from the one before it in the bar
        ps = [p for _, _, p in bar]
        return [None if (a is None or b is None) else spec.scale_steps(a, b) for a, b in zip(ps, ps[1:])]

    def _steps(bar):  # the direction of each sounding note from the one before it in the bar
        ps = [p for _, _, p in bar]
        return [None if (a is None or b is None) else (b > a) - (b < a) for a, b in zip(ps, ps[1:])]

    for meter, chords in (("3/4", False), ("6/8", True)):
        specs = [TuneSpec(Key(9, "minor"), meter, 16, Controls(chords=chords), seed=s, form=parse_form("AA'BB'", 16),
                          rhythm_skip=1.0, rhythm_next=0.5, variation=1.0, motif_contour=True, sequence=0.5)
                 for s in range(4)]
        for spec, ids in zip(specs, sample_tunes(model, tok, specs)):
            bars = tok.decode(ids).bars
            for b in range(16):
                src = spec.rhythm_source(b)
                if src is not None:
                    assert [d for _, d, _ in bars[b]] == [d for _, d, _ in bars[src]], (meter, b, src)
                    moved += [p for _, _, p in bars[b]] != [p for _, _, p in bars[src]]
                    steps = [_steps(bars[b]), _steps(bars[src])]
                    same += sum(x == y for x, y in zip(*steps))
                    total += len(steps[0])
                    if spec.is_sequence(b):
                        degs = [_degrees(spec, bars[b]), _degrees(spec, bars[src])]
                        seq_same += sum(x == y for x, y in zip(*degs))
                        seq_total += len(degs[0])
    assert moved >= 20  # the pitches are sampled anew
    assert same >= 0.8 * total  # in the source's contour wherever the key and window allow (by chance: about 0.4)
    assert seq_total >= 10 and seq_same >= 0.7 * seq_total  # sequences: in the source's scale steps where they can


@needs_model
def test_the_tune_ends_long_when_its_last_bar_is_a_copy():
    """The tune's last note lands long (at least cadence_units) also when the last bar copies an
    earlier one (a rhyme, an exact repeat): the copied bar was made to land long."""
    from emomusic.melody.api import load_melody_model
    from emomusic.melody.decode import sample_tunes

    model, tok, _ = load_melody_model()
    for form, rhyme, meter in (("AA'BB'", 1.0, "4/4"), ("ABAB", 0.0, "6/8")):
        specs = [TuneSpec(Key(7, "major"), meter, 16, Controls(), seed=s, form=parse_form(form, 16), rhyme=rhyme)
                 for s in range(6)]
        for spec, ids in zip(specs, sample_tunes(model, tok, specs)):
            bars = tok.decode(ids).bars
            assert spec.final_close() == 7 and bars[15] == bars[7]
            assert _last_note(bars[15])[1] >= spec.cadence_units(), (form, spec.seed, bars[15])


@needs_model
@needs_abc2midi
@pytest.mark.parametrize("meter", ["6/8", "4/4"])
def test_default_tunes_keep_every_planned_copy_and_rhythm_and_parse(meter, monkeypatch):
    """Default forms with the API's rhymes, motifs and rhythmic motifs all on, chords on, checked
    by both parsers: every bar the plan copies equals its source, every bar with a rhythmic motif
    has its source's lengths, nothing is resampled."""
    import emomusic.melody.decode as dec

    seen = []
    real = dec.sample_tunes
    monkeypatch.setattr(dec, "sample_tunes", lambda m, t, specs, sampling=None: seen.extend(specs) or real(m, t, specs, sampling))
    tunes = _gen(seed=5, n=4, meter=meter, chords=True, check="parsers", emotion=Emotion(0.4, 0.6))
    assert len(seen) == 4 and all(t.attributes.get("resampled", 0) == 0 for t in tunes)
    copies = rhythms = 0
    for spec, tune in zip(seen, tunes):
        bars = tune.canon.bars
        for b in range(16):
            src = spec.bar_plan(b)
            if src is not None:
                assert bars[b] == bars[src], (b, src)
                copies += 1
            rs = spec.rhythm_source(b)
            if rs is not None:
                assert [d for _, d, _ in bars[b]] == [d for _, d, _ in bars[rs]]
                rhythms += 1
        assert _last_note(bars[15])[1] >= spec.cadence_units()
    assert copies >= 8 and rhythms >= 2


@needs_model
def test_hold_inner_makes_every_full_close_land_long():
    """hold_inner=True holds every authentic cadence on a long note; by default only the tune's
    last one is held and the model chooses elsewhere (real tunes land about half their phrases)."""
    from emomusic.melody.api import load_melody_model
    from emomusic.melody.decode import sample_tunes

    model, tok, _ = load_melody_model()
    for hold_inner in (True, False):
        specs = [TuneSpec(Key(7, "major"), "6/8", 16, Controls(), seed=s, form=parse_form("AA'BB'", 16),
                          hold_inner=hold_inner, min_duration=1) for s in range(8)]
        inner, last = [], []
        for spec, ids in zip(specs, sample_tunes(model, tok, specs)):
            canon = tok.decode(ids)
            for b, kind in spec.form.cadences():
                if kind == "authentic":
                    (last if b == 15 else inner).append(_last_note(canon.bars[b])[1])
        hold = specs[0].cadence_units()
        assert min(last) >= hold
        if hold_inner:
            assert min(inner) >= hold
        else:
            assert min(inner) < hold  # free to move on


@needs_model
def test_repeats_are_similar_and_new_sections_are_not():
    sims, cons = [], []
    for seed in range(4):
        tune = _gen(seed=seed, form="AABA")[0]
        plan = _plan(tune)
        melody = tune.piece.tracks[0].notes
        beats = tune.canon.bar_units / 4
        s = section_similarities(melody, plan, beats)
        c = contrast(melody, plan, beats)
        sims += [s[1], s[3]]
        cons.append(c[2])
    assert min(sims) > 0.5
    assert max(cons) < 0.5 and sum(cons) / len(cons) < min(sims)


@needs_model
def test_variation_controls_how_much_a_varied_repeat_keeps():
    keep = _gen(seed=5, form="AA'", bars=8, variation=0.0)[0].canon.bars
    fresh = _gen(seed=5, form="AA'", bars=8, variation=1.0)[0].canon.bars
    assert keep[4:7] == keep[0:3] and keep[7] != keep[3]
    assert fresh[4] == fresh[0]
    assert sum(fresh[4 + i] == fresh[i] for i in (1, 2)) < 2 or fresh[1:3] == fresh[5:7] == keep[1:3]


@needs_model
def test_form_none_is_through_composed():
    tune = _gen(seed=2, form="none")[0]
    assert _plan(tune).through_composed
    assert "|:" not in tune.abc and ":|" not in tune.abc and "% form" not in tune.abc
    assert not any(m.text in ("A", "B") for m in tune.piece.markers)


@needs_model
def test_both_checks_give_the_same_tune_and_the_parsers_accept_it():
    fast = _gen(seed=9, chords=True)[0]
    full = _gen(seed=9, chords=True, check="parsers")[0]
    assert fast.abc == full.abc
    bars, notes, quarters = written_counts(fast.canon, _plan(fast))
    assert check_music21(fast.abc, n_bars=bars, n_notes=notes, quarters=quarters) is None


@needs_model
def test_transpose_keeps_the_form():
    from emomusic.melody.api import transpose_tune

    tune = _gen(seed=4)[0]
    up = transpose_tune(tune, 2)
    assert up.abc.count("|:") == tune.abc.count("|:") and up.abc.count("[2") == tune.abc.count("[2")
    assert [m.text for m in up.piece.markers] == [m.text for m in tune.piece.markers]


@needs_model
@pytest.mark.parametrize("form, bars, match", [
    ("AXB?", 16, "unknown symbol"),
    ("AABA", 18, "do not divide 18"),
    ("AABBAABBAABB", 12, "too long"),
])
def test_bad_forms(form, bars, match):
    with pytest.raises(EmomusicError, match=match):
        _gen(form=form, bars=bars)


@needs_model
def test_bad_check_and_variation():
    with pytest.raises(EmomusicError, match="check"):
        _gen(check="none")
    with pytest.raises(EmomusicError, match="variation"):
        _gen(variation=1.5)


# -- CLI --------------------------------------------------------------------------------------------

@needs_model
def test_cli_form_and_json(tmp_path, capsys):
    import json

    from click.testing import CliRunner

    from emomusic.cli import cli, main

    out = tmp_path / "t.abc"
    r = CliRunner().invoke(cli, ["melody", "--mood", "happy", "--form", "AABA", "--bars", "32", "--json", "-o", str(out)])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["melodies"][0]["form"]["form"] == "AABA" and data["melodies"][0]["form"]["phrase_bars"] == 8
    assert "% form AABA" in out.read_text()
    bad = tmp_path / "bad.abc"
    for args, msg in ((["--form", "AXB?"], "unknown symbol '?'"), (["--form", "AABA", "--bars", "18"], "do not divide 18")):
        with pytest.raises(SystemExit) as e:
            main(["melody", "--mood", "happy", *args, "-o", str(bad)])
        assert e.value.code == 2 and not bad.exists()
        err = capsys.readouterr().err
        assert msg in err and err.count("\n") == 1


@needs_model
def test_hold_half_makes_half_cadences_land_long_too():
    from emomusic.melody.api import load_melody_model
    from emomusic.melody.decode import sample_tunes

    model, tok, _ = load_melody_model()
    for hold_half in (True, False):
        specs = [TuneSpec(Key(7, "major"), "4/4", 16, Controls(), seed=s, form=parse_form("AABA", 16),
                          hold_half=hold_half, min_duration=1) for s in range(6)]
        lens = []
        for spec, ids in zip(specs, sample_tunes(model, tok, specs)):
            canon = tok.decode(ids)
            lens += [_last_note(canon.bars[b])[1] for b, kind in spec.form.cadences() if kind == "half"]
        if hold_half:
            assert min(lens) >= 8
        else:
            assert min(lens) < 8  # free to move on (eighths and quarters occur)
