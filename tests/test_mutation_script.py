"""scripts/mutation.py's configuration stays in step with the code: every module it mutates,
every function it names and every test file it selects exists (a renamed file or function
would otherwise silently shrink a mutation run to nothing)."""

from __future__ import annotations

import ast

from helpers import REPO, load_file


def test_every_module_source_function_and_test_file_exists():
    mutation = load_file("scripts/mutation.py")
    for name, module in mutation.MODULES.items():
        source = REPO / module.source
        assert source.is_file(), name
        defined = {n.name for n in ast.parse(source.read_text()).body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
        assert set(module.functions) <= defined, (name, set(module.functions) - defined)
        files = [t.split("::")[0] for i, t in enumerate(module.tests)
                 if not t.startswith("-") and not (i and module.tests[i - 1] == "-k")]
        assert files, name
        for f in files:
            assert (REPO / f).is_file(), (name, f)
        assert mutation._existing(module.tests) == list(module.tests), name


def test_mutant_names_select_the_listed_functions_only():
    mutation = load_file("scripts/mutation.py")
    reader = mutation.MODULES["io_midi_reader"]
    assert reader.selected("emomusic.io.midi.x_read_midi__mutmut_12")
    assert reader.selected("emomusic.io.midi.x__text__mutmut_1")
    assert not reader.selected("emomusic.io.midi.x__to_track__mutmut_3")
    assert not reader.selected("emomusic.io.midi.x_read_midi_extra__mutmut_3")
    assert mutation.MODULES["audio"].selected("emomusic.audio.x_anything__mutmut_1")  # no list: the whole file
