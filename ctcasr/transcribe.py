"""Transcriber: audio files or arrays -> Transcript (text + word timings in seconds).

    import ctcasr
    asr = ctcasr.Transcriber.load("digits")          # a shipped model name or a model dir
    t = asr.transcribe("call.wav")                    # or (array, sample_rate), or a list
    t.text, t.words, t.duration_s
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import torch

from .audio import input_time, kept_segments
from .decoding.timing import word_times
from .decoding.types import Hypothesis
from .errors import CTCASRError
from .longform import MARGIN_S, MAX_CORE_S, SEARCH_S, AudioSource, windows
from .model import load_model_dir
from .utils import pick_device


@dataclass
class Word:
    text: str
    start_s: float
    end_s: float
    confidence: float


@dataclass
class Transcript:
    text: str
    words: list = field(default_factory=list)
    duration_s: float = 0.0
    tokens: tuple = ()
    score: float = 0.0


class Transcriber:
    # Long-audio windowing (ctcasr.longform); attributes so tests and apps can change them.
    max_core_s = MAX_CORE_S
    search_s = SEARCH_S
    margin_s = MARGIN_S
    # A window whose loudest 100 ms is quieter than this (dBFS) holds no speech and gives no
    # words; -inf decodes everything. Models trained on speech only turned silence or faint
    # noise, which the front end's gain normalisation raises to speech level, into invented
    # words ("one one one ..." for 10 s of zeros; ~100 words in a minute-long pause of a
    # recording); models trained with non-speech examples (augment.nonspeech_prob, the
    # shipped digits model since 2026-11-27) write none, and the gate only saves their work.
    # Speech recorded at any usable level is far above -50 dBFS.
    silence_dbfs = -50.0
    # At most this many seconds of quiet go to the model before the first and after the last
    # loud frame of each input (or long-audio window), and a pause inside longer than twice
    # this is shortened to twice this (a frame is loud within ``loud_range_db`` of the
    # loudest 25 ms frame). None: the whole input. Why: gain normalisation and the utterance
    # mean (utterance_cmn) are computed over the whole input, so quiet around the speech
    # shifts every speech frame, and a model trained on TTS sentences (0-0.37 s of edge
    # silence, median 0.19 s, in the digits corpus; pauses of 0.15-1 s between the joined
    # pairs) has never heard that shift. With 1.5 s of digital silence before and after each
    # test utterance the digits model shipped on 2026-11-27 (afternoon) went from 2.1 to 7.4 % WER on clean and from
    # 4.8 to 28.8 % on noisy speech; see recipes/digits/README.md ("Quiet around the
    # speech") for what this gives. Word times stay in the input's own seconds.
    edge_quiet_s: Optional[float] = 0.3
    loud_range_db = 35.0

    def __init__(self, model, tokenizer, device, decoder: str = "greedy", beam_size: int = 32,
                 lm=None, lm_weight: float = 0.5, word_score: float = 1.0, hotwords: Optional[dict] = None):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.device = device
        self.sample_rate = model.frontend.sample_rate
        self.frame_shift_s = model.frame_shift_s
        tokens = tokenizer.decoder_tokens
        wd = tokenizer.word_delimiter
        self._delimiter_id = tokens.index(wd) if wd is not None else None
        if decoder == "greedy":
            from .decoding import GreedyDecoder

            self.decoder = GreedyDecoder(tokens, blank=0, word_delimiter=wd, input_type="log_probs")
        elif decoder == "beam":
            from .decoding import BeamSearchDecoder

            if hotwords:
                # in the model's own text form: "Taipei" for a lower-casing model is "taipei"
                norm = {}
                for w, v in hotwords.items():
                    n = tokenizer.normalize(w).strip()
                    if not n:
                        raise CTCASRError(f"hotword {w!r} is empty after the model's text normalisation")
                    norm[n] = max(v, norm.get(n, v))
                hotwords = norm

            self.decoder = BeamSearchDecoder(tokens, blank=0, beam_size=beam_size, word_delimiter=wd, lm=lm,
                                             lm_weight=lm_weight, word_score=word_score, hotwords=hotwords,
                                             input_type="log_probs")
        else:
            raise CTCASRError(f"unknown decoder {decoder!r}; use greedy or beam")

    @classmethod
    def load(cls, model=None, device: str = "auto", decoder: str = "auto", lm="default",
             **decoder_options) -> "Transcriber":
        """``model``: a model directory or shipped model name. ``decoder``: "greedy", "beam",
        or "auto" (beam search with the LM when there is one to use, else greedy: an LM is
        worth its cost; the shipped digits model's lm.arpa takes test WER from 4.1 % to 2.3 %).
        Beam options given to "auto" choose beam search even without an LM; an
        ``lm_weight`` without an LM is an error, and so is any beam option with "greedy".
        ``lm`` (beam decoder only): ``"default"`` uses the model directory's ``lm.arpa``
        when it has one, ``None`` or ``"none"`` decodes without LM, a path loads that ARPA
        file, an NGramLM is used as is. ``beam_size``, ``lm_weight`` and ``word_score``
        default to the model directory's ``decode.yaml`` (``ctcasr tune-lm --write``), else
        32, 0.5 and 1.0."""
        from .model import resolve_model_dir
        from .tune import read_decode_defaults

        dev = pick_device(device)
        m, tok = load_model_dir(model, dev)
        # Options given explicitly ask for beam search: "auto" without an LM would otherwise
        # have dropped a beam size or word score without a word.
        explicit = {k for k, v in decoder_options.items() if v is not None}
        if decoder in ("beam", "auto"):
            mdir = resolve_model_dir(model)
            decoder_options["lm"] = _resolve_lm(lm, mdir)
            if decoder_options["lm"] is None and "lm_weight" in explicit:
                raise CTCASRError(f"an LM weight was given, but there is no LM to weigh ({mdir} has no lm.arpa "
                                  f"and no other LM was named)" if lm == "default" else
                                  "an LM weight was given, but the LM is switched off")
            # Options not given (or given as None) come from the model directory's
            # decode.yaml (written by `ctcasr tune-lm`), else the built-in defaults.
            for k, v in read_decode_defaults(mdir).items():
                if decoder_options.get(k) is None:
                    decoder_options[k] = v
            if decoder == "auto":
                decoder = "beam" if decoder_options["lm"] is not None or explicit else "greedy"
        if decoder == "greedy":
            if explicit or lm not in ("default", None, "none"):
                given = sorted(explicit) + ([] if lm in ("default", None, "none") else ["lm"])
                raise CTCASRError(f"{', '.join(given)}: beam search settings, but the decoder is greedy")
            decoder_options = {}
        return cls(m, tok, dev, decoder=decoder, **decoder_options)

    # ------------------------------------------------------------------ public API
    def transcribe(self, audio, sample_rate: Optional[int] = None):
        """A path, an array (with ``sample_rate``), or a list of either -> Transcript(s).

        Any length: audio longer than one window (``max_core_s + margin_s``, 27 s by default)
        is decoded in windows cut at quiet points and stitched (ctcasr.longform), so memory
        stays bounded. A list is batched; the first input that fails raises its error (use
        ``transcribe_files`` to get an error per file instead)."""
        if isinstance(audio, (list, tuple)):
            results = self._transcribe_many([self._opener(a, sample_rate) for a in audio], batch_size=8)
            for r in results:
                if isinstance(r, Exception):
                    raise r
            return results
        r = self._transcribe_many([self._opener(audio, sample_rate)], batch_size=8)[0]
        if isinstance(r, Exception):
            raise r
        return r

    def transcribe_files(self, paths, batch_size: int = 8, progress: bool = False, on_result=None):
        """Transcribe many files; returns a list with a Transcript or the CTCASRError per path.

        ``on_result(index, result)`` is called as soon as each file is done (in the order
        they finish), so a caller can write outputs as it goes and lose nothing on a crash."""
        return self._transcribe_many([self._opener(p) for p in paths], batch_size, progress, on_result)

    def transcribe_utterances(self, utts, batch_size: int = 8, progress: bool = False, on_result=None):
        """Like transcribe_files for data.Utterance records (honours Kaldi segment offsets)."""
        return self._transcribe_many([self._utterance_opener(u) for u in utts], batch_size, progress, on_result)

    def _utterance_opener(self, u):
        """The opener of a data.Utterance: a Kaldi segment (or any offset) is read as that span."""
        seg = u.offset or u.extra.get("segment")
        return self._opener(u.audio_filepath, offset_s=u.offset, duration_s=u.duration if seg else None)

    # ------------------------------------------------------------------ internals
    def _opener(self, audio, sample_rate=None, offset_s: float = 0.0, duration_s=None):
        """A function that opens ``audio`` as an AudioSource. Files are opened when needed
        (twice: header for the duration, then to read), never all at once, so thousands of
        inputs do not hold thousands of file handles."""
        if isinstance(audio, (str, os.PathLike)):
            return lambda: AudioSource(audio, self.sample_rate, offset_s=offset_s, duration_s=duration_s)
        if isinstance(audio, torch.Tensor):
            audio = audio.detach().cpu().numpy()
        if not isinstance(audio, np.ndarray):
            raise CTCASRError(f"cannot transcribe a {type(audio).__name__}: pass a path, or an array "
                              "with sample_rate=")
        if sample_rate is None:
            raise CTCASRError("pass sample_rate= with an audio array")
        cache = []

        def open_array():
            if not cache:
                cache.append(AudioSource(audio, self.sample_rate, input_rate=sample_rate))
            return cache[0]
        return open_array

    def _transcribe_many(self, openers, batch_size: int, progress: bool = False, on_result=None):
        if batch_size < 1:
            raise CTCASRError(f"batch size must be at least 1, got {batch_size}")
        results: list = [None] * len(openers)

        def done(i, r):
            results[i] = r
            if bar is not None:
                bar.update(1)
            if on_result is not None:
                on_result(i, r)

        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(openers), desc="transcribing", unit="file", leave=False)
        try:
            durs = {}
            for i, op in enumerate(openers):
                try:
                    with op() as src:
                        durs[i] = src.duration_s
                except CTCASRError as e:
                    done(i, e)
            one_window = self.max_core_s + self.margin_s
            short = sorted((i for i in durs if durs[i] <= one_window), key=durs.get)
            # Sorted by duration so batches pad little; audio is read one batch at a time so
            # memory does not grow with the number of files.
            for s in range(0, len(short), batch_size):
                idx, waves = [], []
                for i in short[s: s + batch_size]:
                    try:
                        with openers[i]() as src:
                            waves.append(src.read())
                        idx.append(i)
                    except CTCASRError as e:
                        done(i, e)
                if idx:
                    for i, (hyp, lp, dur, segs, speech) in zip(idx, self._decode_windows(waves)):
                        done(i, self._to_transcript(hyp, lp, dur, segs, speech))
            for i in (i for i in durs if durs[i] > one_window):
                try:
                    with openers[i]() as src:
                        r = self._transcribe_long(src, batch_size)
                except CTCASRError as e:
                    r = e
                done(i, r)
        finally:
            if bar is not None:
                bar.close()
        return results

    def _transcribe_long(self, src: AudioSource, batch_size: int):
        """Decode ``src`` window by window (batched) and keep each window's core words."""
        words, tokens, score = [], [], 0.0
        pending: list = []

        def flush():
            nonlocal score
            for w, (hyp, lp, dur, segs, speech) in zip(pending, self._decode_windows([w.audio for w in pending])):
                t = self._to_transcript(hyp, lp, dur, segs, speech)
                score += t.score
                for word in t.words:  # t's times are seconds from the window's start
                    mid = w.start_s + (word.start_s + word.end_s) / 2
                    if w.core_start_s <= mid < w.core_end_s:
                        words.append(Word(word.text, round(word.start_s + w.start_s, 3),
                                          round(word.end_s + w.start_s, 3), word.confidence))
                fs = self.frame_shift_s
                tokens.extend(k for k, f in zip(hyp.tokens, hyp.timesteps)
                              if w.core_start_s <= w.start_s + self._input_time(segs, (f + 0.5) * fs) < w.core_end_s)
            pending.clear()

        for w in windows(src, self.max_core_s, self.search_s, self.margin_s):
            pending.append(w)
            if len(pending) >= batch_size:
                flush()
        if pending:
            flush()
        joiner = " " if self.tokenizer.word_delimiter is not None else ""
        return Transcript(joiner.join(w.text for w in words), words, round(src.duration_s, 3), tuple(tokens), score)

    @torch.no_grad()
    def _decode_windows(self, waves):
        """Waveforms -> [(best Hypothesis, log_probs [T,V], duration_s, segments)], one model
        batch: the model hears the wave's ``segments`` ([(start, end)] samples, see
        ``edge_quiet_s``) one after the other; ``_input_time`` maps its times back.
        (Windows without speech, see ``silence_dbfs``, skip the model: no words.)"""
        todo = [i for i, w in enumerate(waves) if not self._is_silent(w)]
        segs = {i: self._kept_segments(waves[i]) for i in todo}
        audio = {i: np.concatenate([waves[i][a:b] for a, b in segs[i]]) for i in todo}
        heard = dict(zip(todo, self._run_model([audio[i] for i in todo]) if todo else []))
        nothing = np.zeros((0, len(self.tokenizer.decoder_tokens)), np.float32)
        return [(*heard[i], len(w) / self.sample_rate, segs[i], self._speech(audio[i], len(heard[i][1]))) if i in heard
                else (_NOTHING, nothing, len(w) / self.sample_rate, [(0, len(w))], None) for i, w in enumerate(waves)]

    def _speech(self, heard: np.ndarray, num_frames: int):
        """Energy speech/pause flag per output frame of what the model heard (for word ends,
        see ``_to_transcript``); None for models without a word delimiter."""
        if self._delimiter_id is None or num_frames == 0:
            return None
        from .align import speech_frames

        return speech_frames(heard, num_frames, round(self.frame_shift_s * self.sample_rate))

    def _kept_segments(self, w: np.ndarray):
        """The parts of ``w`` the model hears (``ctcasr.audio.kept_segments``)."""
        return kept_segments(w, self.sample_rate, self.edge_quiet_s, self.loud_range_db)

    def _input_time(self, segs, t: float, end: bool = False) -> float:
        """Seconds in what the model heard -> seconds in the input (``ctcasr.audio.input_time``)."""
        return input_time(segs, t, self.sample_rate, end)

    def _is_silent(self, w: np.ndarray) -> bool:
        if not self.silence_dbfs > -math.inf:
            return False
        n = max(1, int(0.1 * self.sample_rate))
        k = len(w) // n
        blocks = np.asarray(w[: k * n], np.float64).reshape(k, n) if k else np.asarray(w, np.float64)[None]
        loudest = float((blocks * blocks).mean(axis=1).max()) if blocks.size else 0.0
        return loudest < 10.0 ** (self.silence_dbfs / 10.0)

    def _run_model(self, waves):
        lens = torch.tensor([len(w) for w in waves])
        batch = torch.zeros(len(waves), int(lens.max()))
        for i, w in enumerate(waves):
            batch[i, : len(w)] = torch.from_numpy(np.ascontiguousarray(w))
        lp, olen = self.model(batch.to(self.device), lens.to(self.device))
        lp = lp.float().cpu().numpy()
        olen = olen.cpu().numpy()
        return [(hyps[0], lp[b, : olen[b]]) for b, hyps in enumerate(self.decoder(lp, olen))]

    def _to_transcript(self, hyp, lp, duration_s, segments=None, speech=None):
        # Word times come from decoding.timing.word_times, not from the tokens' spike frames:
        # a BiLSTM-CTC model emits a word's first letters early (right after the previous
        # space, or at frame 0) and its space when the sound ends, so spike frames are
        # 100-200 ms off; word_times moves the bridged letters and ends words at their space
        # (median error ~30 ms on held-out voices, tests/test_word_timing.py). Positions are
        # frame centres: seconds = first_frame_centre_s + position * frame_shift_s.
        #
        # Where the space goes is the model's choice, not CTC's: a retrained digits model put
        # it just before the next word, after the pause, and word ends came out 210 ms late
        # (median). With ``speech`` (energy speech/pause per frame of what the model heard)
        # word_times ends a word where the speech in its span ends when a pause of 90 ms or
        # more follows it there; without a clear pause (babble, continuous speech) nothing
        # changes.
        fs = self.frame_shift_s
        t0 = self.model.frontend.first_frame_centre_s
        segments = segments or [(0, int(round(duration_s * self.sample_rate)))]
        spans = word_times(lp, hyp, blank=0, word_delimiter_id=self._delimiter_id, speech=speech,
                           speech_offset=t0 / fs, min_pause=max(1, round(0.09 / fs)),
                           max_closure=round(0.12 / fs)) if hyp.words else []
        words = []
        for (text, start, end), (s, e) in zip(hyp.words, spans):
            # Confidence: geometric mean of the emitted tokens' posteriors at their frames.
            frames = [t for t in hyp.timesteps if start <= t < end]
            toks = [tok for tok, t in zip(hyp.tokens, hyp.timesteps) if start <= t < end]
            conf = float(np.exp(np.mean([lp[t, k] for t, k in zip(frames, toks)]))) if frames else 0.0
            a = min(self._input_time(segments, t0 + s * fs), duration_s)
            b = min(self._input_time(segments, t0 + e * fs, end=True), duration_s)
            words.append(Word(text, round(a, 3), round(max(a, b), 3), round(conf, 4)))
        return Transcript(hyp.text, words, round(duration_s, 3), tuple(hyp.tokens),
                          float(hyp.score) if math.isfinite(hyp.score) else float("-inf"))


_NOTHING = Hypothesis(tokens=(), text="", timesteps=(), words=[], score=0.0, am_score=0.0, lm_score=0.0)


def _resolve_lm(lm, model_dir):
    from .decoding import NGramLM

    if lm is None or (isinstance(lm, str) and lm.lower() == "none"):
        return None
    if isinstance(lm, str) and lm == "default":
        p = model_dir / "lm.arpa"
        return NGramLM.from_arpa(p) if p.is_file() else None
    if isinstance(lm, NGramLM):
        return lm
    return NGramLM.from_arpa(lm)
