"""Synthesize diverse speech corpora with the Debian TTS engines, and augment audio.

Every recipe and test builds its audio here, from the engines that
``scripts/install_tts.sh`` installs (espeak-ng, flite, festival + sox; MBROLA diphone
voices driven by espeak-ng, SVOX Pico's pico2wave and RHVoice from Debian's non-free
section);
nothing is fetched at run time. A model is judged on voices, noise and channels it never heard, so the
corpus builder spreads utterances evenly over many voices and varies rate, pitch, level,
noise, reverberation, speed and channel.

    from ctcasr import synth
    voices = synth.list_voices("en")                        # list[Voice], what is installed
    held_out = ["flite:slt", "festival:*slt*", "espeak:*+f2"]          # test speakers
    train = synth.select_voices(voices, exclude=held_out)
    x = synth.synthesize("hello world", train[0], rate=1.1, pitch=0.9)   # float32 @ 16 kHz
    stats = synth.build_corpus(texts, train, "data/wav", "data/train.jsonl", seed=1)

Augmentations (numpy + soxr only, deterministic given a ``np.random.Generator``) are
shared with on-the-fly training augmentation (ctcasr.data): ``add_noise``, ``reverberate``,
``speed_perturb``, ``telephone``, ``normalize_rms``, ``random_augment``.

Command line: ``python -m ctcasr.synth --texts t.txt --out wav --manifest m.jsonl`` (the
same arguments ``ctcasr synth`` exposes through ``add_arguments``/``run``).

This module must not import torch: corpus building runs in worker processes where a
torch import would cost seconds and hundreds of MB per worker.
"""

from __future__ import annotations

import argparse
import atexit
import fnmatch
import functools
import json
import logging
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unicodedata
import zlib
from collections import Counter, OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .errors import CTCASRError

log = logging.getLogger(__name__)

ENGINES = ("espeak", "flite", "festival", "mbrola", "pico", "rhvoice")
LANGUAGES = ("en", "zh")
INSTALL_HINT = "run scripts/install_tts.sh to install the Debian TTS engines"

# espeak-ng variants we never use. The unintelligible ones were screened by synthesizing
# 40 words with en-us+<variant> and classifying them by DTW (MFCC, with a vocal-tract-
# length warp search) against other voices' renditions, then by looking at spectrograms.
# These scored < 0.75 word accuracy (most variants score 0.95-1.0) and look badly smeared
# or formant-scrambled:
EXCLUDED_ESPEAK_VARIANTS = {
    "UniRobot": "klatt4 robot with 10 ms echo; everything above ~1.5 kHz (F2) is gone",
    "Alicia": "formants scaled 130-150% unevenly plus strong breath noise; vowels collapse",
    "kaukovalta": "F1 at 40% of normal; vowels collapse",
    "RicishayMax2": "150 ms echo at 5x amplitude smears every syllable",
    "RicishayMax3": "200 ms echo at 5x amplitude smears every syllable",
    # Not unintelligible but a duplicate: a speed-algorithm test that sounds exactly like
    # the plain voice below 450 wpm, so it would leak a "held-out" voice into training.
    "fast": "identical output to the plain voice (speed-test variant)",
}
# Intelligible but hard (odd formants, heavy echo, whisper, very slow): kept, because a
# model that hears them becomes more robust, but listed so a recipe can leave them out
# of a small or a test voice set with select_voices(..., exclude=...).
BORDERLINE_ESPEAK_VARIANTS = (
    "Marco", "Jacky", "Lee", "announcer", "Demonic", "whisper", "whisperf", "croak",
    "Andy", "david", "gustave",
)
# flite -lv lists limited-domain voices that only speak their domain (awb_time: a talking
# clock); given other text they emit garbage.
EXCLUDED_FLITE_VOICES = {"awb_time": "limited-domain talking clock"}
# Mandarin: plain `cmn` reads many Han characters as English spellings of their pinyin
# (好 -> "H A O 3"); `cmn-latn-pinyin` reads Han characters and tone-numbered pinyin
# correctly. Cantonese (yue) is not Mandarin.
ZH_ESPEAK_VOICES = ("cmn-latn-pinyin",)

# MBROLA voices are recordings of one person each (a diphone database, Debian non-free
# packages mbrola-<db>), spoken through espeak-ng's ``mb-<name>`` voices, which do the text
# analysis: ``mbrola:us1`` (US English, female), ``mbrola:de1-en`` (English text with the
# German speaker de1's diphones and a German accent). The English ones and the "-en" ones
# are English voices; the database name is the speaker.
MBROLA_DIRS = ("/usr/share/mbrola", "/usr/local/share/mbrola", "/usr/share/mbrola/voices")
# SVOX Pico (pico2wave, Debian non-free libttspico-utils): one recorded speaker (all female)
# per language; en-US and en-GB speak English.
PICO_LANG_DIRS = ("/usr/share/pico/lang", "/usr/lib/pico/lang")
PICO_EN = ("en-US", "en-GB")
# RHVoice (Debian non-free rhvoice + rhvoice-english): statistical parametric voices, each
# trained on one person's recordings: alan, bdl, clb and slt on the CMU ARCTIC speakers
# awb, bdl, clb and slt; evgeniy-eng and lyubov on Russian speakers reading English.
RHVOICE_VOICE_DIRS = ("/usr/share/RHVoice/voices", "/usr/local/share/RHVoice/voices")

# Median F0 (Hz) of the flite voices that honour int_f0_target_mean; we scale it by the
# requested pitch factor. Voices not listed here (e.g. rms, a clunits voice that ignores
# the target) get their pitch changed with sox instead.
FLITE_F0_MEAN = {"kal": 95.0, "kal16": 95.0, "awb": 130.0, "slt": 170.0}

# Voices of different engines built from the same recordings (see Voice.speaker).
SPEAKER_ALIASES = {
    "flite:kal": "kal", "flite:kal16": "kal", "festival:kal_diphone": "kal",
    "flite:slt": "slt", "festival:cmu_us_slt_arctic_hts": "slt", "festival:cmu_us_slt_arctic_clunits": "slt",
    "flite:awb": "awb", "flite:rms": "rms", "festival:ked_diphone": "ked",
    "festival:cmu_us_awb_arctic_clunits": "awb", "festival:cmu_us_rms_arctic_clunits": "rms",
    "rhvoice:alan": "awb", "rhvoice:slt": "slt",
}

FESTIVAL_VOICE_DIRS = ("/usr/share/festival/voices", "/usr/lib/festival/voices", "/usr/local/share/festival/voices")
FESTIVAL_EN_DIRS = ("english", "us", "british", "uk", "en", "american")

_TIMEOUT_S = 120


class SynthError(CTCASRError):
    """A TTS engine failed for one utterance (names the voice and the text)."""

    def __init__(self, message: str, voice: Voice | None = None, text: str | None = None):
        where = ""
        if voice is not None:
            where = f"{voice}: "
        if text is not None:
            short = text if len(text) <= 60 else text[:57] + "..."
            message = f"{message} (text {short!r})"
        super().__init__(where + message)
        self.voice = voice
        self.text = text


# ----------------------------------------------------------------------------- voices
@dataclass(frozen=True, order=True)
class Voice:
    """One synthesizer voice: ``engine:name[+variant]``, e.g. ``espeak:en-us+m3``,
    ``flite:slt``, ``festival:kal_diphone``. ``str(v)`` is the stable id and
    ``Voice.parse(str(v)) == v``."""

    engine: str
    name: str
    variant: str = ""  # "" rather than None keeps Voice sortable

    def __str__(self) -> str:
        return f"{self.engine}:{self.name}" + (f"+{self.variant}" if self.variant else "")

    @property
    def id(self) -> str:
        return str(self)

    @property
    def speaker(self) -> str:
        """Who the voice sounds like, for speaker-disjoint splits. Different engines
        package the same recorded speaker (flite kal/kal16 and festival kal_diphone are
        all Kevin Lenzo; flite slt and festival cmu_us_slt_arctic_hts are both SLT), and
        an espeak variant sets the timbre whatever the accent, so ``espeak:en-us+m3`` and
        ``espeak:en-gb+m3`` share speaker ``espeak+m3`` (accent differs, voice does not)."""
        if self.engine == "espeak":
            return f"espeak+{self.variant or 'default'}"
        if self.engine == "mbrola":
            # mbrola:de1-en and a German-text mbrola:de1 are the same person (database de1)
            return f"mbrola:{_mbrola_db(self.name)}"
        return SPEAKER_ALIASES.get(str(self), f"{self.engine}:{self.name}")

    @property
    def language(self) -> str:
        if self.engine == "espeak" and self.name.split("-")[0] in ("cmn", "zh"):
            return "zh"
        return "en"

    @classmethod
    def parse(cls, s: str | Voice) -> Voice:
        if isinstance(s, Voice):
            return s
        s = str(s).strip()
        engine, sep, rest = s.partition(":")
        if not sep or engine not in ENGINES or not rest:
            raise SynthError(f"bad voice id {s!r}: expected engine:name with engine one of {', '.join(ENGINES)}")
        variant = ""
        if engine == "espeak" and "+" in rest:
            rest, variant = rest.split("+", 1)
            if not variant:
                raise SynthError(f"bad voice id {s!r}: empty espeak variant after '+'")
        if not re.fullmatch(r"[A-Za-z0-9_.\-]+", rest) or (variant and not re.fullmatch(r"[A-Za-z0-9_.\-]+", variant)):
            raise SynthError(f"bad voice id {s!r}: names may only contain letters, digits, '_', '.', '-'")
        return cls(engine, rest, variant)


