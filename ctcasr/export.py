"""Export a model to ONNX or TorchScript: one file that takes raw audio and returns log-probs.

    ctcasr export digits --format onnx -o digits.onnx
    ctcasr export path/to/model_dir --format torchscript -o model.pt

    from ctcasr.export import export_model
    export_model("digits", "digits.onnx")                         # a model dir or shipped name
    export_model(model, "model.pt", format="torchscript", tokenizer=tok)   # a loaded CTCModel

The exported graph (both formats):

  inputs   waveforms    float32 [B, N]  16 kHz mono (the model's sample_rate), zero-padded
           lengths      int64   [B]     valid samples per row (1 <= lengths <= N)
  outputs  log_probs    float32 [B, T, V]  log-softmax over tokens; index 0 is the blank
           out_lengths  int64   [B]     valid frames per row; frames past it are padding
  dynamic axes: B ("batch"), N ("samples"), T ("frames") with
           T = ceil(max(1, (N - n_fft) // hop + 1) / stack)

It is CTCModel.forward in eval mode (gain normalisation, log-mel, CMVN, frame stacking,
encoder, head): the front end travels inside the file, so an app needs no feature code.
Padding never changes a row's valid frames, as in PyTorch. The TorchScript file runs on
CPU: a trace records the device of the index tensors it creates (CPU, where it is traced).

What an app needs to decode is stored with the graph as strings (ONNX ``metadata_props``;
TorchScript ``_extra_files`` under the same names, which ``torch.jit.load(path,
_extra_files={"tokens": ""})`` fills in as UTF-8 bytes), see ``export_metadata``:

  tokens          the model's tokens.txt (one token a line, line 0 the blank, the word
                  delimiter " " written as <space>)
  sample_rate     e.g. "16000"
  frame_shift_s   seconds per output frame, e.g. "0.03" (frame index -> time)
  first_frame_centre_s  centre of output frame 0, e.g. "0.026": a frame position p is at
                  first_frame_centre_s + p * frame_shift_s (ctcasr.decoding.timing.word_times)
  word_delimiter  the delimiter token itself (" "), or "" for models without one
  blank_id        "0"
  ctcasr_version, input_names, output_names

``ctcasr.onnx_runtime.OnnxCTCModel`` runs an exported ONNX file with onnxruntime and numpy
only (no torch), and hands out decoders from ``ctcasr.decoding``.

This module imports torch lazily so that ``ctcasr --help`` stays fast.
"""

from __future__ import annotations

import contextlib
import copy
import io
import os
import warnings
from pathlib import Path

from .errors import CTCASRError

FORMATS = ("onnx", "torchscript")
DEFAULT_OPSET = 17
# 12: the first opset whose Clip takes int64 (the length arithmetic; opset 11 files fail to
# load in onnxruntime). 20: the last one torch's TorchScript-based exporter writes.
MIN_OPSET, MAX_OPSET = 12, 20
INPUT_NAMES = ("waveforms", "lengths")
OUTPUT_NAMES = ("log_probs", "out_lengths")
DYNAMIC_AXES = {
    "waveforms": {0: "batch", 1: "samples"},
    "lengths": {0: "batch"},
    "log_probs": {0: "batch", 1: "frames"},
    "out_lengths": {0: "batch"},
}
METADATA_KEYS = ("tokens", "sample_rate", "frame_shift_s", "first_frame_centre_s", "word_delimiter", "blank_id",
                 "ctcasr_version", "input_names", "output_names")
# An exported file whose log-probs differ from PyTorch's by more than this is refused. The
# ONNX front end computes the DFT as a matrix product instead of an FFT; on the shipped
# samples that moves log-probs by under 1e-4 (tests/test_export.py checks against 1e-3).
VERIFY_ATOL = 1e-3


class ExportError(CTCASRError):
    """The model cannot be exported, or the exported file does not match the model."""


