"""Forced alignment: when each word (and token) of a known transcript is spoken.

    from ctcasr.align import align
    from ctcasr.model import load_model_dir
    model, tok = load_model_dir("digits")
    words = align(model, tok, waveform, "three one two")   # waveform: float32 @ 16 kHz
    words[0].text, words[0].start_s, words[0].end_s, words[0].confidence, words[0].tokens

Command line: ``ctcasr align AUDIO "TRANSCRIPT" [--model M] [--format json|ctm|srt] [-o OUT]``.

The model's log-probabilities and the transcript's tokens go to
``torchaudio.functional.forced_align`` (Viterbi over the CTC topology: the best path that
collapses to exactly the transcript). A token occupies the frames the path gives it. The
word delimiter (space) is aligned too, because the model was trained to emit it between
words, but it is not reported. Word edges come from the audio's speech/pause edges
between the delimiters (``_word_frames`` says why: the BiLSTM's letter spikes are not
where the sounds are); ``boundaries="tokens"`` gives the raw token frames instead.

What time a frame stands for: the front end uses ``center=False``, so fbank frame j reads
samples [j*hop, j*hop + n_fft) and output frame t stacks fbank frames 3t..3t+2, i.e. it
reads [t*shift, t*shift + (stack-1)*hop + n_fft): 0-52 ms for t=0 with the shipped
config, centred at t*shift + 26 ms. We report frame t as the interval
[t*shift, (t+1)*shift), the convention of the Transcriber's word times, so ``transcribe``
and ``align`` agree, and the speech detector measures energy on exactly that grid. The
11 ms between that interval's centre and the frame's true centre is small next to where
CTC puts its spikes (100 ms and more, see ``_word_frames``).

Memory: the CPU kernel keeps one byte of back-pointer per (frame, CTC state), i.e.
T * (2L + 1) bytes for T frames and L tokens (measured: 48 MB for 8000 x 6001). An hour
of speech at ~15 characters a second would need ~13 GB, so ``align`` refuses calls over
``MAX_ALIGN_BYTES`` (1 GB: about a quarter of an hour of continuous speech with the 30 ms
frames of the shipped model) before running the model, with a message that says how long
the parts should be, instead of letting the process be killed for memory. Align long
recordings in parts (e.g. per paragraph).
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .audio import input_time, kept_segments
from .data import ctc_min_frames as frames_needed
from .decoding.timing import speech_run
from .errors import DataError, TokenizerError

MAX_ALIGN_BYTES = 1_000_000_000


@dataclass
class AlignedToken:
    text: str
    start_s: float
    end_s: float
    confidence: float  # mean posterior of the token over the frames it is aligned to
    start_frame: int
    end_frame: int     # exclusive


@dataclass
class AlignedWord:
    text: str
    start_s: float
    end_s: float
    confidence: float  # mean of its tokens' confidences
    tokens: list = field(default_factory=list)


# ------------------------------------------------------------------------------ checks
def transcript_ids(tokenizer, transcript: str) -> list:
    """Token ids of ``transcript`` after the tokenizer's normalisation; TokenizerError
    naming the characters the vocabulary lacks, DataError if nothing is left to align."""
    text = tokenizer.normalize(transcript)
    if not text:
        if not str(transcript).strip():
            raise DataError("transcript is empty: give the words spoken in the audio")
        raise DataError(f"transcript {str(transcript)[:60]!r} has nothing to align once punctuation is dropped: "
                        "give the words spoken in the audio")
    bad = tokenizer.unknown_chars(transcript)
    if bad:
        known = "".join(t for t in tokenizer.tokens[1:] if t != tokenizer.word_delimiter)
        hint = f"; the model knows only {known!r}" if len(known) <= 80 else ""
        raise TokenizerError(
            f"transcript has characters the model's tokenizer does not know: "
            f"{', '.join(repr(c) for c in bad)}{hint} (spell numbers and symbols out as words)"
        )
    return tokenizer.encode(text)


def check_alignable(num_frames: int, ids, frame_shift_s: float, max_bytes: int = MAX_ALIGN_BYTES) -> None:
    need = frames_needed(ids)
    if need > num_frames:
        raise DataError(
            f"transcript too long for the audio: its {len(ids)} tokens need at least {need} frames "
            f"({need * frame_shift_s:.2f} s) but the audio gives {num_frames} "
            f"({num_frames * frame_shift_s:.2f} s); is it the right transcript for this file?"
        )
    cost = num_frames * (2 * len(ids) + 1)
    if cost > max_bytes:
        # Parts with the same tokens per frame: T * (2 r T + 1) <= max_bytes.
        r = len(ids) / num_frames
        part_frames = (-1 + math.sqrt(1 + 8 * r * max_bytes)) / (4 * r)
        raise DataError(
            f"audio too long to align in one call: {num_frames} frames x {2 * len(ids) + 1} CTC states "
            f"need {cost / 1e9:.1f} GB of back-pointers, over the {max_bytes / 1e9:.1f} GB limit; "
            f"split audio and transcript into parts of at most ~{part_frames * frame_shift_s / 60:.0f} min"
        )


# ------------------------------------------------------------------------------ alignment
def speech_frames(waveform, num_frames: int, frame_samples: int) -> np.ndarray:
    """Energy voice-activity per output frame (frame t = samples [t*S, (t+1)*S)).

    Speech is a frame over both 40 dB below the loud (99th percentile) frames, which keeps
    weak consonants of clean audio, and 6 dB above the quiet (5th percentile) frames, the
    noise floor, which keeps steady background noise out. The floor is taken between the
    first and the last frame within 40 dB of the loud ones: quiet before and after the
    speech (digital silence, a recording started early) would otherwise pull it down, and
    a noisy utterance's noise and reverberation tails would count as speech (a word's end
    moved 0.3 s later with 2 s of digital silence around a noisy sample).
    """
    x = np.asarray(waveform, dtype=np.float64)[: num_frames * frame_samples]
    x = np.pad(x, (0, num_frames * frame_samples - len(x)))
    db = 10 * np.log10((x.reshape(num_frames, frame_samples) ** 2).mean(axis=1) + 1e-12)
    top = np.percentile(db, 99) - 40.0
    span = np.flatnonzero(db > top)
    inside = db[span[0]: span[-1] + 1] if len(span) else db
    thr = max(top, np.percentile(inside, 5) + 6.0)
    return db > thr


def _word_frames(words_tokens, delims, T, speech, frame_shift_s):
    """(start, end) frames of each word.

    Without ``speech``: its first token's first frame to its last token's last frame.

    With it: the BiLSTM's spikes are not where the sounds are. On synthesized digit strings
    the first letters of a word come 100-300 ms early, after a long pause often right after
    the previous word, and the first word's first letters sit at frame 0 however much
    silence precedes it; only word-final letters land reliably inside their word. The
    word delimiter is emitted as the word's sound ends, far more reliably, so the
    delimiters cut the utterance into one stretch per word (word i: from the end of the
    delimiter before it to the end of the one after it; the first from frame 0, the last to
    the end), and the word is the largest run of speech frames in its stretch: that drops
    the pause, and the tail of the previous word when the delimiter came early.

    Measured on held-out voices, single-word recordings strung together with 30-600 ms
    silences (tests/test_align.py): median boundary error ~11 ms, p90 ~75 ms, against
    ~115 ms median for the token frames; ~20-30 ms median in white or pink noise at
    15-20 dB SNR, ~70-80 ms in babble at 10-15 dB (the energy detector hears babble as
    speech). Without a delimiter (every token a word) the next word's first token ends a
    word's stretch; that case has not been measured against true boundaries.
    """
    n = len(words_tokens)
    tok_spans = [(w[0].start_frame, w[-1].end_frame) for w in words_tokens]
    if speech is None:
        return tok_spans
    cuts = [0] + [delims[i].end_frame if delims[i] is not None else tok_spans[i + 1][0] for i in range(n - 1)] + [T]
    max_gap = round(0.12 / frame_shift_s)  # bridges stop closures (~50-100 ms), not pauses
    out = []
    for i in range(n):
        run = speech_run(speech, cuts[i], cuts[i + 1], max_gap) if cuts[i + 1] > cuts[i] else None
        out.append(run or tok_spans[i])
    return out


def align_log_probs(log_probs, ids, tokenizer, frame_shift_s: float, duration_s: float | None = None,
                    speech=None, max_bytes: int = MAX_ALIGN_BYTES) -> list:
    """Align token ids to one utterance's ``log_probs [T, V]`` (tensor or array) ->
    list[AlignedWord]. No model needed: any CTC model's output with this tokenizer works.
    ``speech``: a bool per frame (``speech_frames``) to set word boundaries from the
    audio, else words span their tokens' frames (see ``_word_frames``)."""
    import torch
    from torchaudio.functional import forced_align

    lp = torch.as_tensor(np.asarray(log_probs, dtype=np.float32))
    T = lp.shape[0]
    check_alignable(T, ids, frame_shift_s, max_bytes)
    blank = tokenizer.blank_id
    # CPU always: the memory limit above is the CPU kernel's, and T*L work is cheap next to
    # the encoder.
    path, _ = forced_align(lp[None], torch.tensor([ids], dtype=torch.int32), blank=blank)
    path = path[0].numpy()
    post = np.exp(lp.numpy()[np.arange(T), path])

    # Runs of one label; between two equal tokens the path always puts a blank, so each
    # non-blank run is one token of the transcript, in order.
    starts = np.flatnonzero(np.r_[True, path[1:] != path[:-1]])
    ends = np.r_[starts[1:], T]
    runs = [(int(s), int(e)) for s, e in zip(starts, ends) if path[s] != blank]
    assert len(runs) == len(ids), "forced_align path does not collapse to the transcript"

    dur = duration_s if duration_s is not None else T * frame_shift_s

    def sec(frame):
        return round(min(frame * frame_shift_s, dur), 3)

    tokens = [AlignedToken(tokenizer.tokens[i], sec(s), sec(e), round(float(post[s:e].mean()), 4), s, e)
              for i, (s, e) in zip(ids, runs)]
    # Group into words; delims[i] is the delimiter token after word i (None if there is none).
    wd = tokenizer.word_delimiter
    groups, delims, cur = [], [], []
    for t in tokens:
        if wd is not None and t.text == wd:
            groups.append(cur)
            delims.append(t)
            cur = []
            continue
        cur.append(t)
        if wd is None:  # scripts without spaces: every character is a word
            groups.append(cur)
            delims.append(None)
            cur = []
    if cur:
        groups.append(cur)
    frames = _word_frames(groups, delims, T, speech, frame_shift_s)
    return [AlignedWord("".join(t.text for t in g), sec(s), sec(e),
                        round(float(np.mean([t.confidence for t in g])), 4), g)
            for g, (s, e) in zip(groups, frames)]


