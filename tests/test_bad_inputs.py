"""The bad-input catalogue: every way a user's file or array can be wrong, one table each.

Each bad case must end in one of our exception types whose message names the file (and line,
where there is one) and the cause; each odd-but-valid case must simply work. The CLI turns
the errors into one line on stderr and a non-zero exit; training skips bad utterances and
says how many, by reason. (Unit tests of the normal paths live in test_audio.py,
test_data.py, test_tokenizer.py, test_frontend_model.py, test_greedy.py, test_beam.py.)
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from ctcasr.audio import load_audio, prepare_waveform
from ctcasr.cli import main
from ctcasr.data import read_manifest
from ctcasr.decoding import BeamSearchDecoder, DecodingError, GreedyDecoder, NGramLM
from ctcasr.errors import AudioError, CTCASRError, DataError, ModelError, TokenizerError
from ctcasr.model import load_model_dir
from ctcasr.tokenizer import Tokenizer

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "data" / "models" / "digits"
SR = 16000


def tone(sr, seconds=0.25, channels=1, hz=440.0):
    t = np.arange(round(sr * seconds)) / sr
    x = 0.3 * np.sin(2 * np.pi * hz * t)
    return np.stack([x * (0.5 + 0.1 * c) for c in range(channels)], axis=1) if channels > 1 else x


def _wav_bytes(tmp_path, **kw):
    p = tmp_path / "_good.wav"
    sf.write(p, tone(SR), SR, **kw)
    return p.read_bytes()


def _patched_wav(tmp_path, name, offset_from_fmt, fmt, value):
    """A valid 16-bit wav whose fmt chunk field at ``offset_from_fmt`` is overwritten."""
    b = bytearray(_wav_bytes(tmp_path, subtype="PCM_16"))
    j = b.find(b"fmt ")
    b[j + offset_from_fmt : j + offset_from_fmt + struct.calcsize(fmt)] = struct.pack(fmt, value)
    p = tmp_path / name
    p.write_bytes(bytes(b))
    return p


# --------------------------------------------------------------------------- audio files
def _missing(tmp_path):
    return tmp_path / "missing.wav"


def _directory(tmp_path):
    (tmp_path / "adir.wav").mkdir()
    return tmp_path / "adir.wav"


def _zero_bytes(tmp_path):
    (tmp_path / "empty.wav").write_bytes(b"")
    return tmp_path / "empty.wav"


def _truncated_header(n):
    def make(tmp_path):
        p = tmp_path / f"trunc{n}.wav"
        p.write_bytes(_wav_bytes(tmp_path)[:n])
        return p
    return make


def _header_only(tmp_path):
    p = tmp_path / "header_only.wav"
    p.write_bytes(_wav_bytes(tmp_path, subtype="PCM_16")[:44])  # RIFF + fmt + empty data chunk
    return p


def _truncated_flac(tmp_path):
    p = tmp_path / "cut.flac"
    sf.write(tmp_path / "full.flac", tone(SR), SR, format="FLAC")
    p.write_bytes((tmp_path / "full.flac").read_bytes()[:20])
    return p


def _bytes(name, data):
    def make(tmp_path):
        (tmp_path / name).write_bytes(data)
        return tmp_path / name
    return make


def _samples(name, x, subtype="FLOAT", sr=SR):
    def make(tmp_path):
        sf.write(tmp_path / name, x, sr, subtype=subtype)
        return tmp_path / name
    return make


BAD_AUDIO = [
    # id, make(tmp_path) -> path, words the message must contain
    ("missing file", _missing, ["no such file"]),
    ("directory", _directory, ["is a directory"]),
    ("zero bytes", _zero_bytes, ["empty (0 bytes)"]),
    ("header cut at 10 bytes", _truncated_header(10), ["cannot read audio"]),
    ("header cut at 30 bytes", _truncated_header(30), ["cannot read audio"]),
    ("header without data", _header_only, ["no samples"]),
    ("flac cut after its magic", _truncated_flac, ["cannot read audio"]),
    ("text in a .wav", _bytes("text.wav", b"this is not audio at all\n" * 20), ["cannot read audio"]),
    ("text in a .flac", _bytes("text.flac", b"hello\n" * 100), ["cannot read audio"]),
    ("random bytes", _bytes("rand.wav", np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes()),
     ["cannot read audio"]),
    ("zip file named .wav", _bytes("zip.wav", b"PK\x03\x04" + bytes(200)), ["cannot read audio"]),
    ("RIFF magic only", _bytes("riff.wav", b"RIFF"), ["cannot read audio"]),
    ("0 samples, mono", _samples("zero.wav", np.zeros(0)), ["no samples"]),
    ("0 samples, stereo", _samples("zero2.wav", np.zeros((0, 2))), ["no samples"]),
    ("all NaN", _samples("nan.wav", np.full(100, np.nan)), ["every sample is NaN"]),
    ("one +inf", _samples("inf.wav", np.r_[np.zeros(100), np.inf]), ["1 of 101 samples"]),
    ("NaN and -inf in doubles", _samples("ninf.wav", np.r_[np.zeros(8), -np.inf, np.nan], "DOUBLE"),
     ["2 of 10 samples"]),
    # Hostile headers: a rate of 1 Hz would make the resampler blow 1 MB up into gigabytes.
    ("header says 1 Hz", lambda p: _patched_wav(p, "sr1.wav", 12, "<I", 1), ["invalid sample rate 1 Hz"]),
    ("header says 0 Hz", lambda p: _patched_wav(p, "sr0.wav", 12, "<I", 0), ["invalid sample rate"]),
    ("header says 4 GHz", lambda p: _patched_wav(p, "srbig.wav", 12, "<I", 0xFFFFFFFF), ["invalid sample rate"]),
]


@pytest.mark.parametrize("make, words", [c[1:] for c in BAD_AUDIO], ids=[c[0] for c in BAD_AUDIO])
def test_bad_audio_files(tmp_path, make, words):
    path = make(tmp_path)
    with pytest.raises(AudioError) as ei:
        load_audio(path, SR)
    msg = str(ei.value)
    assert msg.startswith(str(path) + ":"), msg
    for w in words:
        assert w in msg, msg
    assert "\n" not in msg


def _write(name, x, sr, **kw):
    def make(tmp_path):
        sf.write(tmp_path / name, x, sr, **kw)
        return tmp_path / name
    return make


ODD_BUT_VALID = [
    # id, make, expected samples at 16 kHz, tone frequency to find (None: too short to tell)
    ("1 sample at 16 kHz", _write("one.wav", np.array([0.1]), SR), 1, None),
    ("1 sample at 8 kHz", _write("one8k.wav", np.array([0.1]), 8000), 2, None),
    ("1 sample at 48 kHz", _write("one48k.wav", np.array([0.1]), 48000), 1, None),
    ("1 sample, 6 channels", _write("one6.wav", np.full((1, 6), 0.1), SR), 1, None),
    ("all silence", _write("silence.wav", np.zeros(SR), SR), SR, None),
    ("8 kHz, 6 channels, unsigned 8-bit", _write("u8.wav", tone(8000, channels=6), 8000, subtype="PCM_U8"),
     4000, 440),
    ("8-bit signed AIFF", _write("s8.aiff", tone(SR), SR, format="AIFF", subtype="PCM_S8"), 4000, 440),
    ("44.1 kHz stereo 24-bit", _write("s24.wav", tone(44100, channels=2), 44100, subtype="PCM_24"), 4000, 440),
    ("48 kHz 6-channel float", _write("f6.wav", tone(48000, channels=6), 48000, subtype="FLOAT"), 4000, 440),
    ("48 kHz 32-bit int", _write("i32.wav", tone(48000), 48000, subtype="PCM_32"), 4000, 440),
    ("22.05 kHz double", _write("d.wav", tone(22050), 22050, subtype="DOUBLE"), 4000, 440),
    ("44.1 kHz 24-bit FLAC", _write("f24.flac", tone(44100), 44100, format="FLAC", subtype="PCM_24"), 4000, 440),
    ("flac named .wav", _write("flac.wav", tone(SR), SR, format="FLAC"), 4000, 440),
    ("wav named .mp3", _write("wav.mp3", tone(SR), SR, format="WAV"), 4000, 440),
    ("wav named .txt", _write("wav.txt", tone(SR), SR, format="WAV"), 4000, 440),
    ("wav without extension", _write("noext", tone(SR), SR, format="WAV"), 4000, 440),
    ("float beyond [-1, 1]", _write("loud.wav", 1e30 * tone(SR), SR, subtype="FLOAT"), 4000, 440),
]


@pytest.mark.parametrize("make, n, hz", [c[1:] for c in ODD_BUT_VALID], ids=[c[0] for c in ODD_BUT_VALID])
def test_odd_but_valid_audio_loads(tmp_path, make, n, hz):
    x = load_audio(make(tmp_path), SR)
    assert x.dtype == np.float32 and x.ndim == 1 and np.isfinite(x).all()
    assert abs(len(x) - n) <= 2, len(x)
    if hz:
        spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
        assert abs(np.argmax(spec) * SR / len(x) - hz) < 10


def test_truncated_data_chunk_reads_what_is_there(tmp_path):
    # A recording cut off mid-write (full header, half the data) is still speech: libsndfile
    # returns the frames present, and so do we.
    good = _wav_bytes(tmp_path, subtype="PCM_16")
    p = tmp_path / "half.wav"
    p.write_bytes(good[: 44 + (len(good) - 44) // 2])
    x = load_audio(p, SR)
    assert 0 < len(x) < len(tone(SR)) and np.isfinite(x).all()


BAD_ARRAYS = [
    ("3-D", np.zeros((2, 2, 2)), SR, "shape"),
    ("empty", np.zeros(0), SR, "no samples"),
    ("empty stereo", np.zeros((0, 2)), SR, "no samples"),
    ("NaN", np.r_[np.zeros(5), np.nan], SR, "NaN"),
    ("strings", np.array(["a", "b"]), SR, "real numbers"),
    ("complex", np.ones(4, complex), SR, "real numbers"),
    ("bools", np.ones(4, bool), SR, "real numbers"),
    ("ragged list", [[0.0, 1.0], [0.0]], SR, "cannot be read"),
    ("rate 0", np.zeros(10), 0, "sample rate"),
    ("rate NaN", np.zeros(10), float("nan"), "sample rate"),
    ("rate 1 Hz", np.zeros(10), 1, "sample rate"),
    ("negative rate", np.zeros(10), -16000, "sample rate"),
]


@pytest.mark.parametrize("x, sr, word", [c[1:] for c in BAD_ARRAYS], ids=[c[0] for c in BAD_ARRAYS])
def test_bad_arrays(x, sr, word):
    with pytest.raises(AudioError, match=word) as ei:
        prepare_waveform(x, sr, SR, name="mic")
    assert str(ei.value).startswith("mic:")


def test_two_hour_8khz_file_loads_with_sane_memory(tmp_path):
    """The loader side of long audio: a 2-hour 8 kHz file (115 MB) loads, resampled to 16 kHz,
    with memory close to what its input and output arrays need. In a child process, so
    the peak RSS is this load's alone. (About 3 s, so not marked slow.)"""
    import subprocess
    import sys

    code = r"""
import resource, sys, time
import numpy as np, soundfile as sf
from ctcasr.audio import load_audio
path, sr, minutes = sys.argv[1], 8000, 120
with sf.SoundFile(path, "w", sr, 1, "PCM_16") as f:
    block = 0.1 * np.sin(2 * np.pi * 300 * np.arange(sr * 60) / sr)
    for _ in range(minutes):
        f.write(block)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
t0 = time.time()
x = load_audio(path, 16000)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(len(x), x.dtype, bool(np.isfinite(x[::1000]).all()), base, peak, round(time.time() - t0, 2))
"""
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "long.wav")], capture_output=True, text=True,
                         timeout=300, check=False)
    assert out.returncode == 0, out.stderr
    n, dtype, finite, base, peak, _secs = out.stdout.split()
    n_in = 2 * 3600 * 8000
    assert int(n) == 2 * n_in and dtype == "float32" and finite == "True"
    # float32 input (230 MB) + float32 output (460 MB), plus slack for libraries. librosa's
    # resample path needed ~800 MB more than this (a second copy of the output).
    needed = 4 * n_in + 4 * 2 * n_in
    assert int(peak) - int(base) < 1.25 * needed + 150e6, (int(peak) - int(base)) / 1e6


