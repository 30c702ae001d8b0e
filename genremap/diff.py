"""What a rule edit changes, before it is applied: tracks moved between labels, subgenres moved.

Both rule sets label the same store; only what moved is listed, so an unchanged copy of
the rules gives an empty diff.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from genremap.dataset.labels import Labelling
from genremap.engine import default_rules_dir
from genremap.engine.policy import ARTIST_STATUSES
from genremap.errors import UsageError
from genremap.report import subgenre_counts
from genremap.text import escape_unprintable


def label_of(status: pd.Series, target: pd.Series) -> pd.Series:
    """The target when labelled, else the status in parentheses: '(unlabelled)', '(ambiguous)'."""
    return target.where(status == "labelled", "(" + status.astype(str) + ")")


def _outcomes(labelling: Labelling) -> np.ndarray:
    """Per artist (position in `artists_in`): its target when labelled, else '(status)'."""
    names = np.array([*labelling.ruleset.targets, ""], dtype=object)
    statuses = np.array([f"({s})" for s in ARTIST_STATUSES], dtype=object)
    labels = labelling.labels
    return np.where(labels.status == ARTIST_STATUSES.index("labelled"), names[labels.target], statuses[labels.status])


def _moves(base: Labelling, edited: Labelling) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per artist of `base`: its label before, its label after, its tracks."""
    if base.artists_in is edited.artists_in:  # one read of the store: the same artists in order
        return _outcomes(base), _outcomes(edited), base.artist_tracks
    a = base.artists.set_index("artist_id")
    b = edited.artists.set_index("artist_id").reindex(a.index)
    before, after = label_of(a["status"], a["target"]), label_of(b["status"], b["target"])
    return before.to_numpy(dtype=object), after.to_numpy(dtype=object), a["tracks"].to_numpy()


def diff_labellings(base: Labelling, edited: Labelling) -> dict[str, Any]:
    """A from→to matrix of artists and tracks, and the subgenres whose decision moved."""
    was, now, tracks = _moves(base, edited)
    moved = np.flatnonzero(was != now)
    cells: dict[tuple[str, str], list[int]] = {}
    for i, n in zip(moved.tolist(), tracks[moved].tolist(), strict=True):
        cell = cells.setdefault((str(was[i]), str(now[i])), [0, 0])
        cell[0] += 1
        cell[1] += int(n)
    matrix = sorted(cells.items(), key=lambda kv: (-kv[1][1], -kv[1][0], kv[0][0], kv[0][1]))
    per_subgenre = subgenre_counts(base)
    subgenres: list[dict[str, Any]] = []
    for subgenre, (n_artists, n_tracks) in per_subgenre.items():
        before, after = base.decisions[subgenre], edited.decisions.get(subgenre)
        if after is None:
            continue
        label_before = before.target or f"({before.status})"
        label_after = after.target or f"({after.status})"
        if label_before == label_after:
            continue
        subgenres.append(
            {
                "subgenre": subgenre,
                "from": label_before,
                "to": label_after,
                "from_rule": before.rule.name
                if before.rule
                else (before.ignored_by.reason if before.ignored_by else ""),
                "to_rule": after.rule.name if after.rule else (after.ignored_by.reason if after.ignored_by else ""),
                "artists": n_artists,
                "tracks": n_tracks,
            }
        )
    subgenres.sort(key=lambda r: (-r["tracks"], -r["artists"], r["subgenre"]))
    return {
        "base": base.ruleset.files,
        "rules": edited.ruleset.files,
        "artists_moved": len(moved),
        "tracks_moved": int(tracks[moved].sum()),
        "matrix": [{"from": f, "to": t, "artists": a, "tracks": n} for (f, t), (a, n) in matrix],
        "subgenres": subgenres,
    }


ARTIST_MOVE_COLUMNS = ("artist_id", "artist", "from", "to", "tracks")


