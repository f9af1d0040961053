"""Forced alignment (ctcasr.align): word times against known boundaries, the shipped samples,
output formats, and the errors a user can hit."""

import argparse
import itertools
import json
import re
from pathlib import Path

import numpy as np
import pytest

from ctcasr import synth
from ctcasr.align import (
    AlignedWord,
    add_parser,
    align,
    format_alignment,
    frames_needed,
    transcript_ids,
)
from ctcasr.errors import AudioError, CTCASRError, DataError, TokenizerError
from ctcasr.model import load_model_dir

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "data" / "samples" / "digits"
SR = 16000
DIGIT_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "oh"]
# Voices the digits recipe holds out of training (recipes/digits/run.sh), so the model is
# timed on speakers it never heard.
HELD_OUT = ["festival:ked_diphone", "flite:awb", "espeak:en-us+f3", "espeak:en-gb+john", "espeak:en-us+m5"]


@pytest.fixture(scope="module")
def digits():
    return load_model_dir("digits")


def _samples():
    return [json.loads(line) for line in (SAMPLES / "samples.jsonl").read_text().splitlines()]


def _parse(argv):
    p = argparse.ArgumentParser(prog="ctcasr")
    add_parser(p.add_subparsers(dest="command"))
    return p.parse_args(argv)


# ------------------------------------------------------------------------ timing accuracy
def _boundary_errors(words_audio, digits, rng, gaps, boundaries="speech"):
    """Concatenate single-word recordings with silences drawn from ``gaps`` (seconds) and
    return the aligned-minus-true start and end times of every word, in seconds."""
    model, tok = digits
    errs = []
    for items in words_audio.values():
        order = rng.permutation(len(items))[:6]
        pieces = [np.zeros(int(rng.uniform(0.1, 0.3) * SR), np.float32)]
        pos, truth, text = len(pieces[0]), [], []
        for k in order:
            w, x = items[k]
            truth.append((pos / SR, (pos + len(x)) / SR))
            text.append(w)
            gap = np.zeros(int(rng.uniform(*gaps) * SR), np.float32)
            pieces += [x, gap]
            pos += len(x) + len(gap)
        got = align(model, tok, np.concatenate(pieces), " ".join(text), boundaries=boundaries)
        assert [a.text for a in got] == text
        for a, (s, e) in zip(got, truth):
            errs += [a.start_s - s, a.end_s - e]
    return np.abs(np.array(errs)) * 1000


def test_word_boundaries_match_known_segments(make_corpus, digits):
    # Every digit word by five held-out voices (with make_corpus's rate, pitch and level
    # variation); each recording cut to its sound (-40 dB below its loudest 10 ms), so the
    # true word edges are known exactly once the words are strung together with silences.
    manifest, stats = make_corpus(DIGIT_WORDS, voices=HELD_OUT, utts_per_text=len(HELD_OUT))
    assert stats.failures == 0
    from ctcasr.audio import load_audio

    words_audio = {}
    for line in manifest.read_text().splitlines():
        u = json.loads(line)
        x = load_audio(manifest.parent / u["audio_filepath"], SR)
        words_audio.setdefault(u["voice"], []).append((u["text"], synth.trim_silence(x, SR, -40.0, 0.0)))
    assert len(words_audio) == len(HELD_OUT)

    rng = np.random.default_rng(0)
    short = _boundary_errors(words_audio, digits, rng, (0.03, 0.15))      # connected-ish speech
    pauses = _boundary_errors(words_audio, digits, rng, (0.2, 0.6))       # words with pauses
    raw = _boundary_errors(words_audio, digits, np.random.default_rng(0), (0.03, 0.15), "tokens")
    both = np.r_[short, pauses]
    print(f"\nboundary error ms (speech): short gaps median {np.median(short):.0f} p90 "
          f"{np.percentile(short, 90):.0f} max {short.max():.0f}; pauses median {np.median(pauses):.0f} "
          f"p90 {np.percentile(pauses, 90):.0f} max {pauses.max():.0f}; "
          f"raw token spans median {np.median(raw):.0f} p90 {np.percentile(raw, 90):.0f} max {raw.max():.0f}")
    # Measured (6 seeds of gap draws): median 10-13 ms, p90 57-83 ms, max 120-234 ms.
    assert np.median(both) < 40
    assert np.percentile(both, 90) < 150 and both.max() < 400
    # The refinement is the point of the "speech" boundaries: raw CTC spikes are far off.
    assert np.median(short) < np.median(raw)