# --------------------------------------------------------------------------- manifests
def _manifest_lines(tmp_path, lines, name="m.jsonl"):
    sf.write(tmp_path / "a.wav", tone(SR), SR)
    p = tmp_path / name
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p


def _rec(**kw):
    rec = {"audio_filepath": "a.wav", "duration": 0.25, "text": "one"}
    rec.update(kw)
    return json.dumps({k: v for k, v in rec.items() if v is not ...})


BAD_MANIFESTS = [
    # id, lines, "file:line: ..." message the DataError must contain (after the path)
    ("not JSON", ["hello there"], ":1: not a JSON object"),
    ("cut-off JSON", [_rec(), _rec()[:-5]], ":2: not a JSON object"),
    ("JSON null", ["null"], ":1: expected a JSON object, found NoneType"),
    ("JSON string", ['"a.wav one"'], ":1: expected a JSON object, found str"),
    ("nested a million deep", ["[" * 100000 + "]" * 100000], ":1: not a manifest record (JSON nested too deeply)"),
    ("no text", [_rec(text=...)], ":1: missing key(s) text"),
    ("no audio_filepath", [_rec(audio_filepath=...)], ":1: missing key(s) audio_filepath"),
    ("no keys at all", ["{}"], ":1: missing key(s) audio_filepath, text"),
    ("text a number", [_rec(text=5)], ":1: audio_filepath and text must be strings"),
    ("path a list", [_rec(audio_filepath=["a.wav"])], ":1: audio_filepath and text must be strings"),
    ("empty path", [_rec(audio_filepath="")], ":1: audio_filepath is empty"),
    ("duration a word", [_rec(duration="long")], ":1: duration 'long' is not a number"),
    ("duration true", [_rec(duration=True)], ":1: duration True is not a number"),
    ("duration NaN", [_rec().replace("0.25", "NaN")], ":1: duration nan must be a non-negative number"),
    ("duration Infinity", [_rec().replace("0.25", "Infinity")], ":1: duration inf must be a non-negative"),
    ("duration negative", [_rec(duration=-1)], ":1: duration -1.0 must be a non-negative number"),
    ("offset a word", [_rec(offset="start")], ":1: offset 'start' is not a number"),
    ("offset negative", [_rec(offset=-2)], ":1: offset -2.0 must be a non-negative number"),
    ("duplicated id", [_rec(id="u1"), _rec(id="u2"), _rec(id="u1")], ":3: utterance id 'u1' already used on line 1"),
    ("duplicated id, int and str", [_rec(id=7), _rec(id="7")], ":2: utterance id '7' already used on line 1"),
    ("duplicated id via utt_id", [_rec(utt_id="x"), _rec(id="x")], ":2: utterance id 'x' already used on line 1"),
]


