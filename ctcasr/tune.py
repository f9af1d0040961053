"""LM weight and word score for a model directory, tuned on held-out data.

    ctcasr tune-lm --model exp/blstm --data dev.jsonl --write
    # writes exp/blstm/decode.yaml: {lm_weight: .., word_score: .., beam_size: ..}

Why: the best LM weight depends on the model's sharpness and on the LM (a 3-gram from
half a million words wants another weight than a 2-gram from the digit transcripts), and
users of pyctcdecode or flashlight tune it by hand with a loop of full decodes. Here the
network runs once over the data; only the beam search is repeated for each grid point.
Tune on a dev set, never on the test set whose figure you report.

``decode.yaml`` in a model directory holds the decoding defaults that ``Transcriber.load``,
``ctcasr transcribe`` and ``ctcasr evaluate`` use when no --lm-weight/--word-score/
--beam-size is given (the built-in defaults are 0.5, 1.0 and 32). It is plain YAML read
with ``yaml.safe_load`` and checked key by key; anything else in it is an error.
"""

from __future__ import annotations

import itertools
import logging
import math
import sys
from pathlib import Path

from .errors import CTCASRError, ModelError
from .metrics import corpus_errors

log = logging.getLogger(__name__)

DECODE_FILE = "decode.yaml"
DEFAULTS = {"lm_weight": 0.5, "word_score": 1.0, "beam_size": 32}
DEFAULT_WEIGHTS = (0.2, 0.35, 0.5, 0.7, 1.0, 1.4)
DEFAULT_SCORES = (-1.0, 0.0, 1.0, 2.0, 3.0)


def read_decode_defaults(model_dir) -> dict:
    """The model directory's decode.yaml as {lm_weight, word_score, beam_size} (missing
    keys: the built-in defaults). A malformed file is a ModelError naming it."""
    import yaml

    out = dict(DEFAULTS)
    p = Path(model_dir) / DECODE_FILE
    if not p.is_file():
        return out
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise ModelError(f"{p}: cannot read ({str(e).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        raise ModelError(f"{p}: expected a mapping of decoding options, got {type(raw).__name__}")
    for k, v in raw.items():
        if k in ("tuned_on", "dev_wer", "dev_ser", "dev_cer", "greedy_wer", "greedy_ser"):
            continue  # provenance, for people reading the file
        if k not in DEFAULTS:
            raise ModelError(f"{p}: unknown key {k!r} (allowed: {', '.join(DEFAULTS)})")
        if k == "beam_size":
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ModelError(f"{p}: beam_size must be a positive integer, got {v!r}")
        elif isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ModelError(f"{p}: {k} must be a finite number, got {v!r}")
        out[k] = v
    return out


def emissions(asr, utts, batch_size: int = 16, progress: bool = False):
    """Log-probs [T, V] of each utterance (None where the audio cannot be read), one pass
    of the network. Utterances longer than one decoding window are skipped (logged): a
    dev set of sentences has none, and tuning needs no hour-long recordings."""
    out: list = [None] * len(utts)
    one_window = asr.max_core_s + asr.margin_s
    openers = [asr._utterance_opener(u) for u in utts]
    todo = []
    for i, u in enumerate(utts):
        try:
            with openers[i]() as src:
                if src.duration_s > one_window:
                    log.warning("%s: %.0f s is longer than one window (%.0f s); not used for tuning",
                                u.id, src.duration_s, one_window)
                    continue
                todo.append((src.duration_s, i))
        except CTCASRError as e:
            log.warning("%s: %s; not used for tuning", u.id, e)
    todo.sort()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), desc="emissions", unit="utt", leave=False)
    for s in range(0, len(todo), batch_size):
        idx, waves = [], []
        for _, i in todo[s: s + batch_size]:
            with openers[i]() as src:
                waves.append(src.read())
            idx.append(i)
        for i, (_, lp, _, _, _) in zip(idx, asr._decode_windows(waves)):
            out[i] = lp
        if bar is not None:
            bar.update(len(idx))
    if bar is not None:
        bar.close()
    return out