def align(model, tokenizer, waveform, transcript: str, sample_rate: int | None = None,
          boundaries: str = "speech", max_bytes: int = MAX_ALIGN_BYTES, edge_quiet_s: float | None = 0.3) -> list:
    """Word (and token) times of ``transcript`` in ``waveform`` -> list[AlignedWord].

    ``waveform``: 1-D float array or tensor at ``sample_rate`` (default: the model's rate;
    other rates are resampled). ``boundaries``: "speech" (default) places word edges on
    the audio's speech/pause edges between the model's word delimiters; "tokens" reports
    the frames of each word's first and last token as they come out of the model. Token
    times are the model's in both. Raises TokenizerError for characters the model cannot
    spell, DataError for an empty transcript, one too long for the audio or a call over
    the memory limit, AudioError for audio that cannot be used.

    ``edge_quiet_s``: as ``Transcriber.edge_quiet_s``, the model hears at most this much
    quiet before, after and (twice it) inside the speech, because its level and mean
    normalisation see the whole input; times are those of the input. With 2 s of digital
    silence or -70 dBFS noise around each of the five samples, the shipped digits model's
    48 word edges moved by the 2 s and at most 0.10 s more (also 0.10 s with the whole input
    heard; 0.31 s before ``speech_frames`` took its noise floor from between the loud
    frames; the model shipped before it: 0.07 s, 0.13 s with the whole input). None: the
    whole input. When what is left is too short for the transcript, the whole input is
    aligned.
    """
    import torch

    from .audio import prepare_waveform

    if boundaries not in ("speech", "tokens"):
        raise DataError(f"boundaries must be 'speech' or 'tokens', got {boundaries!r}")
    sr = model.frontend.sample_rate
    ids = transcript_ids(tokenizer, transcript)
    if torch.is_tensor(waveform):
        waveform = waveform.detach().cpu().numpy()
    x = whole = prepare_waveform(waveform, sample_rate or sr, sr)
    segs = kept_segments(x, sr, edge_quiet_s)
    if segs != [(0, len(x))]:
        heard = np.concatenate([x[a:b] for a, b in segs])
        if int(model.output_lengths(len(heard))) >= frames_needed(ids):
            x = heard  # else too short for the transcript: the whole input
    T = int(model.output_lengths(len(x)))
    # Refuse before running the encoder: a too-long call should fail in a second, not after
    # minutes of BiLSTM over an hour of audio.
    check_alignable(T, ids, model.frame_shift_s, max_bytes)
    dev = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            lp, olen = model(torch.from_numpy(x)[None].to(dev), torch.tensor([len(x)], device=dev))
    finally:
        model.train(was_training)
    lp = lp[0, : int(olen[0])].float().cpu()
    speech = None
    if boundaries == "speech":
        speech = speech_frames(x, lp.shape[0], round(model.frame_shift_s * sr))
    words = align_log_probs(lp, ids, tokenizer, model.frame_shift_s, len(x) / sr, speech, max_bytes)
    if x is whole:
        return words
    return [_in_input(w, segs, sr, len(whole) / sr, model.frame_shift_s) for w in words]


