"""End to end on CPU: synthesize speech, train a tiny model, reload it, transcribe and
evaluate through the command line; and the CLI's error behaviour."""

import csv
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from ctcasr.cli import main

TINY = """
model:
  encoder: {kind: blstm, hidden: 48, layers: 2, dropout: 0.0}
train:
  epochs: 4
  lr: 3.0e-3
  warmup_steps: 2
  batch_seconds: 20
  num_workers: 0
  seed: 3
  average_last: 3
  augment: {noise_prob: 0.3, noise_kinds: [speech, pink], snr_db: [15, 30]}
"""


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "ctcasr", *args], capture_output=True, text=True)


@pytest.fixture(scope="module")
def trained(synth_digits_corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("exp")
    conf = out / "tiny.yaml"
    conf.write_text(TINY)
    m = str(synth_digits_corpus["manifest"])
    assert main(["-q", "prepare", "--config", str(conf), "--train", m, "--out", str(out / "model")]) == 0
    assert main(["-q", "train", "--config", str(conf), "--train", m, "--valid", m, "--out", str(out / "model")]) == 0
    return {"dir": out / "model", "conf": conf, "manifest": m}


def test_training_writes_a_model_dir_log_and_checkpoints(trained):
    d = trained["dir"]
    for f in ["config.yaml", "tokens.txt", "model.pt", "cmvn.json", "train_log.csv", "checkpoints/last.pt",
              "checkpoints/best.pt"]:
        assert (d / f).is_file(), f
    rows = list(csv.DictReader(open(d / "train_log.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]
    losses = [float(r["train_loss"]) for r in rows]
    assert losses[-1] < losses[0]  # it learns something, even in four tiny epochs
    assert all(np.isfinite(float(r["valid_cer"])) for r in rows)
    # weights of the last 3 epochs are kept for averaging, older ones removed
    assert sorted(p.name for p in (d / "checkpoints").glob("epoch*.pt")) == ["epoch2.pt", "epoch3.pt", "epoch4.pt"]


def test_resume_continues_from_last_checkpoint(trained, tmp_path):
    d = tmp_path / "model"
    shutil.copytree(trained["dir"], d)
    args = ["-q", "train", "--config", str(trained["conf"]), "--train", trained["manifest"], "--valid",
            trained["manifest"], "--out", str(d), "--resume"]
    assert main(args + ["--epochs", "5"]) == 0
    rows = list(csv.DictReader(open(d / "train_log.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4, 5]
    assert main(["-q", "train", "--config", str(trained["conf"]), "--train", trained["manifest"], "--valid",
                 trained["manifest"], "--out", str(tmp_path / "fresh"), "--resume"]) == 1  # nothing to resume


def test_an_earlier_run_is_neither_overwritten_nor_mixed_in_without_overwrite(trained, tmp_path, capsys):
    """Training into an --out that holds a finished run used to overwrite it silently and
    to average the old run's epochN.pt weights into the new model."""
    d = tmp_path / "model"
    shutil.copytree(trained["dir"], d)
    before = (d / "model.pt").read_bytes()
    args = ["-q", "train", "--config", str(trained["conf"]), "--train", trained["manifest"], "--valid",
            trained["manifest"], "--out", str(d)]
    capsys.readouterr()
    assert main(args + ["--epochs", "2"]) == 1
    assert "holds an earlier training run" in capsys.readouterr().err
    assert (d / "model.pt").read_bytes() == before
    assert main(args + ["--epochs", "0"]) == 1  # (it emptied the log before)
    assert len(list(csv.DictReader(open(d / "train_log.csv")))) == 4
    assert main(args + ["--epochs", "2", "--overwrite"]) == 0
    assert [int(r["epoch"]) for r in csv.DictReader(open(d / "train_log.csv"))] == [1, 2]
    # the old run's epoch3/epoch4 weights are gone, not averaged in
    assert sorted(p.name for p in (d / "checkpoints").glob("epoch*.pt")) == ["epoch1.pt", "epoch2.pt"]


def _scalars(d, tag):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(d / "tensorboard"))
    acc.Reload()
    return [(e.step, e.value) for e in acc.Scalars(tag)]


def test_tensorboard_events_per_epoch_and_after_resume(trained, tmp_path):
    pytest.importorskip("tensorboard")
    d = trained["dir"]
    cer = _scalars(d, "valid/cer")
    rows = list(csv.DictReader(open(d / "train_log.csv")))
    assert [s for s, _ in cer] == [int(r["step"]) for r in rows]
    assert [round(v, 5) for _, v in cer] == [float(r["valid_cer"]) for r in rows]
    # time blocked on the DataLoader; with num_workers 0 the loading itself happens there
    wait = _scalars(d, "speed/data_wait_s")
    assert [s for s, _ in wait] == [s for s, _ in cer] and all(v > 0 for _, v in wait)
    # A resumed run appends to the same curves (purge_step drops anything a killed run
    # wrote after its checkpoint), so the steps stay strictly increasing.
    r = tmp_path / "model"
    shutil.copytree(d, r)
    assert main(["-q", "train", "--config", str(trained["conf"]), "--train", trained["manifest"], "--valid",
                 trained["manifest"], "--out", str(r), "--resume", "--epochs", "5"]) == 0
    steps = [s for s, _ in _scalars(r, "valid/loss")]
    assert len(steps) == 5 and steps == sorted(set(steps))


def test_reload_transcribe_and_evaluate_through_the_cli(trained, synth_digits_corpus, tmp_path):
    manifest = synth_digits_corpus["manifest"]
    wavs = [str(manifest.parent / json.loads(line)["audio_filepath"]) for line in open(manifest)][:3]
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF....not really")
    r = run_cli("transcribe", *wavs, str(bad), "--model", str(trained["dir"]), "--device", "cpu")
    lines = r.stdout.strip().splitlines()
    assert [ln.split("\t")[0] for ln in lines] == wavs  # the good files are all written
    assert all(len(ln.split("\t")) == 2 for ln in lines)
    assert r.returncode == 1 and "broken.wav" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("evaluate", "--model", str(trained["dir"]), "--data", str(manifest))
    assert r.returncode == 0, r.stderr
    assert "WER" in r.stdout and "CER" in r.stdout and "sub" in r.stdout


def test_beam_decoder_and_api_on_the_trained_model(trained, synth_digits_corpus):
    import ctcasr

    manifest = synth_digits_corpus["manifest"]
    wav = str(manifest.parent / json.loads(open(manifest).readline())["audio_filepath"])
    greedy = ctcasr.Transcriber.load(str(trained["dir"]), device="cpu")
    beam = ctcasr.Transcriber.load(str(trained["dir"]), device="cpu", decoder="beam", beam_size=8)
    g, b = greedy.transcribe(wav), beam.transcribe(wav)
    assert g.duration_s == pytest.approx(sf.info(wav).duration, abs=0.01)
    for t in (g, b):
        for w in t.words:
            assert 0 <= w.start_s < w.end_s <= t.duration_s + 1e-6
    x, sr = sf.read(wav)
    assert greedy.transcribe(x, sample_rate=sr).text == g.text  # arrays work like files


@pytest.mark.parametrize("cmd", [[], ["prepare"], ["train"], ["transcribe"], ["evaluate"], ["synth"], ["lm"],
                                 ["lm", "build"], ["plot-training"], ["align"], ["plot"], ["export"], ["data"],
                                 ["data", "prepare-librispeech"], ["data", "import-kaldi"]])
def test_help_everywhere(cmd):
    r = run_cli(*cmd, "--help")
    assert r.returncode == 0 and "usage:" in r.stdout


def test_errors_are_one_line_without_traceback(tmp_path):
    cases = [
        ["transcribe", str(tmp_path / "missing.wav"), "--model", str(tmp_path)],
        ["transcribe", "x.wav", "--model", "no-such-model"],
        ["evaluate", "--data", str(tmp_path / "none.jsonl")],
        ["train", "--config", str(tmp_path / "c.yaml"), "--train", "a", "--valid", "b", "--out", str(tmp_path)],
        ["transcribe", "x.wav", "--device", "cuda:7"] if not _has_cuda() else ["transcribe", "x.wav", "--device", "tpu"],
    ]
    for args in cases:
        r = run_cli(*args)
        assert r.returncode != 0, args
        err = r.stderr.strip().splitlines()
        assert err and err[-1].startswith("ctcasr: error:"), (args, r.stderr)
        assert "Traceback" not in r.stderr


def _has_cuda():
    import torch

    return torch.cuda.is_available()


def test_silent_and_odd_audio_transcribe_without_error(trained, tmp_path):
    files = []
    for name, x, sr in [("silence.wav", np.zeros(16000), 16000), ("one_sample.wav", np.array([0.1]), 16000),
                        ("stereo44k.wav", np.zeros((44100, 2)), 44100)]:
        sf.write(tmp_path / name, x, sr)
        files.append(str(tmp_path / name))
    r = run_cli("transcribe", *files, "--model", str(trained["dir"]))
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.strip("\n").split("\n")) == 3
