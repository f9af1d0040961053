"""FrontEnd and CTCModel: shapes, lengths, padding never leaks, model directories."""

import pickle

import numpy as np
import pytest
import torch
import yaml

from ctcasr.errors import ModelError
from ctcasr.frontend import FrontEnd
from ctcasr.model import CTCModel, load_model_dir, resolve_model_dir, save_model_dir
from ctcasr.tokenizer import Tokenizer

SMALL = {"encoder": {"hidden": 16, "layers": 2, "dropout": 0.0}}


def test_frontend_shapes_and_lengths():
    fe = FrontEnd().eval()
    x = torch.randn(2, 16000) * 0.1
    lens = torch.tensor([16000, 8000])
    feats, flen = fe(x, lens)
    assert feats.shape == (2, 33, 240)
    assert flen.tolist() == [33, 16] == [fe.output_lengths(16000), fe.output_lengths(8000)]
    assert fe.frame_shift_s == pytest.approx(0.03)
    one, olen = fe(torch.zeros(1, 1), torch.tensor([1]))  # a single sample still gives a frame
    assert one.shape[1] == 1 and olen.tolist() == [1]


def test_frontend_batch_equals_single_and_gain_invariance():
    fe = FrontEnd().eval()
    torch.manual_seed(0)
    x = torch.randn(2, 16000) * 0.1
    lens = torch.tensor([16000, 8000])
    batch, _ = fe(x, lens)
    single, _ = fe(x[1:, :8000], lens[1:])
    assert torch.allclose(batch[1, :16], single[0], atol=1e-4)
    quiet, _ = fe(x[1:, :8000] * 0.03, lens[1:])  # 30 dB quieter: same features
    assert torch.allclose(quiet, single, atol=1e-3)
    # whatever lies in a caller's padding, even NaN/inf, is not read (and the caller's
    # tensor is left as it was)
    junk = x.clone()
    junk[1, 8000::2] = float("nan")
    junk[1, 8001::2] = float("inf")
    kept = junk.clone()
    again, _ = fe(junk, lens)
    assert torch.equal(again, batch)
    assert torch.equal(junk.isnan(), kept.isnan()) and torch.equal(junk[0], kept[0])


def test_specaugment_only_in_training():
    fe = FrontEnd(specaug={"freq_masks": 2, "freq_width": 20})
    x = torch.randn(1, 48000) * 0.1
    lens = torch.tensor([48000])
    fe.eval()
    a, _ = fe(x, lens)
    b, _ = fe(x, lens)
    assert torch.equal(a, b)
    fe.train()
    c, _ = fe(x, lens)
    assert c.shape == a.shape and not torch.equal(a, c)
    assert (c == 0).float().mean() > (a == 0).float().mean()


def test_cmvn_buffers_travel_in_state_dict():
    fe = FrontEnd()
    fe.set_cmvn(torch.full((80,), 2.0), torch.full((80,), 4.0))
    sd = fe.state_dict()
    assert torch.allclose(sd["cmvn_mean"], torch.full((80,), 2.0))
    assert torch.allclose(sd["cmvn_istd"], torch.full((80,), 0.25))


@pytest.mark.parametrize("kind", ["blstm", "lstm", "rnn", "dnn"])
def test_encoder_kinds_forward(kind):
    cfg = {"encoder": {"kind": kind, "hidden": 16, "layers": 2, "dropout": 0.0, "context": 2}}
    m = CTCModel(cfg, vocab_size=7).eval()
    x = torch.randn(3, 12000) * 0.1
    lens = torch.tensor([12000, 6000, 3000])
    lp, olen = m(x, lens)
    assert lp.shape == (3, 24, 7)
    assert olen.tolist() == [24, 12, 6]
    assert torch.allclose(lp.exp().sum(-1), torch.ones(3, 24), atol=1e-5)


