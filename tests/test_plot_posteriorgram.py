"""`ctcasr plot AUDIO -o out.png`: the spectrogram + CTC posteriorgram picture."""

import argparse
import builtins
import json
import struct
from pathlib import Path

import numpy as np
import pytest

from ctcasr.errors import AudioError, CTCASRError
from ctcasr.model import load_model_dir
from ctcasr.plot import add_parser, plot_posteriorgram, posteriorgram

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "samples" / "digits"
SAMPLE = json.loads((SAMPLES / "samples.jsonl").read_text().splitlines()[0])
WAV = SAMPLES / SAMPLE["audio_filepath"]


def _parse(argv):
    p = argparse.ArgumentParser(prog="ctcasr")
    add_parser(p.add_subparsers(dest="command"))
    return p.parse_args(argv)


def _png_size(path):
    b = Path(path).read_bytes()
    assert b[:8] == b"\x89PNG\r\n\x1a\n" and b[12:16] == b"IHDR"
    return struct.unpack(">II", b[16:24])


def test_posteriorgram_arrays():
    from ctcasr.audio import load_audio

    model, tok = load_model_dir("digits")
    d = posteriorgram(model, tok, load_audio(WAV))
    T, V = d["log_probs"].shape
    assert V == len(tok) and np.allclose(np.exp(d["log_probs"]).sum(1), 1, atol=1e-4)
    # Output frames stack 3 fbank frames; the spectrogram has the fbank frames.
    assert d["mel_db"].shape[1] == 80 and T == -(-d["mel_db"].shape[0] // 3)
    assert d["hypothesis"].text == SAMPLE["text"]


def test_plot_writes_a_png(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "sub" / "post.png"
    a = _parse(["plot", "--model", "digits", str(WAV), "-o", str(out), "--device", "cpu"])
    assert a.func(a) == 0 and str(out) in capsys.readouterr().out
    w, h = _png_size(out)
    assert 700 <= w <= 3300 and 500 <= h <= 1500, (w, h)
    assert out.stat().st_size > 20_000
    import matplotlib.image

    img = matplotlib.image.imread(out)
    assert img.shape[:2] == (h, w) and img[..., :3].std() > 0.1  # a picture, not a blank page
    assert not list(tmp_path.glob("sub/.*tmp*"))


def test_plot_with_aligned_words_and_api(tmp_path):
    pytest.importorskip("matplotlib")
    from ctcasr.align import align
    from ctcasr.audio import load_audio

    model, tok = load_model_dir("digits")
    x = load_audio(WAV)
    out = plot_posteriorgram(model, tok, x, tmp_path / "w.png", words=align(model, tok, x, SAMPLE["text"]))
    assert _png_size(out)[0] > 700
    a = _parse(["plot", "--model", "digits", str(WAV), "-o", str(tmp_path / "t.png"), "--transcript", SAMPLE["text"],
                "--device", "cpu"])
    assert a.func(a) == 0 and (tmp_path / "t.png").is_file()


def test_plot_large_vocabulary_keeps_the_top_rows(tmp_path):
    pytest.importorskip("matplotlib")
    from ctcasr.audio import load_audio

    model, tok = load_model_dir("digits")
    out = plot_posteriorgram(model, tok, load_audio(WAV), tmp_path / "few.png", max_rows=5)
    assert _png_size(out)[0] > 700


def test_plot_errors(tmp_path, monkeypatch):
    a = _parse(["plot", "--model", "digits", str(tmp_path / "missing.wav"), "-o", str(tmp_path / "x.png"), "--device", "cpu"])
    with pytest.raises(AudioError, match="no such file"):
        a.func(a)
    real_import = builtins.__import__

    def no_mpl(name, *args, **kw):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError(name)
        return real_import(name, *args, **kw)

    monkeypatch.setattr(builtins, "__import__", no_mpl)
    a = _parse(["plot", "--model", "digits", str(WAV), "-o", str(tmp_path / "x.png"), "--device", "cpu"])
    with pytest.raises(CTCASRError, match=r"plot needs matplotlib: pip install 'ctcasr\[plot\]'"):
        a.func(a)
    assert not (tmp_path / "x.png").exists()


def test_plot_chinese_tokens_are_drawn_with_a_cjk_font(tmp_path):
    pytest.importorskip("matplotlib")
    import warnings

    import torch

    from ctcasr.model import DEFAULT_CONFIG, CTCModel, merge_config
    from ctcasr.plot import _font_rc
    from ctcasr.tokenizer import Tokenizer

    assert _font_rc(["φ", " ", "a", "b"]) == {}  # Latin models: matplotlib's defaults
    tok = Tokenizer(["φ", "好", "棒"], word_delimiter=None)
    rc = _font_rc(tok.tokens)
    if rc is None:
        pytest.skip("no CJK font installed (recipes/tts_zh installs fonts-wqy-microhei)")
    assert rc["font.family"][0] == "DejaVu Sans" and len(rc["font.family"]) > 1
    torch.manual_seed(0)
    model = CTCModel(merge_config(DEFAULT_CONFIG, {"encoder": {"hidden": 8, "layers": 1}}), len(tok))
    x = 0.1 * np.random.default_rng(0).standard_normal(16000).astype(np.float32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = plot_posteriorgram(model, tok, x, tmp_path / "zh.png", title="好棒棒")
    assert _png_size(out)[0] > 700
    assert not [w for w in caught if "missing from font" in str(w.message)]
