"""`genremap init DIR`: a folder to work in, with plain copies of the packaged rules to edit and
an example `collect.yaml`.

Commands run in that folder use its `rules/` by default (`--rules` overrides), and `genremap
diff` compares them with the packaged rules, so every edit shows. Nothing that exists is ever
overwritten: all targets are checked before the first file is written, and a write that fails
half-way removes what it wrote.
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from genremap.engine import default_rules_dir
from genremap.errors import UsageError
from genremap.text import escape_unprintable

RULE_SUFFIXES = (".yaml", ".yml")

COLLECT_HEADER = """\
# What `genremap collect` searches for when it runs in this folder: it reads ./collect.yaml
# (--config FILE reads another file, --term TEXT replaces the terms). Written by `genremap init`
# from the packaged defaults, the original notebook's search terms; edit it freely.
#
# Keys: terms (search terms), market (an ISO country code in quotes, "" for none),
# results_per_term (1-1000), fetch (all_artists, audio_features, audio_analysis: true/false;
# analysis_segments: 1-10000).
"""


@dataclass(frozen=True)
class Scaffold:
    """The files `init` writes into a folder, in writing order, with their content."""

    folder: Path
    files: tuple[tuple[Path, bytes], ...]

    @property
    def rules_dir(self) -> Path:
        return self.folder / "rules"


def collect_example() -> bytes:
    """The packaged collect.yaml, its opening comment replaced by one about this folder."""
    from genremap.collectors.spotify import default_config_path  # spotipy: only when init runs

    lines = default_config_path().read_text(encoding="utf-8").splitlines(keepends=True)
    body = lines[next(i for i, line in enumerate(lines) if not line.startswith("#")) :]
    return (COLLECT_HEADER + "".join(body)).encode("utf-8")


def plan(folder: Path) -> Scaffold:
    """What `init` would write into `folder`: each packaged rule file, then collect.yaml."""
    packaged = sorted(p for p in default_rules_dir().iterdir() if p.suffix in RULE_SUFFIXES and p.is_file())
    files = [(folder / "rules" / p.name, p.read_bytes()) for p in packaged]
    files.append((folder / "collect.yaml", collect_example()))
    return Scaffold(folder, tuple(files))


def check_free(scaffold: Scaffold) -> None:
    """Refuse, before anything is written, a folder where `init` would overwrite or mix in files."""
    folder, rules = scaffold.folder, scaffold.rules_dir
    shown = escape_unprintable(str(folder))
    for path in (folder, rules):
        if path.exists() and not path.is_dir():
            raise UsageError(
                f"init {shown}: {escape_unprintable(str(path))} is a file, not a folder; choose another DIR"
            )
    taken = [path for path, _ in scaffold.files if path.exists() or path.is_symlink()]
    if taken:
        more = f" (and {len(taken) - 1} more)" if len(taken) > 1 else ""
        raise UsageError(
            f"init {shown}: {escape_unprintable(str(taken[0]))} exists{more}; init never overwrites files: "
            "choose another DIR or move them away (nothing was written)"
        )
    if rules.is_dir() and any(p.suffix in RULE_SUFFIXES for p in rules.iterdir()):
        raise UsageError(
            f"init {shown}: {escape_unprintable(str(rules))} already holds rule files, which the packaged ones would "
            "join; choose another DIR (nothing was written)"
        )


def write(scaffold: Scaffold) -> None:
    """Write every file as new (never replacing one that appeared meanwhile); on failure remove
    what this call wrote and raise a one-line UsageError."""
    written: list[Path] = []
    made = [p for p in (scaffold.rules_dir, *scaffold.rules_dir.parents) if not p.exists()]  # innermost first
    try:
        scaffold.rules_dir.mkdir(parents=True, exist_ok=True)
        for path, content in scaffold.files:
            with path.open("xb") as file:
                written.append(path)
                file.write(content)
    except OSError as exc:
        for path in written:
            path.unlink(missing_ok=True)
        for path in made:  # only folders this call created, and only when left empty
            with suppress(OSError):
                path.rmdir()
        where = escape_unprintable(str(exc.filename or scaffold.folder))
        raise UsageError(
            f"init {escape_unprintable(str(scaffold.folder))}: cannot write {where} ({exc.strerror or exc}); "
            "nothing was kept"
        ) from None


def init_folder(folder: Path) -> Scaffold:
    """Write the packaged rules to FOLDER/rules and an example FOLDER/collect.yaml, all or nothing."""
    scaffold = plan(folder)
    check_free(scaffold)
    write(scaffold)
    return scaffold