@pytest.mark.parametrize("kind", ["blstm", "dnn"])
def test_padding_never_changes_the_output(kind):
    """The backward LSTM must start at the utterance's end, not at the batch's padding."""
    torch.manual_seed(0)
    m = CTCModel({"encoder": {"kind": kind, "hidden": 16, "layers": 2, "dropout": 0.0, "context": 2}}, 5).eval()
    short = torch.randn(1, 6000) * 0.1
    batch = torch.cat([short, torch.zeros(1, 10000)], 1)
    batch = torch.cat([batch, torch.randn(1, 16000) * 0.1])
    with torch.no_grad():
        alone, n = m(short, torch.tensor([6000]))
        together, _ = m(batch, torch.tensor([6000, 16000]))
    assert torch.allclose(alone[0], together[0, : n[0]], atol=1e-5)


def _model_dir(tmp_path):
    tok = Tokenizer.build(["one two three"])
    m = CTCModel(SMALL, len(tok))
    return save_model_dir(m, tok, tmp_path / "model"), m, tok


@pytest.mark.parametrize("kind", ["blstm", "lstm", "rnn"])
def test_dense_encoder_equals_packed_nn_lstm_and_loads_its_state_dict(kind):
    """The per-direction dense encoder computes what a packed multi-layer nn.LSTM/nn.RNN
    does, forward and backward (its own backward for the within-length reversal,
    _PermuteRows, included: same input and weight gradients), and state dicts of that older
    layout (the first shipped model's) load into it."""
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    from ctcasr.model import RNNEncoder

    torch.manual_seed(0)
    old = (torch.nn.RNN if kind == "rnn" else torch.nn.LSTM)(12, 8, num_layers=3, batch_first=True,
                                                             bidirectional=kind == "blstm")
    enc = RNNEncoder(12, 8, 3, 0.0, kind)
    enc.load_state_dict({"rnn." + k: v for k, v in old.state_dict().items()}, strict=True)
    x, lengths = torch.randn(4, 20, 12), torch.tensor([20, 13, 5, 1])
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    ref, _ = old(pack_padded_sequence(x1, lengths, batch_first=True, enforce_sorted=False))
    ref, _ = pad_packed_sequence(ref, batch_first=True, total_length=20)
    out = enc(x2, lengths)
    assert out.shape == ref.shape
    assert torch.allclose(out, ref, atol=1e-5)
    w = torch.randn(ref.shape)  # a loss that weighs every output differently
    (ref * w).sum().backward()
    (out * w).sum().backward()
    valid = (torch.arange(20)[None, :] < lengths[:, None])[..., None]
    assert torch.allclose(x2.grad * valid, x1.grad * valid, atol=1e-5)
    assert torch.equal(x2.grad * ~valid, torch.zeros_like(x2.grad))  # padding gets no gradient
    grads = dict(old.named_parameters())
    for k, p in enc.named_parameters():
        i, direction, name = k.split(".")[1:]
        old_name = name.replace("_l0", f"_l{i}") + ("_reverse" if direction == "bwd" else "")
        assert torch.allclose(p.grad, grads[old_name].grad, atol=1e-5), k


def test_model_dir_round_trip(tmp_path):
    d, m, tok = _model_dir(tmp_path)
    assert sorted(p.name for p in d.iterdir()) == ["config.yaml", "model.pt", "tokens.txt"]
    m2, tok2 = load_model_dir(d)
    assert tok2.tokens == tok.tokens
    x = torch.randn(1, 8000) * 0.1
    with torch.no_grad():
        assert torch.allclose(m.eval()(x, torch.tensor([8000]))[0], m2(x, torch.tensor([8000]))[0])


