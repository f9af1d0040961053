"""CTCModel = FrontEnd + encoder + Linear + log_softmax, and the model directory format.

A model directory holds:
  config.yaml  front end, encoder and tokenizer settings (``format_version``)
  tokens.txt   one token a line, line 0 the blank
  model.pt     a state_dict, loaded with ``torch.load(..., weights_only=True)``
  lm.arpa      optional n-gram LM for beam search
"""

from __future__ import annotations

import copy
import os
import sys
from pathlib import Path

import torch
import torch.nn as nn

from .errors import ModelError
from .frontend import FrontEnd
from .schema import check_model_config
from .tokenizer import Tokenizer

FORMAT_VERSION = 1

DEFAULT_CONFIG = {
    "format_version": FORMAT_VERSION,
    "frontend": {
        "sample_rate": 16000,
        "n_mels": 80,
        "win_ms": 25.0,
        "hop_ms": 10.0,
        "stack": 3,
        "gain_norm": True,
        "specaug": {},
        "utterance_cmn": False,  # subtract each utterance's mean log-mel (channel normalisation)
        "vtlp": None,  # e.g. [0.85, 1.2]: frequency-warp factors drawn per utterance in training
    },
    # kind: blstm (default) | lstm | rnn (Elman, tanh) | dnn (frame-wise MLP over a window)
    "encoder": {"kind": "blstm", "hidden": 320, "layers": 4, "dropout": 0.2, "context": 5},
    "tokenizer": {"word_delimiter": " ", "lowercase": True, "strip_punctuation": True},
}


