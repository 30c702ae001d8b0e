"""Rule regexes: RE2 syntax, matched by RE2 in time linear in the subgenre's length.

Python's `re` backtracks: a pattern like `^(\\w+\\s?)+ pop$` takes hours on a 33-letter
subgenre, and every command that labels would hang on it. RE2 (Google's engine, through the
`google-re2` package) never backtracks, so no rule can hang a command. The price is RE2's
syntax (https://github.com/google/re2/wiki/Syntax): no lookaround, backreferences, atomic
groups, possessive quantifiers or conditionals. `inspect_regex` finds those (and the few
constructs both engines accept but read differently) before RE2 sees the pattern, so the
loader can say which construct to rewrite, and finds nested repetitions for `lint`.

docs/rules.md ("Regex syntax") lists what is accepted.
"""

from __future__ import annotations

import re as _re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import re2

# Deeper group nesting than any real pattern needs; RE2 itself accepts more.
MAX_GROUP_DEPTH = 100
# RE2's own limit on a counted repetition {n,m}.
MAX_REPEAT = 1000

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # RE2 would also log each syntax error to stderr: messages are one line
_OPTIONS.never_capture = True  # only "does it match" is asked: no submatches to track

SYNTAX_HINT = "rule regexes use RE2 syntax (see docs/rules.md, 'Regex syntax')"

# Python-only group openings, longest first, and what to say about each.
_GROUPS = (
    ("(?<=", "lookbehind '(?<=...)' is not supported"),
    ("(?<!", "lookbehind '(?<!...)' is not supported"),
    ("(?=", "lookahead '(?=...)' is not supported"),
    ("(?!", "lookahead '(?!...)' is not supported"),
    ("(?P=", "backreference '(?P=name)' is not supported"),
    ("(?P>", "recursion '(?P>name)' is not supported"),
    ("(?>", "atomic group '(?>...)' is not supported"),
    ("(?(", "conditional '(?(...)...)' is not supported"),
    ("(?#", "comment '(?#...)' is not supported: remove it (YAML comments start with '#')"),
)
# Inline flags RE2 knows: i (ignore case), m (multi-line), s (dot matches newline), U (ungreedy).
_RE2_FLAGS = set("imsU-")
_ESCAPES = {
    "Z": "'\\Z' is not supported: write '\\z' (end of text) or '$'",
    "G": "'\\G' is not supported",
    "u": "'\\u' escapes are not supported: write '\\x{...}' (e.g. '\\x{e9}')",
    "U": "'\\U' escapes are not supported: write '\\x{...}'",
    "N": "'\\N{...}' escapes are not supported: write '\\x{...}' or the character itself",
}
_BRACE = _re.compile(r"\{(\d*)(,?)(\d*)\}")


class RegexError(ValueError):
    """A rule pattern RE2 cannot (or must not) compile; the message says what to change."""


@dataclass(frozen=True)
class RegexCheck:
    """What `inspect_regex` found: a construct to refuse, and a nested repetition to warn about."""

    problem: str | None = None
    nested_repeat: str | None = None  # the repeated group that itself repeats, e.g. '(\\w+\\s?)+'


@dataclass
class _Frame:
    """One open group while scanning: where it starts and whether a repetition is inside it."""

    start: int
    repeats: bool = False


@dataclass
class _Scan:
    """State of one left-to-right scan of a pattern."""

    pattern: str
    frames: list[_Frame]
    problem: str | None = None
    nested: str | None = None
    atom_start: int = -1  # start of the last atom, -1 when there is none to repeat
    atom_repeats: bool = False  # the last atom is a group with a repetition inside


def _skip_class(pattern: str, i: int) -> int:
    """Index just past the character class that starts at `pattern[i] == '['`."""
    j = i + 1
    if j < len(pattern) and pattern[j] == "^":
        j += 1
    if j < len(pattern) and pattern[j] == "]":
        j += 1  # a ']' right after '[' or '[^' is a literal
    while j < len(pattern) and pattern[j] != "]":
        if pattern[j] == "\\":
            j = _skip_escape(pattern, j)
            continue
        if pattern.startswith("[:", j):
            end = pattern.find(":]", j + 2)
            j = end + 2 if end != -1 else j + 1
            continue
        j += 1
    return j + 1


