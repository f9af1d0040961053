"""The shipped digits model and sample wavs: `ctcasr transcribe data/samples/digits/*.wav` works
right after install and prints what the samples say (voices the model never heard)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "data" / "samples" / "digits"


def _samples():
    return [json.loads(line) for line in open(SAMPLES / "samples.jsonl")]


def test_shipped_model_loads_by_name():
    from ctcasr.model import load_model_dir, resolve_model_dir

    assert resolve_model_dir(None) == resolve_model_dir("digits")
    model, tok = load_model_dir("digits")
    assert tok.tokens[0] == "φ" and " " in tok.tokens
    assert model.num_parameters() > 100_000


def test_transcribe_samples_with_default_model():
    samples = _samples()
    files = [str(SAMPLES / s["audio_filepath"]) for s in samples]
    r = subprocess.run([sys.executable, "-m", "ctcasr", "transcribe", *files], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    got = dict(line.split("\t") for line in r.stdout.strip().splitlines())
    assert list(got) == files
    for s, f in zip(samples, files):
        assert got[f] == s["text"], (f, got[f], s["text"])


@pytest.mark.parametrize("decoder", ["greedy", "beam"])
def test_api_word_timings_on_a_sample(decoder):
    import ctcasr

    asr = ctcasr.Transcriber.load("digits", device="cpu", decoder=decoder)
    s = _samples()[0]
    t = asr.transcribe(str(SAMPLES / s["audio_filepath"]))
    assert t.text == s["text"]
    assert [w.text for w in t.words] == s["text"].split()
    starts = [w.start_s for w in t.words]
    assert starts == sorted(starts) and all(w.end_s > w.start_s for w in t.words)
    assert t.words[-1].end_s <= t.duration_s


def test_shipped_model_writes_nothing_for_noise_without_speech():
    """Audio without speech (white/brown noise, hum, at -45...-20 dBFS, above the silence
    gate) gives no words. The model shipped before 2026-11-27 wrote 329 words for 46 such
    sox-made clips; it had never been trained on non-speech (augment.nonspeech_prob)."""
    import numpy as np

    import ctcasr

    asr = ctcasr.Transcriber.load("digits", device="cpu", decoder="greedy")
    rng = np.random.default_rng(0)
    clips = []
    for sr in (8000, 16000, 44100):
        n = 3 * sr
        t = np.arange(n) / sr
        white = rng.standard_normal(n)
        brown = np.cumsum(rng.standard_normal(n))  # (a random walk: not ctcasr's FFT-shaped noise)
        brown -= np.convolve(brown, np.ones(801) / 801, mode="same")  # no DC drift
        hum = sum(np.sin(2 * np.pi * k * 60.0 * t) / k for k in (1, 2, 3))
        for x in (white, brown, hum):
            for dbfs in (-45, -30, -20):
                y = x / np.sqrt(np.mean(x ** 2)) * 10 ** (dbfs / 20)
                clips.append((y.astype(np.float32), sr))
    words = [len(asr.transcribe(y, sample_rate=sr).words) for y, sr in clips]
    assert sum(words) <= 2, words
