"""Mixed precision settings (train.amp) and the CPU data workers' priority."""

import logging
import os
import subprocess
import sys

import pytest
import torch

from ctcasr import train as T
from ctcasr.errors import ConfigError
from ctcasr.model import CTCModel


@pytest.mark.parametrize("mode", ["auto", "off", False, None])
def test_cpu_stays_float32_unless_bf16_is_asked_for(mode):
    assert T._amp_settings(torch.device("cpu"), mode) == (None, False)


def test_cpu_bf16_when_the_cpu_has_it(monkeypatch, caplog):
    monkeypatch.setattr(T, "_cpu_bf16_supported", lambda: True)
    assert T._amp_settings(torch.device("cpu"), "bf16") == (torch.bfloat16, False)
    monkeypatch.setattr(T, "_cpu_bf16_supported", lambda: False)
    with caplog.at_level(logging.WARNING, logger="ctcasr.train"):
        assert T._amp_settings(torch.device("cpu"), "bf16") == (None, False)
    assert "no native bfloat16" in caplog.text


def test_bad_amp_value_is_a_config_error(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("train: {amp: fp8}\n")
    with pytest.raises(ConfigError, match="amp must be auto, bf16 or off"):
        T.load_train_config(p)
    p.write_text("train: {amp: off, worker_nice: -3}\n")  # YAML 'off' is False: accepted
    with pytest.raises(ConfigError, match="worker_nice"):
        T.load_train_config(p)
    with pytest.raises(ConfigError):
        T._amp_settings(torch.device("cpu"), "fp8")


def _cpu_bf16_lstm_runs() -> bool:
    """Whether oneDNN can run an LSTM in bfloat16 on this CPU at all (natively, or emulated
    on AVX-512). On an AVX2-only CPU (e.g. AMD Zen 3) it cannot: creating the primitive
    fails ("could not create a primitive descriptor for the LSTM forward propagation")."""
    try:
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            torch.nn.LSTM(8, 8, batch_first=True)(torch.zeros(1, 3, 8))
        return True
    except RuntimeError:
        return False


needs_bf16_lstm = pytest.mark.skipif(
    not _cpu_bf16_lstm_runs(), reason="oneDNN has no bfloat16 LSTM on this CPU (AVX2 only); train.amp: bf16 "
                                       "falls back to float32 here (test_cpu_bf16_when_the_cpu_has_it checks the fallback)")


@needs_bf16_lstm
def test_bf16_autocast_runs_the_encoder_in_bf16_and_keeps_outputs_close():
    """What train.amp: bf16 does on CPU: the LSTM and linear layers compute in bfloat16
    (their outputs differ from float32, so it is not a no-op), while the front end and the
    log-softmax stay float32 and the log-probabilities stay close."""
    torch.manual_seed(0)
    model = CTCModel({"encoder": {"kind": "blstm", "hidden": 32, "layers": 2, "dropout": 0.0}}, vocab_size=12).eval()
    wav = torch.randn(2, 16000) * 0.1
    lens = torch.tensor([16000, 11000])
    seen = {}
    model.encoder.register_forward_hook(lambda m, i, o: seen.update(enc=o.dtype) and None)
    model.frontend.register_forward_hook(lambda m, i, o: seen.update(fe=o[0].dtype) and None)
    with torch.no_grad():
        ref, olen = model(wav, lens)
        seen.clear()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            lp, olen2 = model(wav, lens)
    assert seen == {"enc": torch.bfloat16, "fe": torch.float32}
    assert lp.dtype == torch.float32 and torch.equal(olen, olen2)
    diff = (lp - ref).abs()
    assert diff.max() > 0
    assert diff.max() < 0.25, diff.max()


def test_lower_priority_raises_the_niceness():
    code = ("import os; from ctcasr.train import _lower_priority; before = os.nice(0); "
            "_lower_priority(5, 0); print(os.nice(0) - before)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert int(out) == min(5, 19 - os.nice(0))  # niceness is capped at 19


@needs_bf16_lstm
def test_training_in_bf16_on_cpu_with_a_niced_worker(synth_digits_corpus, tmp_path, monkeypatch):
    """A short run with train.amp: bf16 (forced on, so it runs on any CPU whose oneDNN has a
    bf16 LSTM, emulated on plain AVX-512) and a data worker:
    the loss falls, the log and the model directory are written, and the weights stay float32."""
    import csv

    from ctcasr.cli import main
    from ctcasr.model import load_model_dir

    monkeypatch.setattr(T, "_cpu_bf16_supported", lambda: True)
    conf = tmp_path / "bf16.yaml"
    conf.write_text("model:\n  encoder: {kind: blstm, hidden: 32, layers: 2, dropout: 0.0}\n"
                    "train: {epochs: 3, lr: 3.0e-3, warmup_steps: 2, batch_seconds: 20, num_workers: 1,\n"
                    "        amp: bf16, worker_nice: 10, seed: 3}\n")
    m, out = str(synth_digits_corpus["manifest"]), str(tmp_path / "model")
    assert main(["-q", "prepare", "--config", str(conf), "--train", m, "--out", out]) == 0
    assert main(["-q", "train", "--config", str(conf), "--train", m, "--valid", m, "--out", out]) == 0
    rows = list(csv.DictReader(open(tmp_path / "model" / "train_log.csv")))
    losses = [float(r["train_loss"]) for r in rows]
    assert len(losses) == 3 and losses[-1] < losses[0]
    model, _tok = load_model_dir(out)
    assert {p.dtype for p in model.parameters()} == {torch.float32}
