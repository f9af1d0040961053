"""Read audio files into mono float32 waveforms at the model's sample rate.

soundfile (libsndfile) reads wav/flac/ogg/mp3 and most PCM containers directly and cheaply;
librosa's audioread fallback covers what libsndfile cannot. We never call torchaudio.load:
in torchaudio >= 2.9 it needs torchcodec, a heavy extra dependency.
"""

from __future__ import annotations

import logging
import os
import stat

import numpy as np

from .errors import AudioError

log = logging.getLogger(__name__)

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".opus", ".mp3", ".sph", ".aiff", ".aif", ".au")

# Sample rates we accept. A header is data from anywhere: one claiming 1 Hz would make the
# resampler turn a 1 MB file into gigabytes of samples at 16 kHz (a memory bomb).
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1000, 1_000_000


def _read(path: str):
    import soundfile as sf

    try:
        # One open for the size check and the read: sf.info and then sf.read opened and
        # parsed the file twice, ~20 of the ~130 ms a worker spends on a digits training
        # batch (loading, augmentation), which is what a training step waits for on CPU.
        with sf.SoundFile(path) as f:
            _check_decoded_size(path, f.frames, f.channels, f.samplerate)
            return f.read(dtype="float32", always_2d=True), f.samplerate
    except AudioError:
        raise
    except Exception as sf_err:  # noqa: BLE001 - LibsndfileError, or anything else soundfile raises on odd headers
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
    check_file(path)
    data, sr = _read(path)  # (checks the decoded size from the header first)
    return prepare_waveform(data, sr, sample_rate, name=path)


# load_audio holds the whole decoded file (float32, every channel, native rate) in memory.
# A few KB of FLAC can declare hours of samples, so the header is checked first. Long
# recordings do not need load_audio: the Transcriber reads them window by window.
MAX_DECODED_BYTES = 4 * 2**30


def _check_decoded_size(path: str, frames: int, channels: int, samplerate: int) -> None:
    n = int(frames) * max(1, int(channels)) * 4
    if n > MAX_DECODED_BYTES:
        hours = frames / max(1, samplerate) / 3600
        raise AudioError(f"{path}: {hours:.1f} h x {channels} channel(s) at {samplerate} Hz would take "
                         f"{n / 2**30:.1f} GiB decoded (limit {MAX_DECODED_BYTES / 2**30:.0f} GiB); "
                         "`ctcasr transcribe` reads long files in windows, or split the file")


