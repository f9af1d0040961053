"""A frame-wise DNN trained with per-frame cross-entropy on forced-alignment labels: the
hybrid-era recipe that CTC replaced, here to show what CTC's blank buys.

    python local/frame_ce.py --align-model exp/blstm --config conf/dnn.yaml \
        --train exp/data/train.jsonl --valid exp/data/dev.jsonl --out exp/dnn_ce [--epochs N]

1. The trained BiLSTM-CTC model (``--align-model``) force-aligns every training utterance
   (``torchaudio.functional.forced_align``: the best CTC path that collapses to exactly
   the transcript).
2. The path becomes one label per output frame: a blank frame takes the label of the token
   it follows (a token "lasts" until the next one starts); leading blanks, before the first
   token, take the first token's label. There is no blank and no silence class, so every
   frame is a letter or the word delimiter.
3. The same DNN encoder as conf/dnn.yaml (same front end, same window, same size) learns
   those labels with cross-entropy.
4. Decoding: argmax per frame, then trim repeats (a run of one label is one token).

Step 2 is where doubled letters die: "three" is aligned as ...r e φ e..., and with the
blank gone the frames read ...r e e e e..., one run of e. Without a blank (or a separate
"second e" class) the labels cannot mark where one e ends and the next begins, so this
model can never write "ee": ``trim_repeats`` cannot output two equal neighbours.

The result is a model directory (config.yaml, tokens.txt, model.pt; weights load with
weights_only=True) plus ce.json saying it is to be decoded with ``trim_repeats``, not CTC.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from pathlib import Path

import numpy as np
import torch

from ctcasr.align import check_alignable
from ctcasr.data import AudioDataset, BucketBatchSampler, collate, prepare_utterances, read_manifest
from ctcasr.metrics import corpus_errors
from ctcasr.model import CTCModel, load_model_dir, save_model_dir
from ctcasr.train import load_train_config

log = logging.getLogger("frame_ce")


# ----------------------------------------------------------------------------- labels and decoding
def frame_labels(path, blank: int = 0) -> np.ndarray:
    """A CTC path (one label per frame, blanks included) -> one token per frame, no blank:
    blank frames take the token before them; leading blanks take the first token."""
    path = np.asarray(path)
    out = path.copy()
    tokens = np.flatnonzero(path != blank)
    if len(tokens) == 0:
        raise ValueError("path holds no token")
    out[: tokens[0]] = path[tokens[0]]
    for t in range(tokens[0] + 1, len(path)):
        if out[t] == blank:
            out[t] = out[t - 1]
    return out


def trim_repeats(labels) -> list:
    """Per-frame labels -> tokens: each run of equal labels is one token. By construction
    no two neighbours of the result are equal."""
    labels = [int(x) for x in labels]
    return [x for i, x in enumerate(labels) if i == 0 or x != labels[i - 1]]


def decode_frames(log_probs, lengths, blank: int = 0) -> list:
    """``log_probs [B, T, V]`` of a CE model -> token ids per utterance: per-frame argmax
    (the blank output is never a target, and is masked so it can never win), trim repeats."""
    lp = torch.as_tensor(log_probs).clone()
    lp[..., blank] = -math.inf
    best = lp.argmax(-1).cpu().numpy()
    return [trim_repeats(best[b, : int(n)]) for b, n in enumerate(lengths)]


@torch.no_grad()
def transcribe(model, tokenizer, items, batch_size: int = 32) -> list:
    """Greedy frame-wise transcripts of ``items`` [(Utterance, ids)], in order."""
    model.eval()
    ds = AudioDataset(items, model.frontend.sample_rate)
    out = []
    for i in range(0, len(items), batch_size):
        batch = collate([ds[j] for j in range(i, min(i + batch_size, len(items)))])
        lp, olen = model(batch["waveforms"], batch["lengths"])
        out += [tokenizer.decode(ids) for ids in decode_frames(lp, olen, tokenizer.blank_id)]
    return out


# ----------------------------------------------------------------------------- alignment
@torch.no_grad()
def align_items(model, items, blank: int, batch_size: int = 32) -> dict:
    """utt id -> per-frame labels [T] from forced alignment with a CTC ``model``."""
    from torchaudio.functional import forced_align

    model.eval()
    ds = AudioDataset(items, model.frontend.sample_rate)
    order = sorted(range(len(items)), key=lambda i: items[i][0].duration)  # little padding
    labels = {}
    for k in range(0, len(order), batch_size):
        idx = order[k : k + batch_size]
        batch = collate([ds[i] for i in idx])
        lp, olen = model(batch["waveforms"], batch["lengths"])
        for b, i in enumerate(idx):
            u, ids = items[i]
            T = int(olen[b])
            check_alignable(T, ids, model.frame_shift_s)
            path, _ = forced_align(lp[b : b + 1, :T].float(), torch.tensor([ids], dtype=torch.int32), blank=blank)
            labels[u.id] = frame_labels(path[0].numpy(), blank)
    return labels


# ----------------------------------------------------------------------------- training
def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--align-model", required=True, help="trained CTC model dir that aligns the training set")
    p.add_argument("--config", required=True, help="training YAML of the DNN (encoder, front end, train settings)")
    p.add_argument("--train", required=True)
    p.add_argument("--valid", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--epochs", type=int)
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")

    model_cfg, cfg = load_train_config(a.config)
    epochs = a.epochs if a.epochs is not None else cfg["epochs"]
    aug = cfg["augment"] or {}
    if any(aug.get(k) for k in ("speeds", "concat_prob", "edge_trim_prob")):
        raise SystemExit(f"{a.config}: frame labels need length-preserving augmentation "
                         "(no speeds, concat_prob or edge_trim_prob)")
    torch.manual_seed(cfg["seed"])
    if cfg["threads"]:
        torch.set_num_threads(int(cfg["threads"]))

    # 1-2. Align the training set with the CTC model; its tokenizer and CMVN are reused.
    t0 = time.time()
    aligner, tok = load_model_dir(a.align_model)
    if aligner.config["frontend"] != model_cfg["frontend"]:
        raise SystemExit(f"{a.config}: the front end must match {a.align_model}'s (same frames, same labels)")

    fe = aligner.frontend

    def frames(seconds):
        return int(fe.output_lengths(int(seconds * fe.sample_rate)))

    train_items, _ = prepare_utterances(read_manifest(a.train), tok, frames, max_duration=cfg["max_duration"])
    valid_items, _ = prepare_utterances(read_manifest(a.valid), tok, frames, max_duration=cfg["max_duration"])
    labels = align_items(aligner, train_items, tok.blank_id)
    align_s = time.time() - t0
    log.info("aligned %d training utterances in %.0fs", len(labels), align_s)

    # 3. The DNN, with the aligner's CMVN statistics (same front end, so the same features).
    model = CTCModel(model_cfg, len(tok))
    model.frontend.load_state_dict(fe.state_dict())
    ds = AudioDataset(train_items, model.frontend.sample_rate, aug, seed=cfg["seed"])
    sampler = BucketBatchSampler(ds.durations(), cfg["batch_seconds"], shuffle=True, seed=cfg["seed"],
                                 max_batch_size=cfg["max_batch_size"])
    loader_kw = dict(batch_sampler=sampler, collate_fn=collate, num_workers=int(cfg["num_workers"]))
    steps = len(sampler) * epochs
    opt = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    warmup, floor = cfg["warmup_steps"], cfg["min_lr_ratio"]
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min((s + 1) / warmup, floor + (1 - floor) * 0.5 * (
        1 + math.cos(math.pi * min(1.0, max(0, s - warmup) / max(1, steps - warmup))))))

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    refs = [tok.normalize(u.text) for u, _ in valid_items]
    best, t_train = None, time.time()
    for epoch in range(epochs):
        model.train()
        sampler.set_epoch(epoch)
        ds.epoch = epoch
        t_ep, tot_loss, tot_frames = time.time(), 0.0, 0
        for batch in torch.utils.data.DataLoader(ds, **loader_kw):
            if batch is None:
                continue
            lp, olen = model(batch["waveforms"], batch["lengths"])
            # Targets padded with -100 (ignored) past each utterance's frames.
            target = torch.full(lp.shape[:2], -100, dtype=torch.long)
            for b, uid in enumerate(batch["ids"]):
                n = min(int(olen[b]), len(labels[uid]))
                target[b, :n] = torch.from_numpy(labels[uid][:n])
            loss = torch.nn.functional.nll_loss(lp.transpose(1, 2), target, ignore_index=-100, reduction="sum")
            n_frames = int((target >= 0).sum())
            opt.zero_grad(set_to_none=True)
            (loss / n_frames).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["grad_clip"])
            opt.step()
            sched.step()
            tot_loss, tot_frames = tot_loss + loss.item(), tot_frames + n_frames
        w, c = corpus_errors(refs, transcribe(model, tok, valid_items))
        log.info("epoch %d: train CE %.4f per frame, valid CER %.2f%%, WER %.2f%% (%.0fs)", epoch + 1,
                 tot_loss / max(1, tot_frames), 100 * c.rate, 100 * w.rate, time.time() - t_ep)
        if best is None or c.rate < best:
            best = c.rate
            save_model_dir(model, tok, out)
    info = {"decoder": "frame argmax, trim repeats (local/frame_ce.py); not a CTC model", "labels_from": a.align_model,
            "align_seconds": round(align_s, 1), "train_seconds": round(time.time() - t_train, 1), "epochs": epochs,
            "best_valid_cer": best}
    (out / "ce.json").write_text(json.dumps(info, indent=1) + "\n")


if __name__ == "__main__":
    main()
