"""Long audio: windows cut at quiet points, bounded reads, stitched words without
duplicates or gaps, absolute word times. The 10-minute test uses synthesized speech of
voices the shipped digits model never heard in training (its test voices)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from ctcasr import synth
from ctcasr.errors import AudioError
from ctcasr.longform import AudioSource, quietest_point, windows
from ctcasr.metrics import corpus_errors
from synth_fixtures import require_engine

SR = 16000
DIGITS = "zero one two three four five six seven eight nine oh".split()


# ---------------------------------------------------------------------- no model needed
def test_quietest_point_finds_the_gap():
    rng = np.random.default_rng(0)
    x = rng.normal(0, 0.1, 4 * SR).astype(np.float32)
    x[int(2.6 * SR): int(2.9 * SR)] *= 0.001  # a 300 ms pause
    t = quietest_point(x, SR)
    assert 2.6 < t < 2.9


def test_windows_tile_the_file_and_cut_in_pauses():
    rng = np.random.default_rng(1)
    total = 100.0
    x = rng.normal(0, 0.1, int(total * SR)).astype(np.float32)
    pauses = np.arange(3.0, total, 3.7)  # a 200 ms pause every 3.7 s
    for p in pauses:
        x[int(p * SR): int((p + 0.2) * SR)] = 0.0
    src = AudioSource(x, SR, input_rate=SR)
    ws = list(windows(src, max_core_s=10, search_s=4, margin_s=1.5))
    assert len(ws) >= 10
    assert ws[0].core_start_s == 0.0 and ws[-1].core_end_s == float("inf")
    for a, b in zip(ws, ws[1:]):
        assert a.core_end_s == b.core_start_s  # cores tile the file: no gap, no overlap
        cut = a.core_end_s
        assert any(p <= cut <= p + 0.2 for p in pauses), f"cut at {cut:.2f}s is not in a pause"
    for w in ws:
        n = len(w.audio) / SR
        assert n <= 10 + 2 * 1.5 + 0.01
        # the audio of a window is the file's audio at its start time
        s = int(round(w.start_s * SR))
        np.testing.assert_array_equal(w.audio[:100], x[s: s + 100])


def test_audio_source_reads_windows_of_a_48k_stereo_file(tmp_path):
    rng = np.random.default_rng(2)
    t = np.arange(48000 * 6) / 48000
    stereo = np.stack([0.3 * np.sin(2 * np.pi * 440 * t), 0.1 * rng.standard_normal(t.size)], axis=1)
    path = tmp_path / "st.wav"
    sf.write(path, stereo, 48000, subtype="PCM_24")
    from ctcasr.audio import load_audio

    whole = load_audio(path, SR)
    with AudioSource(path, SR) as src:
        assert abs(src.duration_s - 6.0) < 1e-6
        part = src.read(2.0, 4.0)
    assert len(part) == 2 * SR
    # Away from the window edges (resampling edge effects) the window equals the whole-file read.
    np.testing.assert_allclose(part[800:-800], whole[2 * SR + 800: 4 * SR - 800], atol=2e-3)


def test_audio_source_segment_and_errors(tmp_path):
    x = np.zeros(SR * 3, np.float32)
    x[SR:] = 0.1
    p = tmp_path / "a.wav"
    sf.write(p, x, SR)
    with AudioSource(p, SR, offset_s=1.0, duration_s=1.0) as src:
        assert src.duration_s == 1.0
        assert np.allclose(src.read(), 0.1, atol=1e-4)
    with pytest.raises(AudioError, match="past the end"):
        AudioSource(p, SR, offset_s=5.0)
    with pytest.raises(AudioError, match="no such file"):
        AudioSource(tmp_path / "missing.wav", SR)
    bad = x.copy()
    bad[2 * SR + 5] = np.nan
    with pytest.raises(AudioError, match="NaN"):
        AudioSource(bad, SR, input_rate=SR)


# ---------------------------------------------------------------------- with the shipped model
@pytest.fixture(scope="module")
def asr():
    from ctcasr import Transcriber

    return Transcriber.load("digits", device="cpu", decoder="greedy")


def _long_speech(minutes: float, seed: int):
    """Sentences of 2-6 digit words by held-out voices, joined by 0.25-1.0 s pauses.
    Returns (audio, sentences [(start_s, end_s, text)])."""
    require_engine("espeak")
    require_engine("flite")
    rng = np.random.default_rng(seed)
    # Voices from the digits recipe's *test* side (never in its training set).
    voices = ["flite:awb", "espeak:en-us+f4", "espeak:en-gb-x-rp+m5", "espeak:en-us+max",
              "espeak:en-gb-scotland+f3", "espeak:en-us+m6"]
    pieces, sents, t = [], [], 0.0
    n = 0
    while t < minutes * 60:
        text = " ".join(rng.choice(DIGITS, size=int(rng.integers(2, 7))))
        v = voices[n % len(voices)]
        n += 1
        x = synth.synthesize(text, v, rate=float(rng.uniform(0.9, 1.1)), pad=(0.0, 0.0), rng=n)
        gap = np.zeros(int(rng.uniform(0.25, 1.0) * SR), np.float32)
        x = 0.5 * x / max(1e-3, float(np.abs(x).max()))
        sents.append((t, t + len(x) / SR, text))
        pieces += [x, gap]
        t += (len(x) + len(gap)) / SR
    return np.concatenate(pieces), sents


@pytest.fixture(scope="module")
def ten_minutes(tmp_path_factory):
    audio, sents = _long_speech(10.2, seed=7)
    path = tmp_path_factory.mktemp("long") / "ten_minutes.wav"
    sf.write(path, audio, SR, subtype="PCM_16")
    return path, audio, sents


def _one_pass(asr, audio):
    """The whole input through the BiLSTM at once: the reference the windows are checked
    against (fine on CPU for minutes of audio; what windowing exists to avoid for hours)."""
    from ctcasr import Transcriber

    whole = Transcriber(asr.model, asr.tokenizer, asr.device, decoder="greedy")
    whole.max_core_s = 1e9
    return whole.transcribe(audio, sample_rate=SR)


def _check_seams(asr, audio, ref, windowed_text):
    """The windowed text against the reference has no more insertions + deletions (what a
    duplicated or lost word at a seam shows up as) than decoding the whole input in one pass
    has, give or take one word, and a WER at most 2 points above it."""
    whole = corpus_errors([ref], [_one_pass(asr, audio).text])[0]
    win = corpus_errors([ref], [windowed_text])[0]
    msg = f"{win.summary('windowed')} vs {whole.summary('one pass')}"
    assert win.insertions + win.deletions <= whole.insertions + whole.deletions + 1, msg
    assert win.rate <= whole.rate + 0.02, msg


def test_ten_minute_file_text_and_monotonic_times(asr, ten_minutes):
    path, audio, sents = ten_minutes
    assert len(audio) / SR >= 600
    t = asr.transcribe(path)
    assert abs(t.duration_s - len(audio) / SR) < 0.01
    ref = " ".join(s[2] for s in sents)
    w, _ = corpus_errors([ref], [t.text])
    assert w.rate < 0.06, w.summary("WER")  # measured 3.25 % (one pass over the file: 3.25 % too)
    # No duplicates and no gaps at the ~24 seams. A duplicated word is an insertion, a lost
    # one a deletion, so the windows may not add insertions or deletions to what decoding the
    # file in one pass makes (both scored against the reference). Not "equal to the one-pass
    # text": the BiLSTM's context differs inside the windows, which changes words anywhere in
    # them (either way: one pass over minutes of audio is no better), and that is not seams.
    _check_seams(asr, audio, ref, t.text)
    starts = [x.start_s for x in t.words]
    assert starts == sorted(starts)
    for a, b in zip(t.words, t.words[1:]):
        assert a.start_s < a.end_s <= b.start_s + 1e-6
    assert t.words[-1].end_s <= t.duration_s
    # Every word lies inside the span of a sentence (times are absolute, not per window).
    bounds = np.array([(a, b) for a, b, _ in sents])
    for x in t.words:
        mid = (x.start_s + x.end_s) / 2
        assert np.any((bounds[:, 0] - 0.15 <= mid) & (mid <= bounds[:, 1] + 0.15)), x


def test_small_windows_stitch_like_one_pass(asr):
    """Force many seams (6 s cores) on 50 s of speech: the text equals decoding it whole."""
    from ctcasr import Transcriber

    audio, sents = _long_speech(50 / 60, seed=3)
    small = Transcriber(asr.model, asr.tokenizer, asr.device, decoder="greedy")
    small.max_core_s, small.search_s, small.margin_s = 6.0, 3.0, 1.5
    t = small.transcribe(audio, sample_rate=SR)
    ref = " ".join(s[2] for s in sents)
    _check_seams(asr, audio, ref, t.text)
    assert corpus_errors([ref], [t.text])[0].rate <= 0.08
    assert [x.start_s for x in t.words] == sorted(x.start_s for x in t.words)


def test_stereo_44k_long_file_through_the_cli(tmp_path, ten_minutes, capsys):
    """A long 44.1 kHz stereo file, JSON and SRT out: times in seconds, cues in order."""
    import json

    from ctcasr.cli import main

    _, audio, sents = ten_minutes
    part = audio[: 70 * SR]
    import librosa

    x44 = librosa.resample(part, orig_sr=SR, target_sr=44100)
    path = tmp_path / "talk.wav"
    sf.write(path, np.stack([x44, 0.5 * x44], axis=1), 44100, subtype="PCM_16")
    out = tmp_path / "out"
    assert main(["transcribe", "--model", "digits", str(path), "--decoder", "greedy", "--format", "json", "-o", str(out)]) == 0
    d = json.loads((out / "talk.json").read_text())
    assert 69.9 < d["duration_s"] < 70.1
    assert d["words"] and d["words"][-1]["end_s"] <= d["duration_s"]
    assert main(["transcribe", "--model", "digits", str(path), "--decoder", "greedy", "--format", "srt"]) == 0
    srt = capsys.readouterr().out
    blocks = [b for b in srt.strip().split("\n\n") if b]
    assert len(blocks) >= 5 and blocks[0].startswith("1\n00:00:0")
    ends = [b.splitlines()[1].split(" --> ")[1] for b in blocks]
    assert ends == sorted(ends)


def test_decoded_size_cap_refuses_whole_file_loads_but_windows_still_work(tmp_path, monkeypatch, asr):
    """load_audio refuses a file whose header promises more decoded bytes than the cap (a
    few KB of FLAC can declare hours); the Transcriber reads windows, so it is unaffected.
    A FIFO is refused before anything opens it (it would block a reader forever)."""
    import os

    import ctcasr.audio
    from ctcasr.audio import load_audio

    x = np.zeros(SR * 2, np.float32)
    p = tmp_path / "a.flac"
    sf.write(p, x, SR)
    monkeypatch.setattr(ctcasr.audio, "MAX_DECODED_BYTES", 1000)
    with pytest.raises(AudioError, match=r"a\.flac: .*GiB decoded .*ctcasr transcribe"):
        load_audio(p)
    assert asr.transcribe(p).duration_s == 2.0
    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)
    with pytest.raises(AudioError, match="not a regular file"):
        AudioSource(fifo, SR)


def test_silence_and_faint_noise_give_no_words(asr):
    """The model never heard silence in training: without the silence gate 10 s of zeros
    came out as "one one one ..." and a minute of faint room noise inside a recording as
    ~100 invented words."""
    rng = np.random.default_rng(5)
    t = asr.transcribe(np.zeros(10 * SR, np.float32), sample_rate=SR)
    assert t.text == "" and t.words == []
    t = asr.transcribe((rng.standard_normal(5 * SR) * 1e-3).astype(np.float32), sample_rate=SR)  # -60 dBFS
    assert t.text == ""
    # speech, a minute of -70 dBFS noise, speech: words only where the speech is
    speech, sents = _long_speech(8 / 60, seed=4)
    gap = (rng.standard_normal(60 * SR) * 3e-4).astype(np.float32)
    audio = np.concatenate([speech, gap, speech])
    t = asr.transcribe(audio, sample_rate=SR)
    ref = " ".join(s[2] for s in sents)
    assert corpus_errors([ref + " " + ref], [t.text])[0].rate <= 0.1, t.text
    assert not [w for w in t.words if len(speech) / SR + 1 < w.start_s < (len(speech) + len(gap)) / SR - 1]
    # and the gate can be switched off
    from ctcasr import Transcriber

    everything = Transcriber(asr.model, asr.tokenizer, asr.device, decoder="greedy")
    everything.silence_dbfs = -np.inf
    assert not everything._is_silent(np.zeros(SR, np.float32))
