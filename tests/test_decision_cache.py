"""The decision cache (genremap/engine/cache.py, the store's decision_cache table).

What it must hold: labels from cached decisions are exactly the labels of deciding afresh,
whatever was edited between two commands; a second command with unchanged rules decides
nothing; a one-rule edit decides again only the subgenres that the old or the new version of
the rule hits; a damaged or foreign cache row is ignored; and saving the cache never breaks a
read-only command, on a read-only store or while another command holds the write lock.

Vocabulary: the shared corpus's 2,604 canonical subgenres where ../shared is there, else the
bundled sample's.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO, SHARED_CORPUS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_default_rules import _artist_counts
from test_store_safety import _as_unprivileged, folder_state
from typer.testing import CliRunner

from genremap.cli import app
from genremap.dataset.labels import Labelling, label_store
from genremap.engine import UNMAPPED, CompiledRules, RuleSet, SubgenreDecision, default_rules_dir, load_rules
from genremap.engine.cache import CacheUse, Saved, cache_key, decide_cached
from genremap.engine.model import IgnoreEntry, Rule
from genremap.errors import Location
from genremap.sample import load_sample
from genremap.store import Store

PACKAGED = load_rules(default_rules_dir())
TARGETS = list(PACKAGED.targets)
# The README's example of a one-rule edit: a new file with one exact rule.
MINE = """\
rules:
  - name: electronic pioneers
    target: house
    kind: exact
    patterns: [{patterns}]
    priority: 50
"""


def _corpus_vocab() -> list[str]:
    return sorted(s for s in _artist_counts(SHARED_CORPUS) if s)


def _sample_vocab(tmp: Path) -> list[str]:
    with Store.open(tmp / "vocab.db") as store:
        load_sample(store)
        labelling = label_store(store, PACKAGED, cache=False)
    return list(labelling.vocab)


@pytest.fixture(scope="module")
def vocab(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    if SHARED_CORPUS.exists():
        return _corpus_vocab()
    return _sample_vocab(tmp_path_factory.mktemp("vocab"))


@pytest.fixture(scope="module")
def store_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The corpus imported into a store (else the sample), once per module; tests copy it."""
    path = tmp_path_factory.mktemp("store") / "corpus.db"
    if SHARED_CORPUS.exists():
        result = CliRunner().invoke(app, ["import", str(SHARED_CORPUS), "--db", str(path)])
        assert result.exit_code == 0, result.output
    else:
        with Store.open(path) as store:
            load_sample(store)
    with Store.open(path) as store:
        store.conn.execute("DELETE FROM decision_cache")  # what the import's summary saved
        store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


