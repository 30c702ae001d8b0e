"""Load `rules/*.yaml` into a validated RuleSet; every problem is reported as FILE:LINE:COL.

YAML is composed with PyYAML's SafeLoader into a node tree (which keeps line and column
of every key and value) and never into arbitrary objects. The data is validated against
the JSON Schema shipped beside this module, then checked for what a schema cannot say
(unknown targets, bad regexes, duplicate names).
"""

from __future__ import annotations

import difflib
import json
import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from genremap.engine.model import (
    FUZZY_SCORERS,
    POLICIES,
    RULE_KINDS,
    UNLESS_KINDS,
    IgnoreEntry,
    Policy,
    Rule,
    RuleSet,
    Target,
)
from genremap.errors import Location, RuleErrors, RuleFileError, UsageError
from genremap.normalize import normalize_genre

PathKey = tuple[str | int, ...]

RULE_KEYS = (
    "name", "target", "kind", "patterns", "priority", "unless", "unless_kind",
    "threshold", "scorer", "weight", "note",
)
TOP_KEYS = ("targets", "rules", "ignore", "policy")
IGNORE_KEYS = ("subgenre", "subgenres", "patterns", "kind", "reason")
POLICY_KEYS = ("name", "min_share", "min_margin")


@lru_cache(maxsize=1)
def rule_schema() -> dict[str, Any]:
    """The JSON Schema for one rule file (also usable by editors)."""
    text = resources.files("genremap.engine").joinpath("rules.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def schema_path() -> Path:
    """Filesystem path of the shipped JSON Schema."""
    return Path(str(resources.files("genremap.engine").joinpath("rules.schema.json")))


def default_rules_dir() -> Path:
    """The rules shipped inside the package."""
    return Path(str(resources.files("genremap").joinpath("rules")))


def resolve_rules_dir(rules_dir: Path | None) -> Path:
    """`--rules` when given, else `./rules` when it exists, else the packaged rules."""
    if rules_dir is not None:
        return rules_dir
    local = Path("rules")
    if local.is_dir():
        return local
    return default_rules_dir()


def did_you_mean(word: str, choices: tuple[str, ...] | list[str]) -> str:
    """A ` (did you mean 'x'?)` suffix, or '' when nothing is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


@dataclass
class _Doc:
    """A rule file's plain data and the position of each value and mapping key in it."""

    file: str
    data: Any
    value_at: dict[PathKey, Location] = field(default_factory=dict)
    key_at: dict[PathKey, Location] = field(default_factory=dict)

    def loc(self, path: PathKey, key: bool = False) -> Location:
        """Best location for `path`: the key itself if asked, else the value, else a parent."""
        table = self.key_at if key else self.value_at
        while True:
            if path in table:
                return table[path]
            if path in self.value_at:
                return self.value_at[path]
            if not path:
                return Location(self.file, 1, 1)
            path = path[:-1]


def _mark(file: str, node: yaml.Node) -> Location:
    return Location(file, node.start_mark.line + 1, node.start_mark.column + 1)


_SCALAR_CONSTRUCTOR = yaml.SafeLoader("")


def _convert(node: yaml.Node, doc: _Doc, path: PathKey, errors: list[RuleFileError]) -> Any:
    """Turn a composed node into plain data, recording positions and duplicate keys."""
    doc.value_at[path] = _mark(doc.file, node)
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                errors.append(RuleFileError(_mark(doc.file, key_node), "mapping keys must be plain strings"))
                continue
            key = str(_SCALAR_CONSTRUCTOR.construct_scalar(key_node))
            if key == "<<":
                errors.append(RuleFileError(_mark(doc.file, key_node), "YAML merge keys ('<<') are not supported in rule files"))
                continue
            if key in out:
                errors.append(RuleFileError(_mark(doc.file, key_node), f"duplicate key '{key}'"))
                continue
            doc.key_at[(*path, key)] = _mark(doc.file, key_node)
            out[key] = _convert(value_node, doc, (*path, key), errors)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, doc, (*path, i), errors) for i, item in enumerate(node.value)]
    return _SCALAR_CONSTRUCTOR.construct_object(node, deep=True)


