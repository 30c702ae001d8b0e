"""Report data: coverage per target, subgenres, unmapped with suggestions, explanations.

Each function returns plain data (dicts and lists) that the CLI renders as a rich table,
JSON or CSV; nothing here prints.
"""

from __future__ import annotations

import os
import re
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rapidfuzz import fuzz, process

from genremap.dataset.labels import Labelling
from genremap.defaults import EMIT_CONFIDENCE
from genremap.engine import IGNORED, MAPPED, NOT_GENRE, UNMAPPED, CompiledRules, SubgenreDecision
from genremap.engine.loader import display_path
from genremap.engine.policy import ARTIST_STATUSES
from genremap.errors import UsageError
from genremap.normalize import normalize_genre
from genremap.text import escape_unprintable
from genremap.words import counted

STATUS_ROWS = ("unlabelled", "ambiguous", "ignored")


def subgenre_counts(labelling: Labelling) -> dict[str, tuple[int, int]]:
    """Per subgenre: (artists carrying it, tracks those artists hold)."""
    return labelling.subgenre_counts()


def tracks_phrase(tracks: int, track_rows: int) -> str:
    """Track counts in the same words everywhere (report, status, import): the tracks counted,
    and, when some come from an artist table's `count` column rather than track rows, both."""
    if tracks == track_rows:
        return counted(tracks, "track")
    return f"{counted(tracks, 'track')} (counted by an artist table; {counted(track_rows, 'track row')})"


def coverage(labelling: Labelling) -> dict[str, Any]:
    """Per target: artists, tracks, share of tracks, distinct subgenres; plus the other statuses.

    Counted on the labelling's arrays (no per-artist frame is built: `report` stays quick)."""
    labels, rows, tracks = labelling.labels, labelling.rows, labelling.artist_tracks
    total_tracks = int(tracks.sum())
    total_artists = len(tracks)
    present = np.zeros(len(labelling.vocab), dtype=bool)
    present[rows.subgenre] = True
    sub = [labelling.decisions[s] for s, carried in zip(labelling.vocab, present.tolist(), strict=True) if carried]

    def share(tracks: int) -> float:
        return round(tracks / total_tracks, 4) if total_tracks else 0.0

    def count(where: np.ndarray) -> tuple[int, int]:
        return int(where.sum()), int(tracks[where].sum())

    names = list(labelling.ruleset.targets)
    labelled = labels.status == ARTIST_STATUSES.index("labelled")
    subs_by_target = Counter(d.target for d in sub if d.status == MAPPED)
    targets = []
    for code, name in enumerate(names):
        a, t = count(labelled & (labels.target == code))
        targets.append(
            {
                "target": name,
                "artists": a,
                "tracks": t,
                "share": share(t),
                "subgenres": subs_by_target.get(name, 0),
                **source_counts(labelling, labelled & (labels.target == code)),
            }
        )

    def status_row(status: str, subgenres: int) -> dict[str, Any]:
        a, t = count(labels.status == ARTIST_STATUSES.index(status))
        return {"artists": a, "tracks": t, "share": share(t), "subgenres": subgenres}

    ambiguous = labels.status == ARTIST_STATUSES.index("ambiguous")
    ambiguous_subs = len(np.unique(rows.subgenre[ambiguous[rows.artist]]))
    n_no_genres, no_genre_tracks = count((labels.status == ARTIST_STATUSES.index("unlabelled")) & (labels.carried == 0))
    result: dict[str, Any] = {
        "targets": targets,
        "unlabelled": {
            **status_row("unlabelled", sum(d.status == UNMAPPED for d in sub)),
            "without_genres": {"artists": n_no_genres, "tracks": no_genre_tracks},
        },
        "ambiguous": status_row("ambiguous", ambiguous_subs),
        "ignored": status_row("ignored", sum(d.status == IGNORED for d in sub)),
        "totals": {
            "artists": total_artists,
            "tracks": total_tracks,
            "track_rows": (
                int(labelling.artists_in["stored_tracks"].sum())
                if "stored_tracks" in labelling.artists_in
                else total_tracks
            ),
            "share": 1.0 if total_tracks else 0.0,
            "subgenres": len(sub),
            "mapped_subgenres": sum(d.status == MAPPED for d in sub),
            "not_genre_subgenres": sum(d.status == NOT_GENRE for d in sub),  # neither mapped nor unmapped
            "conflicts": sum(d.is_conflict for d in sub),
            **source_counts(labelling, labelled),
        },
        "policy": labelling.policy.name,
        "genre_source": labelling.genre_source,
        "genre_sources": list(labelling.sources),
        "rules": labelling.ruleset.files,
    }
    return result


