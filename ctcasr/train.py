"""The training loop, in one file: data -> CTCModel -> CTC loss -> AdamW, with validation,
checkpoints, resume, AMP on CUDA and a CSV log; DistributedDataParallel under torchrun.

Several processes: ``torchrun --nproc_per_node=N -m ctcasr train ...`` (add ``--nnodes`` and
``--rdzv-*`` for several machines). Each rank takes its own length-bucketed batches from the
one shuffled epoch order, so ``batch_seconds`` is per rank (per GPU) and one optimizer step
sees ``world_size * accum_grad`` batches; a single process with ``accum_grad: N`` takes the
same steps as N ranks. Backend nccl on CUDA (device cuda:LOCAL_RANK), gloo on CPU. Only
rank 0 writes files and logs; validation runs sharded and its sums are all-reduced. One
process is the same loop with world size 1 and no process group.

Output directory layout (``--out DIR``):
  DIR/config.yaml, DIR/tokens.txt, DIR/model.pt   the best model so far (a model dir:
                                                  ``ctcasr transcribe --model DIR`` works)
  DIR/cmvn.json                                   front-end statistics (from ``prepare``)
  DIR/checkpoints/last.pt                         full training state, for ``--resume`` (end of
                                                  an epoch, or mid-epoch with checkpoint_every_steps)
  DIR/checkpoints/best.pt                         the same state at the best epoch
  DIR/checkpoints/epochN.pt                       weights of the last ``average_last`` epochs
  DIR/train_log.csv                               one row per epoch
  DIR/tensorboard/                                TensorBoard events (when tensorboard is installed)
"""

from __future__ import annotations

import contextlib
import csv
import functools
import json
import logging
import math
import os
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from .data import AudioDataset, BucketBatchSampler, check_augment_config, collate, prepare_utterances, read_manifest
from .decoding import GreedyDecoder
from .errors import ConfigError, CTCASRError, DataError
from .metrics import corpus_errors
from .frontend import FrontEnd
from .model import DEFAULT_CONFIG, CTCModel, load_config, merge_config, save_model_dir
from .schema import AMP_MODES, check_model_config, check_train_config
from .tokenizer import Tokenizer
from .utils import atomic_open, atomic_torch_save, malloc_tuning, onednn_cache, pick_device, seed_everything

log = logging.getLogger(__name__)

DEFAULT_TRAIN = {
    "epochs": 20,
    "lr": 1.5e-3,
    "weight_decay": 0.01,
    "warmup_steps": 300,
    "min_lr_ratio": 0.02,      # cosine decay to lr * min_lr_ratio
    "batch_seconds": 240.0,    # padded audio seconds per batch
    "max_batch_size": 128,
    "valid_batch_seconds": 600.0,
    "grad_clip": 5.0,
    "seed": 1,
    "num_workers": "auto",     # data worker processes; auto: 1 on CPU, up to 8 on CUDA (see _num_workers)
    "worker_nice": 19,         # CPU training: run the data workers at this lower priority (0 = as is)
    "cache_audio": False,
    "max_duration": 30.0,
    "amp": "auto",             # auto: fp16 autocast + grad scaler on CUDA, off on CPU; bf16: bf16 on CPU too; off
    "threads": 0,              # torch intra-op threads; 0 = all cores
    "cmvn_utterances": 500,
    "augment": {},
    "log_every": 20,
    "average_last": 0,         # >1: also try the mean of the last N epochs' weights (kept if better)
    "accum_grad": 1,           # batches per rank accumulated into one optimizer step
    "max_steps": 0,            # >0: stop after this many optimizer steps (smoke tests, benchmarks)
    "checkpoint_every_steps": 0,  # >0: also write checkpoints/last.pt every N optimizer steps mid-epoch
    "tensorboard": True,       # write DIR/tensorboard/ events when the tensorboard package is installed
}


def load_train_config(path) -> tuple:
    """Read a training YAML: ``{model: {...}, train: {...}}`` -> (model_cfg, train_cfg)."""
    raw = load_config(path) if path else {}
    unknown = set(raw) - {"model", "train"}
    if unknown:
        raise ConfigError(f"{path}: unknown top-level key(s) {', '.join(sorted(unknown))}; expected model and train")
    model_raw = {k: v for k, v in (raw.get("model") or {}).items() if k != "format_version"}
    model_cfg = merge_config(DEFAULT_CONFIG, model_raw, f"{path}: model")
    train_cfg = {**DEFAULT_TRAIN}
    for k, v in (raw.get("train") or {}).items():
        if k not in DEFAULT_TRAIN:
            raise ConfigError(f"{path}: train: unknown key {k!r} (known: {', '.join(sorted(DEFAULT_TRAIN))})")
        train_cfg[k] = v
    check_model_config(model_cfg, f"{path}: model")
    check_train_config(train_cfg, f"{path}: train")
    check_augment_config(train_cfg["augment"] or {})
    return model_cfg, train_cfg


# ------------------------------------------------------------------------- preparation
def build_tokenizer(model_cfg: dict, utts) -> Tokenizer:
    return Tokenizer.build((u.text for u in utts), **model_cfg["tokenizer"])


def training_tokenizer(model_cfg: dict, train_cfg: dict, utts, manifest="training data", log_skips: bool = True) -> Tokenizer:
    """The tokens of the transcripts training will use. Why not of every transcript: a
    character seen only in utterances training skips (too long, transcript longer than the
    audio allows) would be an output the model never learns to emit."""
    tok = build_tokenizer(model_cfg, utts)
    # (a front end alone: building a model would draw its initial weights from torch's RNG)
    frames = _frames_fn(FrontEnd(**model_cfg["frontend"]), train_cfg["augment"])
    kept, skipped = prepare_utterances(utts, tok, frames, max_duration=train_cfg["max_duration"], log_skips=log_skips)
    if not kept:
        raise DataError(f"{manifest}: every utterance was skipped ({dict(skipped)})")
    kept_tok = build_tokenizer(model_cfg, [u for u, _ in kept])
    if len(kept_tok) == len(tok):
        return tok
    log.info("left out of the tokens, only in skipped utterances: %s",
             " ".join(map(repr, sorted(set(tok.tokens) - set(kept_tok.tokens)))))
    return kept_tok


