"""benchmarks/compose.py end to end in --quick mode on debug models and tiny data built in code."""

from __future__ import annotations

import json

import numpy as np
import pytest

import torch

from emomusic.piece import Note, Piece, Track


def _tiny_piece(seed: int, bars: int = 4) -> Piece:
    rng = np.random.default_rng(seed)
    notes = [Note(int(rng.integers(48, 80)), b * 4 + k, 1.0, int(rng.integers(40, 110))) for b in range(bars) for k in range(4)]
    return Piece(tracks=[Track("Piano", 0, False, notes)])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from emomusic.compose.baseline import BaselineConfig, encode_piece, make_tokenizer, train_baseline

    torch.set_num_threads(1)
    tok = make_tokenizer()
    quads = [(0.6, 0.6), (-0.6, 0.6), (-0.6, -0.6), (0.6, -0.6)]
    data = [(encode_piece(tok, _tiny_piece(i)), quads[i % 4]) for i in range(8)]
    out = tmp_path_factory.mktemp("baseline")
    res = train_baseline(data, out, BaselineConfig.preset_config("debug"), tokenizer=tok, steps=2, progress=False)
    return out, res


def _load_bench():
    from helpers import load_benchmark

    return load_benchmark("compose")


def _need_estimator():
    """The shipped estimator loads (a missing or broken one fails the test, never skips it)."""
    from emomusic.estimator import load_estimator

    load_estimator()


def _tiny_emopia(root):
    from emomusic.io import write_piece

    (root / "midis").mkdir(parents=True)
    (root / "split").mkdir()
    for split, ids in (("train", range(0, 6)), ("val", range(6, 9))):
        names = [f"Q{i % 4 + 1}_s{i}_0.mid" for i in ids]
        for i, nm in zip(ids, names):
            write_piece(_tiny_piece(i, bars=6), root / "midis" / nm)
        (root / "split" / f"{split}_clip.csv").write_text(",clip_name\n" + "".join(f"{k},{n}\n" for k, n in enumerate(names)))
    return root


QUICK = ["--quick", "--per-quadrant", "2", "--bars", "2", "--sweep", "3", "--sweep-seeds", "1", "--speed-reps", "1",
         "--speed-bars", "2", "--batch", "2", "--no-cold-start"]


@pytest.mark.slow
def test_compose_benchmark_quick_end_to_end(trained, tmp_path):
    """benchmarks/compose.py --quick on the debug baseline, a tiny EMOPIA-shaped folder and the
    shipped estimator."""
    _need_estimator()
    bench = _load_bench()
    root = _tiny_emopia(tmp_path / "emopia")
    out, _ = trained
    js = tmp_path / "bench.json"
    md = tmp_path / "bench.md"
    cache = tmp_path / "pieces"
    args = QUICK + ["--emopia", str(root), "--baseline-checkpoint", str(out), "--systems", "baseline,baseline-no-template",
                    "--json", str(js), "--markdown", str(md), "--piece-cache", str(cache)]
    res = bench.run(args)
    assert set(res["emotion"]) == {"baseline", "baseline-no-template"}
    for name, r in res["emotion"].items():
        assert r["n"] == 8 and 0 <= r["empty_pieces"] <= 8
        pq = r["per_quadrant"]
        assert set(pq) == {"Q1", "Q2", "Q3", "Q4"}
        assert all(v in (0.0, 0.5, 1.0) for v in pq.values())  # 2 pieces per quadrant
        assert r["quadrant"] == pytest.approx(sum(pq.values()) / 4)  # equal quadrants: the mean of the four
        for axis in ("valence", "arousal"):
            assert r[axis] * 8 == pytest.approx(round(r[axis] * 8))
        # a piece in the right quadrant is right on both axes, and one right on both is in it
        assert r["quadrant"] <= min(r["valence"], r["arousal"]) + 1e-9
        assert r["quadrant"] >= r["valence"] + r["arousal"] - 1 - 1e-9
        assert 0.0 <= r["arousal_no_velocity"] <= 1.0 and set(r["arousal_no_velocity_per_quadrant"]) == {"Q1", "Q2", "Q3", "Q4"}
        assert all(v in (0.0, 0.5, 1.0) for v in r["arousal_no_velocity_per_quadrant"].values())
        assert r["arousal_no_velocity"] == pytest.approx(sum(r["arousal_no_velocity_per_quadrant"].values()) / 4)
    assert set(res["continuous"]["baseline"]) == {"valence", "arousal"}
    q = res["quality"]["baseline"]
    assert 0.0 <= q["oa"]["mean"] <= 1.0 and "near_copy" in q and "diversity" in q
    assert res["speed"]["baseline-no-template"]["single_s"] > 0
    assert json.loads(js.read_text())["meta"]["quick"] is True
    text = md.read_text()
    assert "### Emotion control" in text
    row = next(line for line in text.splitlines() if line.startswith("| baseline |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    r = res["emotion"]["baseline"]
    assert float(cells[1]) == pytest.approx(r["quadrant"], abs=5e-3) and cells[8] == "8"
    assert [float(c) for c in cells[4:8]] == [pytest.approx(r["per_quadrant"][q], abs=5e-3) for q in ("Q1", "Q2", "Q3", "Q4")]
    # a second run reads the raw pieces from the cache and measures the same
    assert any(cache.iterdir())
    again = bench.run(args[:-2] + ["--piece-cache", str(cache), "--sections", "emotion"])
    assert again["emotion"] == res["emotion"]
    # the benchmark reports a missing system instead of crashing
    assert bench.main(["--quick", "--emopia", str(root), "--systems", "random-latent,diffgan", "--sections", "emotion",
                       "--compose-checkpoint", str(tmp_path / "no-such-checkpoint")]) == 2


@pytest.mark.slow
def test_compose_benchmark_quick_with_debug_engine(tmp_path):
    """The same quick run on the engine's debug checkpoint (diffgan and random latents)."""
    _need_estimator()
    from helpers import load_file

    ckpt = load_file("tests/compose/tiny.py").make_debug_checkpoint(tmp_path / "engine")
    bench = _load_bench()
    root = _tiny_emopia(tmp_path / "emopia")
    res = bench.run(QUICK + ["--emopia", str(root), "--compose-checkpoint", str(ckpt),
                             "--systems", "diffgan,diffgan-no-template,diffgan-no-texture,random-latent,random-latent-no-template"])
    assert not res["skipped"], res["skipped"]
    assert set(res["emotion"]) == {"diffgan", "diffgan-no-template", "diffgan-no-texture", "random-latent",
                                   "random-latent-no-template"}
    sp = res["speed"]["diffgan"]
    assert sp["single_s"] > 0 and sp["batch"] == 2 and sp["rtf_batch"] > 0
