"""What each YAML setting may hold, checked when a config is read.

Why: a value of the wrong type used to travel until something deep inside torch or a data
worker tripped over it ("hidden: big" -> "TypeError: hidden_size should be of type int",
"lr: abc" -> "could not convert string to float"), or was taken as something else without
a word ("lowercase: 'no'" is a non-empty string, so true; "epochs: 2.5" crashed only after
the first epoch). Every setting is checked up front and an error names the file, the key,
what it must be and what it was.
"""
from __future__ import annotations

import math
from numbers import Real

from .errors import ConfigError


class Rule:
    def __init__(self, desc: str, ok):
        self.desc, self.ok = desc, ok


def _num(v) -> bool:
    return isinstance(v, Real) and not isinstance(v, bool) and math.isfinite(v)


def _int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def integer(lo: int | None = None) -> Rule:
    return Rule("a whole number" + (f" >= {lo}" if lo is not None else ""),
                lambda v: _int(v) and (lo is None or v >= lo))


def number(lo: float | None = None, hi: float | None = None, lo_open: bool = False, hi_open: bool = False) -> Rule:
    def ok(v):
        return (_num(v) and (lo is None or (v > lo if lo_open else v >= lo))
                and (hi is None or (v < hi if hi_open else v <= hi)))
    parts = []
    if lo is not None:
        parts.append(f"{'>' if lo_open else '>='} {lo:g}")
    if hi is not None:
        parts.append(f"{'<' if hi_open else '<='} {hi:g}")
    return Rule("a number" + (" " + " and ".join(parts) if parts else ""), ok)


PROB = number(0, 1)
POSITIVE = number(0, lo_open=True)
BOOL = Rule("true or false", lambda v: isinstance(v, bool))
STRING = Rule("a string", lambda v: isinstance(v, str))
MAPPING = Rule("a mapping of settings", lambda v: isinstance(v, dict))


def choice(*options) -> Rule:
    return Rule("one of " + ", ".join(map(str, options)), lambda v: isinstance(v, str) and v in options)


def pair(item: Rule) -> Rule:
    """[low, high], both ``item``, low <= high."""
    return Rule(f"[low, high] with low <= high, each {item.desc}",
                lambda v: isinstance(v, (list, tuple)) and len(v) == 2 and all(item.ok(x) for x in v) and v[0] <= v[1])


def list_of(item: Rule) -> Rule:
    return Rule(f"a non-empty list, each {item.desc}",
                lambda v: isinstance(v, (list, tuple)) and len(v) > 0 and all(item.ok(x) for x in v))


def either(*rules: Rule) -> Rule:
    return Rule(" or ".join(r.desc for r in rules), lambda v: any(r.ok(v) for r in rules))


NULL = Rule("null", lambda v: v is None)


def optional(rule: Rule) -> Rule:
    return either(NULL, rule)


FRONTEND = {
    "sample_rate": integer(1000), "n_mels": integer(1), "win_ms": POSITIVE, "hop_ms": POSITIVE,
    "stack": integer(1), "gain_norm": BOOL, "utterance_cmn": BOOL, "vtlp": optional(pair(POSITIVE)),
    "specaug": optional(MAPPING),
}
SPECAUG = {"freq_masks": integer(0), "freq_width": integer(0), "time_masks_per_s": number(0),
           "time_width": integer(0), "max_time_ratio": PROB}
ENCODER_KINDS = ("blstm", "lstm", "rnn", "dnn")
ENCODER = {"kind": choice(*ENCODER_KINDS), "hidden": integer(1), "layers": integer(1),
           "dropout": number(0, 1, hi_open=True), "context": integer(0)}
TOKENIZER = {"word_delimiter": optional(STRING), "lowercase": BOOL, "strip_punctuation": BOOL}

# YAML reads on/off/yes/no as booleans, and an empty value as null: all mean what they say.
AMP_MODES = (True, False, None, "auto", "on", "off", "none", "bf16")
AMP = Rule("auto, bf16 or off", lambda v: (isinstance(v, (bool, str)) or v is None) and v in AMP_MODES)
TRAIN = {
    "epochs": integer(1), "lr": POSITIVE, "weight_decay": number(0), "warmup_steps": integer(0),
    "min_lr_ratio": PROB, "batch_seconds": POSITIVE, "max_batch_size": integer(1),
    "valid_batch_seconds": POSITIVE, "grad_clip": POSITIVE, "seed": integer(0),
    "num_workers": either(choice("auto"), integer(0)), "worker_nice": integer(0), "cache_audio": BOOL,
    "max_duration": POSITIVE, "amp": AMP, "threads": integer(0),
    "cmvn_utterances": integer(1), "augment": optional(MAPPING), "log_every": integer(1),
    "average_last": integer(0), "accum_grad": integer(1), "max_steps": integer(0),
    "checkpoint_every_steps": integer(0), "tensorboard": BOOL,
}
AUGMENT = {
    "speeds": list_of(POSITIVE), "reverb_prob": PROB, "rt60": pair(POSITIVE), "noise_prob": PROB,
    "noise_kinds": list_of(STRING), "snr_db": pair(number()), "babble_talkers": pair(integer(1)),
    "telephone_prob": PROB, "gain_db": pair(number()), "concat_prob": PROB, "concat_pause_s": pair(number(0)),
    "edge_trim_prob": PROB, "noise_bank": BOOL, "nonspeech_prob": PROB, "nonspeech_dbfs": pair(number(hi=0)),
    "pad_prob": PROB, "pad_s": pair(number(0)),
}


def check(cfg: dict, rules: dict, where: str) -> None:
    """Raise ConfigError for the first key of ``cfg`` whose value breaks its rule (keys
    without a rule are left to the caller's unknown-key check)."""
    for k, v in cfg.items():
        rule = rules.get(k)
        if rule is not None and not rule.ok(v):
            raise ConfigError(f"{where}.{k} must be {rule.desc}, not {v!r}")


def check_model_config(cfg: dict, where: str = "model") -> None:
    """A merged model config ({frontend, encoder, tokenizer, ...})."""
    check(cfg.get("frontend") or {}, FRONTEND, f"{where}.frontend")
    check((cfg.get("frontend") or {}).get("specaug") or {}, SPECAUG, f"{where}.frontend.specaug")
    check(cfg.get("encoder") or {}, ENCODER, f"{where}.encoder")
    check(cfg.get("tokenizer") or {}, TOKENIZER, f"{where}.tokenizer")


def check_train_config(cfg: dict, where: str = "train") -> None:
    check(cfg, TRAIN, where)
    check(cfg.get("augment") or {}, AUGMENT, f"{where}.augment")
