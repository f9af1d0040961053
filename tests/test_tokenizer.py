"""Tokenizer: tokens.txt format, normalisation, CJK, unknown characters."""

import pytest

from ctcasr.errors import TokenizerError
from ctcasr.tokenizer import BLANK, Tokenizer


def test_build_save_load_round_trip(tmp_path):
    tok = Tokenizer.build(["Hello, World!", "don't stop"])
    assert tok.tokens[0] == BLANK and tok.tokens[1] == " "
    tok.save(tmp_path / "tokens.txt")
    lines = (tmp_path / "tokens.txt").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "φ" and lines[1] == "<space>" and "" not in lines
    again = Tokenizer.load(tmp_path / "tokens.txt")
    assert again.tokens == tok.tokens
    for text in ["hello world", "don't stop", "old word"]:
        assert again.decode(again.encode(text)) == again.normalize(text)


def test_normalisation_is_documented_behaviour():
    tok = Tokenizer.build(["abc"])
    assert tok.normalize("  Don’t   STOP!  ") == "don't stop"
    assert tok.normalize("'quoted' rock'n'roll") == "quoted rock'n'roll"
    assert tok.normalize("ＡＢＣ１") == "abc1"  # NFKC folds full-width forms
    assert tok.normalize("a-b, c.") == "a b c"


def test_chinese_characters_without_delimiter():
    tok = Tokenizer.build(["好棒棒！", "谢谢 你"], word_delimiter=None)
    assert " " not in tok.tokens
    assert tok.normalize("好 棒，棒。") == "好棒棒"
    ids = tok.encode("好棒棒")
    assert len(ids) == 3 and ids[1] == ids[2]
    assert tok.decode(ids) == "好棒棒"


def test_unknown_characters_are_reported():
    tok = Tokenizer.build(["abc"])
    assert tok.unknown_chars("abz q") == ["q", "z"]
    with pytest.raises(TokenizerError, match="outside the vocabulary"):
        tok.encode("abz")


def test_decode_ignores_blank_and_collapses_spaces():
    tok = Tokenizer.build(["ab cd"])
    ids = [0, tok.tokens.index(" "), tok.tokens.index("a"), 0, tok.tokens.index(" "), tok.tokens.index(" "),
           tok.tokens.index("c"), tok.tokens.index(" ")]
    assert tok.decode(ids) == "a c"


@pytest.mark.parametrize(
    "content, match",
    [
        ("", "empty"),
        ("a\nb\n", "line 0 must be the blank"),
        ("φ\na\na\n", "appears twice"),
        ("φ\na\n\nb\n", "empty token line"),
        ("φ\na\nb\n", "word delimiter"),
    ],
)
def test_broken_tokens_files(tmp_path, content, match):
    p = tmp_path / "tokens.txt"
    p.write_text(content, encoding="utf-8")
    with pytest.raises(TokenizerError, match=match):
        Tokenizer.load(p)


def test_tokens_file_peer_formats(tmp_path):
    p = tmp_path / "tokens.txt"
    p.write_text("<blank> 0\n<space> 1\na 2\n", encoding="utf-8")
    tok = Tokenizer.load(p)
    assert tok.tokens == ["φ", " ", "a"]
    p.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(TokenizerError, match="UTF-8"):
        Tokenizer.load(p)
    with pytest.raises(TokenizerError, match="not found"):
        Tokenizer.load(tmp_path / "missing.txt")