@pytest.mark.parametrize("lines, expected", [c[1:] for c in BAD_MANIFESTS], ids=[c[0] for c in BAD_MANIFESTS])
def test_bad_manifest_lines(tmp_path, lines, expected):
    p = _manifest_lines(tmp_path, lines)
    with pytest.raises(DataError) as ei:
        read_manifest(p)
    assert str(ei.value).startswith(str(p) + expected), str(ei.value)


def test_bad_manifest_files(tmp_path):
    with pytest.raises(DataError, match="manifest not found") as ei:
        read_manifest(tmp_path / "none.jsonl")
    assert str(tmp_path / "none.jsonl") in str(ei.value)
    p = tmp_path / "latin1.jsonl"
    p.write_bytes('{"audio_filepath": "a.wav", "text": "caf\xe9"}\n'.encode("latin-1"))
    with pytest.raises(DataError, match=r"latin1.jsonl: not UTF-8 text"):
        read_manifest(p)
    # A directory is read as a Kaldi data dir; one without wav.scp says so.
    with pytest.raises(DataError, match="Kaldi data dir has no wav.scp"):
        read_manifest(tmp_path)


def test_manifest_odd_but_valid(tmp_path, monkeypatch):
    (tmp_path / "corpus" / "audio").mkdir(parents=True)
    sf.write(tmp_path / "corpus" / "audio" / "a.wav", tone(SR), SR)
    sf.write(tmp_path / "b.wav", tone(SR), SR)
    lines = [
        json.dumps({"audio_filepath": "audio/a.wav", "text": "one", "id": 0}),           # id 0 is an id
        json.dumps({"audio_filepath": "../b.wav", "text": "", "duration": "0.25"}),       # number as a string
        "",                                                                               # blank line
        json.dumps({"audio_filepath": "audio/missing.wav", "text": "two\u2028three\x85"}),  # raw U+2028/U+0085
    ]
    m = tmp_path / "corpus" / "m.jsonl"
    m.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(lines).encode("utf-8"))  # BOM and CRLF (Windows editors)
    monkeypatch.chdir(tmp_path / "corpus" / "audio")  # relative paths resolve against the manifest, not the cwd
    utts = read_manifest(m)
    assert [u.id for u in utts] == ["0", "m-0000002", "m-0000004"]
    assert utts[0].audio_filepath == str(tmp_path / "corpus" / "audio" / "a.wav")
    assert utts[0].duration == pytest.approx(0.25)  # read from the header
    assert Path(utts[1].audio_filepath).resolve() == tmp_path / "b.wav" and utts[1].duration == 0.25
    assert utts[2].text == "two\u2028three\x85"
    assert utts[2].duration == 0.0  # unreadable: skipped and counted when the data is filtered