def source_counts(labelling: Labelling, where: np.ndarray) -> dict[str, int]:
    """`artists_from_<source>` for every stored source: how many of the artists selected by
    `where` took their genres from it."""
    return {f"artists_from_{name}": n for name, n in labelling.labelled_by_source(where).items()}


def source_columns(data: dict[str, Any], every: bool) -> list[str]:
    """The coverage's `artists_from_<source>` columns: all of them (`every`, for CSV), else those
    of the sources that labelled an artist, when more than one did (a table column says
    something only when the sources mix)."""
    columns = [k for k in data["totals"] if k.startswith("artists_from_")]
    if every:
        return columns
    used = [k for k in columns if data["totals"][k]]
    return used if len(used) > 1 else []


def subgenres(labelling: Labelling) -> list[dict[str, Any]]:
    """Every distinct subgenre in the store with its decision and counts, most tracks first."""
    counts = subgenre_counts(labelling)
    raw_forms = labelling.spellings()
    rows: list[dict[str, Any]] = []
    for subgenre, d in labelling.decisions.items():
        if subgenre not in counts:
            continue
        n_artists, n_tracks = counts[subgenre]
        rule = d.rule if d.status == MAPPED else None
        location = rule.location if rule else (d.ignored_by.location if d.ignored_by else None)
        rows.append(
            {
                "subgenre": subgenre,
                "target": d.target or "",
                "status": d.status,
                "rule": rule.name if rule else "",
                "location": str(location) if location else "",
                "artists": n_artists,
                "tracks": n_tracks,
                "conflict": ", ".join(f"{r.name} → {r.target}" for r in d.conflicts),
                "spellings": " | ".join(raw_forms.get(subgenre, [])),
            }
        )
    rows.sort(key=lambda r: (-r["tracks"], -r["artists"], r["subgenre"]))
    return rows


def within_rules_folder(rows: list[dict[str, Any]], folder: Path) -> list[dict[str, Any]]:
    """`rows` with each `location` inside `folder` written relative to it (`10-rock.yaml:68:5`):
    short enough for a table to show whole, where a packaged rule file's full path is not."""
    prefix = display_path(folder).rstrip(os.sep) + os.sep
    return [
        {**row, "location": row["location"][len(prefix) :]} if row["location"].startswith(prefix) else row
        for row in rows
    ]


IGNORE_SUGGESTION = "(ignore)"  # a suggested outcome: leave the subgenre out, as an ignore entry
SHOW_CONFIDENCE = 0.35  # weaker suggestions are not shown
_PRIOR = 1.0  # weight of "no idea" in the confidence: little evidence never reads as certain
# Words that say nothing about the music, left out of the name evidence.
_FILLER_WORDS = frozenset(
    {"and", "n", "of", "the", "y", "e", "de", "la", "el", "di", "da", "do", "du", "des", "del"}
    | {"music", "musica", "classic", "modern", "new", "deep"}
)
# Names of several words that mean one thing, kept whole as name evidence.
_PHRASES = ("r and b", "hip hop", "drum and bass", "rock and roll", "singer songwriter", "new wave")


def _words(name: str) -> set[str]:
    """The words of a subgenre that can say something about its music (phrases kept whole)."""
    words = set()
    for phrase in _PHRASES:
        if phrase not in name:  # the common case: no regex needed
            continue
        name, found = re.subn(rf"\b{phrase}\b", " ", name)
        if found:
            words.add(phrase)
    return (words | set(name.split())) - _FILLER_WORDS


@dataclass
class _Evidence:
    """One kind of evidence for an unmapped subgenre: shares of the possible outcomes (a target or
    IGNORE_SUGGESTION, summing to 1), the weight it carries, and what stands behind each outcome."""

    source: str
    weight: float
    shares: dict[str, float]
    behind: dict[str, list[str]]  # outcome → the decided names supporting it, strongest first
    describe: Callable[[str], str]  # outcome → one phrase for the evidence column


