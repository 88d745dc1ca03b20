
import pytest

from emomusic.atomic import atomic_dir, atomic_path, write_text_atomic
from emomusic.errors import EmomusicError


def test_atomic_path_success_and_failure(tmp_path):
    target = tmp_path / "out.mid"
    with atomic_path(target) as tmp:
        assert tmp.suffix == ".mid" and tmp.parent == tmp_path
        tmp.write_bytes(b"abc")
        assert not target.exists()
    assert target.read_bytes() == b"abc"

    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "fail.mid") as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("boom")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mid"]


def test_atomic_dir_replaces_whole(tmp_path):
    target = tmp_path / "session"
    with atomic_dir(target) as d:
        (d / "a.txt").write_text("1")
    assert (target / "a.txt").read_text() == "1"
    with pytest.raises(ValueError):
        with atomic_dir(target) as d:
            (d / "b.txt").write_text("2")
            raise ValueError
    assert sorted(p.name for p in tmp_path.iterdir()) == ["session"]
    assert not (target / "b.txt").exists()


def test_unwritable_dir(unwritable_dir):
    d = unwritable_dir
    with pytest.raises(EmomusicError) as exc:
        write_text_atomic(f"{d}/x.txt", "no")
    assert "cannot write" in str(exc.value)


def test_target_is_a_dir_or_parent_is_a_file(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(EmomusicError):
        write_text_atomic(tmp_path / "d", "x")
    (tmp_path / "f").write_text("")
    with pytest.raises(EmomusicError):
        write_text_atomic(tmp_path / "f" / "x.txt", "x")


def test_outputs_get_normal_permissions(tmp_path):
    import stat

    write_text_atomic(tmp_path / "a.txt", "x")
    mode = stat.S_IMODE((tmp_path / "a.txt").stat().st_mode)
    assert mode & 0o044 == 0o044  # readable by group and others (umask 022)
    with atomic_dir(tmp_path / "d") as d:
        (d / "f").write_text("1")
    assert stat.S_IMODE((tmp_path / "d").stat().st_mode) & 0o055 == 0o055