def moved_artists(base: Labelling, edited: Labelling) -> list[dict[str, Any]]:
    """The artists whose label the edit changes, most tracks first (then by name and id):
    artist_id, artist, from and to (a target, or '(status)'), tracks."""
    was, now, tracks = _moves(base, edited)
    moved = np.flatnonzero(was != now)
    ids = base.artists_in["artist_id"].to_numpy(dtype=object)[moved]
    names = base.artists_in["name"].to_numpy(dtype=object)[moved]
    counts = np.nan_to_num(np.asarray(tracks, dtype=np.float64)[moved]).astype(np.int64)
    order = np.lexsort((ids.astype(str), names.astype(str), -counts))
    return [
        {"artist_id": i, "artist": n, "from": str(f), "to": str(t), "tracks": c}
        for i, n, f, t, c in zip(
            ids[order].tolist(),
            names[order].tolist(),
            was[moved][order].tolist(),
            now[moved][order].tolist(),
            counts[order].tolist(),
            strict=True,
        )
    ]


RULE_SUFFIXES = (".yaml", ".yml")


def _git(top: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", "-C", top, *args], capture_output=True, check=False)


def _git_error(result: subprocess.CompletedProcess[bytes]) -> str:
    """git's complaint, as one line."""
    return escape_unprintable(" ".join(result.stderr.decode("utf-8", "replace").split()))


def rules_at_revision(rules_dir: Path, rev: str, into: Path) -> Path:
    """Write the rule files of `rules_dir` as committed at git revision `rev` into `into`.

    The tree is read with `git ls-tree -z` (names exactly as stored: spaces, non-ASCII
    letters, no quoting) and each file by its blob id with `git cat-file`, so no name is
    parsed twice or left out."""
    shown_rev = escape_unprintable(rev)
    if rev.startswith("-"):
        raise UsageError(f"--rev {shown_rev}: a git revision cannot start with '-'")
    folder = rules_dir.resolve()
    try:
        top = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "--show-toplevel"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        raise UsageError(f"--rev needs {rules_dir} to be inside a git repository") from None
    relative = folder.relative_to(Path(top).resolve()).as_posix()
    listing = _git(top, "ls-tree", "-z", f"{rev}:{'' if relative == '.' else relative}")
    if listing.returncode != 0:
        raise UsageError(f"--rev {shown_rev}: no folder {relative} at that revision ({_git_error(listing)})")
    into.mkdir(parents=True, exist_ok=True)
    for entry in filter(None, listing.stdout.split(b"\0")):
        meta, _, raw_name = entry.partition(b"\t")
        mode, kind, blob = meta.decode("ascii").split()
        name = os.fsdecode(raw_name)
        shown = escape_unprintable(f"{relative}/{name}")
        if kind != "blob" or not name.endswith(RULE_SUFFIXES):
            continue
        if mode == "120000":
            raise UsageError(
                f"--rev {shown_rev}: {shown} is a symbolic link there; diff --rev reads regular files only"
            )
        content = _git(top, "cat-file", "blob", blob)
        if content.returncode != 0:
            raise UsageError(f"--rev {shown_rev}: cannot read {shown} ({_git_error(content)})")
        (into / name).write_bytes(content.stdout)
    return into


def temporary_folder() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="genremap-rules-")


def compared_with(rules: Path, base: Path | None, rev: str | None, base_shown: str) -> str:
    """What `diff` compared the edited rules with, in words: the packaged rules, a folder, a revision."""
    if rev is not None:
        return f"{escape_unprintable(str(rules))} as committed at {escape_unprintable(rev)}"
    if base is not None:
        return base_shown
    return f"the packaged rules ({base_shown})"


def is_packaged(rules: Path) -> bool:
    """Whether `rules` is the packaged rules folder itself (in a checkout, ./rules is: the
    package's `genremap/rules` links to it), so comparing it with the packaged rules shows nothing."""
    return rules.resolve() == default_rules_dir().resolve()


def no_change_message(rules: Path, base: Path | None, rev: str | None, what: str) -> str:
    """The one line `diff` prints when nothing moved, with the way to a diff that can show a
    change when the comparison could not (the packaged rules against themselves)."""
    shown = escape_unprintable(str(rules))
    if base is None and rev is None and is_packaged(rules):
        if not Path("rules").is_dir():
            return (
                "no change: there is no ./rules here, so the packaged rules were compared with themselves; "
                "`genremap init .` writes a copy to edit (or pass --rules DIR)"
            )
        return (
            f"no change: {shown} is the packaged rules folder itself (the package's rules link to it in a "
            "checkout); `genremap diff --rev HEAD` compares it with the last commit, or edit a copy made by "
            "`genremap init DIR`"
        )
    return f"no change: {shown} labels the store exactly as {what}"
