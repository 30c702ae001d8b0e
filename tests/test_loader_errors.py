"""Rule-file errors: one line `FILE:LINE:COL: message` (1-based), exit status 2, no traceback.

One table of broken rule files, each with the exact line and column of the offending node and
a fragment of the message; then the same errors through every command that loads rules.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from genremap.cli import app
from genremap.engine import load_rules
from genremap.errors import RuleErrors

# The nine targets, in their own file as in the packaged rules: `rock` is at line 3, column 3.
TARGETS = """\
# The dataset's classes.
targets:
  rock: guitar bands
  metal: heavy guitars
  jazz: swing to fusion
  blues: delta and chicago
  disco: dance floor
  house: electronic dance music
  classical: art music
  hip hop: rap
  country: nashville and roots
"""

# A valid rule; the cases below break it one way at a time. Positions (1-based):
#   line 2: the rule mapping starts at column 5, its name value at column 11
#   line 3: the target value at column 13;  line 4: the kind value at column 11
#   line 5: the patterns value at column 15, its first item at column 16
HEAD = """\
rules:
  - name: trap
    target: hip hop
    kind: keyword
"""
VALID = HEAD + "    patterns: [trap]\n"
FUZZY = HEAD.replace("keyword", "fuzzy") + "    patterns: [trap]\n"
REGEX = HEAD.replace("keyword", "regex")
SECOND_TRAP = "  - name: trap\n    target: rock\n    kind: keyword\n    patterns: [drill]\n"

LOCATED = re.compile(r"^[^\n]+:\d+:\d+: [^\n]+$")
RUNNER = CliRunner()
ENV = {"COLUMNS": "120"}


@dataclass(frozen=True)
class Case:
    """A broken rule folder and where (file, 1-based line and column) its first error is."""

    text: str | bytes  # rules/10-case.yaml
    line: int
    column: int
    fragment: str
    file: str = "10-case.yaml"
    extra: tuple[tuple[str, str], ...] = ()  # more files of the rules folder

    def write(self, rules: Path) -> None:
        path = rules / "10-case.yaml"
        if isinstance(self.text, bytes):
            path.write_bytes(self.text)
        else:
            path.write_text(self.text, encoding="utf-8")
        for name, text in self.extra:
            (rules / name).write_text(text, encoding="utf-8")

    @property
    def location(self) -> str:
        return f"rules/{self.file}:{self.line}:{self.column}"


# fmt: off
CASES = [
    # --- YAML syntax -----------------------------------------------------------------------
    pytest.param(
        Case(HEAD + "    patterns: [trap, drill\n", 5, 15, "'[' is never closed"),
        id="yaml-unclosed-bracket",
    ),
    pytest.param(
        Case("rules:\n  - name: 'trap\n", 2, 11, "quoted string is never closed"),
        id="yaml-unclosed-quote",
    ),
    pytest.param(
        Case(VALID + "   priority: 3\n", 6, 4, "indented differently"),
        id="yaml-bad-indentation",
    ),
    pytest.param(
        Case(HEAD + "\tpatterns: [trap]\n", 5, 1, "tab character"),
        id="yaml-tab",
    ),
    pytest.param(
        Case("rules:\n  - name: trap: drill\n", 2, 15, "mapping values are not allowed"),
        id="yaml-colon-in-value",
    ),
    pytest.param(
        Case("policy: vote\n---\npolicy: first\n", 2, 1, "one YAML document"),
        id="yaml-two-documents",
    ),
    pytest.param(
        Case("rules: \x00\n", 1, 8, "U+0000"),
        id="yaml-control-character",
    ),
    pytest.param(
        # the top-level mapping is level 1, so the 50th '[' (column 57) is level 51
        Case("rules: " + "[" * 60 + "]" * 60 + "\n", 1, 57, "nested more than 50 levels"),
        id="yaml-nested-too-deep",
    ),
    pytest.param(
        Case("rules: &r [*r]\n", 1, 8, "recursive alias"),
        id="yaml-recursive-alias",
    ),
    pytest.param(
        Case("policy: !!python/object:os.system vote\n", 1, 9, "unsupported YAML tag"),
        id="yaml-python-tag",
    ),
    pytest.param(
        Case("policy:\n  name: vote\n  min_share: !!float lots\n", 3, 14, "not a valid !!float"),
        id="yaml-bad-tagged-value",
    ),
    pytest.param(
        Case("policy:\n  <<: {name: vote}\n", 2, 3, "merge keys"),
        id="yaml-merge-key",
    ),
    pytest.param(
        Case("? [a, b]\n: 1\n", 1, 3, "keys must be plain strings"),
        id="yaml-list-as-key",
    ),
    pytest.param(
        Case(b"rules:\n  - name: tr\xe9p\n", 2, 13, "not UTF-8 text: byte 0xe9"),
        id="not-utf8",
    ),
    pytest.param(
        Case(VALID + "    kind: exact\n", 6, 5, "duplicate key 'kind' (first at line 4, column 5)"),
        id="duplicate-yaml-key",
    ),
    # --- shape and keys --------------------------------------------------------------------
    pytest.param(
        Case("- name: trap\n  target: hip hop\n", 1, 1, "must be a mapping with keys targets"),
        id="top-level-list",
    ),
    pytest.param(
        Case("rules:\n  trap: hip hop\n", 2, 3, "'rules' must be a list"),
        id="rules-not-a-list",
    ),
    pytest.param(
        Case("rulez:\n  - name: trap\n", 1, 1, "unknown key 'rulez' at top level (did you mean 'rules'?)"),
        id="unknown-top-level-key",
    ),
    pytest.param(
        Case(HEAD + "    patern: [trap]\n", 5, 5, "unknown key 'patern' in rule 'trap' (did you mean 'patterns'?)"),
        id="unknown-rule-key",
    ),
    pytest.param(
        Case("rules:\n  - name: trap\n    kind: keyword\n    patterns: [trap]\n", 2, 5, "missing key 'target' in rule 'trap'"),
        id="missing-target",
    ),
    pytest.param(
        Case("rules:\n  - target: hip hop\n    kind: keyword\n    patterns: [trap]\n", 2, 5, "missing key 'name' in rule #1"),
        id="missing-name",
    ),
    # --- rule fields -----------------------------------------------------------------------
    pytest.param(
        Case(VALID.replace("kind: keyword", "kind: keywrd"), 4, 11, "unknown kind 'keywrd' in rule 'trap' (did you mean 'keyword'?)"),
        id="unknown-kind",
    ),
    pytest.param(
        Case(VALID.replace("hip hop", "rok"), 3, 13, "unknown target 'rok' in rule 'trap' (did you mean 'rock'?)"),
        id="unknown-target",
    ),
    pytest.param(
        Case(VALID.replace("hip hop", "?!"), 3, 13, "target '?!' in rule 'trap' has no letters or digits"),
        id="target-only-punctuation",
    ),
    pytest.param(
        Case(REGEX + "    patterns: [ok, '[unclosed']\n", 5, 20, "bad regex '[unclosed' in rule 'trap'"),
        id="bad-regex",
    ),
    pytest.param(
        Case(REGEX + "    patterns: 'a{4294967296}'\n", 5, 15, "bad regex 'a{4294967296}'"),
        id="regex-repeat-too-large",
    ),
    pytest.param(
        Case(REGEX + "    patterns: ['" + "(" * 1200 + ")" * 1200 + "']\n", 5, 16, "nested too deeply"),
        id="regex-nested-too-deep",
    ),
    # Rule regexes are RE2 (linear time): Python-only syntax is refused, naming the construct.
    pytest.param(
        Case(REGEX + "    patterns: [ok, '(?<!dark )trap']\n", 5, 20, "bad regex '(?<!dark )trap' in rule 'trap': lookbehind '(?<!...)' is not supported: rule regexes use RE2 syntax"),
        id="regex-lookbehind",
    ),
    pytest.param(
        Case(REGEX + "    patterns: '^trap(?= metal)'\n", 5, 15, "lookahead '(?=...)' is not supported"),
        id="regex-lookahead",
    ),
    pytest.param(
        Case(REGEX + "    patterns: ['(\\w+) \\1']\n", 5, 16, "backreference '\\1' is not supported"),
        id="regex-backreference",
    ),
    pytest.param(
        Case(REGEX.replace("kind: regex", "kind: keyword") + "    patterns: [trap]\n    unless: ['(?>latin) trap']\n    unless_kind: regex\n", 6, 14, "atomic group"),
        id="regex-atomic-group-in-unless",
    ),
    pytest.param(
        Case("ignore:\n  - kind: regex\n    patterns: ['indie\\Z']\n    reason: scenes\n", 3, 16, "'\\Z' is not supported: write '\\z' (end of text) or '$'"),
        id="regex-backslash-Z-in-ignore",
    ),
    pytest.param(
        Case(REGEX + "    patterns: ['o{,2}']\n", 5, 16, "'{,2}' is read as literal text by RE2"),
        id="regex-brace-without-minimum",
    ),
    pytest.param(
        Case(FUZZY + "    threshold: 150\n", 6, 16, "threshold 150 in rule 'trap' is out of range: it must be between 0 and 100"),
        id="threshold-150",
    ),
    pytest.param(
        Case(FUZZY + "    threshold: -1\n", 6, 16, "threshold -1 in rule 'trap' is out of range"),
        id="threshold-negative",
    ),
    pytest.param(
        Case(FUZZY + "    threshold: .nan\n", 6, 16, "threshold nan in rule 'trap' must be a finite number"),
        id="threshold-nan",
    ),
    pytest.param(
        Case(VALID + "    threshold: 80\n", 6, 5, "'threshold' in rule 'trap' only applies to fuzzy rules"),
        id="threshold-on-keyword-rule",
    ),
    pytest.param(
        Case(FUZZY + "    scorer: ratoi\n", 6, 13, "unknown scorer 'ratoi' in rule 'trap' (did you mean 'ratio'?)"),
        id="unknown-scorer",
    ),
    pytest.param(
        Case(HEAD + "    patterns: []\n", 5, 15, "empty patterns in rule 'trap'"),
        id="empty-patterns",
    ),
    pytest.param(
        Case(HEAD + "    patterns: [trap, '?!']\n", 5, 22, "pattern '?!' in rule 'trap' has no letters or digits"),
        id="pattern-only-punctuation",
    ),
    pytest.param(
        Case(HEAD + "    patterns: 42\n", 5, 15, "must be a string or a list of strings, not the number 42"),
        id="patterns-a-number",
    ),
    pytest.param(
        Case(HEAD + "    patterns: {a: b}\n", 5, 15, "must be a string or a list of strings, not a mapping"),
        id="patterns-a-mapping",
    ),
    pytest.param(
        Case(HEAD + "    patterns: [trap, 42]\n", 5, 22, "patterns entry #2 in rule 'trap' must be a non-empty string, not the number 42"),
        id="pattern-item-a-number",
    ),
    pytest.param(
        Case(VALID + "    priority: high\n", 6, 15, "'priority' in rule 'trap' must be an integer, not the string 'high'"),
        id="priority-a-string",
    ),
    pytest.param(
        Case(VALID + "    weight: 0\n", 6, 13, "weight 0 in rule 'trap' is out of range: it must be greater than 0"),
        id="weight-zero",
    ),
    # --- duplicates ------------------------------------------------------------------------
    pytest.param(
        Case(VALID + SECOND_TRAP, 6, 11, "duplicate rule name 'trap' (first defined at rules/10-case.yaml:2:5)"),
        id="duplicate-rule-name-same-file",
    ),
    pytest.param(
        Case(
            VALID, 2, 11, "duplicate rule name 'trap' (first defined at rules/10-case.yaml:2:5)",
            file="20-more.yaml", extra=(("20-more.yaml", "rules:\n" + SECOND_TRAP),),
        ),
        id="duplicate-rule-name-across-files",
    ),
    pytest.param(
        Case("targets:\n  rock: again\n", 2, 3, "target 'rock' is declared twice (first at rules/00-targets.yaml:3:3)"),
        id="duplicate-target-across-files",
    ),
    pytest.param(
        Case("targets:\n  Hip-Hop: again\n", 2, 3, "target 'hip hop' is declared twice (first at rules/00-targets.yaml:10:3)"),
        id="duplicate-target-other-spelling",
    ),
    # --- ignore entries and policy ---------------------------------------------------------
    pytest.param(
        Case("ignore:\n  - subgenre: pop\n", 2, 5, "missing key 'reason' in ignore entry #1"),
        id="ignore-without-reason",
    ),
    pytest.param(
        Case("ignore:\n  - reason: out of scope\n", 2, 5, "ignore entry #1 needs 'subgenre', 'subgenres' or 'patterns'"),
        id="ignore-without-subgenres",
    ),
    pytest.param(
        Case("policy: votes\n", 1, 9, "unknown policy name 'votes' (did you mean 'vote'?)"),
        id="unknown-policy",
    ),
    pytest.param(
        Case("policy:\n  name: voet\n", 2, 9, "unknown policy name 'voet' (did you mean 'vote'?)"),
        id="unknown-policy-in-mapping",
    ),
    pytest.param(
        Case("policy:\n  name: vote\n  min_share: 1.5\n", 3, 14, "min_share 1.5 in policy is out of range: it must be between 0 and 1"),
        id="min-share-out-of-range",
    ),
]
# fmt: on


@pytest.fixture
def rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`rules/` in a fresh working folder (so locations read `rules/FILE:LINE:COL`)."""
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "00-targets.yaml").write_text(TARGETS, encoding="utf-8")
    return folder