BAD_KALDI = [
    ("segments with words for times", {"segments": "r1 r1 zero 1.0\n"}, "segments:1: start/end are not numbers"),
    ("segments naming an unknown recording", {"segments": "s1 r9 0 1\n"}, "segments:1: recording 'r9' not in wav.scp"),
    ("segments line too short", {"segments": "s1 r1 0\n"}, "segments:1: expected at least 4 fields"),
    ("wav.scp line without a path", {"wav.scp": "r1\n"}, "wav.scp:1: expected at least 2 fields"),
    ("duplicated id in text", {"text": "r1 one\nr1 two\n"}, "text:2: id 'r1' already used on line 1"),
]


@pytest.mark.parametrize("files, expected", [c[1:] for c in BAD_KALDI], ids=[c[0] for c in BAD_KALDI])
def test_bad_kaldi_dirs(tmp_path, files, expected):
    d = tmp_path / "data"
    d.mkdir()
    sf.write(tmp_path / "r1.wav", tone(SR), SR)
    (d / "wav.scp").write_text(f"r1 {tmp_path / 'r1.wav'}\n")
    (d / "text").write_text("r1 one\n")
    for name, content in files.items():
        (d / name).write_text(content)
    with pytest.raises(DataError) as ei:
        read_manifest(d)
    assert str(d) in str(ei.value) and expected in str(ei.value), str(ei.value)


def test_kaldi_entries_without_text_are_counted(tmp_path, caplog):
    d = tmp_path / "data"
    d.mkdir()
    for r in ("r1", "r2", "r3"):
        sf.write(tmp_path / f"{r}.wav", tone(SR), SR)
    (d / "wav.scp").write_text("".join(f"{r} ../{r}.wav\n" for r in ("r1", "r2", "r3")))
    (d / "text").write_text("r2 two\n")
    with caplog.at_level(logging.WARNING, logger="ctcasr"):
        assert [u.id for u in read_manifest(d)] == ["r2"]
    assert f"{d}: 2 utterance(s) have no line in text; skipped" in caplog.text


# --------------------------------------------------------------------------- text
def test_tokenizer_bad_text_and_ids():
    tok = Tokenizer.build(["one two"])
    with pytest.raises(TokenizerError, match=r"outside the vocabulary: 'xyz'"):
        tok.encode("one xyz")
    assert tok.encode("") == [] and tok.encode(" !? ") == []  # empty after normalisation: no error here
    for ids in ([len(tok)], [-1], [1, 99]):
        with pytest.raises(TokenizerError, match="outside the vocabulary"):
            tok.decode(ids)


# --------------------------------------------------------------------------- model dirs
@pytest.fixture
def model_dir(tmp_path):
    d = tmp_path / "model"
    shutil.copytree(SHIPPED, d)
    return d