@torch.no_grad()
def compute_cmvn(model: CTCModel, utts, max_utts: int = 500, seed: int = 0) -> dict:
    """Global mean/std of the log-mel features over (a sample of) the training audio."""
    rng = random.Random(seed)
    sample = list(utts)
    rng.shuffle(sample)
    fe = model.frontend
    # Statistics of the features the model sees at inference: in training mode the front
    # end would apply VTLP, a random warp drawn from torch's unseeded global generator,
    # which made the statistics (std up to 3 % off) and everything trained on them differ
    # from run to run.
    was_training = fe.training
    fe.eval()
    try:
        return _cmvn_stats(fe, sample, max_utts)
    finally:
        fe.train(was_training)


def _cmvn_stats(fe, sample, max_utts: int) -> dict:
    from .data import load_utterance_audio
    from .errors import AudioError

    total = torch.zeros(fe.n_mels, dtype=torch.float64)
    total_sq = torch.zeros_like(total)
    n = 0
    used = 0
    bad: list = []
    for u in sample:
        if used >= max_utts:
            break
        try:
            x = load_utterance_audio(u, fe.sample_rate)  # (a segment: its own audio, as training reads it)
        except AudioError as e:
            bad.append(str(e))  # training skips (and counts) these too
            continue
        if not len(x):
            bad.append(f"{u.id}: segment past the end of {u.audio_filepath}")
            continue
        feats, _ = fe.fbank(torch.from_numpy(x)[None], torch.tensor([len(x)]))
        f = feats[0].double()
        total += f.sum(0)
        total_sq += (f * f).sum(0)
        n += f.shape[0]
        used += 1
    if bad:
        log.warning("CMVN statistics: %d unreadable utterance(s) skipped (first: %s)", len(bad), bad[0])
    if n == 0:
        raise DataError("no readable training audio to compute CMVN statistics from")
    mean = total / n
    std = (total_sq / n - mean * mean).clamp(min=1e-6).sqrt()
    return {"mean": mean.tolist(), "std": std.tolist(), "frames": n, "utterances": used}


def _frames_fn(frontend, augment):
    """seconds -> the model's output frames, at the fastest speed perturbation in
    ``augment`` (which shortens the audio): what decides whether a transcript fits."""
    speed = max((augment or {}).get("speeds") or [1.0])
    sr = frontend.sample_rate
    return lambda seconds: int(frontend.output_lengths(int(seconds / speed * sr)))


def prepare(config_path, train_manifest, out_dir) -> dict:
    """Stage 1 of a recipe: tokens.txt and cmvn.json from the training data."""
    model_cfg, train_cfg = load_train_config(config_path)
    utts = read_manifest(train_manifest)
    if not utts:
        raise DataError(f"{train_manifest}: no utterances")
    tok = training_tokenizer(model_cfg, train_cfg, utts, train_manifest)
    model = CTCModel(model_cfg, len(tok))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tok.save(out / "tokens.txt")
    stats = compute_cmvn(model, utts, train_cfg["cmvn_utterances"], train_cfg["seed"])
    with atomic_open(out / "cmvn.json") as f:
        json.dump(stats, f)
    return {"tokens": len(tok), "cmvn_frames": stats["frames"], "cmvn_utterances": stats["utterances"],
            "utterances": len(utts)}


# ------------------------------------------------------------------------- helpers
def _lr_lambda(warmup: int, total: int, min_ratio: float):
    def f(step):
        if step < warmup:
            return (step + 1) / max(1, warmup)
        p = min(1.0, (step - warmup) / max(1, total - warmup))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * p))

    return f


def _lower_priority(increment: int, _worker_id: int = 0) -> None:
    """DataLoader worker_init_fn for CPU training. The workers (loading, augmentation) share
    the cores with the step's intra-op threads, and a worker that preempts one of those
    threads stalls the whole parallel region at its barrier, so on a saturated CPU it costs
    the step more than its own CPU time. Niced, it runs when the step leaves a core idle
    (Python between ops, the optimizer, the CTC loss); when it falls behind, the step waits
    for its batch and it gets the cores, so the balance keeps itself."""
    try:
        os.nice(increment)
    except OSError:  # not permitted here: keep the priority
        pass


def _num_workers(setting, dev: torch.device) -> int:
    """``train.num_workers``: a count, or ``auto``. On CPU, auto is one worker: the step's
    intra-op threads want every core, and one niced worker keeps up with a 2-core step.
    On CUDA the step no longer needs the CPU, and loading, augmenting (speed perturbation,
    reverberation, noise) and collating are what the GPU waits for: auto is one worker per
    spare core, at most 8, shared among the processes of this machine under torchrun."""
    if setting != "auto":
        return int(setting)
    if dev.type != "cuda":
        return 1
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 2
    per_process = cores // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    return max(1, min(8, per_process - 1))


def loader_kwargs(cfg: dict, dev: torch.device) -> dict:
    """DataLoader settings of training (also used by benchmarks/train_throughput.py, so that
    it measures the step as training runs it): ``num_workers`` worker processes that load,
    augment and collate, four batches ahead, niced on CPU (``_lower_priority``).

    The workers persist for the whole run. Started afresh each epoch (as until 2026-11-26),
    each start forks the training process, which write-protects every page of its heap
    (gigabytes: activations, gradients, the allocator's free blocks) for the child's whole
    life; each first write to a page then faults and copies it. On the digits recipe that
    was ~30,000 page faults a second, and since the heap grows over a run, epochs slowed
    from 16 to 20-23 s by the end. Persistent workers fork once, at the start, from a small
    heap. The epoch reaches them with each batch (``data.EpochBatch``), their base seed
    comes from the loader's own generator (``seed``), not from the global RNG, so creating
    or resuming an iterator never shifts the model's dropout/SpecAugment stream."""
    nw = _num_workers(cfg["num_workers"], dev)
    # Pinned batches copy to the GPU asynchronously (the .to(dev, non_blocking=True) of the step).
    kw = dict(collate_fn=collate, num_workers=nw, persistent_workers=nw > 0, pin_memory=dev.type == "cuda",
              generator=torch.Generator().manual_seed(int(cfg["seed"])))
    if nw:
        kw["prefetch_factor"] = 4
        if dev.type == "cpu" and cfg["worker_nice"]:
            kw["worker_init_fn"] = functools.partial(_lower_priority, int(cfg["worker_nice"]))
    return kw