def first_error(folder: Path) -> str:
    with pytest.raises(RuleErrors) as caught:
        load_rules(folder)
    return caught.value.message


@pytest.mark.parametrize("case", CASES)
def test_loader_error_is_one_located_line(rules: Path, case: Case) -> None:
    case.write(rules)
    message = first_error(rules)
    assert LOCATED.match(message), message
    assert message.startswith(case.location + ": "), message
    assert case.fragment in message, message


def test_targets_are_canonicalised(rules: Path) -> None:
    """`hip-hop`, `Hip Hop` and `hiphop` all name the declared target `hip hop`."""
    (rules / "10-case.yaml").write_text(
        VALID.replace("hip hop", "hip-hop")
        + "  - name: rap\n    target: Hip Hop\n    kind: keyword\n    patterns: [rap]\n"
        + "  - name: boom-bap\n    target: hiphop\n    kind: keyword\n    patterns: [boom bap]\n",
        encoding="utf-8",
    )
    ruleset = load_rules(rules)
    assert [r.target for r in ruleset.rules] == ["hip hop"] * 3


def test_the_base_case_is_valid(rules: Path) -> None:
    """Every case above breaks a rule file that is otherwise fine."""
    for text in (VALID, FUZZY + "    threshold: 80\n", REGEX + "    patterns: ['^dark']\n"):
        (rules / "10-case.yaml").write_text(text, encoding="utf-8")
        assert [r.name for r in load_rules(rules).rules] == ["trap"]


