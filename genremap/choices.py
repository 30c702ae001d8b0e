"""What the user typed, matched against what exists: target names in any spelling the rule
files accept, and the nearest known names when nothing matches (never a silent empty answer)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from genremap.errors import UsageError
from genremap.normalize import normalize_genre
from genremap.text import escape_unprintable

if TYPE_CHECKING:
    from genremap.engine.model import RuleSet

SUGGESTIONS = 3
MIN_SCORE = 60.0  # rapidfuzz ratio (0-100) of the canonical forms: below this a name is no help


def nearest(
    word: str,
    choices: Sequence[str],
    canonical: Callable[[str], str] = normalize_genre,
    limit: int = SUGGESTIONS,
    min_score: float = MIN_SCORE,
) -> list[str]:
    """Up to `limit` of `choices` closest to `word`, best first, compared by edit distance
    (rapidfuzz ratio) between their `canonical` forms: case, accents, punctuation aside. A plain
    ratio, not WRatio: WRatio scores a short choice inside a long word (`A` in `beatles`) high."""
    from rapidfuzz import fuzz, process

    forms = [canonical(choice) for choice in choices]
    found = process.extract(canonical(word), forms, scorer=fuzz.ratio, limit=limit, score_cutoff=min_score)
    return [str(choices[index]) for _, _, index in found]


def did_you_mean(word: str, choices: Sequence[str], canonical: Callable[[str], str] = normalize_genre) -> str:
    """` (did you mean 'a', 'b' or 'c'?)`, or '' when nothing is close."""
    close = [f"'{escape_unprintable(c)}'" for c in nearest(word, choices, canonical)]
    if not close:
        return ""
    listed = close[0] if len(close) == 1 else f"{', '.join(close[:-1])} or {close[-1]}"
    return f" (did you mean {listed}?)"


def resolve_targets(names: Sequence[str], ruleset: RuleSet, option: str) -> list[str]:
    """The declared targets `names` stand for, in the canonical form rule files use (`Hip-Hop`,
    `hiphop` and `hip hop` are one target). An unknown or repeated name is a UsageError that
    suggests the nearest declared targets."""
    declared = list(ruleset.targets)
    canonical = [normalize_genre(name) for name in names]
    unknown = [
        f"'{escape_unprintable(name)}'{did_you_mean(form or name, declared)}"
        for name, form in zip(names, canonical, strict=True)
        if form not in ruleset.targets
    ]
    if unknown:
        raise UsageError(
            f"{option}: unknown target{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
            f"declared targets: {', '.join(declared)}"
        )
    repeated = sorted({form for form in canonical if canonical.count(form) > 1})
    if repeated:
        raise UsageError(f"{option}: {', '.join(repeated)} given more than once; name each target once")
    return canonical
