"""Word start/end times from a CTC model's per-frame outputs and a decoded Hypothesis.

numpy only. ``Hypothesis.words`` gives each word the frame of its first emitted token and
one past the frame of its last; on the shipped BiLSTM model those frames put the words
115-200 ms (median) too early, because of how a bidirectional CTC model places its tokens:

* It emits the first letter(s) of a word *early*: right after the previous word's
  delimiter, or at frame 0 for the utterance's first word, then blank through the
  silence, then the rest of the word over its audio ("f i . . . . . . v e" for "five").
  A bidirectional network can do this because it sees the future; CTC does not care where
  a token goes as long as the order is right.
* It emits a word's letters in the first part of the word and blank over the rest; the
  word delimiter follows at the word's acoustic end.

So the timing here reads the word boundaries off the structure of the best path:

1. Each token's *run*: the frames around its decoded frame (``Hypothesis.timesteps``)
   where it is the frame's most probable label (greedy: its argmax run; beam: the same
   stretch around the frame the search reports).
2. Start: within a word, a gap of at least ``min_gap`` frames between two tokens' runs is
   silence the model bridged with anticipated tokens. The tokens before the last such gap
   are re-placed one frame each (a CTC token takes at least one frame) just before the
   first token after it, and the word starts there. Without such a gap it starts at its
   first token's run.
3. End: the first frame of the delimiter that follows the word. The last word has none;
   it ends where the delimiter would be: its last token's run end plus the median
   last-token-to-delimiter distance of this utterance's other words (``default_tail``
   frames when the utterance has no other word).

Positions are on the frame axis with the centre of frame ``i`` at ``i``: a word that
starts at position ``s`` starts at the centre of frame ``s``. A caller converts with

    seconds = first_frame_centre_s + position * frame_shift_s

where ``first_frame_centre_s`` is the time of output frame 0's centre (ctcasr's FrontEnd
with ``center=False``: ``(n_fft / 2 + hop * (stack - 1) / 2) / sample_rate`` = 26 ms for
the 25 ms window in a 512-point FFT, 10 ms hop, 3x stacking), and clips the end to the
audio's duration. The frame centre is geometry, not a fitted offset; on held-out voices
it leaves a mean start error within 15 ms and ends 15-30 ms early on average, with median
|error| 25-30 ms for starts and 30-36 ms for ends (tests/test_word_timing.py).

The two constants were measured on the shipped ``digits`` model with concatenated
single-word TTS utterances of known boundaries (espeak-ng voices; flite/festival voices held
out): ``min_gap`` 2-4 frames all give median errors within 5 ms of each other, 3 has the
least bias; the median delimiter distance was 4 frames (120 ms) on both voice sets. They
are properties of this model family (30 ms frames, letters over a BiLSTM); a model with
peakier outputs (one-frame spikes with blanks between every letter) wants a larger
``min_gap`` or ``min_gap=None``, which turns the re-placement off.

Where the delimiter goes is the model's choice (CTC only fixes the order): a digits model
retrained on 2026-11-28 emits it just before the next word, after the pause, and its word
ends came out ~210 ms late (median) from step 3. So a caller that has the audio passes
``speech`` (an energy speech/pause flag per frame, ``ctcasr.align.speech_frames``), and a
word then ends where the speech in its span ends, when ``min_pause`` or more non-speech
frames follow it inside the span: 14 ms median error for that model, 31 -> 29 ms for the
one before (tests/test_word_timing.py). ``ctcasr.transcribe.Transcriber`` does.

Without a word delimiter (``word_delimiter_id=None``: every token is a word, e.g. Chinese
characters) a word spans its token's run; that case has not been measured against truth.
"""

from __future__ import annotations

import numpy as np

from .types import Hypothesis

__all__ = ["word_times", "speech_run"]


def speech_run(speech, s: int, e: int, max_gap: int):
    """``(first, end)`` frames of the speech run with most speech frames in ``speech[s:e]``,
    pauses of up to ``max_gap`` frames bridged (stop closures inside a word); None when
    ``[s, e)`` has no speech. Ties: the earliest run. (Vectorised: it runs once per word
    on every transcription, and a Python loop over frames would cost O(T) interpreter steps.)"""
    idx = np.flatnonzero(np.asarray(speech[s:e], bool))
    if idx.size == 0:
        return None
    # A run continues while the gap of non-speech frames between two speech frames is at
    # most max_gap, i.e. while consecutive speech frame indices differ by <= max_gap + 1.
    cut = np.flatnonzero(np.diff(idx) > max_gap + 1) + 1
    first, last = np.r_[0, cut], np.r_[cut, idx.size]
    j = int(np.argmax(last - first))  # frames of speech in each run; argmax takes the first
    return int(idx[first[j]]) + s, int(idx[last[j] - 1]) + s + 1


