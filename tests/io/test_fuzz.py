"""A small fuzz test: mutated MIDI and ABC files are read in a subprocess under a memory
limit; every one gives a Piece or a one-line PieceFormatError, within a time bound each.

(Issue #13: corrupt ABC hung music21's metre code or took gigabytes; corrupt MIDI gave
empty reasons or tens of gigabytes when rendered.)"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap

import pytest

from emomusic.io import write_piece

PER_FILE_SECONDS = 4.0  # the parse time limit inside the child (emomusic.limits.PARSE_SECONDS)
MEMORY_LIMIT = 4 << 30  # address space of the child process

CHILD = textwrap.dedent("""
    import json, resource, sys, time
    from emomusic import limits
    from emomusic.errors import EmomusicError
    from emomusic.io import read_piece
    limits.PARSE_SECONDS = float(sys.argv[1])
    for path in sys.argv[2:]:
        t0 = time.perf_counter()
        try:
            p = read_piece(path)
            status, msg = "ok", f"{len(p.notes)} notes, {p.duration_seconds:.0f} s"
        except EmomusicError as exc:
            status, msg = "error", str(exc)
        except BaseException as exc:
            status, msg = "EXC", f"{type(exc).__name__}: {exc}"[:300]
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps({"file": path, "status": status, "msg": msg, "s": time.perf_counter() - t0, "rss": rss}),
              flush=True)
""")


def _limit():
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def _mutate_abc(text: str, rng: random.Random) -> str:
    pieces = ["M:", "L:", "Q:", "K:", "V:", "[M:", "[L:", "(", "|:", ":|", "[", "]", "-", "/", ">", "^", "z", "!",
              '"', "{", "}", "\n"]
    t = list(text)
    for _ in range(rng.randint(1, 5)):
        op, i = rng.random(), rng.randrange(len(t))
        if op < 0.3:
            t[i] = chr(rng.randint(32, 126))
        elif op < 0.6:
            num = rng.choice([rng.randint(0, 9), rng.randint(10, 99999), -rng.randint(1, 99)])
            t[i:i] = list(f"{rng.choice(pieces)}{num}{rng.choice(['', '/', '/1', '/4', '/3', '=', '=120', ']'])}")
        elif op < 0.75:
            t[i:i] = list(str(rng.randint(0, 10 ** rng.randint(1, 6))))
        elif op < 0.9:
            j = rng.randrange(len(t))
            t[i:i] = t[min(i, j):max(i, j)][:400]
        else:
            del t[i:i + rng.randint(1, 20)]
    return "".join(t)


def _mutate_midi(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op, i = rng.random(), rng.randrange(14, len(b))
        if op < 0.4:
            b[i] = rng.randrange(256)
        elif op < 0.55:
            b[i:i] = bytes([0xFF, 0xFF, 0xFF, 0x7F])  # a huge delta time
        elif op < 0.7:
            b = b[:i]  # truncated
        elif op < 0.8:
            b[12:14] = rng.choice([b"\x00\x00", b"\xff\xff", b"\x00\x01", b"\x80\x00"])  # PPQ / SMPTE
        elif op < 0.9:
            j = rng.randrange(14, len(b))
            b[i:i] = b[min(i, j):max(i, j)]
        else:
            b[i:i] = bytes([0x90, rng.randrange(128), rng.randrange(128)]) * rng.randint(1, 50)
        if len(b) < 16:
            break
    return bytes(b)


def test_mutated_files_are_read_or_refused_in_bounded_time_and_memory(tmp_path, piano_piece):
    rng = random.Random(13)
    base_mid = tmp_path / "base.mid"
    write_piece(piano_piece, base_mid)
    data = base_mid.read_bytes()
    abc = ("X:1\nT:fuzz\nM:6/8\nL:1/8\nQ:3/8=90\nK:Am\n"
           '"Am"A2B c2d|e3 e2d|"G"(3cBA G2E|[M:3/4]"Am"A6|]\n')
    files = []
    for k in range(80):
        f = tmp_path / f"m{k:03d}.mid"
        f.write_bytes(_mutate_midi(data, rng))
        files.append(f)
    for k in range(30):
        f = tmp_path / f"a{k:03d}.abc"
        f.write_text(_mutate_abc(abc, rng), encoding="utf-8")
        files.append(f)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-c", CHILD, str(PER_FILE_SECONDS), *map(str, files)], capture_output=True,
                       text=True, env=env, preexec_fn=_limit, timeout=len(files) * (PER_FILE_SECONDS + 2) + 60)
    assert r.returncode == 0, r.stderr[-3000:]
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(rows) == len(files)
    bad = [row for row in rows if row["status"] == "EXC"]
    assert not bad, bad[:3]
    for row in rows:
        assert row["s"] < PER_FILE_SECONDS + 2, row
        assert "\n" not in row["msg"] and not row["msg"].rstrip().endswith(":"), row
    assert max(row["rss"] for row in rows) < 2048, max(row["rss"] for row in rows)
    errors = sum(row["status"] == "error" for row in rows)
    assert 10 < errors < len(rows)  # the mutations do break files, and not all of them
