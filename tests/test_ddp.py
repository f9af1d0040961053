"""Distributed training: torchrun with 2 CPU processes (gloo) takes the same optimizer steps
as one process accumulating the same batches, and the sampler shards consistently."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from ctcasr.data import BucketBatchSampler
from ctcasr.errors import ConfigError
from ctcasr.train import load_train_config

ROOT = Path(__file__).resolve().parents[1]

# Dropout 0 and SpecAugment off: their random masks are drawn per rank, so they are the one
# thing that legitimately differs between one process and two.
CONFIG = """
model:
  frontend: {{n_mels: 20, specaug: {{freq_masks: 0, time_masks_per_s: 0}}}}
  encoder: {{kind: blstm, hidden: 16, layers: 2, dropout: 0.0}}
train:
  epochs: 2
  max_steps: 5
  lr: 1.0e-2
  warmup_steps: 1
  batch_seconds: 3.0
  valid_batch_seconds: 4.0
  num_workers: 0
  threads: 1
  seed: 5
  accum_grad: {accum}
"""


def _corpus(d: Path):
    """16 tone 'utterances' of mixed lengths, so bucketed batches differ in size between ranks,
    and one missing file."""
    rng = np.random.default_rng(0)
    words = ["ab", "ba", "abba", "a b", "bab", "b a a"]
    d.mkdir()
    rows = []
    for i in range(16):
        dur = float(rng.choice([0.5, 0.7, 1.0, 1.4]))
        t = np.arange(int(dur * 16000)) / 16000
        x = 0.1 * np.sin(2 * np.pi * (200 + 40 * i) * t) + 0.01 * rng.standard_normal(t.size)
        sf.write(d / f"u{i}.wav", x.astype(np.float32), 16000)
        rows.append({"audio_filepath": f"u{i}.wav", "duration": dur, "text": words[i % len(words)]})
    # An unreadable file too long to share a batch: that rank's batch fails to load as a whole,
    # and it must still join the gradient all-reduce (with nothing to add).
    rows.append({"audio_filepath": "missing.wav", "duration": 2.0, "text": "ab"})
    manifest = d / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return manifest, [r["duration"] for r in rows]


def _train(tmp: Path, manifest: Path, name: str, nproc: int, accum: int):
    conf = tmp / f"{name}.yaml"
    conf.write_text(CONFIG.format(accum=accum))
    out = tmp / name
    args = ["-m", "ctcasr", "-q", "train", "--config", str(conf), "--train", str(manifest), "--valid",
            str(manifest), "--out", str(out), "--device", "cpu", "--no-progress"]
    if nproc > 1:
        # --standalone: a local rendezvous on a free port, so parallel test runs do not collide.
        args = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"] + args
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, *args], check=False, capture_output=True, text=True, cwd=ROOT, env=env, timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    return out, r


def test_two_gloo_processes_match_one_process_with_the_same_global_batch(tmp_path):
    manifest, durations = _corpus(tmp_path / "data")
    # The test is only meaningful if the two ranks hold different numbers of utterances in
    # some step: then a per-rank mean loss would weight utterances unequally.
    r0 = BucketBatchSampler(durations, 3.0, seed=5, rank=0, world_size=2).epoch_batches()
    r1 = BucketBatchSampler(durations, 3.0, seed=5, rank=1, world_size=2).epoch_batches()
    assert len(r0) == len(r1) >= 3 and any(len(a) != len(b) for a, b in zip(r0, r1))

    single, _ = _train(tmp_path, manifest, "single", nproc=1, accum=2)
    ddp, r = _train(tmp_path, manifest, "ddp", nproc=2, accum=1)
    assert r.stdout.count("valid CER") == 1  # one summary for the job, from rank 0

    a = torch.load(single / "checkpoints" / "last.pt", weights_only=True)
    b = torch.load(ddp / "checkpoints" / "last.pt", weights_only=True)
    assert a["step"] == b["step"] == 5 and a["epoch"] == b["epoch"] == 1  # stopped mid-epoch 2
    assert len(b["rng_ranks"]) == 2
    for k, v in a["model"].items():
        torch.testing.assert_close(b["model"][k], v, rtol=1e-5, atol=1e-6, msg=f"{k} differs")
    fresh = _fresh_weights(single)  # and they did train: well beyond the tolerance above
    assert max(float((a["model"][k] - fresh[k]).abs().max()) for k in fresh if not k.startswith("frontend")) > 1e-3

    # Logged figures are global: all-reduced train loss and sharded validation agree with one process.
    rows_a = list(csv.DictReader((single / "train_log.csv").read_text().splitlines()))
    rows_b = list(csv.DictReader((ddp / "train_log.csv").read_text().splitlines()))
    assert [r["step"] for r in rows_a] == [r["step"] for r in rows_b] == ["3", "5"]
    assert rows_a[0]["skipped_batches"] == rows_b[0]["skipped_batches"] == "1"  # the missing file's batch
    for ra, rb in zip(rows_a, rows_b):
        for k in ("train_loss", "valid_loss", "valid_cer", "valid_wer", "train_audio_hours"):
            assert float(rb[k]) == pytest.approx(float(ra[k]), rel=1e-4, abs=1e-5), k
    # Only rank 0 wrote: the same set of files, a complete model dir.
    def files(d):
        # TensorBoard names its event file by host, pid and time: compare the count.
        return sorted("tensorboard/<events>" if p.name.startswith("events.out.tfevents.") else
                      p.relative_to(d).as_posix() for p in d.rglob("*"))

    assert files(ddp) == files(single)
    for f in ("config.yaml", "tokens.txt", "model.pt", "cmvn.json"):
        assert (ddp / f).is_file()
    assert json.loads((ddp / "cmvn.json").read_text()) == json.loads((single / "cmvn.json").read_text())


def _fresh_weights(out: Path):
    """The initial weights of a run (same seed): CTCModel built the way train() builds it."""
    from ctcasr.model import CTCModel
    from ctcasr.tokenizer import Tokenizer

    model_cfg, cfg = load_train_config(out.parent / "single.yaml")
    tok = Tokenizer.load(out / "tokens.txt", **model_cfg["tokenizer"])
    with torch.random.fork_rng():
        torch.manual_seed(cfg["seed"])
        return CTCModel(model_cfg, len(tok)).state_dict()


def test_sampler_shards_training_in_whole_steps_and_validation_completely():
    durs = np.random.default_rng(1).uniform(0.5, 5, size=101).tolist()
    full = BucketBatchSampler(durs, 12, seed=2).epoch_batches()
    for world, per_step in [(2, 1), (2, 3), (3, 2)]:
        ranks = [BucketBatchSampler(durs, 12, seed=2, rank=r, world_size=world, batches_per_step=per_step)
                 for r in range(world)]
        lens = {len(s) for s in ranks}
        assert len(lens) == 1 and lens.pop() == len(full) // (world * per_step) * per_step
        # rank r's i-th batch is batch i*world + r of the one epoch order
        for r, s in enumerate(ranks):
            assert s.epoch_batches() == full[r :: world][: len(s)]
        valid = [BucketBatchSampler(durs, 12, shuffle=False, rank=r, world_size=world, drop_last=False)
                 for r in range(world)]
        seen = sorted(i for s in valid for b in s for i in b)
        assert seen == list(range(len(durs)))


@pytest.mark.parametrize("key,value", [("accum_grad", 0), ("accum_grad", 1.5), ("max_steps", -1)])
def test_bad_step_settings_are_config_errors(tmp_path, key, value):
    conf = tmp_path / "c.yaml"
    conf.write_text(f"train: {{{key}: {value}}}\n")
    with pytest.raises(ConfigError, match=key):
        load_train_config(conf)