def tune_lm(model_dir, manifest, lm="default", weights=DEFAULT_WEIGHTS, scores=DEFAULT_SCORES,
            beam_size: int | None = None, device: str = "auto", progress: bool = False, report=None) -> dict:
    """Grid search of (lm_weight, word_score) by WER (then CER) on ``manifest``; by CER for a
    model without a word delimiter, whose WER would count whole sentences.

    Returns {"best": {...}, "greedy": {...}, "grid": [{lm_weight, word_score, wer, cer}, ...]}.
    ``report(row)`` is called after each grid point (the CLI prints it)."""
    from .data import read_manifest
    from .decoding import BeamSearchDecoder, GreedyDecoder
    from .model import resolve_model_dir
    from .transcribe import Transcriber, _resolve_lm

    mdir = resolve_model_dir(model_dir)
    lm_obj = _resolve_lm(lm, mdir)
    if lm_obj is None:
        raise CTCASRError(f"{mdir}: no LM to tune (no lm.arpa in the model directory; pass --lm FILE)")
    if not weights or not scores:
        raise CTCASRError("give at least one LM weight and one word score")
    if beam_size is not None and beam_size < 1:
        raise CTCASRError(f"--beam-size must be >= 1, got {beam_size}")
    beam_size = int(beam_size or read_decode_defaults(mdir)["beam_size"])
    asr = Transcriber.load(mdir, device=device, decoder="greedy")
    utts = read_manifest(manifest)
    if not utts:
        raise CTCASRError(f"{manifest}: no utterances")
    lps = emissions(asr, utts, progress=progress)
    keep = [i for i, lp in enumerate(lps) if lp is not None]
    if not keep:
        raise CTCASRError(f"{manifest}: no utterance could be used")
    refs = [asr.tokenizer.normalize(utts[i].text) for i in keep]
    tokens = asr.tokenizer.decoder_tokens
    wd = asr.tokenizer.word_delimiter

    def score(dec):
        hyps = [dec(lps[i])[0].text for i in keep]
        w, c = corpus_errors(refs, hyps)
        return w.rate, c.rate

    gw, gc = score(GreedyDecoder(tokens, blank=0, word_delimiter=wd, input_type="log_probs"))
    grid = []
    for a, b in itertools.product(weights, scores):
        dec = BeamSearchDecoder(tokens, blank=0, beam_size=beam_size, word_delimiter=wd, lm=lm_obj,
                                lm_weight=float(a), word_score=float(b), input_type="log_probs")
        w, c = score(dec)
        row = {"lm_weight": float(a), "word_score": float(b), "wer": w, "cer": c, "words": wd is not None}
        grid.append(row)
        if report is not None:
            report(row)
    # Without a word delimiter (Chinese) the "WER" is the sentence error rate: rank by CER.
    best = min(grid, key=(lambda r: (r["wer"], r["cer"])) if wd is not None else (lambda r: (r["cer"], r["wer"])))
    return {"best": best, "greedy": {"wer": gw, "cer": gc}, "grid": grid, "beam_size": beam_size, "words": wd is not None,
            "utterances": len(keep), "skipped": len(utts) - len(keep), "model_dir": mdir}


def write_decode_defaults(model_dir, lm_weight: float, word_score: float, beam_size: int, **provenance) -> Path:
    import yaml

    from .utils import atomic_write_text

    d = {"lm_weight": float(lm_weight), "word_score": float(word_score), "beam_size": int(beam_size)}
    d.update(provenance)
    p = Path(model_dir) / DECODE_FILE
    atomic_write_text(p, "# decoding defaults (ctcasr tune-lm); --lm-weight/--word-score/--beam-size override\n"
                      + yaml.safe_dump(d, sort_keys=False))
    return p


def cmd_tune_lm(a) -> int:
    # A model without a word delimiter (Chinese) has no words: its "WER" counts whole
    # sentences, so it is printed as SER (sentence error rate), as `ctcasr evaluate` does.
    def name(words: bool) -> str:
        return "WER" if words else "SER"

    def report(row):
        print(f"lm_weight {row['lm_weight']:5.2f}  word_score {row['word_score']:5.2f}  "
              f"{name(row['words'])} {100 * row['wer']:6.2f} %  CER {100 * row['cer']:6.2f} %", flush=True)

    r = tune_lm(a.model, a.data, lm=a.lm, weights=a.lm_weights, scores=a.word_scores, beam_size=a.beam_size,
                device=a.device, progress=sys.stderr.isatty(), report=report)
    b, g, m = r["best"], r["greedy"], name(r["words"])
    print(f"greedy: {m} {100 * g['wer']:.2f} %  CER {100 * g['cer']:.2f} %")
    print(f"best (beam {r['beam_size']}): lm_weight {b['lm_weight']}  word_score {b['word_score']}  "
          f"{m} {100 * b['wer']:.2f} %  CER {100 * b['cer']:.2f} %  ({r['utterances']} utterances"
          + (f", {r['skipped']} not used" if r["skipped"] else "") + ")")
    if a.write:
        k = m.lower()
        p = write_decode_defaults(r["model_dir"], b["lm_weight"], b["word_score"], r["beam_size"],
                                  tuned_on=str(a.data), **{f"dev_{k}": round(b["wer"], 5)}, dev_cer=round(b["cer"], 5),
                                  **{f"greedy_{k}": round(g["wer"], 5)})
        print(f"wrote {p}")
    return 0


def add_parser(subparsers):
    s = subparsers.add_parser(
        "tune-lm", help="tune the LM weight and word score on held-out data",
        description="Run the model once over a dev manifest, then beam-search it for every (LM weight, "
        "word score) pair and print WER/CER; --write stores the best pair in the model directory's "
        "decode.yaml, which transcribe and evaluate then use by default. Tune on dev data, not on the "
        "test set you report.")
    s.add_argument("--model", default=None, help="model directory (or shipped model name)")
    s.add_argument("--data", required=True, help="dev manifest (JSON lines) or Kaldi data dir")
    s.add_argument("--lm", default="default", help="ARPA file, or 'default' (the model directory's lm.arpa)")
    s.add_argument("--lm-weights", type=float, nargs="+", default=list(DEFAULT_WEIGHTS), metavar="W")
    s.add_argument("--word-scores", type=float, nargs="+", default=list(DEFAULT_SCORES), metavar="S")
    s.add_argument("--beam-size", type=int, default=None, help="beam (default: decode.yaml's, else 32)")
    s.add_argument("--device", default="auto")
    s.add_argument("--write", action="store_true", help="write the best pair to MODEL/decode.yaml")
    s.set_defaults(func=cmd_tune_lm)
    return s