def _edit_config(**changes):
    def edit(d):
        cfg = yaml.safe_load((d / "config.yaml").read_text())
        for k, v in changes.items():
            if "." in k:
                sec, key = k.split(".")
                cfg[sec][key] = v
            else:
                cfg[k] = v
        (d / "config.yaml").write_text(yaml.safe_dump(cfg))
    return edit


def _edit_state(fn):
    def edit(d):
        sd = torch.load(d / "model.pt", weights_only=True)
        torch.save(fn(sd), d / "model.pt")
    return edit


def _cut(path, keep):
    def edit(d):
        b = (d / path).read_bytes()
        (d / path).write_bytes(b[: int(keep * len(b)) if isinstance(keep, float) else keep])
    return edit


def _nan_head(sd):
    sd["head.weight"] = sd["head.weight"] * float("nan")
    return sd


BAD_MODELS = [
    # id, break(d), file the message must name, words it must contain
    ("no tokens.txt", lambda d: (d / "tokens.txt").unlink(), "", ["model directory has no tokens.txt"]),
    ("no config.yaml", lambda d: (d / "config.yaml").unlink(), "", ["has no config.yaml"]),
    ("no model.pt", lambda d: (d / "model.pt").unlink(), "", ["has no model.pt"]),
    ("tokens.txt a directory", lambda d: ((d / "tokens.txt").unlink(), (d / "tokens.txt").mkdir()), "",
     ["has no tokens.txt"]),
    ("one token more than the output layer", lambda d: (d / "tokens.txt").write_text(
        (d / "tokens.txt").read_text() + "y\n"), "",
     ["tokens.txt has 18 tokens", "output layer has 17"]),
    ("one token fewer", lambda d: (d / "tokens.txt").write_text("\n".join(
        (d / "tokens.txt").read_text().split("\n")[:-2]) + "\n"), "", ["tokens.txt has 16 tokens"]),
    ("tokens.txt empty", lambda d: (d / "tokens.txt").write_text(""), "tokens.txt", ["empty tokens file"]),
    ("tokens.txt binary", lambda d: (d / "tokens.txt").write_bytes(b"\xff\xfe\x00"), "tokens.txt", ["not UTF-8"]),
    ("config from a newer ctcasr", _edit_config(format_version=2), "config.yaml", ["newer", "upgrade ctcasr"]),
    ("format_version 1.1", _edit_config(format_version="1.1"), "config.yaml", ["not a positive whole number"]),
    ("format_version 0", _edit_config(format_version=0), "config.yaml", ["not a positive whole number"]),
    ("format_version true", _edit_config(format_version=True), "config.yaml", ["not a positive whole number"]),
    ("frontend.sample_rate 0", _edit_config(**{"frontend.sample_rate": 0}), "config.yaml",
     ["frontend.sample_rate must be a whole number >= 1000, not 0"]),
    ("frontend.stack 0", _edit_config(**{"frontend.stack": 0}), "config.yaml", ["frontend.stack must be"]),
    ("frontend.hop_ms a word", _edit_config(**{"frontend.hop_ms": "ten"}), "config.yaml", ["frontend.hop_ms must be"]),
    ("unknown config key", _edit_config(decoder={"beam": 3}), "config.yaml", ["unknown key 'decoder'"]),
    ("encoder a list", _edit_config(encoder=[1, 2]), "config.yaml", ["config.encoder: expected a mapping"]),
    ("tokenizer a list", _edit_config(tokenizer=["x"]), "config.yaml", ["tokenizer: expected a mapping"]),
    ("hidden size a word", _edit_config(**{"encoder.hidden": "big"}), "config.yaml",
     ["model.encoder.hidden must be a whole number >= 1, not 'big'"]),
    ("config not YAML", lambda d: (d / "config.yaml").write_text("a: [\n"), "config.yaml", ["not valid YAML"]),
    ("config a scalar", lambda d: (d / "config.yaml").write_text("hello\n"), "config.yaml", ["expected a mapping"]),
    ("config with a python tag", lambda d: (d / "config.yaml").write_text(
        "!!python/object/apply:os.system ['echo pwned']\n"), "config.yaml", ["not valid YAML"]),
    ("weights for another config", _edit_config(**{"encoder.hidden": 64}), "model.pt",
     ["weights do not match config.yaml", "size mismatch"]),
    ("model.pt cut in half", _cut("model.pt", 0.5), "model.pt", ["cannot load weights", "truncated"]),
    ("model.pt cut to 10 bytes", _cut("model.pt", 10), "model.pt", ["cannot load weights"]),
    ("model.pt empty", _cut("model.pt", 0), "model.pt", ["cannot load weights"]),
    ("model.pt text", lambda d: (d / "model.pt").write_text("hello"), "model.pt", ["cannot load weights"]),
    ("model.pt a list", lambda d: torch.save([1, 2], d / "model.pt"), "model.pt", ["expected a state_dict"]),
    ("state_dict with a string", _edit_state(lambda sd: {**sd, "head.weight": "abc"}), "model.pt",
     ["'head.weight' is a str"]),
    ("state_dict missing a key", _edit_state(lambda sd: {k: v for k, v in sd.items() if k != "head.bias"}),
     "model.pt", ["Missing key(s)", "head.bias"]),
    ("state_dict with NaN weights", _edit_state(_nan_head), "model.pt", ["'head.weight' contain NaN"]),
    ("training checkpoint instead of weights", _edit_state(lambda sd: {"model": sd}), "model.pt",
     ["'model' is a dict"]),
]