class Dropout(nn.Dropout):
    """``nn.Dropout`` with a cheaper mask on CPU; on other devices it is ``nn.Dropout``.

    PyTorch's CPU dropout draws its mask with ``bernoulli_``, about 5 ns an element: 6 ms
    for one [B, T, 384] activation of a digits batch, three of them per step, so dropout
    cost more than the front end (benchmarks/train_throughput.py). Here the mask comes from
    ``random_`` over the whole int64 range (64 uniform bits a word, one generator call per
    four elements instead of one per element), read as 16-bit draws: an element is dropped
    when its draw falls below round(p * 65536), so p is honoured to 1/65536, and the kept
    elements are scaled by 65536 / (65536 - k) (the expectation is exact). (``random_()``
    without a range would leave the top bit of every word 0.) The mask comes from torch's
    default generator, so ``torch.manual_seed`` makes it reproducible and checkpoints that
    save the RNG state resume it; it is not the same stream of masks as ``nn.Dropout``'s.
    No parameters or buffers: state dicts are those of ``nn.Dropout``.
    """

    def forward(self, x):
        if not self.training or self.p <= 0.0 or x.device.type != "cpu" or self.inplace:
            return super().forward(x)
        k = int(round(self.p * 65536))
        if k >= 65536:
            return x * 0.0
        if k == 0:
            return x
        n = x.numel()
        words = torch.empty((n + 3) // 4, dtype=torch.int64).random_(-2**63, 2**63 - 1)
        draws = words.view(torch.int16)[:n].view(x.shape)          # uniform on [-32768, 32767]
        # keep = draws >= k - 32768, P(keep) = (65536 - k) / 65536, as a 0/1 float mask
        # made with float arithmetic (exact on these integers): the comparison gives a bool
        # tensor, whose conversion to float is an unvectorised loop on CPU (0.9 ms for a
        # [64, 50, 384] activation, the float path 0.3 ms, with the scale folded in).
        mask = draws.to(torch.float32)
        torch.clamp_(mask.sub_(k - 32769), 0.0, 1.0)
        scale = 65536.0 / (65536 - k)
        if x.dtype == torch.float32:
            return x * mask.mul_(scale)                             # one multiply each way
        return x * mask.to(x.dtype) * scale                         # (the scale kept in float)


def merge_config(base: dict, override: dict | None, where: str = "config") -> dict:
    """Deep-merge ``override`` into a copy of ``base``; unknown keys are an error (typos
    in a YAML file should not be silently ignored)."""
    out = copy.deepcopy(base)
    for k, v in (override or {}).items():
        if k not in out:
            from .errors import ConfigError

            raise ConfigError(f"{where}: unknown key {k!r} (known: {', '.join(sorted(out))})")
        if isinstance(out[k], dict) and k != "specaug" and v is None:
            continue  # an empty YAML section ("encoder:" with every key commented out): defaults
        if isinstance(out[k], dict) and k != "specaug" and not isinstance(v, dict):
            # "frontend: [..]" would otherwise fail later with a bare TypeError.
            from .errors import ConfigError

            raise ConfigError(f"{where}.{k}: expected a mapping of settings, found {type(v).__name__}")
        if isinstance(out[k], dict) and isinstance(v, dict) and k != "specaug":
            out[k] = merge_config(out[k], v, f"{where}.{k}")
        else:
            out[k] = v
    return out


class _PermuteRows(torch.autograd.Function):
    """``x.index_select(0, perm)`` for a permutation that is its own inverse: the gradient
    is permuted back the same way (another ``index_select``). index_select's own backward
    zero-fills and ``index_add_``s (scatter_add) the gradient into place: 0.97 against
    0.55 ms for a [3200, 384] gradient, 0.31 against 0.21 ms for [3200, 192], on the
    project's 2-core AVX2 VM with ``ctcasr train``'s malloc settings (~1 ms a digits
    step; 2.5 against 0.9 ms for [3200, 192] with glibc's defaults)."""

    @staticmethod
    def forward(ctx, x, perm):
        ctx.save_for_backward(perm)
        return x.index_select(0, perm)

    @staticmethod
    def backward(ctx, grad):
        (perm,) = ctx.saved_tensors
        return grad.index_select(0, perm), None


def _permute_rows(x, perm):
    # (graphs traced for export run without grad and keep to a plain index_select)
    if torch.is_grad_enabled() and x.requires_grad:
        return _PermuteRows.apply(x, perm)
    return x.index_select(0, perm)


class RNNEncoder(nn.Module):
    """Stacked (Bi)LSTM or Elman RNN; padding never leaks into a valid frame.

    On a padded batch a plain bidirectional nn.LSTM would run the reverse pass from the
    padding into the utterance, so the same audio would get a different transcript
    depending on what it was batched with. Packed sequences avoid that, but on CPU they
    force PyTorch off oneDNN's fused LSTM onto a per-time-step loop: 2.1x slower for a
    training step (benchmarks/train_throughput.py). So each layer runs its directions as
    separate unidirectional RNNs on dense tensors: the forward one sees padding only
    after the valid frames, and the backward one gets every utterance reversed *within its
    own length* (padding stays at the end), then reversed back. Same outputs as packing
    (a test compares), at dense speed.

    Inside, the layers work time-major ([T, B, D]), the layout the LSTM kernels (oneDNN,
    cuDNN) take: with ``batch_first`` every layer and direction copied its input into
    time-major order and its output back, in the forward and the backward pass. The input
    is transposed once, and the output is returned as a ``[B, T, D]`` view of the
    time-major result.

    Parameters live per layer and direction (``layers.{i}.fwd`` / ``.bwd``); state dicts
    of the older single ``nn.LSTM`` layout (``rnn.weight_ih_l{i}[_reverse]``) still load.
    """

    def __init__(self, in_dim: int, hidden: int, layers: int, dropout: float, kind: str):
        super().__init__()
        cls = nn.RNN if kind == "rnn" else nn.LSTM
        self.bidirectional = kind == "blstm"
        self.num_layers = layers
        self.dropout = Dropout(dropout if layers > 1 else 0.0)
        self.layers = nn.ModuleList()
        d = in_dim
        for _ in range(layers):
            m = nn.Module()
            m.fwd = cls(d, hidden)
            if self.bidirectional:
                m.bwd = cls(d, hidden)
            self.layers.append(m)
            d = hidden * (2 if self.bidirectional else 1)
        self.out_dim = d

    def forward(self, x, lengths):
        """``x [B, T, D]`` -> ``[B, T, out_dim]`` (a transposed view), zeros past ``lengths``."""
        B, T, _ = x.shape
        t = torch.arange(T, device=x.device)
        lengths = lengths.to(x.device)
        valid = t[:, None] < lengths[None, :]                      # [T, B]
        rev = None
        if self.bidirectional:
            # Row of the flattened [T * B, D] batch that frame t of utterance b comes from
            # after reversing each utterance within its length; padding frames map to
            # themselves. The permutation is its own inverse. index_select on whole rows
            # is ~10x cheaper on CPU than a gather with an expanded index, which reads one
            # index per element.
            rev = torch.where(valid, lengths[None, :] - 1 - t[:, None], t[:, None])
            rev = (rev * B + torch.arange(B, device=x.device)[None, :]).reshape(-1)
        h = x.transpose(0, 1).contiguous()
        for i, layer in enumerate(self.layers):
            if i:
                h = self.dropout(h)
            f, _ = layer.fwd(h)
            if rev is not None:
                b, _ = layer.bwd(_permute_rows(h.reshape(T * B, -1), rev).view(T, B, -1))
                b = _permute_rows(b.reshape(T * B, -1), rev).view(T, B, -1)
                f = torch.cat((f, b), dim=2)
            h = f
        return (h * valid[:, :, None].to(h.dtype)).transpose(0, 1)  # zeros at padding, as packing gave

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # The older layout: one multi-layer nn.LSTM under "rnn." (checkpoints and shipped
        # models written before the per-direction layout).
        old = prefix + "rnn."
        for k in [k for k in state_dict if k.startswith(old)]:
            name = k[len(old):]                                    # e.g. weight_ih_l2_reverse
            direction = "bwd" if name.endswith("_reverse") else "fwd"
            base = name[: -len("_reverse")] if direction == "bwd" else name
            param, _, layer = base.rpartition("_l")
            state_dict[f"{prefix}layers.{int(layer)}.{direction}.{param}_l0"] = state_dict.pop(k)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class DNNEncoder(nn.Module):
    """Frame-wise MLP over a window of +-context frames: the classic hybrid-era baseline.

    It sees only a fixed window, so it cannot carry information across a word the way the
    recurrent encoders can; recipes/compare measures what that costs."""

    def __init__(self, in_dim: int, hidden: int, layers: int, dropout: float, context: int):
        super().__init__()
        self.context = int(context)
        dims = [in_dim * (2 * self.context + 1)] + [hidden] * layers
        mods = []
        for a, b in zip(dims[:-1], dims[1:]):
            mods += [nn.Linear(a, b), nn.ReLU(), Dropout(dropout)]
        self.net = nn.Sequential(*mods)
        self.out_dim = hidden

    def forward(self, x, lengths):
        c = self.context
        B, T, F = x.shape
        if c:
            xp = nn.functional.pad(x, (0, 0, c, c))
            x = xp.unfold(1, 2 * c + 1, 1).transpose(2, 3).reshape(B, T, F * (2 * c + 1))
        return self.net(x)


class CTCModel(nn.Module):
    def __init__(self, config: dict, vocab_size: int):
        super().__init__()
        self.config = merge_config(DEFAULT_CONFIG, {k: v for k, v in config.items() if k != "format_version"})
        check_model_config(self.config)
        fe = self.config["frontend"]
        enc = self.config["encoder"]
        self.frontend = FrontEnd(**fe)
        in_dim = fe["n_mels"] * fe["stack"]
        if enc["kind"] == "dnn":
            self.encoder = DNNEncoder(in_dim, enc["hidden"], enc["layers"], enc["dropout"], enc["context"])
        else:
            self.encoder = RNNEncoder(in_dim, enc["hidden"], enc["layers"], enc["dropout"], enc["kind"])
        self.dropout = Dropout(enc["dropout"])
        self.head = nn.Linear(self.encoder.out_dim, vocab_size)
        self.vocab_size = vocab_size

    @property
    def frame_shift_s(self) -> float:
        return self.frontend.frame_shift_s

    def output_lengths(self, num_samples):
        return self.frontend.output_lengths(num_samples)

    def forward(self, waveforms: torch.Tensor, lengths: torch.Tensor):
        """``waveforms [B, N]`` float at the front end's rate, ``lengths [B]`` in samples ->
        ``(log_probs [B, T, V], out_lengths [B])``; frames past ``out_lengths`` are padding."""
        feats, flen = self.frontend(waveforms, lengths)
        h = self.encoder(feats, flen)
        tm = h.transpose(0, 1)
        if tm.is_contiguous():
            # The RNN encoders return a [B, T, D] view of a time-major result: dropout and
            # head run time-major, and only the small logits are seen transposed (the CTC
            # loss wants them time-major anyway), instead of copying the activations.
            logits = self.head(self.dropout(tm)).transpose(0, 1)
        else:
            logits = self.head(self.dropout(h))
        return torch.log_softmax(logits.float(), dim=-1), flen

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


# ------------------------------------------------------------------------ model directories
def models_search_path() -> list:
    """Where a model *name* (``--model digits``) is looked up, in order."""
    paths = []
    if os.environ.get("CTCASR_MODELS"):
        paths.append(Path(os.environ["CTCASR_MODELS"]))
    # A source checkout or editable install: <repo>/data/models next to the package.
    paths.append(Path(__file__).resolve().parent.parent / "data" / "models")
    # A wheel install: setup.cfg's data_files put the models under <prefix>/share/ctcasr.
    paths.append(Path(sys.prefix) / "share" / "ctcasr" / "models")
    return paths


DEFAULT_MODEL = "digits"


def resolve_model_dir(name_or_path: str | os.PathLike | None) -> Path:
    """A path to a model directory, or the name of a shipped model."""
    name = os.fspath(name_or_path) if name_or_path else DEFAULT_MODEL
    p = Path(name)
    if p.is_dir():
        return p
    if os.sep not in name and "/" not in name:
        for base in models_search_path():
            if (base / name).is_dir():
                return base / name
        shipped = sorted({d.name for b in models_search_path() if b.is_dir() for d in b.iterdir() if d.is_dir()})
        raise ModelError(
            f"model {name!r} is neither a directory nor a shipped model "
            f"(shipped: {', '.join(shipped) or 'none found'})"
        )
    raise ModelError(f"{name}: model directory not found")


def save_model_dir(model: CTCModel, tokenizer: Tokenizer, out_dir, state_dict=None) -> Path:
    """Write config.yaml, tokens.txt and model.pt into ``out_dir``, all or nothing.

    The three files must agree (tokens.txt sizes model.pt's output layer), so each is not
    merely written atomically: all three temp files are written in full before the first
    rename. A full disk while writing model.pt leaves the old directory whole, rather than
    a new tokens.txt next to the old weights."""
    import io

    import yaml

    from .utils import atomic_write_files

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg = copy.deepcopy(model.config)
    cfg["format_version"] = FORMAT_VERSION
    cfg["tokenizer"] = tokenizer.config()
    sd = state_dict if state_dict is not None else model.state_dict()
    weights = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in sd.items()}, weights)
    atomic_write_files([(out / "config.yaml", yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True)),
                        (out / "tokens.txt", tokenizer.file_text()),
                        (out / "model.pt", weights.getbuffer())])
    return out