def _in_input(w: AlignedWord, segs, sr: int, duration_s: float, fs: float) -> AlignedWord:
    """A word aligned in the kept ``segs`` heard one after the other, in the input's seconds
    (frames: the input's frame grid)."""
    def times(a, b):
        s = round(min(input_time(segs, a, sr), duration_s), 3)
        return s, round(max(s, min(input_time(segs, b, sr, end=True), duration_s)), 3)

    toks = []
    for t in w.tokens:
        a, b = times(t.start_s, t.end_s)
        toks.append(AlignedToken(t.text, a, b, t.confidence, int(round(a / fs)), max(int(round(b / fs)), int(round(a / fs)) + 1)))
    a, b = times(w.start_s, w.end_s)
    return AlignedWord(w.text, a, b, w.confidence, toks)


# ------------------------------------------------------------------------------ output
# Private writers for now; ctcasr.formats (transcribe's srt/vtt/ctm) is being written in
# parallel and these are to be folded into it.
def _to_json(words, audio: str, transcript: str) -> str:
    # One word a line: readable, diffable, and still one JSON document.
    items = [json.dumps({"word": w.text, "start_s": w.start_s, "end_s": w.end_s, "confidence": w.confidence,
                         "tokens": [{"token": t.text, "start_s": t.start_s, "end_s": t.end_s,
                                     "confidence": t.confidence} for t in w.tokens]}, ensure_ascii=False)
             for w in words]
    head = (f'{{\n  "audio": {json.dumps(audio, ensure_ascii=False)},\n'
            f'  "transcript": {json.dumps(transcript, ensure_ascii=False)},\n')
    return head + '  "words": [\n    ' + ",\n    ".join(items) + "\n  ]\n}\n"