@pytest.mark.parametrize("breaker, file, words", [c[1:] for c in BAD_MODELS], ids=[c[0] for c in BAD_MODELS])
def test_broken_model_dirs(model_dir, breaker, file, words):
    breaker(model_dir)
    with pytest.raises(ModelError) as ei:
        load_model_dir(model_dir)
    msg = str(ei.value)
    assert msg.startswith(str(model_dir / file) if file else str(model_dir)), msg
    for w in words:
        assert w in msg, msg


def test_model_names_that_do_not_exist(tmp_path):
    with pytest.raises(ModelError, match="not found") as ei:
        load_model_dir(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(ei.value)
    with pytest.raises(ModelError, match="neither a directory nor a shipped model.*digits"):
        load_model_dir("no-such-model")


# --------------------------------------------------------------------------- decoders
V = 4
TOKENS = ["φ", " ", "a", "b"]
LP = np.log(np.full((5, V), 1 / V))


def _with(i, j, value):
    x = LP.copy()
    x[i, j] = value
    return x


BAD_EMISSIONS = [
    # id, emissions, lengths, words of the message
    ("1-D", LP[0], None, "shape [T, V] or [B, T, V], got shape (4,)"),
    ("scalar", np.float64(0.0), None, "got shape ()"),
    ("4-D", LP[None, None], None, "got shape (1, 1, 5, 4)"),
    ("V too small", LP[:, :-1], None, "3 classes in the last axis but the decoder has 4 tokens"),
    ("V too large", np.log(np.full((5, V + 1), 1 / (V + 1))), None, "vocabulary size mismatch"),
    ("empty V", np.zeros((0, 0)), None, "vocabulary size mismatch"),
    ("NaN", _with(2, 1, np.nan), None, "NaN"),
    ("+inf", _with(0, 0, np.inf), None, "+inf"),
    ("not normalised", LP + 1.0, None, "neither log-probabilities"),
    ("ragged list", [[0.0] * V, [0.0] * 2], None, "cannot be read as an array"),
    ("strings", np.array([["a"] * V]), None, "numeric"),
    ("objects", np.array([[None] * V]), None, "numeric"),
    ("complex", LP.astype(complex), None, "real numbers"),
    ("bools", np.ones((3, V), bool), None, "numeric"),
    ("negative length", LP[None], [-1], "lengths must lie in [0, 5]"),
    ("length past T", LP[None], [6], "lengths must lie in [0, 5]"),
    ("fractional length", LP[None], [2.5], "whole numbers"),
    ("length a string", LP[None], ["3"], "whole numbers"),
    ("lengths of the wrong shape", np.stack([LP, LP]), [5], "lengths must have shape [2]"),
]


@pytest.mark.parametrize("kind", ["greedy", "beam"])
@pytest.mark.parametrize("x, lengths, words", [c[1:] for c in BAD_EMISSIONS], ids=[c[0] for c in BAD_EMISSIONS])
def test_bad_emissions(kind, x, lengths, words):
    dec = GreedyDecoder(TOKENS) if kind == "greedy" else BeamSearchDecoder(TOKENS)
    with pytest.raises(DecodingError, match=None) as ei:
        dec(x, lengths)
    assert isinstance(ei.value, ValueError)  # the documented type, still
    assert words in str(ei.value), str(ei.value)


BAD_DECODER_SETTINGS = [
    ("one token", {"tokens": ["φ"]}, "needs the blank and at least one other token"),
    ("blank out of range", {"blank": 4}, "blank index 4 outside"),
    ("blank a float", {"blank": 1.5}, "blank must be an integer"),
    ("blank a string", {"blank": "0"}, "blank must be an integer"),
    ("delimiter not a token", {"word_delimiter": "|"}, "word_delimiter '|' is not one of the tokens"),
    ("unknown input type", {"input_type": "softmax"}, "input_type must be one of"),
    ("delimiter is the blank", {"tokens": ["φ", "a", "b"], "word_delimiter": "φ"}, "is the blank's token"),
]

# settings only the beam decoder has
BAD_BEAM_SETTINGS = [
    ("beam a float", {"beam_size": 2.7}, "beam_size must be a whole number"),
    ("beam None", {"beam_size": None}, "beam_size must be a whole number"),
    ("lm_weight NaN", {"lm_weight": float("nan")}, "lm_weight must be a finite number"),
    ("word_score inf", {"word_score": float("inf")}, "word_score must be a finite number"),
    ("unk_score a string", {"unk_score": "-10"}, "unk_score must be a finite number"),
    ("hotword weight NaN", {"hotwords": {"ab": float("nan")}}, "weight must be a finite number"),
    ("hotwords a list", {"hotwords": ["ab"]}, "hotwords must be a dict"),
    ("unigrams a string", {"unigrams": "ab ba"}, "unigrams must be a list of words"),
    ("unigrams empty", {"unigrams": []}, "none of the 0 words"),
    ("unigrams unspellable", {"unigrams": ["AB", "BA"]}, "none of the 2 words of the unigram list"),
    ("word pieces with an LM", {"tokens": ["φ", " ", "a", " b"], "unigrams": ["a"]}, "carry the word delimiter"),
]


@pytest.mark.parametrize("kw, words", [c[1:] for c in BAD_BEAM_SETTINGS], ids=[c[0] for c in BAD_BEAM_SETTINGS])
def test_bad_beam_settings(kw, words):
    kw = {"tokens": TOKENS, **kw}
    with pytest.raises(DecodingError, match=None) as ei:
        BeamSearchDecoder(**kw)
    assert words in str(ei.value), str(ei.value)


def test_lm_in_another_case_is_refused_and_a_partly_spellable_one_warned_about(tmp_path):
    lm = NGramLM.from_text(["THE CAT SAT", "THE DOG"], order=2)
    with pytest.raises(DecodingError, match="none of the 4 words of the LM can be spelt.*'THE'.*case"):
        BeamSearchDecoder(["φ", " "] + list("acdeghost"), lm=lm)
    with pytest.warns(UserWarning, match="only 1 of the 4 words"):
        BeamSearchDecoder(["φ", " ", "T", "H", "E"], lm=lm)
    # a character LM given to a word-mode decoder
    chars = NGramLM.from_text(["the cat sat on the mat", "a dog bit my pig"], order=2, token_level=True)
    with pytest.warns(UserWarning, match="looks like a token-level LM"):
        BeamSearchDecoder(["φ", " "] + list("abcdefghijklmnopqrstuvwxyz"), lm=chars)


@pytest.mark.parametrize("kind", ["greedy", "beam"])
@pytest.mark.parametrize("kw, words", [c[1:] for c in BAD_DECODER_SETTINGS], ids=[c[0] for c in BAD_DECODER_SETTINGS])
def test_bad_decoder_settings(kind, kw, words):
    cls = GreedyDecoder if kind == "greedy" else BeamSearchDecoder
    kw = {"tokens": TOKENS, **kw}
    with pytest.raises(DecodingError) as ei:
        cls(**kw)(LP)
    assert words is None or words in str(ei.value), str(ei.value)


@pytest.mark.parametrize("kind", ["greedy", "beam"])
def test_bad_n_best(kind):
    dec = GreedyDecoder(TOKENS) if kind == "greedy" else BeamSearchDecoder(TOKENS)
    for n in (0, -1, 1.5, None, "2", True):
        with pytest.raises(DecodingError, match="n_best must be a whole number >= 1"):
            dec(LP, n_best=n)
    assert dec(LP, n_best=np.int64(2))  # numpy integers are whole numbers too


@pytest.mark.parametrize("kind", ["greedy", "beam"])
def test_empty_emissions_decode_to_nothing(kind):
    dec = GreedyDecoder(TOKENS) if kind == "greedy" else BeamSearchDecoder(TOKENS)
    (h,) = dec(np.zeros((0, V)))
    assert h.tokens == () and h.text == "" and h.words == [] and h.score == 0.0
    assert dec(np.zeros((0, 5, V))) == []  # an empty batch
    out = dec(np.stack([LP, LP]), [0, 5])  # one utterance of length 0 in a batch
    assert out[0][0].tokens == () and out[0][0].score == 0.0 and len(out[1]) >= 1


def test_bad_lm_files(tmp_path):
    from ctcasr.decoding import LMError

    with pytest.raises(LMError, match="cannot open ARPA file") as ei:
        BeamSearchDecoder(TOKENS, lm=tmp_path / "missing.arpa")
    assert str(tmp_path / "missing.arpa") in str(ei.value)
    with pytest.raises(LMError, match="not a regular file"):
        NGramLM.from_arpa(tmp_path)  # a directory
    # a device would be read until memory runs out, a FIFO would block forever
    with pytest.raises(LMError, match="not a regular file"):
        NGramLM.from_arpa("/dev/zero")
    fifo = tmp_path / "lm.fifo"
    os.mkfifo(fifo)
    with pytest.raises(LMError, match="not a regular file"):
        NGramLM.from_arpa(fifo)
    (tmp_path / "model.pt").write_bytes(b"PK\x03\x04\x00\x00")  # binary: not an ARPA file
    with pytest.raises(LMError, match="not UTF-8|no \\\\data\\\\"):
        NGramLM.from_arpa(tmp_path / "model.pt")


# --------------------------------------------------------------------------- the CLI
def _one_error_line(capsys, rc, *needles):
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("ctcasr:")]
    assert rc != 0, err
    assert len(lines) == 1 and lines[0].startswith("ctcasr: error: "), err
    assert "Traceback" not in err
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


