"""Transcript writers: txt, json, srt, vtt, ctm.

Each takes a Transcript (text, words with start_s/end_s/confidence, duration_s) and returns
a string. Subtitle cues group words the way subtitle guidelines do (at most ~42 characters
a line, at most 7 s a cue, a new cue after a pause of 0.8 s) so a long file becomes
readable captions rather than one cue per word or one cue per file.
"""

from __future__ import annotations

import json

FORMATS = ("txt", "json", "srt", "vtt", "ctm")

CUE_MAX_CHARS = 42
CUE_MAX_S = 7.0
CUE_PAUSE_S = 0.8


def to_txt(t) -> str:
    return t.text + "\n"


def to_json(t, source: str | None = None, indent: int | None = None, utt_id: str | None = None) -> str:
    d = {}
    if utt_id is not None:
        d["id"] = utt_id
    if source is not None:
        d["audio_filepath"] = source
    d.update(text=t.text, duration_s=t.duration_s,
             words=[{"word": w.text, "start_s": w.start_s, "end_s": w.end_s, "confidence": w.confidence}
                    for w in t.words])
    return json.dumps(d, ensure_ascii=False, indent=indent) + "\n"


def cues(words, joiner: str = " ", max_chars: int = CUE_MAX_CHARS, max_s: float = CUE_MAX_S,
         pause_s: float = CUE_PAUSE_S) -> list:
    """Group words into ``[(start_s, end_s, text)]`` subtitle cues."""
    out, cur = [], []
    for w in words:
        if cur:
            text_len = len(joiner.join(x.text for x in cur + [w]))
            if (w.start_s - cur[-1].end_s > pause_s or text_len > max_chars or w.end_s - cur[0].start_s > max_s):
                out.append((cur[0].start_s, cur[-1].end_s, joiner.join(x.text for x in cur)))
                cur = []
        cur.append(w)
    if cur:
        out.append((cur[0].start_s, cur[-1].end_s, joiner.join(x.text for x in cur)))
    return out


def _ts(s: float, sep: str) -> str:
    ms = int(round(max(0.0, s) * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    sec, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{sec:02d}{sep}{ms:03d}"


def to_srt(t, joiner: str = " ") -> str:
    blocks = [f"{i}\n{_ts(a, ',')} --> {_ts(b, ',')}\n{text}\n"
              for i, (a, b, text) in enumerate(cues(t.words, joiner), start=1)]
    return "\n".join(blocks)


def to_vtt(t, joiner: str = " ") -> str:
    blocks = [f"{_ts(a, '.')} --> {_ts(b, '.')}\n{text}\n" for a, b, text in cues(t.words, joiner)]
    return "WEBVTT\n\n" + "\n".join(blocks)


def to_ctm(t, utt_id: str, channel: str = "1") -> str:
    """NIST CTM: ``<utt> <channel> <start> <duration> <word> <confidence>``, one word a line."""
    uid = "_".join(str(utt_id).split()) or "utt"  # CTM fields are whitespace-separated
    return "".join(f"{uid} {channel} {w.start_s:.3f} {max(0.0, w.end_s - w.start_s):.3f} {w.text} {w.confidence:.4f}\n"
                   for w in t.words)


def render(t, fmt: str, source: str = "", name: str = "", joiner: str = " ", utt_id: str | None = None) -> str:
    """``name``: the output's name (CTM's utterance field when there is no ``utt_id``);
    ``utt_id``: a manifest or Kaldi entry's id (json's "id")."""
    if fmt == "txt":
        return to_txt(t)
    if fmt == "json":
        return to_json(t, source, utt_id=utt_id)
    if fmt == "srt":
        return to_srt(t, joiner)
    if fmt == "vtt":
        return to_vtt(t, joiner)
    if fmt == "ctm":
        return to_ctm(t, utt_id or name or source)
    raise ValueError(f"unknown output format {fmt!r}; choose one of {', '.join(FORMATS)}")