def format_alignment(words, fmt: str, audio: str = "", transcript: str = "") -> str:
    if fmt == "json":
        return _to_json(words, audio, transcript)
    from types import SimpleNamespace

    from . import formats

    t = SimpleNamespace(words=words)  # the transcript writers only read .words
    if fmt == "ctm":
        return formats.to_ctm(t, Path(audio).stem or "utt")
    if fmt == "srt":
        return formats.to_srt(t)
    if fmt == "vtt":
        return formats.to_vtt(t)
    raise DataError(f"unknown alignment format {fmt!r}; use json, ctm, srt or vtt")


# ------------------------------------------------------------------------------ command
def _read_transcript(arg: str) -> str:
    if arg == "-":
        return sys.stdin.read()
    if arg.startswith("@") and len(arg) > 1:
        p = Path(arg[1:])
        try:
            return p.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise DataError(f"{p}: transcript file not found") from None
        except (OSError, UnicodeDecodeError) as e:
            raise DataError(f"{p}: cannot read transcript ({e})") from None
    return arg


def cmd_align(a) -> int:
    from .audio import load_audio
    from .model import load_model_dir
    from .utils import atomic_write_text, pick_device

    transcript = _read_transcript(a.transcript)
    model, tokenizer = load_model_dir(a.model, pick_device(a.device))
    transcript_ids(tokenizer, transcript)  # a bad transcript fails before the audio is read
    x = load_audio(a.audio, model.frontend.sample_rate)
    words = align(model, tokenizer, x, transcript, boundaries=a.boundaries, edge_quiet_s=a.edge_quiet)
    text = format_alignment(words, a.format, a.audio, tokenizer.normalize(transcript))
    if a.output:
        atomic_write_text(a.output, text)
    else:
        sys.stdout.write(text)
    return 0


def add_parser(subparsers):
    """Register ``ctcasr align`` on an argparse subparsers object; returns the parser."""
    s = subparsers.add_parser(
        "align", help="word and token times of a known transcript (forced alignment)",
        description="Find when each word of TRANSCRIPT is spoken in AUDIO (CTC forced alignment with "
        "torchaudio). Prints JSON (words with start_s/end_s/confidence and their tokens), CTM, SRT or VTT. "
        f"One call aligns up to about {MAX_ALIGN_BYTES / 1e9:.0f} GB of frames x CTC states (roughly a "
        "quarter of an hour of continuous speech); split longer recordings.")
    s.add_argument("audio", metavar="AUDIO", help="audio file (wav, flac, ogg, mp3, ...)")
    s.add_argument("transcript", metavar="TRANSCRIPT",
                   help="the words spoken; '-' reads them from stdin, @FILE from a UTF-8 file")
    s.add_argument("--model", default=None, help="model directory or shipped model name (default: digits)")
    s.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N (the alignment itself runs on CPU)")
    s.add_argument("--boundaries", choices=["speech", "tokens"], default="speech",
                   help="word edges: speech (default) snaps them to the audio's speech/pause edges between "
                   "the model's word delimiters; tokens reports the model's first/last letter frames as they are")
    s.add_argument("--format", choices=["json", "ctm", "srt", "vtt"], default="json", help="output format (default json)")
    from .cli import _add_edge_quiet_arg

    _add_edge_quiet_arg(s)
    s.add_argument("-o", "--output", help="file to write (default: stdout)")
    s.set_defaults(func=cmd_align)
    return s