def test_cli_broken_model_dir_is_one_line(model_dir, tmp_path, capsys):
    _cut("model.pt", 0.5)(model_dir)
    m = _manifest_lines(tmp_path, [_rec()])
    rc = main(["-q", "evaluate", "--model", str(model_dir), "--data", str(m), "--device", "cpu"])
    _one_error_line(capsys, rc, str(model_dir / "model.pt"), "cannot load weights")


def test_cli_newer_model_is_one_line(model_dir, tmp_path, capsys):
    _edit_config(format_version=9)(model_dir)
    m = _manifest_lines(tmp_path, [_rec()])
    rc = main(["-q", "evaluate", "--model", str(model_dir), "--data", str(m), "--device", "cpu"])
    _one_error_line(capsys, rc, str(model_dir / "config.yaml"), "newer")


def test_cli_bad_manifest_is_one_line(tmp_path, capsys):
    m = _manifest_lines(tmp_path, [_rec(), "garbage"])
    rc = main(["-q", "evaluate", "--model", str(SHIPPED), "--data", str(m), "--device", "cpu", "--decoder", "greedy"])
    _one_error_line(capsys, rc, f"{m}:2: not a JSON object")


def test_cli_bad_arpa_is_one_line(tmp_path, capsys):
    bad = tmp_path / "lm.arpa"
    bad.write_text("\\data\\\nngram 1=2\n\n\\1-grams:\n-1.0\tone\n")
    m = _manifest_lines(tmp_path, [_rec()])
    rc = main(["-q", "evaluate", "--model", str(SHIPPED), "--data", str(m), "--device", "cpu", "--decoder", "beam",
               "--lm", str(bad)])
    _one_error_line(capsys, rc, str(bad))


