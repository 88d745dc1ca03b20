"""Sheet music from ABC: SVG through abcm2ps, PNG through rsvg-convert (or cairosvg).

* SVG: ``abcm2ps -g`` (Debian/Ubuntu package ``abcm2ps``), a real ABC engraver that writes
  one SVG per tune.
* PNG: the SVG rasterised by ``rsvg-convert`` (Debian package ``librsvg2-bin``, librsvg,
  the GNOME SVG renderer) on a white background, or, when that is not installed, by the
  PyPI package ``cairosvg`` if present. Both render abcm2ps's SVG faithfully; pure-Python
  alternatives (matplotlib) cannot read SVG.

Missing tools raise :class:`EmomusicError` with the package to install. Outputs are atomic.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from emomusic.atomic import atomic_path
from emomusic.errors import EmomusicError

ENGRAVE_FORMATS = ("svg", "png")


def engraver_available() -> bool:
    return shutil.which("abcm2ps") is not None


def png_converter() -> str | None:
    """``rsvg-convert``, ``cairosvg`` or None."""
    if shutil.which("rsvg-convert"):
        return "rsvg-convert"
    try:
        import cairosvg  # noqa: F401

        return "cairosvg"
    except Exception:
        return None


def abc_to_svg(abc: str) -> str:
    """The SVG text of the first tune in ``abc``, engraved by abcm2ps."""
    exe = shutil.which("abcm2ps")
    if exe is None:
        raise EmomusicError("sheet music needs abcm2ps (install the Debian/Ubuntu package 'abcm2ps')")
    with tempfile.TemporaryDirectory(prefix="emomusic-engrave-") as d:
        src = Path(d) / "tune.abc"
        src.write_text(abc, encoding="utf-8")
        try:
            r = subprocess.run([exe, "-q", "-g", "-O", str(Path(d) / "out.svg"), str(src)],
                               capture_output=True, text=True, timeout=60, cwd=d)
        except subprocess.TimeoutExpired:
            raise EmomusicError("abcm2ps timed out") from None
        svgs = sorted(Path(d).glob("out*.svg"))
        if r.returncode != 0 or not svgs:
            msg = (r.stderr or r.stdout or "").strip().splitlines()
            raise EmomusicError(f"abcm2ps could not engrave the tune: {msg[-1] if msg else 'no output'}")
        return svgs[0].read_text(encoding="utf-8")


def svg_to_png(svg: str, path: Path, scale: float = 2.0) -> None:
    conv = png_converter()
    if conv is None:
        raise EmomusicError("PNG output needs rsvg-convert (Debian package 'librsvg2-bin') or 'pip install cairosvg'")
    if conv == "rsvg-convert":
        with tempfile.TemporaryDirectory(prefix="emomusic-png-") as d:
            src = Path(d) / "in.svg"
            src.write_text(svg, encoding="utf-8")
            r = subprocess.run(["rsvg-convert", "-z", str(scale), "-b", "white", "-f", "png", "-o", str(path), str(src)],
                               capture_output=True, text=True, timeout=60)
            if r.returncode != 0:
                raise EmomusicError(f"rsvg-convert failed: {(r.stderr or '').strip()[:200]}")
    else:
        import cairosvg

        cairosvg.svg2png(bytestring=svg.encode("utf-8"), write_to=str(path), scale=scale, background_color="white")


def write_sheet(abc: str, path: str | Path, fmt: str | None = None) -> Path:
    """Engrave ``abc`` to ``path`` as SVG or PNG (by extension, or ``fmt``), atomically."""
    path = Path(path)
    f = (fmt or path.suffix.lstrip(".")).lower()
    if f not in ENGRAVE_FORMATS:
        raise EmomusicError(f"sheet music is written as .svg or .png, not {path.name}")
    if f == "png" and png_converter() is None:  # fail before engraving
        svg_to_png("", path)
    svg = abc_to_svg(abc)
    with atomic_path(path) as tmp:
        if f == "svg":
            tmp.write_text(svg, encoding="utf-8")
        else:
            svg_to_png(svg, tmp)
    return path
