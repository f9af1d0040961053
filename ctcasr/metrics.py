"""Word and character error rates with substitution / deletion / insertion counts.

Corpus figures sum the edit operations over all utterances and divide by the total
reference length (not the mean of per-utterance rates), as sclite, Kaldi's compute-wer and
jiwer do. Words are whitespace-separated; characters include the spaces between words
(jiwer's CER convention). When several minimal alignments exist, the backtrace prefers
the one rapidfuzz/jiwer report, so S/D/I counts agree with jiwer, not just the totals.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class ErrorCounts:
    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0
    hits: int = 0
    ref_len: int = 0

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def rate(self) -> float:
        """Errors / reference length; with an empty reference, 0 if no errors else inf."""
        if self.ref_len == 0:
            return 0.0 if self.errors == 0 else float("inf")
        return self.errors / self.ref_len

    def __add__(self, o: "ErrorCounts") -> "ErrorCounts":
        return ErrorCounts(
            self.substitutions + o.substitutions,
            self.deletions + o.deletions,
            self.insertions + o.insertions,
            self.hits + o.hits,
            self.ref_len + o.ref_len,
        )

    def summary(self, name: str) -> str:
        return (
            f"{name} {100 * self.rate:.2f}% [{self.errors} / {self.ref_len}, "
            f"{self.substitutions} sub, {self.deletions} del, {self.insertions} ins]"
        )


def edit_ops(ref: list, hyp: list) -> ErrorCounts:
    """Minimal edit distance between two sequences with S/D/I/hit counts."""
    ref, hyp = list(ref), list(hyp)
    n0 = len(ref)
    # Common prefix and suffix are matches in every minimal alignment; strip them first
    # (as rapidfuzz does) so ties are broken the same way.
    p = 0
    while p < min(len(ref), len(hyp)) and ref[p] == hyp[p]:
        p += 1
    ref, hyp = ref[p:], hyp[p:]
    q = 0
    while q < min(len(ref), len(hyp)) and ref[-1 - q] == hyp[-1 - q]:
        q += 1
    if q:
        ref, hyp = ref[:-q], hyp[:-q]
    n, m = len(ref), len(hyp)
    if n == 0 or m == 0:
        return ErrorCounts(deletions=n, insertions=m, hits=n0 - n, ref_len=n0)
    # Map items to ints so row updates are numpy comparisons.
    vocab = {}
    r = np.array([vocab.setdefault(x, len(vocab)) for x in ref])
    h = np.array([vocab.setdefault(x, len(vocab)) for x in hyp])
    D = np.zeros((n + 1, m + 1), dtype=np.int32)
    D[0] = np.arange(m + 1)
    D[:, 0] = np.arange(n + 1)
    for i in range(1, n + 1):
        sub = D[i - 1, :-1] + (h != r[i - 1])
        dele = D[i - 1, 1:] + 1
        row = np.minimum(sub, dele)
        # Insertions chain along the row: D[i,j] = min(row[j-1], D[i,j-1] + 1), a running
        # minimum of row[k] + (j - k), computed with an accumulate instead of a Python loop.
        cand = np.concatenate(([D[i, 0]], row))
        idx = np.arange(m + 1)
        D[i] = np.minimum.accumulate(cand - idx) + idx
    # Backtrace as Hyyro's bit-parallel alignment does (what rapidfuzz, hence jiwer, uses):
    # a deletion when the cell is one more than the cell above; otherwise step back one
    # hypothesis item and take an insertion if the previous column is one *less* there,
    # else the diagonal. Any minimal alignment gives the same total; this order gives the
    # same S/D/I split as jiwer.
    i, j = n, m
    c = ErrorCounts(ref_len=n0)
    while i and j:
        if D[i, j] == D[i - 1, j] + 1:
            c.deletions += 1
            i -= 1
        else:
            j -= 1
            if j and D[i, j] == D[i - 1, j] - 1:
                c.insertions += 1
            else:
                i -= 1
                c.substitutions += int(r[i] != h[j])
    c.deletions += i
    c.insertions += j
    c.hits = n0 - c.substitutions - c.deletions
    return c


def word_errors(ref: str, hyp: str) -> ErrorCounts:
    return edit_ops(ref.split(), hyp.split())


def char_errors(ref: str, hyp: str) -> ErrorCounts:
    return edit_ops(list(" ".join(ref.split())), list(" ".join(hyp.split())))


def corpus_errors(refs, hyps):
    """(word ErrorCounts, char ErrorCounts) summed over parallel lists of strings."""
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    w, c = ErrorCounts(), ErrorCounts()
    for r, h in zip(refs, hyps):
        w = w + word_errors(r, h)
        c = c + char_errors(r, h)
    return w, c


def wer(refs, hyps) -> float:
    refs, hyps = ([refs], [hyps]) if isinstance(refs, str) else (refs, hyps)
    return corpus_errors(refs, hyps)[0].rate


def cer(refs, hyps) -> float:
    refs, hyps = ([refs], [hyps]) if isinstance(refs, str) else (refs, hyps)
    return corpus_errors(refs, hyps)[1].rate
