"""benchmarks/realism.py: the two-sample test, helpers, and a run end to end on tiny data built in code
(a four-quadrant EMOPIA-like folder and an ABC corpus) with the shipped compose and melody models."""

from __future__ import annotations

import json
import math
import random
from types import SimpleNamespace

import numpy as np
import pytest


from helpers import tiny_emopia  # noqa: E402
from emomusic.piece import KeySignature, Note, Piece, Tempo, TimeSignature, Track  # noqa: E402


def _load_bench():
    from helpers import load_benchmark

    return load_benchmark("realism")


def test_c2st_separates_different_sets_and_not_equal_ones():
    bench = _load_bench()
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, (60, 4)), rng.normal(0, 1, (80, 4))
    same = bench.c2st(a, b, seed=1, trees=50)
    assert same["n"] == 60 and abs(same["accuracy"] - 0.5) < 0.2
    far = bench.c2st(a, b + np.array([4.0, 0, 0, 0]), seed=1, trees=50)
    assert far["accuracy"] > 0.95
    assert int(np.argmax(far["importance"])) == 0  # the shifted feature decides
    a[::3, 1] = np.nan  # undefined features are imputed, not fatal
    assert math.isfinite(bench.c2st(a, b, seed=1, trees=50)["accuracy"])
    assert math.isnan(bench.c2st(a[:3], b)["accuracy"])  # fewer pieces than folds


def test_standardized_difference():
    bench = _load_bench()
    real = np.array([[0.0, 1.0], [2.0, 1.0]])
    gen = np.array([[2.0, 1.0], [4.0, 1.0]])
    assert np.allclose(bench.standardized_difference(real, gen), [2.0, 0.0])  # means 1 -> 3, SD 1; constant column 0


def test_forms_crop_and_piece_json():
    bench = _load_bench()

    def with_form(e, *, n=1, form=None):
        return []

    def without(e, *, n=1):
        return []

    assert bench.forms_for(with_form) == [None, "none"] and bench.forms_for(without) == [None]
    assert bench.form_label(None, False) == "form: n/a" and bench.form_label("none", True) == "form: none"
    p = Piece(tracks=[Track("M", 0, False, [Note(60, 0.0, 1.0, 70), Note(62, 6.0, 4.0, 90), Note(64, 9.0, 1.0, 80)])],
              tempos=[Tempo(90.0)], keys=[KeySignature(2, "minor")], time_signatures=[TimeSignature(3, 4)], title="t")
    c = bench.crop(p, 3)  # 9 beats
    assert [(n.pitch, n.duration) for n in c.notes] == [(60, 1.0), (62, 3.0)]
    back = bench.piece_from_json(json.loads(json.dumps(bench.piece_to_json(p))))
    assert back.notes == p.notes and back.tempo == 90.0 and back.key == p.key
    assert back.time_signature.numerator == 3 and back.title == "t"


def test_write_docs_replaces_its_section_only(tmp_path):
    bench = _load_bench()
    doc = tmp_path / "b.md"
    doc.write_text("# Title\n\nkept\n")
    bench.write_docs(doc, "first")
    bench.write_docs(doc, "second")
    text = doc.read_text()
    assert text.startswith("# Title\n\nkept\n") and "second" in text and "first" not in text
    assert text.count(bench.DOC_BEGIN) == 1 and text.count(bench.DOC_END) == 1


# -- end to end --------------------------------------------------------------------------------------------
def _tiny_abc(folder, held=6, rest=10):
    """An ABC file of random-walk tunes; titles chosen so ``held`` of them fall in the melody
    model's validation split (the same hash as emomusic.melody.train)."""
    from emomusic.melody.train import TrainOptions, _is_val

    folder.mkdir(parents=True)
    src = f"{folder.name}/tunes.abc"
    frac = TrainOptions().val_fraction
    titles_held, titles_rest = [], []
    i = 0
    while len(titles_held) < held or len(titles_rest) < rest:
        t = f"Tune {i}"
        (titles_held if _is_val(SimpleNamespace(source=src, title=t), frac) else titles_rest).append(t)
        i += 1
    letters = "CDEFGABcdefg"
    rng = random.Random(0)
    tunes = []
    for x, title in enumerate(titles_held[:held] + titles_rest[:rest]):
        key = "Am" if x % 2 else "G"
        pos, bars = 4, []
        for _ in range(8):
            notes = []
            for _ in range(8):
                pos = max(0, min(len(letters) - 1, pos + rng.choice((-2, -1, 1, 2))))
                notes.append(letters[pos])
            bars.append("".join(notes[:4]) + " " + "".join(notes[4:]))
        tunes.append(f"X:{x + 1}\nT:{title}\nM:4/4\nL:1/8\nK:{key}\n" + "|".join(bars) + "|]\n")
    (folder / "tunes.abc").write_text("\n".join(tunes))
    return folder


