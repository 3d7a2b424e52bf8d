"""adapters/hl7v2/escape.py: each escape sequence, what is kept as it stands, round trip."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.hl7v2.escape import Delimiters, escape, unescape

D = Delimiters()

# any text but NUL: a \X00\ escape is kept as it stands (escape.py; PostgreSQL refuses NUL)
TEXT = st.text(alphabet=st.characters(blacklist_characters="\x00"))


@pytest.mark.parametrize(
    ("er7", "text"),
    [
        ("a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f", "a|b^c&d~e\\f"),
        ("rivi 1\\.br\\rivi 2", "rivi 1\nrivi 2"),
        ("\\XC3A4\\iti", "äiti"),  # UTF-8 bytes
        ("\\XE4\\iti", "äiti"),  # not UTF-8: ISO-8859-1
        ("\\H\\tärkeä\\N\\", "\\H\\tärkeä\\N\\"),  # highlighting: kept for a renderer
        ("\\.sp2\\", "\\.sp2\\"),
        ("\\XZZ\\ \\X1\\", "\\XZZ\\ \\X1\\"),  # malformed hex: kept
        ("C:\\temp", "C:\\temp"),  # unclosed: kept
        ("", ""),
    ],
)
def test_unescape(er7: str, text: str) -> None:
    assert unescape(er7, D) == text


def test_custom_escape_character() -> None:
    d = Delimiters("#", "!", "*", "$", "%")
    assert unescape("a$F$b$E$", d) == "a#b$"
    assert escape("a#b$\\", d) == "a$F$b$E$\\"


def test_escape_leaves_no_delimiter_or_line_end() -> None:
    er7 = escape("a|b^c&d~e\\f\rg\nh", D)
    assert er7 == "a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f\\X0D\\g\\.br\\h"


@given(TEXT)
def test_round_trip(text: str) -> None:
    assert unescape(escape(text, D), D) == text


@given(TEXT)
def test_unescape_never_fails(text: str) -> None:
    assert isinstance(unescape(text, D), str)


def test_an_escape_that_would_decode_to_nul_is_kept_as_it_stands() -> None:
    assert unescape("a\\X00\\b\\X4100\\", D) == "a\\X00\\b\\X4100\\"
