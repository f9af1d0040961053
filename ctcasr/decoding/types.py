"""Types and input checks shared by every CTC decoder.

numpy only: apps that run their own CTC model (ONNX, wav2vec2, ...) embed
``ctcasr.decoding`` without torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

# One "word" as the decoders report it: (text, start_frame, end_frame).
# start_frame is the frame of the word's first emitted token, end_frame is one past the
# frame of its last emitted token (exclusive), so end_frame - start_frame >= 1 and a
# caller turns frames into seconds with frame * frame_shift_s.
Word = tuple  # (str, int, int)


class DecodingError(ValueError):
    """Decoder input or settings that cannot be used: wrong shape, NaN, a vocabulary size
    mismatch, bad lengths or tokens. The message says which.

    A ValueError, so code written against the documented ``ValueError`` keeps working.
    Defined here rather than in ctcasr.errors because ``ctcasr.decoding`` depends on
    nothing else in ctcasr (apps embed it on its own); the CLI reports it like our other
    errors (one line, non-zero exit)."""


@dataclass(frozen=True)
class Hypothesis:
    """One decoded labelling.

    tokens     token ids (blank and repeats removed), as a tuple
    text       the tokens joined into display text
    timesteps  for each token, the frame it was emitted at
    words      [(word, start_frame, end_frame)] with end_frame exclusive
    score      total score used for ranking (am_score + lm_weight*lm_score + bonuses)
    am_score   log P(labelling | x) from the acoustic model (greedy: the best path's log-prob)
    lm_score   log-probability the language model gave the text (0 without an LM)
    """

    tokens: tuple
    text: str
    timesteps: tuple
    words: list = field(default_factory=list)
    score: float = 0.0
    am_score: float = 0.0
    lm_score: float = 0.0

    def __hash__(self):
        # Hashable like the frozen dataclass it is (sets, dict keys), although ``words`` is
        # a list (kept a list: code compares it with lists).
        return hash((self.tokens, self.text, self.timesteps, tuple(map(tuple, self.words)), self.score,
                     self.am_score, self.lm_score))


INPUT_TYPES = ("auto", "log_probs", "probs", "logits")
AUTO_ATOL = 0.02  # how far from normalised a row may be for input_type="auto"


def check_count(v, name: str) -> int:
    """``v`` as an int >= 1, or DecodingError (a float such as 1.5 is not truncated)."""
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise DecodingError(f"{name} must be a whole number >= 1, got {v!r}")
    return int(v)


def check_n_best(n_best) -> int:
    return check_count(n_best, "n_best")


def _log_softmax(x: np.ndarray) -> np.ndarray:
    m = x.max(axis=-1, keepdims=True)
    z = x - m
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def check_emissions(
    emissions,
    vocab_size: int,
    lengths=None,
    input_type: str = "auto",
    dtype=np.float64,
):
    """Validate decoder input and return ``(log_probs [B,T,V], lengths [B], batched)``.

    Accepts anything ``np.asarray`` takes (numpy, lists, CPU tensors). ``input_type``:
    ``"log_probs"`` (log-softmax output), ``"probs"`` (softmax output), ``"logits"``
    (unnormalised; we apply log-softmax) or ``"auto"``, which takes rows that sum to 1
    with values in [0, 1] as probabilities and rows whose log-sum-exp is 0 as
    log-probabilities (both within ``AUTO_ATOL``; -inf entries are log-probabilities),
    and refuses anything else rather than guess.
    """
    check_input_type(input_type)
    try:
        x = np.asarray(emissions)
    except Exception as e:  # noqa: BLE001 - anything np.asarray rejects
        raise DecodingError(f"emissions cannot be read as an array: {e}") from e
    if x.dtype == object or not np.issubdtype(x.dtype, np.number):
        raise DecodingError(f"emissions must be numeric, got dtype {x.dtype}")
    if np.issubdtype(x.dtype, np.complexfloating):
        # astype(float) would drop the imaginary part with only a warning.
        raise DecodingError(f"emissions must be real numbers, got dtype {x.dtype}")
    if x.ndim == 2:
        batched = False
        x = x[None]
    elif x.ndim == 3:
        batched = True
    else:
        raise DecodingError(
            f"emissions must have shape [T, V] or [B, T, V], got shape {tuple(x.shape)}"
        )
    B, T, V = x.shape
    if V != vocab_size:
        raise DecodingError(
            f"emissions have {V} classes in the last axis but the decoder has "
            f"{vocab_size} tokens (vocabulary size mismatch)"
        )
    x = x.astype(dtype, copy=False)

    if lengths is None:
        lens = np.full(B, T, dtype=np.int64)
    else:
        try:
            lens = np.asarray(lengths)
        except Exception as e:  # noqa: BLE001 - ragged lists and the like
            raise DecodingError(f"lengths cannot be read as an array: {e}") from None
        if lens.dtype == object or not (np.issubdtype(lens.dtype, np.integer) or np.issubdtype(lens.dtype, np.floating)):
            # np.mod below would raise a bare numpy TypeError on strings or objects.
            raise DecodingError(f"lengths must be whole numbers, got dtype {lens.dtype}")
        if lens.ndim == 0:
            lens = lens[None]
        if lens.shape != (B,):
            raise DecodingError(f"lengths must have shape [{B}], got {tuple(lens.shape)}")
        if not np.issubdtype(lens.dtype, np.integer):
            if not np.all(np.equal(np.mod(lens, 1), 0)):
                raise DecodingError("lengths must be whole numbers")
        lens = lens.astype(np.int64)
        if (lens < 0).any() or (lens > T).any():
            raise DecodingError(f"lengths must lie in [0, {T}], got {lens.tolist()}")

    valid = np.arange(T)[None, :] < lens[:, None]  # [B, T]
    if T:
        # (no masked copy when nothing is padding: these checks dominate greedy decoding)
        v = x if B and lens.min() == T else x[valid]
        if not (v < np.inf).all():  # one pass: NaN compares False too
            raise DecodingError("emissions contain NaN or +inf values")
        # -inf is a log-probability (of an impossible token: log of an underflowed
        # softmax); it is no probability and no logit
        if input_type in ("probs", "logits") and np.isneginf(v).any():
            raise DecodingError(f"input_type={input_type!r} but emissions contain -inf values")

    if T == 0 or not valid.any():
        return x, lens, batched

    kind = input_type
    if kind == "auto":
        # Tolerance 0.02: a log-softmax or softmax computed in float16 or bfloat16 (and
        # then stored in float32) is off by up to ~1e-2; logits are rarely that close.
        # judged on up to 256 rows spread over the input (the whole input has one kind)
        v = v.reshape(-1, V)
        if v.shape[0] > 256:
            v = v[np.linspace(0, v.shape[0] - 1, 256).astype(np.int64)]
        if v.min() >= 0.0 and v.max() <= 1.0 and np.allclose(v.sum(-1), 1.0, atol=AUTO_ATOL):
            kind = "probs"
        elif v.max() <= AUTO_ATOL:
            lse = np.logaddexp.reduce(v, axis=-1)
            if np.allclose(lse, 0.0, atol=AUTO_ATOL):
                kind = "log_probs"
        if kind == "auto":
            raise DecodingError(
                "emissions are neither log-probabilities (rows with log-sum-exp 0) nor "
                f"probabilities (rows summing to 1), within {AUTO_ATOL}; say which with "
                "input_type='log_probs' or 'probs', or pass input_type='logits' to apply "
                "log-softmax"
            )
    if kind == "probs":
        if (x < 0)[valid].any():
            raise DecodingError("input_type='probs' but emissions contain negative values")
        with np.errstate(divide="ignore"):
            x = np.log(x)
    elif kind == "logits":
        x = _log_softmax(x)
    return x, lens, batched


def split_words(
    tokens: Sequence[int],
    timesteps: Sequence[int],
    token_strings: Sequence[str],
    word_delimiter: Optional[str],
) -> list:
    """Group emitted tokens into ``[(word, start_frame, end_frame)]``.

    ``word_delimiter=None`` makes every token a word of its own (Chinese characters);
    otherwise the delimiter separates words and never appears inside one: the delimiter
    token itself, or the delimiter inside a token, as in word-piece vocabularies whose
    tokens carry a word-start marker (SentencePiece's ``"▁the"``: a word starts there).
    """
    words = []
    if word_delimiter is None:
        for tok, t in zip(tokens, timesteps):
            words.append((token_strings[tok], int(t), int(t) + 1))
        return words
    cur, start, end = [], None, None
    for tok, t in zip(tokens, timesteps):
        t = int(t)
        parts = token_strings[tok].split(word_delimiter)
        for i, piece in enumerate(parts):
            if i:  # a delimiter before this piece: the word so far ends
                if cur:
                    words.append(("".join(cur), start, end))
                cur, start = [], None
            if piece:
                if start is None:
                    start = t
                cur.append(piece)
                end = t + 1
    if cur:
        words.append(("".join(cur), start, end))
    return words


def join_text(tokens: Sequence[int], token_strings: Sequence[str], word_delimiter: Optional[str]) -> str:
    """Display text of a token sequence: delimiters become single spaces, no edge spaces."""
    text = "".join(token_strings[t] for t in tokens)
    if word_delimiter is not None:
        text = " ".join(text.replace(word_delimiter, " ").split())
    return text


def check_tokens(tokens, blank: int, word_delimiter: Optional[str]) -> list:
    toks = [str(t) for t in tokens]
    if isinstance(blank, bool) or not isinstance(blank, (int, np.integer)):
        # A float would be truncated by int() and a string compared with ints: refuse both.
        raise DecodingError(f"blank must be an integer token index, got {blank!r}")
    if len(toks) < 2:
        raise DecodingError("a CTC vocabulary needs the blank and at least one other token")
    if not 0 <= blank < len(toks):
        raise DecodingError(f"blank index {blank} outside the vocabulary of {len(toks)} tokens")
    if word_delimiter is not None and word_delimiter not in toks:
        raise DecodingError(
            f"word_delimiter {word_delimiter!r} is not one of the tokens; "
            "pass word_delimiter=None when every token is a word (e.g. Chinese characters)"
        )
    if word_delimiter is not None and toks[blank] == word_delimiter:
        raise DecodingError(f"word_delimiter {word_delimiter!r} is the blank's token")
    return toks


def check_input_type(input_type) -> str:
    if input_type not in INPUT_TYPES:
        raise DecodingError(f"input_type must be one of {INPUT_TYPES}, got {input_type!r}")
    return input_type