def _parse_file(path: Path, display: str) -> tuple[_Doc, list[RuleFileError]]:
    errors: list[RuleFileError] = []
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RuleErrors([RuleFileError(Location(display, 1, 1), f"not UTF-8 text ({exc.reason})")]) from None
    except OSError as exc:
        raise UsageError(f"{display}: cannot read rule file ({exc.strerror})") from None
    doc = _Doc(display, None)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        raise RuleErrors([RuleFileError(Location(display, line, col), f"invalid YAML: {problem}")]) from None
    except yaml.YAMLError as exc:
        raise RuleErrors([RuleFileError(Location(display, 1, 1), f"invalid YAML: {exc}")]) from None
    if node is None:
        doc.data = {}
        return doc, errors
    try:
        doc.data = _convert(node, doc, (), errors)
    except yaml.YAMLError as exc:
        raise RuleErrors([RuleFileError(Location(display, 1, 1), f"invalid YAML: {exc}")]) from None
    return doc, errors


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string '{value}'"
    if value is None:
        return "nothing (null)"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _context(path: PathKey, doc: _Doc) -> str:
    """'in rule 'trap'' / 'in ignore entry 3' / 'at top level' for messages."""
    if len(path) >= 2 and path[0] == "rules" and isinstance(path[1], int):
        rule = doc.data["rules"][path[1]] if isinstance(doc.data, dict) else None
        name = rule.get("name") if isinstance(rule, dict) else None
        return f"in rule '{name}'" if isinstance(name, str) else f"in rule #{path[1] + 1}"
    if len(path) >= 2 and path[0] == "ignore" and isinstance(path[1], int):
        return f"in ignore entry #{path[1] + 1}"
    if len(path) >= 2 and path[0] == "targets":
        return f"in target '{path[1]}'"
    if path and path[0] == "policy":
        return "in policy"
    return "at top level"


def _allowed_keys(path: PathKey) -> tuple[str, ...]:
    if not path:
        return TOP_KEYS
    if path[0] == "rules":
        return RULE_KEYS
    if path[0] == "ignore":
        return IGNORE_KEYS
    if path[0] == "policy":
        return POLICY_KEYS
    if path[0] == "targets":
        return ("description",)
    return ()


def _schema_error(err: jsonschema.ValidationError, doc: _Doc) -> RuleFileError:
    """Translate one JSON Schema error into a located, human message."""
    path: PathKey = tuple(err.absolute_path)
    where = _context(path, doc)
    field_name = str(path[-1]) if path else ""
    validator = err.validator
    if validator == "additionalProperties" and isinstance(err.instance, dict):
        allowed = _allowed_keys(path)
        extra = sorted(set(err.instance) - set(allowed)) if allowed else sorted(err.instance)
        key = extra[0] if extra else "?"
        hint = did_you_mean(key, allowed)
        expected = f"; allowed: {', '.join(allowed)}" if not hint and allowed else ""
        return RuleFileError(doc.loc((*path, key), key=True), f"unknown key '{key}' {where}{hint}{expected}")
    if validator == "required":
        missing = re.findall(r"'([^']+)' is a required property", err.message)
        what = missing[0] if missing else err.message
        return RuleFileError(doc.loc(path), f"missing '{what}' {where}")
    if validator == "anyOf" and path and path[0] == "ignore":
        return RuleFileError(doc.loc(path), f"{where} needs 'subgenre', 'subgenres' or 'patterns'")
    if validator == "enum" or (validator == "oneOf" and field_name == "policy"):
        choices: tuple[str, ...] = {
            "kind": RULE_KINDS if path[:1] == ("rules",) else ("exact", "keyword", "contains", "regex"),
            "unless_kind": UNLESS_KINDS,
            "scorer": FUZZY_SCORERS,
        }.get(field_name, POLICIES)
        value = err.instance if not isinstance(err.instance, dict) else err.instance.get("name")
        label = "policy" if field_name in ("policy", "name") and path[:1] == ("policy",) else field_name
        hint = did_you_mean(str(value), choices)
        return RuleFileError(
            doc.loc(path),
            f"unknown {label} {_describe(value)} {where} (expected one of: {', '.join(choices)}){hint}",
        )
    if field_name in ("patterns", "unless", "subgenres") and (
        validator in ("minItems", "minLength", "oneOf") or err.instance in ([], "")
    ):
        if err.instance in ([], "", None):
            return RuleFileError(doc.loc(path), f"empty {field_name} {where}: give at least one non-empty pattern")
        return RuleFileError(doc.loc(path), f"'{field_name}' {where} must be a string or a list of strings, not {_describe(err.instance)}")
    if len(path) >= 2 and path[-2] in ("patterns", "unless", "subgenres") and validator in ("type", "minLength"):
        return RuleFileError(doc.loc(path), f"{path[-2]} entry {where} must be a non-empty string, not {_describe(err.instance)}")
    if validator in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        ranges = {"threshold": "0..100", "min_share": "0..1", "min_margin": "0..1", "weight": "> 0"}
        return RuleFileError(
            doc.loc(path),
            f"{field_name} {err.instance} {where} is out of range ({ranges.get(field_name, err.message)})",
        )
    if validator == "type":
        wanted = err.validator_value
        wanted_text = " or ".join(wanted) if isinstance(wanted, list) else str(wanted)
        if wanted == "object" and not path:
            return RuleFileError(doc.loc(path), f"a rule file must be a mapping with keys {', '.join(TOP_KEYS)}, not {_describe(err.instance)}")
        noun = f"'{field_name}'" if field_name and not isinstance(path[-1], int) else "entry"
        return RuleFileError(doc.loc(path), f"{noun} {where} must be {'an' if wanted_text[0] in 'aeiou' else 'a'} {wanted_text}, not {_describe(err.instance)}")
    if validator == "minLength":
        return RuleFileError(doc.loc(path), f"'{field_name}' {where} must not be empty")
    if validator == "oneOf" and len(path) >= 2 and path[0] == "targets":
        return RuleFileError(doc.loc(path), f"target '{path[1]}' needs a description string, not {_describe(err.instance)}")
    return RuleFileError(doc.loc(path), f"{err.message} {where}")


