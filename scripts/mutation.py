"""Mutation testing of emomusic's core with mutmut, one module at a time.

    python scripts/mutation.py                       # every module in MODULES
    python scripts/mutation.py emotion attributes    # some of them
    python scripts/mutation.py --list                # the table of modules and their tests

For each module this builds a scratch copy of the repository under ``build/mutation/<name>``
(the package, the tests and a ``pyproject.toml`` whose ``[tool.mutmut]`` section names that
module and its test selection), runs ``mutmut run`` there, and prints the score: killed mutants
(timeouts count as killed: the mutant made the tests hang) over all generated mutants.
Surviving mutants (and those no selected test reaches) are written with their diffs to
``build/mutation/<name>/survivors.txt``; ``--report FILE`` writes the table as Markdown.

Each module gets a small, fast test selection (no neural training, no subprocess CLI tests):
mutmut runs, for every mutant, only the selected tests that call the mutated function.
Before mutmut starts, the selection runs once on the unmutated copy (``--no-preflight`` skips
it): a failing test there would only make mutmut say "failed to collect stats"; the preflight
prints the failure instead.
One worker by default (``--max-children``), OMP_NUM_THREADS=1. Not part of CI: a full run takes
tens of minutes on two cores. docs/testing.md records the scores.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BUILD = REPO / "build" / "mutation"


@dataclass(frozen=True)
class Module:
    source: str  # the file to mutate, relative to the repository
    tests: tuple[str, ...]  # pytest selection (files or node ids), relative to the repository
    note: str = ""
    # a documented subset: mutate only these top-level functions of the file (default: all of it)
    functions: tuple[str, ...] = ()

    def patterns(self) -> list[str]:
        """mutmut mutant-name patterns for ``functions`` (none: every mutant of the file)."""
        stem = self.source[:-3].replace("/", ".")
        return [f"{stem}.x_{f}__mutmut_*" for f in self.functions]

    def selected(self, key: str) -> bool:
        return not self.functions or any(fnmatch.fnmatch(key, p) for p in self.patterns())


ABC_TESTS = ("tests/io/test_abc.py", "tests/io/test_properties.py", "-k",
             "not abc2midi and not midi and not bytes and not nottingham")

MODULES: dict[str, Module] = {
    "emotion": Module("emomusic/emotion.py", ("tests/test_emotion.py",)),
    # apply_template's "mode" branch is checked by tests/test_modes.py (the mode control's tests)
    "attributes": Module("emomusic/attributes.py", ("tests/test_attributes.py", "tests/test_modes.py")),
    "modes": Module("emomusic/modes.py", ("tests/test_modes.py",)),
    "estimator": Module("emomusic/estimator.py", ("tests/test_estimator.py",)),
    # midi.py in two halves (a full run with the byte fuzzers takes hours on two shared cores):
    # the writer, checked by round trips and mido / pretty_midi, and the reader
    "io_midi": Module("emomusic/io/midi.py", ("tests/io/test_midi.py", "tests/io/test_properties.py", "-k",
                                             "not abc and not bytes and not music21"),
                      functions=("piece_to_midifile", "_assign_channels", "_merged_pedals", "_to_track",
                                 "end_beat_bar_rounded", "key_to_mido", "write_midi", "_gm_name", "key_name")),
    # the reader: hand-built files (test_midi_read), the limits on hostile files (test_limits),
    # round trips and the byte fuzzers (test_properties)
    "io_midi_reader": Module("emomusic/io/midi.py", ("tests/io/test_midi_read.py", "tests/io/test_midi.py",
                                                    "tests/io/test_limits.py", "tests/io/test_properties.py", "-k",
                                                    "not abc and not music21"),
                             functions=("read_midi", "parse_key_name", "_text", "_midi_reason", "_pedal_event")),
    # the ABC writer (emomusic/io/abc_write.py; the reader, abc.py, goes through music21), in two
    # parts: its spelling, length and dynamics rules, checked by the tests that compare written
    # ABC with hand-written text and music21's key tables (no round trip: seconds a mutant), and
    # the layout (headers, voices, bars; 513 mutants) with every writer test, most of which read
    # the ABC back through music21 (hours on two shared cores). abc2midi's own tests are slow
    # and check abc2midi; the writer's behaviour is in the rest. write_abc (three lines: the
    # writer's text to a file) stays in abc.py with the other file-level entries
    "io_abc": Module("emomusic/io/abc_write.py", ("tests/io/test_abc.py", "-k",
                                                  "writer or spelling or key_names or headers_and_voices or drums_are_left_out"),
                     functions=("key_abc_name", "_key_fifths", "_key_alters", "_spelling_table", "_pitch_text",
                                "_length_text", "_split_units", "_dynamic", "_escape")),
    "io_abc_layout": Module("emomusic/io/abc_write.py", ABC_TESTS, functions=("piece_to_abc", "_voice_body")),
    "melody_validate": Module("emomusic/melody/validate.py", (
        "tests/melody/test_validate.py", "tests/melody/test_generate.py::test_validators_reject_broken_abc")),
    # the planner's rules (StepRule, clip lengths, tempi) live in schedule.py since the session split
    "planner": Module("emomusic/session/schedule.py", ("tests/session/test_schedule.py", "tests/session/test_planner.py")),
    "audio": Module("emomusic/audio.py", ("tests/test_audio.py",)),
    # compose's per-piece articulation (note lengths scaled to a polyphony drawn from real music)
    "articulation": Module("emomusic/compose/articulation.py", ("tests/compose/test_articulation.py",)),
    # compose's per-piece player style (texture settings drawn from the piece's seed)
    "style": Module("emomusic/compose/style.py", ("tests/compose/test_style.py",)),
    # compose's passing notes, neighbour notes and quick repeats turned into neighbours
    "passing": Module("emomusic/compose/passing.py", ("tests/compose/test_passing.py",)),
}

# mutmut exit-code meaning (mutmut.stats.status_by_exit_code)
KILLED = {1, 3, -24, 24, 152, 255, 36}  # test failure / pytest internal error / timeout
SURVIVED = {0}
NO_TESTS = {5, 33}


def _status(code: int | None) -> str:
    if code in KILLED:
        return "killed"
    if code in SURVIVED:
        return "survived"
    if code in NO_TESTS:
        return "no tests"
    if code is None:
        return "not checked"
    return "suspicious"


def _existing(tests: tuple[str, ...]) -> list[str]:
    """The selected tests whose file exists in this checkout (a module's new test file may not);
    pytest options (``-k EXPR``) pass through."""
    out, option = [], False
    for t in tests:
        if option or t.startswith("-"):
            out.append(t)
            option = t.startswith("-") and "=" not in t
        elif (REPO / t.split("::")[0]).exists():
            out.append(t)
    return out


def _pyproject(module: Module) -> str:
    """The repository's pyproject.toml plus a [tool.mutmut] section for ``module``."""
    text = (REPO / "pyproject.toml").read_text()
    tests = ", ".join(json.dumps(t) for t in _existing(module.tests))
    return (
        text
        + "\n[tool.mutmut]\n"
        + 'source_paths = ["emomusic"]\n'
        + 'also_copy = ["scripts", "benchmarks"]\n'
        + f"only_mutate = [{json.dumps(module.source)}]\n"
        + f"pytest_add_cli_args_test_selection = [{tests}]\n"
        + 'pytest_add_cli_args = ["-p", "no:cacheprovider", "-p", "no:benchmark", "-W", "ignore"]\n'
        + 'process_isolation = "forkserver"\n'
        + "timeout_multiplier = 10.0\n"
        + "use_git_change_detection = false\n"
    )


def _prepare(name: str, module: Module, keep: bool) -> Path:
    work = BUILD / name
    if work.exists() and not keep:
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for sub in ("emomusic", "tests", "scripts", "benchmarks"):  # shipped files are package data in emomusic/
        if (work / sub).exists():
            shutil.rmtree(work / sub)
        shutil.copytree(REPO / sub, work / sub, ignore=ignore)
    (work / "pyproject.toml").write_text(_pyproject(module))
    return work


def _diff(work: Path, mutant: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", "import sys; from mutmut.__main__ import cli; sys.argv=['mutmut','show',sys.argv[1]]; cli()", mutant],
        cwd=work, capture_output=True, text=True, env=_env(work),
    )
    return out.stdout.strip() or out.stderr.strip()


def _env(work: Path) -> dict:
    env = dict(os.environ)
    env.update(
        OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false",
        MPLBACKEND="Agg",
        EMOMUSIC_HYPOTHESIS_SCALE=os.environ.get("EMOMUSIC_HYPOTHESIS_SCALE", "0.25"),  # fewer examples per mutant
    )
    env.pop("PYTHONPATH", None)  # mutmut puts mutants/ first on sys.path itself
    return env


def _results(work: Path, module: Module) -> dict[str, str]:
    """Status of every selected mutant: the last run's (mutmut's meta file) over the statuses
    kept from earlier runs (``results.json``): mutmut forgets the results of mutants it did not
    run, so a ``--rerun-survivors`` run would otherwise count the earlier kills as unchecked."""
    kept = work / "results.json"
    out = json.loads(kept.read_text()) if kept.exists() else {}
    meta = work / "mutants" / (module.source + ".meta")
    if meta.exists():
        data = json.loads(meta.read_text())
        out.update({k: _status(v) for k, v in data.get("exit_code_by_key", {}).items()
                    if module.selected(k) and v is not None})
        out.update({k: "not checked" for k in data.get("exit_code_by_key", {}) if module.selected(k) and k not in out})
    return {k: v for k, v in out.items() if module.selected(k)}


def preflight(work: Path, module: Module) -> tuple[bool, str]:
    """Run the module's test selection once on the unmutated scratch copy, as mutmut will
    (same options, same environment). mutmut only says "failed to collect stats" when a
    selected test fails; this names the test and shows its failure."""
    cmd = [sys.executable, "-m", "pytest", "--rootdir=.", "--tb=short", "-x", "-q", "-p", "no:randomly",
           *_existing(module.tests), "-p", "no:cacheprovider", "-p", "no:benchmark", "-W", "ignore"]
    proc = subprocess.run(cmd, cwd=work, env=_env(work), capture_output=True, text=True)
    return proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]


