"""The autoregressive REMI baseline on its debug preset, with tiny token data built in code."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from emomusic.compose.baseline import (
    Baseline,
    BaselineConfig,
    TokenGrammar,
    encode_piece,
    make_tokenizer,
    train_baseline,
)
from emomusic.emotion import Emotion  # noqa: E402
from emomusic.errors import CheckpointError, EmomusicError  # noqa: E402
from emomusic.piece import Note, Piece, Track  # noqa: E402


@pytest.fixture(scope="module")
def tokenizer():
    return make_tokenizer()


def _tiny_piece(seed: int, bars: int = 4) -> Piece:
    rng = np.random.default_rng(seed)
    notes = [Note(int(rng.integers(48, 80)), b * 4 + k, 1.0, int(rng.integers(40, 110))) for b in range(bars) for k in range(4)]
    return Piece(tracks=[Track("Piano", 0, False, notes)])


@pytest.fixture(scope="module")
def tiny_data(tokenizer):
    quads = [(0.6, 0.6), (-0.6, 0.6), (-0.6, -0.6), (0.6, -0.6)]
    return [(encode_piece(tokenizer, _tiny_piece(i)), quads[i % 4], f"Q{i % 4 + 1}_song{i}_0.mid") for i in range(8)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_data, tokenizer):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("baseline")
    res = train_baseline(tiny_data, out, BaselineConfig.preset_config("debug"), tokenizer=tokenizer, steps=2,
                         val_data=tiny_data[:2], progress=False, log_every=1)
    return out, res


def test_config_round_trip_and_presets():
    cfg = BaselineConfig.preset_config("debug")
    assert BaselineConfig.from_json(cfg.to_json()) == cfg
    assert BaselineConfig.preset_config("default").d_model > cfg.d_model
    with pytest.raises(EmomusicError):
        BaselineConfig.preset_config("huge")
    with pytest.raises(CheckpointError):
        BaselineConfig.from_dict({**cfg.to_dict(), "bogus": 1})


def test_tokens_round_trip_and_grammar(tokenizer):
    piece = _tiny_piece(3)
    ids = encode_piece(tokenizer, piece)
    g = TokenGrammar(tokenizer)
    assert ids[0] == g.bar_id and (ids == g.bar_id).sum() == 4
    # every consecutive pair of real tokens is allowed by the grammar
    types = g.type_of[ids]
    assert all(g.next_mask[a, b] for a, b in zip(types[:-1], ids[1:]))
    # transposition table moves pitch tokens only
    up = g.transpose_table(2)
    shifted = up[ids]
    assert (g.pitch_of[shifted[g.pitch_of[ids] >= 0]] == g.pitch_of[ids[g.pitch_of[ids] >= 0]] + 2).all()


def test_two_step_training_writes_checkpoint_and_log(trained):
    out, res = trained
    assert res.steps == 2 and np.isfinite(res.final_loss) and np.isfinite(res.val_loss)
    names = {p.name for p in out.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "loss_log.csv", "train_state.json"} <= names
    rows = (out / "loss_log.csv").read_text().strip().splitlines()
    assert rows[0] == "step,loss,lr,seconds" and len(rows) == 3
    assert json.loads((out / "train_state.json").read_text())["step"] == 2


def test_resume_continues_step_count(trained, tiny_data, tmp_path):
    import shutil

    out, _ = trained
    copy = tmp_path / "resume"
    shutil.copytree(out, copy)
    res = train_baseline(tiny_data, copy, steps=3, progress=False, log_every=1)
    assert res.steps == 3
    assert len((copy / "loss_log.csv").read_text().strip().splitlines()) == 4  # header + 3 steps


def test_generate_shapes_seeds_and_guidance(trained):
    out, _ = trained
    model = Baseline.load(out)
    pieces = model.generate(Emotion(0.7, -0.3), bars=3, n=2, seed=5)
    assert len(pieces) == 2
    for p in pieces:
        p.validate()
        assert p.end_beat <= 12.0 + 1e-9 and all(n.start < 12 for n in p.notes)
        assert p.markers and "v=0.70" in p.markers[0].text
    again = model.generate(Emotion(0.7, -0.3), bars=3, n=2, seed=5)
    assert [p.notes for p in again] == [p.notes for p in pieces]
    other = model.generate(Emotion(0.7, -0.3), bars=3, n=2, seed=6)
    assert [p.notes for p in other] != [p.notes for p in pieces]
    ids = model.generate_ids(Emotion(-0.9, 0.9), bars=2, n=1, seed=0, guidance=3.0)[0]
    assert ids[0] == model.grammar.bar_id and ids.count(model.grammar.bar_id) <= 2
    with pytest.raises(EmomusicError):
        model.generate(Emotion(0, 0), bars=0)


def test_long_generation_slides_past_the_context(trained):
    out, _ = trained
    model = Baseline.load(out)
    assert model.cfg.max_len == 64
    e = Emotion(0.1, 0.1)
    ids = model.generate_ids(e, bars=3, n=1, seed=1, max_tokens=200)[0]
    assert len(ids) > model.cfg.max_len  # untrained debug model rarely emits bars: the window slid
    # before the first slide the sampling path is the same as a run stopped there
    short = model.generate_ids(e, bars=3, n=1, seed=1, max_tokens=model.cfg.max_len)[0]
    assert ids[: len(short)] == short and len(short) == model.cfg.max_len
    # across the slide every token is still one the grammar allows after the one before
    g = model.grammar
    assert ids[0] == g.bar_id
    for a, b in zip(ids, ids[1:]):
        assert g.next_mask[g.type_of[a], b], (a, b)
    assert sum(t == g.bar_id for t in ids) <= 3 and g.pad_id not in ids
    # and the tokens after the slide are not a replay of the tokens before it
    assert ids[model.cfg.max_len:model.cfg.max_len + 16] != ids[:16]
    piece = model.ids_to_piece(ids, e, bars=3)
    assert piece.end_beat <= 12.0 and all(n.start < 12.0 for n in piece.notes)


def test_save_load_round_trip(trained, tmp_path):
    out, _ = trained
    model = Baseline.load(out)
    model.save(tmp_path / "copy")
    again = Baseline.load(tmp_path / "copy")
    for (k, a), (_, b) in zip(model.net.state_dict().items(), again.net.state_dict().items()):
        assert torch.equal(a, b), k
    e = Emotion(-0.5, 0.5)
    assert model.generate(e, bars=2, seed=3)[0].notes == again.generate(e, bars=2, seed=3)[0].notes


def test_bad_checkpoints(tmp_path, trained):
    with pytest.raises(CheckpointError):
        Baseline.load(tmp_path / "missing")
    import shutil

    out, _ = trained
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    cfg = json.loads((bad / "config.json").read_text())
    cfg["d_model"] = 48
    (bad / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError):
        Baseline.load(bad)


def test_cli_train_baseline_bad_input(tmp_path):
    from click.testing import CliRunner

    from emomusic.cli import cli, main

    r = CliRunner().invoke(cli, ["train", "baseline", "--data", str(tmp_path), "--out", str(tmp_path / "o")])
    assert r.exit_code != 0
    with pytest.raises(SystemExit) as exc:
        main(["train", "baseline", "--data", str(tmp_path), "--out", str(tmp_path / "o")])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["train", "baseline", "--data", str(tmp_path), "--out", str(tmp_path / "o"), "--steps", "0"])
    assert exc.value.code == 2
    assert not (tmp_path / "o").exists()


def test_cli_train_baseline_on_tiny_emopia(tmp_path, tokenizer):
    """The CLI end to end on a 4-clip EMOPIA-shaped folder built in code."""
    from click.testing import CliRunner

    from emomusic.cli import cli
    from emomusic.io import write_piece

    root = tmp_path / "emopia"
    (root / "midis").mkdir(parents=True)
    (root / "split").mkdir()
    names = [f"Q{q}_song{q}_0.mid" for q in (1, 2, 3, 4)]
    for i, nm in enumerate(names):
        write_piece(_tiny_piece(i), root / "midis" / nm)
    (root / "split" / "train_clip.csv").write_text(",clip_name\n" + "".join(f"{i},{n}\n" for i, n in enumerate(names)))
    (root / "split" / "val_clip.csv").write_text(",clip_name\n0,Q1_never_0.mid\n")
    out = tmp_path / "ckpt"
    r = CliRunner().invoke(cli, ["train", "baseline", "--data", str(root), "--out", str(out), "--preset", "debug",
                                 "--steps", "2", "--threads", "1", "--val-share", "0", "--cache", str(tmp_path / "cache")])
    assert r.exit_code == 0, r.output
    assert (out / "MODEL_CARD.md").is_file() and "train_clip.csv" in (out / "MODEL_CARD.md").read_text()
    Baseline.load(out).generate(Emotion(0.2, 0.2), bars=1)


def test_half_precision_final_save_keeps_config(tiny_data, tokenizer, tmp_path):
    """Intermediate saves are float32 resume points; the final save uses cfg.save_dtype."""
    from safetensors import safe_open

    cfg = BaselineConfig.preset_config("debug")
    cfg.save_dtype = "float16"
    out = tmp_path / "half"
    train_baseline(tiny_data, out, cfg, tokenizer=tokenizer, steps=2, save_every=1, progress=False)
    assert json.loads((out / "config.json").read_text())["save_dtype"] == "float16"
    with safe_open(str(out / "model.safetensors"), "pt") as f:
        assert f.get_tensor("tok.weight").dtype == torch.float16
    assert not (out / "train_state.json").exists()
    Baseline.load(out).generate(Emotion(0.0, 0.0), bars=1)


@pytest.mark.parametrize("va", [(1.0, 1.0), (-1.0, -1.0), (0.0, 0.0), (1.0, -1.0), (-1.0, 1.0)])
def test_valid_pieces_for_any_emotion(trained, va):
    out, _ = trained
    model = Baseline.load(out)
    for p in model.generate(Emotion(*va), bars=2, n=2, seed=11):
        p.validate()
        assert all(21 <= n.pitch <= 108 and n.start < 8 for n in p.notes)
