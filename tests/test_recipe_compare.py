"""recipes/compare at toy size: every stage runs and the table comes out; and the frame
cross-entropy decoder (argmax, trim repeats) provably cannot write a doubled symbol.
The figures of the full run are in recipes/compare/README.md; nothing here checks accuracy."""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ctcasr.data import read_manifest, write_manifest
from ctcasr.train import load_train_config

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "compare"
sys.path.insert(0, str(RECIPE / "local"))

from frame_ce import decode_frames, frame_labels, trim_repeats  # noqa: E402

KINDS = ("dnn", "rnn", "lstm", "blstm")


def test_configs_share_front_end_and_tokenizer():
    cfgs = {k: load_train_config(RECIPE / "conf" / f"{k}.yaml") for k in KINDS}
    assert {m["encoder"]["kind"] for m, _ in cfgs.values()} == set(KINDS)
    # One tokens.txt/CMVN for all, and the CE DNN's frame labels come from the BiLSTM's frames.
    for m, t in cfgs.values():
        assert m["frontend"] == cfgs["blstm"][0]["frontend"] and m["tokenizer"] == cfgs["blstm"][0]["tokenizer"]
        assert not any(t["augment"].get(k) for k in ("speeds", "concat_prob", "edge_trim_prob"))


def test_trim_repeats_cannot_write_a_doubled_symbol():
    t, h, r, e, sp = 1, 2, 3, 4, 5
    # "three" as per-frame labels: however the e frames are laid out, one run of e.
    assert trim_repeats([t, t, h, r, r, e, e, e, e, sp, sp]) == [t, h, r, e, sp]
    rng = np.random.default_rng(0)
    for _ in range(500):
        out = trim_repeats(rng.integers(1, 4, size=int(rng.integers(1, 40))))
        assert all(a != b for a, b in zip(out, out[1:]))


def test_frame_labels_fill_blanks_and_lose_the_double_e():
    blank, t, h, r, e = 0, 1, 2, 3, 4
    # A CTC path for "three": the blank between the two e's is what keeps them apart.
    path = [0, 0, t, h, 0, r, e, e, 0, e, 0, 0]
    labels = frame_labels(path, blank)
    assert list(labels) == [t, t, t, h, h, r, e, e, e, e, e, e]   # leading blanks: first token
    assert trim_repeats(labels) == [t, h, r, e]                    # "thre"
    # The decoder never emits the blank, even where the blank output scores highest.
    lp = torch.log_softmax(torch.tensor([[[5.0, 1, 0, 0, 0], [5.0, 0, 0, 0, 1], [0.0, 0, 0, 0, 1]]]), -1)
    assert decode_frames(lp, [3], blank) == [[t, e]]


def test_compare_recipe_at_toy_size(tmp_path, make_corpus):
    texts = ["three one", "two three", "three", "one two three", "oh three three", "one", "two", "three two one"]
    manifest, _ = make_corpus(texts * 2)
    utts = read_manifest(manifest)
    data = manifest.parent
    write_manifest(utts[:10], data / "train.jsonl")
    write_manifest(utts[10:13], data / "dev.jsonl")
    write_manifest(utts[13:], data / "test.jsonl")
    conf = tmp_path / "conf"
    conf.mkdir()
    for k in KINDS:  # the recipe's configs, shrunk
        text = (RECIPE / "conf" / f"{k}.yaml").read_text()
        text = re.sub(r"hidden: \d+", "hidden: 8", re.sub(r"layers: \d+", "layers: 1", text))
        text = re.sub(r"batch_seconds: \d+", "batch_seconds: 20", text.replace("num_workers: 1", "num_workers: 0"))
        (conf / f"{k}.yaml").write_text(text)
    readme = tmp_path / "README.md"
    readme.write_text("# x\n<!-- results: written by local/score.py -->\nold\n<!-- /results -->\ntail\n")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    r = subprocess.run(["bash", str(RECIPE / "run.sh"), "--data", str(data), "--exp", str(tmp_path / "exp"),
                        "--epochs", "1", "--conf-dir", str(conf), "--readme", str(readme)],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    for stage in range(5):
        assert f"== stage {stage}" in r.stdout
    for m in KINDS + ("dnn_ce",):
        assert re.search(rf"^\| {m} \| .* \| [\d.]+ M \| \d+ s \| [\d.]+ % \|", r.stdout, re.M), (m, r.stdout[-2000:])
        assert (tmp_path / "exp" / m / "model.pt").is_file()
    assert (tmp_path / "exp" / "dnn_ce" / "ce.json").is_file()
    written = readme.read_text()
    assert "old" not in written and "| dnn_ce |" in written and written.endswith("tail\n")


@pytest.mark.parametrize("kind", KINDS)
def test_config_builds(kind):
    from ctcasr.model import CTCModel

    m, _ = load_train_config(RECIPE / "conf" / f"{kind}.yaml")
    assert 0.6e6 < CTCModel(m, 17).num_parameters() < 0.8e6   # comparable sizes
