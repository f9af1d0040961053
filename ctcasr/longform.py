"""Long audio: read any length in windows, cut at quiet points, stitch words back together.

Why windows at all: the BiLSTM needs the whole input before it emits its first frame, and
its activations grow with the input (an hour at 30 ms frames is 120 000 steps × layers ×
2 directions × hidden). Cutting the input bounds memory; the questions are where to cut
and how to join.

How we cut: every window owns a *core* span ``[cut_k, cut_k+1)`` of at most
``max_core_s`` seconds, and is decoded with ``margin_s`` of audio on either side so the
BiLSTM has context at both edges. The cut between two cores is the quietest point
(lowest 100 ms energy) in the last ``search_s`` seconds of the allowed core, so in speech
with any pauses a cut falls between words, not inside one. A word belongs to the window
whose core holds its midpoint; since the cut sits in a pause, a word's midpoint lands on
the same side of it in both windows that see it, which is what keeps the stitched text
free of duplicates and gaps. Times are shifted by each window's start, so they are
absolute seconds in the file.

Why not fixed overlap with hypothesis merging (e.g. longest common subsequence of the
overlapping text): it needs a text alignment heuristic at every seam and fails on
repeated words ("two two two"); a quiet cut needs none. When there is no pause at all
(music, babble), the cut falls at the quietest frame anyway and the margins give both
windows the same context, so at worst one word at the seam is mis-timed or split.

How we read: ``AudioSource`` seeks in the file (soundfile) and resamples one window at a
time, so a two-hour 48 kHz stereo file never sits in memory as a whole. Formats
libsndfile cannot seek in fall back to reading the file once (``audio.load_audio``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterator, Optional

import numpy as np

from .audio import check_file, load_audio, prepare_waveform
from .errors import AudioError

MAX_CORE_S = 25.0   # longest span one window owns
SEARCH_S = 5.0      # where the cut may fall: the last SEARCH_S of that span
MARGIN_S = 2.0      # context decoded on each side of the core and then thrown away


class AudioSource:
    """Random access to mono float32 audio at ``sample_rate``, from a file or an array.

    ``offset_s``/``duration_s`` restrict it to a segment (Kaldi ``segments``).
    """

    def __init__(self, audio, sample_rate: int, input_rate: Optional[int] = None,
                 offset_s: float = 0.0, duration_s: Optional[float] = None, name: Optional[str] = None):
        self.sample_rate = int(sample_rate)
        self._sf = None
        self._array = None
        if isinstance(audio, (str, os.PathLike)):
            self.name = name or os.fspath(audio)
            self._open_file(os.fspath(audio))
        else:
            self.name = name or "<array>"
            if input_rate is None:
                raise AudioError("pass sample_rate= with an audio array")
            # Validate and resample once: an array is already in memory, so windows of it are
            # cheap views, and one resampling avoids seams.
            self._array = prepare_waveform(audio, input_rate, self.sample_rate, name=self.name)
            self._rate = self.sample_rate
            self._frames = len(self._array)
        start = int(round(offset_s * self._rate))
        if start >= self._frames and self._frames:
            raise AudioError(f"{self.name}: segment offset {offset_s:.2f}s is past the end "
                             f"({self._frames / self._rate:.2f}s)")
        stop = self._frames if duration_s is None else min(self._frames, start + int(round(duration_s * self._rate)))
        self._start, self._stop = start, stop
        if stop <= start:
            raise AudioError(f"{self.name}: audio has no samples" + (f" in the segment at {offset_s:.2f}s"
                                                                      if offset_s else ""))

    def _open_file(self, path: str):
        import soundfile as sf

        check_file(path)  # a FIFO or device in a manifest must not block or never end
        try:
            f = sf.SoundFile(path)
            if not f.seekable() or f.frames <= 0 or f.samplerate <= 0:
                raise RuntimeError("not seekable")
            self._sf, self._rate, self._frames = f, f.samplerate, f.frames
        except Exception:  # noqa: BLE001 - anything libsndfile cannot seek in: read it once
            self._array = load_audio(path, self.sample_rate)
            self._rate, self._frames = self.sample_rate, len(self._array)

    @property
    def duration_s(self) -> float:
        return (self._stop - self._start) / self._rate

    def read(self, start_s: float = 0.0, end_s: Optional[float] = None) -> np.ndarray:
        """Samples of ``[start_s, end_s)`` (seconds from the segment start) at ``sample_rate``."""
        a = self._start + max(0, int(round(start_s * self._rate)))
        b = self._stop if end_s is None else min(self._stop, self._start + int(round(end_s * self._rate)))
        if b <= a:
            raise AudioError(f"{self.name}: no audio between {start_s:.2f}s and {end_s}s")
        if self._array is not None:
            return self._array[a:b]
        try:
            self._sf.seek(a)
            data = self._sf.read(b - a, dtype="float32", always_2d=True)
        except Exception as e:  # noqa: BLE001 - a truncated or corrupt file mid-way
            raise AudioError(f"{self.name}: cannot read audio at {start_s:.1f}s ({e})") from None
        if len(data) == 0:
            raise AudioError(f"{self.name}: file ends before {start_s:.1f}s (truncated?)")
        return prepare_waveform(data, self._rate, self.sample_rate, name=self.name)

    def close(self):
        if self._sf is not None:
            self._sf.close()
            self._sf = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@dataclass
class Window:
    """A stretch of audio to decode: ``audio`` starts at ``start_s`` (file time) and the
    words whose midpoint lies in ``[core_start_s, core_end_s)`` are kept."""

    audio: np.ndarray
    start_s: float
    core_start_s: float
    core_end_s: float


def quietest_point(x: np.ndarray, sample_rate: int, smooth_s: float = 0.1) -> float:
    """Seconds into ``x`` of the centre of its lowest-energy ``smooth_s`` stretch."""
    hop = max(1, int(sample_rate * 0.01))
    n = len(x) // hop
    if n < 2:
        return len(x) / sample_rate / 2
    e = (x[: n * hop].astype(np.float64).reshape(n, hop) ** 2).mean(axis=1)
    k = max(1, int(round(smooth_s / 0.01)))
    if n > k:
        e = np.convolve(e, np.ones(k) / k, mode="valid")
    # Ties (digital silence) resolve to the middle of the quietest run: the cut then sits
    # as far from both neighbouring words as the pause allows.
    low = np.flatnonzero(e <= e.min() + 1e-12)
    runs = np.split(low, np.flatnonzero(np.diff(low) > 1) + 1)
    best = max(runs, key=len)
    centre = (best[0] + best[-1]) / 2 + (k - 1) / 2 if n > k else (best[0] + best[-1]) / 2
    return (centre + 0.5) * hop / sample_rate


def windows(source: AudioSource, max_core_s: float = MAX_CORE_S, search_s: float = SEARCH_S,
            margin_s: float = MARGIN_S) -> Iterator[Window]:
    """Cut ``source`` into decoding windows (see the module docstring); one read per window."""
    if not 0 < search_s <= max_core_s:
        raise ValueError("need 0 < search_s <= max_core_s")
    total = source.duration_s
    sr = source.sample_rate
    core = 0.0
    while True:
        lo = max(0.0, core - margin_s)
        if total - core <= max_core_s + margin_s:
            # The rest fits in one window: no cut (a short file is one window, no margins).
            yield Window(source.read(lo, total), lo, core, float("inf"))
            return
        hi = core + max_core_s + margin_s
        x = source.read(lo, hi)
        a = int((core + max_core_s - search_s - lo) * sr)
        b = int((core + max_core_s - lo) * sr)
        cut = lo + a / sr + quietest_point(x[a:b], sr)
        end = min(len(x), int(round((cut + margin_s - lo) * sr)))
        yield Window(x[:end], lo, core, cut)
        core = cut