@dataclass
class _Vocabulary:
    """Every name the rules decide (the store's subgenres and the rules' own patterns) with its
    outcome, indexed by word: the ground for name evidence."""

    decisions: dict[str, SubgenreDecision]
    outcome: dict[str, str]
    by_word: dict[str, Counter[str]]
    names_by_word: dict[str, list[str]]
    names: list[str]

    @classmethod
    def build(cls, labelling: Labelling) -> _Vocabulary:
        # Not-genres say nothing about what a subgenre is: they are no evidence for a suggestion.
        decisions = {s: d for s, d in labelling.decisions.items() if d.status in (MAPPED, IGNORED)}
        patterns = [p for r in labelling.ruleset.rules if r.kind != "regex" for p in r.patterns]
        patterns += [p for e in labelling.ruleset.ignore if e.kind != "regex" and not e.not_genre for p in e.patterns]
        fresh = [p for p in dict.fromkeys(patterns) if p not in labelling.decisions]
        decisions |= {s: d for s, d in labelling.compiled.decide_many(fresh).items() if d.status in (MAPPED, IGNORED)}
        outcome = {s: _result_of(d) for s, d in decisions.items()}
        by_word: dict[str, Counter[str]] = {}
        names_by_word: dict[str, list[str]] = {}
        for name, result in outcome.items():
            for word in _words(name):
                by_word.setdefault(word, Counter())[result] += 1
                names_by_word.setdefault(word, []).append(name)
        return cls(decisions, outcome, by_word, names_by_word, list(outcome))


def _result_of(d: SubgenreDecision) -> str:
    return d.target if d.status == MAPPED and d.target else IGNORE_SUGGESTION


def _word_for(outcome: str) -> str:
    return "ignored" if outcome == IGNORE_SUGGESTION else outcome


def _cooccurrence(others: list[list[str]], labelled: Counter[str], vocab: _Vocabulary) -> _Evidence | None:
    """What the rules decide for the other subgenres of the artists carrying it: each artist's
    decided subgenres give it one vote, split among their outcomes."""
    shares: defaultdict[str, float] = defaultdict(float)
    behind: dict[str, Counter[str]] = {}
    voters = 0
    for genres in others:
        decided = [g for g in genres if g in vocab.outcome]
        if not decided:
            continue
        voters += 1
        for g in decided:
            result = vocab.outcome[g]
            shares[result] += 1 / len(decided)
            behind.setdefault(result, Counter())[g] += 1
    if not voters:
        return None

    def describe(result: str) -> str:
        share = shares[result] / voters
        examples = ", ".join(g for g, _ in behind[result].most_common(2))
        k, whose = labelled[result], "its artist's" if voters == 1 else f"its {voters} artists'"
        said = f"{k} of {len(others)} artists carrying it are labelled {result}; " if k else ""
        return f"{said}{whose} other subgenres: {share:.0%} {_word_for(result)} ({examples})"

    return _Evidence(
        "co-occurrence",
        float(min(voters, 4)),
        {r: x / voters for r, x in shares.items()},
        {r: [g for g, _ in c.most_common()] for r, c in behind.items()},
        describe,
    )


def _name_words(subgenre: str, vocab: _Vocabulary) -> _Evidence | None:
    """What the rules decide for the other names that share its words (`mandopop`, `r and b`,
    `death`), each word weighted by how consistently those names are decided."""
    shares: defaultdict[str, float] = defaultdict(float)
    weights: dict[str, float] = {}
    for word in _words(subgenre):
        counts = vocab.by_word.get(word)
        if not counts:
            continue
        n = sum(counts.values())
        purity = max(counts.values()) / n
        weights[word] = purity**2 * min(n, 5) / 5
        for result, k in counts.items():
            shares[result] += weights[word] * k / n
    total = sum(weights.values())
    if not total:
        return None
    ranked = sorted(weights, key=lambda w: (-weights[w], w))

    def describe(result: str) -> str:
        word = max(
            ranked, key=lambda w: (vocab.by_word[w][result] / sum(vocab.by_word[w].values()), weights[w], len(w))
        )
        counts = vocab.by_word[word]
        return f"'{word}': {counts[result]} of {sum(counts.values())} names with it are {_word_for(result)}"

    behind = {r: [n for w in ranked for n in vocab.names_by_word[w] if vocab.outcome[n] == r] for r in shares}
    return _Evidence("name words", min(total, 1.5), {r: x / total for r, x in shares.items()}, behind, describe)


