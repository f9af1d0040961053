"""`ctcasr export`: ONNX and TorchScript files that take raw audio and compute what the
PyTorch model computes, with what decoding needs stored inside; the ONNX file runs and
decodes without torch."""

import argparse
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from ctcasr.errors import CTCASRError, ModelError
from ctcasr.export import METADATA_KEYS, ExportError, add_parser, export_model
from ctcasr.model import CTCModel, load_model_dir, resolve_model_dir
from ctcasr.tokenizer import Tokenizer

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "data" / "samples" / "digits"
# What the brief for exported models promises; measured: ~1e-4 (ONNX, DFT as a matrix
# product), 0 (TorchScript, same FFT as eager).
ATOL = 1e-3
# torch >= 2.9 deprecates torch.jit (TorchScript is still what the torchscript format is).
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")


def _samples():
    return [json.loads(line) for line in open(SAMPLES / "samples.jsonl")]


def _sample_paths():
    return [SAMPLES / s["audio_filepath"] for s in _samples()]


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Exports and eager references here are small; one intra-op thread keeps them from
    slowing down 10-50x when OpenMP's threads compete with other jobs for a few cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def digits():
    return load_model_dir("digits")


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    return export_model("digits", tmp_path_factory.mktemp("onnx") / "digits.onnx")


@pytest.fixture(scope="module")
def torchscript_file(tmp_path_factory):
    return export_model("digits", tmp_path_factory.mktemp("ts") / "digits.pt", format="torchscript")


def _eager(model, waves):
    """PyTorch log-probs and out_lengths for a zero-padded batch of 1-D float32 arrays."""
    lengths = torch.tensor([len(w) for w in waves])
    batch = torch.zeros(len(waves), int(lengths.max()))
    for i, w in enumerate(waves):
        batch[i, : len(w)] = torch.from_numpy(w)
    with torch.no_grad():
        lp, ol = model(batch, lengths)
    return lp.numpy(), ol.numpy()


# ------------------------------------------------------------------------ ONNX
def test_onnx_inputs_outputs_and_metadata(onnx_file):
    import onnx

    m = onnx.load(str(onnx_file))

    def sig(values):
        return [(v.name, v.type.tensor_type.elem_type, [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim])
                for v in values]

    f32, i64 = onnx.TensorProto.FLOAT, onnx.TensorProto.INT64
    assert sig(m.graph.input) == [("waveforms", f32, ["batch", "samples"]), ("lengths", i64, ["batch"])]
    assert sig(m.graph.output) == [("log_probs", f32, ["batch", "frames", 17]), ("out_lengths", i64, ["batch"])]
    meta = {p.key: p.value for p in m.metadata_props}
    model_dir = resolve_model_dir("digits")
    assert meta["tokens"] == (model_dir / "tokens.txt").read_text(encoding="utf-8")
    assert meta["sample_rate"] == "16000"
    assert float(meta["frame_shift_s"]) == pytest.approx(0.03)
    assert float(meta["first_frame_centre_s"]) == pytest.approx(0.026)
    assert meta["word_delimiter"] == " " and meta["blank_id"] == "0"


def test_onnx_transcribes_samples_like_pytorch_without_torch(onnx_file, digits, tmp_path):
    """An app with onnxruntime + ctcasr.decoding only: same transcripts as the Transcriber,
    log-probs within ATOL of PyTorch's, and torch never imported."""
    from ctcasr.audio import load_audio
    from ctcasr.transcribe import Transcriber

    script = textwrap.dedent("""
        import json, sys
        import numpy as np
        from ctcasr.onnx_runtime import OnnxCTCModel

        m = OnnxCTCModel(sys.argv[1], num_threads=1)
        decode = m.decoder("greedy")
        texts, arrays = [], {}
        for i, path in enumerate(sys.argv[3:]):
            log_probs = m(path)
            texts.append(decode(log_probs)[0].text)
            arrays[f"lp{i}"] = log_probs
        np.savez(sys.argv[2], **arrays)
        assert "torch" not in sys.modules, sorted(k for k in sys.modules if k.startswith("torch"))
        print(json.dumps(texts))
    """)
    paths = [str(p) for p in _sample_paths()]
    npz = tmp_path / "lp.npz"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-c", script, str(onnx_file), str(npz), *paths], capture_output=True,
                       text=True, cwd=ROOT, env=env, check=False)
    assert r.returncode == 0, r.stderr
    onnx_texts = json.loads(r.stdout)

    asr = Transcriber.load("digits", device="cpu", decoder="greedy")
    assert onnx_texts == [asr.transcribe(p).text for p in paths]
    assert onnx_texts == [s["text"] for s in _samples()]
    model, _ = digits
    arrays = np.load(npz)
    for i, p in enumerate(paths):
        ref, _ = _eager(model, [load_audio(p)])
        assert arrays[f"lp{i}"].shape == ref[0].shape
        assert np.abs(arrays[f"lp{i}"] - ref[0]).max() < ATOL, p


