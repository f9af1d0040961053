#!/usr/bin/env python3
"""WER of a model on long files: 60 test utterances (random, seed 7) joined by 0.5-2.5 s
pauses of digital silence (3 min 15 s, 254 words on the recipe's test set), then the same
under continuous sox-made noise (white -45, pink -35, brown -30 dBFS, 50 Hz hum -35 dBFS),
each transcribed as one file the way `ctcasr transcribe` does (windows, beam + LM).

    python local/long_noisy_file.py --model exp/blstm --data data/test.jsonl
"""

import argparse
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from ctcasr import Transcriber
from ctcasr.audio import load_audio
from ctcasr.data import read_manifest
from ctcasr.metrics import word_errors

NOISES = [("digital-silence pauses", None), ("white -45 dBFS", "whitenoise vol -45dB"),
          ("pink -35 dBFS", "pinknoise vol -35dB"), ("brown -30 dBFS", "brownnoise vol -30dB"),
          ("50 Hz hum -35 dBFS", "sine 50 sine 100 sine 150 remix - vol -35dB")]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--data", required=True, help="test manifest")
    a = p.parse_args()
    rng = np.random.default_rng(7)
    utts = read_manifest(a.data)
    pick = [utts[i] for i in sorted(rng.choice(len(utts), 60, replace=False))]
    parts = []
    for u in pick:
        parts += [load_audio(u.audio_filepath, 16000), np.zeros(int(rng.uniform(0.5, 2.5) * 16000), np.float32)]
    speech = np.concatenate(parts)
    ref = " ".join(u.text for u in pick)
    asr = Transcriber.load(a.model, device="cpu")
    with tempfile.TemporaryDirectory() as tmp:
        for name, effect in NOISES:
            y = speech.copy()
            if effect:
                f = Path(tmp) / "n.wav"
                subprocess.run(["sox", "-R", "-n", "-r", "16000", "-c", "1", "-b", "16", str(f), "synth",
                                f"{len(y) / 16000:.3f}", *effect.split()], check=True)
                nz, _ = sf.read(f, dtype="float32")
                y[: len(nz)] += nz[: len(y)]
            e = word_errors(ref, asr.transcribe(y, sample_rate=16000).text)
            print(f"{name}: WER {100 * (e.substitutions + e.deletions + e.insertions) / e.ref_len:.1f} % "
                  f"(S{e.substitutions} D{e.deletions} I{e.insertions}, {e.ref_len} words, {len(y) / 16000:.0f} s)")


if __name__ == "__main__":
    main()
