"""Greedy (best-path) CTC decoding: argmax per frame, collapse repeats, drop the blank.

Collapsing happens on the *frame* sequence before blanks are removed, which is what lets
CTC write doubled symbols: 好 φ 棒 φ 棒 -> 好棒棒 (the blank separates the two 棒), while
好 棒 棒 φ -> 好棒. A classifier that trims repeats of the label sequence cannot do this.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from .types import (
    Hypothesis,
    check_emissions,
    check_input_type,
    check_n_best,
    check_tokens,
    join_text,
    split_words,
)


class GreedyDecoder:
    """Best-path decoder; see the package docstring for the shared API.

    ``dec(log_probs)`` with ``[T, V]`` returns ``[Hypothesis]``; with ``[B, T, V]`` (and
    optional ``lengths``) returns one such list per utterance. ``timesteps`` are the frames
    where each emitted token peaks within its run of frames.
    """

    def __init__(
        self,
        tokens: Sequence[str],
        blank: int = 0,
        word_delimiter: Optional[str] = " ",
        input_type: str = "auto",
    ):
        self.tokens = check_tokens(tokens, blank, word_delimiter)
        self.blank = int(blank)
        self.word_delimiter = word_delimiter
        self.input_type = check_input_type(input_type)

    def __call__(self, log_probs, lengths=None, n_best: int = 1):
        # Greedy has one hypothesis; n_best is accepted for symmetry with the beam decoder
        # but validated the same way, so a bad value is not silently ignored.
        check_n_best(n_best)
        x, lens, batched = check_emissions(
            log_probs, len(self.tokens), lengths, self.input_type, dtype=np.float32
        )
        out = [[self._decode_one(x[b, : lens[b]])] for b in range(x.shape[0])]
        return out if batched else out[0]

    def _decode_one(self, lp: np.ndarray) -> Hypothesis:
        T = lp.shape[0]
        if T == 0:
            return Hypothesis(tokens=(), text="", timesteps=(), words=[], score=0.0, am_score=0.0)
        best = lp.argmax(axis=1)
        best_lp = lp[np.arange(T), best]
        score = float(best_lp.sum(dtype=np.float64))
        # Start of each run of identical argmax labels.
        starts = np.flatnonzero(np.r_[True, best[1:] != best[:-1]])
        labels = best[starts]
        keep = labels != self.blank
        run_starts = starts[keep]
        run_ends = np.r_[starts[1:], T][keep]
        tokens = tuple(int(t) for t in labels[keep])
        # Peak frame of each kept run (runs are short; one argmax per run).
        timesteps = tuple(
            int(s + np.argmax(best_lp[s:e])) for s, e in zip(run_starts, run_ends)
        )
        return Hypothesis(
            tokens=tokens,
            text=join_text(tokens, self.tokens, self.word_delimiter),
            timesteps=timesteps,
            words=split_words(tokens, timesteps, self.tokens, self.word_delimiter),
            score=score,
            am_score=score,
            lm_score=0.0,
        )
