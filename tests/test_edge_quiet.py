"""Quiet around the speech (Transcriber.edge_quiet_s, `--edge-quiet`): seconds of silence or
room tone before and after an utterance must not change what the model hears of the
speech, nor the word times in the input's seconds."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "data" / "samples" / "digits"


def _samples():
    from ctcasr.audio import load_audio

    out = []
    for line in open(SAMPLES / "samples.jsonl"):
        s = json.loads(line)
        out.append((load_audio(str(SAMPLES / s["audio_filepath"]), 16000), s["text"]))
    return out


@pytest.fixture(scope="module")
def asr():
    from ctcasr import Transcriber

    return Transcriber.load("digits", device="cpu", decoder="greedy")


def test_kept_segments_keep_edge_quiet_s_around_the_loud_frames(asr):
    sr = 16000
    x = np.zeros(9 * sr, np.float32)
    tone = (0.3 * np.sin(np.arange(sr) * 0.2)).astype(np.float32)
    x[2 * sr: 3 * sr] = tone
    x[6 * sr: 7 * sr] = tone
    x[: 2 * sr] += 1e-4 * np.random.default_rng(0).standard_normal(2 * sr).astype(np.float32)  # -80 dBFS
    segs = asr._kept_segments(x)
    want = [(1.7, 3.3), (5.7, 7.3)]  # the 3 s pause inside keeps 0.3 s on each side
    assert len(segs) == 2
    for (a, b), (wa, wb) in zip(segs, want):
        assert abs(a - wa * sr) <= 0.03 * sr and abs(b - wb * sr) <= 0.03 * sr
    # times in what the model heard map back to the input's
    heard_1 = (segs[0][1] - segs[0][0]) / sr
    assert asr._input_time(segs, 0.0) == pytest.approx(segs[0][0] / sr)
    assert asr._input_time(segs, heard_1 + 0.5) == pytest.approx(segs[1][0] / sr + 0.5)
    # a pause of under twice edge_quiet_s stays whole
    y = np.zeros(4 * sr, np.float32)
    y[sr: int(1.5 * sr)] = tone[: sr // 2]
    y[int(2.0 * sr): int(2.5 * sr)] = tone[: sr // 2]
    assert len(asr._kept_segments(y)) == 1
    asr.edge_quiet_s = None
    try:
        assert asr._kept_segments(x) == [(0, len(x))]
    finally:
        asr.edge_quiet_s = 0.3
    # nothing quiet: nothing cut
    assert asr._kept_segments(tone) == [(0, len(tone))]


@pytest.mark.parametrize("pad", ["zeros", "room"])
def test_quiet_around_the_samples_changes_no_word_and_shifts_times_by_the_pad(asr, pad):
    """The shipped model was trained on TTS sentences with under 0.4 s of edge silence;
    1.5 s of digital silence (or -70 dBFS room tone) on both sides used to shift the whole
    input's gain and mean log-mel, and took its WER on clean test utterances from 2.1 to
    7.4 % (noisy: 4.8 to 28.8 %)."""
    sr = 16000
    rng = np.random.default_rng(3)
    for x, text in _samples():
        n = int(1.5 * sr)
        if pad == "zeros":
            lead, trail = np.zeros(n, np.float32), np.zeros(n, np.float32)
        else:
            lead, trail = (10 ** (-70 / 20) * rng.standard_normal((2, n))).astype(np.float32)
        plain = asr.transcribe(x, sample_rate=sr)
        padded = asr.transcribe(np.concatenate([lead, x, trail]), sample_rate=sr)
        assert plain.text == padded.text == text
        assert padded.duration_s == pytest.approx(plain.duration_s + 3.0, abs=1e-3)
        for w, v in zip(plain.words, padded.words):
            assert v.start_s - w.start_s == pytest.approx(1.5, abs=0.065)  # two 30 ms frames: the cut moves the frame grid
            assert v.end_s - w.end_s == pytest.approx(1.5, abs=0.065)  # two 30 ms frames: the cut moves the frame grid


def test_cli_edge_quiet_values(tmp_path):
    wav = str(SAMPLES / "awb_0.wav")
    for v in ("all", "0", "0.5"):
        r = subprocess.run([sys.executable, "-m", "ctcasr", "transcribe", wav, "--edge-quiet", v],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip().endswith("three one two eight oh four")
    for v in ("-1", "soon", "inf"):
        r = subprocess.run([sys.executable, "-m", "ctcasr", "transcribe", wav, "--edge-quiet", v],
                           capture_output=True, text=True)
        assert r.returncode != 0 and "--edge-quiet" in r.stderr and "Traceback" not in r.stderr


def test_a_long_pause_inside_changes_no_word_and_keeps_times_in_the_input(asr):
    """Two samples with 2.5 s of digital silence between them: the pause reaches the model as
    0.6 s, and the second sample's words keep their place in the input."""
    sr = 16000
    (x1, t1), (x2, t2) = _samples()[:2]
    gap = np.zeros(int(2.5 * sr), np.float32)
    joined = asr.transcribe(np.concatenate([x1, gap, x2]), sample_rate=sr)
    assert joined.text == f"{t1} {t2}"
    second = asr.transcribe(x2, sample_rate=sr)
    shift = (len(x1) + len(gap)) / sr
    for w, v in zip(second.words, joined.words[len(t1.split()):]):
        assert v.start_s - w.start_s == pytest.approx(shift, abs=0.065)
        assert v.end_s - w.end_s == pytest.approx(shift, abs=0.065)