def _cpu_bf16_supported() -> bool:
    """Native bfloat16 arithmetic (AVX512-BF16 or AMX). oneDNN also runs bf16 on plain
    AVX-512 by emulation (``_is_mkldnn_bf16_supported`` says yes there), which is not
    what makes it worth using."""
    cpu = getattr(torch, "cpu", None)
    try:
        return bool(cpu._is_avx512_bf16_supported() or cpu._is_amx_tile_supported())
    except AttributeError:  # private helpers: a future torch may move them
        return False


def _amp_settings(device, mode):
    """(autocast dtype or None, needs a grad scaler) for ``train.amp``.

    On CPU autocast stays off unless asked for (``amp: bf16``): bfloat16 LSTM/linear kernels
    (oneDNN) pay off only on CPUs with native bf16 arithmetic (AVX512-BF16, AMX), where the
    digits BiLSTM's forward + backward runs ~1.4x faster (benchmarks/train_throughput.py
    --amp bf16); elsewhere oneDNN would emulate it, so we fall back to fp32 with a warning.
    On CUDA (auto, on, bf16) it is float16 with a grad scaler (why: below).
    The front end and the CTC loss stay float32 either way (they disable autocast / cast up)."""
    if mode not in AMP_MODES:
        raise ConfigError(f"train.amp: {mode!r} is not one of auto, bf16, off")
    if mode in (False, None, "off", "none"):
        return None, False
    if device.type != "cuda":
        if mode != "bf16":
            return None, False
        if device.type == "cpu" and _cpu_bf16_supported():
            return torch.bfloat16, False
        log.warning("train.amp: bf16 asked for, but this %s has no native bfloat16 support; training in float32",
                    device.type)
        return None, False
    # CUDA: float16 autocast with a gradient scaler, also on GPUs with bfloat16. PyTorch's
    # autocast runs cuDNN RNNs in float16 whatever dtype it is given (its _cudnn_rnn wrapper,
    # aten/src/ATen/cudnn/AutocastRNN.cpp, casts input, state and weights to half; seen on an
    # H200: the encoder's output under bf16 autocast was float16). bf16 autocast would thus run
    # the LSTMs, nearly all of the model's work, in float16 without the loss scaling that
    # float16 gradients need. (On CPU, oneDNN's LSTM does honour bfloat16.)
    if mode == "bf16":
        log.info("train.amp: bf16 on CUDA: cuDNN LSTMs run in float16 under autocast, so float16 "
                 "with a gradient scaler")
    return torch.float16, True


