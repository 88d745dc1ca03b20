"""emomusic.compose.style: each piece's player style, drawn from its seed, and what it moves."""

from __future__ import annotations

import math

import numpy as np
import pytest

from emomusic.compose import passing as P
from emomusic.compose import style as S
from emomusic.compose import texture as T
from emomusic.emotion import Emotion
from emomusic.errors import EmomusicError
from emomusic.piece import KeySignature, Note, Piece, Tempo, TimeSignature, Track


def test_draws_are_seeded_bounded_and_centred():
    assert S.draw_style(3) == S.draw_style(3) and S.draw_style(3) != S.draw_style(4)
    assert S.draw_style(3, 0.0) == S.PLAIN == S.PlayerStyle()
    styles = [S.draw_style(seed) for seed in range(3000)]
    logs = np.array([math.log(s.busyness) for s in styles])
    bass = np.array([s.bass_shift for s in styles])
    colour = np.array([s.colour for s in styles])
    orn = np.array([s.ornament for s in styles])
    rep = np.array([s.repeats for s in styles])
    lim = S.Z_LIMIT
    assert np.abs(logs).max() <= S.BUSY_LOG_SD * lim + 1e-9 and np.abs(bass).max() <= round(S.BASS_SD * lim)
    assert np.abs(colour).max() <= S.COLOUR_SD * lim + 1e-9 and np.abs(orn).max() <= S.ORNAMENT_SD * lim + 1e-9
    assert np.abs(rep).max() <= S.REPEAT_SD * lim + 1e-9
    # held at the limit: about 4.6% of the draws (|z| > 2) sit on it
    assert 0.03 < np.mean(np.isclose(np.abs(logs), S.BUSY_LOG_SD * lim)) < 0.065
    for x, sd in ((logs, S.BUSY_LOG_SD), (bass, S.BASS_SD), (colour, S.COLOUR_SD), (orn, S.ORNAMENT_SD), (rep, S.REPEAT_SD)):
        assert abs(x.mean()) < 0.06 * sd and 0.9 * sd < x.std() < 1.0 * sd  # a clipped normal
    draws = [logs, bass, colour, orn, rep]
    for i in range(5):  # five independent draws
        for j in range(i + 1, 5):
            assert abs(np.corrcoef(draws[i], draws[j])[0, 1]) < 0.06, (i, j)


def test_diversity_scales_the_same_draw():
    full, half = S.draw_style(11, 1.0), S.draw_style(11, 0.5)
    assert math.log(half.busyness) == pytest.approx(math.log(full.busyness) / 2)
    assert half.colour == pytest.approx(full.colour / 2) and half.ornament == pytest.approx(full.ornament / 2)
    assert half.repeats == pytest.approx(full.repeats / 2)
    assert abs(half.bass_shift - full.bass_shift / 2) <= 0.5 + 1e-9
    d = S.draw_style(11).to_dict()
    assert set(d) == {"busyness", "bass_shift", "colour", "ornament", "repeats"} and isinstance(d["bass_shift"], int)
    assert S.PlayerStyle(1.23456, -7, 0.11119, -0.5, 0.33333).to_dict() == {
        "busyness": 1.235, "bass_shift": -7, "colour": 0.111, "ornament": -0.5, "repeats": 0.333}
    assert S.piece_styles(11, 3) == [S.draw_style(11), S.draw_style(12), S.draw_style(13)]  # diversity 1 by default
    assert S.piece_styles(11, 2, 0.5) == [S.draw_style(11, 0.5), S.draw_style(12, 0.5)] and S.piece_styles(11, 0) == []


def test_the_rules_take_the_style():
    e = Emotion(0.3, -0.4)
    assert T.onset_budget(-0.4, 2.0) == pytest.approx(T.BUDGET_CENTRE * 2 + T.BUDGET_PER_AROUSAL * -0.4)
    assert T.onset_budget(-0.4) == T.onset_budget(-0.4, 1.0)
    assert T.bass_floor(e, 7) == T.bass_floor(e) + 7 and T.bass_floor(e, -5) == T.bass_floor(e) - 5
    assert T.colour_chance(e, 0.1) == pytest.approx(T.colour_chance(e) + 0.1)
    assert T.colour_chance(e, 5.0) == 0.95 and T.colour_chance(e, -5.0) == 0.2  # the limits hold
    assert P.passing_chance(e, -0.1) == pytest.approx(P.passing_chance(e) - 0.1)
    assert P.passing_chance(e, 5.0) == 0.9 and P.passing_chance(e, -5.0) == 0.2


def _tune_piece(step: float = 2.0) -> Piece:
    """8 bars over I I IV IV V V I I, a chord tone every ``step`` beats."""
    tones = [(72, 76, 79)] * 2 + [(77, 81, 84)] * 2 + [(79, 83, 86)] * 2 + [(72, 76, 79)] * 2
    per_bar = int(round(4 / step))
    mel = [Note(tones[b][k % 3], 4.0 * b + step * k, 0.9 * step, 90) for b in range(8) for k in range(per_bar)]
    return Piece(tracks=[Track("Melody", 0, False, mel), Track("Accompaniment", 0, False, [])],
                 tempos=[Tempo(100.0)], keys=[KeySignature(0, "major")], time_signatures=[TimeSignature(4, 4)])


def _onsets(p: Piece) -> set[float]:
    return {round(x.start, 3) for x in p.notes}


