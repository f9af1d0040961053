#!/usr/bin/env python3
"""Median word start/end errors of models' word times (as `ctcasr transcribe` gives them,
greedy decoding) on the held-out sentences of tests/test_word_timing.py (single words of
flite/festival voices strung together with known pauses), clean and with added white,
pink and babble noise; with and without the energy pause rule for word ends
(``word_times(speech=...)``).

    python local/word_timing_check.py --model ../../data/models/digits --model exp/blstm
"""

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests"))
import test_word_timing as T  # noqa: E402  (the test's sentence builder and scorer)

import ctcasr.transcribe as TR  # noqa: E402
from ctcasr import synth  # noqa: E402
from ctcasr.decoding import GreedyDecoder  # noqa: E402
from ctcasr.model import load_model_dir  # noqa: E402

CONDITIONS = [("clean", None, None), ("white", "white", 15.0), ("pink", "pink", 10.0), ("babble", "babble", 15.0)]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", action="append", required=True, help="model directory or name (repeatable)")
    a = p.parse_args()
    with_rule = TR.Transcriber._speech
    base = T.build_sentences(T.HELD_OUT_VOICES, T.N_SENTENCES, T.SEED, T.synth_word_audio())
    for name, kind, snr in CONDITIONS:
        rng = np.random.default_rng(5)
        sents = base if kind is None else [dict(s, audio=synth.add_noise(s["audio"], snr, rng, kind=kind)) for s in base]
        for m in a.model:
            model, tok = load_model_dir(m, "cpu")
            tokens, wd = tok.decoder_tokens, tok.word_delimiter
            for rule in (False, True):
                TR.Transcriber._speech = with_rule if rule else (lambda self, audio, n: None)
                shipped = {"model": model, "tokenizer": tok, "delimiter_id": tokens.index(wd),
                           "greedy": GreedyDecoder(tokens, blank=0, word_delimiter=wd, input_type="log_probs")}
                _, ds, de = T.measure(sents, shipped, "greedy")
                print(f"{name}{f' {snr:g} dB' if snr else ''}  {m}  pause rule {'on ' if rule else 'off'}  "
                      f"{len(ds)} words: median |error| start {1000 * np.median(np.abs(ds)):.0f} ms, "
                      f"end {1000 * np.median(np.abs(de)):.0f} ms")
    TR.Transcriber._speech = with_rule


if __name__ == "__main__":
    main()
