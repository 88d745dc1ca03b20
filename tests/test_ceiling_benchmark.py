"""benchmarks/ceiling.py: real music through each stage of the compose engine, on a tiny
EMOPIA-like folder built in code, with the shipped checkpoint."""

from __future__ import annotations

from helpers import load_benchmark, tiny_emopia


def test_roll_and_latent_stages_on_real_clips():
    from emomusic.compose.api import ComposeEngine
    from emomusic.piece import Note, Piece, Track

    bench = load_benchmark("ceiling")
    eng = ComposeEngine.load(None)
    # a clip on the 16th-note grid survives the roll exactly (sorted: pitch, start, duration)
    notes = [Note(60 + k % 5, 0.5 * k, 0.5, 80) for k in range(16)] + [Note(48, 0.0, 4.0, 70), Note(43, 4.0, 4.0, 70)]
    clip = Piece(tracks=[Track("Piano", 0, False, notes)])
    back = bench.roll_pieces(eng, [clip], bars=2)[0]
    key = lambda ns: sorted((n.pitch, round(n.start, 6), round(n.duration, 6)) for n in ns)  # noqa: E731
    assert key(back.notes) == key(notes)
    # the clip's own latents through compose: a piece of the asked length, notes from those latents
    lat = eng.encode([clip])[0]
    assert lat.shape == (1, eng.vae.cfg.latent_dim)
    a, b = (bench.latent_pieces(eng, [lat], ["Q1"], bars=2, texture=False, seed=s, checkpoint=None)[0] for s in (0, 1))
    assert a.notes and max(n.end for n in a.notes) <= 8.0 + 1e-9
    assert [(n.pitch, n.start) for n in a.notes] == [(n.pitch, n.start) for n in b.notes]  # the latents decide, not the seed
    other = eng.encode([Piece(tracks=[Track("Piano", 0, False, [Note(84 - k, 0.25 * k, 0.25, 80) for k in range(32)])])])[0]
    c = bench.latent_pieces(eng, [other], ["Q1"], bars=2, texture=False, seed=0, checkpoint=None)[0]
    assert [(n.pitch, n.start) for n in c.notes] != [(n.pitch, n.start) for n in a.notes]


def test_ceiling_end_to_end_on_tiny_data(tmp_path, capsys):
    bench = load_benchmark("ceiling")
    emopia = tiny_emopia(tmp_path / "emopia", per_quadrant=6)
    doc = tmp_path / "b.md"
    doc.write_text("# x\n\nbefore\n\n<!-- ceiling:begin -->\nSTALE BLOCK\n<!-- ceiling:end -->\n\nafter\n")
    assert bench.main(["--emopia", str(emopia), "--bars", "8", "--repeats", "2", "--trees", "20",
                       "--write-docs", str(doc)]) == 0
    out = capsys.readouterr().out
    rows = [ln for ln in out.splitlines() if ln.startswith("| ") and "**" in ln]
    labels = [ln.split(" | ")[0][2:] for ln in rows]
    assert [lb.split(":")[0] for lb in labels] == ["real", "roll", "vae", "vae", "latents", "latents", "model", "model"]
    accs = [float(ln.split("**")[1]) for ln in rows]
    assert all(0.0 <= x <= 1.0 for x in accs)
    assert min(accs[-2:]) > 0.7  # the tiny clips (plain triads) are easy to tell from compose pieces
    text = doc.read_text()
    assert "before" in text and "after" in text and "STALE BLOCK" not in text and "Pipeline ceiling" in text
    assert bench.main(["--emopia", str(tmp_path / "missing")]) == 2
    assert "Error:" in capsys.readouterr().err
