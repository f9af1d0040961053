"""Read audio files into mono float32 waveforms at the model's sample rate.

soundfile (libsndfile) reads wav/flac/ogg/mp3 and most PCM containers directly and cheaply;
librosa's audioread fallback covers what libsndfile cannot. We never call torchaudio.load:
in torchaudio >= 2.9 it needs torchcodec, a heavy extra dependency.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from .errors import AudioError

log = logging.getLogger(__name__)

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".opus", ".mp3", ".sph", ".aiff", ".aif", ".au")


def _read(path: str):
    import soundfile as sf

    try:
        data, sr = sf.read(path, dtype="float32", always_2d=True)
        return data, sr
    except (RuntimeError, sf.LibsndfileError) as sf_err:
        # libsndfile refuses some containers (e.g. m4a, some NIST/SPHERE variants);
        # librosa falls back to audioread. If that fails too, report libsndfile's reason,
        # which is usually the more precise one ("File contains data in an unknown format").
        try:
            import warnings

            import librosa

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                y, sr = librosa.load(path, sr=None, mono=False, dtype=np.float32)
            y = np.atleast_2d(y).T  # librosa gives [channels, n]
            return y, sr
        except Exception:  # noqa: BLE001 - any decoder failure means "unreadable"
            raise AudioError(f"{path}: cannot read audio ({_short(sf_err)})") from None


def _short(err: Exception) -> str:
    msg = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
    return msg[:200]


def load_audio(path, sample_rate: int = 16000) -> np.ndarray:
    """Read ``path`` and return a mono float32 waveform at ``sample_rate``.

    Any channel count is averaged to mono; any sample rate is resampled (soxr via librosa).
    Raises AudioError naming the file when it is missing, unreadable, empty or not finite.
    """
    path = os.fspath(path)
    p = Path(path)
    if not p.exists():
        raise AudioError(f"{path}: no such file")
    if p.is_dir():
        raise AudioError(f"{path}: is a directory, not an audio file")
    if p.stat().st_size == 0:
        raise AudioError(f"{path}: file is empty (0 bytes)")
    data, sr = _read(path)
    return prepare_waveform(data, sr, sample_rate, name=path)


def prepare_waveform(data, sr: int, sample_rate: int = 16000, name: str = "<array>") -> np.ndarray:
    """Turn an array ``[n]`` or ``[n, channels]`` at rate ``sr`` into mono float32 at ``sample_rate``."""
    x = np.asarray(data)
    if x.dtype.kind in "iu":
        # Integer PCM: scale to [-1, 1) the way soundfile does for float reads.
        x = x.astype(np.float32) / float(np.iinfo(x.dtype).max + 1)
    x = x.astype(np.float32, copy=False)
    if x.size == 0:
        raise AudioError(f"{name}: audio has no samples")
    if x.ndim == 2:
        # [n, channels]; a [channels, n] array with few channels is turned the right way.
        if x.shape[0] <= 8 and x.shape[1] > x.shape[0] * 100:
            x = x.T
        x = x.mean(axis=1) if x.shape[1] > 1 else x[:, 0]
    elif x.ndim != 1:
        raise AudioError(f"{name}: audio must be 1-D or [samples, channels], got shape {x.shape}")
    if x.size == 0:
        raise AudioError(f"{name}: audio has no samples")
    finite = np.isfinite(x)
    if not finite.all():
        if not finite.any():
            raise AudioError(f"{name}: every sample is NaN or infinite")
        bad = int((~finite).sum())
        raise AudioError(f"{name}: {bad} of {x.size} samples are NaN or infinite")
    if not sr or sr <= 0:
        raise AudioError(f"{name}: invalid sample rate {sr}")
    if sr != sample_rate:
        import librosa

        x = librosa.resample(x, orig_sr=int(sr), target_sr=int(sample_rate), res_type="soxr_hq")
        x = np.ascontiguousarray(x, dtype=np.float32)
    return x


def audio_duration(path) -> float:
    """Duration in seconds from the file header (no decoding); AudioError if unreadable."""
    import soundfile as sf

    path = os.fspath(path)
    try:
        info = sf.info(path)
        return info.frames / float(info.samplerate)
    except Exception:  # noqa: BLE001
        return len(load_audio(path, 16000)) / 16000.0