def _rng_state():
    # Plain lists/tensors only, so the checkpoint loads with weights_only=True.
    np_state = np.random.get_state()
    return {
        "python": list(random.getstate()[1]) + [random.getstate()[2] or 0],
        "numpy": torch.from_numpy(np_state[1].astype(np.int64)),
        "numpy_pos": int(np_state[2]),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def _set_rng_state(s):
    py = s["python"]
    random.setstate((3, tuple(int(v) for v in py[:-1]), None))
    np.random.set_state(("MT19937", s["numpy"].numpy().astype(np.uint32), s["numpy_pos"], 0, 0.0))
    torch.set_rng_state(s["torch"])
    if s.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(s["cuda"])


def make_optimizer(model, cfg: dict, device) -> torch.optim.Optimizer:
    """AdamW as training uses it. Fused (one kernel per parameter instead of about ten ops
    each) where PyTorch has the kernel: 3.0 vs 8.2 ms an optimizer step for the digits
    model on a 2-core CPU; the same update rule."""
    fused = torch.device(device).type in ("cpu", "cuda")
    return torch.optim.AdamW(model.parameters(), lr=float(cfg["lr"]), weight_decay=float(cfg["weight_decay"]),
                             fused=fused or None)


def ctc_loss(log_probs, out_lengths, targets, target_lengths):
    """Summed CTC loss of the batch in float32 (PyTorch's native kernel), blank 0.
    zero_infinity: an utterance with no valid alignment contributes 0 instead of inf."""
    if log_probs.is_cuda:
        # int64 on purpose: with int32 targets and lengths PyTorch runs cuDNN's CTC (its
        # v8 API, for batches whose transcripts are all under 256 tokens), whose loss
        # agrees but whose gradients did not (torch 2.11 + cuDNN 9.19 on an H200: off by
        # up to ~1 in every frame, and non-zero in padded frames); int64 keeps PyTorch's
        # native kernel, checked against a float64 CPU reference in tests/test_cuda.py.
        targets, out_lengths, target_lengths = targets.long(), out_lengths.long(), target_lengths.long()
    return torch.nn.functional.ctc_loss(
        log_probs.float().transpose(0, 1),
        targets,
        out_lengths,
        target_lengths,
        blank=0,
        reduction="sum",
        zero_infinity=True,
    )


@torch.no_grad()
def evaluate_model(model, loader, tokenizer, device, amp_dtype=None):
    """Validation: mean CTC loss per utterance and greedy WER/CER. Under DDP each rank
    decodes its shard and the sums (loss, utterances, edit counts) are all-reduced, so
    every rank returns the figures a single process would compute on the whole set."""
    model.eval()
    dec = GreedyDecoder(tokenizer.decoder_tokens, blank=0, word_delimiter=tokenizer.word_delimiter,
                        input_type="log_probs")
    total_loss, n = 0.0, 0
    refs, hyps = [], []
    for batch in loader:
        if batch is None:
            continue
        wav = batch["waveforms"].to(device)
        lens = batch["lengths"].to(device)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            lp, olen = model(wav, lens)
        total_loss += float(ctc_loss(lp, olen, batch["targets"].to(device), batch["target_lengths"].to(device)))
        n += lp.shape[0]
        lp_np = lp.float().cpu().numpy()
        for hy in dec(lp_np, olen.cpu().numpy()):
            hyps.append(hy[0].text)
        off = 0
        for tl in batch["target_lengths"].tolist():
            refs.append(tokenizer.decode(batch["targets"][off : off + tl].tolist()))
            off += tl
    w, c = corpus_errors(refs, hyps)
    fields = ("substitutions", "deletions", "insertions", "hits", "ref_len")
    sums = _all_reduce_sum([total_loss, n] + [getattr(e, f) for e in (w, c) for f in fields], device)
    total_loss, n = sums[0], int(sums[1])
    w = type(w)(**{f: int(v) for f, v in zip(fields, sums[2:7])})
    c = type(c)(**{f: int(v) for f, v in zip(fields, sums[7:12])})
    return {"loss": total_loss / max(1, n), "wer": w.rate, "cer": c.rate, "utterances": n, "word": w, "char": c}


# ------------------------------------------------------------------------- distributed
def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def _all_reduce_sum(values, device) -> list:
    """Sum a list of numbers over ranks; the identity with one process. float64, so the
    integer counts in it stay exact."""
    if not _distributed():
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def _barrier():
    if _distributed():
        dist.barrier()


def _init_distributed(device: str):
    """(device, rank, world_size, created_group). torchrun sets WORLD_SIZE/RANK/LOCAL_RANK;
    without it (or with one process) there is no process group and the loop runs as is."""
    if _distributed():  # a library caller set the group up itself
        rank, world = dist.get_rank(), dist.get_world_size()
        dev = pick_device(device)
        if dev.type == "cuda" and dev.index is None:
            dev = torch.device("cuda", torch.cuda.current_device())
        return dev, rank, world, False
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return pick_device(device), 0, 1, False
    dev = pick_device(device)
    if dev.type == "cuda":
        if dev.index is None:
            dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(dev)
    elif dev.type != "cpu":
        raise CTCASRError(f"distributed training runs on CUDA (nccl) or CPU (gloo), not {dev.type}; "
                          "pass --device cpu or cuda")
    dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return dev, dist.get_rank(), dist.get_world_size(), True


def _dummy_batch(sample_rate: int) -> dict:
    """One second of silence with a one-token transcript: what a rank whose batch failed to
    load feeds the model (with loss weight 0) so that it still joins the gradient all-reduce."""
    return {"waveforms": torch.zeros(1, sample_rate), "lengths": torch.tensor([sample_rate]),
            "targets": torch.tensor([1]), "target_lengths": torch.tensor([1])}


# ------------------------------------------------------------------------- training
def train(config_path, train_manifest, valid_manifest, out_dir, resume: bool = False,
          device: str = "auto", epochs: int | None = None, progress: bool = True, overwrite: bool = False) -> dict:
    """Train; see the module docstring. Under torchrun every rank calls this and gets the
    same result dict (its figures are all-reduced); only rank 0 writes ``out_dir``.

    ``out_dir`` may hold ``ctcasr prepare``'s files; one that holds an earlier training
    run's model or checkpoints is refused unless ``resume`` (continue it) or ``overwrite``
    (start again: its checkpoints, model and log are deleted first; stale epoch weights
    would otherwise be averaged into the new model)."""
    model_cfg, cfg = load_train_config(config_path)
    if epochs is not None:
        if isinstance(epochs, bool) or int(epochs) != epochs or epochs < 1:
            raise ConfigError(f"epochs must be a whole number >= 1, got {epochs!r}")
        cfg["epochs"] = int(epochs)
    out = Path(out_dir)
    ckpts = out / "checkpoints"
    earlier = [p for p in (out / "model.pt", ckpts / "last.pt") if p.exists()] + sorted(ckpts.glob("*.pt"))[:1]
    if earlier and not resume:
        if not overwrite:
            raise CTCASRError(f"{out} holds an earlier training run ({earlier[0]}); --resume continues it, "
                              "--overwrite starts again and deletes its model, checkpoints and log")
        if int(os.environ.get("RANK", "0")) == 0:
            for p in [*ckpts.glob("*.pt"), out / "model.pt", out / "train_log.csv"]:
                p.unlink(missing_ok=True)
    dev, rank, world, created = _init_distributed(device)
    try:
        return _train(model_cfg, cfg, train_manifest, valid_manifest, Path(out_dir), resume, dev, rank, world,
                      progress)
    finally:
        if created:
            dist.destroy_process_group()


def _train(model_cfg, cfg, train_manifest, valid_manifest, out, resume, dev, rank, world, progress) -> dict:
    is_main = rank == 0
    if not is_main:
        # One voice for the job: rank 0 logs (its figures are global); the others only errors.
        logging.getLogger("ctcasr").setLevel(logging.ERROR)
        progress = False
    ckpt_dir = out / "checkpoints"
    if is_main:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
    if cfg["threads"]:
        torch.set_num_threads(int(cfg["threads"]))
    # Ranks draw different dropout/SpecAugment masks; DDP copies rank 0's initial weights to all.
    seed_everything(int(cfg["seed"]) + rank)

    train_utts = read_manifest(train_manifest)
    valid_utts = read_manifest(valid_manifest)
    if not train_utts:
        raise DataError(f"{train_manifest}: no utterances")
    if not valid_utts:
        raise DataError(f"{valid_manifest}: no utterances")

    # Rank 0 writes tokens.txt and cmvn.json when missing; the others wait, then read them.
    if is_main and not (out / "tokens.txt").is_file():
        # (the skips are logged below, where training filters its utterances)
        training_tokenizer(model_cfg, cfg, train_utts, train_manifest, log_skips=False).save(out / "tokens.txt")
    _barrier()
    tok = Tokenizer.load(out / "tokens.txt", **model_cfg["tokenizer"])
    model = CTCModel(model_cfg, len(tok))
    if is_main and not (out / "cmvn.json").is_file():
        stats = compute_cmvn(model, train_utts, cfg["cmvn_utterances"], cfg["seed"])
        with atomic_open(out / "cmvn.json") as f:
            json.dump(stats, f)
    _barrier()
    stats = json.loads((out / "cmvn.json").read_text())
    model.frontend.set_cmvn(stats["mean"], stats["std"])
    model.to(dev)

    aug = cfg["augment"] or {}
    sr = model.frontend.sample_rate
    train_items, train_skipped = prepare_utterances(
        train_utts, tok, _frames_fn(model.frontend, aug), max_duration=cfg["max_duration"])
    valid_items, valid_skipped = prepare_utterances(valid_utts, tok, _frames_fn(model.frontend, {}),
                                                    max_duration=cfg["max_duration"])
    if not train_items:
        raise DataError(f"{train_manifest}: every utterance was skipped ({dict(train_skipped)})")
    if not valid_items:
        raise DataError(f"{valid_manifest}: every utterance was skipped ({dict(valid_skipped)})")
    log.info("train: %d utterances (%.2f h), %d skipped; valid: %d, %d skipped",
             len(train_items), sum(u.duration for u, _ in train_items) / 3600, sum(train_skipped.values()),
             len(valid_items), sum(valid_skipped.values()))

    accum = int(cfg["accum_grad"])
    join_ids = [tok.tokens.index(tok.word_delimiter)] if tok.word_delimiter in tok.tokens else []
    train_ds = AudioDataset(train_items, sr, aug, seed=cfg["seed"], cache=cfg["cache_audio"], join_ids=join_ids)
    valid_ds = AudioDataset(valid_items, sr, None, cache=cfg["cache_audio"])
    sampler = BucketBatchSampler(train_ds.durations(), cfg["batch_seconds"], shuffle=True, seed=cfg["seed"],
                                 max_batch_size=cfg["max_batch_size"], rank=rank, world_size=world,
                                 batches_per_step=accum)
    valid_sampler = BucketBatchSampler(valid_ds.durations(), cfg["valid_batch_seconds"], shuffle=False,
                                       max_batch_size=cfg["max_batch_size"], rank=rank, world_size=world,
                                       drop_last=False)
    loader_kw = loader_kwargs(cfg, dev)
    valid_loader = torch.utils.data.DataLoader(valid_ds, batch_sampler=valid_sampler, **loader_kw)
    loader = torch.utils.data.DataLoader(train_ds, batch_sampler=sampler, **loader_kwargs(cfg, dev))

    # The same count on every rank (the sampler drops the tail to a multiple of world x accum):
    # each rank runs exactly this many steps, each ending in the gradient all-reduce.
    steps_per_epoch = len(sampler.epoch_batches()) // accum
    if steps_per_epoch == 0:
        raise ConfigError(f"{len(sampler.batches)} training batch(es) per epoch, fewer than world size x accum_grad "
                          f"= {world * accum}; lower train.batch_seconds or accum_grad, or use fewer processes")
    max_steps = int(cfg["max_steps"])
    total_steps = steps_per_epoch * cfg["epochs"]
    if max_steps:
        total_steps = min(total_steps, max_steps)
    opt = make_optimizer(model, cfg, dev)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(cfg["warmup_steps"], total_steps, cfg["min_lr_ratio"]))
    amp_dtype, use_scaler = _amp_settings(dev, cfg["amp"])
    if is_main:
        precision = "float32" if amp_dtype is None else f"{amp_dtype} autocast".replace("torch.", "")
        user_cap = os.environ.get("ONEDNN_PRIMITIVE_CACHE_CAPACITY") or os.environ.get("DNNL_PRIMITIVE_CACHE_CAPACITY")
        log.info("device %s, %d torch thread(s), %d data worker(s), %s%s; %s; %s; %s", dev, torch.get_num_threads(),
                 loader_kw["num_workers"], precision, " with a grad scaler" if use_scaler else "",
                 malloc_tuning() or "default malloc settings",
                 onednn_cache() or f"oneDNN primitive cache: {user_cap or 'default'}",
                 f"OpenMP spin count {os.environ.get('GOMP_SPINCOUNT') or 'default'}")
    scaler = torch.amp.GradScaler("cuda", enabled=use_scaler)

    start_epoch, step, best = 0, 0, None
    resume_pos = 0  # steps (loop iterations) of start_epoch already done, when resuming mid-epoch
    resume_sums = None
    last_path = ckpt_dir / "last.pt"
    if resume:  # every rank loads the same checkpoint
        if not last_path.is_file():
            raise CTCASRError(f"{last_path}: nothing to resume from (train without --resume first)")
        st = _load_checkpoint(last_path)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["optimizer"])
        sched.load_state_dict(st["scheduler"])
        if use_scaler and st.get("scaler"):
            scaler.load_state_dict(st["scaler"])
        step, best = st["step"], st.get("best")
        rng_ranks = st.get("rng_ranks") or []
        if len(rng_ranks) == world:
            _set_rng_state(rng_ranks[rank])
        elif is_main:  # saved with another world size: rank 0 continues its stream, the others reseeded
            _set_rng_state(st["rng"])
        if st.get("epoch_complete", True):  # checkpoints from before step checkpoints are all epoch ends
            start_epoch = st["epoch"] + 1
            log.info("resumed from %s: epoch %d done, step %d", last_path, st["epoch"] + 1, step)
        else:
            start_epoch = st["epoch"]
            resume_pos = _mid_epoch_position(st, world, accum, last_path)
            resume_sums = dict(st["epoch_sums"])
            # The sums saved are global (all-reduced); rank 0 carries them and the others start
            # from zero, so the epoch-end all-reduce gives the uninterrupted run's totals.
            # (bad_steps is counted alike on every rank, so every rank keeps it.)
            if not is_main:
                resume_sums.update(loss=0.0, utterances=0, audio_s=0.0, unreadable=0, dropped=0)
            log.info("resumed from %s: epoch %d, %d of %d steps done, step %d", last_path, st["epoch"] + 1,
                     resume_pos, steps_per_epoch, step)

    ddp_model = model
    if world > 1:
        # broadcast_buffers off: the only buffers are the CMVN statistics and the mel
        # filterbank, identical on every rank and never updated.
        ddp_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[dev.index] if dev.type == "cuda" else None, broadcast_buffers=False)

    log_path = out / "train_log.csv"
    fields = ["epoch", "step", "train_loss", "valid_loss", "valid_cer", "valid_wer", "lr", "epoch_seconds",
              "train_audio_hours", "skipped_batches"]
    if is_main and (not resume or not log_path.is_file()):
        with atomic_open(log_path) as f:
            csv.writer(f).writerow(fields)
    elif is_main:
        # A kill between an epoch's log row and its checkpoint leaves a row for an epoch that
        # is about to be redone; drop it so the log never holds an epoch twice.
        with open(log_path, newline="") as f:
            rows = list(csv.reader(f))
        keep = rows[:1] + [r for r in rows[1:] if r and int(r[0]) <= start_epoch]
        if len(keep) != len(rows):
            with atomic_open(log_path) as f:
                csv.writer(f).writerows(keep)
    ckpt_every = int(cfg["checkpoint_every_steps"])
    # Events at the checkpoint's own step were written before it was saved: keep them.
    tb = _tensorboard_writer(out, step + 1 if resume else None) if is_main and cfg["tensorboard"] else None

    params = list(model.parameters())
    result = {}
    next_iter = None  # the next epoch's batches, asked for before this epoch's validation
    for epoch in range(start_epoch, cfg["epochs"]):
        if max_steps and step >= max_steps:
            break
        ddp_model.train()
        first = resume_pos if epoch == start_epoch else 0
        # Skip the batches a mid-epoch checkpoint had consumed: the rest are exactly the ones
        # the uninterrupted run would see (the order depends only on seed and epoch).
        if next_iter is not None and not first:
            data_iter, next_iter = next_iter, None
        else:
            sampler.set_epoch(epoch, start_batch=first * accum)
            data_iter = iter(loader)
        train_ds.epoch = epoch  # (for num_workers 0, read when a batch is made; workers get it with each batch)
        t0 = time.time()
        tot_loss, tot_utts, audio_s, unreadable, bad_steps = 0.0, 0, 0.0, 0, 0
        scaler_skips = 0
        dropped = 0  # utterances whose audio failed to load, in batches that still ran
        # Seconds the loop spent blocked on the DataLoader: the workers (loading,
        # augmentation) falling behind the step, the usual limit on a GPU.
        wait_s = 0.0
        if first:
            tot_loss, tot_utts, audio_s = resume_sums["loss"], int(resume_sums["utterances"]), resume_sums["audio_s"]
            unreadable, bad_steps = int(resume_sums["unreadable"]), int(resume_sums["bad_steps"])
            dropped = int(resume_sums.get("dropped", 0))  # absent from older checkpoints
            t0 -= resume_sums["seconds"]
            wait_s = float(resume_sums.get("data_wait", 0.0))  # absent from older checkpoints
        bar = _progress(data_iter, progress, f"epoch {epoch + 1}/{cfg['epochs']}")
        batches = iter(bar)
        bar = bar if hasattr(bar, "set_postfix") else None
        for pos in range(first, steps_per_epoch):
            if max_steps and step >= max_steps:
                break
            tw = time.time()
            micro_batches = [next(batches) for _ in range(accum)]
            wait_s += time.time() - tw
            unreadable += sum(b is None for b in micro_batches)  # every utterance of it failed to load
            # Some of its utterances failed (each logged by AudioDataset): counted, not just dropped.
            dropped += sum(b["unreadable"] for b in micro_batches if b is not None)
            n_local = sum(len(b["lengths"]) for b in micro_batches if b is not None)
            n_step = int(_all_reduce_sum([n_local], dev)[0])
            if n_step == 0:
                continue  # nothing loaded on any rank (n_step is global, so all ranks skip alike)
            # Each rank backpropagates its summed CTC loss times world / n_step, n_step being the
            # utterances of the whole step (all ranks, all micro-batches). DDP averages the
            # gradients over ranks (divides by world), so every rank ends up with the gradient of
            # the mean loss over the global batch: exactly what one process computes from the
            # same batches with accum_grad = world size, however the utterances fall between
            # ranks. (A per-rank mean would weight an utterance by 1/its rank's batch size.)
            # The gradients are then identical on every rank, so clipping and the skip decision
            # below are global too. With one process and accum_grad 1 this is the batch mean.
            norm = world / n_step
            opt.zero_grad(set_to_none=True)
            step_loss, step_audio_s = 0.0, 0.0
            for micro, batch in enumerate(micro_batches):
                last = micro == accum - 1
                weight = norm
                if batch is None:
                    if not (world > 1 and last):
                        continue
                    batch, weight = _dummy_batch(sr), 0.0  # still join the all-reduce
                # Only the step's last backward all-reduces; the earlier ones accumulate locally.
                sync = contextlib.nullcontext() if last or world == 1 else ddp_model.no_sync()
                with sync:
                    wav = batch["waveforms"].to(dev, non_blocking=True)
                    lens = batch["lengths"].to(dev)
                    with torch.autocast(dev.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                        lp, olen = ddp_model(wav, lens)
                    loss = ctc_loss(lp, olen, batch["targets"].to(dev), batch["target_lengths"].to(dev))
                    scaler.scale(loss * weight).backward()
                if weight:
                    step_loss += loss.item()
                    step_audio_s += float(batch["lengths"].sum()) / sr  # (CPU copy: no GPU sync)
            scaler.unscale_(opt)
            gnorm = torch.nn.utils.clip_grad_norm_(params, cfg["grad_clip"])
            if not torch.isfinite(gnorm):
                # A non-finite step would poison the weights: skip it. With float16's grad scaler
                # an overflow at a finite loss is routine (the loss scale is probed from high
                # values and lowered by update()); anything else is a bad batch, reported.
                opt.zero_grad(set_to_none=True)
                scaler.update()
                if use_scaler and math.isfinite(step_loss):
                    scaler_skips += 1
                else:
                    bad_steps += 1
                continue
            scaler.step(opt)
            scaler.update()
            sched.step()
            step += 1
            tot_loss, tot_utts, audio_s = tot_loss + step_loss, tot_utts + n_local, audio_s + step_audio_s
            if tb is not None and step % cfg["log_every"] == 0:
                tb.add_scalar("train/loss", step_loss / max(1, n_local), step)
                tb.add_scalar("train/lr", sched.get_last_lr()[0], step)
            if bar is not None and step % cfg["log_every"] == 0:
                bar.set_postfix(loss=f"{tot_loss / max(1, tot_utts):.3f}", lr=f"{sched.get_last_lr()[0]:.2e}")
            # Not after the epoch's last step: the epoch-end checkpoint follows at once.
            if ckpt_every and step % ckpt_every == 0 and pos + 1 < steps_per_epoch:
                g = _all_reduce_sum([tot_loss, tot_utts, audio_s, unreadable, dropped], dev)
                sums = {"loss": g[0], "utterances": int(g[1]), "audio_s": g[2], "unreadable": int(g[3]),
                        "dropped": int(g[4]),
                        "bad_steps": bad_steps, "seconds": time.time() - t0, "data_wait": wait_s}
                rng_ranks = _gather_rng(world)
                if is_main:
                    state = _checkpoint_state(model, opt, sched, scaler, use_scaler, epoch, step, best, rng_ranks,
                                              cfg, model_cfg)
                    state.update(epoch_complete=False, epoch_pos=pos + 1, world_size=world, accum_grad=accum,
                                 epoch_sums=sums)
                    atomic_torch_save(state, last_path)
                    log.info("step %d: checkpoint (epoch %d, %d of %d steps)", step, epoch + 1, pos + 1,
                             steps_per_epoch)
        if bar is not None:
            bar.close()
        epoch_s = time.time() - t0
        if loader.num_workers and epoch + 1 < cfg["epochs"] and not (max_steps and step >= max_steps):
            # The workers start on the next epoch's first batches now, while validation and
            # the checkpoint run. Asked for at the next epoch's start, they kept it waiting
            # for one batch to be loaded and augmented: ~1 s of a 3.5 s epoch on an H200,
            # the same with 8 or 15 workers. The batches and their augmentation depend only
            # on seed, epoch and position, so the run itself does not change.
            sampler.set_epoch(epoch + 1)
            next_iter = iter(loader)
        v = evaluate_model(model, valid_loader, tok, dev, amp_dtype)
        tot_loss, tot_utts, audio_s, unreadable, dropped = _all_reduce_sum(
            [tot_loss, tot_utts, audio_s, unreadable, dropped], dev)
        train_loss = tot_loss / max(1, tot_utts)
        bad_batches = int(unreadable) + bad_steps * world * accum
        log.info("epoch %d: train loss %.4f, valid loss %.4f, CER %.2f%%, WER %.2f%% (%.0fs, %.1f audio-s/s, "
                 "%.1fs of it waiting for data)", epoch + 1, train_loss, v["loss"], 100 * v["cer"], 100 * v["wer"],
                 epoch_s, audio_s / max(epoch_s, 1e-9), wait_s)
        if bad_batches:
            log.warning("epoch %d: %d batch(es) skipped (unreadable audio or non-finite loss)", epoch + 1, bad_batches)
        if scaler_skips:
            log.info("epoch %d: %d step(s) overflowed in float16 and were skipped by the grad scaler "
                     "(loss scale now %g)", epoch + 1, scaler_skips, scaler.get_scale())
        if dropped:
            log.warning("epoch %d: %d utterance(s) skipped: audio unreadable when loaded", epoch + 1, int(dropped))
        key = (v["cer"], v["loss"])
        improved = best is None or key < tuple(best)
        if improved:
            best = list(key)
        rng_ranks = _gather_rng(world)
        if is_main:
            # The log row first, then the checkpoint: a kill in between leaves a row that the
            # resume drops and rewrites, never a finished epoch without its row.
            with open(log_path, "a", newline="") as f:
                csv.writer(f).writerow([epoch + 1, step, f"{train_loss:.5f}", f"{v['loss']:.5f}", f"{v['cer']:.5f}",
                                        f"{v['wer']:.5f}", f"{sched.get_last_lr()[0]:.3e}", f"{epoch_s:.1f}",
                                        f"{audio_s / 3600:.4f}", bad_batches])
            if tb is not None:
                for k, val in (("train/epoch_loss", train_loss), ("valid/loss", v["loss"]), ("valid/cer", v["cer"]),
                               ("valid/wer", v["wer"]), ("speed/audio_s_per_s", audio_s / max(epoch_s, 1e-9)),
                               ("speed/data_wait_s", wait_s)):
                    tb.add_scalar(k, val, step)
                tb.flush()
            _save_epoch(model, tok, out, ckpt_dir, cfg, model_cfg, opt, sched, scaler, use_scaler, epoch, step, best,
                        improved, rng_ranks)
            log.info("step %d: checkpoint (end of epoch %d)", step, epoch + 1)
        result = {"epoch": epoch + 1, "train_loss": train_loss, "valid_loss": v["loss"], "valid_cer": v["cer"],
                  "valid_wer": v["wer"], "best_cer": best[0], "skipped_utterances": sum(train_skipped.values()),
                  "step": step}
    if tb is not None:
        tb.close()
    if int(cfg["average_last"]) > 1 and result:
        _barrier()  # the other ranks read the epoch files rank 0 has just written
        result["averaged"] = _try_average(model, tok, out, ckpt_dir, cfg, valid_loader, dev, amp_dtype, best,
                                          is_main)
    if is_main and not (out / "model.pt").is_file():
        # Resumed a finished run, or zero epochs: make sure a model dir exists.
        save_model_dir(model, tok, out)
    _barrier()  # nobody returns (and tears the group down) while rank 0 is still writing
    return result


def _tensorboard_writer(out, resume_step):
    """A SummaryWriter on ``out/tensorboard`` when the tensorboard package is installed, else
    None (the CSV log is always written). On resume, ``purge_step`` makes TensorBoard drop
    the events a killed run wrote after its checkpoint, so the curves show no doubled steps."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        log.info("tensorboard not installed: no event files (pip install tensorboard); train_log.csv as always")
        return None
    return SummaryWriter(log_dir=str(out / "tensorboard"), purge_step=resume_step)


def _load_checkpoint(path):
    """torch.load with weights_only=True, so a checkpoint holding pickled code is refused,
    never run; any failure (that, truncation) is a CTCASRError naming the file."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001
        msg = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise CTCASRError(f"{path}: cannot load checkpoint ({msg})") from None


def _gather_rng(world) -> list:
    """Every rank's RNG states (a collective under DDP: all ranks must call it)."""
    if world == 1:
        return [_rng_state()]
    rng_ranks = [None] * world
    dist.all_gather_object(rng_ranks, _rng_state())
    return rng_ranks


def _checkpoint_state(model, opt, sched, scaler, use_scaler, epoch, step, best, rng_ranks, cfg, model_cfg) -> dict:
    return {
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "scaler": scaler.state_dict() if use_scaler else {},
        "epoch": epoch,
        "step": step,
        "best": best,
        "rng": rng_ranks[0],
        "rng_ranks": rng_ranks,
        "config": json.dumps({"model": model_cfg, "train": cfg}),
    }


def _mid_epoch_position(st, world, accum, path) -> int:
    """Steps of the checkpoint's epoch to skip in this run. The batches consumed so far are a
    prefix of the one epoch order (rank r had taken batches r, r+W, ...), so a different
    world size x accum_grad can continue only if it divides that prefix evenly."""
    consumed = int(st["epoch_pos"]) * int(st["world_size"]) * int(st["accum_grad"])
    group = world * accum
    if consumed % group:
        raise CTCASRError(f"{path}: a mid-epoch checkpoint after {consumed} batches cannot be continued with "
                          f"world size x accum_grad = {group}; resume with {st['world_size']} process(es) and "
                          f"accum_grad {st['accum_grad']}")
    return consumed // group


def _save_epoch(model, tok, out, ckpt_dir, cfg, model_cfg, opt, sched, scaler, use_scaler, epoch, step, best,
                improved, rng_ranks):
    """Rank 0 at the end of an epoch: model dir (if best), last/best checkpoints, epoch weights."""
    if improved:
        save_model_dir(model, tok, out)
    state = _checkpoint_state(model, opt, sched, scaler, use_scaler, epoch, step, best, rng_ranks, cfg, model_cfg)
    state["epoch_complete"] = True
    atomic_torch_save(state, ckpt_dir / "last.pt")
    if improved:
        atomic_torch_save(state, ckpt_dir / "best.pt")
    n_avg = int(cfg["average_last"])
    if n_avg > 1:
        atomic_torch_save(model.state_dict(), ckpt_dir / f"epoch{epoch + 1}.pt")
        old = ckpt_dir / f"epoch{epoch + 1 - n_avg}.pt"
        if old.is_file():
            old.unlink()


def average_state_dicts(states: list) -> dict:
    """Element-wise mean of floating-point tensors; other entries (counters) from the last."""
    avg = {}
    for k, v in states[-1].items():
        if torch.is_floating_point(v):
            avg[k] = sum(s[k].double() for s in states).div(len(states)).to(v.dtype)
        else:
            avg[k] = v
    return avg


def _try_average(model, tok, out, ckpt_dir, cfg, valid_loader, dev, amp_dtype, best, is_main=True):
    """Average the weights of the last ``average_last`` epochs (as ESPnet and WeNet recipes
    do: late-training weights wander around a minimum, their mean sits nearer its centre)
    and keep the average as the model dir's model.pt only if it validates at least as well
    as the best single epoch. Returns a summary dict. Every rank validates (its shard);
    rank 0 writes."""
    n = int(cfg["average_last"])
    files = sorted(ckpt_dir.glob("epoch*.pt"), key=lambda p: int(p.stem[5:]))[-n:]
    if len(files) < 2:
        return {"used": False, "epochs": [int(p.stem[5:]) for p in files]}
    states = [_load_checkpoint(p) for p in files]
    model.load_state_dict(average_state_dicts(states))
    model.to(dev)
    v = evaluate_model(model, valid_loader, tok, dev, amp_dtype)
    epochs = [int(p.stem[5:]) for p in files]
    used = best is None or (v["cer"], v["loss"]) <= tuple(best)
    log.info("average of epochs %d-%d: valid loss %.4f, CER %.2f%%, WER %.2f%% -> %s", epochs[0], epochs[-1],
             v["loss"], 100 * v["cer"], 100 * v["wer"],
             "used as the model" if used else f"kept the best single epoch (CER {100 * best[0]:.2f}%)")
    if used and is_main:
        save_model_dir(model, tok, out)
    return {"used": used, "epochs": epochs, "valid_loss": v["loss"], "valid_cer": v["cer"], "valid_wer": v["wer"]}


def _progress(it, enabled, desc):
    if not enabled:
        return it
    try:
        from tqdm import tqdm
    except ImportError:
        return it
    return tqdm(it, desc=desc, leave=False, dynamic_ncols=True, mininterval=2.0)


# ------------------------------------------------------------------------- evaluation
def evaluate(model_dir, manifest, device="auto", batch_size: int = 16, decoder: str = "auto", progress=False,
             edge_quiet_s="default", **decoder_options):
    """WER/CER of a model on a manifest, decoding every utterance the way ``transcribe`` does.

    Unlike validation during training nothing is filtered out: a reference with characters
    the model cannot write still counts its errors, and audio that cannot be read counts as
    all words deleted (and is listed in ``failed``), so a figure can never look better by
    dropping hard cases. ``edge_quiet_s``: see ``Transcriber.edge_quiet_s`` ("default": its default).
    """
    from .transcribe import Transcriber

    asr = Transcriber.load(model_dir, device=device, decoder=decoder, **decoder_options)
    if edge_quiet_s != "default":
        asr.edge_quiet_s = edge_quiet_s
    utts = read_manifest(manifest)
    if not utts:
        raise DataError(f"{manifest}: no utterances")
    refs, hyps, failed = [], [], []
    results = asr.transcribe_utterances(utts, batch_size=batch_size, progress=progress)
    for u, res in zip(utts, results):
        refs.append(asr.tokenizer.normalize(u.text))
        if isinstance(res, Exception):
            failed.append((u.id, str(res)))
            hyps.append("")
        else:
            hyps.append(res.text)
    w, c = corpus_errors(refs, hyps)
    # A model without a word delimiter (Chinese) writes no spaces, so its "words" would be
    # whole sentences: WER is then the sentence error rate in disguise. Report it as such
    # (``ser``, also given for every model) and let CER be the metric (as AISHELL results are).
    wrong = sum(r != h for r, h in zip(refs, hyps))
    return {"wer": w.rate if asr.tokenizer.word_delimiter is not None else None, "cer": c.rate, "word": w,
            "char": c, "ser": wrong / len(utts), "sentence_errors": wrong, "utterances": len(utts),
            "word_level": asr.tokenizer.word_delimiter is not None,
            "failed": failed, "refs": refs, "hyps": hyps, "ids": [u.id for u in utts]}
