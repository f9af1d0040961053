"""`ctcasr tune-lm` and the model directory's decode.yaml (decoding defaults)."""

import shutil
import subprocess
import sys

import pytest
import yaml

from ctcasr.errors import ModelError
from ctcasr.model import resolve_model_dir
from ctcasr.tune import DEFAULTS, read_decode_defaults, tune_lm


@pytest.fixture
def digits_dir(tmp_path):
    d = tmp_path / "digits"
    shutil.copytree(resolve_model_dir("digits"), d)
    (d / "decode.yaml").unlink(missing_ok=True)
    return d


def test_defaults_without_file(digits_dir):
    assert read_decode_defaults(digits_dir) == DEFAULTS


@pytest.mark.parametrize("text, msg", [
    ("lm_weight: [1, 2]\n", "finite number"),
    ("lm_weight: .nan\n", "finite number"),
    ("word_score: true\n", "finite number"),
    ("beam_size: 0\n", "positive integer"),
    ("beam_size: 2.5\n", "positive integer"),
    ("temperature: 1\n", "unknown key"),
    ("- 1\n- 2\n", "mapping"),
    ("lm_weight: [\n", "cannot read"),
    ("!!python/object/apply:os.system ['echo pwned']\n", "cannot read"),
])
def test_bad_decode_yaml_is_a_clear_error(digits_dir, text, msg):
    (digits_dir / "decode.yaml").write_text(text)
    with pytest.raises(ModelError, match=msg):
        read_decode_defaults(digits_dir)
    # and the CLI says so in one line
    r = subprocess.run([sys.executable, "-m", "ctcasr", "transcribe", "--model", str(digits_dir),
                        "--decoder", "beam", str(digits_dir / "tokens.txt")], capture_output=True, text=True)
    assert r.returncode != 0 and "decode.yaml" in r.stderr and "Traceback" not in r.stderr


def test_tune_picks_the_best_grid_point_and_transcriber_uses_it(digits_dir, synth_digits_corpus):
    rows = []
    r = tune_lm(digits_dir, synth_digits_corpus["manifest"], weights=[0.5, 1.0], scores=[-30.0, 1.0],
                beam_size=8, device="cpu", report=rows.append)
    assert r["utterances"] == len(synth_digits_corpus["texts"]) and r["skipped"] == 0
    assert rows == r["grid"] and len(rows) == 4
    # a word score of -30 makes every word cost more than any acoustic evidence: words vanish
    assert all(x["wer"] > 0.5 for x in rows if x["word_score"] == -30.0)
    best = r["best"]
    assert best["word_score"] == 1.0
    assert (best["wer"], best["cer"]) == min((x["wer"], x["cer"]) for x in rows)

    out = subprocess.run([sys.executable, "-m", "ctcasr", "tune-lm", "--model", str(digits_dir), "--data",
                          str(synth_digits_corpus["manifest"]), "--lm-weights", "0.5", "1.0", "--word-scores",
                          "-30", "1", "--beam-size", "8", "--device", "cpu", "--write"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "best (beam 8)" in out.stdout and "greedy:" in out.stdout
    saved = yaml.safe_load((digits_dir / "decode.yaml").read_text())
    assert saved["lm_weight"] == best["lm_weight"] and saved["word_score"] == 1.0 and saved["beam_size"] == 8
    assert read_decode_defaults(digits_dir) == {"lm_weight": best["lm_weight"], "word_score": 1.0, "beam_size": 8}

    import ctcasr

    asr = ctcasr.Transcriber.load(digits_dir, device="cpu", decoder="beam")
    assert (asr.decoder.lm_weight, asr.decoder.word_score, asr.decoder.beam_size) == (best["lm_weight"], 1.0, 8)
    # explicit options still win over decode.yaml
    asr = ctcasr.Transcriber.load(digits_dir, device="cpu", decoder="beam", lm_weight=0.25, beam_size=4)
    assert (asr.decoder.lm_weight, asr.decoder.beam_size) == (0.25, 4)


def test_tune_without_lm_is_a_clear_error(digits_dir, synth_digits_corpus):
    (digits_dir / "lm.arpa").unlink()
    r = subprocess.run([sys.executable, "-m", "ctcasr", "tune-lm", "--model", str(digits_dir), "--data",
                        str(synth_digits_corpus["manifest"])], capture_output=True, text=True)
    assert r.returncode == 1 and "no LM to tune" in r.stderr


def test_tune_prints_ser_for_a_model_without_words(digits_dir, synth_digits_corpus):
    """Without a word delimiter (Chinese-style models) a transcript has no words: tune-lm
    prints the sentence error rate as SER, never a "WER", and decode.yaml records it so."""
    cfg = yaml.safe_load((digits_dir / "config.yaml").read_text())
    cfg["tokenizer"]["word_delimiter"] = None
    (digits_dir / "config.yaml").write_text(yaml.safe_dump(cfg))
    out = subprocess.run([sys.executable, "-m", "ctcasr", "tune-lm", "--model", str(digits_dir), "--data",
                          str(synth_digits_corpus["manifest"]), "--lm-weights", "0.5", "--word-scores", "0", "1",
                          "--beam-size", "4", "--device", "cpu", "--write"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert not any("WER" in ln for ln in lines), out.stdout
    assert sum("SER" in ln and "CER" in ln for ln in lines) == 4  # 2 grid rows, greedy, best
    saved = yaml.safe_load((digits_dir / "decode.yaml").read_text())
    assert {"dev_ser", "greedy_ser", "dev_cer"} <= set(saved) and "dev_wer" not in saved
    assert read_decode_defaults(digits_dir)["beam_size"] == 4