def run_module(name: str, module: Module, *, max_children: int, keep: bool, diffs: bool,
               rerun_survivors: bool = False, check: bool = True) -> dict:
    before = _results(BUILD / name, module) if rerun_survivors else {}
    work = _prepare(name, module, keep or rerun_survivors)
    if before:  # mutmut will forget the mutants it does not re-run: keep their statuses
        (work / "results.json").write_text(json.dumps(before, indent=0, sort_keys=True) + "\n")
    names = sorted(k for k, v in before.items() if v != "killed") if rerun_survivors else module.patterns()
    print(f"== {name}: {module.source}  <- {' '.join(module.tests)}", flush=True)
    if check:
        ok, out = preflight(work, module)
        if not ok:
            print(f"   the test selection fails on the unmutated code (mutmut would stop at 'failed to collect "
                  f"stats'); fix it first:\n{out}", flush=True)
            return {"module": name, "source": module.source, "mutants": 0, "killed": 0, "survived": 0, "no tests": 0,
                    "suspicious": 0, "not checked": 0, "score": 0.0, "seconds": 0, "returncode": 2}
    start = time.time()
    log = work / "mutmut.log"
    with open(log, "w") as fh:
        proc = subprocess.run(
            [sys.executable, "-c", "import sys; from mutmut.__main__ import cli; sys.argv=['mutmut','run','--max-children',*sys.argv[1:]]; cli()",
             str(max_children), *names],
            cwd=work, env=_env(work), stdout=fh, stderr=subprocess.STDOUT,
        )
    seconds = time.time() - start
    results = _results(work, module)
    (work / "results.json").write_text(json.dumps(results, indent=0, sort_keys=True) + "\n")
    counts = {s: sum(1 for v in results.values() if v == s) for s in ("killed", "survived", "no tests", "suspicious", "not checked")}
    total = len(results)
    score = counts["killed"] / total if total else 0.0
    row = {"module": name, "source": module.source, "mutants": total, **counts, "score": score,
           "seconds": round(seconds), "returncode": proc.returncode}
    if proc.returncode != 0 or not total:
        print(f"   mutmut failed (exit {proc.returncode}); see {log}", flush=True)
    survivors = sorted(k for k, v in results.items() if v != "killed")
    with open(work / "survivors.txt", "w") as fh:
        for m in survivors:
            fh.write(_diff(work, m) + "\n\n" if diffs else f"# {m}: {results[m]}\n")
    print(f"   {counts['killed']}/{total} killed = {score:.1%}  (survived {counts['survived']}, no tests "
          f"{counts['no tests']}, other {counts['suspicious'] + counts['not checked']}) in {seconds:.0f} s; "
          f"survivors: {work / 'survivors.txt'}", flush=True)
    return row


