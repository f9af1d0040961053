"""`ctcasr transcribe` as a product: inputs (files, directories, manifests, Kaldi dirs),
output formats, --output-dir, failures that do not stop the others, hotwords, the
summary line; and the format writers themselves."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ctcasr.cli import main
from ctcasr.formats import cues, render, to_ctm, to_srt, to_vtt
from ctcasr.transcribe import Transcript, Word

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "samples" / "digits"


def _samples():
    recs = [json.loads(line) for line in (SAMPLES / "samples.jsonl").read_text().splitlines() if line.strip()]
    return {Path(r["audio_filepath"]).name: r["text"] for r in recs}


@pytest.fixture
def tree(tmp_path):
    """A directory tree of the shipped samples (one in a sub-folder, one as 8 kHz flac)."""
    d = tmp_path / "audio"
    (d / "sub").mkdir(parents=True)
    names = sorted(_samples())
    shutil.copy(SAMPLES / names[0], d / names[0])
    shutil.copy(SAMPLES / names[1], d / "sub" / names[1])
    x, sr = sf.read(SAMPLES / names[2])
    sf.write(d / "sub" / (Path(names[2]).stem + ".flac"), x, sr)
    (d / "notes.txt").write_text("not audio, not picked up")
    return d, names[:3]


def test_directory_recursive_txt_to_stdout(tree, capsys):
    d, names = tree
    texts = _samples()
    assert main(["transcribe", "--model", "digits", str(d), "--decoder", "greedy"]) == 0
    cap = capsys.readouterr()
    lines = cap.out.strip().splitlines()
    assert len(lines) == 3
    got = {Path(line.split("\t")[0]).stem: line.split("\t")[1] for line in lines}
    for n in names:
        assert got[Path(n).stem] == texts[n]
    # one summary line on stderr with audio seconds, wall time and RTF
    assert "transcribed 3 file(s)" in cap.err and "RTF" in cap.err


def test_output_dir_one_file_per_input_all_formats(tree, tmp_path):
    d, names = tree
    texts = _samples()
    for fmt in ("txt", "json", "srt", "vtt", "ctm"):
        out = tmp_path / f"out_{fmt}"
        assert main(["transcribe", "--model", "digits", str(d), "--format", fmt, "-o", str(out), "--decoder", "greedy",
                     "-q"]) == 0
        files = sorted(p.relative_to(out).as_posix() for p in out.rglob(f"*.{fmt}"))
        stems = [Path(n).stem for n in names]
        assert files == sorted([f"{stems[0]}.{fmt}", f"sub/{stems[1]}.{fmt}", f"sub/{stems[2]}.{fmt}"])
        first = (out / f"{stems[0]}.{fmt}").read_text()
        ref = texts[names[0]]
        if fmt == "txt":
            assert first == ref + "\n"
        elif fmt == "json":
            j = json.loads(first)
            assert j["text"] == ref and [w["word"] for w in j["words"]] == ref.split()
            assert all(0 <= w["start_s"] < w["end_s"] <= j["duration_s"] for w in j["words"])
            assert all(0 < w["confidence"] <= 1 for w in j["words"])
        elif fmt == "srt":
            assert first.startswith("1\n00:00:0") and " --> " in first and ref.split()[0] in first
        elif fmt == "vtt":
            assert first.startswith("WEBVTT\n\n00:00:0")
        else:
            rows = [r.split() for r in first.strip().splitlines()]
            assert [r[4] for r in rows] == ref.split() and all(len(r) == 6 and r[1] == "1" for r in rows)


def test_failed_file_is_reported_others_still_written(tree, tmp_path, capsys):
    d, names = tree
    (d / "broken.wav").write_bytes(b"RIFF....WAVEfmt garbage")
    out = tmp_path / "out"
    rc = main(["transcribe", "--model", "digits", str(d), str(tmp_path / "missing.wav"), "--format", "json", "-o", str(out),
               "--decoder", "greedy"])
    cap = capsys.readouterr()
    assert rc == 1
    assert len(list(out.rglob("*.json"))) == 3
    err = [line for line in cap.err.splitlines() if line.startswith("ctcasr: error:")]
    assert any("broken.wav" in line for line in err) and any("missing.wav" in line for line in err)
    assert "2 failed" in cap.err
    assert "Traceback" not in cap.err


def test_manifest_and_kaldi_dir_inputs_json_lines_in_input_order(tmp_path, capsys):
    texts = _samples()
    names = sorted(texts)
    # Manifest without "text" (transcription input), relative paths against its folder.
    for n in names:
        shutil.copy(SAMPLES / n, tmp_path / n)
    man = tmp_path / "in.jsonl"
    man.write_text("".join(json.dumps({"audio_filepath": n, "id": f"utt{i}"}) + "\n" for i, n in enumerate(names)))
    assert main(["transcribe", "--model", "digits", str(man), "--format", "json", "--decoder", "greedy", "-q"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [Path(r["audio_filepath"]).name for r in rows] == names  # input order, not duration order
    assert [r["text"] for r in rows] == [texts[n] for n in names]
    kd = tmp_path / "kaldi"
    kd.mkdir()
    (kd / "wav.scp").write_text("".join(f"k{i} {tmp_path / n}\n" for i, n in enumerate(names[:2])))
    (kd / "text").write_text("".join(f"k{i} x\n" for i in range(2)))
    assert main(["transcribe", "--model", "digits", str(kd), "--format", "ctm", "--decoder", "greedy", "-q"]) == 0
    ctm = capsys.readouterr().out.strip().splitlines()
    assert {r.split()[0] for r in ctm} == {"k0", "k1"}
    assert [r.split()[4] for r in ctm if r.startswith("k0 ")] == texts[names[0]].split()


def test_srt_to_stdout_needs_output_dir_for_many(tree, capsys):
    d, _ = tree
    assert main(["transcribe", "--model", "digits", str(d), "--format", "srt"]) == 1
    assert "--output-dir" in capsys.readouterr().err


def test_hotword_flag(capsys, tmp_path):
    name = sorted(_samples())[0]
    assert main(["transcribe", "--model", "digits", str(SAMPLES / name), "--hotword", "seven:3", "--hotword", "nine", "-q"]) == 0
    assert capsys.readouterr().out.count("\t") == 1
    assert main(["transcribe", "--model", "digits", str(SAMPLES / name), "--hotword", "zebra"]) == 1
    assert "zebra" in capsys.readouterr().err
    assert main(["transcribe", "--model", "digits", str(SAMPLES / name), "--hotword", "seven:x"]) == 1
    assert "not a number" in capsys.readouterr().err
    assert main(["transcribe", "--model", "digits", str(SAMPLES / name), "--hotword", "seven", "--decoder", "greedy"]) == 1


def test_reader_gone_away_stops_quietly():
    """`ctcasr transcribe ... | head`: a closed stdout ends the run with the SIGPIPE status
    (141) and nothing on stderr, like a Unix tool, not an error line or a traceback."""
    import subprocess
    import sys

    p = subprocess.Popen([sys.executable, "-m", "ctcasr", "transcribe", *sorted(str(f) for f in SAMPLES.glob("*.wav"))],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.close()  # the reader is gone before the first transcript is written
    err = p.stderr.read().decode()
    assert p.wait() == 141 and err == ""


def test_empty_directory_is_an_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["transcribe", "--model", "digits", str(tmp_path / "empty")]) == 1
    assert "no audio files" in capsys.readouterr().err


def test_python_api_array_list_and_tensor():
    import torch

    from ctcasr import Transcriber

    asr = Transcriber.load("digits", device="cpu", decoder="greedy")
    texts = _samples()
    names = sorted(texts)
    x, sr = sf.read(SAMPLES / names[0], dtype="float32")
    a = asr.transcribe(x, sample_rate=sr)
    assert a.text == texts[names[0]] and a.duration_s == pytest.approx(len(x) / sr, abs=1e-3)
    b = asr.transcribe(torch.from_numpy(np.stack([x, x], axis=1)), sample_rate=sr)  # stereo tensor
    assert b.text == a.text
    many = asr.transcribe([str(SAMPLES / n) for n in names])
    assert [t.text for t in many] == [texts[n] for n in names]
    with pytest.raises(Exception, match="sample_rate"):
        asr.transcribe(x)


# ---------------------------------------------------------------------- writers
def _t(words):
    return Transcript(" ".join(w[0] for w in words), [Word(*w) for w in words], 20.0)


def test_cues_break_at_pauses_length_and_duration():
    t = _t([("one", 0.5, 0.8, 0.9), ("two", 0.9, 1.2, 0.9), ("three", 2.5, 2.9, 0.8)]
           + [(f"w{i:02d}", 3.0 + 0.5 * i, 3.4 + 0.5 * i, 1.0) for i in range(16)])
    c = cues(t.words)
    assert c[0] == (0.5, 1.2, "one two")  # pause of 1.3 s before "three"
    assert all(len(text) <= 42 for _, _, text in c)
    assert all(b - a <= 7.0 for a, b, _ in c)
    assert " ".join(text for _, _, text in c) == t.text


def test_srt_vtt_ctm_exact():
    t = _t([("one", 0.5, 0.8, 0.9), ("two", 3661.25, 3661.5, 0.75)])
    assert to_srt(t) == "1\n00:00:00,500 --> 00:00:00,800\none\n\n2\n01:01:01,250 --> 01:01:01,500\ntwo\n"
    assert to_vtt(t).startswith("WEBVTT\n\n00:00:00.500 --> 00:00:00.800\none\n")
    assert to_ctm(t, "my utt") == "my_utt 1 0.500 0.300 one 0.9000\nmy_utt 1 3661.250 0.250 two 0.7500\n"
    assert json.loads(render(t, "json", "a.wav"))["words"][1] == {"word": "two", "start_s": 3661.25,
                                                                  "end_s": 3661.5, "confidence": 0.75}
    with pytest.raises(ValueError):
        render(t, "doc")


def test_kaldi_segment_starting_at_zero_is_cut_to_its_end(tmp_path, capsys):
    """A segment "0.0 1.2" has no offset to tell it from a whole recording; it must still
    be cut at 1.2 s (it was read whole before)."""
    name = sorted(_samples())[0]
    kd = tmp_path / "kaldi"
    kd.mkdir()
    (kd / "wav.scp").write_text(f"rec1 {SAMPLES / name}\n")
    (kd / "segments").write_text("s0 rec1 0.0 1.2\ns1 rec1 1.2 2.2\n")
    (kd / "text").write_text("s0 x\ns1 x\n")
    assert main(["transcribe", "--model", "digits", str(kd), "--format", "json", "--decoder", "greedy", "-q"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["duration_s"] for r in rows] == [1.2, 1.0]
    # Both segments are of one file: txt and json name them by segment id, not by path.
    assert [r["id"] for r in rows] == ["s0", "s1"]
    assert main(["transcribe", "--model", "digits", "--decoder", "greedy", "-q", str(kd), str(SAMPLES / name)]) == 0
    keys = [line.split("\t")[0] for line in capsys.readouterr().out.splitlines()]
    assert keys == ["s0", "s1", str(SAMPLES / name)]


def test_manifest_segment_at_offset_zero_is_cut_to_its_duration(tmp_path, capsys):
    """NeMo-style manifest lines with "offset": 0.0 are segments too (the whole file was
    read, and paired with the segment's text in training)."""
    name = sorted(_samples())[0]
    m = tmp_path / "segs.jsonl"
    m.write_text("".join(json.dumps({"audio_filepath": str(SAMPLES / name), "duration": d, "offset": o,
                                     "text": "x", "id": f"s{o}"}) + "\n" for o, d in ((0.0, 0.5), (0.5, 0.7))))
    from ctcasr.data import read_manifest

    assert [(u.offset, u.extra.get("segment")) for u in read_manifest(m)] == [(0.0, True), (0.5, None)]
    assert main(["transcribe", "--model", "digits", str(m), "--format", "json", "--decoder", "greedy", "-q"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["duration_s"] for r in rows] == [0.5, 0.7]


def test_hotwords_are_taken_in_the_models_text_form(capsys):
    """--hotword ONE failed with "cannot be spelt" although the model lower-cases text."""
    name = sorted(_samples())[0]
    assert main(["transcribe", "--model", "digits", str(SAMPLES / name), "--hotword", "ONE:2", "-q"]) == 0
    assert main(["transcribe", "--model", "digits", str(SAMPLES / name), "--hotword", "!!", "-q"]) == 1
    assert "empty after the model's text normalisation" in capsys.readouterr().err


def test_beam_settings_with_greedy_or_without_lm_are_errors_not_ignored(tmp_path, capsys):
    """--lm-weight with --decoder greedy used to be dropped without a word; an LM weight
    with the LM off too. A beam size given to --decoder auto means beam search even where
    the model has no LM (it used to decode greedy)."""
    import shutil

    from ctcasr.model import resolve_model_dir
    from ctcasr.transcribe import Transcriber

    wav = str(SAMPLES / sorted(_samples())[0])
    for extra in (["--lm-weight", "0.8"], ["--beam-size", "8"], ["--lm", str(tmp_path / "x.arpa")]):
        assert main(["transcribe", "--model", "digits", "--decoder", "greedy", *extra, wav]) == 1
        err = capsys.readouterr().err
        assert extra[0] in err and "drop --decoder greedy" in err and "Traceback" not in err
    assert main(["transcribe", "--model", "digits", "--lm", "none", "--lm-weight", "0.8", wav]) == 1
    assert "the LM is switched off" in capsys.readouterr().err
    nolm = tmp_path / "nolm"
    shutil.copytree(resolve_model_dir("digits"), nolm)
    (nolm / "lm.arpa").unlink()
    from ctcasr.decoding import BeamSearchDecoder, GreedyDecoder

    assert isinstance(Transcriber.load(nolm, device="cpu").decoder, GreedyDecoder)
    assert isinstance(Transcriber.load(nolm, device="cpu", beam_size=8).decoder, BeamSearchDecoder)
    assert main(["transcribe", "--model", str(nolm), "--lm-weight", "0.8", wav]) == 1
    assert "no LM to weigh" in capsys.readouterr().err
