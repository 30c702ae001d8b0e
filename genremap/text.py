"""Text from data (artist names, genre strings, rule files) made safe to show or to write.

Names come from Spotify, MusicBrainz and imported tables: anyone can put a newline, an
escape sequence (`\\x1b[2J` clears the screen, `\\x1b]0;...\\x07` retitles the terminal, the
one-byte C1 `\\x9b` starts a sequence too) or a right-to-left override in one. Such characters
are shown as Python-style escapes (`\\x1b`, `\\n`, `\\u202e`), visible and inert.
"""

from __future__ import annotations

import re

# What a terminal acts on rather than shows: C0 controls (newline and tab too), DEL, C1
# controls; line and paragraph separators; the bidirectional overrides and isolates that
# reorder what follows them on screen ("Trojan source"). Joiners and other format characters
# that scripts and emoji need are kept.
_BEYOND_ASCII_UNSAFE = "\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
_TERMINAL_UNSAFE = re.compile(f"[\x00-\x1f{_BEYOND_ASCII_UNSAFE}]")
# JSON escapes C0 controls itself, and its own line breaks and indentation must stay.
_JSON_UNSAFE = re.compile(f"[{_BEYOND_ASCII_UNSAFE}]")


def _escaped(char: str) -> str:
    return repr(char)[1:-1]


def escape_unprintable(text: str) -> str:
    """`text` with every character Python calls unprintable escaped: one line, nothing hidden.

    For messages and YAML comments, where even a no-break space or a byte-order mark is
    better seen than guessed."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else _escaped(ch) for ch in text)


def terminal_safe(text: str) -> str:
    """`text` with what a terminal would act on (controls, separators, bidi overrides) escaped."""
    return _TERMINAL_UNSAFE.sub(lambda m: _escaped(m.group()), text)


def json_terminal_safe(text: str) -> str:
    """JSON text with the terminal-unsafe characters JSON leaves raw written as \\u escapes.

    `json.dumps(..., ensure_ascii=False)` escapes C0 controls but writes DEL, C1 controls,
    U+2028/U+2029 and bidi overrides as they are. They can only occur inside strings, where
    `\\uXXXX` is the same value: the JSON parses to exactly the same data."""
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
