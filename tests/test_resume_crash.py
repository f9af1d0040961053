"""Crash-safe checkpoints: SIGKILL a training run mid-epoch, resume it, and get the run that
was never interrupted (same per-epoch log figures, same final weights) on CPU."""

import csv
import itertools
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from ctcasr.cli import main
from ctcasr.errors import ConfigError
from ctcasr.train import load_train_config

ROOT = Path(__file__).resolve().parents[1]
EVERY = 2  # checkpoint_every_steps

# Dropout and SpecAugment on (their masks come from the RNG states a resume must restore) and
# waveform augmentation (seeded per utterance and epoch). Small batches: several steps per epoch.
CONFIG = f"""
model:
  frontend: {{n_mels: 20, specaug: {{freq_masks: 1, freq_width: 4, time_masks_per_s: 1.0}}}}
  encoder: {{kind: blstm, hidden: 32, layers: 2, dropout: 0.1}}
train:
  epochs: 4
  lr: 3.0e-3
  warmup_steps: 2
  batch_seconds: 3
  num_workers: 0
  threads: 1
  seed: 7
  checkpoint_every_steps: {EVERY}
  augment: {{noise_prob: 0.5, noise_kinds: [pink], snr_db: [15, 30]}}
"""


def _args(conf, manifest, out):
    return ["-q", "train", "--config", str(conf), "--train", str(manifest), "--valid", str(manifest), "--out",
            str(out), "--device", "cpu", "--no-progress"]


def _rows(out):
    return list(csv.DictReader((out / "train_log.csv").read_text().splitlines()))


def _load(path):
    return torch.load(path, map_location="cpu", weights_only=True)


def _checkpoints_logged(log_file):
    """Global steps of the checkpoints the run has logged as written (mid-epoch and epoch end)."""
    steps = [0]
    for line in log_file.read_text().splitlines():
        m = re.search(r"step (\d+): checkpoint", line)
        if m:
            steps.append(int(m.group(1)))
    return steps


@pytest.mark.parametrize("workers", [0, 1])
def test_sigkill_mid_epoch_then_resume_reproduces_the_uninterrupted_run(synth_digits_corpus, tmp_path, workers):
    """Also with a (persistent) data worker: the epoch must reach it with each batch, and
    starting its iterator must not shift the model's random stream."""
    manifest = synth_digits_corpus["manifest"]
    conf = tmp_path / "c.yaml"
    conf.write_text(CONFIG.replace("num_workers: 0", f"num_workers: {workers}"))

    # A: uninterrupted.
    a = tmp_path / "a"
    assert main(["-q", "prepare", "--config", str(conf), "--train", str(manifest), "--out", str(a)]) == 0
    assert main(_args(conf, manifest, a)) == 0
    rows_a = _rows(a)
    assert [int(r["epoch"]) for r in rows_a] == [1, 2, 3, 4]
    steps_per_epoch = int(rows_a[0]["step"])
    assert steps_per_epoch >= 2 * EVERY + 1, "the test needs step checkpoints strictly inside an epoch"

    # B: the same run in a subprocess (INFO log to a file), killed once it has logged a step
    # checkpoint in epoch 2. Polling the log, not last.pt, also tells which checkpoints were
    # completely written before the kill.
    b = tmp_path / "b"
    assert main(["-q", "prepare", "--config", str(conf), "--train", str(manifest), "--out", str(b)]) == 0
    log_file = tmp_path / "b.log"
    args = _args(conf, manifest, b)[1:]  # not -q
    with open(log_file, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "ctcasr", *args], cwd=ROOT, stdout=subprocess.DEVNULL,
                                stderr=err, env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.monotonic() + 120
    try:
        while not any(s > steps_per_epoch for s in _checkpoints_logged(log_file)):
            assert time.monotonic() < deadline, "run B never wrote a step checkpoint in epoch 2"
            assert proc.poll() is None, f"run B ended before it was killed: {log_file.read_text()}"
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL

    # What survived: last.pt loads, and it is the newest checkpoint logged or (if the kill fell
    # between a save and its log line) the one after it. Checkpoints come every EVERY steps
    # and at each epoch end, so at most one interval of work (plus a validation) was lost,
    # wherever the kill landed, epoch boundaries included.
    steps = _checkpoints_logged(log_file)
    assert all(0 < t - s <= EVERY for s, t in itertools.pairwise(steps)), steps
    logged = steps[-1]
    st = torch.load(b / "checkpoints" / "last.pt", map_location="cpu", weights_only=True)
    assert logged <= st["step"] <= logged + EVERY
    if st["epoch_complete"]:
        assert st["step"] == (st["epoch"] + 1) * steps_per_epoch
        done_epochs = st["epoch"] + 1
    else:
        assert st["step"] % EVERY == 0 and st["step"] == st["epoch"] * steps_per_epoch + st["epoch_pos"]
        assert 0 < st["epoch_pos"] < steps_per_epoch
        done_epochs = st["epoch"]
    assert done_epochs >= 1 and len(_rows(b)) in (done_epochs, done_epochs + 1)

    # Resume to the end: the same log figures and weights as A.
    assert main(_args(conf, manifest, b) + ["--resume"]) == 0
    rows_b = _rows(b)
    assert [int(r["epoch"]) for r in rows_b] == [1, 2, 3, 4]
    for ra, rb in zip(rows_a, rows_b):
        assert ra["step"] == rb["step"]
        for k in ("train_loss", "valid_loss", "valid_cer", "valid_wer", "lr", "train_audio_hours",
                  "skipped_batches"):
            assert float(rb[k]) == pytest.approx(float(ra[k]), rel=1e-5, abs=1e-6), (ra["epoch"], k)
    wa, wb = _load(a / "checkpoints" / "last.pt"), _load(b / "checkpoints" / "last.pt")
    assert wa["step"] == wb["step"] == 4 * steps_per_epoch and wb["epoch_complete"]
    for k, v in wa["model"].items():
        torch.testing.assert_close(wb["model"][k], v, rtol=1e-5, atol=1e-6, msg=f"{k} differs")


@pytest.mark.parametrize("value", [-1, 1.5, True])
def test_bad_checkpoint_every_steps_is_a_config_error(tmp_path, value):
    conf = tmp_path / "c.yaml"
    conf.write_text(f"train: {{checkpoint_every_steps: {str(value).lower()}}}\n")
    with pytest.raises(ConfigError, match="checkpoint_every_steps"):
        load_train_config(conf)


def test_data_workers_change_nothing_but_speed(synth_digits_corpus, tmp_path):
    """The same run with the batches made in the training process (num_workers 0) and by two
    worker processes, which start on each next epoch's batches before the validation (the
    batch order and augmentation depend only on seed, epoch and position): the same log."""
    manifest = synth_digits_corpus["manifest"]
    rows = {}
    for workers in (0, 2):
        conf = tmp_path / f"c{workers}.yaml"
        conf.write_text(CONFIG.replace("num_workers: 0", f"num_workers: {workers}"))
        out = tmp_path / f"w{workers}"
        assert main(["-q", "prepare", "--config", str(conf), "--train", str(manifest), "--out", str(out)]) == 0
        assert main(_args(conf, manifest, out)) == 0
        rows[workers] = [{k: r[k] for k in ("epoch", "step", "train_loss", "valid_loss", "valid_cer")}
                         for r in _rows(out)]
    assert len(rows[0]) == 4 and rows[0] == rows[2]