# ------------------------------------------------------------------------ the graph
def _build_graph_module(model, stft: str):
    """A torch Module computing ``model.forward`` (eval mode) in a form that tracing
    records with every shape symbolic.

    ``CTCModel.forward`` itself does not trace into a dynamic graph: the front end pads with
    Python ``if``s on the input length (a trace freezes them), torchaudio's spectrogram uses
    complex tensors (no ONNX type), and ``Tensor.unfold`` (the DNN encoder) has no ONNX
    form for a dynamic length. This module recomputes the same function with shape
    arithmetic done on tensors (traced as Shape/Range ops) and selects frames with
    ``index_select`` instead of padding to a computed size. The parameters are the
    model's own (shared, not copied).

    ``stft="dft"`` (ONNX) computes the power spectrum as a strided conv1d with the windowed
    DFT basis: every ONNX runtime has Conv, while the STFT op (opset 17) is missing or slow
    in some runtimes and torch's exporter cannot export the complex output torchaudio
    produces. ``stft="torch"`` (TorchScript) keeps torch.stft, the exact FFT eager uses.
    """
    import torch
    from torch import nn

    from .model import DNNEncoder

    fe = model.frontend

    class CTCGraph(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = model.encoder
            self.head = model.head
            self.n_fft, self.hop, self.stack = fe.n_fft, fe.hop, fe.stack
            self.gain_norm, self.utterance_cmn = fe.gain_norm, fe.utterance_cmn
            self.use_dft = stft == "dft"
            self.dnn_context = model.encoder.context if isinstance(model.encoder, DNNEncoder) else None
            window = fe.mel.spectrogram.window.detach().float()
            # torch.stft centres a window shorter than n_fft inside the n_fft span.
            left = (self.n_fft - window.numel()) // 2
            window = nn.functional.pad(window, (left, self.n_fft - window.numel() - left))
            self.register_buffer("window", window)
            if self.use_dft:
                n_freq = self.n_fft // 2 + 1
                # float64 for the basis itself, so its own rounding adds nothing measurable.
                n = torch.arange(self.n_fft, dtype=torch.float64)
                k = torch.arange(n_freq, dtype=torch.float64)
                angle = 2 * torch.pi * k[:, None] * n[None, :] / self.n_fft
                basis = torch.cat((torch.cos(angle), -torch.sin(angle))) * window.double()
                self.register_buffer("dft_basis", basis.float()[:, None, :])     # [2F, 1, n_fft]
            self.register_buffer("mel_fb", fe.mel.mel_scale.fb.detach().float())  # [F, n_mels]
            self.register_buffer("cmvn_mean", fe.cmvn_mean.detach().float())
            self.register_buffer("cmvn_istd", fe.cmvn_istd.detach().float())

        def forward(self, waveforms, lengths):
            x = waveforms.to(torch.float32)
            lengths = lengths.to(torch.int64)
            # The length as a tensor in eager and in a trace alike (torch's own ONNX helpers
            # use _shape_as_tensor for this), so clamp/arange below become graph ops instead
            # of constants frozen at the example's length.
            n_samples = torch._shape_as_tensor(x)[1]
            sample_idx = torch.arange(n_samples)
            x = x * (sample_idx[None, :] < lengths[:, None]).to(x.dtype)
            if self.gain_norm:
                power = (x * x).sum(1) / lengths.clamp(min=1).to(x.dtype)
                x = x * (0.1 / power.sqrt().clamp(min=1e-3))[:, None]
            # FrontEnd pads inputs shorter than n_fft up to n_fft (one frame). Padding every
            # input by n_fft and then keeping the first n_frames frames gives the same frames
            # without a data-dependent pad size.
            n_frames = torch.clamp((n_samples - self.n_fft) // self.hop + 1, min=1)
            x = nn.functional.pad(x, (0, self.n_fft))
            if self.use_dft:
                spec = nn.functional.conv1d(x[:, None, :], self.dft_basis, stride=self.hop)  # [B, 2F, T+]
                re, im = spec.chunk(2, dim=1)
                power = re * re + im * im
            else:
                spec = torch.stft(x, self.n_fft, self.hop, self.n_fft, self.window, center=False,
                                  return_complex=True)
                power = spec.abs().pow(2.0)
            power = power.index_select(2, torch.arange(n_frames))
            feats = torch.log(torch.matmul(power.transpose(1, 2), self.mel_fb) + 1e-4)  # [B, T, n_mels]
            flen = torch.clamp((lengths - self.n_fft) // self.hop + 1, min=1)
            frame_idx = torch.arange(n_frames)
            valid = (frame_idx[None, :] < flen[:, None])[..., None].to(feats.dtype)
            if self.utterance_cmn:
                feats = feats - (feats * valid).sum(1, keepdim=True) / flen.clamp(min=1).to(feats.dtype)[:, None, None]
            feats = (feats - self.cmvn_mean) * self.cmvn_istd * valid
            # Stacking: zero-pad k-1 frames, keep ceil(T/k)*k of them, fold k frames into one.
            k = self.stack
            n_out = (n_frames + k - 1) // k
            if k > 1:
                feats = nn.functional.pad(feats, (0, 0, 0, k - 1)).index_select(1, torch.arange(n_out * k))
                feats = feats.reshape(feats.shape[0], -1, k * feats.shape[2])
            out_lengths = (flen + k - 1) // k
            if self.dnn_context is None:
                h = self.encoder(feats, out_lengths)
            else:
                h = self._dnn(feats)
            log_probs = torch.log_softmax(self.head(h).float(), dim=-1)
            return log_probs, out_lengths

        def _dnn(self, feats):
            # DNNEncoder.forward's unfold, as a gather of the 2c+1 neighbours of each frame.
            c = self.dnn_context
            width = 2 * c + 1
            n = torch._shape_as_tensor(feats)[1]
            idx = (torch.arange(n)[:, None] + torch.arange(width)[None, :]).reshape(-1)
            xp = nn.functional.pad(feats, (0, 0, c, c)).index_select(1, idx)
            return self.encoder.net(xp.reshape(feats.shape[0], -1, width * feats.shape[2]))

    return CTCGraph().eval()


def _example_inputs(sample_rate: int):
    """A deterministic two-utterance batch (1.0 s and 0.55 s of tones in noise): what the
    graph is traced with."""
    import torch

    g = torch.Generator().manual_seed(0)
    n = sample_rate
    t = torch.arange(n) / sample_rate
    x = 0.05 * torch.randn(2, n, generator=g) + 0.2 * torch.sin(2 * torch.pi * torch.tensor([[220.0], [330.0]]) * t)
    lengths = torch.tensor([n, int(0.55 * n)])
    x[1, lengths[1]:] = 0.0
    return x, lengths


def _check_inputs(example):
    """The traced batch plus one of other shapes: three rows, a different padded length,
    one row shorter than n_fft (the shapes a trace could have frozen)."""
    import torch

    x, lengths = example
    n = x.shape[1] * 3 // 4
    x3 = torch.zeros(3, n)
    x3[:2] = x[:, :n]
    x3[2, :200] = x[0, :200]
    return [example, (x3, torch.tensor([n, int(lengths[1]), 200]))]


# ------------------------------------------------------------------------ metadata
def export_metadata(model, tokenizer) -> dict:
    """The strings stored with an exported file so an app can decode with it alone."""
    from . import __version__
    from .tokenizer import SPACE_SYMBOL

    lines = [SPACE_SYMBOL if t == " " else t for t in tokenizer.tokens]
    if len(lines) != model.vocab_size:
        raise ExportError(f"the tokenizer has {len(lines)} tokens but the model outputs {model.vocab_size}")
    return {
        "tokens": "\n".join(lines) + "\n",
        "sample_rate": str(model.frontend.sample_rate),
        "frame_shift_s": repr(float(model.frame_shift_s)),
        "first_frame_centre_s": repr(float(model.frontend.first_frame_centre_s)),
        "word_delimiter": tokenizer.word_delimiter or "",
        "blank_id": "0",
        "ctcasr_version": __version__,
        "input_names": ",".join(INPUT_NAMES),
        "output_names": ",".join(OUTPUT_NAMES),
    }


# ------------------------------------------------------------------------ export
def export_model(model, out_path, format: str = "onnx", opset: int = DEFAULT_OPSET, tokenizer=None,
                 verify: bool = True) -> Path:
    """Write ``model`` as one ONNX or TorchScript file at ``out_path``; returns the path.

    ``model``: a model directory, a shipped model name, or a CTCModel (then ``tokenizer=``
    is required, for the tokens stored with the file). ``opset``: ONNX only.
    ``verify``: before writing, run the exported graph (ONNX: with onnxruntime, when it is
    installed) on two test batches and raise ExportError unless its shapes and lengths equal
    PyTorch's and its log-probs are within 1e-3. The file is written atomically, only after
    that check: a failed export leaves any previous file at ``out_path`` as it was.
    """
    return _export(model, out_path, format, opset, tokenizer, verify)[0]


def _export(model, out_path, format, opset, tokenizer, verify):
    """export_model, also returning the measured max |log-prob difference| (None: not checked)."""
    if format not in FORMATS:
        raise ExportError(f"unknown export format {format!r}; choose one of {', '.join(FORMATS)}")
    if format == "onnx":
        if isinstance(opset, bool) or not isinstance(opset, int) or not MIN_OPSET <= opset <= MAX_OPSET:
            raise ExportError(f"ONNX opset {opset!r} not supported; use {MIN_OPSET}..{MAX_OPSET} "
                              f"(default {DEFAULT_OPSET})")
        try:
            import onnx  # noqa: F401 - needed to write the metadata; fail before any work
        except ImportError:
            raise ExportError("ONNX export needs the onnx package: pip install 'ctcasr[export]'") from None
    out = Path(out_path)
    if out.is_dir():
        raise ExportError(f"{out}: is a directory; give the file to write, e.g. {out / ('model.' + _suffix(format))}")

    import torch

    from .model import CTCModel, load_model_dir
    from .utils import atomic_open

    if isinstance(model, CTCModel):
        if tokenizer is None:
            raise ExportError("export_model(CTCModel, ...) needs tokenizer= (its tokens go into the file)")
        # A copy: eval() and cpu() work in place, and the caller may be training on a GPU.
        model = copy.deepcopy(model)
    else:
        model, tokenizer = load_model_dir(model, "cpu")
    model = model.eval().cpu()
    meta = export_metadata(model, tokenizer)
    graph = _build_graph_module(model, stft="dft" if format == "onnx" else "torch")
    example = _example_inputs(model.frontend.sample_rate)
    with torch.no_grad():
        data = _onnx_bytes(graph, example, meta, opset) if format == "onnx" else _torchscript_bytes(graph, example, meta)
        diff = None
        if verify:
            cases = [(w, n, model(w, n)) for w, n in _check_inputs(example)]
            diff = _verify(data, format, cases)
            if diff is not None and not diff <= VERIFY_ATOL:
                raise ExportError(f"exported {model_desc(model)} differs from PyTorch (max |log-prob difference| "
                                  f"{diff:.3g} > {VERIFY_ATOL}); nothing written, please report this model")
    with atomic_open(out, "wb") as f:
        f.write(data)
    return out, diff


def model_desc(model) -> str:
    enc = model.config["encoder"]
    return f"{enc['kind']} model ({enc['layers']}x{enc['hidden']})"


def _suffix(format: str) -> str:
    return "onnx" if format == "onnx" else "pt"


@contextlib.contextmanager
def _quiet_tracing():
    """Silence what tracing says about itself: deprecation notices for the legacy exporter
    and torch.jit, and TracerWarnings about Python values. The graph is checked
    numerically against eager after export (``verify``), which is what those warnings
    ask the caller to make sure of."""
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", message=".*[Cc]onstant folding.*")
        # "batch_size other than 1 ... with LSTM can cause an error": it concerns h0/c0 passed
        # as inputs; ours start at zero inside the graph, and verify runs a batch of 3 after
        # tracing with 2 (tests/test_export.py runs batches of 1 too).
        warnings.filterwarnings("ignore", message=".*batch_size other than 1.*LSTM.*")
        yield


def _onnx_bytes(graph, example, meta: dict, opset: int) -> bytes:
    import onnx
    import torch

    buf = io.BytesIO()
    try:
        with _quiet_tracing():
            # dynamo=False: the TorchScript-based (legacy) exporter. torch >= 2.9 defaults to
            # the torch.export-based one, which needs onnxscript (another dependency) and,
            # tried on this graph, pinned the frame axis of the output to the example's
            # length in the declared shapes. The legacy exporter turns nn.LSTM into ONNX LSTM
            # ops with batch and time dynamic, and CTCGraph's shape arithmetic into
            # Shape/Range ops; verify catches it if a future torch traces differently.
            # The model stays in one protobuf (no external data): a BiLSTM far below 2 GB.
            torch.onnx.export(graph, example, buf, dynamo=False, opset_version=opset,
                              input_names=list(INPUT_NAMES), output_names=list(OUTPUT_NAMES),
                              dynamic_axes=DYNAMIC_AXES, do_constant_folding=True)
    except Exception as e:  # any exporter failure is one line for the user (cause chained)
        raise ExportError(f"ONNX export failed: {type(e).__name__}: {_first_line(e)}") from e
    proto = onnx.load_from_string(buf.getvalue())
    del proto.metadata_props[:]
    for key, value in meta.items():
        proto.metadata_props.add(key=key, value=value)
    proto.doc_string = ("ctcasr CTC model: waveforms float32 [batch, samples] at sample_rate Hz, lengths int64 "
                        "[batch] -> log_probs float32 [batch, frames, tokens] (blank = 0), out_lengths int64 "
                        "[batch]. Decoding data in metadata_props: tokens, frame_shift_s, word_delimiter.")
    proto.producer_name = "ctcasr"
    proto.producer_version = meta["ctcasr_version"]
    onnx.checker.check_model(proto)
    return proto.SerializeToString()


def _torchscript_bytes(graph, example, meta: dict) -> bytes:
    import torch

    buf = io.BytesIO()
    try:
        with _quiet_tracing():
            # Tracing, not torch.jit.script: CTCGraph keeps all shape arithmetic in tensors,
            # so the trace is dynamic in batch and length (verify checks other shapes), and
            # tracing needs none of the type annotations scripting would.
            traced = torch.jit.trace(graph, example, check_trace=False)
            torch.jit.save(traced, buf, _extra_files=meta)
    except Exception as e:  # as above: one line, the cause chained for CTCASR_DEBUG
        raise ExportError(f"TorchScript export failed: {type(e).__name__}: {_first_line(e)}") from e
    return buf.getvalue()


def _verify(data: bytes, format: str, cases):
    """Max |log-prob difference| over valid frames between the exported ``data`` and eager
    PyTorch on ``cases`` [(waveforms, lengths, (log_probs, out_lengths))]; None when
    onnxruntime is not installed. Shapes and out_lengths must match exactly."""
    import numpy as np
    import torch

    if format == "onnx":
        import importlib.util

        if importlib.util.find_spec("onnxruntime") is None:
            return None
        from .onnx_runtime import OnnxCTCModel

        try:
            run = OnnxCTCModel(data, num_threads=1).run
        except CTCASRError as e:
            raise ExportError(f"onnxruntime cannot run the exported model ({e}); nothing written") from None
    else:
        with _quiet_tracing():
            ts = torch.jit.load(io.BytesIO(data))

        def run(w, n):
            lp, ol = ts(torch.from_numpy(w), torch.from_numpy(n))
            return lp.numpy(), ol.numpy()
    worst = 0.0
    for w, n, (ref_lp, ref_ol) in cases:
        lp, ol = run(w.numpy(), n.numpy())
        ref_lp, ref_ol = ref_lp.numpy(), ref_ol.numpy()
        if lp.shape != ref_lp.shape or not np.array_equal(ol, ref_ol):
            raise ExportError(f"the exported model gives shapes {lp.shape}/{ol.tolist()} where PyTorch gives "
                              f"{ref_lp.shape}/{ref_ol.tolist()}; nothing written, please report this model")
        for b, t in enumerate(ref_ol):
            worst = max(worst, float(np.abs(lp[b, :t] - ref_lp[b, :t]).max()))
    return worst


def _first_line(e: Exception) -> str:
    s = str(e).strip()
    return s.splitlines()[0][:300] if s else ""


# ------------------------------------------------------------------------ CLI
def add_parser(subparsers):
    """Register ``ctcasr export`` on the CLI's subparsers."""
    s = subparsers.add_parser(
        "export", help="export a model to ONNX or TorchScript (raw audio in, log-probs out)",
        description="Write MODEL as one ONNX or TorchScript file. Inputs: waveforms float32 [batch, samples] "
        "(mono, at the model's sample rate, 16 kHz for shipped models) and lengths int64 [batch]; outputs: "
        "log_probs float32 [batch, frames, tokens] (index 0 the blank) and out_lengths int64 [batch]. The "
        "tokens, sample_rate and frame_shift_s are stored in the file (ONNX metadata_props, TorchScript "
        "extra files). ONNX needs pip install 'ctcasr[export]'.")
    s.add_argument("model", metavar="MODEL", help="model directory or shipped model name (e.g. digits)")
    s.add_argument("--format", choices=FORMATS, default="onnx", help="onnx (default) or torchscript")
    s.add_argument("-o", "--output", help="file to write (default: MODEL's name + .onnx or .pt in the current directory)")
    s.add_argument("--opset", type=int, default=DEFAULT_OPSET,
                   help=f"ONNX opset, {MIN_OPSET}..{MAX_OPSET} (default {DEFAULT_OPSET})")
    s.set_defaults(func=cmd_export)
    return s


def cmd_export(args) -> int:
    from .model import resolve_model_dir

    model_dir = resolve_model_dir(args.model)
    out = Path(args.output) if args.output else Path(f"{model_dir.resolve().name}.{_suffix(args.format)}")
    path, diff = _export(model_dir, out, args.format, args.opset, None, True)
    what = f"ONNX opset {args.opset}" if args.format == "onnx" else "TorchScript"
    check = (f"max |log-prob difference| vs PyTorch {diff:.1e}" if diff is not None
             else "not checked: onnxruntime not installed")
    print(f"wrote {path} ({what}, {os.path.getsize(path) / 1e6:.1f} MB; {check})")
    return 0
