"""Audio loading: formats, rates, channels, bit depths, and every way a file can be bad."""

import numpy as np
import pytest
import soundfile as sf

from ctcasr.audio import load_audio, prepare_waveform
from ctcasr.errors import AudioError

SR = 16000


def tone(sr, seconds=0.5, channels=1):
    t = np.arange(int(sr * seconds)) / sr
    x = 0.3 * np.sin(2 * np.pi * 440 * t)
    return np.stack([x] * channels, axis=1) if channels > 1 else x


@pytest.mark.parametrize("sr", [8000, 16000, 22050, 44100, 48000])
def test_any_sample_rate_is_resampled(tmp_path, sr):
    p = tmp_path / f"t{sr}.wav"
    sf.write(p, tone(sr), sr)
    x = load_audio(p, SR)
    assert x.dtype == np.float32 and x.ndim == 1
    assert abs(len(x) - SR // 2) <= 2
    # The 440 Hz tone survives resampling.
    spec = np.abs(np.fft.rfft(x))
    assert abs(np.argmax(spec) * SR / len(x) - 440) < 5


@pytest.mark.parametrize("channels", [2, 6])
def test_channels_are_mixed_to_mono(tmp_path, channels):
    p = tmp_path / "multi.wav"
    sf.write(p, tone(SR, channels=channels), SR)
    x = load_audio(p, SR)
    assert x.ndim == 1 and len(x) == SR // 2
    assert np.allclose(x, tone(SR), atol=1e-3)


@pytest.mark.parametrize("fmt, subtype", [("WAV", "PCM_16"), ("WAV", "PCM_24"), ("WAV", "PCM_32"), ("WAV", "FLOAT"),
                                          ("WAV", "PCM_U8"), ("FLAC", "PCM_16"), ("OGG", "VORBIS")])
def test_formats_and_bit_depths(tmp_path, fmt, subtype):
    p = tmp_path / f"t.{fmt.lower()}"
    sf.write(p, tone(SR), SR, format=fmt, subtype=subtype)
    x = load_audio(p, SR)
    tol = 0.05 if subtype in ("VORBIS", "PCM_U8") else 1e-3
    assert np.max(np.abs(x - tone(SR)[: len(x)])) < tol or subtype == "VORBIS"
    assert abs(len(x) - SR // 2) < 0.01 * SR


def test_silence_and_one_sample_are_valid(tmp_path):
    p = tmp_path / "silence.wav"
    sf.write(p, np.zeros(SR), SR)
    assert np.all(load_audio(p, SR) == 0)
    p1 = tmp_path / "one.wav"
    sf.write(p1, np.array([0.1]), SR)
    assert len(load_audio(p1, SR)) == 1


def test_bad_files_raise_audio_error_naming_the_file(tmp_path):
    cases = {}
    cases["missing.wav"] = None
    (tmp_path / "adir.wav").mkdir()
    cases["adir.wav"] = "directory"
    (tmp_path / "empty.wav").write_bytes(b"")
    cases["empty.wav"] = "empty"
    (tmp_path / "text.wav").write_text("this is not audio at all\n" * 20)
    cases["text.wav"] = "cannot read"
    sf.write(tmp_path / "full.wav", tone(SR), SR)
    (tmp_path / "trunc.wav").write_bytes((tmp_path / "full.wav").read_bytes()[:30])
    cases["trunc.wav"] = "cannot read"
    sf.write(tmp_path / "zero.wav", np.zeros(0), SR)
    cases["zero.wav"] = "no samples"
    sf.write(tmp_path / "nan.wav", np.full(100, np.nan), SR, subtype="FLOAT")
    cases["nan.wav"] = "NaN"
    sf.write(tmp_path / "someinf.wav", np.r_[np.zeros(100), np.inf], SR, subtype="FLOAT")
    cases["someinf.wav"] = "1 of 101 samples"
    for name, match in cases.items():
        with pytest.raises(AudioError) as e:
            load_audio(tmp_path / name, SR)
        assert name in str(e.value)
        if match:
            assert match in str(e.value), str(e.value)


def test_wrong_extension_still_reads(tmp_path):
    p = tmp_path / "actually_flac.wav"
    sf.write(p, tone(SR), SR, format="FLAC")
    assert len(load_audio(p, SR)) == SR // 2


def test_prepare_waveform_arrays():
    x = prepare_waveform((tone(SR) * 32767).astype(np.int16), SR, SR)
    assert x.dtype == np.float32 and np.max(np.abs(x - tone(SR))) < 1e-3
    st = prepare_waveform(tone(SR, channels=2).T, SR, SR)  # [channels, n] is recognised
    assert st.shape == (SR // 2,)
    with pytest.raises(AudioError, match="shape"):
        prepare_waveform(np.zeros((2, 2, 2)), SR)
    with pytest.raises(AudioError, match="sample rate"):
        prepare_waveform(np.zeros(10), 0)
