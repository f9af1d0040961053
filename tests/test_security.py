"""Security and durability.

* Hostile checkpoints: a model.pt or training checkpoint holding a pickle that would run code
  is refused (torch.load(weights_only=True)); the payloads below provably work when
  unpickled unsafely, and provably do not run here.
* No code from data files: paths, configs and Kaldi dirs are parsed as data.
* Nothing lost: every output (text, checkpoint, manifest, tokens, LM, model dir) is written
  to a temp file and renamed. Interrupted or out of disk space, the old file stays whole,
  no temp file is left behind, and the error names the file.
"""

from __future__ import annotations

import errno
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from ctcasr.audio import load_audio
from ctcasr.cli import main
from ctcasr.data import Utterance, read_manifest, write_manifest
from ctcasr.decoding import NGramLM
from ctcasr.errors import AudioError, CTCASRError, DataError, ModelError
from ctcasr.model import CTCModel, load_model_dir, save_model_dir
from ctcasr.tokenizer import Tokenizer
from ctcasr.utils import atomic_open, atomic_torch_save, atomic_write_text

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "data" / "models" / "digits"
SR = 16000


# --------------------------------------------------------------------------- hostile pickles
class Payload:
    """Unpickling this creates ``marker`` (the stand-in for any code an attacker wants run)."""

    def __init__(self, marker: Path, how: str = "system"):
        self.marker, self.how = str(marker), how

    def __reduce__(self):
        if self.how == "system":
            return (os.system, (f"touch '{self.marker}'",))
        if self.how == "exec":
            return (exec, (f"open({self.marker!r}, 'w').close()",))
        if self.how == "eval":
            return (eval, (f"open({self.marker!r}, 'w').close()",))
        return (subprocess.call, (["touch", self.marker],))


def _state_dict():
    return {k: v.clone() for k, v in torch.load(SHIPPED / "model.pt", weights_only=True).items()}


def _write_hostile(path: Path, vector: str, marker: Path):
    evil = Payload(marker, {"exec payload": "exec", "eval payload": "eval",
                            "subprocess payload": "subprocess"}.get(vector, "system"))
    if vector.startswith("raw pickle"):
        path.write_bytes(pickle.dumps(evil, protocol=int(vector[-1])))
    elif vector == "legacy torch format":
        torch.save({**_state_dict(), "evil": evil}, path, _use_new_zipfile_serialization=False)
    elif vector == "nested in the state_dict":
        torch.save({**_state_dict(), "meta": {"notes": [1, {"x": evil}]}}, path)
    else:
        torch.save({**_state_dict(), "evil": evil}, path)


def _run_unsafely(path: Path, vector: str):
    """What an unsafe loader would do with the file (the control: the payload is real)."""
    try:
        if vector.startswith("raw pickle"):
            with open(path, "rb") as f:
                pickle.load(f)
        else:
            torch.load(path, weights_only=False)
    except Exception:  # noqa: BLE001, S110 - only the side effect matters here
        pass


VECTORS = ["torch zip", "nested in the state_dict", "legacy torch format", "raw pickle 2", "raw pickle 5",
           "exec payload", "eval payload", "subprocess payload"]


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("vector", VECTORS)
def test_hostile_model_pt_is_refused_and_its_code_never_runs(tmp_path, monkeypatch, vector):
    d = tmp_path / "model"
    shutil.copytree(SHIPPED, d)
    marker = tmp_path / "PWNED"
    _write_hostile(d / "model.pt", vector, marker)
    # torch honours this only where weights_only is not passed: ours is explicit.
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    with pytest.raises(ModelError, match="cannot load weights") as ei:
        load_model_dir(d)
    assert str(d / "model.pt") in str(ei.value)
    assert not marker.exists(), "the checkpoint's code ran"
    # Control: the same file does run code when unpickled unsafely, so the test means something.
    _run_unsafely(d / "model.pt", vector)
    assert marker.exists(), "the payload is inert; the test proves nothing"