@pytest.fixture
def db(store_template: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "store"
    folder.mkdir()
    target = folder / "corpus.db"
    shutil.copy(store_template, target)
    return target


@pytest.fixture
def rules_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "my-rules"
    shutil.copytree(default_rules_dir(), folder)
    return folder


# --- helpers ---------------------------------------------------------------------------------


def assert_same_decisions(cached: dict[str, SubgenreDecision], fresh: dict[str, SubgenreDecision], ruleset: RuleSet):
    """Equal decisions, in the same order, naming today's rule and ignore-entry objects (so
    every location, weight and reason shown is the current one)."""
    assert list(cached) == list(fresh)
    assert cached == fresh
    rules = {id(r) for r in ruleset.rules}
    ignore = {id(e) for e in ruleset.ignore}
    for d in cached.values():
        named = [d.rule, *(m.rule for m in d.matches), *d.conflicts]
        assert all(id(r) in rules for r in named if r is not None)
        assert d.ignored_by is None or id(d.ignored_by) in ignore


def label(db: Path, ruleset: RuleSet, *, cache: bool = True) -> Labelling:
    with Store.open(db, create=False, readonly=True) as store:
        return label_store(store, ruleset, cache=cache)


def assert_same_labels(cached: Labelling, fresh: Labelling) -> None:
    assert cached.vocab == fresh.vocab
    assert cached.decisions == fresh.decisions
    columns = ["artist_id", "status", "target", "share", "detail"]
    assert cached.artists[columns].equals(fresh.artists[columns])


def cache_rows(db: Path) -> list[tuple[str, str, bytes]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT rules_hash, vocab_hash, payload FROM decision_cache ORDER BY rowid").fetchall()


def write_mine(folder: Path, patterns: list[str]) -> None:
    (folder / "95-mine.yaml").write_text(MINE.format(patterns=", ".join(patterns)), encoding="utf-8")


# --- cached == afresh, over random rule edits --------------------------------------------------

_WORD = re.compile(r"^[a-z0-9]+$")


def _renumbered(rules: list[Rule], ignore: list[IgnoreEntry]) -> RuleSet:
    """A rule set as the loader makes it: `order` is the position in merge order."""
    numbered = [dataclasses.replace(r, order=i) for i, r in enumerate(rules)]
    return RuleSet(targets=PACKAGED.targets, rules=numbered, ignore=list(ignore), policy=PACKAGED.policy)


@st.composite
def edited(draw: st.DrawFn, ruleset: RuleSet, vocab: list[str], serial: Iterator[int]) -> RuleSet:
    """`ruleset` with one edit a person makes to rule files: a pattern added or dropped, a
    priority, target, veto, location or weight changed, a rule or ignore entry added, removed
    or renamed, two rules swapped."""
    rules, ignore = list(ruleset.rules), list(ruleset.ignore)
    words = sorted({w for s in vocab for w in s.split() if _WORD.match(w)})
    subgenre = st.sampled_from(vocab)
    word = st.sampled_from(words)
    n = next(serial)
    kind = draw(
        st.sampled_from(
            [
                "add pattern",
                "drop pattern",
                "priority",
                "target",
                "unless",
                "moved",
                "new rule",
                "remove rule",
                "rename",
                "new ignore",
                "remove ignore",
                "swap",
            ]
        )
    )
    i = draw(st.integers(0, len(rules) - 1)) if rules else 0
    if kind == "add pattern" and rules:
        rule = rules[i]
        extra = draw(word if rule.kind in ("keyword", "contains") else subgenre)
        if rule.kind == "regex":
            extra = "^" + re.escape(extra) + "$"
        rules[i] = dataclasses.replace(rule, patterns=(*rule.patterns, extra))
    elif kind == "drop pattern" and rules and len(rules[i].patterns) > 1:
        rules[i] = dataclasses.replace(rules[i], patterns=rules[i].patterns[1:])
    elif kind == "priority" and rules:
        rules[i] = dataclasses.replace(rules[i], priority=draw(st.sampled_from([-5, 0, 5, 10, 50])))
    elif kind == "target" and rules:
        rules[i] = dataclasses.replace(rules[i], target=draw(st.sampled_from(TARGETS)))
    elif kind == "unless" and rules:
        rules[i] = dataclasses.replace(rules[i], unless=(draw(word),), unless_kind="keyword")
    elif kind == "moved" and rules:  # same meaning, other file and line, other vote weight
        rules[i] = dataclasses.replace(rules[i], location=Location(f"moved-{n}.yaml", n, 3), weight=2.0)
    elif kind in ("new rule", "rename"):
        rule_kind = draw(st.sampled_from(["exact", "keyword", "contains", "regex", "fuzzy"]))
        if rule_kind == "exact":
            patterns = tuple(draw(st.lists(subgenre, min_size=1, max_size=3, unique=True)))
        elif rule_kind == "fuzzy":
            patterns = (draw(subgenre),)
        elif rule_kind == "regex":
            patterns = (draw(word) + "$",)
        else:
            patterns = (draw(word),)
        new = Rule(
            name=f"new {n}",
            target=draw(st.sampled_from(TARGETS)),
            kind=rule_kind,
            patterns=patterns,
            location=Location(f"new-{n}.yaml", 1, 3),
            priority=draw(st.sampled_from([0, 5, 50])),
            threshold=draw(st.sampled_from([80.0, 90.0])),
        )
        if kind == "rename" and rules:
            rules[i] = dataclasses.replace(rules[i], name=f"renamed {n}")
        else:
            rules.insert(draw(st.integers(0, len(rules))), new)
    elif kind == "remove rule" and rules:
        del rules[i]
    elif kind == "new ignore":
        entry_kind = draw(st.sampled_from(["exact", "keyword"]))
        patterns = (draw(subgenre if entry_kind == "exact" else word),)
        entry = IgnoreEntry(patterns, f"edit {n}", Location(f"ignore-{n}.yaml", 1, 3), kind=entry_kind)
        ignore.insert(draw(st.integers(0, len(ignore))), entry)
    elif kind == "remove ignore" and ignore:
        del ignore[draw(st.integers(0, len(ignore) - 1))]
    elif kind == "swap" and len(rules) > 1:
        j = draw(st.integers(0, len(rules) - 1))
        rules[i], rules[j] = rules[j], rules[i]
    return _renumbered(rules, ignore)


@settings(
    max_examples=int(os.environ.get("GENREMAP_FUZZ_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_cached_decisions_equal_deciding_afresh_after_any_edits(vocab: list[str], data: st.DataObject) -> None:
    """A chain of commands, each after a few edits (and sometimes a store whose vocabulary
    grew or shrank), each served from the previous command's entry: every result is the fresh one."""
    serial = iter(range(10**6))
    ruleset = _renumbered(list(PACKAGED.rules), list(PACKAGED.ignore))
    saved: Saved | None = None
    for _ in range(data.draw(st.integers(1, 4), label="commands")):
        for _ in range(data.draw(st.integers(1, 3), label="edits")):
            ruleset = data.draw(edited(ruleset, vocab, serial))
        keep = data.draw(st.sampled_from([1, 1, 0.95, 0.7]), label="vocabulary share")
        words = vocab if keep == 1 else [s for k, s in enumerate(vocab) if (k * 7919) % 100 < keep * 100]
        fresh = CompiledRules.build(ruleset).decide_many(words)
        cached, use, payload = decide_cached(ruleset, words, saved, lambda r=ruleset: CompiledRules.build(r))
        assert_same_decisions(cached, fresh, ruleset)
        assert use.reused + use.decided == len(words)
        if payload is not None:
            saved = Saved(cache_key(ruleset, words), payload)


def test_reuse_is_incremental_and_a_reorder_decides_everything(vocab: list[str]) -> None:
    """The shape of reuse on the packaged rules: unchanged → all reused; a new exact rule →
    only its subgenre decided; two rules swapped (merge order is a tie-break) → all decided."""
    compile_packaged = lambda: CompiledRules.build(PACKAGED)  # noqa: E731
    _, first, payload = decide_cached(PACKAGED, vocab, None, compile_packaged)
    assert first == CacheUse(hit=False, reused=0, decided=len(vocab))
    assert payload is not None
    saved = Saved(cache_key(PACKAGED, vocab), payload)
    _, again, nothing = decide_cached(PACKAGED, vocab, saved, compile_packaged)
    assert again == CacheUse(hit=True, reused=len(vocab), decided=0) and nothing is None

    target = vocab[len(vocab) // 2]
    one_more = _renumbered(
        [*PACKAGED.rules, Rule("one more", "house", "exact", (target,), Location("x.yaml", 1, 3), priority=50)],
        PACKAGED.ignore,
    )
    cached, use, _ = decide_cached(one_more, vocab, saved, lambda: CompiledRules.build(one_more))
    assert use == CacheUse(hit=False, reused=len(vocab) - 1, decided=1)
    assert cached[target].rule_name == "one more"

    swapped = list(PACKAGED.rules)
    swapped[0], swapped[1] = swapped[1], swapped[0]
    reordered = _renumbered(swapped, PACKAGED.ignore)
    cached, use, _ = decide_cached(reordered, vocab, saved, lambda: CompiledRules.build(reordered))
    assert use == CacheUse(hit=False, reused=0, decided=len(vocab))
    assert_same_decisions(cached, CompiledRules.build(reordered).decide_many(vocab), reordered)


# --- the store: second command, one-rule edit -------------------------------------------------


def test_second_command_with_unchanged_rules_decides_nothing(db: Path, runner: CliRunner) -> None:
    """`report` saves the decisions; the next labelling reuses every one and labels the same."""
    assert cache_rows(db) == []
    result = runner.invoke(app, ["report", "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert len(cache_rows(db)) == 1
    ruleset = load_rules(default_rules_dir())  # loaded again, as the next command does
    cached = label(db, ruleset)
    assert cached.cache == CacheUse(hit=True, reused=len(cached.vocab), decided=0)
    assert_same_labels(cached, label(db, ruleset, cache=False))
    assert len(cache_rows(db)) == 1  # a hit writes nothing


def test_one_rule_edit_decides_only_what_the_old_or_new_rule_hits(db: Path, rules_copy: Path) -> None:
    """Edits as in the README's loop, on files: each labelling decides exactly the subgenres
    of the store that the rule hits before or after the edit, and labels as deciding afresh."""
    label(db, load_rules(rules_copy))
    before = label(db, load_rules(rules_copy), cache=False)
    present = set(before.vocab)
    unmapped = [s for s, d in before.decisions.items() if d.status == UNMAPPED][:3]
    assert len(unmapped) == 3
    steps: list[tuple[list[str], set[str]]] = [
        (unmapped[:1], set(unmapped[:1])),  # a new file with one rule: its subgenre
        (unmapped[:3], set(unmapped[:3])),  # two patterns more: old hits one, new three
        (unmapped[1:3], set(unmapped[:3])),  # one dropped: old hits three
    ]
    for patterns, hit in steps:
        write_mine(rules_copy, patterns)
        ruleset = load_rules(rules_copy)
        cached = label(db, ruleset)
        assert cached.cache == CacheUse(hit=False, reused=len(present) - len(hit), decided=len(hit))
        assert_same_labels(cached, label(db, ruleset, cache=False))
        assert {s for s in hit if cached.decisions[s].rule_name == "electronic pioneers"} == set(patterns)

    # A keyword rule's priority: every subgenre carrying one of its keywords, and only those.
    jazz = rules_copy / "30-jazz.yaml"
    text = jazz.read_text(encoding="utf-8")
    assert "    priority: 10\n" in text
    jazz.write_text(text.replace("    priority: 10\n", "    priority: 12\n", 1), encoding="utf-8")
    ruleset = load_rules(rules_copy)
    family = ruleset.rule("jazz-family")
    assert family is not None and family.priority == 12 and family.kind == "keyword"
    keyword_hits = {s for s in present if any(f" {p} " in f" {s} " for p in family.patterns)}
    assert len(keyword_hits) > 20
    cached = label(db, ruleset)
    assert cached.cache == CacheUse(hit=False, reused=len(present) - len(keyword_hits), decided=len(keyword_hits))
    assert_same_labels(cached, label(db, ruleset, cache=False))


def test_comments_and_layout_do_not_count_as_edits(db: Path, rules_copy: Path) -> None:
    label(db, load_rules(rules_copy))
    for path in rules_copy.glob("*.yaml"):
        path.write_text("# a comment\n\n" + path.read_text(encoding="utf-8"), encoding="utf-8")
    ruleset = load_rules(rules_copy)
    cached = label(db, ruleset)
    assert cached.cache == CacheUse(hit=True, reused=len(cached.vocab), decided=0)
    # Reused decisions point at today's lines, two further down.
    located = [d.rule for d in cached.decisions.values() if d.rule is not None]
    assert located and all(r is ruleset.rule(r.name) for r in located)


def test_cli_outputs_are_the_same_from_the_cache_and_afresh(db: Path, rules_copy: Path, runner: CliRunner) -> None:
    """report, subgenres, unmapped and diff (JSON) after a one-rule edit: served from the cache,
    and with the cache emptied, they print the same."""
    commands = [
        ["report", "--format", "json"],
        ["subgenres", "--format", "json"],
        ["unmapped", "--format", "json", "--top", "0"],
        ["diff", "--base", str(default_rules_dir()), "--format", "json"],
    ]

    def outputs() -> list[str]:
        results = [runner.invoke(app, [*c, "--db", str(db), "--rules", str(rules_copy)]) for c in commands]
        for result in results:
            assert result.exit_code == 0, result.output
        return [r.output for r in results]

    outputs()  # fills the cache for the packaged rules
    write_mine(rules_copy, ["braindance", "japanese idm"])
    from_cache = outputs()
    assert cache_rows(db)
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM decision_cache")
    assert outputs() == from_cache


# --- damaged, foreign, unreadable cache rows ---------------------------------------------------


def _damaged(payload: bytes) -> list[bytes | str]:
    data = json.loads(zlib.decompress(payload))
    short = dict(data, status=data["status"][:-1])
    shifted = dict(data, rule=[r + 1 if r >= 0 else r for r in data["rule"]])
    wrong_type = dict(data, vocab={"a": 1})
    return [
        b"",
        b"not zlib at all",
        payload[: len(payload) // 2],
        zlib.compress(b"{not json"),
        zlib.compress(b"[1, 2, 3]"),
        zlib.compress(json.dumps(dict(data, format=99)).encode()),
        zlib.compress(json.dumps(short).encode()),
        zlib.compress(json.dumps(wrong_type).encode()),
        # indexes shifted by one: well-formed, but the rules recorded no longer say what they did
        zlib.compress(json.dumps(dict(shifted, rules=data["rules"][1:] + data["rules"][:1])).encode()),
        "a text value where bytes belong",
    ]


def test_damaged_cache_rows_are_ignored_and_replaced(db: Path) -> None:
    label(db, PACKAGED)
    ((rules_hash, vocab_hash, good),) = cache_rows(db)
    fresh = label(db, PACKAGED, cache=False)
    for bad in _damaged(good):
        with sqlite3.connect(db) as conn:
            conn.execute("UPDATE decision_cache SET payload = ?", (bad,))
        cached = label(db, PACKAGED)
        assert_same_labels(cached, fresh)
        assert cached.cache is not None and cached.cache.hit is False
        assert cache_rows(db) == [(rules_hash, vocab_hash, good)]  # replaced by a good entry


def test_a_foreign_row_filed_under_these_rules_is_not_trusted(db: Path, rules_copy: Path) -> None:
    """A row whose payload holds other rules' decisions (copied from another store, or filed
    under the wrong key) never passes for these rules: labels are the fresh ones."""
    # Another rule set: one rule more, first in merge order (every other rule one place down).
    (rules_copy / "05-first.yaml").write_text(MINE.format(patterns="rock"), encoding="utf-8")
    other = load_rules(rules_copy)
    label(db, other)
    ((other_rules, vocab_hash, foreign),) = cache_rows(db)
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM decision_cache")
        conn.execute(
            "INSERT INTO decision_cache(engine_hash, rules_hash, vocab_hash, payload) VALUES (?, ?, ?, ?)",
            (cache_key(PACKAGED, []).engine, cache_key(PACKAGED, []).rules, vocab_hash, foreign),
        )
    assert other_rules != cache_key(PACKAGED, []).rules
    cached = label(db, PACKAGED)
    fresh = label(db, PACKAGED, cache=False)
    assert cached.decisions["rock"].rule_name != "electronic pioneers"
    assert_same_labels(cached, fresh)


def test_a_store_whose_cache_table_is_gone_still_reports(db: Path, runner: CliRunner) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TABLE decision_cache")
    result = runner.invoke(app, ["report", "--db", str(db), "--format", "json"])
    assert result.exit_code == 0, result.output
    cached = label(db, PACKAGED)
    assert cached.cache == CacheUse(hit=False, reused=0, decided=len(cached.vocab))


# --- read-only stores, other writers -------------------------------------------------------------


def test_read_only_store_reports_the_same_and_is_left_untouched(db: Path, tmp_path: Path) -> None:
    """A 0444 store in a 0555 folder, as a user without the power to ignore permissions: the
    report is the one a writable store gives, twice, and nothing in the folder changes."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200", "NO_COLOR": "1"}

    def report() -> subprocess.CompletedProcess[str]:
        command = _as_unprivileged([sys.executable, "-m", "genremap", "report", "--db", str(db), "--format", "json"])
        return subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)

    expected = report()
    assert expected.returncode == 0, expected.stderr
    conn = sqlite3.connect(db, isolation_level=None)  # as the writable run left it, minus its cache
    conn.execute("DELETE FROM decision_cache")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    folder = db.parent
    db.chmod(0o444)
    folder.chmod(0o555)
    try:
        before = folder_state(folder)
        for _ in range(2):
            result = report()
            assert result.returncode == 0, result.stderr
            assert result.stderr == ""
            assert result.stdout == expected.stdout
        assert folder_state(folder) == before
    finally:
        folder.chmod(0o755)
        db.chmod(0o644)
    assert cache_rows(db) == []


def test_saving_gives_way_to_another_writer_and_never_keeps_the_write_lock(db: Path) -> None:
    """While another command holds the write lock, a report labels as usual and saves nothing;
    once labelling returns, with the store still open (the command goes on rendering), another
    writer gets the lock without waiting."""
    fresh = label(db, PACKAGED, cache=False)
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # an import in the middle of its transaction
    try:
        cached = label(db, PACKAGED)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert_same_labels(cached, fresh)
    assert cache_rows(db) == []  # given up, not queued

    with Store.open(db, create=False, readonly=True) as store:
        label_store(store, PACKAGED)
        writer = sqlite3.connect(db, isolation_level=None, timeout=0)
        try:
            writer.execute("BEGIN IMMEDIATE")
            writer.execute("ROLLBACK")
        finally:
            writer.close()
    assert len(cache_rows(db)) == 1


def test_an_old_store_read_as_it_is_has_no_cache_and_stays_old(tmp_path: Path) -> None:
    from test_store_concurrency import make_v1_store

    path = tmp_path / "old.db"
    make_v1_store(path)
    with Store.open(path, create=False, readonly=True) as store:
        before = store.version
        labelling = label_store(store, PACKAGED)
        assert store.version == before
    assert labelling.cache is not None and labelling.cache.reused == 0
    with sqlite3.connect(path) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "decision_cache" not in tables


def test_entries_are_capped(db: Path, rules_copy: Path) -> None:
    """Each rule set in use adds an entry; the oldest go beyond DECISION_CACHE_ENTRIES."""
    from genremap.store import DECISION_CACHE_ENTRIES

    for i in range(DECISION_CACHE_ENTRIES + 3):
        write_mine(rules_copy, [f"made up subgenre {i}"])
        label(db, load_rules(rules_copy))
    assert len(cache_rows(db)) == DECISION_CACHE_ENTRIES