def _similar_names(subgenre: str, vocab: _Vocabulary) -> _Evidence | None:
    """The decided names spelled most like it (rapidfuzz ratio 80 or more): `malaysian pop` for
    `malaysian mandopop`, `italian gothic metal` for `italian gothic`."""
    near = process.extract(subgenre, vocab.names, scorer=fuzz.ratio, score_cutoff=80, limit=3)
    if not near:
        return None
    shares: defaultdict[str, float] = defaultdict(float)
    behind: dict[str, list[str]] = {}
    scores = {name: score for name, score, _ in near}
    for name, score, _ in near:
        result = vocab.outcome[name]
        shares[result] += (score - 70) / 30
        behind.setdefault(result, []).append(name)
    total = sum(shares.values())

    def describe(result: str) -> str:
        name = behind[result][0]
        return f"like '{name}' ({_word_for(result)}, similarity {scores[name]:.0f})"

    return _Evidence("similar names", min(total, 1.0), {r: x / total for r, x in shares.items()}, behind, describe)


def _suggest(evidence: list[_Evidence], vocab: _Vocabulary) -> dict[str, Any]:
    """Pool the evidence: the outcome with the most weighted support, its confidence (that support
    over all the weight plus a prior, so thin evidence stays unsure) and the evidence for it."""
    support: defaultdict[str, float] = defaultdict(float)
    for e in evidence:
        for result, share in e.shares.items():
            support[result] += e.weight * share
    none = {
        "suggested_target": "",
        "confidence": 0.0,
        "suggestion_source": "",
        "evidence": "",
        "ignore_like": "",
        "ignore_reason": "",
    }
    if not support:
        return none
    best, score = min(support.items(), key=lambda kv: (-kv[1], kv[0]))
    confidence = score / (sum(e.weight for e in evidence) + _PRIOR)
    if confidence < SHOW_CONFIDENCE:
        return none
    # The evidence that points to it (its own first choice), strongest first; the rest only counts.
    backing = sorted(
        (e for e in evidence if max(e.shares.values()) == e.shares.get(best)), key=lambda e: -e.weight * e.shares[best]
    )
    like = reason = ""
    if best == IGNORE_SUGGESTION:  # the ignored name behind the strongest evidence, and why it is ignored
        like = backing[0].behind[best][0]
        entry = vocab.decisions[like].ignored_by
        reason = " ".join(entry.reason.split()) if entry is not None else ""
    return {
        "suggested_target": best,
        "confidence": round(confidence, 2),
        "suggestion_source": backing[0].source,
        "evidence": "; ".join(e.describe(best) for e in backing),
        "ignore_like": like,
        "ignore_reason": reason,
    }


def unmapped(labelling: Labelling, top: int | None = 50) -> list[dict[str, Any]]:
    """Unmapped subgenres ranked by tracks affected, each with a suggestion, its confidence and evidence.

    A suggestion is a target or IGNORE_SUGGESTION (leave it out, as the rules do with most of
    the long tail), pooled from three kinds of evidence: co-occurrence (what the rules decide
    for the other subgenres of the artists carrying it), the words of its name, and the most
    similarly spelled decided names. Suggestions below SHOW_CONFIDENCE are left blank."""
    ag = labelling.artist_genres
    artists = labelling.artists.set_index("artist_id")
    counts = subgenre_counts(labelling)
    wanted = [s for s, d in labelling.decisions.items() if d.status == UNMAPPED and s in counts]
    wanted.sort(key=lambda s: (-counts[s][1], -counts[s][0], s))
    if top is not None:
        wanted = wanted[:top]
    if not wanted:
        return []
    carriers = ag[ag["subgenre"].isin(wanted)][["subgenre", "artist_id"]].astype({"subgenre": str})
    carriers["tracks"] = carriers["artist_id"].map(artists["tracks"])
    carriers["name"] = carriers["artist_id"].map(artists["name"])
    example = (
        carriers.sort_values(["subgenre", "tracks", "name"], ascending=[True, False, True], kind="stable")
        .drop_duplicates("subgenre")
        .set_index("subgenre")["name"]
    )
    label = artists["target"].where(artists["status"] == "labelled")
    near = ag[ag["artist_id"].isin(set(carriers["artist_id"]))]
    genres_of: dict[str, list[str]] = {}
    for artist_id, genre in zip(near["artist_id"].tolist(), near["subgenre"].astype(str).tolist(), strict=True):
        genres_of.setdefault(artist_id, []).append(genre)
    carried: dict[str, list[str]] = {}
    for subgenre, artist_id in zip(carriers["subgenre"].tolist(), carriers["artist_id"].tolist(), strict=True):
        carried.setdefault(subgenre, []).append(artist_id)
    vocab = _Vocabulary.build(labelling)
    rows: list[dict[str, Any]] = []
    for subgenre in wanted:
        n_artists, n_tracks = counts[subgenre]
        ids = carried.get(subgenre, [])
        labelled = Counter(str(t) for t in label.reindex(ids).dropna())
        others = [[g for g in genres_of[a] if g != subgenre] for a in ids]
        evidence = [
            e
            for e in (
                _cooccurrence(others, labelled, vocab),
                _name_words(subgenre, vocab),
                _similar_names(subgenre, vocab),
            )
            if e is not None
        ]
        rows.append(
            {
                "subgenre": subgenre,
                "tracks": n_tracks,
                "artists": n_artists,
                "example_artist": str(example.get(subgenre, "")),
                **_suggest(evidence, vocab),
            }
        )
    return rows


