"""Names from the store are data: in generated rule files they are only ever a comment or a
quoted string, and on the terminal their control characters are shown escaped, never acted on.

The store is filled the way a collector fills it (names from an API can hold anything; `import`
refuses names with line breaks as bad rows, so it could not bring them all): artists whose names
hold newlines, YAML syntax, escape sequences and Unicode separators.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from genremap.cli import app
from genremap.engine import load_rules
from genremap.report import yaml_string
from genremap.store import ArtistRecord, Store
from genremap.text import escape_unprintable

# Each name would do harm if written raw: into YAML (a live rule, a tag, a broken file) or
# to a terminal (clear the screen, retitle the window, 8-bit CSI, reorder the line).
HOSTILE = [
    "Evil\n  - name: pwn\n    target: jazz\n    kind: regex\n    patterns: ['.']",
    "Crlf\r\n  - {name: pwn crlf, target: jazz, kind: contains, patterns: [a]}",
    "Sep\u2028  - {name: pwn sep, target: jazz, kind: contains, patterns: [e]}",
    "Nel\x85  - {name: pwn nel, target: jazz, kind: contains, patterns: [o]}",
    "Para\u2029ignore: [{patterns: ['.'], kind: regex, reason: pwned}]",
    "Hash # not: a comment",
    'Quotes " \' \\ and \\" end',
    "!!python/object/apply:os.system ['echo pwned']",
    "&anchor *alias {flow: map} [flow, seq] | >",
    "Clear\x1b[2J\x1b[H",
    "Title\x1b]0;owned\x07",
    "Csi\x9b31mred",
    "Ctl\x00\x01\x08\x0b\x0c\x7f\tend",
    "Bidi \u202eevil\u202c",
    "Bom\ufeff and nbsp\xa0 ok",
]
# Terminal controls that must never reach a table or plain line raw (newline ends lines).
RAW_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def subgenre_of(index: int) -> str:
    return f"zeuhl variant {index:02d}"


@pytest.fixture
def hostile_db(tmp_path: Path, runner: CliRunner) -> Path:
    """Each hostile artist carries 'bebop' (jazz) and a subgenre of its own no rule maps, so
    `unmapped` suggests jazz for it with the hostile artist as its example."""
    db = tmp_path / "store\x1b]0;db\x07.db"
    artists = [
        ArtistRecord(
            artist_id=f"hostile{i:02d}",
            name=name,
            genres=("bebop", subgenre_of(i)) if i else ("Bebop\x1b]0;owned\x07", subgenre_of(i)),
            track_count=10 + i,
        )
        for i, name in enumerate(HOSTILE)
    ]
    with Store.open(db) as store:
        store.upsert_artists(artists, origin="spotify")
    return db


@pytest.fixture
def jazz_rules(write_rules: Callable[..., Path]) -> Path:
    return write_rules({"10-jazz.yaml": "rules: [{name: jazz, target: jazz, kind: keyword, patterns: [bebop]}]\n"})


# --- generated rule files -------------------------------------------------------------------


def test_emitted_rules_load_back_as_exactly_the_suggestions(
    runner: CliRunner, hostile_db: Path, jazz_rules: Path, tmp_path: Path
) -> None:
    # The store's own path is data too: a newline in it must not start a YAML line either.
    db = hostile_db.rename(tmp_path / "store\nignore: [{patterns: ['.'], kind: regex, reason: pwned}]\n#.db")
    out = tmp_path / "suggested.yaml"
    result = runner.invoke(
        app, ["unmapped", "--db", str(db), "--rules", str(jazz_rules), "--top", "0", "--emit-rules", str(out)]
    )
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    assert f"(e.g. {escape_unprintable(HOSTILE[0])})" in text  # the example artist is there, escaped
    trial = tmp_path / "trial"
    shutil.copytree(jazz_rules, trial)
    (trial / "99-suggested.yaml").write_text(text, encoding="utf-8")
    loaded = load_rules(trial)
    expected = {(f"suggested {subgenre_of(i)}", "jazz", "exact", (subgenre_of(i),)) for i in range(len(HOSTILE))}
    assert {(r.name, r.target, r.kind, r.patterns) for r in loaded.rules if r.name != "jazz"} == expected
    assert (loaded.ignore, loaded.policy.location, list(loaded.targets)) == (
        [],
        None,
        list(load_rules(jazz_rules).targets),
    )
    # Nothing but comments and the four lines of each suggested rule.
    shapes = re.compile(
        r'#.*|rules:|  #.*|  - name: "[^"]*"|    target: "jazz"|    kind: exact|    patterns: \["[^"]*"\]'
    )
    assert all(shapes.fullmatch(line) for line in text.splitlines()), text


@given(st.text())
def test_yaml_string_loads_back_to_the_same_text(text: str) -> None:
    assert yaml.safe_load(f"key: {yaml_string(text)}\n") == {"key": text}
    assert yaml.safe_load(f"# {escape_unprintable(text)}\nkey: 1\n") == {"key": 1}


@pytest.mark.parametrize("text", ["\ud800 lone surrogate", "\U0001f3b8 astral", "\x85\u2028\u2029\r\n", "\ufeff\ufffe"])
def test_yaml_string_edge_cases(text: str) -> None:
    assert yaml.safe_load(f"key: {yaml_string(text)}\n") == {"key": text}


# --- the terminal ---------------------------------------------------------------------------


def artist_id(runner: CliRunner, db: Path, rules: Path, name: str) -> str:
    result = runner.invoke(app, ["explain", "--artist", name, "--db", str(db), "--rules", str(rules), "-f", "json"])
    assert result.exit_code == 0, result.output
    found: str = json.loads(result.stdout)["artist_id"]
    return found


def test_table_and_plain_output_show_controls_escaped(
    runner: CliRunner, hostile_db: Path, jazz_rules: Path, write_rules: Callable[..., Path]
) -> None:
    db, rules = str(hostile_db), str(jazz_rules)
    # A rule file is data too: a hostile rule name, through diff and lint.
    edited = write_rules(
        {
            "10-jazz.yaml": 'rules: [{name: "jazz \\e[2J\\x9b", target: jazz, kind: keyword, patterns: [bebop]},'
            ' {name: "zeuhl\\e]0;t\\a", target: rock, kind: keyword, patterns: [zeuhl]}]\n'
        }
    )
    commands = [
        ["unmapped", "--db", db, "--rules", rules, "--top", "0"],
        ["subgenres", "--db", db, "--rules", rules],
        ["report", "--db", db, "--rules", rules],
        ["status", "--db", db],
        ["diff", "--db", db, "--rules", str(edited), "--base", rules],
        ["lint", "--db", db, "--rules", str(edited)],
        ["explain", "bebop zeuhl", "--rules", str(edited)],
    ]
    commands += [
        ["explain", "--artist", artist_id(runner, hostile_db, jazz_rules, n), "--db", db, "--rules", rules]
        for n in HOSTILE
    ]
    seen = ""
    for args in commands:
        result = runner.invoke(app, args)
        assert result.exit_code == 0, (args, result.output)
        raw = (result.stdout_bytes + result.stderr_bytes).decode("utf-8")  # `output` folds \r\n into \n
        assert not RAW_CONTROL.search(raw), (args[0], raw)
        seen += raw
    for shown in (
        "Clear\\x1b[2J\\x1b[H",
        "Title\\x1b]0;owned\\x07",
        "Csi\\x9b31mred",
        "Bidi \\u202eevil",
        "Evil\\n  - name: pwn",
    ):
        assert shown in seen
    assert "'Bebop\\x1b]0;owned\\x07' → 'bebop 0 owned'" in seen  # explain's raw genre spelling
    assert "rule 'jazz \\x1b[2J\\x9b'" in seen and "zeuhl\\x1b]0;t\\x07" in seen  # rule names
    assert "store\\x1b]0;db\\x07.db" in seen  # the store's path


def test_json_and_csv_keep_exact_values(runner: CliRunner, hostile_db: Path, jazz_rules: Path) -> None:
    common = ["--db", str(hostile_db), "--rules", str(jazz_rules)]
    as_json = runner.invoke(app, ["unmapped", *common, "--top", "0", "--format", "json"])
    assert as_json.exit_code == 0, as_json.output
    assert not RAW_CONTROL.search(as_json.stdout_bytes.decode("utf-8"))  # JSON escapes them: safe on a terminal
    assert sorted(r["example_artist"] for r in json.loads(as_json.stdout)) == sorted(HOSTILE)
    as_csv = runner.invoke(app, ["unmapped", *common, "--top", "0", "--format", "csv"])
    assert as_csv.exit_code == 0, as_csv.output
    # stdout_bytes: CliRunner's `stdout` turns \r\n into \n
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout_bytes.decode("utf-8"), newline="")))
    assert sorted(r["example_artist"] for r in rows) == sorted(HOSTILE)
    for name in HOSTILE[1:]:
        explained = runner.invoke(app, ["explain", "--artist", name, *common, "--format", "json"])
        assert json.loads(explained.stdout)["name"] == name