def test_onnx_batch_equals_single_runs(onnx_file):
    """Padding never leaks: rows of a batch (different lengths, extra padding at the end)
    give the frames each utterance gives alone; batch 1 works although traced with 2."""
    from ctcasr.audio import load_audio
    from ctcasr.onnx_runtime import OnnxCTCModel

    m = OnnxCTCModel(onnx_file, num_threads=1)
    waves = [load_audio(p) for p in _sample_paths()[:2]]
    assert len(waves[0]) != len(waves[1])
    singles = [m.run(w[None, :]) for w in waves]
    n = max(len(w) for w in waves) + 4000
    batch = np.zeros((2, n), np.float32)
    for i, w in enumerate(waves):
        batch[i, : len(w)] = w
    lp, ol = m.run(batch, [len(w) for w in waves])
    for i, (slp, sol) in enumerate(singles):
        assert ol[i] == sol[0] == slp.shape[1]
        np.testing.assert_allclose(lp[i, : ol[i]], slp[0], atol=1e-4)


def test_onnx_runtime_refuses_bad_files(tmp_path):
    pytest.importorskip("onnxruntime")
    from ctcasr.onnx_runtime import OnnxCTCModel

    with pytest.raises(ModelError, match="no such ONNX file"):
        OnnxCTCModel(tmp_path / "missing.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(ModelError, match="cannot load ONNX model"):
        OnnxCTCModel(junk)


# ------------------------------------------------------------------------ TorchScript
def test_torchscript_matches_eager_and_carries_metadata(torchscript_file, digits):
    from ctcasr.audio import load_audio

    extra = dict.fromkeys(METADATA_KEYS, "")
    ts = torch.jit.load(str(torchscript_file), _extra_files=extra)
    extra = {k: v.decode("utf-8") for k, v in extra.items()}  # torch hands extra files back as bytes
    assert extra["tokens"] == (resolve_model_dir("digits") / "tokens.txt").read_text(encoding="utf-8")
    assert extra["sample_rate"] == "16000" and float(extra["frame_shift_s"]) == pytest.approx(0.03)
    assert extra["word_delimiter"] == " "
    model, _ = digits
    waves = [load_audio(p) for p in _sample_paths()[:2]]
    ref_lp, ref_ol = _eager(model, waves)
    lengths = torch.tensor([len(w) for w in waves])
    batch = torch.zeros(2, int(lengths.max()))
    for i, w in enumerate(waves):
        batch[i, : len(w)] = torch.from_numpy(w)
    with torch.no_grad():
        lp, ol = ts(batch, lengths)
    assert ol.tolist() == ref_ol.tolist() and lp.shape == ref_lp.shape
    for i, t in enumerate(ref_ol):
        assert np.abs(lp[i, :t].numpy() - ref_lp[i, :t]).max() < 1e-5


# ------------------------------------------------------------------------ other models
@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
@pytest.mark.parametrize("kind", ["lstm", "dnn"])
def test_other_encoder_kinds_export(kind, fmt, tmp_path):
    """The unidirectional LSTM and the DNN's context window (a gather in the graph) export
    too, with other stacking and mel settings; export_model itself also checks them against
    eager on two batch shapes."""
    torch.manual_seed(0)
    cfg = {"encoder": {"kind": kind, "hidden": 16, "layers": 2, "dropout": 0.0, "context": 2},
           "frontend": {"stack": 2, "n_mels": 40}}
    model = CTCModel(cfg, 6)  # left in training mode: export must use eval and not change it
    tok = Tokenizer(["φ", " ", "a", "b", "c", "d"])
    waves = [np.random.default_rng(1).normal(0, 0.1, n).astype(np.float32) for n in (7000, 300)]
    if fmt == "onnx":
        pytest.importorskip("onnx")
        pytest.importorskip("onnxruntime")
        from ctcasr.onnx_runtime import OnnxCTCModel

        m = OnnxCTCModel(export_model(model, tmp_path / "m.onnx", tokenizer=tok), num_threads=1)
        assert m.tokens == tok.tokens and m.sample_rate == 16000
        lp, ol = m.run_batch(waves)
    else:
        ts = torch.jit.load(str(export_model(model, tmp_path / "m.pt", format="torchscript", tokenizer=tok)))
        lengths = torch.tensor([len(w) for w in waves])
        batch = torch.zeros(2, 7000)
        for i, w in enumerate(waves):
            batch[i, : len(w)] = torch.from_numpy(w)
        with torch.no_grad():
            lp, ol = (t.numpy() for t in ts(batch, lengths))
    assert model.training
    ref_lp, ref_ol = _eager(model.eval(), waves)
    assert ol.tolist() == ref_ol.tolist()
    for i, t in enumerate(ref_ol):
        assert np.abs(lp[i, :t] - ref_lp[i, :t]).max() < ATOL


# ------------------------------------------------------------------------ CLI and errors
def _cli(argv):
    p = argparse.ArgumentParser(prog="ctcasr")
    add_parser(p.add_subparsers(dest="command"))
    a = p.parse_args(argv)
    return a.func(a)


def test_cli_export_writes_the_file(tmp_path, capsys, monkeypatch):
    out = tmp_path / "sub" / "model.pt"
    assert _cli(["export", "digits", "--format", "torchscript", "-o", str(out)]) == 0
    assert out.is_file() and f"wrote {out} (TorchScript" in capsys.readouterr().out
    assert [p.name for p in out.parent.iterdir()] == ["model.pt"]  # no temp files left
    monkeypatch.chdir(tmp_path)  # without -o: the model's name, in the current directory
    assert _cli(["export", "digits", "--format", "torchscript"]) == 0
    assert (tmp_path / "digits.pt").is_file()


def test_bad_requests_give_one_line_errors(tmp_path, digits):
    with pytest.raises(ExportError, match="unknown export format 'tflite'"):
        export_model("digits", tmp_path / "x", format="tflite")
    with pytest.raises(SystemExit):
        _cli(["export", "digits", "--format", "tflite"])
    with pytest.raises(ModelError, match="not found"):
        export_model(str(tmp_path / "no_such_model_dir"), tmp_path / "x.pt", format="torchscript")
    with pytest.raises(ModelError, match="neither a directory nor a shipped model"):
        _cli(["export", "no_such_model", "-o", str(tmp_path / "x.onnx")])
    with pytest.raises(ExportError, match=r"opset 9 not supported; use 12\.\.20"):
        export_model("digits", tmp_path / "x.onnx", opset=9)
    with pytest.raises(ExportError, match="is a directory"):
        export_model("digits", tmp_path, format="torchscript")
    with pytest.raises(ExportError, match="needs tokenizer="):
        export_model(digits[0], tmp_path / "x.pt", format="torchscript")
    for e in (ExportError, ModelError):
        assert issubclass(e, CTCASRError)


def test_missing_onnx_packages_say_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx -> ImportError
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(ExportError, match=r"pip install 'ctcasr\[export\]'"):
        export_model("digits", tmp_path / "x.onnx")
    from ctcasr.onnx_runtime import OnnxCTCModel

    with pytest.raises(CTCASRError, match=r"pip install 'ctcasr\[export\]'"):
        OnnxCTCModel(tmp_path / "x.onnx")


def test_failed_check_leaves_the_previous_file(tmp_path, monkeypatch):
    """An export whose output does not match PyTorch is refused before anything is written."""
    import ctcasr.export

    out = tmp_path / "model.pt"
    out.write_bytes(b"previous")
    monkeypatch.setattr(ctcasr.export, "VERIFY_ATOL", -1.0)  # no difference can pass
    with pytest.raises(ExportError, match="differs from PyTorch"):
        export_model("digits", out, format="torchscript")
    assert out.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]
