#!/usr/bin/env python3
"""How many words a model writes for audio without speech.

46 clips made here with sox (not with ctcasr's own noise generator, which training uses):
white, pink, brown and TPDF noise at -15...-45 dBFS and 8/16 kHz, 50/60 Hz mains hum with
harmonics, fan-like low-passed pink noise, high-passed hiss at 44.1 kHz, a sine sweep in
stereo at 22.05 kHz and a train of beeps. A model should write nothing for any of them.
The clips are decoded the way `ctcasr transcribe` does by default, once with its silence
gate off (--silence-dbfs=-inf, so that the model itself is judged) and once as shipped.

    python local/nonspeech_check.py --model exp/blstm
"""

import argparse
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

CLIPS = (
    [(f"{kind}_{db}_{sr}", sr, 1, f"synth 3 {kind} vol -{db}dB")
     for kind in ("whitenoise", "pinknoise", "brownnoise", "tpdfnoise") for db in (15, 25, 35, 45) for sr in (16000, 8000)]
    + [(f"hum{f}_{db}", 16000, 1, f"synth 4 sine {f} sine {2 * f} sine {3 * f} remix - vol -{db}dB")
       for f in (50, 60) for db in (10, 25, 40)]
    + [c for db in (15, 30) for c in (
        (f"fan_{db}", 16000, 1, f"synth 5 pinknoise lowpass 400 vol -{db}dB"),
        (f"sweep_{db}", 22050, 2, f"synth 4 sine 200-2000 vol -{db}dB"),
        (f"beeps_{db}", 16000, 1, f"synth 0.3 sine 1000 pad 0 0.5 repeat 5 vol -{db}dB"),
        (f"hiss_{db}", 44100, 1, f"synth 3 whitenoise highpass 3000 vol -{db - 6}dB"),
    )]
)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="model directory or shipped model name")
    a = p.parse_args()
    if shutil.which("sox") is None:
        sys.exit("nonspeech_check: needs sox (scripts/install_tts.sh installs it)")
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for name, sr, ch, effect in CLIPS:
            f = Path(tmp) / f"{name}.wav"
            # -R: sox's repeatable random numbers, so the clips are the same every run
            subprocess.run(["sox", "-R", "-n", "-r", str(sr), "-c", str(ch), "-b", "16", str(f), *effect.split()],
                           check=True, stderr=subprocess.DEVNULL)
            files.append(str(f))
        for gate in (["--silence-dbfs=-inf"], []):
            r = subprocess.run(["ctcasr", "transcribe", "--model", a.model, "-q", *gate, *files],
                               capture_output=True, text=True)
            if r.returncode != 0:
                sys.exit(f"nonspeech_check: ctcasr transcribe failed: {r.stderr.strip()}")
            words = Counter()
            for line in r.stdout.splitlines():
                path, _, text = line.partition("\t")
                words[Path(path).stem.split("_")[0]] += len(text.split())
            n_with = sum(1 for line in r.stdout.splitlines() if line.partition("\t")[2].strip())
            label = "model alone (silence gate off)" if gate else "as transcribe runs (silence gate -50 dBFS)"
            print(f"non-speech clips, {label}: {len(files)} clips, {n_with} with words, "
                  f"{sum(words.values())} words in all"
                  + (" (" + ", ".join(f"{k} {v}" for k, v in sorted(words.items()) if v) + ")" if n_with else ""))


if __name__ == "__main__":
    main()