def check_file(path: str) -> None:
    """AudioError unless ``path`` is a non-empty regular file. A path in a manifest comes
    from anywhere: a FIFO or /dev/stdin would block a reader forever, /dev/zero never ends."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise AudioError(f"{path}: no such file") from None
    except (OSError, ValueError) as e:  # permission, name too long, a NUL byte in the name
        raise AudioError(f"{path}: cannot open ({getattr(e, 'strerror', None) or e})") from None
    if stat.S_ISDIR(st.st_mode):
        raise AudioError(f"{path}: is a directory, not an audio file")
    if not stat.S_ISREG(st.st_mode):
        raise AudioError(f"{path}: not a regular file (a device, pipe or socket)")
    if st.st_size == 0:
        raise AudioError(f"{path}: file is empty (0 bytes)")


def prepare_waveform(data, sr: int, sample_rate: int = 16000, name: str = "<array>") -> np.ndarray:
    """Turn an array ``[n]`` or ``[n, channels]`` at rate ``sr`` into mono float32 at ``sample_rate``."""
    try:
        x = np.asarray(data)
    except Exception as e:  # noqa: BLE001 - ragged lists and the like
        raise AudioError(f"{name}: audio cannot be read as an array ({e})") from None
    if x.dtype.kind not in "iuf":
        # Strings would fail in astype with a bare ValueError; complex numbers would lose
        # their imaginary part with only a warning; bools are not samples.
        raise AudioError(f"{name}: audio samples must be real numbers, got dtype {x.dtype}")
    if x.dtype.kind == "i":
        # Integer PCM: scale to [-1, 1) the way soundfile does for float reads.
        x = x.astype(np.float32) / float(np.iinfo(x.dtype).max + 1)
    elif x.dtype.kind == "u":
        # Unsigned PCM (8-bit WAV's convention) is offset binary: silence is the midpoint.
        half = float(np.iinfo(x.dtype).max // 2 + 1)
        x = (x.astype(np.float64) - half).astype(np.float32) / np.float32(half)
    with np.errstate(over="ignore", invalid="ignore"):  # overflow to inf is reported below
        x = x.astype(np.float32, copy=False)
    if x.size == 0:
        raise AudioError(f"{name}: audio has no samples")
    if x.ndim == 2:
        # [n, channels]; a [channels, n] array with few channels is turned the right way.
        if x.shape[0] <= 8 and x.shape[1] > x.shape[0] * 100:
            x = x.T
        with np.errstate(over="ignore", invalid="ignore"):
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
    if not (sr and MIN_SAMPLE_RATE <= sr <= MAX_SAMPLE_RATE):
        raise AudioError(f"{name}: invalid sample rate {sr} Hz (expected {MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz)")
    if sr != sample_rate:
        y = _resample(x, int(sr), int(sample_rate))
        if not np.isfinite(y).all():
            # Finite samples near the float32 limit (~3e38) overflow in the filter.
            raise AudioError(f"{name}: samples too large to resample (peak {float(np.abs(x).max()):.3g})")
        x = y
    return x


def _resample(x: np.ndarray, sr: int, target: int) -> np.ndarray:
    """soxr "HQ" resampling of a 1-D float32 signal, same result as ``librosa.resample(...,
    res_type="soxr_hq")``. Called directly because librosa runs soxr through
    np.apply_along_axis, which keeps a second copy of the output: for a 2-hour 8 kHz file
    that is 460 MB more at the peak."""
    import soxr  # librosa's own resampling backend

    n_out = int(np.ceil(len(x) * target / sr))
    y = soxr.resample(np.ascontiguousarray(x), sr, target, quality="soxr_hq")
    if len(y) != n_out:  # librosa's fix_length: the output has ceil(n * ratio) samples
        y = y[:n_out] if len(y) > n_out else np.pad(y, (0, n_out - len(y)))
    return np.ascontiguousarray(y, dtype=np.float32)


def kept_segments(w: np.ndarray, sample_rate: int, edge_quiet_s: float | None, loud_range_db: float = 35.0) -> list:
    """The parts of ``w`` a model should hear: [(start, end)] in samples. Quiet (25 ms
    frames, 10 ms hop, more than ``loud_range_db`` below the loudest) is kept up to
    ``edge_quiet_s`` before and after the speech, and a pause inside longer than twice
    that keeps ``edge_quiet_s`` on each side; [(0, len(w))] when ``edge_quiet_s`` is None.
    Why (``Transcriber.edge_quiet_s``): the front end's gain and mean normalisation see
    the whole input, so long quiet around the speech shifts every speech frame."""
    n = len(w)
    if edge_quiet_s is None or n < 2:
        return [(0, n)]
    win, hop = int(0.025 * sample_rate), int(0.010 * sample_rate)
    k = max(1, (n - win) // hop + 1)
    c = np.concatenate([[0.0], np.cumsum(np.square(w, dtype=np.float64))])
    starts = np.minimum(np.arange(k) * hop, max(n - win, 0))
    power = c[np.minimum(starts + win, n)] - c[starts]
    loud = np.flatnonzero(power >= power.max() * 10.0 ** (-loud_range_db / 10.0))
    keep = int(round(edge_quiet_s * sample_rate))
    a = np.maximum(starts[loud] - keep, 0)
    b = np.minimum(starts[loud] + win + keep, n)
    # Loud frames come in order and b grows with a, so a segment ends wherever the next
    # loud frame's span starts after the previous one's ends.
    cut = np.flatnonzero(a[1:] > b[:-1])
    return [(int(x), int(y)) for x, y in zip(np.r_[a[0], a[cut + 1]], np.r_[b[cut], b[-1]])]


def input_time(segs, t: float, sample_rate: int, end: bool = False) -> float:
    """Seconds ``t`` in what the model heard (the ``segs`` of ``kept_segments`` one after
    the other) -> seconds in the input. A time exactly where two segments join is the
    next segment's start, or with ``end`` (the end of a word) the previous one's end, so
    that an interval never spans the quiet that was cut out."""
    done = 0.0
    for a, b in segs:
        d = (b - a) / sample_rate
        if t < done + d or (end and t <= done + d):
            return a / sample_rate + t - done
        done += d
    return segs[-1][1] / sample_rate + t - done  # past the end (a frame centre beyond the last sample)


def audio_duration(path) -> float:
    """Duration in seconds from the file header (no decoding); AudioError if unreadable."""
    import soundfile as sf

    path = os.fspath(path)
    check_file(path)
    try:
        info = sf.info(path)
        return info.frames / float(info.samplerate)
    except Exception:  # noqa: BLE001
        return len(load_audio(path, 16000)) / 16000.0
