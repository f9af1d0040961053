"""Run an exported ONNX model with onnxruntime and numpy: no torch needed.

    from ctcasr.onnx_runtime import OnnxCTCModel
    m = OnnxCTCModel("digits.onnx")
    log_probs = m("call.wav")                      # or m(array, sample_rate=8000): [T, V]
    text = m.decoder()(log_probs)[0].text          # GreedyDecoder; decoder("beam", lm=...) too
    log_probs, out_lengths = m.run(waveforms, lengths)   # batch: [B, N] float32, [B] int64

The tokens, sample rate and frame shift come from the file's metadata (written by
``ctcasr export``), so the .onnx file is all an app ships. This module and what it imports
(``ctcasr.audio``, ``ctcasr.decoding``) use numpy, soundfile and onnxruntime only;
librosa is imported only to resample audio that is not at the model's rate.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .errors import CTCASRError, ModelError

SPACE_SYMBOL = "<space>"  # as in tokens.txt (ctcasr.tokenizer; not imported, to stay minimal)
REQUIRED_METADATA = ("tokens", "sample_rate", "frame_shift_s")


class OnnxCTCModel:
    """An exported ctcasr model: audio in, log-probs ``[T, V]`` out, plus what decoding needs.

    Attributes read from the file: ``tokens`` (list, index 0 the blank, the delimiter as " "),
    ``sample_rate``, ``frame_shift_s`` (seconds per output frame), ``first_frame_centre_s``
    (where frame 0 sits; frame position p is at that + p * frame_shift_s), ``word_delimiter`` (None
    for models without one), ``blank_id``, ``metadata`` (all the strings).
    """

    def __init__(self, path, num_threads: int | None = None, providers=None):
        """``path``: an .onnx file written by ``ctcasr export`` (or its bytes).
        ``num_threads``: onnxruntime's intra-op threads (default: its own choice, all cores)."""
        try:
            import onnxruntime as ort
        except ImportError:
            raise CTCASRError("running ONNX models needs onnxruntime: pip install 'ctcasr[export]'") from None
        # Bytes too: ctcasr.export checks a model in memory before writing it.
        source = bytes(path) if isinstance(path, (bytes, bytearray)) else None
        self.path = Path("<bytes>") if source is not None else Path(path)
        if source is None and not self.path.is_file():
            raise ModelError(f"{self.path}: no such ONNX file")
        opts = ort.SessionOptions()
        if num_threads:
            opts.intra_op_num_threads = int(num_threads)
            opts.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(source if source is not None else os.fspath(self.path), opts,
                                                providers=providers or ["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001 - onnxruntime raises its own untyped failures
            first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
            raise ModelError(f"{self.path}: cannot load ONNX model ({first})") from None
        meta = dict(self.session.get_modelmeta().custom_metadata_map)
        missing = [k for k in REQUIRED_METADATA if k not in meta]
        if missing:
            raise ModelError(f"{self.path}: no {', '.join(missing)} in the ONNX metadata; "
                             "export the model with `ctcasr export`")
        self.metadata = meta
        self.tokens = [" " if t == SPACE_SYMBOL else t for t in meta["tokens"].splitlines()]
        self.sample_rate = int(meta["sample_rate"])
        self.frame_shift_s = float(meta["frame_shift_s"])
        # files from before this key: frame starts (0 s) are the best guess
        self.first_frame_centre_s = float(meta.get("first_frame_centre_s", 0.0))
        self.word_delimiter = meta.get("word_delimiter", " ") or None
        self.blank_id = int(meta.get("blank_id", "0"))
        out_dim = self.session.get_outputs()[0].shape[-1]
        if isinstance(out_dim, int) and out_dim != len(self.tokens):
            raise ModelError(f"{self.path}: {len(self.tokens)} tokens in the metadata but the model "
                             f"outputs {out_dim}")

    # ------------------------------------------------------------------ running
    def run(self, waveforms, lengths=None):
        """``waveforms [B, N]`` float32 at ``sample_rate`` (zero-padded), ``lengths [B]``
        (default: all N) -> ``(log_probs [B, T, V], out_lengths [B])`` as numpy arrays."""
        x = np.ascontiguousarray(np.asarray(waveforms, dtype=np.float32))
        if x.ndim != 2:
            raise CTCASRError(f"waveforms must be [batch, samples], got shape {x.shape}")
        n = np.full(x.shape[0], x.shape[1], np.int64) if lengths is None else np.asarray(lengths, np.int64)
        if n.shape != (x.shape[0],) or (n < 1).any() or (n > x.shape[1]).any():
            raise CTCASRError(f"lengths must be [batch] with 1 <= length <= {x.shape[1]}, got {n.tolist()}")
        log_probs, out_lengths = self.session.run(None, {"waveforms": x, "lengths": n})
        return log_probs, out_lengths

    def run_batch(self, waveforms):
        """A list of 1-D waveforms at ``sample_rate`` -> ``(log_probs [B, T, V], out_lengths [B])``."""
        waves = [np.asarray(w, dtype=np.float32).reshape(-1) for w in waveforms]
        lengths = np.array([len(w) for w in waves], np.int64)
        batch = np.zeros((len(waves), int(lengths.max())), np.float32)
        for i, w in enumerate(waves):
            batch[i, : len(w)] = w
        return self.run(batch, lengths)

    def __call__(self, audio, sample_rate: int | None = None):
        """One utterance -> ``log_probs [T, V]`` (its valid frames). ``audio``: a file path,
        or a 1-D / [samples, channels] array with ``sample_rate`` (resampled when it differs)."""
        from .audio import load_audio, prepare_waveform

        if isinstance(audio, (str, os.PathLike)):
            x = load_audio(audio, self.sample_rate)
        else:
            if sample_rate is None:
                raise CTCASRError("pass sample_rate= with an audio array")
            x = prepare_waveform(np.asarray(audio), sample_rate, self.sample_rate)
        log_probs, out_lengths = self.run(x[None, :])
        return log_probs[0, : int(out_lengths[0])]

    # ------------------------------------------------------------------ decoding
    def decoder(self, kind: str = "greedy", **options):
        """A ``ctcasr.decoding`` decoder set up with this model's tokens: ``"greedy"`` or
        ``"beam"`` (``options`` go to BeamSearchDecoder: beam_size, lm, lm_weight, ...)."""
        if kind == "greedy":
            from .decoding import GreedyDecoder

            return GreedyDecoder(self.tokens, blank=self.blank_id, word_delimiter=self.word_delimiter,
                                 input_type="log_probs")
        if kind == "beam":
            from .decoding import BeamSearchDecoder

            return BeamSearchDecoder(self.tokens, blank=self.blank_id, word_delimiter=self.word_delimiter,
                                     input_type="log_probs", **options)
        raise CTCASRError(f"unknown decoder {kind!r}; use greedy or beam")
