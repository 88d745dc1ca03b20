"""End to end in a real headless browser (Debian's chromium-headless-shell driven by Playwright):
click the circle, compose, hear it (the audio element gets a duration), download the MIDI, draw a
session journey with the mouse, build a 2-minute session, analyze a file. Screenshots of each
screen go to $EMOMUSIC_ARTIFACTS (or the test's temp folder)."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium-headless-shell")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium-headless-shell not installed (apt-get install chromium-headless-shell)")

from emomusic.paths import checkpoint_path  # noqa: E402

needs_models = pytest.mark.skipif(
    not (checkpoint_path("compose") / "diffgan" / "model.safetensors").is_file()
    or not (checkpoint_path("melody") / "config.json").is_file(),
    reason="shipped compose/melody checkpoints missing")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    import torch
    import uvicorn

    from emomusic.web.config import Settings
    from emomusic.web.main import create_app

    threads = torch.get_num_threads()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(Settings(port=port, workers=2, work_dir=tmp_path_factory.mktemp("web")))
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    t = threading.Thread(target=srv.run, daemon=True)
    t.start()
    t0 = time.monotonic()
    while not srv.started:
        assert time.monotonic() - t0 < 30, "server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    t.join(30)
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    d = Path(os.environ["EMOMUSIC_ARTIFACTS"]) if os.environ.get("EMOMUSIC_ARTIFACTS") else tmp_path_factory.mktemp("shots")
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"])
        yield b
        b.close()


def _page(browser, server, **kw):
    ctx = browser.new_context(accept_downloads=True, **kw)
    page = ctx.new_page()
    outside = []

    def guard(route):  # offline: anything not from this server is refused and recorded
        if route.request.url.startswith(server) or route.request.url.startswith("data:"):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", guard)
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server + "/")
    page.wait_for_selector("body[data-ready='1']", timeout=20000)
    return page, outside, errors


def _circle_xy(page, v: float, a: float) -> tuple[float, float]:
    """Screen position of (valence, arousal) on the circle (viewBox -1.32..1.32, arousal up)."""
    box = page.locator("#circle").bounding_box()
    return box["x"] + (v + 1.32) / 2.64 * box["width"], box["y"] + (1.32 - a) / 2.64 * box["height"]


@needs_models
def test_compose_melody_session_analyze_in_a_browser(browser, server, artifacts, tmp_path):
    page, outside, errors = _page(browser, server, viewport={"width": 1280, "height": 900})
    page.screenshot(path=str(artifacts / "01-start.png"), full_page=True)

    # the circle: a click sets the point, the nearest mood words follow
    x, y = _circle_xy(page, 0.7, 0.6)
    page.mouse.click(x, y)
    va = page.inner_text("#va")
    assert "+0.7" in va and "+0.6" in va, va
    assert page.inner_text("#nearest").startswith("near: ")
    # the keyboard moves it too
    page.focus("#circle")
    page.keyboard.press("ArrowDown")
    assert "+0.55" in page.inner_text("#va") or "+0.5" in page.inner_text("#va")
    # the mood search sets it
    page.fill("#mood-search", "calm")
    page.press("#mood-search", "Enter")
    assert page.text_content("#point-label") == "calm" and "+0.61" in page.inner_text("#va")
    page.keyboard.press("Escape")  # close the word list, then pick the point for the music
    page.mouse.click(*_circle_xy(page, 0.7, 0.6))
    assert "+0.70" in page.inner_text("#va"), page.inner_text("#va")

    # compose: the result plays (audio has a duration), shows a piano roll and the measured point
    page.click("#form-compose button.go")
    page.wait_for_function("document.getElementById('player').duration > 0", timeout=60000)
    assert "+0.70" in page.inner_text("#va") and page.input_value("#mood-search") == ""  # the clicked point was composed
    assert page.locator("#picture canvas").count() == 1
    assert page.locator("#measured").get_attribute("visibility") == "visible"
    assert "estimated emotion" in page.inner_text("#attrs")
    page.screenshot(path=str(artifacts / "02-compose.png"), full_page=True)
    with page.expect_download() as dl:
        page.click("#downloads a[data-kind='midi']")
    midi_path = tmp_path / "download.mid"
    dl.value.save_as(midi_path)
    import mido

    mid = mido.MidiFile(midi_path)
    assert mid.type == 1 and sum(1 for t in mid.tracks for m in t if m.type == "note_on") > 8
    assert {"Melody", "Accompaniment"} <= {t.name for t in mid.tracks}

    # melody: sheet music (or a piano roll without the engraver) and an ABC download
    page.click("#tab-melody")
    page.check("#form-melody input[name='chords']")
    page.click("#form-melody button.go")
    page.wait_for_function("document.getElementById('player').duration > 0", timeout=60000)
    assert page.locator("#downloads a[data-kind='abc']").count() == 1
    if page.locator("#picture img").count():
        page.wait_for_function("document.querySelector('#picture img').naturalWidth > 0", timeout=20000)
    page.screenshot(path=str(artifacts / "03-melody.png"), full_page=True)

    # session: draw the journey with the mouse (a bend becomes a waypoint), build 2 minutes
    page.click("#tab-session")
    page.click("#preset-list button[data-name='anxiety-to-calm']")  # a preset is one click
    assert page.get_attribute("#preset-list button[data-name='anxiety-to-calm']", "aria-pressed") == "true"
    assert page.inner_text("#journey-text").startswith("Journey: anxious")
    page.click("#clear-journey")  # the keyboard way: Enter adds the point, arrows move it
    page.focus("#circle")
    page.keyboard.press("Enter")
    for _ in range(4):
        page.keyboard.press("ArrowLeft")
    page.keyboard.press("Enter")
    assert page.inner_text("#journey-text").count("→") == 1
    pts = [(-0.5, 0.6), (-0.3, 0.1), (-0.2, -0.3), (0.1, -0.45), (0.4, -0.6), (0.65, -0.7)]
    page.mouse.move(*_circle_xy(page, *pts[0]))
    page.mouse.down()
    for (v0, a0), (v1, a1) in zip(pts, pts[1:]):
        for k in range(1, 6):
            page.mouse.move(*_circle_xy(page, v0 + (v1 - v0) * k / 5, a0 + (a1 - a0) * k / 5))
    page.mouse.up()
    journey = page.inner_text("#journey-text")
    assert journey.startswith("Journey:") and journey.count("→") >= 1, journey
    assert page.locator("#journey circle.node").count() >= 3  # start, the bend, target
    assert page.get_attribute("#preset-list button[data-name='anxiety-to-calm']", "aria-pressed") == "false"
    page.fill("#form-session input[name='minutes']", "2")
    page.select_option("#form-session select[name='backend']", "symbolic")
    page.click("#form-session button.go")
    page.wait_for_selector("#progress-wrap:not([hidden])", timeout=20000)
    page.wait_for_function("document.getElementById('status').textContent.startsWith('Session ready')", timeout=240000)
    assert page.eval_on_selector("#progress", "p => p.value") == 1
    page.wait_for_function("document.getElementById('player').duration > 100", timeout=60000)
    assert page.locator("#clips li").count() == 4
    assert page.locator("#clips li.current").count() == 1 and page.locator("#clip-current").count() == 1
    page.eval_on_selector("#player", "p => { p.currentTime = 75; }")  # the highlight follows the player
    page.wait_for_function("document.querySelector('#clips li.current').id === 'clip-2'", timeout=10000)
    for kind in ("session_wav", "session_mid", "playlist", "zip"):
        assert page.locator(f"#downloads a[data-kind='{kind}']").count() == 1, kind
    page.screenshot(path=str(artifacts / "04-session.png"), full_page=True)

    # analyze: upload the MIDI downloaded above
    page.click("#tab-analyze")
    page.set_input_files("#form-analyze input[type=file]", str(midi_path))
    page.click("#form-analyze button.go")
    page.wait_for_function("document.getElementById('status').textContent.startsWith('download.mid')", timeout=30000)
    assert "estimated emotion" in page.inner_text("#attrs")
    page.screenshot(path=str(artifacts / "05-analyze.png"), full_page=True)

    # bad input shows the server's one-line message
    page.click("#tab-compose")
    page.eval_on_selector("#form-compose input[name='bars']", "el => { el.removeAttribute('max'); el.value = 500; }")
    page.click("#form-compose button.go")
    page.wait_for_selector("#status.error", timeout=10000)
    assert "bars" in page.inner_text("#status")

    assert outside == [] and errors == []


def test_phone_layout_and_docs_offline(browser, server, artifacts):
    page, outside, errors = _page(browser, server, viewport={"width": 390, "height": 844}, device_scale_factor=2,
                                  is_mobile=True, has_touch=True)
    circle = page.locator("#circle").bounding_box()
    assert circle["width"] <= 390 and circle["width"] > 250  # the circle fits the phone's width
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling
    page.screenshot(path=str(artifacts / "06-phone.png"), full_page=True)
    page.goto(server + "/docs")
    page.locator(".opblock-summary-path", has_text="/api/compose").first.wait_for(timeout=20000)
    assert page.locator(".opblock").count() >= 9
    page.screenshot(path=str(artifacts / "07-docs.png"))
    assert outside == [] and errors == []