def _as_list(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)


def _normalized_patterns(
    raw: tuple[str, ...], kind: str, doc: _Doc, path: PathKey, where: str, errors: list[RuleFileError]
) -> tuple[str, ...]:
    """Canonicalise patterns (regexes are kept as written, but compiled to check them)."""
    out: list[str] = []
    for i, pattern in enumerate(raw):
        item_path = (*path, i) if (*path, i) in doc.value_at else path
        if kind == "regex":
            try:
                re.compile(pattern)
            except re.error as exc:
                errors.append(RuleFileError(doc.loc(item_path), f"bad regex {pattern!r} {where}: {exc}"))
                continue
            out.append(pattern)
            continue
        canonical = normalize_genre(pattern)
        if not canonical:
            errors.append(RuleFileError(doc.loc(item_path), f"pattern {pattern!r} {where} has no letters or digits"))
            continue
        out.append(canonical)
    return tuple(out)


def _build(doc: _Doc, ruleset: RuleSet, errors: list[RuleFileError], first_seen: dict[str, Location]) -> None:
    """Turn one validated file's data into domain objects, adding them to `ruleset`."""
    data: dict[str, Any] = doc.data
    for name, value in (data.get("targets") or {}).items():
        canonical = normalize_genre(name)
        where = doc.loc(("targets", name), key=True)
        if not canonical:
            errors.append(RuleFileError(where, f"target name {name!r} has no letters or digits"))
            continue
        if canonical in ruleset.targets:
            errors.append(RuleFileError(where, f"target '{canonical}' is declared twice (first at {ruleset.targets[canonical].location})"))
            continue
        description = value if isinstance(value, str) else (value or {}).get("description", "")
        ruleset.targets[canonical] = Target(canonical, description or "", where)

    policy = data.get("policy")
    if policy is not None:
        where = doc.loc(("policy",), key=True)
        if ruleset.policy.location is not None:
            errors.append(RuleFileError(where, f"policy is set twice (first at {ruleset.policy.location})"))
        else:
            spec = {"name": policy} if isinstance(policy, str) else policy
            ruleset.policy = Policy(
                name=spec["name"],
                min_share=float(spec.get("min_share", Policy.min_share)),
                min_margin=float(spec.get("min_margin", Policy.min_margin)),
                location=where,
            )

    for i, raw in enumerate(data.get("rules") or []):
        path: PathKey = ("rules", i)
        where = _context(path, doc)
        name = raw["name"]
        location = doc.loc(path)
        if name in first_seen:
            errors.append(RuleFileError(doc.loc((*path, "name")), f"duplicate rule name '{name}' (first defined at {first_seen[name]})"))
            continue
        first_seen[name] = location
        kind = raw["kind"]
        if kind != "fuzzy" and ("threshold" in raw or "scorer" in raw):
            key = "threshold" if "threshold" in raw else "scorer"
            errors.append(RuleFileError(doc.loc((*path, key), key=True), f"'{key}' {where} only applies to fuzzy rules (this one is {kind})"))
        unless_kind = raw.get("unless_kind", "keyword")
        patterns = _normalized_patterns(_as_list(raw["patterns"]), kind, doc, (*path, "patterns"), where, errors)
        unless = _normalized_patterns(_as_list(raw.get("unless")), unless_kind, doc, (*path, "unless"), where, errors)
        ruleset.rules.append(
            Rule(
                name=name,
                target=normalize_genre(raw["target"]),
                kind=kind,
                patterns=patterns,
                location=location,
                priority=int(raw.get("priority", 0)),
                unless=unless,
                unless_kind=unless_kind,
                threshold=float(raw.get("threshold", 90.0)),
                scorer=raw.get("scorer", "ratio"),
                weight=float(raw.get("weight", 1.0)),
                order=len(ruleset.rules),
            )
        )

    for i, raw in enumerate(data.get("ignore") or []):
        path = ("ignore", i)
        where = _context(path, doc)
        kind = raw.get("kind", "exact")
        patterns: tuple[str, ...] = ()
        for key in ("subgenre", "subgenres", "patterns"):
            if key in raw:
                patterns += _normalized_patterns(_as_list(raw[key]), kind, doc, (*path, key), where, errors)
        ruleset.ignore.append(IgnoreEntry(patterns, raw["reason"], doc.loc(path), kind))


