"""ctcasr: speech recognition with a BiLSTM-CTC acoustic model.

Public API (imported lazily, so ``import ctcasr.decoding`` stays numpy-only):
    Transcriber, Transcript, Word      ctcasr.transcribe
    CTCModel, load_model_dir           ctcasr.model
    Tokenizer                          ctcasr.tokenizer
    GreedyDecoder, BeamSearchDecoder, NGramLM, Hypothesis   ctcasr.decoding
"""

__version__ = "0.1.0"

_EXPORTS = {
    "Transcriber": "transcribe",
    "Transcript": "transcribe",
    "Word": "transcribe",
    "CTCModel": "model",
    "load_model_dir": "model",
    "Tokenizer": "tokenizer",
    "GreedyDecoder": "decoding",
    "BeamSearchDecoder": "decoding",
    "NGramLM": "decoding",
    "Hypothesis": "decoding",
    "load_audio": "audio",
    "CTCASRError": "errors",
    "AudioError": "errors",
    "ModelError": "errors",
    "DataError": "errors",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name):
    if name in _EXPORTS:
        import importlib

        mod = importlib.import_module(f".{_EXPORTS[name]}", __name__)
        return getattr(mod, name)
    raise AttributeError(f"module 'ctcasr' has no attribute {name!r}")