def _skip_escape(pattern: str, i: int) -> int:
    """Index just past the escape that starts at `pattern[i] == '\\'`."""
    if i + 1 >= len(pattern):
        return i + 1
    letter = pattern[i + 1]
    if letter == "Q":  # \Q...\E: literal text
        end = pattern.find("\\E", i + 2)
        return len(pattern) if end == -1 else end + 2
    if letter in "pPx" and pattern.startswith("{", i + 2):
        end = pattern.find("}", i + 3)
        return len(pattern) if end == -1 else end + 1
    return i + 2


def _repeat_range(scan: _Scan, i: int) -> tuple[int, int] | None:
    """(length, largest count) of the quantifier at `i`, or None with `scan.problem` set."""
    pattern = scan.pattern
    char = pattern[i]
    if char in "*+":
        return 1, 2
    if char == "?":
        return 1, 1
    brace = _BRACE.match(pattern, i)
    if brace is None:
        return 0, 0  # a '{' RE2 and Python both read as literal text
    low, comma, high = brace.groups()
    if not low:
        scan.problem = (
            f"'{brace.group()}' is read as literal text by RE2 (Python reads it as a repetition):"
            f" write '{{0{comma}{high}}}', or '\\{{' for a literal brace"
        )
        return None
    if int(low) > MAX_REPEAT or (high and int(high) > MAX_REPEAT):
        scan.problem = f"repetition count in '{brace.group()}' is over {MAX_REPEAT}"
        return None
    most = int(high) if high else (int(low) if not comma else MAX_REPEAT + 1)
    return len(brace.group()), most


def _quantifier(scan: _Scan, i: int) -> int | None:
    """Handle a quantifier at `i`; the index after it, or None when it is not a quantifier."""
    found = _repeat_range(scan, i)
    if found is None:
        return len(scan.pattern)
    length, most = found
    if length == 0:
        return None
    j = i + length
    if j < len(scan.pattern) and scan.pattern[j] == "+":
        scan.problem = f"possessive quantifier '{scan.pattern[i : j + 1]}' is not supported: drop the last '+'"
        return len(scan.pattern)
    if j < len(scan.pattern) and scan.pattern[j] == "?":
        j += 1  # lazy: same matches
    if most > 1 and scan.atom_start >= 0:
        if scan.atom_repeats and scan.nested is None:
            scan.nested = scan.pattern[scan.atom_start : j]
        if scan.frames:
            scan.frames[-1].repeats = True
    scan.atom_start = -1
    return j


def _open_group(scan: _Scan, i: int) -> int:
    """Handle a '(' at `i`; the index after its opening."""
    pattern = scan.pattern
    for opening, what in _GROUPS:
        if pattern.startswith(opening, i):
            scan.problem = f"{what}: {SYNTAX_HINT}, which has no lookaround, backreferences or atomic groups"
            return len(pattern)
    j = i + 1
    if pattern.startswith("?", j) and not pattern.startswith(("?P<", "?<", "?:"), j):
        end = j + 1
        while end < len(pattern) and pattern[end] not in ":)":
            end += 1
        flags = pattern[j + 1 : end]
        unknown = sorted(set(flags) - _RE2_FLAGS)
        if unknown:
            scan.problem = f"inline flag '{unknown[0]}' in '(?{flags}' is not supported (RE2 knows i, m, s and U)"
            return len(pattern)
    scan.frames.append(_Frame(i))
    if len(scan.frames) > MAX_GROUP_DEPTH:
        scan.problem = f"groups nested more than {MAX_GROUP_DEPTH} deep: nested too deeply"
        return len(pattern)
    scan.atom_start = -1
    return j


def _close_group(scan: _Scan, i: int) -> int:
    """Handle a ')' at `i`: the group becomes the atom a quantifier may repeat."""
    if not scan.frames:
        scan.atom_start = -1  # unbalanced: RE2 reports it
        return i + 1
    frame = scan.frames.pop()
    if scan.frames and frame.repeats:
        scan.frames[-1].repeats = True
    scan.atom_start, scan.atom_repeats = frame.start, frame.repeats
    return i + 1