def test_input_time_puts_an_end_at_a_join_before_the_cut():
    from ctcasr.audio import input_time

    segs = [(16000, 32000), (80000, 96000)]  # 1-2 s and 5-6 s of the input, heard as 0-2 s
    assert input_time(segs, 1.0, 16000) == pytest.approx(5.0)  # a start: after the cut pause
    assert input_time(segs, 1.0, 16000, end=True) == pytest.approx(2.0)  # an end: before it
    assert input_time(segs, 0.5, 16000, end=True) == input_time(segs, 0.5, 16000) == pytest.approx(1.5)


@pytest.mark.parametrize("pad", ["zeros", "room"])
def test_align_hears_the_same_speech_with_quiet_around_it(asr, pad):
    """`ctcasr align` cuts the quiet as transcription does: 2 s of silence or room tone on
    both sides moves every word edge by the pad (before the cut and the speech detector's
    noise-floor fix, one of these samples' word edges moved 0.31 s more)."""
    from ctcasr.align import align

    sr = 16000
    rng = np.random.default_rng(4)
    n = 2 * sr
    for x, text in _samples():
        if pad == "zeros":
            lead, trail = np.zeros(n, np.float32), np.zeros(n, np.float32)
        else:
            lead, trail = (10 ** (-70 / 20) * rng.standard_normal((2, n))).astype(np.float32)
        plain = align(asr.model, asr.tokenizer, x, text)
        padded = align(asr.model, asr.tokenizer, np.concatenate([lead, x, trail]), text)
        assert [w.text for w in padded] == text.split()
        for w, v in zip(plain, padded):
            # three 30 ms frames: the cut moves the frame grid, and with it where speech
            # runs and delimiters start (the failure guarded against moved edges 0.3 s)
            assert v.start_s - w.start_s == pytest.approx(2.0, abs=0.1)
            assert v.end_s - w.end_s == pytest.approx(2.0, abs=0.1)
            assert [t.text for t in v.tokens] == [t.text for t in w.tokens]
            # token spikes are not where the sounds are (align._word_frames): the first
            # letters sit at the first frame heard, i.e. up to the 0.3 s of quiet kept earlier
            for t, u in zip(w.tokens, v.tokens):
                assert 2.0 - 0.3 - 0.1 <= u.start_s - t.start_s <= 2.0 + 0.1
        # off: the model hears it all, and times are still the input's
        whole = align(asr.model, asr.tokenizer, np.concatenate([lead, x, trail]), text, edge_quiet_s=None)
        assert whole[0].start_s > 1.5 and whole[-1].end_s < len(x) / sr + 2.5


def test_align_keeps_the_whole_input_when_the_cut_is_too_short_for_the_transcript(asr):
    from ctcasr.align import align

    sr = 16000
    x, text = _samples()[0]
    quiet = np.zeros(3 * sr, np.float32)
    # a transcript that needs more frames than the speech and 0.6 s of quiet have
    long = " ".join([text] * 4)
    words = align(asr.model, asr.tokenizer, np.concatenate([x, quiet]), long)
    assert [w.text for w in words] == long.split()
    assert words[-1].end_s > len(x) / sr  # some words had to go into the quiet


def test_cli_align_edge_quiet(tmp_path):
    wav = str(SAMPLES / "awb_0.wav")
    r = subprocess.run([sys.executable, "-m", "ctcasr", "align", wav, "three one two eight oh four",
                        "--edge-quiet", "all", "--format", "ctm"], capture_output=True, text=True)
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 6, r.stderr
    r = subprocess.run([sys.executable, "-m", "ctcasr", "align", wav, "three", "--edge-quiet", "x"],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "--edge-quiet" in r.stderr and "Traceback" not in r.stderr