def _check_targets(ruleset: RuleSet, errors: list[RuleFileError]) -> None:
    if ruleset.rules and not ruleset.targets:
        first = ruleset.rules[0]
        errors.append(RuleFileError(first.location, "no targets are declared: add a 'targets:' mapping to one rule file"))
        return
    names = tuple(ruleset.targets)
    for rule in ruleset.rules:
        if rule.target not in ruleset.targets:
            errors.append(
                RuleFileError(
                    rule.location,
                    f"unknown target '{rule.target}' in rule '{rule.name}'{did_you_mean(rule.target, names)}"
                    f" (declared targets: {', '.join(names)})",
                )
            )


def rule_files(rules_dir: Path) -> list[Path]:
    """The YAML files of a rules directory, in the (file-name) order they are merged."""
    if not rules_dir.exists():
        raise UsageError(f"rules directory not found: {rules_dir} (pass --rules DIR, or run from a folder that has rules/)")
    if not rules_dir.is_dir():
        raise UsageError(f"--rules must be a directory of *.yaml files, not a file: {rules_dir}")
    files = sorted(p for p in rules_dir.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    if not files:
        raise UsageError(f"no rule files (*.yaml) in {rules_dir}")
    return files


def _display(path: Path) -> str:
    """The path as the user would type it: relative to the working folder when inside it."""
    relative = os.path.relpath(path.absolute(), Path.cwd())
    return relative if not relative.startswith("..") else str(path.absolute())


def load_rules(rules_dir: Path, *, collect_all: bool = False) -> RuleSet:
    """Load and validate every rule file of `rules_dir`.

    Raises RuleErrors (exit status 2) whose message is the first problem by file and line;
    `collect_all` keeps going through every file so `lint` can list all of them.
    """
    validator = jsonschema.Draft202012Validator(rule_schema())
    ruleset = RuleSet()
    errors: list[RuleFileError] = []
    sources: list[tuple[str, bytes]] = []
    first_seen: dict[str, Location] = {}
    for path in rule_files(rules_dir):
        display = _display(path)
        try:
            doc, file_errors = _parse_file(path, display)
        except RuleErrors as exc:
            errors.extend(exc.errors)
            if not collect_all:
                break
            continue
        sources.append((path.name, path.read_bytes()))
        ruleset.files.append(display)
        schema_errors = [_schema_error(e, doc) for e in validator.iter_errors(doc.data)]
        file_errors.extend(schema_errors)
        if not schema_errors:
            _build(doc, ruleset, file_errors, first_seen)
        errors.extend(file_errors)
        if errors and not collect_all:
            break
    if not errors:
        _check_targets(ruleset, errors)
    if errors:
        raise RuleErrors(errors)
    ruleset.source_hash = RuleSet.hash_sources(sources)
    return ruleset
