"""The tts_en recipe (general English from synthetic speech): its text extraction and its
shell plumbing, stages 0-4, at toy size. The figures of the full-size run are in
recipes/tts_en/README.md; a toy model transcribes nothing right, so this checks that
run.sh works, writes what it should, and keeps voices and texts apart."""

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from synth_fixtures import require_engine

from ctcasr.train import load_train_config

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "tts_en"
SOURCES = [Path("/usr/share/games/fortunes/fortunes"), Path("/usr/share/wordnet/data.noun")]


def _make_texts():
    spec = importlib.util.spec_from_file_location("tts_en_make_texts", RECIPE / "local" / "make_texts.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("raw, want", [
    ("He bought a lot on the lake.", "he bought a lot on the lake"),
    ("\"Don't panic,\" she said -- twice.", "don't panic she said twice"),
    ("'Tis the 'season' to be jolly!", "tis the season to be jolly"),
    ("Well-known facts are boring; really.", "well known facts are boring really"),
    ("Call me at 555-1234 tomorrow", None),       # digits: read as numbers
    ("The IBM machine was slow", None),            # acronym: read letter by letter
    ("Mr Smith went to Washington", None),         # abbreviation
    ("Go to the U.S. embassy now", None),          # initials
    ("A caf\u00e9 by the sea", None),              # non-ASCII
    ("Yes it is", "yes it is"),
    ("No", None),                                  # too short
    (" ".join(["word"] * 21), None),               # too long
    ("Plan B is not an option", None),             # a lone letter other than a/i/o
])
def test_normalise(raw, want):
    assert _make_texts().normalise(raw) == want


def _require_sources():
    if not all(p.exists() for p in SOURCES):
        msg = "fortunes / wordnet-base are not installed; run scripts/install_tts.sh"
        if os.environ.get("CTCASR_REQUIRE_TTS", "").strip() == "1":
            pytest.fail(msg + " (CTCASR_REQUIRE_TTS=1 makes this a failure)")
        pytest.skip(msg)


def test_make_texts_from_the_debian_packages(tmp_path):
    _require_sources()
    r = subprocess.run([sys.executable, str(RECIPE / "local" / "make_texts.py"), "--out-dir", str(tmp_path),
                        "dev=50", "test=60", "train=400", "lm=rest"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    n_all = int(re.search(r"(\d+) usable sentences", r.stdout).group(1))
    assert n_all > 30_000  # several hours of speech' worth of distinct sentences
    split = {k: (tmp_path / f"{k}.txt").read_text().splitlines() for k in ("dev", "test", "train", "lm")}
    assert [len(split[k]) for k in ("dev", "test", "train")] == [50, 60, 400]
    assert sum(map(len, split.values())) == n_all
    sets = {k: set(v) for k, v in split.items()}
    for a in sets:
        assert len(sets[a]) == len(split[a])
        for b in sets:
            assert a == b or not sets[a] & sets[b], (a, b)
    for line in split["train"] + split["test"]:
        assert re.fullmatch(r"[a-z']+( [a-z']+){2,19}", line), line


def test_shipped_recipe_config_is_valid():
    model_cfg, train_cfg = load_train_config(RECIPE / "conf" / "blstm.yaml")
    assert model_cfg["tokenizer"]["word_delimiter"] == " " and model_cfg["encoder"]["kind"] == "blstm"
    assert model_cfg["encoder"]["layers"] == 4 and train_cfg["epochs"] > 0


TINY = """
model:
  frontend: {stack: 3, utterance_cmn: true, vtlp: [0.9, 1.1]}
  encoder: {kind: blstm, hidden: 32, layers: 1, dropout: 0.0}
  tokenizer: {word_delimiter: " ", lowercase: true, strip_punctuation: true}
train:
  epochs: 1
  batch_seconds: 40
  num_workers: 0
  augment: {speeds: [0.9, 1.0], noise_prob: 0.3, reverb_prob: 0.2}
"""


@pytest.mark.parametrize("more_speakers", [False, True], ids=["default", "more-speakers"])
def test_en_recipe_stages_0_to_4_at_toy_size(tmp_path, more_speakers):
    require_engine("espeak")
    require_engine("flite")
    require_engine("festival")
    if more_speakers:
        for engine in ("mbrola", "pico", "rhvoice"):
            require_engine(engine)
    _require_sources()
    conf = tmp_path / "tiny.yaml"
    conf.write_text(TINY)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    data, exp, ship = tmp_path / "data", tmp_path / "exp", tmp_path / "models" / "en"
    r = subprocess.run(["bash", str(RECIPE / "run.sh"), "--n-train", "60", "--n-dev", "8", "--n-test", "10",
                        "--data", str(data), "--exp", str(exp), "--config", str(conf), "--ship", str(ship),
                        "--more-speakers", str(more_speakers).lower()],
                       capture_output=True, text=True, env=env, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    for stage in range(5):
        assert f"== stage {stage}" in r.stdout
    for f in ("model.pt", "tokens.txt", "config.yaml", "lm.arpa", "decode.yaml", "test_greedy.txt",
              "test_beam_lm.txt"):
        assert (exp / f).is_file(), f
    assert (exp / "test_beam_lm.txt").read_text().startswith("WER ")
    assert "KED + AWB voices:" in r.stdout and "held-out espeak-ng variants:" in r.stdout
    tokens = (exp / "tokens.txt").read_text().splitlines()
    assert tokens[0] == "φ" and "<space>" in tokens and "'" in tokens
    # shipped: a loadable model directory with its LM and tuned decoding defaults
    from ctcasr.transcribe import Transcriber

    asr = Transcriber.load(ship, device="cpu")
    assert asr.decoder.lm is not None
    # The LM text holds no dev/test sentence; voices: test never heard in training.
    lm_text = set((exp / "lm_train.txt").read_text().splitlines())

    def texts(name):
        return {json.loads(line)["text"] for line in open(data / f"{name}.jsonl")}

    def voices(name):
        return {json.loads(line)["voice"] for line in open(data / f"{name}.jsonl")}

    assert not lm_text & (texts("test") | texts("dev"))
    assert not texts("train") & texts("test")
    tv = voices("train")
    assert any(v.startswith("espeak:") for v in tv) and any(not v.startswith("espeak:") for v in tv)
    assert not tv & voices("test") and not tv & voices("dev")
    assert {"festival:ked_diphone", "flite:awb"} & voices("test") and not {"festival:ked_diphone", "flite:awb"} & tv
    held = re.search(r'^test_espeak_variants="([^"]+)"', (RECIPE / "run.sh").read_text(), re.MULTILINE).group(1)
    assert not {v.split("+")[-1] for v in tv if "+" in v} & set(held.split())
    if not more_speakers:
        assert not (data / "train_c.jsonl").exists() and "test_c" not in r.stdout
        return
    # train_c: the 21 more recorded speakers, in training and in the LM text; test_c: seven
    # others, heard nowhere else, its sentences in no other split and not in the LM text.
    from ctcasr.synth import Voice

    def speakers(vs):
        return {Voice.parse(v).speaker for v in vs}

    assert texts("train_c") <= texts("train") and texts("train_c") <= lm_text
    assert {v.split(":")[0] for v in voices("train_c")} >= {"mbrola", "pico", "rhvoice"}
    assert not speakers(voices("test_c")) & speakers(tv | voices("test") | voices("dev"))
    assert not texts("test_c") & (texts("train") | texts("test") | texts("dev") | lm_text)
    assert "-- test_c:" in r.stdout and r.stdout.count("WER ") >= 6
