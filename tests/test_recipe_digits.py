"""The digits recipe's shell plumbing, stages 0-3, at toy size: synthesis with every voice
family (incl. the respelled foreign voices and the MBROLA/Pico/RHVoice speakers), prepare, train,
LM, scoring. The figures of
the full-size run are in recipes/digits/README.md; this only checks that run.sh works."""

import json
import os
import subprocess
import sys
from pathlib import Path

from synth_fixtures import require_engine

from ctcasr.synth import Voice
from ctcasr.train import load_train_config

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "digits"

TINY = """
model:
  frontend: {stack: 3, utterance_cmn: true}
  encoder: {kind: blstm, hidden: 32, layers: 1, dropout: 0.0}
train:
  epochs: 2
  batch_seconds: 40
  num_workers: 0
  average_last: 2
  augment: {speeds: [0.9, 1.0], noise_prob: 0.5, noise_kinds: [speech, pink], reverb_prob: 0.2}
"""


def test_shipped_recipe_config_is_valid():
    model_cfg, train_cfg = load_train_config(RECIPE / "conf" / "blstm.yaml")
    assert model_cfg["encoder"]["kind"] == "blstm" and train_cfg["epochs"] > 0
    respell = json.loads((RECIPE / "conf" / "respell.json").read_text())
    assert respell and all(v.startswith("festival:") and t for v, t in respell.items())


def test_digits_recipe_stages_0_to_3_at_toy_size(tmp_path):
    for engine in ("espeak", "flite", "festival", "mbrola", "pico", "rhvoice"):
        require_engine(engine)
    conf = tmp_path / "tiny.yaml"
    conf.write_text(TINY)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    r = subprocess.run(["bash", str(RECIPE / "run.sh"), "--n-train", "150", "--n-dev", "20", "--n-test", "24",
                        "--data", str(tmp_path / "data"), "--exp", str(tmp_path / "exp"), "--config", str(conf)],
                       capture_output=True, text=True, env=env, timeout=1200)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    for stage in range(4):
        assert f"== stage {stage}" in r.stdout
    assert "of which KED + AWB voices:" in r.stdout and "of which held-out espeak-ng variants:" in r.stdout
    assert "-- test_c: seven more recorded speakers" in r.stdout
    for f in ("model.pt", "tokens.txt", "config.yaml", "lm.arpa", "test_greedy.txt", "test_beam_lm.txt",
              "test_c_beam_lm.txt"):
        assert (tmp_path / "exp" / f).is_file(), f
    assert (tmp_path / "exp" / "test_beam_lm.txt").read_text().startswith("WER ")
    assert "non-speech clips, model alone (silence gate off): 46 clips" in r.stdout
    voices = {json.loads(line)["voice"] for line in open(tmp_path / "data" / "train.jsonl")}
    assert any(v.startswith("espeak:") for v in voices)
    assert any(v in json.loads((RECIPE / "conf" / "respell.json").read_text()) for v in voices)
    assert "festival:msu_ru_nsh_clunits" in voices  # festival reads the Cyrillic respellings
    assert {v.split(":")[0] for v in voices} >= {"espeak", "flite", "festival", "mbrola", "pico", "rhvoice"}
    assert "festival:rab_diphone" in voices
    test_voices = {json.loads(line)["voice"] for line in open(tmp_path / "data" / "test.jsonl")}
    test_c = {json.loads(line)["voice"] for line in open(tmp_path / "data" / "test_c.jsonl")}
    assert {v.split(":")[0] for v in test_c} == {"mbrola", "pico"}
    # test speakers never heard in training (the same person under another engine either)
    speakers = {Voice.parse(v).speaker for v in voices}
    for held_out in (test_voices, test_c):
        assert not speakers & {Voice.parse(v).speaker for v in held_out}