def test_broken_model_dirs(tmp_path):
    d, m, tok = _model_dir(tmp_path)
    # tokens that do not match the output layer
    (d / "tokens.txt").write_text("φ\n<space>\na\n", encoding="utf-8")
    with pytest.raises(ModelError, match="output layer"):
        load_model_dir(d)
    tok.save(d / "tokens.txt")
    # a config from a newer ctcasr
    cfg = yaml.safe_load((d / "config.yaml").read_text())
    cfg["format_version"] = 99
    (d / "config.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(ModelError, match="newer"):
        load_model_dir(d)
    cfg["format_version"] = 1
    (d / "config.yaml").write_text(yaml.safe_dump(cfg))
    # truncated weights
    good = (d / "model.pt").read_bytes()
    (d / "model.pt").write_bytes(good[: len(good) // 2])
    with pytest.raises(ModelError, match="model.pt"):
        load_model_dir(d)
    (d / "model.pt").write_bytes(good)
    # config that does not fit the weights
    cfg["encoder"]["hidden"] = 32
    (d / "config.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(ModelError, match="do not match"):
        load_model_dir(d)
    # missing files
    (d / "tokens.txt").unlink()
    with pytest.raises(ModelError, match="no tokens.txt"):
        load_model_dir(d)
    with pytest.raises(ModelError, match="not found|neither"):
        load_model_dir(tmp_path / "nowhere")
    with pytest.raises(ModelError, match="neither"):
        resolve_model_dir("no-such-shipped-model")


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("touch pwned-by-checkpoint",))


def test_hostile_checkpoint_is_refused_and_never_runs(tmp_path, monkeypatch):
    d, m, tok = _model_dir(tmp_path)
    monkeypatch.chdir(tmp_path)
    sd = {k: v for k, v in m.state_dict().items()}
    sd["evil"] = _Evil()
    with open(d / "model.pt", "wb") as f:
        torch.save(sd, f)
    with pytest.raises(ModelError, match="cannot load weights"):
        load_model_dir(d)
    assert not (tmp_path / "pwned-by-checkpoint").exists()
    # A raw pickle file is refused the same way.
    (d / "model.pt").write_bytes(pickle.dumps(_Evil()))
    with pytest.raises(ModelError):
        load_model_dir(d)
    assert not (tmp_path / "pwned-by-checkpoint").exists()


def test_unknown_config_keys_are_errors(tmp_path):
    from ctcasr.errors import ConfigError

    with pytest.raises(ConfigError, match="hiden"):
        CTCModel({"encoder": {"hiden": 3}}, 5)
    with pytest.raises(ConfigError, match="encoder.kind must be one of blstm, lstm, rnn, dnn, not 'transformer'"):
        CTCModel({"encoder": {"kind": "transformer"}}, 5)


def test_numpy_free_of_torch_in_decoding():
    import subprocess
    import sys

    code = "import sys, ctcasr.decoding; assert 'torch' not in sys.modules, 'torch imported'; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr


def test_all_frames_finite_on_silence():
    m = CTCModel(SMALL, 5).eval()
    lp, _ = m(torch.zeros(1, 16000), torch.tensor([16000]))
    assert torch.isfinite(lp).all()
    assert np.isfinite(lp.detach().numpy()).all()


def test_vtlp_warps_only_in_training_and_keeps_shapes():
    fe = FrontEnd(vtlp=[0.8, 1.2], specaug={"freq_masks": 0, "time_masks_per_s": 0})
    t = torch.arange(16000) / 16000
    x = (0.1 * torch.sin(2 * torch.pi * 1000 * t))[None]
    lens = torch.tensor([16000])
    fe.eval()
    a, _ = fe(x, lens)
    fe.train()
    torch.manual_seed(1)
    b, _ = fe(x, lens)
    assert a.shape == b.shape
    # The 1 kHz tone's energy moves to another mel band under the warp.
    assert a[0, 5].reshape(3, 80).mean(0).argmax() != b[0, 5].reshape(3, 80).mean(0).argmax()


def test_vtlp_filterbank_warp_equals_warping_the_spectrum():
    """The warp is folded into the mel filterbank; the result must be what warping the
    power spectrum bin by bin (linear interpolation, zero above Nyquist) and then applying
    the plain filterbank gives."""
    fe = FrontEnd(vtlp=[0.8, 1.25])
    g = torch.Generator().manual_seed(0)
    F = fe.n_fft // 2 + 1
    spec = torch.rand(3, F, 50, generator=g) ** 2
    torch.manual_seed(5)
    got = fe._warped_mel(spec)
    torch.manual_seed(5)
    alpha = torch.empty(3, 1).uniform_(0.8, 1.25)
    ref = torch.zeros_like(spec)
    for b in range(3):
        for f in range(F):
            src = f / float(alpha[b])
            if src < F - 1:
                i0 = int(src)
                w = src - i0
                ref[b, f] = (1 - w) * spec[b, i0] + w * spec[b, min(i0 + 1, F - 1)]
    ref = fe.mel.mel_scale(ref)
    assert torch.allclose(got, ref, rtol=1e-4, atol=1e-5)


def test_unknown_specaug_key_is_an_error():
    from ctcasr.errors import ConfigError

    with pytest.raises(ConfigError, match="freq_mask"):
        FrontEnd(specaug={"freq_mask": 2})


def test_power_spectrogram_equals_torchaudios():
    """The front end squares the STFT as re^2 + im^2 instead of torchaudio's abs().pow(2)
    (faster); the values must be the same."""
    fe = FrontEnd()
    x = torch.randn(3, 12345) * 0.1
    ref = fe.mel.spectrogram(x)
    got = fe._power_spectrogram(x)
    assert got.shape == ref.shape
    assert torch.allclose(got, ref, rtol=1e-5, atol=1e-9 * float(ref.max()))


def test_cmvn_statistics_are_deterministic_and_unwarped(synth_digits_corpus):
    """prepare's CMVN comes from the features inference sees: no VTLP even when the model
    (in training mode, as prepare builds it) has VTLP configured. It used to draw a random
    warp per utterance from torch's unseeded generator, so two runs of the same recipe got
    different statistics and trained different models."""
    from ctcasr.data import read_manifest
    from ctcasr.train import compute_cmvn

    utts = read_manifest(synth_digits_corpus["manifest"])
    model = CTCModel({"frontend": {"vtlp": [0.8, 1.25]}}, vocab_size=5)
    assert model.training
    torch.manual_seed(1)
    a = compute_cmvn(model, utts, max_utts=6)
    torch.manual_seed(2)
    b = compute_cmvn(model, utts, max_utts=6)
    assert a == b
    assert model.training and model.frontend.training  # mode restored
    plain = CTCModel({}, vocab_size=5).eval()
    assert compute_cmvn(plain, utts, max_utts=6) == a


def test_cpu_dropout_mask_statistics_gradient_and_seed():
    """The CPU dropout draws its own mask (16-bit draws cut from int64 random words): it must
    drop a fraction p of the elements, at every position within a word (no short chunk:
    random_() without a range leaves each word's top bit 0), scale the kept ones by 1/(1-p) exactly, pass the same mask to the
    gradient, and repeat under torch.manual_seed."""
    from ctcasr.model import Dropout

    n = 600_000
    x = torch.ones(n)
    for p in (0.05, 0.15, 0.5, 0.9):
        d = Dropout(p).train()
        torch.manual_seed(0)
        y = d(x)
        kept = y != 0
        k = round(p * 65536)
        assert torch.all(y[kept] == 65536 / (65536 - k))
        sigma = (p * (1 - p) / n) ** 0.5
        assert abs(1 - kept.float().mean().item() - p) < 5 * sigma
        # each of the four draws of a word drops at rate p
        for j in range(4):
            frac = 1 - kept[j::4].float().mean().item()
            assert abs(frac - p) < 5 * sigma * 2, (p, j, frac)
    d = Dropout(0.3).train()
    torch.manual_seed(7)
    a = d(x)
    xb = torch.randn(n, requires_grad=True)
    torch.manual_seed(7)
    b = d(xb)
    assert torch.equal(a != 0, b != 0)  # same seed, same mask
    b.sum().backward()
    assert torch.equal(xb.grad, a)  # d(sum)/dx = mask * scale
    assert torch.equal(b, xb.detach() * a)
    torch.manual_seed(8)
    assert not torch.equal(d(x) != 0, a != 0)
    # eval, p = 0 and p = 1
    assert torch.equal(d.eval()(xb), xb)
    assert torch.equal(Dropout(0.0).train()(x), x)
    assert torch.count_nonzero(Dropout(1.0).train()(x)) == 0
    # bf16 activations keep their dtype; shapes of any rank
    z = Dropout(0.2).train()(torch.ones(3, 5, 7, dtype=torch.bfloat16))
    assert z.dtype == torch.bfloat16 and z.shape == (3, 5, 7)


@pytest.mark.parametrize("yaml_text,where", [
    ("train: {lr: abc}", "train.lr must be a number > 0, not 'abc'"),
    ("train: {epochs: 2.5}", "train.epochs must be a whole number >= 1, not 2.5"),
    ("train: {grad_clip: null}", "train.grad_clip"),
    ("train: {num_workers: two}", "train.num_workers must be one of auto or a whole number"),
    ("train: {augment: [1]}", "train.augment must be null or a mapping"),
    ("train: {augment: {snr_db: 5}}", "train.augment.snr_db must be [low, high]"),
    ("train: {augment: {speeds: []}}", "train.augment.speeds must be a non-empty list"),
    ("train: {augment: {nonspeech_prob: 1.5}}", "train.augment.nonspeech_prob"),
    ("model: {encoder: {hidden: big}}", "model.encoder.hidden must be a whole number >= 1, not 'big'"),
    ("model: {encoder: {dropout: '0.1'}}", "model.encoder.dropout"),
    ("model: {frontend: {n_mels: 80.5}}", "model.frontend.n_mels"),
    ("model: {frontend: {vtlp: 0.9}}", "model.frontend.vtlp must be null or [low, high]"),
    ("model: {frontend: {vtlp: [1.2, 0.8]}}", "model.frontend.vtlp"),
    ("model: {frontend: {specaug: {freq_masks: -1}}}", "model.frontend.specaug.freq_masks"),
    ("model: {tokenizer: {lowercase: 'no'}}", "model.tokenizer.lowercase must be true or false, not 'no'"),
])
def test_config_values_of_the_wrong_kind_name_file_and_key(tmp_path, yaml_text, where):
    """A wrong value is refused when the config is read, naming file, key, what it must be
    and what it was (it used to surface as a TypeError inside torch or a data worker, or,
    for 'lowercase: no', be taken as true)."""
    import re

    from ctcasr.errors import ConfigError
    from ctcasr.train import load_train_config

    conf = tmp_path / "c.yaml"
    conf.write_text(yaml_text + "\n")
    with pytest.raises(ConfigError, match=re.escape(f"{conf}: {where}")):
        load_train_config(conf)


def test_config_yaml_booleans_and_nulls_keep_working(tmp_path):
    from ctcasr.train import load_train_config

    conf = tmp_path / "c.yaml"
    conf.write_text("model: {frontend: {vtlp: null, specaug:}, tokenizer: {word_delimiter: null}}\n"
                    "train: {amp: off, num_workers: 0, augment: {speeds: [0.9, 1], snr_db: [-5, 20]}}\n")
    model_cfg, train_cfg = load_train_config(conf)
    assert train_cfg["amp"] is False and model_cfg["tokenizer"]["word_delimiter"] is None


def test_model_dir_with_a_bad_value_is_a_model_error(tmp_path):
    import shutil

    from ctcasr.model import resolve_model_dir

    d = tmp_path / "m"
    shutil.copytree(resolve_model_dir("digits"), d)
    (d / "config.yaml").write_text((d / "config.yaml").read_text().replace("lowercase: true", "lowercase: 'no'"))
    with pytest.raises(ModelError, match="config.yaml: model.tokenizer.lowercase must be true or false"):
        load_model_dir(d)