def _escape(scan: _Scan, i: int) -> int:
    """Handle an escape at `i` outside a character class."""
    letter = scan.pattern[i + 1] if i + 1 < len(scan.pattern) else ""
    if letter in "123456789":
        scan.problem = f"backreference '\\{letter}' is not supported: {SYNTAX_HINT}, which has no backreferences"
        return len(scan.pattern)
    if letter in _ESCAPES:
        scan.problem = _ESCAPES[letter]
        return len(scan.pattern)
    scan.atom_start, scan.atom_repeats = i, False
    return _skip_escape(scan.pattern, i)


def inspect_regex(pattern: str) -> RegexCheck:
    """Scan `pattern` once (no recursion): a construct RE2 lacks or reads differently, and
    the first repetition of something that itself repeats (catastrophic for backtracking
    engines, harmless for RE2)."""
    scan = _Scan(pattern, [])
    i = 0
    while i < len(pattern) and scan.problem is None:
        char = pattern[i]
        if char == "\\":
            i = _escape(scan, i)
        elif char == "[":
            scan.atom_start, scan.atom_repeats = i, False
            i = _skip_class(pattern, i)
        elif char == "(":
            i = _open_group(scan, i)
        elif char == ")":
            i = _close_group(scan, i)
        elif char == "|":
            scan.atom_start = -1
            i += 1
        elif char in "*+?{":
            after = _quantifier(scan, i)
            if after is None:  # a literal '{'
                scan.atom_start, scan.atom_repeats = i, False
                i += 1
            else:
                i = after
        else:
            scan.atom_start, scan.atom_repeats = i, False
            i += 1
    return RegexCheck(scan.problem, scan.nested)


@lru_cache(maxsize=4096)
def compile_regex(pattern: str) -> Any:
    """`pattern` compiled by RE2; RegexError says what to change when it cannot be."""
    problem = inspect_regex(pattern).problem
    if problem is not None:
        raise RegexError(problem)
    try:
        return re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        detail = exc.args[0] if exc.args else exc
        text = detail.decode("utf-8", "replace") if isinstance(detail, bytes) else str(detail)
        raise RegexError(f"{text}; {SYNTAX_HINT}") from None


def _searcher(compiled: Any) -> Callable[[str], bool]:
    """A yes/no search with `compiled`, about twice as fast as `compiled.search`.

    `search` builds a match object and maps byte offsets back to characters; a yes/no answer
    needs neither, so this calls the binding's `Match` directly (google-re2 1.1 to 1.1.2025*
    all have it). Should a release lack it or change it, the public `search` is used."""

    def public(text: str) -> bool:
        return compiled.search(text) is not None

    raw = getattr(compiled, "_regexp", None)
    unanchored = getattr(getattr(re2, "_Anchor", None), "UNANCHORED", None)
    if raw is None or unanchored is None:
        return public

    def direct(text: str) -> bool:
        data = text.encode()
        return bool(raw.Match(unanchored, data, 0, len(data))[0][0] >= 0)

    try:
        if all(direct(probe) == public(probe) for probe in ("", "a b", "\u00e9 pop")):
            return direct
    except Exception:  # an API that changed shape: fall back
        pass
    return public


def regex_search(pattern: str, text: str) -> bool:
    """Whether `pattern` (already checked by the loader) matches somewhere in `text`."""
    return compile_regex(pattern).search(text) is not None


class RegexUnion:
    """Which of several checked patterns match a text, in one RE2 pass when none does.

    Most subgenres match no regex: one search of the patterns' union answers that, instead of
    one search per pattern. Only when the union matches is each pattern searched on its own.
    """

    def __init__(self, patterns: list[str]) -> None:
        self.searches = [_searcher(compile_regex(p)) for p in patterns]
        # '\Q' quotes up to '\E' or the end of the pattern: it would swallow the ')' around it.
        joinable = [p for p in patterns if "\\Q" not in p]
        self.always = [i for i, p in enumerate(patterns) if "\\Q" in p]
        self.union: Callable[[str], bool] | None = None
        if len(joinable) > 1:
            try:
                self.union = _searcher(re2.compile("|".join(f"(?:{p})" for p in joinable), _OPTIONS))
            except re2.error:  # too large together: search them one by one
                self.always = list(range(len(patterns)))

    def matching(self, text: str) -> list[int]:
        """Positions (in the patterns given) of the patterns that match somewhere in `text`."""
        if self.union is not None and not self.union(text):
            return [i for i in self.always if self.searches[i](text)]
        return [i for i, search in enumerate(self.searches) if search(text)]