def markdown(rows: list[dict]) -> str:
    lines = ["| module | file | mutants | killed | survived | no tests | score | time |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['module']} | `{r['source']}` | {r['mutants']} | {r['killed']} | {r['survived']} | "
                     f"{r['no tests']} | {r['score']:.1%} | {r['seconds']} s |")
    total = sum(r["mutants"] for r in rows)
    killed = sum(r["killed"] for r in rows)
    if total:
        lines.append(f"| **all** | | {total} | {killed} | {sum(r['survived'] for r in rows)} | "
                     f"{sum(r['no tests'] for r in rows)} | **{killed / total:.1%}** | {sum(r['seconds'] for r in rows)} s |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("modules", nargs="*", help=f"modules to run (default all): {', '.join(MODULES)}")
    ap.add_argument("--list", action="store_true", help="print the modules and their test selections")
    ap.add_argument("--max-children", type=int, default=1, help="parallel mutmut workers (default 1)")
    ap.add_argument("--keep", action="store_true", help="reuse build/mutation/<module> (mutmut's cached results)")
    ap.add_argument("--rerun-survivors", action="store_true",
                    help="keep the last run's results and re-test only its surviving mutants (after adding tests)")
    ap.add_argument("--no-diffs", action="store_true", help="list surviving mutants without their diffs")
    ap.add_argument("--no-preflight", action="store_true",
                    help="skip the check that the test selection passes on the unmutated copy before mutmut runs")
    ap.add_argument("--report", type=Path, help="write the score table as Markdown to this file")
    ap.add_argument("--json", type=Path, help="write the score rows as JSON to this file")
    ap.add_argument("--min-score", type=float, default=None, help="exit 1 when the overall score is below this (0..1)")
    args = ap.parse_args(argv)
    if args.list:
        for name, m in MODULES.items():
            print(f"{name:16s} {m.source:32s} {' '.join(m.tests)}")
            if m.functions:
                print(f"{'':16s} only: {', '.join(m.functions)}")
        return 0
    unknown = [m for m in args.modules if m not in MODULES]
    if unknown:
        ap.error(f"unknown module(s) {', '.join(unknown)}; choose from {', '.join(MODULES)}")
    try:
        import mutmut  # noqa: F401
    except ImportError:
        ap.error("mutmut is not installed: pip install -e '.[test]' (or pip install mutmut)")
    rows = [run_module(n, MODULES[n], max_children=args.max_children, keep=args.keep, diffs=not args.no_diffs,
                       rerun_survivors=args.rerun_survivors, check=not args.no_preflight)
            for n in (args.modules or list(MODULES))]
    table = markdown(rows)
    print()
    print(table)
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(table + "\n")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    total = sum(r["mutants"] for r in rows)
    score = sum(r["killed"] for r in rows) / total if total else 0.0
    if any(r["returncode"] != 0 or not r["mutants"] for r in rows):
        return 2
    if args.min_score is not None and score < args.min_score:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
