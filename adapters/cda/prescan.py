"""A byte-level look at an XML document before (or instead of) parsing it: is there a DOCTYPE,
and how deep do its elements nest? Linear in the input and stops at the first answer; it never
parses entities and never imports an XML library (only `parse.py` does).
"""

from __future__ import annotations

import codecs
import re

# The prolog (XML 1.0 §2.8): optional BOM, XML declaration, comments, PIs and white space; a
# DOCTYPE can only come before the root element. Anchored and possessive: one linear attempt.
_PROLOG_DOCTYPE = re.compile(rb"\A(?:\xef\xbb\xbf)?(?:\s++|<\?.*?\?>|<!--.*?-->)*+<!DOCTYPE", re.S)
# A start tag from "<" to the ">" outside quoted attribute values (">" is legal inside them).
_START_TAG = re.compile(rb"<(?:[^>\"']++|\"[^\"]*+\"|'[^']*+')*+>")
# Encodings that are not ASCII-compatible, so the byte patterns above would not see markup.
_WIDE = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
    # Without a BOM, the first character (XML 1.0 Appendix F.1: "<" in the encoding) tells;
    # the four-byte forms first, as "<\0\0\0" also starts like UTF-16-LE.
    (b"<\x00\x00\x00", "utf-32-le"),
    (b"\x00\x00\x00<", "utf-32-be"),
    (b"<\x00", "utf-16-le"),
    (b"\x00<", "utf-16-be"),
)
# markup opener -> its terminator; the scan skips over these (they hold no elements).
_SKIPPED = ((b"<!--", b"-->"), (b"<![CDATA[", b"]]>"), (b"<?", b"?>"))


def as_ascii_compatible(data: bytes) -> bytes:
    """UTF-16/32 input re-encoded as UTF-8 for scanning (undecodable bytes replaced)."""
    for mark, codec in _WIDE:
        if data.startswith(mark):
            return data.decode(codec, errors="replace").encode("utf-8")
    return data


def has_doctype(data: bytes) -> bool:
    """True when the prolog declares a DOCTYPE (the only place XML allows one)."""
    return _PROLOG_DOCTYPE.match(as_ascii_compatible(data)) is not None


def namespace_declarations(data: bytes) -> int:
    """An upper bound on the namespace declarations (`xmlns` anywhere counts)."""
    return as_ascii_compatible(data).count(b"xmlns")


def exceeds_depth(data: bytes, max_depth: int) -> bool | None:
    """True as soon as elements nest deeper than `max_depth`; False if they never do; None when
    the markup is too broken to tell (an unterminated tag, comment, CDATA section or PI)."""
    data = as_ascii_compatible(data)
    depth, pos = 0, 0
    while (lt := data.find(b"<", pos)) >= 0:
        end = _skip(data, lt)
        if end is None:
            return None
        if end:
            pos = end
        elif data.startswith(b"</", lt):
            depth, pos = depth - 1, lt + 2
        elif (tag := _START_TAG.match(data, lt)) is None:
            return None
        else:
            pos = tag.end()
            depth += data[pos - 2] != ord("/")
            if depth > max_depth:
                return True
    return False


def _skip(data: bytes, lt: int) -> int | None:
    """End of the comment, CDATA section or PI at `lt`; 0 if none starts there; None if one
    starts there and never ends."""
    for opener, closer in _SKIPPED:
        if data.startswith(opener, lt):
            close = data.find(closer, lt + len(opener))
            return None if close < 0 else close + len(closer)
    return 0
