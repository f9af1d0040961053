"""Greedy test WER of every model of the comparison -> a Markdown table, printed and (with
--readme) written between the result markers of the recipe's README.

    python local/score.py --exp exp --test TEST.jsonl --models dnn rnn lstm blstm dnn_ce [--readme README.md]

CTC models go through ``ctcasr.train.evaluate`` (the ``ctcasr evaluate`` path, greedy);
the cross-entropy model (a dir with ce.json) through ``frame_ce.transcribe`` (argmax, trim
repeats). No LM for either: the models are compared as acoustic models.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from frame_ce import transcribe  # noqa: E402

from ctcasr.data import prepare_utterances, read_manifest  # noqa: E402
from ctcasr.metrics import corpus_errors  # noqa: E402
from ctcasr.model import load_model_dir  # noqa: E402
from ctcasr.train import evaluate  # noqa: E402

BEGIN, END = "<!-- results: written by local/score.py -->", "<!-- /results -->"
DESCRIPTION = {"dnn": "CTC, frame-wise DNN (+-4 frames)", "rnn": "CTC, Elman RNN (uni)", "lstm": "CTC, LSTM (uni)",
               "blstm": "CTC, BiLSTM", "dnn_ce": "frame CE, same DNN (BiLSTM alignment)"}


def score(model_dir: Path, test: str):
    """(refs, hyps, parameters) of one model on the test manifest."""
    model, tok = load_model_dir(model_dir)
    n_params = model.num_parameters()
    if (model_dir / "ce.json").is_file():
        utts = read_manifest(test)
        items, _ = prepare_utterances(utts, tok, lambda s: 10**9, max_duration=1e9, min_duration=0.0)
        if len(items) != len(utts):  # every utterance must count, as in evaluate()
            raise SystemExit(f"{test}: {len(utts) - len(items)} utterance(s) the CE model cannot score")
        return [tok.normalize(u.text) for u, _ in items], transcribe(model, tok, items), n_params
    r = evaluate(model_dir, test, device="cpu", decoder="greedy")
    return r["refs"], r["hyps"], n_params


def word_count(texts, word):
    return sum(t.split().count(word) for t in texts)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--exp", required=True)
    p.add_argument("--test", required=True)
    p.add_argument("--models", nargs="+", required=True)
    p.add_argument("--readme")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (0: all cores)")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    exp = Path(a.exp)
    rows, hyps_of, refs = [], {}, None
    for m in a.models:
        refs, hyps, n_params = score(exp / m, a.test)
        hyps_of[m] = hyps
        w, c = corpus_errors(refs, hyps)
        secs = float((exp / m / "train_seconds").read_text()) if (exp / m / "train_seconds").is_file() else float("nan")
        rows.append(f"| {m} | {DESCRIPTION.get(m, '')} | {n_params / 1e6:.2f} M | {secs:.0f} s | {100 * w.rate:.1f} % "
                    f"| {100 * c.rate:.1f} % | {word_count(hyps, 'three')} / {word_count(hyps, 'thre')} |")
    table = ["| model | training | parameters | training time | test WER | test CER | \"three\" / \"thre\" written |",
             "|---|---|---|---|---|---|---|"] + rows
    n_utts, n_three = len(refs), word_count(refs, "three")
    lines = table + ["", f"Test set: {n_utts} utterances, {n_three} of its words are \"three\". Greedy decoding, no LM."]
    if "dnn_ce" in hyps_of:
        show = [m for m in ("blstm", "dnn", "dnn_ce") if m in hyps_of]
        ex = [i for i, r in enumerate(refs) if "three" in r.split()][:4]
        lines += ["", "Utterances with \"three\" (first four of the test set):", "", "```"]
        for i in ex:
            lines.append(f"REF     {refs[i]}")
            lines += [f"{m:<7} {hyps_of[m][i]}" for m in show]
            lines.append("")
        lines[-1] = "```"
    text = "\n".join(lines)
    print(text)
    summary = {"models": a.models, "table": table, "utterances": n_utts}
    (exp / "results.json").write_text(json.dumps(summary, indent=1) + "\n")
    if a.readme:
        readme = Path(a.readme)
        old = readme.read_text(encoding="utf-8")
        new, n = re.subn(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: f"{BEGIN}\n{text}\n{END}", old, flags=re.S)
        if n != 1:
            raise SystemExit(f"{readme}: no {BEGIN} ... {END} block to write the table into")
        readme.write_text(new, encoding="utf-8")


if __name__ == "__main__":
    main()
