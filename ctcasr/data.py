"""Training/evaluation data: manifests, Kaldi data dirs, length-bucketed batches.

Manifests are JSON lines in the NeMo style ``{"audio_filepath", "duration", "text"}``;
relative paths resolve against the manifest's own folder, so a corpus directory can be
moved or shared. Kaldi data dirs (``wav.scp``, ``text``, optional ``segments``) are read
too, but a ``wav.scp`` entry that is a shell pipeline (``cmd |``) is refused: running
commands found in data files is how a shared corpus would take over a machine.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from .errors import AudioError, DataError
from .schema import AUGMENT

log = logging.getLogger(__name__)


@dataclass
class Utterance:
    id: str
    audio_filepath: str
    duration: float
    text: str
    offset: float = 0.0  # seconds into the file (Kaldi segments)
    extra: dict = field(default_factory=dict)


# ----------------------------------------------------------------------------- readers
def read_manifest(path, require_text: bool = True) -> list:
    """Read a JSON-lines manifest. Malformed lines raise DataError naming file:line.

    ``require_text=False`` (transcription input) accepts lines without ``text``."""
    path = Path(path)
    if path.is_dir():
        return read_kaldi_dir(path)
    if not path.is_file():
        raise DataError(f"{path}: manifest not found")
    base = path.resolve().parent
    utts, seen = [], {}
    # utf-8-sig: a byte-order mark (editors on Windows write one) is not part of line 1.
    with open(path, encoding="utf-8-sig", errors="strict") as f:
        try:
            # JSON lines are separated by "\n" only: splitlines() would also cut at U+2028,
            # U+0085 etc., which json.dumps(ensure_ascii=False) leaves raw inside strings.
            lines = f.read().split("\n")
        except UnicodeDecodeError as e:
            raise DataError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}:{n}: not a JSON object ({e.msg})") from None
        except RecursionError:
            raise DataError(f"{path}:{n}: not a manifest record (JSON nested too deeply)") from None
        except ValueError as e:  # e.g. an integer of more than 4300 digits
            raise DataError(f"{path}:{n}: not a manifest record ({e})") from None
        if not isinstance(rec, dict):
            raise DataError(f"{path}:{n}: expected a JSON object, found {type(rec).__name__}")
        if not require_text:
            rec.setdefault("text", "")
        missing = [k for k in ("audio_filepath", "text") if k not in rec]
        if missing:
            raise DataError(f"{path}:{n}: missing key(s) {', '.join(missing)}")
        if not isinstance(rec["text"], str) or not isinstance(rec["audio_filepath"], str):
            raise DataError(f"{path}:{n}: audio_filepath and text must be strings")
        try:
            # JSON's "\ud800" escape decodes to a lone surrogate, which no file can hold:
            # writing it back (a filtered manifest, a transcript) would fail far from here.
            rec["text"].encode("utf-8"), rec["audio_filepath"].encode("utf-8")
        except UnicodeEncodeError:
            raise DataError(f"{path}:{n}: audio_filepath or text holds an unpaired surrogate (a \\udXXX escape)") from None
        audio = rec["audio_filepath"]
        if not audio.strip():
            # An empty path would resolve to the manifest's own folder.
            raise DataError(f"{path}:{n}: audio_filepath is empty")
        audio = audio if os.path.isabs(audio) else str(base / audio)
        try:
            if isinstance(rec.get("duration"), bool):
                raise TypeError  # float(true) is 1.0: a bool is a mistake, not a duration
            dur = float(rec["duration"]) if "duration" in rec else None
        except (TypeError, ValueError, OverflowError):
            raise DataError(f"{path}:{n}: duration {rec['duration']!r} is not a number") from None
        if dur is None:
            from .audio import audio_duration

            try:
                dur = audio_duration(audio)
            except AudioError:
                dur = 0.0  # unreadable audio is skipped (and counted) when the data is filtered
        if not (dur >= 0 and math.isfinite(dur)):
            raise DataError(f"{path}:{n}: duration {dur!r} must be a non-negative number")
        try:
            offset = float(rec.get("offset") or 0.0)
        except (TypeError, ValueError, OverflowError):
            raise DataError(f"{path}:{n}: offset {rec['offset']!r} is not a number") from None
        if not (offset >= 0 and math.isfinite(offset)):
            raise DataError(f"{path}:{n}: offset {offset!r} must be a non-negative number of seconds")
        # "is not None", not "or": an id of 0 is an id.
        uid = next((rec[k] for k in ("id", "utt_id") if rec.get(k) not in (None, "")), f"{path.stem}-{n:07d}")
        uid = str(uid)
        if uid in seen:
            raise DataError(f"{path}:{n}: utterance id {uid!r} already used on line {seen[uid]}")
        seen[uid] = n
        extra = {k: v for k, v in rec.items() if k not in ("audio_filepath", "duration", "text", "offset", "id")}
        if rec.get("offset") is not None and offset == 0:
            # An offset makes the line a segment of its file (NeMo's manifests): read
            # `duration` seconds from there, not the whole file. A non-zero offset says so
            # by itself; 0.0 needs the mark (as Kaldi segments starting at 0 get it).
            extra.setdefault("segment", True)
        utts.append(Utterance(uid, audio, dur, rec["text"], offset, extra))
    return utts


def _read_table(path: Path, min_fields: int) -> list:
    rows, seen = [], {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=min_fields - 1) if min_fields == 2 else line.split()
        if len(parts) < min_fields:
            if min_fields == 2 and len(parts) == 1 and path.name == "text":
                parts = [parts[0], ""]
            else:
                raise DataError(f"{path}:{n}: expected at least {min_fields} fields")
        if parts[0] in seen:
            raise DataError(f"{path}:{n}: id {parts[0]!r} already used on line {seen[parts[0]]}")
        seen[parts[0]] = n
        rows.append((n, parts))
    return rows


def read_kaldi_dir(d) -> list:
    """Read a Kaldi data dir (wav.scp + text [+ segments]) into Utterances."""
    from .audio import audio_duration

    d = Path(d)
    for f in ("wav.scp", "text"):
        if not (d / f).is_file():
            raise DataError(f"{d}: Kaldi data dir has no {f}")
    wavs = {}
    for n, (uid, rest) in _read_table(d / "wav.scp", 2):
        rest = rest.strip()
        if rest.endswith("|"):
            raise DataError(
                f"{d / 'wav.scp'}:{n}: entry {uid!r} is a shell pipeline; ctcasr does not run "
                "commands from data files — convert the audio to files first"
            )
        p = rest if os.path.isabs(rest) else str((d / rest).resolve())
        wavs[uid] = p
    texts = {uid: t for _, (uid, t) in _read_table(d / "text", 2)}
    utts, no_text = [], 0
    if (d / "segments").is_file():
        for n, parts in _read_table(d / "segments", 4):
            uid, rec, start, end = parts[:4]
            if rec not in wavs:
                raise DataError(f"{d / 'segments'}:{n}: recording {rec!r} not in wav.scp")
            try:
                s, e = float(start), float(end)
            except ValueError:
                raise DataError(f"{d / 'segments'}:{n}: start/end are not numbers") from None
            if uid not in texts:
                no_text += 1
                continue
            # Marked as a segment: one starting at 0.0 has no offset to say it is not the
            # whole recording, and readers must still cut it to its duration.
            utts.append(Utterance(uid, wavs[rec], max(0.0, e - s), texts[uid], s, {"segment": True}))
    else:
        for uid, p in wavs.items():
            if uid not in texts:
                no_text += 1
                continue
            try:
                dur = audio_duration(p)
            except AudioError:
                dur = 0.0
            utts.append(Utterance(uid, p, dur, texts[uid]))
    if no_text:
        # Kaldi dirs often hold more audio than transcripts; fine, but never silently.
        log.warning("%s: %d utterance(s) have no line in text; skipped", d, no_text)
    return utts


def write_manifest(utts, path) -> None:
    """Write Utterances as a JSON-lines manifest (paths relative to its folder), atomically."""
    from .utils import atomic_open

    path = Path(path)
    base = path.resolve().parent
    with atomic_open(path) as f:
        for u in utts:
            p = Path(u.audio_filepath).resolve()
            try:
                p = p.relative_to(base)
            except ValueError:
                pass
            rec = {"id": u.id, "audio_filepath": str(p), "duration": round(u.duration, 4), "text": u.text}
            if u.offset:
                rec["offset"] = u.offset
            rec.update(u.extra)
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")


# ----------------------------------------------------------------------------- filtering
def load_utterance_audio(u: Utterance, sample_rate: int) -> np.ndarray:
    """The utterance's own audio: its file, cut to the segment when it is one (an offset,
    or the segment mark of one starting at 0.0). AudioError when unreadable."""
    from .audio import load_audio

    x = load_audio(u.audio_filepath, sample_rate)
    if u.offset or u.extra.get("segment"):
        s = int(round(u.offset * sample_rate))
        x = x[s : s + int(round(u.duration * sample_rate))]
    return x


def ctc_min_frames(ids) -> int:
    """Fewest frames CTC needs for a label sequence: one per label plus a blank between
    each pair of equal neighbours (好棒棒 needs 4: 好 棒 φ 棒)."""
    return len(ids) + sum(1 for a, b in zip(ids, ids[1:]) if a == b)


def prepare_utterances(utts, tokenizer, frames_for_seconds, max_duration: float = 60.0, min_duration: float = 0.05,
                       log_skips: bool = True):
    """Tokenize and filter; returns ``(kept [(Utterance, ids)], skipped Counter)``.

    ``frames_for_seconds(duration)`` gives the model's output frames for an utterance (the
    caller accounts for speed perturbation, which shortens audio).

    Skips are counted by reason and logged once, never silent: unknown characters, empty
    transcripts, audio too short/long, transcripts longer than the subsampled audio allows.
    """
    kept, skipped = [], Counter()
    examples = {}
    for u in utts:
        reason = None
        if u.duration < min_duration:
            reason = "audio shorter than %.2fs or unreadable" % min_duration
        elif u.duration > max_duration:
            reason = "audio longer than %.0fs" % max_duration
        else:
            bad = tokenizer.unknown_chars(u.text)
            if bad:
                reason = "unknown characters"
                examples.setdefault(reason, f"{u.id}: {''.join(bad)!r}")
            else:
                ids = tokenizer.encode(u.text)
                if not ids:
                    reason = "empty transcript"
                elif ctc_min_frames(ids) > frames_for_seconds(u.duration):
                    reason = "transcript longer than the audio allows"
        if reason:
            skipped[reason] += 1
            examples.setdefault(reason, u.id)
            continue
        kept.append((u, ids))
    for reason, count in skipped.items() if log_skips else ():
        log.warning("skipped %d utterance(s): %s (e.g. %s)", count, reason, examples[reason])
    return kept, skipped


# ----------------------------------------------------------------------------- dataset
class AudioDataset:
    """Index -> (waveform float32 [n], token ids, utt id); audio loaded on demand.

    ``augment`` (a dict, training only) draws per utterance: gain, additive noise at an
    SNR, reverberation, a telephone channel (functions from ctcasr.synth); speed
    perturbation per utterance when items are fetched one by one, per batch through
    ``__getitems__`` (see there)."""

    def __init__(self, items, sample_rate: int = 16000, augment: Optional[dict] = None, seed: int = 0, cache: bool = False,
                 join_ids: Sequence[int] = ()):
        self.items = items
        self.join_ids = list(join_ids)  # token ids between two joined utterances (the word delimiter)
        self.sample_rate = sample_rate
        self.augment = augment or {}
        self.seed = seed
        self.epoch = 0
        self._cache = {} if cache else None
        self._bank = self._bank_epoch = None

    def __len__(self):
        return len(self.items)

    def durations(self):
        speeds = self.augment.get("speeds") or [1.0]
        return [u.duration / min(speeds) for u, _ in self.items]

    def _load(self, u: Utterance):
        if self._cache is not None and u.id in self._cache:
            return self._cache[u.id]
        x = load_utterance_audio(u, self.sample_rate)
        if u.text.strip() and not np.abs(x).max(initial=0.0) >= 1e-4:
            # A transcript for silence (peak below -80 dBFS: digital zeros, a dead channel)
            # would teach the model to write words for silence; skipped like unreadable audio.
            where = f" at {u.offset:g} s" if u.offset else ""
            raise AudioError(f"{u.audio_filepath}{where}: silent (peak below -80 dBFS) but transcribed")
        if self._cache is not None:
            self._cache[u.id] = x
        return x

    def __getitem__(self, i):
        return self._item(i)

    def _item(self, i, speed=None, pad=None):
        u, ids = self.items[i]
        try:
            x = self._load(u)
        except AudioError as e:
            log.warning("skipping %s: %s", u.id, e)
            return None
        if self.augment:
            p = self.augment.get("nonspeech_prob", 0.0)
            # Its own random stream, so that switching it on leaves every other draw as it was.
            r = np.random.default_rng((self.seed, self.epoch, i, 3)) if p else None
            if r is not None and r.random() < p:
                n = int(round(len(x) / (speed or 1.0)))  # the length speed perturbation would give
                return nonspeech(n, self.sample_rate, r, self.augment, self._noise_bank()), [], f"{u.id}:nonspeech"
            x = self._augment(x, i, np.random.default_rng((self.seed, self.epoch, i)), speed, pad)
        return x, ids, u.id

    def _augment(self, x, i, rng, speed=None, pad=None):
        if rng.random() < self.augment.get("edge_trim_prob", 0.0):
            x = trim_edges(x, rng)
        if pad is not None:
            x = pad_quiet(x, pad, self.sample_rate, np.random.default_rng((self.seed, self.epoch, i, 5)))
        return apply_augmentation(x, self.sample_rate, self.augment, rng, others=self._other_speech(i, rng),
                                  bank=self._noise_bank(), speed=speed)

    def _noise_bank(self):
        """This epoch's noise bank (see NoiseBank), built on first use in each process from
        (seed, epoch) alone, so every data worker holds the same one; None when switched off."""
        if not self.augment.get("noise_bank", True) or not self.augment.get("noise_prob", 0.0):
            return None
        if self._bank_epoch != self.epoch:
            from .synth import NOISE_KINDS

            kinds = [k for k in self.augment.get("noise_kinds", NOISE_KINDS) if k != "speech"]
            self._bank = NoiseBank(kinds, self.sample_rate, np.random.default_rng((self.seed, self.epoch, 7919)))
            self._bank_epoch = self.epoch
        return self._bank

    def __getitems__(self, indices):
        """A whole batch (torch's DataLoader calls this when it exists). With
        ``concat_prob``, that share of *batches* is made of pairs: two utterances of the
        batch joined after a pause of ``concat_pause_s`` seconds (one length per batch),
        transcripts joined by the word delimiter, then augmented as one. The speed factor
        is drawn once per batch.

        Why: every synthesized utterance is one sentence spoken without pauses, so a model
        trained on them alone has never heard silence *between* words; on long recordings
        (a window of a meeting holds many sentences and pauses) it then drops the word
        delimiter across pauses ("nine oh" -> "nineoh") and the word after one. Why whole
        batches: the sampler buckets by length, so pairing inside one batch doubles every
        item's length and halves their number, and costs no padding, where joining single
        items to random partners padded every batch to twice its length (2.4x slower
        epochs, measured)."""
        epoch = getattr(indices, "epoch", None)
        if epoch is not None:  # the batch's own epoch (EpochBatch), in whatever process this runs
            self.epoch = epoch
        if not self.augment:
            return [self[i] for i in indices]
        p = self.augment.get("concat_prob", 0.0)
        indices = list(indices)
        rng = np.random.default_rng((self.seed, self.epoch, indices[0] if indices else 0, len(indices), 1))
        joined = len(indices) >= 2 and p and rng.random() < p
        # One speed factor (and one pause) for the whole batch. The sampler groups
        # utterances of similar length; a factor drawn per utterance (0.9 makes one 11 %
        # longer, 1.1 another 9 % shorter) would pad nearly every batch to its longest
        # item at 0.9, ~10 % of the frames the BiLSTM runs over being padding. Each
        # utterance still meets every factor over the epochs.
        speed = float(rng.choice(self.augment.get("speeds") or [1.0]))
        pad = None
        if self.augment.get("pad_prob", 0.0):
            # Its own stream, so that switching it on leaves every other draw as it was; one
            # pair of lengths per batch, so that the batch pads no item to another's length.
            r = np.random.default_rng((self.seed, self.epoch, indices[0] if indices else 0, len(indices), 5))
            if r.random() < self.augment["pad_prob"]:
                lo, hi = self.augment.get("pad_s", (0.3, 1.5))
                pad = (float(r.uniform(lo, hi)), float(r.uniform(lo, hi)))
        if not joined:
            return [self._item(i, speed, pad) for i in indices]
        lo, hi = self.augment.get("concat_pause_s", (0.15, 1.0))
        gap = np.zeros(int(rng.uniform(lo, hi) * self.sample_rate), np.float32)
        out = []
        for k in range(0, len(indices) - 1, 2):
            a, b = indices[k], indices[k + 1]
            (ua, ia), (ub, ib) = self.items[a], self.items[b]
            try:
                xa, xb = self._load(ua), self._load(ub)
            except AudioError:
                out += [self._item(a, speed, pad), self._item(b, speed, pad)]  # the unreadable one is logged and dropped there
                continue
            r = np.random.default_rng((self.seed, self.epoch, a, b))
            x = self._augment(np.concatenate([xa, gap, xb]), a, r, speed, pad)
            out.append((x, list(ia) + self.join_ids + list(ib), f"{ua.id}+{ub.id}"))
        if len(indices) % 2:
            out.append(self._item(indices[-1], speed, pad))
        return out

    def _other_speech(self, i, rng):
        """A callable giving random other utterances of this set (for 'speech' babble)."""
        def draw():
            for _ in range(4):
                j = int(rng.integers(len(self.items)))
                if j != i or len(self.items) == 1:
                    try:
                        return self._load(self.items[j][0])
                    except AudioError:
                        continue
            return None
        return draw


AUGMENT_KEYS = set(AUGMENT)  # the keys ctcasr.schema has a rule for


class NoiseBank:
    """Noise made once per epoch and cut from for every utterance (``augment.noise_bank``,
    default on): per kind, ``clips`` clips of ``clip_s`` seconds; an utterance gets a random
    clip at a random offset (looped if longer), at its own SNR.

    Why: making fresh noise per utterance (FFT-shaped coloured noise, the synthetic babble of
    several harmonic talkers) was 3.1 of the 6.9 CPU seconds a digits epoch's augmentation
    took, in a data worker that shares the two cores with the training step. A bank built
    once per epoch costs about 0.2 s and gives each epoch new noise, as MUSAN-style noise
    corpora in Kaldi/ESPnet recipes do with a fixed set. With 4 babble clips of 15 s an
    epoch hears 4 different babble scenes (3-7 talkers each) at thousands of offsets
    instead of a fresh scene per utterance; coloured noise is stationary, so cutting it is
    the same as making it."""

    def __init__(self, kinds, sr: int, rng, clips: int = 4, clip_s: float = 15.0):
        from . import synth

        n = int(clip_s * sr)
        self.clips = {k: [synth.make_noise(k, n, rng, sr) for _ in range(clips)] for k in dict.fromkeys(kinds)}

    def draw(self, kind: str, n: int, rng) -> Optional[np.ndarray]:
        """``n`` samples of ``kind`` noise (None if the bank has no such kind)."""
        from . import synth

        clips = self.clips.get(kind)
        if not clips:
            return None
        return synth.fit_length(clips[int(rng.integers(len(clips)))], n, rng)


def trim_edges(x, rng, threshold: float = 0.01):
    """Cut a random part of the leading and of the trailing silence (below ``threshold`` of
    the peak). Why: TTS utterances always start and end with silence, real audio (a window
    cut out of a long file, a clip trimmed by an app) often starts in the middle of speech;
    a model that never saw that loses the first letters ("oh zero" -> "h zero")."""
    a = np.abs(x)
    loud = np.flatnonzero(a > threshold * max(float(a.max()), 1e-6))
    if loud.size == 0:
        return x
    start = int(rng.integers(0, loud[0] + 1))
    end = len(x) - int(rng.integers(0, len(x) - loud[-1]))
    return x[start:end]


def pad_quiet(x, pad, sr: int, rng) -> np.ndarray:
    """``x`` with ``pad = (lead_s, trail_s)`` seconds of quiet before and after it
    (``augment.pad_prob``, ``pad_s``): digital silence, or white or pink noise at -90 to
    -50 dBFS RMS, each side drawn on its own. It is added before the other waveform
    augmentations, so noise and reverberation drawn for the item cover it too.

    Why: a recording holds far more silence around the speech than a TTS sentence does
    (someone presses record, pauses, speaks, pauses), and gain normalisation and the
    utterance mean see it. The digits model shipped on 2026-11-27, never trained on it,
    went from 2.1 to 7.4 % WER on clean test utterances with 1.5 s of digital silence
    before and after each, and from 4.8 to 28.8 % on noisy ones (their noise then starts
    and stops with the speech)."""
    from . import synth

    parts = []
    for sec in pad:
        n = int(round(sec * sr))
        if rng.random() < 0.5:
            y = np.zeros(n, np.float32)
        else:
            y = synth.make_noise(str(rng.choice(["white", "pink"])), n, rng, sr).astype(np.float64)
            rms = float(np.sqrt(np.mean(np.square(y)))) if n else 0.0
            level = 10 ** (rng.uniform(-90.0, -50.0) / 20)
            y = (y * (level / rms) if rms > 0 else y).astype(np.float32)
        parts.append(y)
    return np.concatenate([parts[0], np.asarray(x, np.float32), parts[1]])


AUGMENT_NOISE_KINDS = ("white", "pink", "brown", "babble", "speech")


def check_augment_config(cfg: dict) -> dict:
    """Reject unknown keys and noise kinds up front: a typo would otherwise silently turn an
    augmentation off for a whole training run."""
    from .errors import ConfigError

    unknown = sorted(set(cfg) - AUGMENT_KEYS)
    if unknown:
        raise ConfigError(f"train.augment: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(AUGMENT_KEYS))}")
    bad = sorted(set(cfg.get("noise_kinds") or []) - set(AUGMENT_NOISE_KINDS))
    if bad:
        raise ConfigError(f"train.augment.noise_kinds: unknown {', '.join(bad)}; known: {', '.join(AUGMENT_NOISE_KINDS)}")
    return cfg


def nonspeech(n: int, sr: int, rng, cfg: dict, bank=None) -> np.ndarray:
    """``n`` samples without speech, for a training item whose transcript is empty
    (``augment.nonspeech_prob``): white, pink or brown noise (those of ``noise_kinds``,
    else all three) or mains hum (50/60 Hz and harmonics), at an RMS level drawn from
    ``nonspeech_dbfs`` (default -75...-15 dBFS); in a quarter of them a stretch of 20-60 %
    is digital silence.

    Why: a model trained only on transcribed speech has never been asked to write nothing.
    The front end's gain normalisation (and per-utterance mean normalisation) brings any
    input, however quiet, to speech-like levels, and the digits model shipped until
    2026-11-27 wrote strings of digits for 4 s of white noise at -40 dBFS, brown noise at
    -20 or a 50 Hz hum. Kaldi and ESPnet recipes
    get such examples from the silences and noise segments of real corpora; TTS corpora
    have none."""
    from . import synth

    # Stationary noise only: babble (synthetic harmonic talkers, or "speech" made of real
    # utterances) sounds like voices, and a model taught to write nothing for voices may
    # drop the words of an unfamiliar real one.
    kinds = [k for k in cfg.get("noise_kinds", synth.NOISE_KINDS) if k in ("white", "pink", "brown")]
    kind = str(rng.choice((kinds or ["white", "pink", "brown"]) + ["hum"]))
    if kind == "hum":
        t = np.arange(n) / sr
        f0 = float(rng.choice([50.0, 60.0])) * float(rng.uniform(0.99, 1.01))
        y = sum(rng.uniform(0.0, 1.0) / k * np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 2 * np.pi)) for k in range(1, 6))
        y = y + 0.01 * synth.make_noise("white", n, rng, sr)  # no recording chain is noiseless
    else:
        y = bank.draw(kind, n, rng) if bank is not None else None
        y = synth.make_noise(kind, n, rng, sr) if y is None else y
    y = np.asarray(y, np.float64)
    rms = float(np.sqrt(np.mean(np.square(y)))) if n else 0.0
    lo, hi = cfg.get("nonspeech_dbfs", (-75.0, -15.0))
    if rms > 0:
        y = y * (10 ** (rng.uniform(lo, hi) / 20) / rms)
    if n and rng.random() < 0.25:
        m = int(n * rng.uniform(0.2, 0.6))
        a = int(rng.integers(0, n - m + 1))
        y[a:a + m] = 0.0
    return np.clip(y, -1.0, 1.0).astype(np.float32)


def speech_babble(n: int, others, rng, talkers=(3, 6)) -> Optional[np.ndarray]:
    """Babble from real utterances of the training set: ``talkers`` of them, each at unit
    RMS, looped/cropped to ``n`` samples at random offsets and summed. Unlike the synthetic
    harmonic babble, this has the spectra, formant motion and pauses of actual speech, which
    is the interference a digits model meets in the wild (others talking nearby)."""
    from . import synth

    k = int(rng.integers(talkers[0], talkers[1] + 1))
    mix = np.zeros(n, np.float64)
    got = 0
    for _ in range(k):
        y = others()
        if y is None or len(y) == 0:
            continue
        rms = float(np.sqrt(np.mean(np.square(y, dtype=np.float64))))
        if rms <= 0:
            continue
        mix += synth.fit_length(y / rms, n, rng)
        got += 1
    return mix.astype(np.float32) if got else None


def apply_augmentation(x, sr, cfg, rng, others=None, bank=None, speed=None):
    """On-the-fly waveform augmentation (training only); see AudioDataset. ``others``: a
    callable returning a random other training utterance, for the 'speech' noise kind;
    ``bank``: a NoiseBank to cut the other kinds from (else they are made per call);
    ``speed``: the speed factor to use (else one of ``cfg['speeds']`` is drawn)."""
    from . import synth

    f = float(rng.choice(cfg.get("speeds") or [1.0])) if speed is None else float(speed)
    if f != 1.0:
        x = synth.speed_perturb(x, sr, f)
    if rng.random() < cfg.get("reverb_prob", 0.0):
        x = synth.reverberate(x, sr, float(rng.uniform(*cfg.get("rt60", (0.2, 0.7)))), rng)
    if rng.random() < cfg.get("noise_prob", 0.0):
        kinds = cfg.get("noise_kinds", synth.NOISE_KINDS)
        kind = str(rng.choice(kinds))
        snr = float(rng.uniform(*cfg.get("snr_db", (5, 30))))
        noise = None
        if kind == "speech":
            noise = speech_babble(len(x), others, rng, tuple(cfg.get("babble_talkers", (3, 6)))) if others else None
            kind = "babble" if noise is None else kind   # no other utterances: synthetic babble
        if noise is None and bank is not None:
            noise = bank.draw(kind, len(x), rng)
        x = synth.add_noise(x, snr, rng, kind=kind, sr=sr, noise=noise)
    if rng.random() < cfg.get("telephone_prob", 0.0):
        # Handsets, networks and codecs differ in pass band and companding; one fixed
        # 300-3400 Hz mu-law channel would teach the model a single filter.
        band = (float(rng.uniform(200.0, 400.0)), float(rng.uniform(3000.0, 3700.0)))
        x = synth.telephone(x, sr, band=band, mulaw=bool(rng.random() < 0.7))
    lo, hi = cfg.get("gain_db", (0.0, 0.0))
    if hi > lo:
        x = x * np.float32(10 ** (rng.uniform(lo, hi) / 20))
    return np.asarray(x, dtype=np.float32)


def collate(batch):
    """Pad a list of dataset items into tensors; items that failed to load (None) drop out
    and are counted in ``"unreadable"``; None when every item failed."""
    import torch

    n_in = len(batch)
    batch = [b for b in batch if b is not None]
    if not batch:
        return None
    lens = torch.tensor([len(b[0]) for b in batch], dtype=torch.long)
    wav = torch.zeros(len(batch), int(lens.max()))
    for i, b in enumerate(batch):
        wav[i, : len(b[0])] = torch.from_numpy(b[0])
    targets = torch.tensor([t for b in batch for t in b[1]], dtype=torch.long)
    target_lengths = torch.tensor([len(b[1]) for b in batch], dtype=torch.long)
    return {"waveforms": wav, "lengths": lens, "targets": targets, "target_lengths": target_lengths, "ids": [b[2] for b in batch],
            "unreadable": n_in - len(batch)}  # items that failed to load: training counts them


class EpochBatch(list):
    """A batch's utterance indices and the epoch they belong to. The DataLoader sends the
    sampler's batches to its worker processes, which keep their own copy of the dataset for
    the whole run (persistent workers, ``ctcasr.train.loader_kwargs``): setting
    ``dataset.epoch`` in the main process would not reach them, so the epoch travels with
    each batch and ``AudioDataset.__getitems__`` takes it from there."""

    def __init__(self, indices=(), epoch: int = 0):
        super().__init__(indices)
        self.epoch = epoch


class BucketBatchSampler:
    """Batches of similar-length utterances, each batch's padded size capped at
    ``max_batch_seconds`` (longest utterance x batch size), so short utterances come in
    large batches and long ones in small batches and little compute goes to padding.

    The batch order is shuffled per epoch from ``seed + epoch``, identically on every rank;
    rank r takes batches r, r+W, r+2W, ... With ``drop_last`` (training) the tail is dropped
    to a multiple of ``world_size * batches_per_step``, so every rank runs the same number
    of optimizer steps (a rank with one batch fewer would wait forever in the gradient
    all-reduce); the dropped batches differ from epoch to epoch since the order does.
    Validation shards with ``drop_last=False``: every utterance is seen exactly once.
    ``start_batch`` (in this rank's batches) resumes mid-epoch.
    """

    def __init__(self, durations, max_batch_seconds: float, shuffle: bool = True, seed: int = 0,
                 rank: int = 0, world_size: int = 1, max_batch_size: int = 256, batches_per_step: int = 1,
                 drop_last: bool = True):
        self.durations = list(durations)
        self.max_batch_seconds = float(max_batch_seconds)
        self.shuffle = shuffle
        self.seed = seed
        self.rank, self.world_size = rank, world_size
        self.max_batch_size = max_batch_size
        self.batches_per_step = int(batches_per_step)
        self.drop_last = drop_last
        self.epoch = 0
        self.start_batch = 0
        self.batches = self._make_batches()

    def _make_batches(self):
        order = sorted(range(len(self.durations)), key=lambda i: self.durations[i])
        batches, cur, cur_max = [], [], 0.0
        for i in order:
            d = self.durations[i]
            new_max = max(cur_max, d)
            if cur and (new_max * (len(cur) + 1) > self.max_batch_seconds or len(cur) >= self.max_batch_size):
                batches.append(cur)
                cur, new_max = [], d
            cur.append(i)
            cur_max = new_max
        if cur:
            batches.append(cur)
        return batches

    def set_epoch(self, epoch: int, start_batch: int = 0):
        self.epoch, self.start_batch = epoch, start_batch

    def epoch_batches(self):
        batches = list(self.batches)
        if self.shuffle:
            random.Random(self.seed + self.epoch).shuffle(batches)
        if self.drop_last:
            group = self.world_size * self.batches_per_step
            batches = batches[: len(batches) - len(batches) % group]
        return batches[self.rank :: self.world_size]

    def __iter__(self):
        return iter([EpochBatch(b, self.epoch) for b in self.epoch_batches()[self.start_batch :]])

    def __len__(self):
        return max(0, len(self.epoch_batches()) - self.start_batch)