@pytest.mark.parametrize("case", ["missing", "binary", "empty", "bad output folder"])
def test_cli_lm_build_errors_are_one_line(tmp_path, capsys, case):
    text, out = tmp_path / "text.txt", tmp_path / "lm.arpa"
    if case == "binary":
        text.write_bytes(b"\xff\xfe\x00\x00")
    elif case == "empty":
        text.write_text("\n\n")
    elif case == "bad output folder":
        text.write_text("one two\n")
        (tmp_path / "file").write_text("x")
        out = tmp_path / "file" / "lm.arpa"  # a file where a folder should be
    rc = main(["lm", "build", str(text), "-o", str(out)])
    _one_error_line(capsys, rc, str(out) if case == "bad output folder" else str(text))
    assert not out.exists()


# --------------------------------------------------------------------------- training
TRAIN_CONFIG = """
model:
  frontend: {n_mels: 20, specaug: {freq_masks: 0, time_masks_per_s: 0.0}}
  encoder: {kind: blstm, hidden: 16, layers: 1, dropout: 0.0}
train:
  epochs: 1
  batch_seconds: 100
  valid_batch_seconds: 100
  num_workers: 0
  threads: 1
  warmup_steps: 1
"""


def test_training_skips_bad_utterances_and_counts_them(tmp_path, caplog):
    """Every kind of bad utterance is skipped, and the log says how many, by reason."""
    from ctcasr.train import train

    audio = tmp_path / "audio"
    audio.mkdir()
    recs = []
    for i in range(3):
        sf.write(audio / f"good{i}.wav", tone(SR, 1.0, hz=300 + 100 * i), SR)
        recs.append({"id": f"good{i}", "audio_filepath": f"audio/good{i}.wav", "text": "ab ba"})
    sf.write(audio / "short.wav", tone(SR, 0.1), SR)
    sf.write(audio / "nan.wav", np.full(SR, np.nan), SR, subtype="FLOAT")
    recs += [
        {"id": "unknown", "audio_filepath": "audio/good0.wav", "text": "ab xyz"},
        {"id": "empty", "audio_filepath": "audio/good1.wav", "text": " !? "},
        {"id": "toolong", "audio_filepath": "audio/short.wav", "text": "ab" * 20},
        {"id": "missing", "audio_filepath": "audio/missing.wav", "text": "ab"},
        {"id": "notaudio", "audio_filepath": "m.jsonl", "text": "ab"},
        # Its header is fine (the duration is known), its samples are not: found at load time.
        {"id": "nan", "audio_filepath": "audio/nan.wav", "text": "ab"},
    ]
    m = tmp_path / "m.jsonl"
    m.write_text("".join(json.dumps(r) + "\n" for r in recs))
    conf = tmp_path / "c.yaml"
    conf.write_text(TRAIN_CONFIG)
    out = tmp_path / "exp"
    out.mkdir()
    Tokenizer(["φ", " ", "a", "b"]).save(out / "tokens.txt")  # so that "xyz" is unknown
    with caplog.at_level(logging.INFO, logger="ctcasr"):
        r = train(conf, m, m, out, device="cpu")
    text = caplog.text
    for reason in ("unknown characters (e.g. unknown: 'xyz')", "empty transcript (e.g. empty)",
                   "transcript longer than the audio allows (e.g. toolong)",
                   "audio shorter than 0.05s or unreadable"):
        assert reason in text, text
    assert "skipped 2 utterance(s): audio shorter than 0.05s or unreadable" in text  # missing + notaudio
    assert "train: 4 utterances" in text and "5 skipped" in text
    assert r["skipped_utterances"] == 5
    # The NaN file passes the header check and fails when loaded: logged by name, and counted.
    assert "nan.wav: every sample is NaN" in text
    assert "1 utterance(s) skipped: audio unreadable when loaded" in text
    assert (out / "model.pt").is_file()


def test_every_error_type_is_a_ctcasr_error():
    for cls in (AudioError, DataError, ModelError, TokenizerError):
        assert issubclass(cls, CTCASRError)