@pytest.mark.slow
def test_realism_benchmark_end_to_end(tmp_path, capsys):
    bench = _load_bench()
    from emomusic.errors import CheckpointError
    from emomusic.estimator import load_estimator

    try:
        load_estimator()
    except CheckpointError as exc:
        pytest.skip(f"estimator not available: {exc}")
    emopia = tiny_emopia(tmp_path / "emopia")
    abc = _tiny_abc(tmp_path / "abc")
    doc = tmp_path / "bench.md"
    doc.write_text("# Benchmarks\n")
    cache = tmp_path / "cache"
    args = ["--n", "20", "--bars", "8", "--trees", "16", "--emopia", str(emopia), "--abc", str(abc), "--cache", str(cache),
            "--json", str(tmp_path / "r.json"), "--write-docs", str(doc), "--repeats", "2"]
    assert bench.main(args) == 0
    out = capsys.readouterr().out
    res = json.loads((tmp_path / "r.json").read_text())
    for engine in ("compose", "melody"):
        rows = res[engine]["c2st"]
        gen = [k for k in rows if not k.startswith("real vs real")]
        assert gen and all("form: " in k for k in gen)
        assert any(k.startswith("real vs real") for k in rows)
        for r in rows.values():
            assert 0.0 <= r["all"]["accuracy"] <= 1.0 and r["all"]["n"] >= 5
            assert set(r) == {"all", "Q1", "Q2", "Q3", "Q4"}
        assert set(res[engine]["arousal"][gen[0].split(" vs ")[0]]) == {"all", "Q1", "Q2", "Q3", "Q4"}
        # --repeats 2: the first set's pooled accuracy and one more generated set, averaged
        reps = res[engine]["repeats"]
        assert set(reps) == {k.split(" vs ")[0] for k in gen}
        for label, v in reps.items():
            assert len(v["accuracy"]) == 2 and v["accuracy"][0] == rows[f"{label} vs {gen[0].split(' vs ')[1]}"]["all"]["accuracy"]
            assert v["mean"] == pytest.approx(np.mean(v["accuracy"])) and v["sd"] == pytest.approx(np.std(v["accuracy"]))
    assert "C2ST over 2 generated sets" in out
    tex = res["compose"]["texture"]
    assert set(tex) == {"Q1", "Q2", "Q3", "Q4"}
    lo, hi = tex["Q1"]["ranges"]["notes_per_beat"]
    assert 0 < lo <= hi
    assert "Texture targets" in out and "Arousal-axis agreement" in out and "| repeated_pattern_share |" in out
    dens = res["compose"]["notes_per_second"]
    assert set(dens) == {"Q1", "Q2", "Q3", "Q4"} and "Density in real time" in out
    # the tiny clips: Q1 eighth-note triads at 120 BPM (6 notes a second plus a bass every 2 s), Q4 quarter notes
    assert dens["Q1"]["real"] > dens["Q4"]["real"] > 0 and all(v > 0 for v in dens["Q1"]["generated"].values())
    text = doc.read_text()
    assert text.startswith("# Benchmarks\n") and text.count(bench.DOC_BEGIN) == 1
    files = sorted(cache.iterdir())
    assert any(f.name.startswith("compose_") for f in files) and any(f.name.startswith("heldout_") for f in files)
    # a rerun takes the pieces from the cache and replaces the docs section
    assert bench.main(args) == 0
    assert json.loads((tmp_path / "r.json").read_text())["compose"]["c2st"] == res["compose"]["c2st"]
    assert doc.read_text().count(bench.DOC_BEGIN) == 1
    # bad input: one line, exit 2
    assert bench.main(["--engines", "compose", "--emopia", str(tmp_path / "missing")]) == 2
    assert "Error: no EMOPIA split listing" in capsys.readouterr().err


def test_generated_pieces_are_cached_per_version_of_the_code(tmp_path, monkeypatch):
    import emomusic

    bench = _load_bench()
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "a.py").write_text("X = 1\n")
    monkeypatch.setattr(emomusic, "__file__", str(pkg / "__init__.py"))
    first = bench.code_fingerprint()
    assert first == bench.code_fingerprint() and len(first) == 16
    (pkg / "sub" / "a.py").write_text("X = 2\n")
    assert bench.code_fingerprint() != first  # an edited engine makes its pieces again


def test_notes_per_second_follows_the_tempo():
    bench = _load_bench()
    notes = [Note(60 + k % 3, 0.5 * k, 0.5, 80) for k in range(16)]  # 16 eighth notes: 8 beats
    for bpm, want in ((120.0, 16 / 4.0), (60.0, 16 / 8.0)):
        p = Piece(tracks=[Track("P", 0, False, notes)], tempos=[Tempo(bpm)])
        assert bench.notes_per_second(p) == pytest.approx(want)
    assert math.isnan(bench.notes_per_second(Piece(tracks=[Track("P", 0, False, [])])))