def engine_available(engine: str) -> bool:
    """Whether the engine's programs are on PATH."""
    progs = {"espeak": ("espeak-ng",), "flite": ("flite",), "festival": ("festival", "text2wave"),
             "mbrola": ("espeak-ng", "mbrola"), "pico": ("pico2wave",), "rhvoice": ("RHVoice-test",)}[engine]
    return all(shutil.which(p) for p in progs)


def _run(cmd, *, input: bytes | None = None, timeout: float = _TIMEOUT_S) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, input=input, capture_output=True, timeout=timeout, check=False)
    except FileNotFoundError:
        raise SynthError(f"{cmd[0]} is not installed; {INSTALL_HINT}") from None
    except subprocess.TimeoutExpired:
        raise SynthError(f"{cmd[0]} timed out after {timeout:.0f} s") from None


def _stderr_line(cp: subprocess.CompletedProcess) -> str:
    lines = [ln.strip() for ln in cp.stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
    return lines[-1][:200] if lines else f"exit status {cp.returncode}"


@functools.cache
def _espeak_table(spec: str) -> tuple:
    """Rows (language, file) of ``espeak-ng --voices=<spec>``."""
    if not engine_available("espeak"):
        return ()
    cp = _run(["espeak-ng", f"--voices={spec}"], timeout=30)
    rows = []
    for line in cp.stdout.decode("utf-8", "replace").splitlines()[1:]:
        # Pty Language Age/Gender VoiceName File [Other Languages]; VoiceName has no spaces.
        parts = line.split()
        if len(parts) >= 5:
            rows.append((parts[1], parts[4]))
    return tuple(rows)


@functools.cache
def _espeak_data_dir() -> str | None:
    cp = _run(["espeak-ng", "--version"], timeout=30)
    m = re.search(r"Data at:\s*(\S.*)$", cp.stdout.decode("utf-8", "replace").strip(), re.MULTILINE)
    return m.group(1).strip() if m else None


@functools.cache
def _espeak_variants() -> tuple:
    """Every installed variant name (the file name under voices/!v), sorted."""
    names = {f[3:] for _lang, f in _espeak_table("variant") if f.startswith("!v/")}
    names = {n for n in names if re.fullmatch(r"[A-Za-z0-9_.\-]+", n)}
    # A variant file name with a space ("Mr serious") comes out of the listing cut at the
    # space ("Mr"); espeak-ng would silently ignore such a variant and speak the plain
    # voice under the wrong label. Keep only names that exist as files.
    data = _espeak_data_dir()
    vdir = os.path.join(data, "voices", "!v") if data else None
    if vdir and os.path.isdir(vdir):
        names = {n for n in names if os.path.isfile(os.path.join(vdir, n))}
    return tuple(sorted(names))


@functools.cache
def _espeak_languages(language: str) -> tuple:
    out = []
    for lang, f in _espeak_table(language if language == "en" else "zh"):
        # mb/ voices are the "mbrola" engine (_mbrola_voices); !v/ rows are variants.
        if f.startswith(("mb/", "!v/")):
            continue
        if language == "en" and lang.startswith("en") and lang not in out:
            out.append(lang)
        if language == "zh" and lang in ZH_ESPEAK_VOICES and lang not in out:
            out.append(lang)
    return tuple(sorted(out))


def _mbrola_db(name: str) -> str:
    """The diphone database an espeak-ng ``mb-<name>`` voice uses: de1 for de1-en."""
    return name.split("-")[0]


def _mbrola_db_installed(db: str) -> bool:
    return any(os.path.isfile(os.path.join(d, db, db)) or os.path.isfile(os.path.join(d, db)) for d in MBROLA_DIRS)


@functools.cache
def _mbrola_voices(language: str = "en") -> tuple:
    """espeak-ng's ``mb-*`` English voices (listed under ``--voices=en``) whose MBROLA
    database is installed, as names without the ``mb-`` prefix: ('de1-en', 'us1', ...)."""
    if not engine_available("mbrola") or language != "en":
        return ()
    names = {f[6:] for _lang, f in _espeak_table("en") if f.startswith("mb/mb-")}
    return tuple(sorted(n for n in names if re.fullmatch(r"[a-z0-9\-]+", n) and _mbrola_db_installed(_mbrola_db(n))))


@functools.cache
def _pico_languages() -> tuple:
    """The languages pico2wave has data for (en-US, en-GB, de-DE, ...)."""
    if not engine_available("pico"):
        return ()
    found = set()
    for d in PICO_LANG_DIRS:
        if os.path.isdir(d):
            found.update(m.group(1) for f in os.listdir(d) if (m := re.fullmatch(r"([a-z]{2}-[A-Z]{2})_ta\.bin", f)))
    return tuple(sorted(found))


@functools.cache
def _rhvoice_voices(language: str = "en") -> tuple:
    """Installed RHVoice voices whose ``voice.info`` says ``language=English``, by directory
    name ('alan', 'bdl', ...; RHVoice-test's profile names)."""
    if not engine_available("rhvoice") or language != "en":
        return ()
    found = set()
    for d in RHVOICE_VOICE_DIRS:
        if not os.path.isdir(d):
            continue
        for name in os.listdir(d):
            try:
                info = Path(d, name, "voice.info").read_text("utf-8", "replace")
            except OSError:
                continue
            if re.search(r"^language=English\s*$", info, re.M) and re.fullmatch(r"[a-z0-9\-]+", name):
                found.add(name)
    return tuple(sorted(found))


@functools.cache
def _flite_voices() -> tuple:
    if not engine_available("flite"):
        return ()
    cp = _run(["flite", "-lv"], timeout=30)
    text = cp.stdout.decode("utf-8", "replace")
    m = re.search(r"Voices available:(.*)", text)
    return tuple(m.group(1).split()) if m else ()


@functools.cache
def _festival_voices(all_languages: bool = False) -> dict:
    """{voice name: kind} for installed English festival voices (with ``all_languages``:
    every installed festival voice, e.g. the Italian or Czech ones, which speak English
    digits when given respelled text, see ``build_corpus(respell=...)``). kind: 'hts' (HTS
    engine: duration via hts '-r', pitch via sox), 'lr' (linear-regression intonation:
    native Duration_Stretch and F0 targets) or 'other' (sox tempo/pitch)."""
    return {name: kind for name, (kind, lang) in _festival_installed().items()
            if all_languages or lang in FESTIVAL_EN_DIRS}


def _festival_voice_language(name: str) -> str:
    """The language directory a festival voice is installed under ('' if not installed)."""
    return _festival_installed().get(name, ("", ""))[1]


@functools.cache
def _festival_installed() -> dict:
    """{voice name: (kind, language directory)} of every installed festival voice; the
    English directories are read first, so an English voice wins a name clash."""
    if not engine_available("festival"):
        return {}
    found = {}
    roots = [Path(r) for r in FESTIVAL_VOICE_DIRS if Path(r).is_dir()]
    en = [r / lang for r in roots for lang in FESTIVAL_EN_DIRS]
    others = [d for r in roots for d in sorted(r.iterdir()) if d.name not in FESTIVAL_EN_DIRS]
    for d in en + others:
        lang = d.name
        if not d.is_dir():
            continue
        for vd in sorted(d.iterdir()):
            scm = vd / "festvox" / f"{vd.name}.scm"
            if not scm.is_file() or vd.name in found:
                continue
            src = scm.read_text("latin-1", "replace")
            if re.search(r"Synth_Method\s+'HTS", src):
                kind = "hts"
            elif "Int_Targets_LR" in src:
                kind = "lr"
            else:
                kind = "other"
            found[vd.name] = (kind, lang)
    return found


@functools.cache
def _list_voices_cached(language: str, include_excluded: bool) -> tuple:
    voices = []
    variants = [v for v in _espeak_variants() if include_excluded or v not in EXCLUDED_ESPEAK_VARIANTS]
    for lang in _espeak_languages(language):
        voices.append(Voice("espeak", lang))
        voices.extend(Voice("espeak", lang, v) for v in variants)
    if language == "en":
        voices.extend(Voice("flite", v) for v in _flite_voices() if include_excluded or v not in EXCLUDED_FLITE_VOICES)
        voices.extend(Voice("festival", v) for v in sorted(_festival_voices()))
        voices.extend(Voice("mbrola", v) for v in _mbrola_voices("en"))
        voices.extend(Voice("pico", v) for v in _pico_languages() if v in PICO_EN)
        voices.extend(Voice("rhvoice", v) for v in _rhvoice_voices("en"))
    return tuple(voices)


def list_voices(language: str = "en", *, include_excluded: bool = False) -> list[Voice]:
    """The installed voices for ``language`` ("en" or "zh"), in a stable order.

    en: espeak-ng English accents (en-gb, en-us, en-gb-scotland, en-029, ...) each plain and
    crossed with every usable espeak variant (m1..m8, f1..f5, klatt, whisper, ...); flite
    voices (kal, kal16, awb, rms, slt); installed English festival voices; MBROLA voices
    that speak English (``mbrola:us1`` ... and foreign speakers' ``mbrola:de1-en`` ...,
    those whose database is installed); Pico's en-US and en-GB; RHVoice's English voices
    (``rhvoice:bdl``, ``rhvoice:clb``, ...). zh: espeak-ng
    cmn-latn-pinyin crossed with the variants. Unusable variants/voices
    (EXCLUDED_ESPEAK_VARIANTS, EXCLUDED_FLITE_VOICES) are left out unless
    ``include_excluded``. Engines that are not installed contribute nothing.
    """
    if language not in LANGUAGES:
        raise SynthError(f"unsupported language {language!r}; choose one of {', '.join(LANGUAGES)}")
    return list(_list_voices_cached(language, include_excluded))


def select_voices(voices: Iterable[Voice | str], include: Sequence[str] | None = None,
                  exclude: Sequence[str] | None = None) -> list[Voice]:
    """Voices whose id matches any ``include`` glob (all when None/empty) and no ``exclude``
    glob. Globs are fnmatch patterns over the id and case-sensitive, e.g.
    ``"espeak:en-us+*"`` (en-us with any variant, not plain ``espeak:en-us``),
    ``"flite:*"``, ``"*+whisper*"``. Order is preserved; duplicates dropped.
    Use the same patterns as include for one set and exclude for the other to get
    disjoint train/test voice sets; for speaker-disjoint sets also compare
    ``Voice.speaker`` (e.g. holding out ``flite:slt`` but training on
    ``festival:cmu_us_slt_arctic_hts`` trains on the held-out speaker)."""
    out, seen = [], set()
    for v in voices:
        v = Voice.parse(v)
        s = str(v)
        if s in seen:
            continue
        if include and not any(fnmatch.fnmatchcase(s, p) for p in include):
            continue
        if exclude and any(fnmatch.fnmatchcase(s, p) for p in exclude):
            continue
        seen.add(s)
        out.append(v)
    return out


# ----------------------------------------------------------------------------- synthesis
def _resample(x: np.ndarray, sr_in: float, sr_out: float) -> np.ndarray:
    if sr_in == sr_out or len(x) == 0:
        return np.asarray(x, dtype=np.float32)
    try:
        import soxr  # what librosa uses underneath; imported directly to skip librosa's import cost

        return soxr.resample(np.asarray(x, dtype=np.float32), sr_in, sr_out, quality="HQ").astype(np.float32, copy=False)
    except ImportError:  # pragma: no cover - soxr ships with librosa
        import librosa

        return librosa.resample(np.asarray(x, dtype=np.float32), orig_sr=sr_in, target_sr=sr_out).astype(np.float32)


def _parse_wav_bytes(b: bytes) -> tuple[np.ndarray, int]:
    """16-bit PCM wav from a pipe. espeak-ng --stdout writes 0x7fffffff as the data size
    (it cannot seek back), which some readers reject; we take everything after 'data'."""
    if len(b) < 12 or b[:4] != b"RIFF" or b[8:12] != b"WAVE":
        raise ValueError("not a wav stream")
    pos, sr, ch, bits = 12, None, 1, 16
    while pos + 8 <= len(b):
        cid, size = b[pos:pos + 4], int.from_bytes(b[pos + 4:pos + 8], "little")
        if cid == b"fmt ":
            ch = int.from_bytes(b[pos + 10:pos + 12], "little")
            sr = int.from_bytes(b[pos + 12:pos + 16], "little")
            bits = int.from_bytes(b[pos + 22:pos + 24], "little")
        elif cid == b"data":
            if sr is None or bits != 16:
                raise ValueError("unsupported wav format")
            data = b[pos + 8:]
            data = data[: len(data) // (2 * ch) * 2 * ch]
            x = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
            return (x.reshape(-1, ch).mean(axis=1) if ch > 1 else x), sr
        pos += 8 + size + (size & 1)
    raise ValueError("wav stream has no data chunk")


def _read_wav_file(path: str) -> tuple[np.ndarray, int]:
    import soundfile as sf

    x, sr = sf.read(path, dtype="float32", always_2d=True)
    return x.mean(axis=1), sr


def _espeak_pitch_param(factor: float) -> int:
    # espeak-ng's -p (0-99, default 50) moves F0 exponentially and asymmetrically; measured
    # on en-us: -p 0 -> x0.66, 25 -> x0.79, 75 -> x1.29, 99 -> x1.69 of the -p 50 median F0.
    lf = math.log2(max(factor, 1e-3))
    p = 50 + lf / (0.0155 if lf > 0 else 0.0119)
    return round(min(99, max(0, p)))


def _sox(x: np.ndarray, sr: int, effects: list, tmp: str) -> np.ndarray:
    import soundfile as sf

    src, dst = os.path.join(tmp, "sox_in.wav"), os.path.join(tmp, "sox_out.wav")
    sf.write(src, np.clip(x, -1, 1), sr, subtype="FLOAT")
    cp = _run(["sox", "-q", "-V1", src, dst] + effects)
    if cp.returncode != 0 or not os.path.exists(dst):
        raise SynthError(f"sox {' '.join(effects)} failed: {_stderr_line(cp)}")
    y, sr2 = _read_wav_file(dst)
    return y if sr2 == sr else _resample(y, sr2, sr)


def _clean_text(text: str) -> str:
    # Engines treat newlines as utterance breaks and some choke on control characters.
    return " ".join("".join(ch if ch.isprintable() else " " for ch in str(text)).split()) if text else ""


def _synth_espeak(text, voice, rate, pitch, tmp):
    if voice.name not in _espeak_languages(voice.language):
        raise SynthError(f"espeak-ng has no voice {voice.name!r} installed", voice, text)
    if voice.variant and voice.variant not in _espeak_variants():
        # espeak-ng silently ignores an unknown variant, which would mislabel the audio.
        raise SynthError(f"espeak-ng has no variant {voice.variant!r}", voice, text)
    return _espeak_speak(voice.name + (f"+{voice.variant}" if voice.variant else ""), text, voice, rate, pitch)


def _espeak_speak(vname, text, voice, rate, pitch, what="espeak-ng"):
    """espeak-ng voice ``vname`` (an espeak voice, or ``mb-*`` for MBROLA) -> (x, sr, [])."""
    wpm = round(min(450, max(80, 175 * rate)))
    cmd = ["espeak-ng", "-v", vname, "-s", str(wpm), "-b", "1", "--stdout"]
    if pitch is not None:
        cmd += ["-p", str(_espeak_pitch_param(pitch))]
    # Text on stdin: no argv parsing surprises for texts starting with '-'.
    cp = _run(cmd, input=text.encode("utf-8"))
    if cp.returncode != 0:
        raise SynthError(f"{what} failed: {_stderr_line(cp)}", voice, text)
    try:
        x, sr = _parse_wav_bytes(cp.stdout)
    except ValueError as e:
        raise SynthError(f"{what} wrote no audio ({e}; {_stderr_line(cp)})", voice, text) from None
    return x, sr, []


def _synth_flite(text, voice, rate, pitch, tmp):
    if voice.name not in _flite_voices():
        # flite falls back to its default voice for an unknown name, so check first.
        raise SynthError(f"flite has no voice {voice.name!r} (installed: {' '.join(_flite_voices()) or 'none'})", voice, text)
    out = os.path.join(tmp, "flite.wav")
    cmd = ["flite", "-voice", voice.name, "--setf", f"duration_stretch={1.0 / rate:.4f}"]
    post = []
    if pitch is not None and abs(pitch - 1.0) > 1e-3:
        if voice.name in FLITE_F0_MEAN:
            cmd += ["--setf", f"int_f0_target_mean={FLITE_F0_MEAN[voice.name] * pitch:.1f}"]
        else:
            post += ["pitch", f"{1200 * math.log2(pitch):.1f}"]
    cmd += ["-t", text, "-o", out]
    cp = _run(cmd)
    if cp.returncode != 0 or not os.path.exists(out) or os.path.getsize(out) <= 44:
        raise SynthError(f"flite wrote no audio: {_stderr_line(cp)}", voice, text)
    x, sr = _read_wav_file(out)
    return x, sr, post


def _synth_mbrola(text, voice, rate, pitch, tmp):
    if voice.name not in _mbrola_voices("en"):
        db = _mbrola_db(voice.name)
        why = "is not an English espeak-ng mb- voice" if _mbrola_db_installed(db) else f"needs the package mbrola-{db}"
        raise SynthError(f"MBROLA voice {voice.name!r} {why}", voice, text)
    return _espeak_speak(f"mb-{voice.name}", text, voice, rate, pitch, "espeak-ng + mbrola")


def _synth_pico(text, voice, rate, pitch, tmp):
    if voice.name not in _pico_languages():
        raise SynthError(f"pico2wave has no language {voice.name!r} (installed: {' '.join(_pico_languages()) or 'none'})",
                         voice, text)
    # Pico's markup: speed and pitch levels in percent of the voice's own (100).
    body = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    body = f"<speed level='{round(min(500, max(20, 100 * rate)))}'>{body}</speed>"
    if pitch is not None and abs(pitch - 1.0) > 1e-3:
        body = f"<pitch level='{round(min(200, max(50, 100 * pitch)))}'>{body}</pitch>"
    out = os.path.join(tmp, "pico.wav")
    cp = _run(["pico2wave", "-l", voice.name, "-w", out, "--", body])
    if cp.returncode != 0 or not os.path.exists(out) or os.path.getsize(out) <= 44:
        raise SynthError(f"pico2wave wrote no audio: {_stderr_line(cp)}", voice, text)
    x, sr = _read_wav_file(out)
    return x, sr, []


def _synth_rhvoice(text, voice, rate, pitch, tmp):
    if voice.name not in _rhvoice_voices("en"):
        # RHVoice-test speaks with its default voice when the profile is unknown.
        raise SynthError(f"RHVoice has no English voice {voice.name!r} (installed: "
                         f"{' '.join(_rhvoice_voices('en')) or 'none'})", voice, text)
    # -r and -t are percent of the voice's own rate and F0 (measured: F0 scales linearly,
    # -t 50 halves it; duration scales as 100 / -r). Plain-text mode: no markup is parsed.
    out = os.path.join(tmp, "rhvoice.wav")
    cmd = ["RHVoice-test", "-p", voice.name, "-r", str(round(min(500, max(20, 100 * rate)))), "-o", out]
    if pitch is not None and abs(pitch - 1.0) > 1e-3:
        cmd += ["-t", str(round(min(400, max(25, 100 * pitch))))]
    cp = _run(cmd, input=text.encode("utf-8"))
    if cp.returncode != 0 or not os.path.exists(out) or os.path.getsize(out) <= 44:
        raise SynthError(f"RHVoice-test wrote no audio: {_stderr_line(cp)}", voice, text)
    x, sr = _read_wav_file(out)
    return x, sr, []


# Festival voice directories of languages not written in the Latin alphabet: these voices
# read UTF-8 text in their own script (the Russian one: Cyrillic respellings of the digits).
FESTIVAL_NON_LATIN_DIRS = ("russian", "hindi", "marathi", "telugu")


def _festival_text(text: str, own_script: bool = False) -> str:
    # festival's English and other Latin-script voices tokenize ASCII best: fold accents and
    # typographic quotes away ("café" -> "cafe"), drop what has no ASCII form. With
    # ``own_script`` (a voice of a non-Latin language) letters of other scripts are kept
    # as they are, their combining marks included; the request is sent as UTF-8.
    t = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')
    out = []
    for ch in t:
        if ord(ch) < 128:
            out.append(ch)
            continue
        folded = unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode("ascii")
        if folded:
            out.append(folded)
        elif (own_script and unicodedata.category(ch)[0] in "LM" and not unicodedata.name(ch, "").startswith("LATIN")
              and not "\u0300" <= ch <= "\u036f"):
            out.append(ch)  # Cyrillic, Devanagari, ... ("й" keeps its breve)
    return "".join(out)


def _synth_festival(text, voice, rate, pitch, tmp):
    kinds = _festival_voices(all_languages=True)
    if voice.name not in kinds:
        raise SynthError(f"festival has no voice {voice.name!r} installed", voice, text)
    kind = kinds[voice.name]
    own_script = _festival_voice_language(voice.name) in FESTIVAL_NON_LATIN_DIRS
    ftext = _festival_text(text, own_script)
    if not ftext.strip():
        raise SynthError("text has nothing this festival voice can read (non-ASCII only)", voice, text)
    out = os.path.join(tmp, "festival.wav")
    # Duration_Stretch is global festival state: always set it, the server is reused.
    forms = [f"(voice_{voice.name})", f"(Parameter.set 'Duration_Stretch {1.0 / rate if kind == 'lr' else 1.0:.4f})"]
    post = []
    if kind == "hts":
        if abs(rate - 1.0) > 1e-3:
            # (voice_X) resets hts_engine_params, so appending does not accumulate.
            forms.append(f'(set! hts_engine_params (append hts_engine_params (list (list "-r" {rate:.4f}))))')
        if pitch is not None and abs(pitch - 1.0) > 1e-3:
            post += ["pitch", f"{1200 * math.log2(pitch):.1f}"]  # hts_engine's -fm is not honoured here
    elif kind == "lr":
        if pitch is not None and abs(pitch - 1.0) > 1e-3:
            # Scale the voice's own F0 target mean/std (whatever they are) by the factor;
            # (voice_X) resets int_lr_params next time.
            forms.append(
                "(if (and (boundp 'int_lr_params) int_lr_params) (set! int_lr_params (list"
                f" (list 'target_f0_mean (* {pitch:.4f} (cadr (assoc 'target_f0_mean int_lr_params))))"
                f" (list 'target_f0_std (* {pitch:.4f} (cadr (assoc 'target_f0_std int_lr_params))))"
                " (assoc 'model_f0_mean int_lr_params) (assoc 'model_f0_std int_lr_params))))"
            )
    else:
        if abs(rate - 1.0) > 1e-3:
            post += ["tempo", "-s", f"{rate:.4f}"]
        if pitch is not None and abs(pitch - 1.0) > 1e-3:
            post += ["pitch", f"{1200 * math.log2(pitch):.1f}"]
    # Some voices draw random numbers while synthesizing (the Czech ones vary phone durations
    # with festival's rand), so a reused server would make each utterance depend on all it
    # said before. Seed rand from the request instead; czech-rand first draws 100 numbers to
    # size its range, once per process, so that happens before the seed.
    seed = _stable_seed(voice, ftext, f"{rate:.4f}", pitch) % 2147483647
    forms += ["(if (boundp 'czech-rand) (czech-rand))", f"(srand {seed})"]
    quoted = ftext.replace("\\", "\\\\").replace('"', '\\"')
    forms.append(f'(utt.save.wave (utt.synth (Utterance Text "{quoted}")) "{out}" (quote riff))')
    err = _festival_server(voice.name).run(forms)
    if err is not None or not os.path.exists(out) or os.path.getsize(out) <= 44:
        raise SynthError(f"festival wrote no audio: {err or 'empty output'}", voice, text)
    x, sr = _read_wav_file(out)
    return x, sr, post


class _FestivalServer:
    """One long-lived ``festival --pipe`` per process. Starting festival costs ~0.15 s
    (more than synthesizing a sentence), so text2wave per utterance ran at ~15x real time
    with 2 jobs; a reused process runs several times faster. Each request is a ``begin``
    form that prints an OK marker, followed by a separate form printing an END marker and
    flushing: festival reports a Scheme error on stderr and carries on with the next form,
    so END always arrives and a missing OK means failure."""

    OK, END = "CTCASR_OK", "CTCASR_END"

    def __init__(self):
        # stderr goes to an anonymous (already unlinked) file, not a pipe nobody drains,
        # which could block festival; we read it with pread at our own offset. Nothing is
        # left behind when a pool worker exits without running atexit handlers.
        self._errf = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the server
        try:
            self.proc = subprocess.Popen(["festival", "--pipe"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=self._errf, start_new_session=True)
        except OSError as e:
            self._errf.close()
            raise SynthError(f"cannot start festival ({e}); {INSTALL_HINT}") from None
        self._err_pos = 0
        self.pid = os.getpid()
        self._buf = b""
        self._lock = threading.Lock()
        atexit.register(self.close)

    def alive(self) -> bool:
        return self.pid == os.getpid() and self.proc.poll() is None

    def _new_stderr(self) -> str:
        try:
            fd = self._errf.fileno()
            data = os.pread(fd, max(0, os.fstat(fd).st_size - self._err_pos), self._err_pos)
        except (OSError, ValueError):
            return ""
        self._err_pos += len(data)
        lines = [ln.strip() for ln in data.decode("latin-1").splitlines() if ln.strip()]
        errs = [ln for ln in lines if "ERROR" in ln.upper()] or lines
        return errs[-1][:200] if errs else ""

    def close(self) -> None:
        if self.pid != os.getpid():
            return
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            try:
                pipe.close()
            except OSError:
                pass

    def run(self, forms: list, timeout: float = _TIMEOUT_S) -> str | None:
        """Run the forms; None on success, else the error text."""
        with self._lock:
            return self._run(forms, timeout)

    def _run(self, forms: list, timeout: float) -> str | None:
        import select

        req = f'(begin {" ".join(forms)} (format t "{self.OK}\\n"))\n(format t "{self.END}\\n")\n(fflush nil)\n'
        try:
            self.proc.stdin.write(req.encode("utf-8"))
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            self.close()
            return f"festival exited ({self._new_stderr() or 'no message'})"
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while self.END.encode() not in self._buf:
            left = deadline - time.monotonic()
            ready = select.select([fd], [], [], max(0.0, left))[0] if left > 0 else []
            if not ready:
                self.close()
                return f"festival timed out after {timeout:.0f} s"
            chunk = os.read(fd, 65536)
            if not chunk:
                self.close()
                return f"festival exited ({self._new_stderr() or 'no message'})"
            self._buf += chunk
        reply, _, self._buf = self._buf.partition(self.END.encode())
        self._buf = self._buf.lstrip(b"\n")
        if self.OK.encode() in reply:
            self._new_stderr()  # skip warnings
            return None
        return self._new_stderr() or "festival reported no error but wrote nothing"


# One server per voice: festival's voices are not independent of each other within one
# process. Once the Russian voice had been loaded, the Finnish voices failed ("Phone f does
# not have feature csoft") and the Russian one failed after others ("SIOD ERROR: too few
# arguments"): 20 of 714 utterances of the digits recipe's accented split were lost. A
# process per voice keeps each voice's global state to itself (~10-40 MB each; the least
# recently used one is closed beyond _MAX_FESTIVAL_SERVERS).
_FESTIVAL: OrderedDict = OrderedDict()  # voice name (or None) -> _FestivalServer
_MAX_FESTIVAL_SERVERS = 16


def _festival_server(voice: str | None = None) -> _FestivalServer:
    srv = _FESTIVAL.get(voice)
    if srv is None or not srv.alive():
        # After a fork the child must not share the parent's pipes: start its own.
        if srv is not None:
            srv.close()
        srv = _FESTIVAL[voice] = _FestivalServer()
        while len(_FESTIVAL) > _MAX_FESTIVAL_SERVERS:
            _FESTIVAL.popitem(last=False)[1].close()
    _FESTIVAL.move_to_end(voice)
    return srv


_ENGINE_FUNCS = {"espeak": _synth_espeak, "flite": _synth_flite, "festival": _synth_festival,
                 "mbrola": _synth_mbrola, "pico": _synth_pico, "rhvoice": _synth_rhvoice}


def _stable_seed(*parts) -> int:
    return zlib.crc32(json.dumps([str(p) for p in parts]).encode("utf-8"))


def trim_silence(x: np.ndarray, sr: int, threshold_db: float = -50.0, margin_s: float = 0.02) -> np.ndarray:
    """Cut leading/trailing audio quieter than ``threshold_db`` below the loudest 10 ms frame,
    keeping ``margin_s`` so weak onsets (fricatives, whispers) survive."""
    hop = max(1, int(sr * 0.01))
    n = len(x) // hop
    if n == 0:
        return x[:0]
    e = (x[: n * hop].reshape(n, hop).astype(np.float64) ** 2).mean(axis=1)
    if e.max() <= 0:
        return x[:0]
    active = np.flatnonzero(10 * np.log10(e / e.max() + 1e-20) > threshold_db)
    m = int(margin_s * sr)
    start = max(0, active[0] * hop - m)
    end = min(len(x), (active[-1] + 1) * hop + m)
    return x[start:end]


def synthesize(text: str, voice: Voice | str, rate: float = 1.0, pitch: float | None = None,
               sample_rate: int = 16000, *, pad: tuple = (0.1, 0.3),
               rng: np.random.Generator | int | None = None) -> np.ndarray:
    """Speak ``text`` with ``voice``; return mono float32 audio at ``sample_rate``.

    ``rate``: speaking-rate factor (1.0 = the voice's normal rate, 1.2 = 20% faster).
    ``pitch``: F0 factor relative to the voice's normal pitch (None/1.0 = unchanged);
    native engine controls where the engine has them (espeak -p, flite/festival F0
    targets), sox ``pitch`` otherwise; espeak's range is about x0.66..x1.69.
    Leading/trailing silence is trimmed and replaced by ``pad`` = (lo, hi) seconds of digital
    silence at each end, drawn uniformly from ``rng`` (a Generator or seed; None derives a
    seed from the arguments so the result is reproducible). The level is the engine's own.
    Raises SynthError naming voice and text when the engine is missing or fails, or the
    text is empty.
    """
    voice = Voice.parse(voice)
    text_c = _clean_text(text)
    if not text_c:
        raise SynthError("empty text", voice, text)
    if not (0.2 <= rate <= 5.0):
        raise SynthError(f"rate {rate} out of range 0.2..5", voice, text)
    if pitch is not None and not (0.25 <= pitch <= 4.0):
        raise SynthError(f"pitch {pitch} out of range 0.25..4", voice, text)
    if not engine_available(voice.engine):
        raise SynthError(f"{voice.engine} is not installed; {INSTALL_HINT}", voice, text)
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(rng if rng is not None else _stable_seed(text_c, voice, rate, pitch, sample_rate))
    with tempfile.TemporaryDirectory(prefix="ctcasr-synth-") as tmp:
        x, sr, post = _ENGINE_FUNCS[voice.engine](text_c, voice, float(rate), pitch, tmp)
        if post:
            x = _sox(x, sr, post, tmp)
    if not np.all(np.isfinite(x)):
        raise SynthError("engine produced non-finite samples", voice, text)
    x = _resample(x, sr, sample_rate)
    x = trim_silence(x, sample_rate)
    if len(x) < int(0.05 * sample_rate):
        raise SynthError("engine produced silence", voice, text)
    lo, hi = pad
    a, b = (round(rng.uniform(lo, hi) * sample_rate) for _ in range(2))
    return np.concatenate([np.zeros(a, np.float32), x.astype(np.float32), np.zeros(b, np.float32)])


def write_wav(path: str | os.PathLike, x: np.ndarray, sample_rate: int = 16000) -> None:
    """Write 16-bit PCM mono wav atomically (temp file + rename): an interrupted run never
    leaves a truncated file under the final name."""
    import soundfile as sf

    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}.wav"
    try:
        sf.write(tmp, np.clip(np.asarray(x, dtype=np.float32), -1.0, 32767 / 32768), sample_rate, subtype="PCM_16")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def synthesize_to_file(text: str, voice: Voice | str, path: str | os.PathLike, rate: float = 1.0,
                       pitch: float | None = None, sample_rate: int = 16000, **kw) -> float:
    """synthesize() and write a 16-bit PCM wav; returns the duration in seconds."""
    x = synthesize(text, voice, rate, pitch, sample_rate, **kw)
    write_wav(path, x, sample_rate)
    return len(x) / sample_rate


def espeak_phonemes(text: str, voice: Voice | str = "espeak:en-us") -> str:
    """espeak-ng's phoneme transcription (``-x``) of ``text``: lets tests check that a voice
    reads a script as intended (e.g. Han characters with cmn-latn-pinyin)."""
    voice = Voice.parse(voice)
    if voice.engine != "espeak":
        raise SynthError("phonemes are only available for espeak voices", voice, text)
    cp = _run(["espeak-ng", "-v", voice.name, "-q", "-x", "-b", "1"], input=_clean_text(text).encode("utf-8"))
    if cp.returncode != 0:
        raise SynthError(f"espeak-ng failed: {_stderr_line(cp)}", voice, text)
    return " ".join(cp.stdout.decode("utf-8", "replace").split())


# ----------------------------------------------------------------------------- augmentation
def _as_f32(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float32).reshape(-1)


def _power(x: np.ndarray) -> float:
    return float(np.mean(np.square(x, dtype=np.float64))) if len(x) else 0.0


def colored_noise(n: int, rng: np.random.Generator, exponent: float = 0.0, sr: int = 16000) -> np.ndarray:
    """Unit-RMS Gaussian noise with power spectrum ~ 1/f**exponent (0 white, 1 pink, 2 brown).
    Below 20 Hz the spectrum is held flat: otherwise brown noise puts nearly all its power
    at inaudible frequencies that features ignore, and its nominal SNR would mean nothing."""
    if n <= 0:
        return np.zeros(0, np.float32)
    if exponent == 0:
        y = rng.standard_normal(n)
    else:
        spec = rng.standard_normal(n // 2 + 1) + 1j * rng.standard_normal(n // 2 + 1)
        f = np.maximum(np.fft.rfftfreq(n, d=1.0 / sr), 20.0)
        spec *= f ** (-exponent / 2.0)
        spec[0] = 0.0
        y = np.fft.irfft(spec, n)
    y = y - y.mean()
    return (y / (np.sqrt(np.mean(y * y)) + 1e-12)).astype(np.float32)


def babble_noise(n: int, rng: np.random.Generator, sr: int = 16000, talkers: int | None = None) -> np.ndarray:
    """Unit-RMS babble-like noise: ``talkers`` (3-7) synthetic voices, each a harmonic comb
    on a wandering F0 (85-250 Hz) through three moving formants with a -6 dB/oct tilt,
    plus fricative-like high-band bursts between syllables, switched on and off at
    syllable (~4 Hz) and phrase rates, summed. Built frame by frame
    in the frequency domain (Gaussian spectra, windowed overlap-add), so it is cheap."""
    if n <= 0:
        return np.zeros(0, np.float32)
    nfft = 1 << math.ceil(math.log2(0.064 * sr))
    hop = nfft // 4
    frames = n // hop + 4
    freqs = np.fft.rfftfreq(nfft, d=1.0 / sr)[None, :]
    t = np.arange(frames)[:, None]
    talkers = int(talkers or rng.integers(3, 8))
    power = np.zeros((frames, nfft // 2 + 1))
    fps = sr / hop  # frames per second

    def smooth(values_per_sec, lo, hi):
        # Random values at the given rate, linearly interpolated to frame rate.
        k = max(2, int(frames / fps * values_per_sec) + 2)
        pts = rng.uniform(lo, hi, k)
        return np.interp(np.linspace(0, k - 1, frames), np.arange(k), pts)[:, None]

    for _ in range(talkers):
        f0 = rng.uniform(85, 250) * (1 + 0.15 * (smooth(3, -1, 1)))
        # Harmonic comb: a Gaussian lobe at each multiple of f0 (width ~ analysis bandwidth).
        dist = freqs / f0
        comb = np.exp(-0.5 * ((dist - np.round(dist)) * f0 / (1.5 * sr / nfft)) ** 2)
        env = np.zeros_like(comb)
        for lo, hi, bw in ((300, 850, 90), (850, 2300, 120), (2300, 3300, 180)):
            fc = smooth(5, lo, hi)
            env += np.exp(-0.5 * ((freqs - fc) / bw) ** 2)
        tilt = 1.0 / np.maximum(freqs / 500.0, 1.0)
        syll = np.clip(np.sin(2 * np.pi * (rng.uniform(3, 5.5) / fps) * t + rng.uniform(0, 2 * np.pi)), 0, None)
        phrase = (smooth(0.7, -0.6, 1.0) > 0).astype(float)
        voiced = (0.85 * comb + 0.15) * env * tilt * syll
        # Fricative-like bursts (2.5-6.5 kHz noise) between syllable nuclei: without them
        # babble would have no energy where /s/, /f/, /t/ live.
        fc = smooth(4, 2500, min(6500.0, 0.42 * sr))
        fric = np.exp(-0.5 * ((freqs - fc) / 1000.0) ** 2) * (smooth(6, -1, 1) > 0.4) * (1.0 - syll)
        mag = (voiced + 0.04 * fric) * phrase
        power += (mag * rng.uniform(0.5, 1.0)) ** 2
    # Talkers with independent Gaussian spectra add in power, so one complex Gaussian draw
    # scaled by the summed magnitude gives the same mixture at a fraction of the cost.
    spec = np.sqrt(power / 2) * (rng.standard_normal(power.shape) + 1j * rng.standard_normal(power.shape))
    frames_t = np.fft.irfft(spec, nfft, axis=1) * np.hanning(nfft)[None, :]
    out = np.zeros(frames * hop + nfft)
    for i in range(nfft // hop):  # overlap-add, vectorised per phase of the hop
        seg = frames_t[:, i * hop:(i + 1) * hop].reshape(-1)
        out[i * hop:i * hop + len(seg)] += seg
    start = nfft
    y = out[start:start + n] if len(out) >= start + n else np.pad(out, (0, start + n - len(out)))[start:start + n]
    y = y - y.mean()
    rms = np.sqrt(np.mean(y * y))
    if rms < 1e-12:  # every talker silent in a very short clip: fall back to pink noise
        return colored_noise(n, rng, 1.0, sr)
    return (y / rms).astype(np.float32)


NOISE_KINDS = ("white", "pink", "brown", "babble")


def make_noise(kind: str, n: int, rng: np.random.Generator, sr: int = 16000) -> np.ndarray:
    """Unit-RMS noise of ``kind`` (one of NOISE_KINDS), length n."""
    if kind == "white":
        return colored_noise(n, rng, 0.0, sr)
    if kind == "pink":
        return colored_noise(n, rng, 1.0, sr)
    if kind == "brown":
        return colored_noise(n, rng, 2.0, sr)
    if kind == "babble":
        return babble_noise(n, rng, sr)
    raise ValueError(f"unknown noise kind {kind!r}; choose one of {', '.join(NOISE_KINDS)}")


def fit_length(noise: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    if len(noise) == 0:
        raise ValueError("empty noise signal")
    if len(noise) >= n:
        off = int(rng.integers(0, len(noise) - n + 1))
        return noise[off:off + n]
    reps = -(-n // len(noise)) + 1
    off = int(rng.integers(0, len(noise)))
    return np.tile(noise, reps)[off:off + n]


def add_noise(x: np.ndarray, snr_db: float, rng: np.random.Generator, kind: str = "white", *,
              sr: int = 16000, noise: np.ndarray | None = None) -> np.ndarray:
    """Return ``x`` plus noise at ``snr_db`` dB SNR, same length, float32.

    SNR is mean power of the whole of ``x`` (pads included, as in Kaldi/ESPnet recipes)
    over that of the noise. ``kind``: white, pink, brown or babble; or pass ``noise`` (any
    recorded noise array at ``sr``), which is randomly cropped or looped to fit. A silent
    ``x`` is returned unchanged (its SNR is undefined). If the mix would clip, the whole mix
    is scaled down, which keeps the SNR.
    """
    x = _as_f32(x)
    ps = _power(x)
    if len(x) == 0 or ps <= 0:
        return x.copy()
    if noise is not None:
        n = fit_length(_as_f32(noise), len(x), rng).astype(np.float64)
        pn = _power(n)
        if pn <= 0:
            return x.copy()
    else:
        n = make_noise(kind, len(x), rng, sr).astype(np.float64)
        pn = _power(n)
    g = math.sqrt(ps / (pn * 10.0 ** (snr_db / 10.0)))
    y = x + g * n
    peak = np.max(np.abs(y))
    if peak > 0.999:
        y *= 0.999 / peak
    return y.astype(np.float32)


def synthetic_rir(sr: int, rt60: float, rng: np.random.Generator, drr_db: float | None = None) -> np.ndarray:
    """A room impulse response: unit direct path, a few early reflections (2-30 ms), then
    exponentially decaying noise reaching -60 dB at ``rt60`` s, its high band decaying
    faster (air and walls absorb highs). ``drr_db`` (direct-to-reverberant energy ratio;
    None draws 0..10 dB) sets how far away the talker sounds."""
    rt60 = float(min(max(rt60, 0.05), 3.0))
    if drr_db is None:
        drr_db = float(rng.uniform(0.0, 10.0))
    length = int(sr * min(rt60 * 1.1, 3.0)) + 1
    t = np.arange(length) / sr
    tail = rng.standard_normal(length) * np.exp(-6.9078 * t / rt60)
    # Frequency-dependent decay: low-pass the late tail progressively by mixing in a
    # smoothed copy whose weight grows with time.
    k = max(1, int(sr / 4000))
    smooth = np.convolve(tail, np.ones(k) / k, mode="same")
    w = np.clip(t / rt60, 0.0, 1.0)
    tail = (1 - w) * tail + w * smooth
    predelay = int(sr * rng.uniform(0.002, 0.01))
    tail[:predelay] = 0.0
    ramp = min(len(tail) - predelay, int(0.005 * sr))
    if ramp > 0:
        tail[predelay:predelay + ramp] *= np.linspace(0, 1, ramp)
    for _ in range(int(rng.integers(3, 8))):
        d = int(sr * rng.uniform(0.002, 0.03))
        if d < length:
            tail[d] += rng.choice((-1.0, 1.0)) * rng.uniform(0.2, 0.6) * math.exp(-6.9078 * d / sr / rt60)
    e_tail = float(np.sum(tail * tail))
    if e_tail > 0:
        tail *= math.sqrt(10.0 ** (-drr_db / 10.0) / e_tail)
    tail[0] = 1.0
    return tail


def fft_size(n: int) -> int:
    """The smallest 5-smooth number (2^a 3^b 5^c) >= ``n``: a length numpy's pocketfft
    transforms fast. Linear convolution by FFT needs any length >= len(x) + len(h) - 1;
    the next power of two is up to 2x that, this at most ~1.2x (e.g. 43,200 instead of
    65,536 for a 2 s utterance and a 0.7 s room response: the convolution took 1.1 instead
    of 2.2 ms, and the training data worker spent ~40 % of its time reverberating)."""
    n = max(int(n), 1)
    best = 1 << (n - 1).bit_length()
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            m = p35
            while m < n:
                m *= 2
            best = min(best, m)
            p35 *= 3
        p5 *= 5
    return best


def reverberate(x: np.ndarray, sr: int, rt60: float, rng: np.random.Generator, *,
                drr_db: float | None = None, rir: np.ndarray | None = None) -> np.ndarray:
    """Convolve ``x`` with a synthetic room impulse response (see synthetic_rir) or the
    given ``rir``. Same length as ``x`` (the tail past the end is cut; the trailing pad
    synthesize() leaves absorbs most of it) and the same RMS, float32."""
    x = _as_f32(x)
    if len(x) == 0:
        return x.copy()
    h = synthetic_rir(sr, rt60, rng, drr_db) if rir is None else _as_f32(rir).astype(np.float64)
    nfft = fft_size(len(x) + len(h) - 1)
    y = np.fft.irfft(np.fft.rfft(x.astype(np.float64), nfft) * np.fft.rfft(h, nfft), nfft)[: len(x)]
    px, py = _power(x), float(np.mean(y * y))
    if py > 0:
        y *= math.sqrt(px / py)
    peak = np.max(np.abs(y))
    if peak > 0.999:
        y *= 0.999 / peak
    return y.astype(np.float32)


def speed_perturb(x: np.ndarray, sr: int, factor: float) -> np.ndarray:
    """Kaldi-style speed perturbation: resample so that played at ``sr`` the audio is
    ``factor`` times faster, tempo and pitch together (like ``sox speed``). The length
    changes: ``len(out) == round(len(x) / factor)`` exactly (0.9 -> 11% longer, 1.1 -> 9%
    shorter); a manifest's durations scale by 1/factor."""
    x = _as_f32(x)
    if factor <= 0:
        raise ValueError(f"speed factor must be positive, got {factor}")
    if factor == 1.0 or len(x) == 0:
        return x.copy()
    want = round(len(x) / factor)
    y = _resample(x, sr * factor, sr)
    if len(y) > want:
        y = y[:want]
    elif len(y) < want:
        y = np.pad(y, (0, want - len(y)))
    return y.astype(np.float32, copy=False)


def _mulaw(x: np.ndarray, mu: float = 255.0) -> np.ndarray:
    # G.711-like 8-bit mu-law: compress, quantise to 256 levels, expand.
    x = np.clip(x, -1.0, 1.0)
    c = np.sign(x) * np.log1p(mu * np.abs(x)) / math.log1p(mu)
    c = np.round(c * 127.0) / 127.0
    return np.sign(c) * np.expm1(np.abs(c) * math.log1p(mu)) / mu


def telephone(x: np.ndarray, sr: int, *, band: tuple = (300.0, 3400.0), mulaw: bool = True) -> np.ndarray:
    """Narrowband telephone channel: resample to 8 kHz, band-pass ``band`` Hz (raised-cosine
    edges), optional 8-bit mu-law companding, back to ``sr``. Same length, float32."""
    x = _as_f32(x)
    if len(x) == 0:
        return x.copy()
    y = _resample(x, sr, 8000).astype(np.float64)
    n = len(y)
    spec = np.fft.rfft(y)
    f = np.fft.rfftfreq(n, d=1 / 8000)
    lo, hi = band
    w = 100.0  # transition width (Hz): a brick wall would ring
    gain = np.clip((f - (lo - w / 2)) / w, 0, 1) * np.clip(((hi + w / 2) - f) / w, 0, 1)
    gain = 0.5 - 0.5 * np.cos(np.pi * gain)
    y = np.fft.irfft(spec * gain, n)
    if mulaw:
        y = _mulaw(y)
    out = _resample(y.astype(np.float32), 8000, sr)
    if len(out) >= len(x):
        out = out[: len(x)]
    else:
        out = np.pad(out, (0, len(x) - len(out)))
    return out.astype(np.float32)


def normalize_rms(x: np.ndarray, target_dbfs: float, peak: float = 0.99) -> np.ndarray:
    """Scale to an RMS of ``target_dbfs`` dB re full scale, then down if the peak would
    exceed ``peak``. Silence is returned unchanged."""
    x = _as_f32(x)
    p = _power(x)
    if p <= 0:
        return x.copy()
    y = x * (10.0 ** (target_dbfs / 20.0) / math.sqrt(p))
    m = float(np.max(np.abs(y)))
    if m > peak:
        y *= peak / m
    return y.astype(np.float32)


@dataclass
class AugmentConfig:
    """Probabilities and ranges for random_augment (and build_corpus)."""

    noise_prob: float = 0.3
    snr_range: tuple = (5.0, 30.0)
    noise_kinds: tuple = NOISE_KINDS
    reverb_prob: float = 0.2
    rt60_range: tuple = (0.2, 0.8)
    speeds: tuple = (1.0,)
    telephone_prob: float = 0.0
    level_range_dbfs: tuple | None = (-32.0, -18.0)


def random_augment(x: np.ndarray, sr: int, rng: np.random.Generator, cfg: AugmentConfig | None = None,
                   noises: Sequence[np.ndarray] | None = None) -> tuple[np.ndarray, dict]:
    """Draw and apply augmentations in the physical order (speed, room, noise, channel,
    level); return (audio, description). ``noises``: recorded noise arrays at ``sr`` that
    may be drawn instead of the synthetic kinds (kind "file")."""
    cfg = cfg or AugmentConfig()
    info: dict = {}
    speed = float(rng.choice(np.asarray(cfg.speeds, dtype=float))) if cfg.speeds else 1.0
    if speed != 1.0:
        x = speed_perturb(x, sr, speed)
        info["speed"] = speed
    if rng.random() < cfg.reverb_prob:
        rt60 = float(rng.uniform(*cfg.rt60_range))
        x = reverberate(x, sr, rt60, rng)
        info["reverb_rt60"] = round(rt60, 3)
    if rng.random() < cfg.noise_prob:
        snr = float(rng.uniform(*cfg.snr_range))
        kinds = list(cfg.noise_kinds) + (["file"] if noises else [])
        kind = str(kinds[int(rng.integers(len(kinds)))])
        if kind == "file":
            idx = int(rng.integers(len(noises)))
            x = add_noise(x, snr, rng, sr=sr, noise=noises[idx])
            info["noise"] = {"kind": "file", "index": idx, "snr_db": round(snr, 2)}
        else:
            x = add_noise(x, snr, rng, kind, sr=sr)
            info["noise"] = {"kind": kind, "snr_db": round(snr, 2)}
    if rng.random() < cfg.telephone_prob:
        x = telephone(x, sr)
        info["telephone"] = True
    if cfg.level_range_dbfs:
        lvl = float(rng.uniform(*cfg.level_range_dbfs))
        x = normalize_rms(x, lvl)
        info["level_dbfs"] = round(lvl, 1)
    return _as_f32(x), info


# ----------------------------------------------------------------------------- corpus
@dataclass
class CorpusStats:
    """What build_corpus did."""

    count: int = 0
    failures: int = 0
    seconds: float = 0.0
    elapsed_s: float = 0.0
    per_voice: dict = field(default_factory=dict)
    failed_per_voice: dict = field(default_factory=dict)
    failure_examples: list = field(default_factory=list)
    manifest: str = ""

    @property
    def hours(self) -> float:
        return self.seconds / 3600.0

    @property
    def speed_x(self) -> float:
        """Audio seconds produced per wall-clock second."""
        return self.seconds / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def as_dict(self) -> dict:
        d = asdict(self)
        d["hours"] = round(self.hours, 4)
        d["speed_x"] = round(self.speed_x, 1)
        return d


_NOISE_CACHE: dict = {}


def _load_noise_dir(noise_dir: str | None, sr: int) -> list:
    """Every readable audio file under noise_dir, mono at sr (cached per worker process)."""
    if not noise_dir:
        return []
    key = (os.path.abspath(noise_dir), sr)
    if key not in _NOISE_CACHE:
        import soundfile as sf

        arrays = []
        for p in sorted(Path(noise_dir).rglob("*")):
            if p.suffix.lower() not in (".wav", ".flac", ".ogg"):
                continue
            try:
                y, s = _read_wav_file(str(p))
                if len(y) and np.all(np.isfinite(y)) and _power(y) > 0:
                    arrays.append(_resample(y, s, sr))
            except (RuntimeError, sf.LibsndfileError) as e:
                log.warning("noise file %s unreadable, skipped: %s", p, e)
        _NOISE_CACHE[key] = arrays
    return _NOISE_CACHE[key]


def _work(item: dict) -> dict:
    """Synthesize + augment + write one utterance. Never raises: failures come back as a
    record so one bad voice or text cannot stop a corpus build."""
    try:
        rng = np.random.default_rng(item["seed"])
        sr = item["sample_rate"]
        x = synthesize(item.get("spoken", item["text"]), item["voice"], item["rate"], item["pitch"], sr, rng=rng)
        cfg = AugmentConfig(**item["aug_cfg"])
        x, aug = random_augment(x, sr, rng, cfg, _load_noise_dir(item["noise_dir"], sr))
        aug = {"rate": item["rate"], "pitch": item["pitch"], **aug}
        write_wav(item["path"], x, sr)
        return {"ok": True, "duration": len(x) / sr, "aug": aug}
    except SynthError as e:
        return {"ok": False, "error": str(e)}
    except Exception as e:  # noqa: BLE001 - anything else is still one failed utterance
        return {"ok": False, "error": f"{item['voice']}: {type(e).__name__}: {e} (text {item['text'][:60]!r})"}


def build_corpus(texts: Sequence[str], voices: Sequence[Voice | str], out_dir: str | os.PathLike,
                 manifest_path: str | os.PathLike, *, seed: int, jobs: int = 2, utts_per_text: int = 1,
                 rate_range: tuple = (0.85, 1.2), pitch_range: tuple | None = (0.85, 1.2),
                 noise_prob: float = 0.3, snr_range: tuple = (5.0, 30.0), noise_kinds: Sequence[str] = NOISE_KINDS,
                 noise_dir: str | os.PathLike | None = None, reverb_prob: float = 0.2,
                 rt60_range: tuple = (0.2, 0.8), speeds: Sequence[float] = (1.0,), telephone_prob: float = 0.0,
                 level_range_dbfs: tuple | None = (-32.0, -18.0), sample_rate: int = 16000,
                 prefix: str = "utt", progress: bool = True, respell: Mapping | None = None) -> CorpusStats:
    """Synthesize every text (``utts_per_text`` times, each with another voice) into
    ``out_dir`` and write a JSON-lines manifest at ``manifest_path``.

    ``respell``: ``{voice id: {word: spelling}}`` for voices of other languages, which read
    the spelling (e.g. Italian ``"uan"`` for "one") while the manifest keeps the word: a
    way to get more, and accented, recorded speakers for a small vocabulary. Such a voice
    only gets texts whose every word its table covers.

    Voices are dealt in shuffled rounds (every voice once per round), so all are used
    evenly. Each utterance draws rate, pitch (None = voices' own pitch) and augmentations
    from its own seed, so the result depends on ``seed`` only, not on ``jobs`` or
    scheduling. Manifest lines, in text order:
    ``{"id": "<prefix>0000012", "audio_filepath": <relative to the manifest's folder>,
    "duration": s, "text": ..., "voice": "espeak:en-us+m3",
    "aug": {"rate":..., "pitch":..., "noise": {...}, ...}}``. Wavs are 16-bit PCM at
    ``sample_rate`` under ``out_dir/NNNN/`` (1000 per folder). Use a distinct ``prefix``
    per corpus when manifests get merged, so ids stay unique.
    Failed utterances are logged, counted and left out; the manifest is written
    atomically (temp file + rename). Returns CorpusStats.
    """
    t0 = time.time()
    voices = [Voice.parse(v) for v in voices]
    if not voices:
        raise SynthError("no voices to synthesize with")
    if jobs < 1 or utts_per_text < 1:
        raise SynthError("jobs and utts_per_text must be at least 1")
    for k in noise_kinds:
        if k not in NOISE_KINDS:
            raise SynthError(f"unknown noise kind {k!r}; choose from {', '.join(NOISE_KINDS)}")
    out_dir = Path(out_dir)
    manifest_path = Path(manifest_path)
    man_dir = manifest_path.parent.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest_path.parent.mkdir(parents=True, exist_ok=True)
    aug_cfg = {
        "noise_prob": noise_prob, "snr_range": tuple(snr_range), "noise_kinds": tuple(noise_kinds),
        "reverb_prob": reverb_prob, "rt60_range": tuple(rt60_range), "speeds": tuple(speeds),
        "telephone_prob": telephone_prob, "level_range_dbfs": tuple(level_range_dbfs) if level_range_dbfs else None,
    }

    respell = {str(Voice.parse(k)): dict(v) for k, v in (respell or {}).items()}

    def can_say(v, text):
        table = respell.get(str(v))
        return table is None or all(w in table for w in text.split())

    rng = np.random.default_rng(seed)
    total = len(texts) * utts_per_text
    order: list = []
    while len(order) < total:  # shuffled rounds: even use of every voice
        order.extend(voices[i] for i in rng.permutation(len(voices)))
    items, unsayable = [], []
    for i in range(total):
        text = str(texts[i // utts_per_text])
        if not can_say(order[i], text):
            # Swap in the next voice in the deal that can say it; keeps the use even.
            j = next((j for j in range(i + 1, len(order)) if can_say(order[j], text)), None)
            if j is None:
                j = next((j for j in range(len(voices)) if can_say(voices[j], text)), None)
                if j is None:
                    unsayable.append(text)
                    continue
                order.append(voices[j])
                j = len(order) - 1
            order[i], order[j] = order[j], order[i]
        irng = np.random.default_rng([seed, i, 0xC7CA])
        rate = round(float(irng.uniform(*rate_range)), 3)
        pitch = round(float(irng.uniform(*pitch_range)), 3) if pitch_range else None
        uid = f"{prefix}{i:07d}"
        items.append({
            "id": uid, "text": text, "voice": str(order[i]), "rate": rate, "pitch": pitch, "seed": [seed, i],
            "spoken": " ".join(respell[str(order[i])][w] for w in text.split()) if str(order[i]) in respell else text,
            "sample_rate": sample_rate, "path": str((out_dir / f"{i // 1000:04d}" / f"{uid}.wav").resolve()),
            "aug_cfg": aug_cfg, "noise_dir": os.fspath(noise_dir) if noise_dir else None,
        })

    stats = CorpusStats(manifest=str(manifest_path))
    if unsayable:
        stats.failures += len(unsayable)
        msg = (f"{len(unsayable)} text(s) skipped: no selected voice's respelling table covers all their words "
               f"(e.g. {unsayable[0]!r})")
        stats.failure_examples.append(msg)
        log.warning(msg)
    per_voice, failed = Counter(), Counter()
    tmp_manifest = manifest_path.with_name(manifest_path.name + f".tmp{os.getpid()}")

    def results():
        if jobs == 1 or total <= 1:
            yield from map(_work, items)
            return
        from concurrent.futures import ProcessPoolExecutor

        chunk = max(1, min(16, total // (jobs * 8)))
        with ProcessPoolExecutor(max_workers=jobs) as ex:
            yield from ex.map(_work, items, chunksize=chunk)

    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        def tqdm(it, **kw):
            return it
    try:
        with open(tmp_manifest, "w", encoding="utf-8") as f:
            bar = tqdm(results(), total=len(items), unit="utt", desc="synth", disable=not progress)
            for item, res in zip(items, bar):
                if res["ok"]:
                    stats.count += 1
                    stats.seconds += res["duration"]
                    per_voice[item["voice"]] += 1
                    rel = os.path.relpath(item["path"], man_dir)
                    f.write(json.dumps({
                        "id": item["id"], "audio_filepath": rel, "duration": round(res["duration"], 3),
                        "text": item["text"], "voice": item["voice"], "aug": res["aug"],
                    }, ensure_ascii=False) + "\n")
                else:
                    stats.failures += 1
                    failed[item["voice"]] += 1
                    if len(stats.failure_examples) < 20:
                        stats.failure_examples.append(res["error"])
                        log.warning("synthesis failed: %s", res["error"])
                    elif len(stats.failure_examples) == 20:
                        stats.failure_examples.append("...")
                        log.warning("more synthesis failures; see the summary at the end")
        os.replace(tmp_manifest, manifest_path)
    finally:
        if tmp_manifest.exists():
            tmp_manifest.unlink()
    stats.per_voice = dict(sorted(per_voice.items()))
    stats.failed_per_voice = dict(sorted(failed.items()))
    stats.elapsed_s = time.time() - t0
    if failed:
        log.warning("%d of %d utterances failed (by voice: %s)", sum(failed.values()), total,
                    ", ".join(f"{v}={c}" for v, c in failed.most_common(10)))
    log.info("wrote %d utterances, %.2f h of audio, to %s in %.1f s (%.0fx real time)",
             stats.count, stats.hours, manifest_path, stats.elapsed_s, stats.speed_x)
    return stats


# ----------------------------------------------------------------------------- command line
def _range(s: str) -> tuple:
    try:
        lo, hi = (float(v) for v in s.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LO,HI (two numbers), got {s!r}") from None
    if lo > hi:
        raise argparse.ArgumentTypeError(f"range {s!r}: LO is above HI")
    return lo, hi


def _prob(s: str) -> float:
    try:
        p = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a probability, got {s!r}") from None
    if not 0.0 <= p <= 1.0:
        raise argparse.ArgumentTypeError(f"probability {s} is not in [0, 1]")
    return p


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Register the synth command's arguments on ``parser`` (used by ``ctcasr synth``)."""
    parser.add_argument("--texts", metavar="FILE", help="UTF-8 text file, one utterance per line (blank lines skipped)")
    parser.add_argument("--out", metavar="DIR", help="folder for the wav files")
    parser.add_argument("--manifest", metavar="FILE", help="JSON-lines manifest to write")
    parser.add_argument("--language", choices=LANGUAGES, default="en", help="voice inventory language (default en)")
    parser.add_argument("--voices", nargs="+", metavar="PATTERN", default=None,
                        help='voice id globs to use, e.g. "espeak:en-us+*" "flite:*" (default: all installed)')
    parser.add_argument("--exclude-voices", nargs="+", metavar="PATTERN", default=None,
                        help="voice id globs to leave out (e.g. the held-out test voices)")
    parser.add_argument("--list-voices", action="store_true", help="print the (filtered) voice inventory and exit")
    parser.add_argument("--seed", type=int, default=0, help="random seed; same seed, same corpus (default 0)")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--utts-per-text", type=int, default=1, help="renditions of each text, each by another voice")
    parser.add_argument("--rate-range", type=_range, default=(0.85, 1.2), metavar="LO,HI", help="speaking rate factors")
    parser.add_argument("--pitch-range", type=_range, default=(0.85, 1.2), metavar="LO,HI", help="pitch factors")
    parser.add_argument("--noise-prob", type=_prob, default=0.3, help="probability of additive noise")
    parser.add_argument("--snr-range", type=_range, default=(5.0, 30.0), metavar="LO,HI", help="SNR range in dB")
    parser.add_argument("--noise-dir", metavar="DIR", help="folder of noise recordings (wav/flac) to mix in too")
    parser.add_argument("--reverb-prob", type=_prob, default=0.2, help="probability of reverberation")
    parser.add_argument("--rt60-range", type=_range, default=(0.2, 0.8), metavar="LO,HI", help="RT60 range in s")
    parser.add_argument("--speeds", type=float, nargs="+", default=[1.0], metavar="F",
                        help="speed-perturbation factors to draw from, e.g. 0.9 1.0 1.1")
    parser.add_argument("--telephone-prob", type=_prob, default=0.0, help="probability of a telephone channel")
    parser.add_argument("--sample-rate", type=int, default=16000, help="output sample rate (default 16000)")
    parser.add_argument("--prefix", default="utt", help="utterance id prefix (default utt); distinct per corpus")
    parser.add_argument("--respell", metavar="FILE.json",
                        help='{"festival:VOICE": {"word": "spelling", ...}, ...}: voices of other languages that '
                             'read respelled words (added to the inventory; --voices still selects)')
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def _read_respell(path) -> dict:
    """Read and check a --respell JSON file: {voice id: {word: spelling}}, installed voices."""
    try:
        with open(path, encoding="utf-8") as f:
            table = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SynthError(f"--respell {path}: cannot read ({e})") from None
    if not isinstance(table, dict) or not all(
            isinstance(t, dict) and all(isinstance(a, str) and isinstance(b, str) and b.strip() for a, b in t.items())
            for t in table.values()):
        raise SynthError(f"--respell {path}: expected {{voice: {{word: spelling}}}} with non-empty strings")
    for v in table:
        voice = Voice.parse(v)
        if voice.engine == "festival" and voice.name not in _festival_voices(all_languages=True):
            raise SynthError(f"--respell {path}: festival voice {voice.name!r} is not installed")
    return table


def run(args: argparse.Namespace) -> int:
    """Execute the synth command; returns the exit status. Errors are one line on stderr."""
    def fail(msg: str, code: int = 2) -> int:
        print(f"ctcasr synth: error: {msg}", file=sys.stderr)
        return code

    try:
        voices = list_voices(args.language)
        if not voices:
            return fail(f"no {args.language} voices installed; {INSTALL_HINT}")
        respell = _read_respell(args.respell) if args.respell else None
        if respell:
            voices = voices + [Voice.parse(v) for v in respell]
        voices = select_voices(voices, args.voices, args.exclude_voices)
        if args.list_voices:
            for v in voices:
                print(v)
            counts = Counter(v.engine for v in voices)
            print(f"{len(voices)} voices: " + ", ".join(f"{e} {counts[e]}" for e in ENGINES if counts[e]), file=sys.stderr)
            return 0
        if not voices:
            return fail("no installed voice matches --voices/--exclude-voices (see --list-voices)")
        missing = [n for n in ("texts", "out", "manifest") if not getattr(args, n)]
        if missing:
            return fail("missing " + ", ".join("--" + m for m in missing))
        if args.jobs < 1 or args.utts_per_text < 1 or args.sample_rate < 8000:
            return fail("--jobs and --utts-per-text must be >= 1 and --sample-rate >= 8000")
        if any(s <= 0 for s in args.speeds):
            return fail("--speeds must be positive")
        if args.noise_dir and not os.path.isdir(args.noise_dir):
            return fail(f"--noise-dir {args.noise_dir}: no such folder")
        try:
            with open(args.texts, encoding="utf-8") as f:
                texts = [ln.strip() for ln in f if ln.strip()]
        except (OSError, UnicodeDecodeError) as e:
            return fail(f"cannot read --texts {args.texts}: {e}")
        if not texts:
            return fail(f"--texts {args.texts} has no non-blank lines")
        stats = build_corpus(
            texts, voices, args.out, args.manifest, seed=args.seed, jobs=args.jobs, utts_per_text=args.utts_per_text,
            rate_range=args.rate_range, pitch_range=args.pitch_range, noise_prob=args.noise_prob,
            snr_range=args.snr_range, noise_dir=args.noise_dir, reverb_prob=args.reverb_prob,
            rt60_range=args.rt60_range, speeds=tuple(args.speeds), telephone_prob=args.telephone_prob,
            sample_rate=args.sample_rate, prefix=args.prefix, progress=not args.quiet, respell=respell,
        )
    except CTCASRError as e:
        return fail(str(e))
    except OSError as e:
        return fail(f"{e.filename or ''}: {e.strerror or e}" if getattr(e, "filename", None) else str(e))
    print(f"wrote {stats.count} utterances ({stats.hours:.3f} h, {len(stats.per_voice)} voices) to {args.manifest}; "
          f"{stats.failures} failed; {stats.speed_x:.0f}x real time", file=sys.stderr)
    if stats.count == 0:
        return fail("every utterance failed; first error: " + (stats.failure_examples[0] if stats.failure_examples else "?"), 1)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ctcasr.synth", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    if not logging.getLogger().handlers:
        # WARNING: failures are reported; the summary is printed by run() itself.
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    try:
        return run(args)
    except KeyboardInterrupt:
        print("ctcasr synth: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    # Re-enter through the package module so worker processes pickle ctcasr.synth._work,
    # not __main__._work.
    from ctcasr.synth import main as _main

    sys.exit(_main())
