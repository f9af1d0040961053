#!/usr/bin/env python3
"""WER of a model on test utterances with quiet before and after them: none, 1.5 s of
digital silence, or 1.5 s of white noise at -70 / -50 dBFS on each side. Clean utterances
(the first 150 without noise, reverberation or telephone band) and noisy ones (all with
stage-0 noise, which then starts and stops with the speech), decoded the way
`ctcasr transcribe` does (`--edge-quiet`: seconds of quiet the model hears; 'all' = all).

    python local/quiet_edges_check.py --model exp/blstm --data data/test.jsonl
    python local/quiet_edges_check.py --model exp/blstm --data data/test.jsonl --edge-quiet all
"""

import argparse
import json

import numpy as np

from ctcasr import Transcriber
from ctcasr.audio import load_audio
from ctcasr.data import read_manifest
from ctcasr.metrics import word_errors

PADS = [("none", None), ("digital silence", -np.inf), ("white -70 dBFS", -70.0), ("white -50 dBFS", -50.0)]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--data", required=True, help="test manifest (with stage 0's 'aug' field)")
    p.add_argument("--edge-quiet", default="0.3")
    p.add_argument("--pad-s", type=float, default=1.5)
    a = p.parse_args()
    asr = Transcriber.load(a.model, device="cpu")
    asr.edge_quiet_s = None if a.edge_quiet == "all" else float(a.edge_quiet)
    utts = read_manifest(a.data)
    augs = [json.loads(line).get("aug", {}) for line in open(a.data) if line.strip()]
    groups = {
        "clean": [u for u, g in zip(utts, augs) if not (g.get("noise") or g.get("reverb_rt60") or g.get("telephone"))][:150],
        "noisy": [u for u, g in zip(utts, augs) if g.get("noise")],
    }
    rng = np.random.default_rng(0)
    n = int(a.pad_s * asr.sample_rate)
    print(f"model {a.model}, edge quiet {a.edge_quiet}, {a.pad_s:g} s on each side")
    for name, sel in groups.items():
        row = []
        for _, level in PADS:
            err = ref = 0
            for u in sel:
                x = load_audio(u.audio_filepath, asr.sample_rate)
                if level is not None:
                    lead, trail = (10 ** (level / 20) * rng.standard_normal((2, n))).astype(np.float32)  # -inf: zeros
                    x = np.concatenate([lead, x, trail])
                e = word_errors(u.text, asr.transcribe(x, sample_rate=asr.sample_rate).text)
                err += e.substitutions + e.deletions + e.insertions
                ref += e.ref_len
            row.append(f"{100 * err / ref:.2f} %")
        print(f"{name} ({len(sel)} utterances): " + ", ".join(f"{p[0]} {r}" for p, r in zip(PADS, row)))


if __name__ == "__main__":
    main()
