#!/usr/bin/env python
"""Transcription speed and memory: the `ctcasr transcribe` path on synthesized speech.

    python benchmarks/transcribe.py                 # RTF, greedy and beam+LM, digits model
    python benchmarks/transcribe.py --hour          # also peak RSS of a 1-hour file

Real-time factor (wall time / audio time) of what the CLI does for a set of files:
load the model directory (and its lm.arpa), read and resample the audio, the front end,
the BiLSTM, the decoder and building the transcripts with word times -- measured in this
process around ``Transcriber.load`` + ``transcribe_files``, twice per decoder (the first
run warms the page cache and torch's kernels; the second is reported, and both printed).

Audio: digit strings by held-out voices of the digits recipe (flite awb and espeak-ng
variants the model never heard), joined with pauses into files of ``--file-s`` seconds
(default 30; a long file goes through the same windowing as any other), written as 16 kHz
wav into a temp folder and cached there between runs.

``--hour``: a 60-minute wav (the synthesized speech tiled, with different pauses) is
transcribed by ``python -m ctcasr transcribe`` in a child process, and the child's peak
resident set size (``ru_maxrss``) is reported: the figure the README quotes for bounded
memory on long audio.

Nothing here is asserted by the tests.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SR = 16000
DIGITS = "zero one two three four five six seven eight nine oh".split()
VOICES = ["flite:awb", "espeak:en-us+f4", "espeak:en-gb-x-rp+m5", "espeak:en-us+max", "espeak:en-us+m6",
          "espeak:en-us+f3"]


def speech(seconds: float, seed: int) -> np.ndarray:
    from ctcasr import synth

    rng = np.random.default_rng(seed)
    pieces, n, k = [], 0, 0
    while n < seconds * SR:
        text = " ".join(rng.choice(DIGITS, size=int(rng.integers(2, 7))))
        x = synth.synthesize(text, VOICES[k % len(VOICES)], rate=float(rng.uniform(0.9, 1.1)), rng=k)
        k += 1
        x = 0.5 * x / max(1e-3, float(np.abs(x).max()))
        gap = np.zeros(int(rng.uniform(0.2, 0.8) * SR), np.float32)
        pieces += [x, gap]
        n += len(x) + len(gap)
    return np.concatenate(pieces)[: int(seconds * SR)]


def make_files(folder: Path, n_files: int, file_s: float) -> list:
    import soundfile as sf

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n_files):
        p = folder / f"f{i:03d}_{int(file_s)}s.wav"
        if not p.exists():
            sf.write(p, speech(file_s, seed=1000 + i), SR, subtype="PCM_16")
        paths.append(p)
    return paths


def time_transcribe(model, paths, decoder, batch_size, threads):
    import torch

    from ctcasr import Transcriber

    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    asr = Transcriber.load(model, device="cpu", decoder=decoder)
    t_load = time.perf_counter() - t0
    res = asr.transcribe_files([str(p) for p in paths], batch_size=batch_size)
    wall = time.perf_counter() - t0
    bad = [r for r in res if isinstance(r, Exception)]
    if bad:
        raise SystemExit(f"transcription failed: {bad[0]}")
    audio = sum(r.duration_s for r in res)
    return {"wall": wall, "load": t_load, "audio": audio, "rtf": wall / audio,
            "decoder": type(asr.decoder).__name__}


def hour_rss(model, folder: Path, minutes: float, decoder: str) -> dict:
    import soundfile as sf

    p = folder / f"long_{int(minutes)}min.wav"
    if not p.exists():
        base = speech(300, seed=7)  # 5 minutes of distinct sentences, tiled with varied pauses
        rng = np.random.default_rng(0)
        with sf.SoundFile(p, "w", SR, 1, subtype="PCM_16") as f:
            n = 0
            while n < minutes * 60 * SR:
                chunk = np.concatenate([base, np.zeros(int(rng.uniform(0.1, 1.0) * SR), np.float32)])
                chunk = chunk[: int(minutes * 60 * SR) - n]
                f.write(chunk)
                n += len(chunk)
    cmd = [sys.executable, "-m", "ctcasr", "transcribe", str(p), "--decoder", decoder, "--format", "json",
           "-o", str(folder / "out")]
    if model:
        cmd += ["--model", model]
    t0 = time.perf_counter()
    cp = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if cp.returncode:
        raise SystemExit(f"child failed: {cp.stderr.strip()[-500:]}")
    rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # Linux: KiB
    return {"minutes": minutes, "wall": wall, "rtf": wall / (minutes * 60), "peak_rss_mb": rss_mb,
            "summary": cp.stderr.strip().splitlines()[-1]}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="model dir or name (default: shipped digits)")
    ap.add_argument("--files", type=int, default=20)
    ap.add_argument("--file-s", type=float, default=30.0)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--hour", action="store_true", help="also measure peak RSS on a 1-hour file")
    ap.add_argument("--hour-minutes", type=float, default=60.0)
    ap.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "ctcasr-bench-transcribe"))
    a = ap.parse_args()

    import torch

    folder = Path(a.cache)
    paths = make_files(folder, a.files, a.file_s)
    print(f"# {platform.machine()} {platform.processor() or ''} {os.cpu_count()} cores, torch {torch.__version__}, "
          f"threads {a.threads}, load average {os.getloadavg()[0]:.2f}")
    print(f"# {len(paths)} files x {a.file_s:.0f} s = {len(paths) * a.file_s / 60:.1f} min of speech, "
          f"batch size {a.batch_size}")
    print("| decoder | run | load s | wall s | audio s | RTF |")
    print("|---|---|---|---|---|---|")
    for dec in ("greedy", "auto"):
        for run in (1, 2):
            r = time_transcribe(a.model, paths, dec, a.batch_size, a.threads)
            name = "greedy" if dec == "greedy" else "beam 32 + lm.arpa" if r["decoder"] != "GreedyDecoder" else "greedy"
            print(f"| {name} | {run} | {r['load']:.2f} | {r['wall']:.2f} | {r['audio']:.0f} | {r['rtf']:.4f} |",
                  flush=True)
    if a.hour:
        for dec in ("greedy", "auto"):
            h = hour_rss(a.model, folder, a.hour_minutes, dec)
            print(f"# {h['minutes']:.0f}-minute file, --decoder {dec}: wall {h['wall']:.1f} s (RTF {h['rtf']:.4f}), "
                  f"peak RSS {h['peak_rss_mb']:.0f} MB (max over child processes so far)  [{h['summary']}]",
                  flush=True)


if __name__ == "__main__":
    main()
