"""The numpy SoundFont synthesizer and WAV rendering."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from emomusic.errors import EmomusicError, PieceFormatError
from emomusic.piece import Note, Piece, Tempo, Track
from emomusic.render import default_soundfont, render_piece, write_wav
from emomusic.sf2 import G_ATTACK_VOL, G_PAN, G_RELEASE_VOL, SoundFont, load_soundfont, write_simple_soundfont

SR = 44100
SAMPLE_SR = 44000  # 100 samples per period at 440 Hz: the loop is seamless


def sine(freq=440.0, n=4400, amp=0.8):
    return amp * np.sin(2 * np.pi * freq * np.arange(n) / SAMPLE_SR)


@pytest.fixture(scope="module")
def sine_sf2(tmp_path_factory):
    """Program 0: looped 440 Hz sine (root key 69, 0.5 s release); program 1: an unlooped
    square wave; program 2: hard-left pan with a slow attack."""
    path = tmp_path_factory.mktemp("sf") / "test.sf2"
    square = 0.5 * np.sign(sine(220.0, 2200))
    write_simple_soundfont(path, [
        dict(samples=sine(), sample_rate=SAMPLE_SR, root_key=69, loop=(1000, 3000), generators={G_RELEASE_VOL: -1200}),
        dict(samples=square, sample_rate=SAMPLE_SR, root_key=57, program=1),
        dict(samples=sine(), sample_rate=SAMPLE_SR, root_key=69, loop=(1000, 3000), program=2,
             generators={G_PAN: -500, G_ATTACK_VOL: -1200}),  # attack 0.5 s
    ])
    return path


def one_note(pitch=69, beats=2.0, velocity=100, program=0, bpm=120.0) -> Piece:
    return Piece(tracks=[Track("x", program, False, [Note(pitch, 0.0, beats, velocity)])], tempos=[Tempo(bpm)])


def peak_hz(x: np.ndarray, sr: int = SR) -> float:
    n = 1 << int(np.floor(np.log2(len(x))))
    spec = np.abs(np.fft.rfft(x[:n] * np.hanning(n)))
    return float(np.fft.rfftfreq(n, 1 / sr)[np.argmax(spec)])


def rms(x) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


@pytest.mark.parametrize("pitch", [45, 57, 64, 69, 76, 81, 93])
def test_synthetic_soundfont_plays_the_right_pitch(sine_sf2, pitch):
    audio = render_piece(one_note(pitch), soundfont=sine_sf2)
    want = 440.0 * 2 ** ((pitch - 69) / 12)
    assert peak_hz(audio[: SR, 0]) == pytest.approx(want, rel=0.01)


def test_shape_rate_and_length(sine_sf2):
    audio = render_piece(one_note(beats=2.0, bpm=120.0), soundfont=sine_sf2)  # 1 s held
    assert audio.dtype == np.float32 and audio.ndim == 2 and audio.shape[1] == 2
    seconds = audio.shape[0] / SR
    assert 1.0 < seconds <= 1.0 + 0.5  # held time + a release tail of at most 0.5 s
    assert rms(audio[: SR // 2]) > 0.01
    # the loop keeps a held note sounding at a steady level
    assert rms(audio[int(0.8 * SR): int(0.95 * SR)]) == pytest.approx(rms(audio[int(0.1 * SR): int(0.25 * SR)]), rel=0.05)
    # after release it fades
    assert rms(audio[-2000:]) < 0.05 * rms(audio[: SR // 2])


def test_other_sample_rates(sine_sf2):
    audio = render_piece(one_note(), soundfont=sine_sf2, sample_rate=22050)
    assert peak_hz(audio[:22050, 0], 22050) == pytest.approx(440.0, rel=0.01)
    with pytest.raises(EmomusicError, match="sample rate"):
        render_piece(one_note(), soundfont=sine_sf2, sample_rate=100)


def test_unlooped_sample_stops_at_its_end(sine_sf2):
    # program 1: 2200 samples at root 57 -> played at 57 it lasts 0.05 s even if held 2 s
    audio = render_piece(one_note(57, beats=4.0, program=1), soundfont=sine_sf2)
    assert rms(audio[int(0.01 * SR): int(0.04 * SR)]) > 0.05
    assert rms(audio[int(0.2 * SR): int(1.5 * SR)]) == 0.0
    assert peak_hz(audio[: int(0.05 * SR), 0]) == pytest.approx(220.0, rel=0.05)


def test_velocity_pan_and_attack(sine_sf2):
    soft = render_piece(one_note(velocity=30), soundfont=sine_sf2)
    loud = render_piece(one_note(velocity=120), soundfont=sine_sf2)
    assert rms(loud) > 4 * rms(soft)
    left = render_piece(one_note(program=2), soundfont=sine_sf2)
    assert rms(left[:, 1]) < 1e-3 * rms(left[:, 0])
    assert rms(left[: int(0.02 * SR), 0]) < 0.2 * rms(left[int(0.6 * SR): int(0.9 * SR), 0])


def test_dense_music_never_clips(sine_sf2):
    notes = [Note(p, b * 0.25, 2.0, 127) for b in range(16) for p in range(48, 84, 3)]
    audio = render_piece(Piece(tracks=[Track("x", 0, False, notes)]), soundfont=sine_sf2)
    assert 0.9 < float(np.max(np.abs(audio))) <= 0.98


def test_timing_follows_the_tempo_map(sine_sf2):
    p = Piece(tracks=[Track("x", 0, False, [Note(69, 4.0, 1.0)])], tempos=[Tempo(120.0), Tempo(60.0, 2.0)])
    audio = render_piece(p, soundfont=sine_sf2)
    # beats 0-2 at 120 BPM = 1 s, beats 2-4 at 60 BPM = 2 s: the note starts at 3 s
    onset = int(np.argmax(np.abs(audio[:, 0]) > 0.01)) / SR
    assert onset == pytest.approx(3.0, abs=0.01)


def test_write_wav(tmp_path, sine_sf2):
    out = write_wav(one_note(), tmp_path / "a.wav", soundfont=sine_sf2)
    data, sr = sf.read(str(out), always_2d=True)
    info = sf.info(str(out))
    assert sr == 44100 and data.shape[1] == 2 and info.subtype == "PCM_16"
    assert 0 < np.max(np.abs(data)) < 1.0


@pytest.mark.parametrize(
    "content,match",
    [
        (None, "no such SoundFont"),
        (b"", "not a RIFF"),
        (b"RIFF\x10\x00\x00\x00WAVEfmt ", "not a RIFF sfbk"),
        (b"RIFF\xff\xff\x00\x00sfbkLIST\xff\xff\x00\x00sdta", "truncated|missing"),
    ],
    ids=["missing", "empty", "wav", "truncated"],
)
def test_bad_soundfonts(tmp_path, content, match):
    path = tmp_path / "bad.sf2"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(EmomusicError, match=match) as exc:
        render_piece(one_note(), soundfont=path)
    assert "\n" not in str(exc.value)
    with pytest.raises(EmomusicError):
        load_soundfont(tmp_path)  # a folder


def test_truncated_real_soundfont(tmp_path, sine_sf2):
    data = sine_sf2.read_bytes()
    (tmp_path / "cut.sf2").write_bytes(data[: len(data) - 300])
    with pytest.raises(EmomusicError):
        SoundFont(tmp_path / "cut.sf2")


def test_empty_piece_is_an_error(sine_sf2):
    with pytest.raises(PieceFormatError):
        render_piece(Piece(tracks=[Track("x")]), soundfont=sine_sf2)


# -- the default SoundFont (TimGM6mb.sf2 from the pretty_midi wheel) ----------------------

def test_default_soundfont_is_found():
    path = default_soundfont()
    assert path.name == "TimGM6mb.sf2" and path.is_file()
    sfont = load_soundfont(path)
    assert len(sfont.presets) > 100
    assert any(p.bank == 128 for p in sfont.presets)


def harmonic_profile_db(x: np.ndarray, f0: float, n: int = 10) -> np.ndarray:
    """Levels of the first ``n`` harmonics in dB relative to the strongest."""
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    freqs = np.fft.rfftfreq(len(x), 1 / SR)
    h = np.array([spec[(freqs > k * f0 * 0.97) & (freqs < k * f0 * 1.03)].max() for k in range(1, n + 1)])
    return 20 * np.log10(h / h.max() + 1e-6)


def test_default_soundfont_programs_sound_different():
    profiles = {}
    c4 = 261.63
    for program in (0, 19, 40, 73, 81):  # piano, organ, violin, flute, saw lead
        audio = render_piece(one_note(60, beats=2.0, program=program))
        assert float(np.max(np.abs(audio))) <= 0.98
        assert rms(audio) > 1e-3
        f = peak_hz(audio[: SR // 2, 0])
        assert abs(f / c4 - round(f / c4)) < 0.02  # the strongest partial is a harmonic of C4
        profiles[program] = harmonic_profile_db(audio[2000: 2000 + 16384, 0], c4)
    for a in profiles:
        for b in profiles:
            if a < b:  # every pair differs by more than 3 dB per harmonic on average
                assert np.mean(np.abs(profiles[a] - profiles[b])) > 3.0, (a, b)


def test_default_soundfont_renders_a_piece_with_drums(piano_piece):
    drums = Track("Drums", 0, True, [Note(36, float(b), 0.25, 110) for b in range(4)] + [Note(42, b + 0.5, 0.1, 80) for b in range(4)])
    piece = Piece(tracks=piano_piece.tracks + [drums], tempos=piano_piece.tempos)
    audio = render_piece(piece)
    assert audio.shape[0] / SR == pytest.approx(piece.duration_seconds, abs=3.0)
    assert audio.shape[0] / SR >= piece.duration_seconds
    assert 0.0 < float(np.max(np.abs(audio))) <= 0.98
    only_drums = render_piece(Piece(tracks=[drums], tempos=piano_piece.tempos))
    assert rms(only_drums) > 1e-3


@pytest.mark.data
def test_other_general_midi_soundfont(shared_data, piano_piece):
    """sf_GMbank.sf2 (csound-soundfont, public domain) parses and plays every family."""
    path = shared_data / "soundfonts" / "sf_GMbank.sf2"
    if not path.exists():
        pytest.skip("sf_GMbank.sf2 not found")
    for program in range(0, 128, 8):
        audio = render_piece(one_note(60, program=program), soundfont=path)
        assert rms(audio) > 1e-4, program
        assert float(np.max(np.abs(audio))) <= 0.98
    drums = Piece(tracks=[Track("Drums", 0, True, [Note(k, i * 0.5, 0.25, 100) for i, k in enumerate(range(35, 60))])])
    assert rms(render_piece(drums, soundfont=path)) > 1e-4
    audio = render_piece(piano_piece, soundfont=path)
    assert audio.shape[0] / SR >= piano_piece.duration_seconds