def test_a_busy_player_adds_more_a_sparse_one_less_and_the_bass_moves():
    e = Emotion(0.5, 0.0)
    piece = _tune_piece()  # half notes: the plain budget leaves the whole pattern in
    plain = T.add_texture(piece, e, seed=2)
    assert T.add_texture(piece, e, seed=2, style=S.PLAIN).notes == plain.notes  # no style = the plain rules
    sparse = T.add_texture(piece, e, seed=2, style=S.PlayerStyle(busyness=0.05))
    assert len(sparse.notes) < len(plain.notes)
    assert set(sparse.notes) <= set(plain.notes) or len(_onsets(sparse)) < len(_onsets(plain))
    triplets = _tune_piece(1 / 3)  # three onsets a beat: the plain budget (3 a beat at arousal 0) is full
    busy = T.add_texture(triplets, e, seed=2, style=S.PlayerStyle(busyness=5.0))
    assert len(_onsets(busy)) > len(_onsets(T.add_texture(triplets, e, seed=2)))

    def lowest(p):
        return min(x.pitch for x in p.notes if x.start < 28)  # the final bar's tonic aside

    low_tune, calm = _tune_piece().transposed(-12), Emotion(0.5, -0.5)  # a low tune: the melody leaves the bass room
    got = [lowest(T.add_texture(low_tune, calm, seed=2, style=S.PlayerStyle(bass_shift=s))) for s in (-6, 0, 9)]
    assert got[0] < got[1] < got[2], got
    assert got[0] >= T.bass_floor(calm, -6)  # (a raised floor is also held an octave under the hands' top)
    # a raised bass stays an octave under the hands' top: the chord tones above it still fit under
    # the melody (without that hold a low tune's accompaniment thinned from 51 notes to 6)
    acc = [len(T.add_texture(low_tune, calm, seed=2, style=S.PlayerStyle(bass_shift=s)).tracks[1].notes) for s in (0, 18)]
    assert acc[1] >= 0.6 * acc[0], acc
    for tune in (piece, low_tune):
        out = T.add_texture(tune, calm, seed=2, style=S.PlayerStyle(bass_shift=18))
        mel = tune.tracks[0].notes  # the tune itself (the right hand adds inner voices under it)
        for x in out.tracks[1].notes:
            over = [m.pitch for m in mel if m.start <= x.start < m.end]
            assert not over or x.pitch < min(over), (x, over)
    # the bass still keeps within reach of the melody: a high tune's bass does not follow a lower floor down
    high = [lowest(T.add_texture(piece, calm, seed=2, style=S.PlayerStyle(bass_shift=s))) for s in (-6, 0)]
    assert high[0] == high[1]
    # ... but an excited player who lays the bass lower reaches as much further under the melody
    excited = Emotion(0.5, 0.6)
    high = [lowest(T.add_texture(piece, excited, seed=2, style=S.PlayerStyle(bass_shift=s))) for s in (-6, 0)]
    assert high[0] < high[1] and high[0] >= T.bass_floor(excited, -6), high
    # ... never under E1, at the style's limit and a low tune; in full only from arousal 0.5
    deepest = lowest(T.add_texture(low_tune, Emotion(0.5, 0.9), seed=2, style=S.PlayerStyle(bass_shift=-18)))
    assert T.BASS_LOWEST <= deepest < T.BASS_LOWEST + 12
    mild = [lowest(T.add_texture(piece, Emotion(0.5, a), seed=2, style=S.PlayerStyle(bass_shift=-12))) for a in (0.1, 0.5)]
    assert mild[0] > mild[1], mild


def test_more_colour_means_more_sevenths_and_ninths():
    piece, e = _tune_piece(), Emotion(0.5, 0.0)
    triads = [{0, 4, 7}] * 2 + [{5, 9, 0}] * 2 + [{7, 11, 2}] * 2 + [{0, 4, 7}] * 2  # I I IV IV V V I I under the tune
    counts = []
    for colour in (-1.0, 0.0, 1.0):
        p = T.add_texture(piece, e, seed=4, style=S.PlayerStyle(colour=colour))
        acc = [x for t in p.tracks if t.name != "Melody" for x in t.notes]
        counts.append(sum(x.pitch % 12 not in triads[int(x.start // 4)] for x in acc if x.start < 28))
    assert counts[0] < counts[1] < counts[2], counts  # the chance keeps its floor of 0.2


def test_compose_draws_each_piece_its_style(debug_ckpt, monkeypatch):
    from emomusic.compose import compose

    seen = []
    real = T.add_texture

    def spy(piece, emotion, **kw):
        seen.append(kw.get("style"))
        return real(piece, emotion, **kw)

    monkeypatch.setattr(T, "add_texture", spy)
    compose(Emotion(0.5, 0.5), bars=4, n=3, seed=7, checkpoint=debug_ckpt)
    assert seen == [S.draw_style(7 + i) for i in range(3)]
    seen.clear()
    compose(Emotion(0.5, 0.5), bars=4, n=2, seed=7, checkpoint=debug_ckpt, diversity=0.5)
    assert seen == [S.draw_style(7 + i, 0.5) for i in range(2)]
    seen.clear()
    plain = compose(Emotion(0.5, 0.5), bars=4, n=2, seed=7, checkpoint=debug_ckpt, diversity=0)
    assert seen == [S.PLAIN, S.PLAIN]
    assert [p.notes for p in plain] == [p.notes for p in compose(Emotion(0.5, 0.5), bars=4, n=2, seed=7,
                                                                   checkpoint=debug_ckpt, diversity=0.0)]


@pytest.mark.parametrize("bad", [-0.1, 1.01, "1", True, float("nan"), None])
def test_bad_diversity(debug_ckpt, bad):
    from emomusic.compose import compose

    with pytest.raises(EmomusicError, match="diversity"):
        compose(Emotion(0, 0), checkpoint=debug_ckpt, diversity=bad)