def test_hostile_model_pt_through_the_cli_is_one_line(tmp_path, capsys):
    d = tmp_path / "model"
    shutil.copytree(SHIPPED, d)
    marker = tmp_path / "PWNED"
    _write_hostile(d / "model.pt", "torch zip", marker)
    m = tmp_path / "m.jsonl"
    sf.write(tmp_path / "a.wav", np.zeros(SR // 4), SR)
    m.write_text(json.dumps({"audio_filepath": "a.wav", "text": "one"}) + "\n")
    rc = main(["-q", "evaluate", "--model", str(d), "--data", str(m), "--device", "cpu"])
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("ctcasr:")]
    assert rc != 0 and len(err) == 1 and err[0].startswith("ctcasr: error: ") and "model.pt" in err[0]
    assert not marker.exists()


TRAIN_CONFIG = """
model:
  frontend: {n_mels: 20, specaug: {freq_masks: 0, time_masks_per_s: 0.0}}
  encoder: {kind: blstm, hidden: 16, layers: 1, dropout: 0.0}
train: {epochs: 1, batch_seconds: 100, num_workers: 0, threads: 1, average_last: 2}
"""


def _tiny_experiment(tmp_path):
    recs = []
    for i in range(3):
        sf.write(tmp_path / f"{i}.wav", 0.3 * np.sin(np.arange(SR // 2) * (0.1 + 0.05 * i)), SR)
        recs.append(json.dumps({"audio_filepath": f"{i}.wav", "text": "ab"}))
    (tmp_path / "m.jsonl").write_text("\n".join(recs) + "\n")
    (tmp_path / "c.yaml").write_text(TRAIN_CONFIG)
    return tmp_path / "c.yaml", tmp_path / "m.jsonl", tmp_path / "exp"


def test_hostile_training_checkpoints_are_refused(tmp_path):
    """--resume reads checkpoints/last.pt; weight averaging reads checkpoints/epoch*.pt."""
    from ctcasr.train import train

    conf, m, out = _tiny_experiment(tmp_path)
    marker = tmp_path / "PWNED"
    (out / "checkpoints").mkdir(parents=True)
    _write_hostile(out / "checkpoints" / "last.pt", "torch zip", marker)
    with pytest.raises(CTCASRError, match="last.pt: cannot load checkpoint"):
        train(conf, m, m, out, resume=True, device="cpu")
    assert not marker.exists()
    (out / "checkpoints" / "last.pt").unlink()
    # A hostile epoch0.pt beside a run's own epoch weights: averaging must refuse it. (A
    # fresh run into that folder is refused before it reads anything: an earlier run's.)
    _write_hostile(out / "checkpoints" / "epoch0.pt", "nested in the state_dict", marker)
    with pytest.raises(CTCASRError, match="holds an earlier training run"):
        train(conf, m, m, out, device="cpu")
    (out / "checkpoints" / "epoch0.pt").unlink()
    train(conf, m, m, out, device="cpu", epochs=1)
    _write_hostile(out / "checkpoints" / "epoch1.pt", "nested in the state_dict", marker)  # in place of its own
    with pytest.raises(CTCASRError, match="epoch1.pt: cannot load checkpoint"):
        train(conf, m, m, out, resume=True, device="cpu", epochs=2)
    assert not marker.exists()


def test_ctcasr_widens_no_unpickling_allowlist():
    """weights_only is only as safe as its allowlist: ctcasr adds nothing to it (torch's own
    entries are its business), and nothing that runs code is on it."""
    import ctcasr.model
    import ctcasr.train

    allowed = [g[0] if isinstance(g, tuple) else g for g in torch.serialization.get_safe_globals()]
    assert not [g for g in allowed if getattr(g, "__module__", "").startswith("ctcasr")]
    for danger in (eval, exec, os.system, subprocess.call, subprocess.Popen, pickle.loads, ctcasr.model.CTCModel):
        assert danger not in allowed


# --------------------------------------------------------------------------- no code from data
COMMANDISH = ["$(touch {m})", "`touch {m}`", "| touch {m}", "touch {m} |", "a.wav; touch {m}", "a.wav && touch {m}"]


def test_paths_in_manifests_are_only_ever_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "PWNED"
    m = tmp_path / "m.jsonl"
    m.write_text("".join(json.dumps({"audio_filepath": c.format(m=marker), "text": "x"}) + "\n" for c in COMMANDISH))
    utts = read_manifest(m)
    assert len(utts) == len(COMMANDISH)
    for u in utts:
        with pytest.raises(AudioError, match="no such file|cannot open"):
            load_audio(u.audio_filepath)
    assert not marker.exists()


@pytest.mark.parametrize("entry", ["u1 touch {m} |", "u1 touch {m} |  \t", "u1\tsox a.wav -t wav - |"])
def test_kaldi_pipelines_are_refused(tmp_path, entry):
    marker = tmp_path / "PWNED"
    d = tmp_path / "data"
    d.mkdir()
    (d / "wav.scp").write_text(entry.format(m=marker) + "\n")
    (d / "text").write_text("u1 hi\n")
    with pytest.raises(DataError, match=r"wav.scp:1: entry 'u1' is a shell pipeline"):
        read_manifest(d)
    assert not marker.exists()


@pytest.mark.parametrize("yaml_text", [
    "!!python/object/apply:os.system ['touch {m}']\n",
    "encoder: !!python/object/apply:subprocess.call [['touch', '{m}']]\n",
    "frontend: !!python/name:os.system\n",
    "x: !!python/object/new:os.system ['touch {m}']\n",
])
def test_config_yaml_tags_never_run(tmp_path, yaml_text):
    marker = tmp_path / "PWNED"
    d = tmp_path / "model"
    shutil.copytree(SHIPPED, d)
    (d / "config.yaml").write_text(yaml_text.format(m=marker))
    with pytest.raises(ModelError, match="config.yaml: not valid YAML"):
        load_model_dir(d)
    assert not marker.exists()


def test_yaml_alias_bomb_is_refused_quickly(tmp_path):
    """A 'billion laughs' config: PyYAML shares aliased nodes, and we reject the unknown key
    before anything walks the structure."""
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    d = tmp_path / "model"
    shutil.copytree(SHIPPED, d)
    (d / "config.yaml").write_text("\n".join(lines) + "\n")
    with pytest.raises(ModelError, match="unknown key 'a0'"):
        load_model_dir(d)


# --------------------------------------------------------------------------- nothing lost
class FailingFile:
    """A file object that writes ``limit`` bytes (or characters), then raises ``exc``: part of
    the new content reaches the temp file before the failure, as in a real one."""

    def __init__(self, f, limit, exc):
        self._f, self._limit, self._exc, self._n = f, limit, exc, 0

    def write(self, data):
        room = self._limit - self._n
        if len(data) > room:
            self._f.write(data[: max(room, 0)])
            self._f.flush()
            raise self._exc
        self._n += len(data)
        return self._f.write(data)

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self._f.__exit__(*exc)


def _fail_writes(monkeypatch, limit, exc):
    real = os.fdopen
    monkeypatch.setattr(os, "fdopen", lambda *a, **k: FailingFile(real(*a, **k), limit, exc))


def _tok(text):
    return Tokenizer.build([text])


def _lm(text):
    return NGramLM.from_text([text, text + " " + text], order=2)


def _model(tokens):
    return CTCModel({"frontend": {"n_mels": 20}, "encoder": {"hidden": 8, "layers": 1}}, len(tokens))


def _json(p, v):
    with atomic_open(p) as f:
        json.dump({"mean": [float(v)] * 500}, f)


# name, write(path, version) for versions 0 (old) and 1 (new); each new file is > 100 bytes
WRITERS = [
    ("text (transcripts)", lambda p, v: atomic_write_text(p, f"transcript {v}\n" * 200)),
    ("json (cmvn)", _json),
    ("torch checkpoint", lambda p, v: atomic_torch_save({"w": torch.full((5000,), float(v))}, p)),
    ("manifest", lambda p, v: write_manifest(
        [Utterance(f"u{i}", str(p.parent / f"{i}.wav"), 1.0, f"text {v}") for i in range(100)], p)),
    ("tokens.txt", lambda p, v: _tok("abc def" if v == 0 else "".join(map(chr, range(0x4E00, 0x4E40)))).save(p)),
    ("ARPA LM", lambda p, v: _lm("one two three" if v == 0 else "four five six seven").to_arpa(p)),
]


def _snapshot(d: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())}


@pytest.mark.parametrize("name, write", WRITERS, ids=[w[0] for w in WRITERS])
def test_interrupted_write_leaves_the_old_file(tmp_path, monkeypatch, name, write):
    p = tmp_path / "out" / "file"
    write(p, 0)
    before = _snapshot(p.parent)
    _fail_writes(monkeypatch, 100, KeyboardInterrupt())  # Ctrl-C after 100 bytes of the new file
    with pytest.raises(KeyboardInterrupt):
        write(p, 1)
    monkeypatch.undo()
    assert _snapshot(p.parent) == before  # old content, and no temp file left behind
    write(p, 1)  # and the next write goes through
    assert _snapshot(p.parent) != before and len(os.listdir(p.parent)) == 1


@pytest.mark.parametrize("name, write", WRITERS, ids=[w[0] for w in WRITERS])
@pytest.mark.parametrize("where", ["write", "fsync", "mkstemp"])
def test_disk_full_is_a_clear_error_and_leaves_the_old_file(tmp_path, monkeypatch, name, write, where):
    p = tmp_path / "out" / "file"
    write(p, 0)
    before = _snapshot(p.parent)
    full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    if where == "write":
        _fail_writes(monkeypatch, 100, full)
    elif where == "fsync":  # delayed allocation: the space runs out when the data is flushed
        monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(full))
    else:  # no room even for the temp file's inode
        monkeypatch.setattr(tempfile, "mkstemp", lambda *a, **k: (_ for _ in ()).throw(full))
    with pytest.raises((CTCASRError, OSError)) as ei:
        write(p, 1)
    monkeypatch.undo()
    msg = str(ei.value)
    assert str(p) in msg and "No space left on device" in msg, msg
    if isinstance(ei.value, OSError):  # the ARPA writer (ctcasr.decoding stands alone)
        assert ei.value.errno == errno.ENOSPC and ei.value.filename == str(p)
    if where != "mkstemp":
        assert "previous file is unchanged" in msg
    assert _snapshot(p.parent) == before


def test_model_dir_is_replaced_whole_or_not_at_all(tmp_path, monkeypatch):
    """config.yaml, tokens.txt and model.pt must agree; a disk that fills up while model.pt is
    written must not leave the new tokens.txt beside the old weights."""
    d = tmp_path / "model"
    shutil.copytree(SHIPPED, d)
    (d / "lm.arpa").unlink()
    before = _snapshot(d)
    tok = Tokenizer(["φ", " ", "a", "b"])
    _fail_writes(monkeypatch, 20000, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
    with pytest.raises(CTCASRError, match=r"model.pt: cannot write \(No space left on device\)"):
        save_model_dir(_model(tok.tokens), tok, d)
    monkeypatch.undo()
    assert _snapshot(d) == before
    load_model_dir(d)  # still the shipped model, whole
    save_model_dir(_model(tok.tokens), tok, d)
    _, t = load_model_dir(d)
    assert t.tokens == tok.tokens and sorted(_snapshot(d)) == ["config.yaml", "model.pt", "tokens.txt"]


def test_lm_build_disk_full_through_the_cli(tmp_path, monkeypatch, capsys):
    text, out = tmp_path / "t.txt", tmp_path / "lm.arpa"
    text.write_text("one two three\nthree two one\n")
    _lm("old model").to_arpa(out)
    old = out.read_bytes()
    _fail_writes(monkeypatch, 50, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
    rc = main(["lm", "build", str(text), "-o", str(out)])
    monkeypatch.undo()
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("ctcasr:")]
    assert rc != 0 and len(err) == 1 and err[0].startswith("ctcasr: error: "), err
    assert str(out) in err[0] and "No space left on device" in err[0]
    assert out.read_bytes() == old and sorted(os.listdir(tmp_path)) == ["lm.arpa", "t.txt"]


def test_sigkill_in_the_middle_of_a_checkpoint_write(tmp_path):
    """A real kill, not a simulated one: the child writes the old checkpoint, starts writing
    the new one, stops half-way (and says so); we SIGKILL it there. The old checkpoint loads
    and holds the old values. (A killed process cannot remove its temp file; the next
    write is unaffected by it.)"""
    ckpt = tmp_path / "last.pt"
    code = f"""
import os, sys, time, torch
from ctcasr.utils import atomic_torch_save
atomic_torch_save({{"w": torch.zeros(200000)}}, {str(ckpt)!r})
real = os.fdopen
class Slow:
    def __init__(self, f): self.f = f
    def write(self, b):
        self.f.write(b[:len(b) // 2]); self.f.flush(); os.fsync(self.f.fileno())
        print("MID", flush=True); time.sleep(60)
    def __getattr__(self, k): return getattr(self.f, k)
    def __enter__(self): return self
    def __exit__(self, *a): return self.f.__exit__(*a)
os.fdopen = lambda *a, **k: Slow(real(*a, **k))
atomic_torch_save({{"w": torch.ones(200000)}}, {str(ckpt)!r})
"""
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        line = proc.stdout.readline()
        assert line.strip() == "MID", proc.stderr.read()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    st = torch.load(ckpt, weights_only=True)
    assert torch.equal(st["w"], torch.zeros(200000))
    leftovers = [p for p in os.listdir(tmp_path) if p != "last.pt"]
    assert len(leftovers) == 1 and leftovers[0].startswith(".last.pt.") and leftovers[0].endswith(".tmp")
    atomic_torch_save({"w": torch.ones(3)}, ckpt)
    assert torch.equal(torch.load(ckpt, weights_only=True)["w"], torch.ones(3))
