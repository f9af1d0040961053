"""The tts_zh recipe (Mandarin characters, the 好棒棒 demonstration): its text generator,
and its shell plumbing, stages 0-4, at toy size. The figures of the full-size run are in
recipes/tts_zh/README.md; a toy model transcribes nothing right, so this only checks that
run.sh works and writes what it should."""

import importlib.util
import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

from synth_fixtures import require_engine

from ctcasr.train import load_train_config

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "tts_zh"


def _make_texts():
    spec = importlib.util.spec_from_file_location("tts_zh_make_texts", RECIPE / "local" / "make_texts.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _run_sh_default(name):
    return int(re.search(rf"^{name}=(\d+)$", (RECIPE / "run.sh").read_text(), re.MULTILINE).group(1))


def test_make_texts_splits_are_disjoint_and_hold_out_the_demo():
    mt = _make_texts()
    counts = {"train": _run_sh_default("n_train"), "dev": _run_sh_default("n_dev"), "test": _run_sh_default("n_test")}
    splits = mt.make_splits(counts, seed=1)
    assert {k: len(v) for k, v in splits.items()} == counts
    sets = {k: set(v) for k, v in splits.items()}
    for v in splits.values():  # only short texts recur within a split
        assert all(n == 1 for t, n in Counter(v).items() if len(t) > mt.SHORT)
    assert sum(len(t) <= mt.SHORT for t in splits["train"]) > 0.08 * counts["train"]
    assert not sets["train"] & sets["dev"] and not sets["train"] & sets["test"] and not sets["dev"] & sets["test"]
    for held in ("好棒", "好棒棒"):
        assert held in mt.HELD_OUT and all(held not in s for s in sets.values())
    # ... though, as README says, they occur inside longer training sentences.
    assert any("好棒棒" in t and t != "好棒棒" for t in splits["train"])
    # Every character of dev/test is in training (else it could never be recognised).
    train_chars = {c for t in splits["train"] for c in t}
    assert {c for k in ("dev", "test") for t in splits[k] for c in t} <= train_chars
    # Han characters only (no spaces or punctuation), and the point of the recipe: many
    # sentences with a character said twice in a row.
    assert all(re.fullmatch(r"[\u4e00-\u9fff]+", t) for s in splits.values() for t in s)
    doubled = sum(bool(re.search(r"(.)\1", t)) for t in splits["train"])
    assert doubled > 0.4 * len(splits["train"])
    chars = Counter(c for t in splits["train"] for c in t)
    assert 150 < len(chars) < 300
    # Deterministic in the seed; another seed, other sentences.
    assert mt.make_splits(counts, seed=1) == splits
    assert mt.make_splits(counts, seed=2)["train"] != splits["train"]


def test_make_texts_command_line(tmp_path):
    r = subprocess.run([sys.executable, str(RECIPE / "local" / "make_texts.py"), "--seed", "3", "--out-dir",
                        str(tmp_path), "train=50", "test=10"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    train = (tmp_path / "train.txt").read_text(encoding="utf-8").split()
    test = (tmp_path / "test.txt").read_text(encoding="utf-8").split()
    assert len(train) == 50 and len(test) == 10 and not set(train) & set(test)


def test_shipped_recipe_config_is_valid():
    model_cfg, train_cfg = load_train_config(RECIPE / "conf" / "blstm.yaml")
    assert model_cfg["tokenizer"]["word_delimiter"] is None and model_cfg["encoder"]["kind"] == "blstm"
    assert train_cfg["epochs"] > 0


TINY = """
model:
  frontend: {stack: 3, utterance_cmn: true}
  encoder: {kind: blstm, hidden: 32, layers: 1, dropout: 0.0}
  tokenizer: {word_delimiter: null, lowercase: false, strip_punctuation: true}
train:
  epochs: 2
  batch_seconds: 40
  num_workers: 0
  average_last: 2
  augment: {speeds: [0.9, 1.0], noise_prob: 0.5, noise_kinds: [speech, pink], reverb_prob: 0.2}
"""


def test_zh_recipe_stages_0_to_4_at_toy_size(tmp_path):
    require_engine("espeak")
    conf = tmp_path / "tiny.yaml"
    conf.write_text(TINY)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    data, exp = tmp_path / "data", tmp_path / "exp"
    r = subprocess.run(["bash", str(RECIPE / "run.sh"), "--n-train", "120", "--n-dev", "12", "--n-test", "16",
                        "--data", str(data), "--exp", str(exp), "--config", str(conf)],
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    for stage in range(5):
        assert f"== stage {stage}" in r.stdout
    for f in ("model.pt", "tokens.txt", "config.yaml", "lm.arpa", "test_greedy.txt", "test_beam_lm.txt",
              "haobang.wav", "haobangbang.wav", "demo_greedy.txt", "demo_beam.txt", "haobangbang.png"):
        assert (exp / f).is_file(), f
    beam = (exp / "test_beam_lm.txt").read_text()
    # no sentence-as-word "WER" line for a model without a word delimiter
    assert beam.startswith("CER ") and "\nSER " in beam and not any(x.startswith("WER") for x in beam.splitlines())
    assert "CER " in (exp / "test_greedy.txt").read_text()
    # One token per character, no word delimiter; the LM's words are characters.
    tokens = (exp / "tokens.txt").read_text(encoding="utf-8").splitlines()
    assert tokens[0] == "φ" and "<space>" not in tokens and all(len(t) == 1 for t in tokens)
    # The demo: both utterances transcribed by both decoders (a toy model gets them wrong).
    for dec in ("greedy", "beam"):
        assert re.search(rf"^{dec} +haobang\.wav +says 好棒, heard ", r.stdout, re.MULTILINE)
        assert re.search(rf"^{dec} +haobangbang\.wav +says 好棒棒, heard ", r.stdout, re.MULTILINE)
    png = (exp / "haobangbang.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    assert "missing from font" not in r.stderr  # Han characters drawn with a CJK font
    # Voices: test (and the demo) never heard in training; texts disjoint, demo held out.
    def voices(name):
        return {json.loads(line)["voice"] for line in open(data / f"{name}.jsonl", encoding="utf-8")}

    def texts(name):
        return {json.loads(line)["text"] for line in open(data / f"{name}.jsonl", encoding="utf-8")}

    train_voices = voices("train")
    assert all(v.startswith("espeak:cmn-latn-pinyin") for v in train_voices)
    assert not any("whisper" in v for v in train_voices)
    assert not train_voices & voices("test") and not train_voices & voices("dev")
    test_variants = re.search(r'^test_variants="([^"]+)"', (RECIPE / "run.sh").read_text(), re.MULTILINE).group(1)
    assert {v.split("+")[-1] for v in voices("test") | voices("demo")} <= set(test_variants.split())
    assert not texts("train") & texts("test") and not texts("train") & texts("dev")
    assert not texts("train") & {"好棒", "好棒棒"} and texts("demo") == {"好棒", "好棒棒"}