def yaml_string(text: str) -> str:
    """`text` as a YAML double-quoted scalar that loads back to exactly `text`.

    Only printable characters other than `"` and `\\` are written as they are; everything
    else (line breaks of every kind YAML knows, controls, separators, surrogates) becomes a
    `\\x`, `\\u` or `\\U` escape, so the value can never end its line or its quotes."""
    out = ['"']
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif char.isprintable():
            out.append(char)
        else:
            code = ord(char)
            out.append(f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def emit_rules_yaml(rows: list[dict[str, Any]], origin: str, min_confidence: float = EMIT_CONFIDENCE) -> str:
    """A commented rule file of the suggestions at least `min_confidence` sure, for a person to
    review: a rule per suggested target, an ignore entry per suggestion to leave a subgenre out.

    Store content (subgenres, example artists) only ever lands in a comment or in a quoted
    string: loaded back, the file holds exactly the suggested rules, whatever the names hold."""
    accepted = [r for r in rows if r["suggested_target"] and r["confidence"] >= min_confidence]
    lines = [
        f"# Rules suggested by `genremap unmapped` from {escape_unprintable(origin)}: the {len(accepted)} "
        f"suggestion(s) with confidence {min_confidence:.2f} or more.",
        "# Suggestions are evidence, not decisions: review each one (decide by what the music is),",
        "# then move the ones you accept into a file under rules/ and run `genremap diff` and `genremap lint`.",
    ]
    rules = [r for r in accepted if r["suggested_target"] != IGNORE_SUGGESTION]
    ignores = [r for r in accepted if r["suggested_target"] == IGNORE_SUGGESTION]
    if rules:
        lines.append("rules:")
    for row in rules:
        lines += [
            *_suggestion_comments(row),
            f"  - name: {yaml_string('suggested ' + row['subgenre'])}",
            f"    target: {yaml_string(row['suggested_target'])}",
            "    kind: exact",
            f"    patterns: [{yaml_string(row['subgenre'])}]",
        ]
    if ignores:
        lines.append("ignore:")
    for row in ignores:
        like = row["ignore_like"]
        why, reason = f"'{like}' is ignored: {row['ignore_reason']}", f"like '{like}' (suggested by genremap unmapped)"
        lines += [
            *_suggestion_comments(row),
            f"  # {escape_unprintable(why)}",
            f"  - subgenres: [{yaml_string(row['subgenre'])}]",
            f"    reason: {yaml_string(reason)}",
        ]
    if not accepted:
        lines.append(f"rules: []  # no suggestion had confidence {min_confidence:.2f} or more")
    return "\n".join(lines) + "\n"


def _suggestion_comments(row: dict[str, Any]) -> list[str]:
    """The two comment lines above a suggested rule: what the subgenre holds, and the evidence."""
    artists = f"{row['artists']} artist" + "s" * (row["artists"] != 1)
    about = f"{row['subgenre']}: {row['tracks']} tracks, {artists} (e.g. {row['example_artist']})"
    evidence = f"confidence {row['confidence']:.2f}, evidence ({row['suggestion_source']}): {row['evidence']}"
    return [f"  # {escape_unprintable(about)}", f"  # {escape_unprintable(evidence)}"]


def check_rules_output(path: Path, force: bool) -> None:
    """Refuse, before any work, an `--emit-rules` path that cannot take a new file.

    A missing parent folder is fine (it is created); a folder, a path below a file, or an
    existing file without `force` is refused with one line."""
    shown = escape_unprintable(str(path))
    if path.is_dir():
        raise UsageError(f"--emit-rules {shown} is a folder: give a file name, e.g. {shown}/suggested.yaml")
    if path.exists() and not force:
        raise UsageError(f"--emit-rules {shown} exists; pass --force to overwrite it")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise UsageError(f"--emit-rules {shown}: {escape_unprintable(str(parent))} is a file, not a folder")
            break


def write_rules_output(path: Path, text: str) -> None:
    """Write a generated rule file whole (a temporary file renamed into place), creating its folder."""
    shown = escape_unprintable(str(path))
    partial = path.with_name(f".{path.name}.partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            partial.write_text(text, encoding="utf-8")
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot write --emit-rules {shown}: {exc.strerror or exc}") from None


def _decision_dict(d: SubgenreDecision) -> dict[str, Any]:
    return {
        "subgenre": d.subgenre,
        "status": d.status,
        "target": d.target,
        "rule": d.rule.name if d.rule else None,
        "location": str(d.rule.location) if d.rule else None,
        "reason": d.reason,
        "conflicts": [{"rule": r.name, "target": r.target, "location": str(r.location)} for r in d.conflicts],
        "ignored_by": (
            {"reason": d.ignored_by.reason, "location": str(d.ignored_by.location)} if d.ignored_by else None
        ),
        "matches": [
            {
                "rule": m.rule.name,
                "target": m.rule.target,
                "kind": m.rule.kind,
                "pattern": m.pattern,
                "priority": m.rule.priority,
                "score": round(m.score, 1),
                "location": str(m.rule.location),
                "vetoed_by": m.vetoed_by,
                "outcome": _outcome(d, m.rule.name, m.vetoed_by),
            }
            for m in d.matches
        ],
    }


def _outcome(d: SubgenreDecision, rule_name: str, vetoed_by: str | None) -> str:
    if vetoed_by is not None:
        return f"vetoed by unless '{vetoed_by}'"
    if d.status == IGNORED:
        return "overridden by ignore"
    if d.status == NOT_GENRE:
        return "overridden by not_genres"
    if d.rule is not None and d.rule.name == rule_name:
        return "winner"
    if any(r.name == rule_name for r in d.conflicts):
        return "lost conflict (same priority, earlier rule wins)"
    return "lower priority"


def explain_subgenre(compiled: CompiledRules, text: str) -> dict[str, Any]:
    """Every rule that matched or was vetoed for `text`, and the final decision."""
    canonical = normalize_genre(text)
    return {"input": text, **_decision_dict(compiled.decide(canonical))}


def decision_lines(data: dict[str, Any], indent: str = "", raw: str | None = None) -> list[str]:
    """A decision (as `explain_subgenre` gives it) as the lines `genremap explain` prints: the
    verdict, then every rule that matched with its outcome, or why none decided."""
    shown = f"'{raw}' → '{data['subgenre']}'" if raw and raw != data["subgenre"] else f"'{data['subgenre']}'"
    verdict = data["target"] if data["status"] == MAPPED else data["status"]
    lines = [f"{indent}{shown}: {verdict}"]
    for m in data["matches"]:
        score = f", score {m['score']:g}" if m["kind"] == "fuzzy" else ""
        lines.append(
            f"{indent}  {m['outcome']:<18} rule '{m['rule']}' → {m['target']} "
            f"({m['kind']} '{m['pattern']}', priority {m['priority']}{score}) at {m['location']}"
        )
    if data["ignored_by"]:
        why = "not a genre" if data["status"] == NOT_GENRE else "ignored"
        lines.append(f"{indent}  {why}: {data['ignored_by']['reason']} at {data['ignored_by']['location']}")
    if not data["matches"] and not data["ignored_by"]:
        lines.append(f"{indent}  no rule matches")
    return lines


EXPLAIN_COLUMNS = [
    "artist",
    "subgenre",
    "status",
    "final_target",
    "rule",
    "target",
    "kind",
    "pattern",
    "priority",
    "score",
    "location",
    "outcome",
]


def explain_rows(decisions: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Explanations (artist name, decision) as rows of EXPLAIN_COLUMNS: one per rule match, with
    the rule's own target beside the subgenre's final status and target; or one row saying why
    no rule decided (the ignore reason and its location, or "no rule matches")."""
    rows = []
    for artist, d in decisions:
        base = {"artist": artist, "subgenre": d["subgenre"], "status": d["status"], "final_target": d["target"]}
        for m in d["matches"]:
            rows.append({**base, **{k: m[k] for k in EXPLAIN_COLUMNS if k in m}})
        if not d["matches"]:
            ignored = d["ignored_by"] or {}
            outcome = ignored.get("reason", "no rule matches")
            rows.append({**base, "location": ignored.get("location"), "outcome": outcome})
    return rows


def _sources_of(
    labelling: Labelling, used: Any, stored: dict[str, list[tuple[str, int | None]]]
) -> list[dict[str, Any]]:
    """Every source of the precedence list, then any other source with genres stored: its
    genres (with their weights), whether it was used, and why not."""
    used = None if pd.isna(used) else used
    names = list(labelling.sources) + sorted(set(stored) - set(labelling.sources))
    out = []
    for name in names:
        genres = stored.get(name, [])
        if name == used:
            why = "used"
        elif not genres:
            why = "asked, gave no genres" if name in stored else "none stored"
        elif name not in labelling.sources:
            why = "not in --genre-source"
        elif used is not None and labelling.sources.index(name) > labelling.sources.index(used):
            why = f"{used} comes first"
        else:
            why = "no usable genres (fewer votes than --min-votes)"
        out.append(
            {
                "source": name,
                "used": name == used,
                "why": why,
                "genres": [{"genre": g, **({} if v is None else {"votes": v})} for g, v in genres],
            }
        )
    return out


def explain_artist(
    labelling: Labelling, artist_id: str, stored: dict[str, list[tuple[str, int | None]]] | None = None
) -> dict[str, Any]:
    """An artist's subgenres, each decision, the policy's computation and the final label; with
    `stored` (Store.genres_of), every source's genres and whether it was used."""
    row = labelling.artists[labelling.artists["artist_id"] == artist_id].iloc[0].to_dict()
    genres = labelling.artist_genres[labelling.artist_genres["artist_id"] == artist_id].sort_values("position")
    items = []
    votes: dict[str, float] = {}
    for _, g in genres.iterrows():
        d = labelling.decisions[g["subgenre"]]
        if d.status == MAPPED and d.rule is not None:
            counted = 1.0 if pd.isna(g["votes"]) else float(g["votes"])  # MusicBrainz's vote count
            votes[d.rule.target] = votes.get(d.rule.target, 0.0) + d.rule.weight * counted
        extra = {} if pd.isna(g["votes"]) else {"votes": int(g["votes"])}
        items.append({"genre": g["genre"], "source": g["source"], **extra, **_decision_dict(d)})
    at = int(np.flatnonzero(labelling.artists_in["artist_id"].to_numpy(dtype=object) == artist_id)[0])
    none = float(labelling.labels.out_of_scope[at])  # 0 unless the policy counts out-of-scope votes
    total = sum(votes.values()) + none
    return {
        "artist_id": artist_id,
        "name": row["name"],
        "tracks": int(row["tracks"]),
        "policy": {
            "name": labelling.policy.name,
            "min_share": labelling.policy.min_share,
            "min_margin": labelling.policy.min_margin,
            "min_votes": labelling.policy.min_votes,
            "out_of_scope": labelling.policy.out_of_scope,
            "related": [list(group) for group in labelling.policy.related],
        },
        "out_of_scope_votes": {"votes": none, "share": round(none / total, 4) if total else 0.0},
        "related_targets_decided": bool(labelling.labels.by_related[at]),
        "genre_source": None if pd.isna(row["genre_source"]) else row["genre_source"],
        "genre_sources": list(labelling.sources),
        "sources": _sources_of(labelling, row["genre_source"], stored or {}),
        "subgenres": items,
        "votes": [
            {"target": t, "votes": v, "share": round(v / total, 4)}
            for t, v in sorted(votes.items(), key=lambda kv: -kv[1])
        ],
        "status": row["status"],
        "target": None if pd.isna(row["target"]) else row["target"],
        "deciding_subgenre": None if pd.isna(row["subgenre"]) else row["subgenre"],
        "rule": None if pd.isna(row["rule"]) else row["rule"],
        "detail": "" if pd.isna(row["detail"]) else row["detail"],
    }