def token_runs(labels: np.ndarray, tokens, timesteps) -> list:
    """``[(first, last)]`` frames of each token's run: the stretch around its timestep where
    ``labels`` (the per-frame argmax) equals the token, kept clear of its neighbours' runs.
    Timesteps that do not increase (never from our decoders) are moved forward to make room."""
    T = len(labels)
    L = len(tokens)
    # Strictly increasing and inside [0, T): t_i >= t_{i-1} + 1 and t_i <= T - L + i.
    ts = np.clip(np.asarray(timesteps, dtype=np.int64), 0, T - 1)
    ts = np.maximum.accumulate(ts - np.arange(L)) + np.arange(L)
    ts = np.minimum(ts, T - L + np.arange(L))
    runs = []
    lo = 0
    for i, (tok, t) in enumerate(zip(tokens, ts.tolist())):
        hi = int(ts[i + 1]) - 1 if i + 1 < L else T - 1
        a = b = t
        while a > lo and labels[a - 1] == tok:
            a -= 1
        while b < hi and labels[b + 1] == tok:
            b += 1
        runs.append((a, b))
        lo = b + 1
    return runs


def word_times(
    log_probs,
    hyp: Hypothesis,
    blank: int = 0,
    word_delimiter_id: int | None = None,
    *,
    min_gap: int | None = 3,
    default_tail: float = 4.0,
    speech=None,
    speech_offset: float = 0.0,
    min_pause: int = 3,
    max_closure: int = 4,
) -> list:
    """``[(start, end)]`` for each of ``hyp.words``, as float frame positions (centre of
    frame ``i`` at ``i``; see the module docstring for the conversion to seconds).

    ``log_probs``: the utterance's ``[T, V]`` model outputs without padding, the array the
    hypothesis was decoded from (log-probabilities, probabilities or logits: only the
    per-frame argmax is used). ``hyp``: a Hypothesis from GreedyDecoder or
    BeamSearchDecoder. ``blank``: the blank id. ``word_delimiter_id``: the id of the token
    that separates words (the decoder's ``word_delimiter``), or None when every token is a
    word. ``min_gap``: blank frames between two tokens of a word that count as a bridged
    silence (None: never). ``default_tail``: frames from a final word's last token to its
    end when the utterance has no delimiter to measure that on.

    ``speech``: optional bool per frame (True: speech), frame ``t`` being the audio
    ``[t, t + 1)`` frame shifts; a word's end then moves back to the end of the largest
    speech run in its span (closures of up to ``max_closure`` frames bridged) when at least
    ``min_pause`` non-speech frames follow that run inside the span. ``speech_offset``: the
    position of frame 0's centre in those units (``first_frame_centre_s / frame_shift_s``),
    so a run ending at frame ``b`` ends at position ``b - speech_offset``. Only with a word
    delimiter.

    Guarantees: ``start < end`` for every word, and each word starts at or after the
    previous one's end; ``0 <= start`` and ``end <= T``.
    """
    lp = np.asarray(log_probs)
    if lp.ndim != 2:
        raise ValueError(f"log_probs must have shape [T, V], got {tuple(lp.shape)}")
    tokens = [int(t) for t in hyp.tokens]
    if len(hyp.timesteps) != len(tokens):
        raise ValueError("hyp.timesteps must give one frame per token")
    if not tokens:
        return []
    T = lp.shape[0]
    if T < len(tokens):
        raise ValueError(f"{len(tokens)} tokens cannot come from {T} frames; pass the log_probs the hypothesis was decoded from")
    if blank in tokens:
        raise ValueError("hyp.tokens contains the blank")
    runs = token_runs(lp.argmax(axis=1), tokens, hyp.timesteps)

    # Words as (token indices, index of the delimiter that follows or None).
    words = []
    if word_delimiter_id is None:
        words = [([i], None) for i in range(len(tokens))]
    else:
        cur = []
        for i, tok in enumerate(tokens):
            if tok == word_delimiter_id:
                if cur:
                    words.append((cur, i))
                cur = []
            else:
                cur.append(i)
        if cur:
            words.append((cur, None))
    if len(words) != len(hyp.words):
        raise ValueError(
            f"found {len(words)} words in hyp.tokens but hyp.words has {len(hyp.words)}; "
            "is word_delimiter_id the decoder's word delimiter?"
        )

    # How far this model puts the delimiter after a word's last token, for the last word.
    tails = [runs[d][0] - runs[idx[-1]][1] - 1 for idx, d in words if d is not None]
    tail = float(np.median(tails)) if tails else float(default_tail)

    out = []
    for idx, delim in words:
        r = [runs[i] for i in idx]
        j0 = 0
        if min_gap is not None:
            for j in range(len(r) - 1):
                if r[j + 1][0] - r[j][1] - 1 >= min_gap:
                    j0 = j + 1
        # Runs are disjoint and increasing, so r[j0][0] - j0 >= r[0][0]: never before the
        # word's own first token, hence never before the previous word's end.
        start = float(r[j0][0] - j0)
        if delim is not None:
            end = float(runs[delim][0])
        elif word_delimiter_id is None:
            end = float(r[-1][1] + 1)
        else:
            end = min(float(r[-1][1] + 1) + tail, float(T))
        out.append((start, max(end, start + 1.0)))
    if speech is not None and word_delimiter_id is not None and len(speech) == T:
        for k, (start, end) in enumerate(out):
            hi = min(T, int(np.ceil(end)))
            run = speech_run(speech, max(0, int(np.floor(start))), hi, max_closure)
            # A run cut off by the span's end says nothing, and a shorter stretch after it is
            # as often a weak final consonant under the utterance-wide energy threshold.
            if run and hi - run[1] >= min_pause and start < run[1] - speech_offset < end:
                out[k] = (start, run[1] - speech_offset)
    return out