# ------------------------------------------------------------------------ shipped samples
@pytest.mark.parametrize("sample", _samples(), ids=lambda s: s["audio_filepath"])
def test_shipped_samples_align(sample, digits):
    from ctcasr.audio import load_audio

    model, tok = digits
    x = load_audio(SAMPLES / sample["audio_filepath"], SR)
    words = align(model, tok, x, sample["text"])
    assert [w.text for w in words] == sample["text"].split()
    dur = len(x) / SR
    for a, b in itertools.pairwise(words):
        assert a.end_s <= b.start_s + 1e-9
    for w in words:
        assert 0 <= w.start_s < w.end_s <= dur + 1e-9
        assert 0 < w.confidence <= 1
        assert "".join(t.text for t in w.tokens) == w.text
        assert all(t.start_s < t.end_s for t in w.tokens)
    # The right transcript is confidently aligned; a wrong one of the same length is not.
    wrong = " ".join("nine" if w != "nine" else "six" for w in sample["text"].split())
    right_conf = np.mean([w.confidence for w in words])
    wrong_conf = np.mean([w.confidence for w in align(model, tok, x, wrong)])
    assert right_conf > 0.8 and wrong_conf < 0.5, (right_conf, wrong_conf)


def test_token_boundaries_are_the_tokens_frames(digits):
    from ctcasr.audio import load_audio

    model, tok = digits
    s = _samples()[0]
    x = load_audio(SAMPLES / s["audio_filepath"], SR)
    for w in align(model, tok, x, s["text"], boundaries="tokens"):
        assert w.start_s == w.tokens[0].start_s and w.end_s == w.tokens[-1].end_s


def test_accepts_other_rates_and_normalises_the_transcript(digits):
    from ctcasr.audio import load_audio

    model, tok = digits
    s = _samples()[2]
    x = load_audio(SAMPLES / s["audio_filepath"], SR)
    at16 = align(model, tok, x, s["text"])
    x8 = load_audio(SAMPLES / s["audio_filepath"], 8000)
    at8 = align(model, tok, x8, s["text"].upper().replace(" ", ",  "), sample_rate=8000)
    assert [w.text for w in at8] == [w.text for w in at16]
    for a, b in zip(at8, at16):
        assert abs(a.start_s - b.start_s) <= 0.1 and abs(a.end_s - b.end_s) <= 0.1


# ------------------------------------------------------------------------ errors
def test_unknown_characters_are_named(digits):
    model, tok = digits
    with pytest.raises(TokenizerError, match=r"does not know: '3', 'a', 'l', 'p'") as e:
        align(model, tok, np.zeros(SR, np.float32), "three 3 apples")
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("text", ["", "   ", "?!, ..."])
def test_empty_transcript(digits, text):
    model, tok = digits
    with pytest.raises(DataError, match="transcript.*give the words spoken"):
        align(model, tok, np.zeros(SR, np.float32), text)


def test_transcript_too_long_for_the_audio(digits):
    model, tok = digits
    # 0.3 s of audio gives 9 frames; "three three" needs 11 tokens + 1 repeat ("ee") x 2.
    assert frames_needed(transcript_ids(tok, "three three")) == 13
    with pytest.raises(DataError, match=r"need at least 13 frames \(0\.39 s\) but the audio gives 9 "):
        align(model, tok, np.zeros(int(0.3 * SR), np.float32), "three three")


def test_over_the_memory_limit_is_refused_before_the_model_runs(digits, monkeypatch):
    model, tok = digits

    def boom(*a, **k):
        raise AssertionError("the model ran")

    monkeypatch.setattr(model, "forward", boom)
    x = np.zeros(60 * SR, np.float32)
    T = int(model.output_lengths(len(x)))
    # "one two three": 13 tokens, 27 CTC states (a blank around each).
    with pytest.raises(DataError, match=rf"too long to align in one call: {T} frames x 27 CTC states.*parts of at"):
        align(model, tok, x, "one two three", max_bytes=40_000)
    monkeypatch.undo()
    assert len(align(model, tok, x[: 3 * SR], "one two three", max_bytes=40_000)) == 3


def test_bad_audio_is_an_audio_error(digits):
    model, tok = digits
    with pytest.raises(AudioError):
        align(model, tok, np.full(SR, np.nan, np.float32), "one")
    with pytest.raises(AudioError):
        align(model, tok, np.zeros(0, np.float32), "one")


def test_cli_unreadable_audio(tmp_path):
    bad = tmp_path / "x.wav"
    bad.write_bytes(b"RIFF not really a wav file" * 20)
    a = _parse(["align", "--model", "digits", str(bad), "one two", "--device", "cpu"])
    with pytest.raises(AudioError, match="x.wav"):
        a.func(a)
    a = _parse(["align", "--model", "digits", str(tmp_path / "missing.wav"), "one", "--device", "cpu"])
    with pytest.raises(AudioError, match="no such file"):
        a.func(a)


