"""Installable anywhere: the wheel carries the shipped checkpoints, tokenizer configs and
session presets, and the installed package composes from an empty folder with no
environment variable (issue #13, part 1)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from emomusic.paths import PACKAGE_DIR, REPO_DIR

SHIPPED = [
    "emomusic/checkpoints/compose/vae/model.safetensors",
    "emomusic/checkpoints/compose/vae/config.json",
    "emomusic/checkpoints/compose/diffgan/model.safetensors",
    "emomusic/checkpoints/compose/diffgan/config.json",
    "emomusic/checkpoints/melody/model.safetensors",
    "emomusic/checkpoints/baseline/model.safetensors",
    "emomusic/checkpoints/estimator/estimator.json",
    "emomusic/tokenizers/abc_melody.json",
    "emomusic/tokenizers/remi.json",
    "emomusic/playlists/sleep-wind-down.json",
    "emomusic/data/moods.json",
]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built from a copy of the source (the worktree gets no build/ folder)."""
    if not (REPO_DIR / "pyproject.toml").is_file():
        pytest.skip("not a source checkout: no pyproject.toml beside the package")
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(REPO_DIR / name, src / name)
    shutil.copytree(PACKAGE_DIR, src / "emomusic", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = tmp_path_factory.mktemp("wheel")
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out),
                        str(src)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    wheels = list(out.glob("emomusic-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def test_wheel_holds_the_shipped_files(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [n for n in SHIPPED if n not in names]
    assert not missing, f"wheel lacks {missing}"
    # every file of every shipped folder travels, not just the ones listed above
    for folder in ("checkpoints", "tokenizers", "playlists"):
        for f in (PACKAGE_DIR / folder).rglob("*"):
            if f.is_file() and "__pycache__" not in f.parts:
                assert f"emomusic/{f.relative_to(PACKAGE_DIR).as_posix()}" in names, f
    assert not any(n.startswith(("tests/", "checkpoints/", "benchmarks/")) for n in names)


def test_installed_wheel_composes_from_an_empty_folder(wheel, tmp_path):
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as z:  # what pip install puts in site-packages
        z.extractall(site)
    work = tmp_path / "empty"
    work.mkdir()
    env = {k: v for k, v in os.environ.items()
           if k not in ("EMOMUSIC_CHECKPOINTS", "EMOMUSIC_TOKENIZERS", "EMOMUSIC_PLAYLISTS")}
    env.update(PYTHONPATH=str(site), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    code = ("import emomusic, emomusic.paths as p; "
            "print(emomusic.__file__); print(p.checkpoint_path('compose')); print(p.tokenizers_dir()); "
            "print(p.playlists_dir())")
    r = subprocess.run([sys.executable, "-c", code], cwd=work, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    for line in r.stdout.split():
        assert line.startswith(str(site)), r.stdout
    r = subprocess.run([sys.executable, "-m", "emomusic", "compose", "--mood", "calm", "--seed", "3", "-o", "calm.mid"],
                       cwd=work, env=env, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    assert (work / "calm.mid").stat().st_size > 100
    r = subprocess.run([sys.executable, "-m", "emomusic", "session", "--preset", "sleep-wind-down", "--plan-only",
                        "--plan-out", "plan.json"], cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in work.iterdir()) == ["calm.mid", "plan.json"]


def test_environment_overrides(tmp_path, monkeypatch):
    from emomusic import paths

    for var, fn in (("EMOMUSIC_CHECKPOINTS", paths.checkpoints_dir), ("EMOMUSIC_TOKENIZERS", paths.tokenizers_dir),
                    ("EMOMUSIC_PLAYLISTS", paths.playlists_dir), ("EMOMUSIC_DATA", paths.data_dir)):
        monkeypatch.delenv(var, raising=False)
        default = fn()
        monkeypatch.setenv(var, str(tmp_path / var))
        assert fn() == tmp_path / var
        monkeypatch.delenv(var)
        assert fn() == default
    assert paths.checkpoints_dir() == PACKAGE_DIR / "checkpoints"
    assert paths.tokenizers_dir() == PACKAGE_DIR / "tokenizers"
    assert paths.playlists_dir() == PACKAGE_DIR / "playlists"
    assert (paths.checkpoint_path("compose") / "vae" / "model.safetensors").is_file()


def test_cache_dir(tmp_path, monkeypatch):
    from emomusic import paths

    monkeypatch.setenv("EMOMUSIC_CACHE", str(tmp_path / "c"))
    assert paths.cache_dir() == tmp_path / "c"
    monkeypatch.delenv("EMOMUSIC_CACHE")
    assert paths.cache_dir() == REPO_DIR / ".cache"  # a source checkout keeps its git-ignored .cache/
    monkeypatch.setattr(paths, "REPO_DIR", tmp_path / "site-packages")  # an installed package
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert paths.cache_dir() == tmp_path / "xdg" / "emomusic"


def test_sdist_holds_the_shipped_files(tmp_path):
    import tarfile

    if not (REPO_DIR / "pyproject.toml").is_file():
        pytest.skip("not a source checkout")
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(REPO_DIR / name, src / name)
    shutil.copytree(PACKAGE_DIR, src / "emomusic", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    code = "import sys; from setuptools import build_meta as b; print(b.build_sdist(sys.argv[1]))"
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "dist")], cwd=src, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    sdist = tmp_path / "dist" / r.stdout.strip().splitlines()[-1]
    names = {n.split("/", 1)[1] for n in tarfile.open(sdist).getnames() if "/" in n}
    missing = [n for n in SHIPPED if n not in names]
    assert not missing, f"sdist lacks {missing}"


def test_shell_completion_script():
    env = dict(os.environ, _EMOMUSIC_COMPLETE="bash_source")
    r = subprocess.run([sys.executable, "-m", "emomusic"], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "_emomusic_completion" in r.stdout, r.stderr
    env = dict(os.environ, _EMOMUSIC_COMPLETE="bash_complete", COMP_WORDS="emomusic comp", COMP_CWORD="1")
    r = subprocess.run([sys.executable, "-m", "emomusic"], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "compose" in r.stdout, r.stderr


def test_readme_has_no_bracketed_options_and_a_clean_quick_start():
    text = (REPO_DIR / "README.md").read_text(encoding="utf-8")
    code = "\n".join(block for i, block in enumerate(text.split("```")) if i % 2 == 1)
    for line in code.splitlines():
        if line.lstrip().startswith("emomusic "):
            assert "[--" not in line.split("#")[0], line
    quick = text.split("<!-- quickstart:begin -->")[1].split("<!-- quickstart:end -->")[0]
    commands = [ln for ln in quick.splitlines() if ln.strip() and not ln.startswith("```")]
    # two commands: install and run the main job, then the tests (what .ci/run runs)
    assert len(commands) == 2 and commands[1].startswith("python -m pytest")
    assert commands[0].startswith("pip install -c constraints.txt") and " && emomusic compose " in commands[0]
    out = commands[0].split(" -o ")[1].split()[0]
    ignored = subprocess.run(["git", "check-ignore", "-q", out], cwd=REPO_DIR).returncode == 0
    assert out.startswith("/tmp/") or ignored, f"the quick start leaves {out} in the clone"
    assert "_EMOMUSIC_COMPLETE=bash_source emomusic" in text
