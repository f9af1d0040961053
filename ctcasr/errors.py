"""The exceptions a user can meet. The CLI prints their message (one line) and exits non-zero.

Each message says what went wrong, names the file (and line) involved, and where it can,
what to do about it.
"""


class CTCASRError(Exception):
    """Base class for every error ctcasr raises on purpose."""


class AudioError(CTCASRError):
    """An audio file or array that cannot be used (unreadable, empty, not finite, ...)."""


class ModelError(CTCASRError):
    """A model directory that is missing files or whose files do not agree."""


class DataError(CTCASRError):
    """A manifest, Kaldi data dir or transcript that cannot be used."""


class TokenizerError(CTCASRError):
    """A tokens.txt file or a text that the tokenizer cannot handle."""


class ConfigError(CTCASRError):
    """A configuration file with unknown keys or impossible values."""
