#!/usr/bin/env python3
"""The English sample wavs shipped in data/samples/en: test-set sentences (never in any
training or LM text) spoken by voices the en model never heard in training (run.sh), one
of them in babble noise and one at 8 kHz telephone bandwidth, plus samples.jsonl with what
each one says.

The sentences are the first ones of 6-12 words in data/test_a.txt / test_b.txt of the
recipe's seed-1 split, taken in order before the model was trained: they are not picked
for being ones the model gets right. tests/test_shipped.py holds the model to a CER bound
on them, not to exact transcripts; the model's real accuracy is the test-set figure in
../README.md."""

import argparse
import json
import os

import numpy as np

from ctcasr import synth

SAMPLES = [
    ("awb_0.wav", "flite:awb", "he bought a lot on the lake", None),
    ("ked_1.wav", "festival:ked_diphone", "now my sworn friend and then mine enemy", None),
    ("espeak_f3_2.wav", "espeak:en-us+f3", "remain calm and go back to bed", None),
    ("ked_noisy_3.wav", "festival:ked_diphone", "the roommates lived in peace together", "noise"),
    ("espeak_john_phone_4.wav", "espeak:en-gb+john", "responsible for the highness of the rates", "telephone"),
]


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out-dir", required=True)
    a = p.parse_args()
    os.makedirs(a.out_dir, exist_ok=True)
    rng = np.random.default_rng(7)
    recs = []
    for name, voice, text, effect in SAMPLES:
        x = synth.synthesize(text, voice, rng=rng)
        x = synth.normalize_rms(x, -24.0)
        sr = 16000
        if effect == "noise":
            x = synth.add_noise(x, 15.0, rng, kind="babble")
        elif effect == "telephone":
            import librosa

            x = librosa.resample(synth.telephone(x, sr), orig_sr=sr, target_sr=8000)
            sr = 8000
        synth.write_wav(os.path.join(a.out_dir, name), x, sr)
        recs.append({"audio_filepath": name, "duration": round(len(x) / sr, 3), "text": text, "voice": voice})
    with open(os.path.join(a.out_dir, "samples.jsonl"), "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in recs)


if __name__ == "__main__":
    main()