def load_config(path) -> dict:
    import yaml

    path = Path(path)
    try:
        cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{path}: missing") from None
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise ModelError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(cfg, dict):
        raise ModelError(f"{path}: expected a mapping of settings, found {type(cfg).__name__}")
    return cfg


def load_model_dir(model_dir, device="cpu"):
    """Load ``(model, tokenizer)`` from a model directory (or shipped model name), in eval mode.

    Every way a directory can be broken ends in a ModelError naming the file: missing files,
    a config written by a newer ctcasr, tokens that do not match the output layer, a
    truncated or foreign model.pt. Weights load with ``weights_only=True``: a model.pt that
    holds pickled code is refused, never executed.
    """
    from .errors import ConfigError, TokenizerError

    d = resolve_model_dir(model_dir)
    for f in ("config.yaml", "tokens.txt", "model.pt"):
        if not (d / f).is_file():
            raise ModelError(f"{d}: model directory has no {f}")
    cfg = load_config(d / "config.yaml")
    version = cfg.get("format_version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        # Not "newer": a version like "1.1", 0 or true was never written by any ctcasr.
        raise ModelError(f"{d / 'config.yaml'}: format_version {version!r} is not a positive whole number")
    if version > FORMAT_VERSION:
        raise ModelError(
            f"{d / 'config.yaml'}: format_version {version!r} is newer than this ctcasr "
            f"understands ({FORMAT_VERSION}); upgrade ctcasr"
        )
    if not isinstance(cfg.get("tokenizer") or {}, dict):
        raise ModelError(f"{d / 'config.yaml'}: tokenizer: expected a mapping of settings, "
                         f"found {type(cfg['tokenizer']).__name__}")
    try:
        check_model_config(merge_config(DEFAULT_CONFIG, {k: v for k, v in cfg.items() if k != "format_version"}))
    except ConfigError as e:
        raise ModelError(f"{d / 'config.yaml'}: {e}") from None
    tok_cfg = {**DEFAULT_CONFIG["tokenizer"], **(cfg.get("tokenizer") or {})}
    try:
        tokenizer = Tokenizer.load(d / "tokens.txt", **tok_cfg)
    except TypeError as e:
        raise ModelError(f"{d / 'config.yaml'}: bad tokenizer settings ({e})") from None
    except TokenizerError as e:
        raise ModelError(str(e)) from None
    try:
        model = CTCModel(cfg, len(tokenizer))
    except (ConfigError, TypeError, ValueError, KeyError) as e:
        raise ModelError(f"{d / 'config.yaml'}: {e}") from None
    try:
        state = torch.load(d / "model.pt", map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - truncated zip, pickle refused by weights_only, ...
        # torch's messages run on for lines ("...This is an internal miniz error. If you are
        # seeing this..."); the first sentence says what happened.
        msg = str(e).strip().splitlines()[0].split(". ")[0][:200] if str(e).strip() else type(e).__name__
        raise ModelError(f"{d / 'model.pt'}: cannot load weights; truncated, or not a PyTorch state_dict "
                         f"({type(e).__name__}: {msg})") from None
    if not isinstance(state, dict):
        raise ModelError(f"{d / 'model.pt'}: expected a state_dict, found {type(state).__name__}")
    for k, v in state.items():
        if not isinstance(v, torch.Tensor):
            raise ModelError(f"{d / 'model.pt'}: entry {k!r} is a {type(v).__name__}, not a tensor")
        if v.is_floating_point() and not torch.isfinite(v).all():
            # Saved from a diverged run: every output would be NaN, and the decoders would
            # refuse them with an error that does not point at the model.
            raise ModelError(f"{d / 'model.pt'}: weights {k!r} contain NaN or infinite values")
    head = state.get("head.weight")
    if head is not None and head.shape[0] != len(tokenizer):
        raise ModelError(
            f"{d}: tokens.txt has {len(tokenizer)} tokens but model.pt's output layer has "
            f"{head.shape[0]}; they come from different models"
        )
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        # The first line is only "Error(s) in loading state_dict for CTCModel:"; the
        # missing/unexpected keys and size mismatches that follow are the useful part.
        detail = " ".join(str(e).split()).replace("Error(s) in loading state_dict for CTCModel: ", "")[:300]
        raise ModelError(f"{d / 'model.pt'}: weights do not match config.yaml ({detail})") from None
    model.eval()
    return model.to(device), tokenizer