# --- every command that loads rules ---------------------------------------------------------

CLI_SAMPLE = {
    "yaml-unclosed-bracket",
    "not-utf8",
    "unknown-kind",
    "unknown-target",
    "duplicate-rule-name-across-files",
    "min-share-out-of-range",
    "regex-lookbehind",
}
CLI_CASES = [p for p in CASES if p.id in CLI_SAMPLE]


@pytest.fixture(scope="module")
def cli_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny store made with `genremap import`."""
    folder = tmp_path_factory.mktemp("store")
    csv = folder / "artists.csv"
    csv.write_text(
        'artist_id,artist_name,genres,track_count\na1,Trapper,"dark trap;trap",3\na2,Rocky,"classic rock",2\n',
        encoding="utf-8",
    )
    db = folder / "store.db"
    result = RUNNER.invoke(app, ["import", str(csv), "--db", str(db)], env=ENV, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return db


def commands(rules: Path, db: Path) -> dict[str, list[str]]:
    common = ["--rules", str(rules), "--db", str(db)]
    return {
        "lint": ["lint", *common],
        "report": ["report", *common],
        "build": ["build", *common, "--out", str(db.parent / "dataset")],
        "explain": ["explain", "dark trap", *common],
        "unmapped": ["unmapped", *common],
        "subgenres": ["subgenres", *common],
        "diff": ["diff", *common],
        "artists": ["artists", *common],
    }


COMMANDS = ["lint", "report", "build", "explain", "unmapped", "subgenres", "diff", "artists"]


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("case", CLI_CASES)
def test_cli_fails_with_one_located_line(rules: Path, cli_store: Path, case: Case, command: str) -> None:
    case.write(rules)
    result = RUNNER.invoke(app, commands(rules, cli_store)[command], env=ENV, catch_exceptions=False)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert lines, result.output
    assert lines[0].startswith(case.location + ": "), result.stderr
    assert case.fragment in lines[0]
    assert len(lines) == 1, result.stderr
    if command == "lint":
        # lint lists every error (`FILE:LINE:COL: error: ... [invalid]`) on stderr, its summary on stdout.
        assert result.stdout.startswith(f"{rules}: 0 rules, 1 error(s)"), result.stdout
    else:
        assert result.stdout == "", result.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_cli_line_starts_with_location(rules: Path, cli_store: Path, command: str) -> None:
    case = Case(VALID.replace("hip hop", "rok"), 3, 13, "unknown target 'rok'")
    case.write(rules)
    result = RUNNER.invoke(app, commands(rules, cli_store)[command], env=ENV, catch_exceptions=False)
    assert result.exit_code == 2
    assert LOCATED.match(result.stderr.rstrip("\n")), result.stderr
    assert result.stderr.startswith(case.location + ": "), result.stderr


@pytest.mark.parametrize("command", ["lint", "report"])
def test_subprocess_has_no_traceback(rules: Path, command: str) -> None:
    Case(VALID.replace("kind: keyword", "kind: keywrd"), 4, 11, "").write(rules)
    env = {**os.environ, "COLUMNS": "120"}
    result = subprocess.run(
        [sys.executable, "-m", "genremap", command, "--rules", str(rules), "--db", "none.db"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    errors = result.stderr.splitlines()
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith("rules/10-case.yaml:4:11: "), result.stderr


# --- lint lists every error -----------------------------------------------------------------

BROKEN_FOLDER = {
    # two bad rules in one file (lines 4 and 13: sorted as numbers, not as text)
    "10-a.yaml": VALID.replace("kind: keyword", "kind: keywrd")
    + "  - name: dark\n    target: hip hop\n    kind: keyword\n    patterns: [dark]\n"
    + "  - name: drill\n    target: hip hop\n    kind: regex\n    patterns: ['(unclosed']\n",
    "20-b.yaml": "rules:\n  - name: [oops\n",
    "30-c.yaml": "rules:\n  - name: dark\n    target: rok\n    kind: keyword\n    patterns: [x]\n"
    "  - name: boom\n    target: rok\n    kind: exact\n    patterns: [boom bap]\n",
}
ALL_ERRORS = [
    ("rules/10-a.yaml", 4, 11, "unknown kind 'keywrd'"),
    ("rules/10-a.yaml", 13, 16, "bad regex '(unclosed'"),
    ("rules/20-b.yaml", 2, 11, "'[' is never closed"),
    ("rules/30-c.yaml", 2, 11, "duplicate rule name 'dark' (first defined at rules/10-a.yaml:6:5)"),
    ("rules/30-c.yaml", 7, 13, "unknown target 'rok' in rule 'boom'"),
]


def test_collect_all_lists_every_error_sorted(rules: Path) -> None:
    for name, text in BROKEN_FOLDER.items():
        (rules / name).write_text(text, encoding="utf-8")
    with pytest.raises(RuleErrors) as caught:
        load_rules(rules, collect_all=True)
    found = [(e.location.file, e.location.line, e.location.column, e.problem) for e in caught.value.errors]
    assert [f[:3] for f in found] == [e[:3] for e in ALL_ERRORS], found
    for (*_, problem), (*_, fragment) in zip(found, ALL_ERRORS, strict=True):
        assert fragment in problem
    # without collect_all, the message is the first of them
    assert first_error(rules).startswith("rules/10-a.yaml:4:11: unknown kind 'keywrd'")


def test_lint_lists_every_error_sorted(rules: Path) -> None:
    for name, text in BROKEN_FOLDER.items():
        (rules / name).write_text(text, encoding="utf-8")
    result = RUNNER.invoke(app, ["lint", "--rules", str(rules), "--db", "none.db"], env=ENV, catch_exceptions=False)
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == len(ALL_ERRORS), result.stderr
    for line, (file, row, col, fragment) in zip(lines, ALL_ERRORS, strict=True):
        assert line.startswith(f"{file}:{row}:{col}: error: "), line
        assert fragment in line
    assert result.stdout.startswith(f"{rules}: 0 rules, {len(ALL_ERRORS)} error(s)")


# --- links out of the rules folder ----------------------------------------------------------

SECRET = "topsecret"
ENV_FILES = [
    f"SPOTIPY_CLIENT_SECRET={SECRET}\n",  # one plain string: the whole file is the value
    f"SPOTIPY_CLIENT_ID=abc\nSPOTIPY_CLIENT_SECRET={SECRET}\n",
    f"SPOTIPY_CLIENT_SECRET: {SECRET}\n",  # a mapping with an unknown key
    f"SPOTIPY_CLIENT_SECRET=[{SECRET}\n",  # a YAML syntax error
    f"rules: {SECRET}\n",  # the wrong type
]


@pytest.mark.parametrize("env_text", ENV_FILES)
def test_link_out_of_the_folder_is_refused_without_reading_it(
    rules: Path, cli_store: Path, env_text: str, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text(env_text, encoding="utf-8")
    (rules / "10-case.yaml").write_text(VALID, encoding="utf-8")
    (rules / "50-secrets.yaml").symlink_to(tmp_path / ".env")
    message = first_error(rules)
    assert message == (
        "rules/50-secrets.yaml:1:1: symbolic link to a file outside the rules folder:"
        " refused (copy the file into the folder instead)"
    )
    for command in ("report", "lint", "explain"):
        result = RUNNER.invoke(app, commands(rules, cli_store)[command], env=ENV, catch_exceptions=False)
        assert result.exit_code == 2, result.output
        assert SECRET not in result.output
        assert result.stderr.splitlines()[0].startswith("rules/50-secrets.yaml:1:1: "), result.stderr
        assert len(result.stderr.splitlines()) == 1, result.stderr


@pytest.mark.parametrize("env_text", ENV_FILES)
def test_errors_never_quote_a_whole_line_of_a_file(rules: Path, env_text: str) -> None:
    """A `.env` copied into the folder: messages quote at most the offending token, never a line."""
    (rules / "50-secrets.yaml").write_text(env_text, encoding="utf-8")
    with pytest.raises(RuleErrors) as caught:
        load_rules(rules, collect_all=True)
    for error in caught.value.errors:
        assert error.location.file == "rules/50-secrets.yaml"
        for line in env_text.splitlines():
            assert line not in error.message, error.message
    if "=" in env_text and "[" not in env_text:  # the whole file is one string: named, not quoted
        assert SECRET not in caught.value.message
        assert caught.value.message.endswith("not a string")


def test_links_inside_the_folder_and_a_linked_folder_are_fine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As in the repository (`rules -> genremap/rules`): the folder may be a link, and a file
    may link to another file of the folder; only links that leave it are refused."""
    monkeypatch.chdir(tmp_path)
    real = tmp_path / "genremap" / "rules"
    real.mkdir(parents=True)
    (real / "00-targets.yaml").write_text(TARGETS, encoding="utf-8")
    (real / "shared.yaml.txt").write_text(VALID, encoding="utf-8")
    (real / "10-case.yaml").symlink_to("shared.yaml.txt")
    (tmp_path / "rules").symlink_to(real, target_is_directory=True)
    assert [r.name for r in load_rules(tmp_path / "rules").rules] == ["trap"]
    (real / "20-dangling.yaml").symlink_to("missing.yaml")
    assert first_error(tmp_path / "rules").startswith("rules/20-dangling.yaml:1:1: symbolic link to a missing file")