# ------------------------------------------------------------------------ command and formats
def test_cli_json_ctm_srt(tmp_path, capsys):
    s = _samples()[0]
    wav = str(SAMPLES / s["audio_filepath"])
    a = _parse(["align", "--model", "digits", wav, s["text"], "--device", "cpu"])
    assert a.func(a) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["transcript"] == s["text"] and [w["word"] for w in out["words"]] == s["text"].split()
    w0 = out["words"][0]
    assert set(w0) == {"word", "start_s", "end_s", "confidence", "tokens"}
    assert "".join(t["token"] for t in w0["tokens"]) == w0["word"]

    ctm = tmp_path / "out.ctm"
    a = _parse(["align", "--model", "digits", wav, s["text"], "--format", "ctm", "-o", str(ctm), "--device", "cpu"])
    assert a.func(a) == 0 and capsys.readouterr().out == ""
    lines = ctm.read_text().splitlines()
    assert len(lines) == len(s["text"].split())
    for line, word in zip(lines, s["text"].split()):
        utt, ch, _start, dur, w, conf = line.split()
        assert (utt, ch, w) == ("awb_0", "1", word) and float(dur) > 0 and 0 < float(conf) <= 1

    srt = tmp_path / "out.srt"
    a = _parse(["align", "--model", "digits", wav, s["text"], "--format", "srt", "-o", str(srt), "--device", "cpu"])
    a.func(a)
    cues = srt.read_text().strip().split("\n\n")
    assert cues[0].startswith("1\n")
    assert re.match(r"\d\d:\d\d:\d\d,\d{3} --> \d\d:\d\d:\d\d,\d{3}$", cues[0].splitlines()[1])
    assert " ".join(c.splitlines()[2] for c in cues) == s["text"]


def test_cli_transcript_from_file_and_stdin(tmp_path, capsys, monkeypatch):
    import io

    s = _samples()[2]
    wav = str(SAMPLES / s["audio_filepath"])
    (tmp_path / "t.txt").write_text(s["text"] + "\n")
    a = _parse(["align", "--model", "digits", wav, f"@{tmp_path / 't.txt'}", "--format", "ctm", "--device", "cpu"])
    a.func(a)
    from_file = capsys.readouterr().out
    monkeypatch.setattr("sys.stdin", io.StringIO(s["text"]))
    a = _parse(["align", "--model", "digits", wav, "-", "--format", "ctm", "--device", "cpu"])
    a.func(a)
    assert capsys.readouterr().out == from_file and len(from_file.splitlines()) == 4
    a = _parse(["align", "--model", "digits", wav, f"@{tmp_path / 'nope.txt'}", "--device", "cpu"])
    with pytest.raises(DataError, match="transcript file not found"):
        a.func(a)


def test_srt_breaks_long_lines_and_pauses():
    words = [AlignedWord(f"w{i:02d}", i * 0.5, i * 0.5 + 0.4, 1.0) for i in range(20)]
    words += [AlignedWord("late", 30.0, 31.0, 1.0)]
    srt = format_alignment(words, "srt")
    cues = srt.strip().split("\n\n")
    assert all(len(c.splitlines()[2]) <= 42 for c in cues)
    assert cues[-1].splitlines()[1:] == ["00:00:30,000 --> 00:00:31,000", "late"]
    assert format_alignment(words, "vtt").startswith("WEBVTT\n\n00:00:00.000 --> ")
    with pytest.raises(CTCASRError):
        format_alignment(words, "docx")


def test_scripts_without_spaces_make_every_character_a_word():
    from ctcasr.align import align_log_probs
    from ctcasr.tokenizer import Tokenizer

    tok = Tokenizer(["φ", "好", "棒"], word_delimiter=None)
    frames = ["φ", "φ", "好", "φ", "φ", "棒", "φ", "棒", "φ", "φ"]
    lp = np.full((len(frames), 3), np.log(0.01 / 2))
    for t, f in enumerate(frames):
        lp[t, tok.tokens.index(f)] = np.log(0.99)
    ids = transcript_ids(tok, "好 棒棒")
    words = align_log_probs(lp, ids, tok, 0.03)
    assert [(w.text, w.start_s, w.end_s) for w in words] == [("好", 0.06, 0.09), ("棒", 0.15, 0.18), ("棒", 0.21, 0.24)]
    speech = np.array([False, True, True, True, True, True, True, True, True, False])
    words = align_log_probs(lp, ids, tok, 0.03, speech=speech)
    assert [w.text for w in words] == ["好", "棒", "棒"]
    assert words[0].start_s == 0.03 and words[-1].end_s == 0.27
    for a, b in itertools.pairwise(words):
        assert a.start_s < a.end_s <= b.start_s
