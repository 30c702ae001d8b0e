"""Load `rules/*.yaml` into a validated RuleSet; every problem is reported as FILE:LINE:COL.

YAML is composed with PyYAML's SafeLoader into a node tree (which keeps line and column
of every key and value) and never into arbitrary objects. The data is validated against
the JSON Schema shipped beside this module, then checked for what a schema cannot say
(unknown targets, bad regexes, duplicate names, numbers that are not finite).

Whatever a rule file holds, loading it either succeeds or raises `RuleErrors` (or, for a
missing folder, `UsageError`): every message is one line that starts with the location.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from genremap.engine.model import (
    FUZZY_SCORERS,
    OUT_OF_SCOPE,
    POLICIES,
    RULE_KINDS,
    UNLESS_KINDS,
    IgnoreEntry,
    Policy,
    Rule,
    RuleSet,
    Target,
)
from genremap.engine.quickcheck import surely_valid
from genremap.engine.regex import RegexError, compile_regex
from genremap.errors import Location, RuleErrors, RuleFileError, UsageError
from genremap.normalize import normalize_genre
from genremap.text import escape_unprintable as _printable  # messages are one line

if TYPE_CHECKING:
    import jsonschema

PathKey = tuple[str | int, ...]

RULE_KEYS = (
    "name",
    "target",
    "kind",
    "patterns",
    "priority",
    "unless",
    "unless_kind",
    "threshold",
    "scorer",
    "weight",
    "note",
)
TOP_KEYS = ("targets", "rules", "ignore", "not_genres", "policy")
IGNORE_SECTIONS = ("ignore", "not_genres")  # sections of IgnoreEntry entries (same shape)
IGNORE_KEYS = ("subgenre", "subgenres", "patterns", "kind", "unless", "unless_kind", "weight", "reason")
POLICY_KEYS = ("name", "min_share", "min_margin", "out_of_scope", "related")
IGNORE_KINDS = ("exact", "keyword", "contains", "regex")

# A rule file needs four levels of nesting (rules → rule → patterns → pattern); anything far
# deeper is a mistake, and would otherwise exhaust the parser's recursion.
MAX_DEPTH = 50
# Values a file may expand to once YAML aliases are followed ("billion laughs" guard).
MAX_VALUES = 100_000
# What PyYAML counts as a line break (its marks count lines this way).
_YAML_BREAKS = re.compile("\r\n|[\r\n\x85\u2028\u2029]")
# libyaml's parser, when PyYAML was built with it. It reads only texts without the characters
# where it and PyYAML's own parser could tell lines, columns or errors apart (tabs, carriage
# returns, Unicode line breaks, byte-order marks, controls, surrogates) and without directives.
_FAST_LOADER: Any = getattr(yaml, "CSafeLoader", None)
_STANDARD_TAGS = frozenset(
    f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null", "timestamp", "seq", "map")
)
_FAST_SAFE = re.compile(r"[^\t\r\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff\ud800-\udfff]*")


@lru_cache(maxsize=1)
def rule_schema() -> dict[str, Any]:
    """The JSON Schema for one rule file (also usable by editors)."""
    text = resources.files("genremap.engine").joinpath("rules.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@lru_cache(maxsize=1)
def _validator() -> jsonschema.Draft202012Validator:
    """The schema's validator, made when a file needs it: valid files never import jsonschema."""
    import jsonschema

    return jsonschema.Draft202012Validator(rule_schema())


def schema_path() -> Path:
    """Filesystem path of the shipped JSON Schema."""
    return Path(str(resources.files("genremap.engine").joinpath("rules.schema.json")))


def default_rules_dir() -> Path:
    """The rules shipped inside the package.

    Installed, `genremap/rules` is a folder of plain files. In a checkout it is a link to the
    repository's `rules/` (the real folder, which wheels and sdists copy); where a checkout
    cannot hold links (git on Windows writes the link as a small text file), that folder is used."""
    packaged = Path(str(resources.files("genremap").joinpath("rules")))
    checkout = packaged.parent.parent / "rules"
    if not packaged.is_dir() and checkout.is_dir():
        return checkout
    return packaged


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


def _one_line(error: RuleFileError) -> RuleFileError:
    """The error itself, or a copy with anything that would break the line escaped."""
    if error.message.isprintable():
        return error
    where = Location(_printable(error.location.file), error.location.line, error.location.column)
    return RuleFileError(where, _printable(error.problem))


def _shorten(text: str, limit: int) -> str:
    """`text` on one line and at most `limit` characters: messages quote excerpts, not files."""
    text = _printable(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _q(value: Any, limit: int = 80) -> str:
    """A value quoted for a message: 'text' for strings (escaped, shortened), else a description."""
    if isinstance(value, str):
        return "'" + _shorten(value.replace("'", "\\'"), limit) + "'"
    return _describe(value)


class _TooBig(Exception):
    """Aliases expand the file beyond MAX_VALUES values."""

    def __init__(self, node: yaml.Node) -> None:
        super().__init__("too many values")
        self.node = node


@dataclass
class _Doc:
    """A rule file's plain data and the position of each value and mapping key in it."""

    file: str
    data: Any
    value_at: dict[PathKey, Location] = field(default_factory=dict)
    key_at: dict[PathKey, Location] = field(default_factory=dict)
    values: int = 0
    # A constructor of its own per file: PyYAML caches every node it constructs.
    constructor: yaml.SafeLoader = field(default_factory=lambda: yaml.SafeLoader(""))

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


def _position(text: str, index: int) -> tuple[int, int]:
    """1-based line and column of character `index` of `text`, counting lines as YAML does."""
    before = text[:index]
    breaks = list(_YAML_BREAKS.finditer(before))
    line_start = breaks[-1].end() if breaks else 0
    return len(breaks) + 1, index - line_start + 1


def _tag_name(tag: str) -> str:
    return "!!" + tag.removeprefix("tag:yaml.org,2002:") if tag.startswith("tag:yaml.org,2002:") else tag


def _scalar(node: yaml.ScalarNode, doc: _Doc, errors: list[RuleFileError]) -> Any:
    """Construct one scalar (with the safe constructors); a value its tag rejects is an error."""
    try:
        return doc.constructor.construct_object(node, deep=True)
    except yaml.MarkedYAMLError as exc:
        problem = exc.problem or exc.context or "unreadable value"
        if "could not determine a constructor" in problem:
            problem = (
                f"unsupported YAML tag {_q(_tag_name(node.tag))}: rule files hold plain"
                " strings, numbers, lists and mappings (remove the tag)"
            )
        errors.append(RuleFileError(_mark(doc.file, node), f"invalid YAML value: {problem}"))
    except Exception:  # the safe constructors raise ValueError, KeyError... on a value their tag rejects
        errors.append(
            RuleFileError(
                _mark(doc.file, node),
                f"invalid YAML value: {_q(node.value)} is not a valid {_tag_name(node.tag)}"
                " (remove the tag or fix the value)",
            )
        )
    return node.value


def _convert(node: yaml.Node, doc: _Doc, path: PathKey, errors: list[RuleFileError], active: set[int]) -> Any:
    """Turn a composed node into plain data, recording positions and duplicate keys."""
    doc.values += 1
    if doc.values > MAX_VALUES:
        raise _TooBig(node)
    doc.value_at[path] = _mark(doc.file, node)
    if isinstance(node, yaml.ScalarNode):
        return _scalar(node, doc, errors)
    if id(node) in active:
        errors.append(
            RuleFileError(
                _mark(doc.file, node),
                "invalid YAML: this anchored value contains an alias to itself (a recursive alias): remove the alias",
            )
        )
        return None
    active.add(id(node))
    try:
        if isinstance(node, yaml.SequenceNode):
            return [_convert(item, doc, (*path, i), errors, active) for i, item in enumerate(node.value)]
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                errors.append(
                    RuleFileError(
                        _mark(doc.file, key_node),
                        "mapping keys must be plain strings, not a list or a mapping",
                    )
                )
                continue
            key = str(doc.constructor.construct_scalar(key_node))
            if key == "<<" and key_node.tag == "tag:yaml.org,2002:merge":
                errors.append(
                    RuleFileError(
                        _mark(doc.file, key_node),
                        "YAML merge keys ('<<') are not supported in rule files: write the keys out",
                    )
                )
                continue
            if key in out:
                first = doc.key_at[(*path, key)]
                errors.append(
                    RuleFileError(
                        _mark(doc.file, key_node),
                        f"duplicate key {_q(key)} (first at line {first.line}, column {first.column}): keep only one",
                    )
                )
                continue
            doc.key_at[(*path, key)] = _mark(doc.file, key_node)
            out[key] = _convert(value_node, doc, (*path, key), errors, active)
        return out
    finally:
        active.discard(id(node))


def _yaml_error(exc: yaml.MarkedYAMLError, display: str) -> RuleFileError:
    """A PyYAML syntax error as one located line, pointing where the fix is needed."""
    problem = exc.problem or exc.context or "invalid YAML"
    context = exc.context or ""
    mark = exc.problem_mark or exc.context_mark
    at_end = "<stream end>" in problem or "end of stream" in problem
    quote = "this quoted string is never closed: add the closing quote"
    unclosed = {
        "while parsing a flow sequence": "this '[' is never closed: add the matching ']'",
        "while parsing a flow mapping": "this '{' is never closed: add the matching '}'",
        "while scanning a quoted scalar": quote,
        "while scanning a double-quoted scalar": quote,
        "while scanning a single-quoted scalar": quote,
    }
    hint = ""
    if at_end and exc.context_mark is not None and context in unclosed:
        mark = exc.context_mark
        problem = unclosed[context]
    elif "'\\t'" in problem:
        problem = "a tab character: YAML indents with spaces only (replace the tab with spaces)"
    elif "expected <block end>" in problem:
        where = exc.context_mark
        started = f" (it starts at line {where.line + 1}, column {where.column + 1})" if where else ""
        problem = (
            f"this line is indented differently from the block it belongs to{started}:"
            " line it up with the keys or items next to it"
        )
    elif "expected ',' or ']'" in problem or "expected ',' or '}'" in problem:
        where = exc.context_mark
        started = f" (opened at line {where.line + 1}, column {where.column + 1})" if where else ""
        problem = f"{problem} in a [...] or {{...}} list{started}: close it, or quote a value holding ':'"
    elif "mapping values are not allowed here" in problem:
        hint = " (a value containing ': ' must be quoted; or check the indentation)"
    elif "could not find expected ':'" in problem:
        hint = " (a 'key: value' line lacks its ':', or a multi-line value is not indented)"
    elif "expected a single document" in context:
        problem = "a rule file holds one YAML document: remove the second '---'"
    elif "found undefined alias" in problem:
        hint = " (define the anchor with '&name' before using '*name')"
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    return RuleFileError(Location(display, line, col), f"invalid YAML: {problem}{hint}")


def _check_depth(text: str, display: str, loader: Any = yaml.SafeLoader) -> None:
    """Parse events (no recursion) to reject absurd nesting before composing the node tree."""
    depth = 0
    for event in yaml.parse(text, Loader=loader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                mark = event.start_mark
                line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
                raise RuleErrors(
                    [
                        RuleFileError(
                            Location(display, line, col),
                            f"invalid YAML: nested more than {MAX_DEPTH} levels deep (a rule file needs 4)",
                        )
                    ]
                )
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _libyaml_agrees(root: yaml.Node) -> bool:
    """Whether PyYAML's own parser certainly reads libyaml's tree alike. Not so, or not known,
    for empty plain values (implicit nulls: placed differently), plain values holding '?'
    (libyaml allows them in flow lists, PyYAML does not), aliases and tags other than YAML's
    standard ones; such files are parsed again by PyYAML's parser."""
    stack, seen = [root], set()
    while stack:
        node = stack.pop()
        if id(node) in seen:  # an alias
            return False
        seen.add(id(node))
        if isinstance(node, yaml.ScalarNode):
            if node.tag not in _STANDARD_TAGS or (not node.style and (node.value == "" or "?" in node.value)):
                return False
        elif node.tag not in _STANDARD_TAGS:
            return False
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
        else:
            stack.extend(item for pair in node.value for item in pair)
    return True


def _compose(text: str, display: str) -> yaml.Node | None:
    """The node tree of a rule file, after the depth check. libyaml (when PyYAML has it) does
    this ten times faster than PyYAML's own parser, and reads the texts it is given here the
    same way; anything it refuses is parsed again by PyYAML's parser, whose errors and
    positions are the ones reported."""
    if _FAST_LOADER is not None and _FAST_SAFE.fullmatch(text) and not text.startswith("%") and "\n%" not in text:
        try:
            _check_depth(text, display, _FAST_LOADER)
            node: yaml.Node | None = yaml.compose(text, Loader=_FAST_LOADER)
            if node is not None and _libyaml_agrees(node):
                return node
        except (yaml.YAMLError, RuleErrors, RecursionError):
            pass
    _check_depth(text, display)
    return yaml.compose(text, Loader=yaml.SafeLoader)


def _parse_file(path: Path, display: str) -> tuple[_Doc, list[RuleFileError]]:
    errors: list[RuleFileError] = []
    start = Location(display, 1, 1)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise RuleErrors([RuleFileError(start, f"cannot read rule file ({exc.strerror or exc})")]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        prefix = raw[: exc.start].decode("utf-8", errors="replace")
        line, col = _position(prefix, len(prefix))
        raise RuleErrors(
            [
                RuleFileError(
                    Location(display, line, col),
                    f"not UTF-8 text: byte 0x{raw[exc.start]:02x} ({exc.reason}); save the file as UTF-8",
                )
            ]
        ) from None
    doc = _Doc(display, None)
    try:
        node = _compose(text, display)
    except yaml.reader.ReaderError as exc:
        line, col = _position(text, exc.position)
        char = f"U+{exc.character:04X}" if isinstance(exc.character, int) else "a byte"
        raise RuleErrors(
            [
                RuleFileError(
                    Location(display, line, col),
                    f"invalid YAML: character {char} is not allowed in YAML (remove it)",
                )
            ]
        ) from None
    except yaml.MarkedYAMLError as exc:
        raise RuleErrors([_yaml_error(exc, display)]) from None
    except yaml.YAMLError as exc:
        raise RuleErrors([RuleFileError(start, f"invalid YAML: {_printable(str(exc))}")]) from None
    except RecursionError:
        raise RuleErrors([RuleFileError(start, "invalid YAML: nested too deeply")]) from None
    if node is None:
        doc.data = {}
        return doc, errors
    try:
        doc.data = _convert(node, doc, (), errors, set())
    except _TooBig as exc:
        raise RuleErrors(
            [
                RuleFileError(
                    _mark(display, exc.node),
                    f"YAML aliases expand this file to more than {MAX_VALUES:,} values:"
                    " write it without so many aliases",
                )
            ]
        ) from None
    except RecursionError:
        raise RuleErrors([RuleFileError(start, "invalid YAML: nested too deeply")]) from None
    return doc, errors


def _describe(value: Any, *, quote: bool = True) -> str:
    """'the string 'x'', 'a list', 'the number 3'... for messages; `quote=False` never shows a string."""
    if isinstance(value, str) and not quote:
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {_q(value)}"
    if value is None:
        return "nothing (null)"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, bytes):
        return "binary data"
    return f"a {type(value).__name__} ({_printable(str(value))})"


def _context(path: PathKey, doc: _Doc) -> str:
    """'in rule 'trap'' / 'in ignore entry #3' / 'at top level' for messages."""
    if len(path) >= 2 and path[0] == "rules" and isinstance(path[1], int):
        rule = doc.data["rules"][path[1]] if isinstance(doc.data, dict) else None
        name = rule.get("name") if isinstance(rule, dict) else None
        return f"in rule {_q(name)}" if isinstance(name, str) and name else f"in rule #{path[1] + 1}"
    if len(path) >= 2 and path[0] in IGNORE_SECTIONS and isinstance(path[1], int):
        return f"in {path[0]} entry #{path[1] + 1}"
    if len(path) >= 2 and path[0] == "targets":
        return f"in target {_q(path[1])}"
    if path and path[0] == "policy":
        return "in policy"
    return "at top level"


def _allowed_keys(path: PathKey) -> tuple[str, ...]:
    if not path:
        return TOP_KEYS
    if path[0] == "rules":
        return RULE_KEYS
    if path[0] in IGNORE_SECTIONS:
        return IGNORE_KEYS
    if path[0] == "policy":
        return POLICY_KEYS
    if path[0] == "targets":
        return ("description",)
    return ()


def _listed(value: Any) -> list[str]:
    """A schema keyword's list value (`required`, `enum`) as strings."""
    return [str(v) for v in value] if isinstance(value, list) else []


def _branch_fit(errors: list[jsonschema.ValidationError]) -> int:
    """How badly a oneOf/anyOf branch fits: 2 wrong type, 1 not an allowed value, 0 close."""
    root = [e for e in errors if not e.relative_path]
    if any(e.validator == "type" for e in root):
        return 2
    if any(e.validator == "enum" for e in root):
        return 1
    return 0


def _leaves(err: jsonschema.ValidationError) -> list[jsonschema.ValidationError]:
    """For oneOf/anyOf, the errors of the one branch the value was evidently meant for."""
    if err.validator not in ("oneOf", "anyOf") or not err.context:
        return [err]
    branches: dict[Any, list[jsonschema.ValidationError]] = {}
    for sub in err.context:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    fits = {branch: _branch_fit(subs) for branch, subs in branches.items()}
    best = min(fits.values())
    chosen = [branch for branch, fit in fits.items() if fit == best]
    if len(chosen) != 1 or len(branches) < 2:
        return [err]
    return [leaf for sub in branches[chosen[0]] for leaf in _leaves(sub)]


def _unknown_keys(err: jsonschema.ValidationError) -> list[str]:
    allowed = _allowed_keys(tuple(err.absolute_path))
    instance = err.instance if isinstance(err.instance, dict) else {}
    return [k for k in instance if k not in allowed] if allowed else list(instance)


def _schema_messages(err: jsonschema.ValidationError, doc: _Doc) -> list[RuleFileError]:
    """Translate one JSON Schema error into located, human messages."""
    path: PathKey = tuple(err.absolute_path)
    where = _context(path, doc)
    field_name = str(path[-1]) if path else ""
    validator = err.validator
    instance = err.instance
    if validator == "additionalProperties" and isinstance(instance, dict):
        allowed = _allowed_keys(path)
        out = []
        for key in _unknown_keys(err):
            hint = did_you_mean(key, allowed)
            expected = f"; allowed keys: {', '.join(allowed)}" if not hint and allowed else ""
            out.append(
                RuleFileError(
                    doc.loc((*path, key), key=True),
                    f"unknown key {_q(key)} {where}{hint}{expected}",
                )
            )
        return out
    if validator == "required":
        required = _listed(err.validator_value)
        missing = [k for k in required if isinstance(instance, dict) and k not in instance]
        what = missing[0] if missing else "?"
        needed = ", ".join(required)
        return [RuleFileError(doc.loc(path), f"missing key '{what}' {where} (required: {needed})")]
    if validator == "anyOf" and path[:1] in (("ignore",), ("not_genres",)):
        return [
            RuleFileError(
                doc.loc(path),
                f"{path[0]} entry #{int(path[1]) + 1} needs 'subgenre', 'subgenres' or 'patterns'"
                " (the subgenres to leave unlabelled)",
            )
        ]
    if validator == "enum" or (validator == "oneOf" and path == ("policy",)):
        if path == ("policy", "out_of_scope"):
            choices, label = OUT_OF_SCOPE, "out_of_scope"
        elif path[:1] == ("policy",):
            choices, label = POLICIES, "policy"
        elif field_name == "kind":
            choices, label = (RULE_KINDS if path[:1] == ("rules",) else IGNORE_KINDS), "kind"
        else:
            choices, label = (
                {"unless_kind": UNLESS_KINDS, "scorer": FUZZY_SCORERS}.get(field_name, ()),
                field_name,
            )
        if not choices:
            choices = tuple(_listed(err.validator_value))
        value = instance.get("name") if isinstance(instance, dict) else instance
        if path[:1] == ("policy",) and label != "out_of_scope":
            where, label = "", ("policy name" if isinstance(value, str) or len(path) > 1 else "policy")
        if isinstance(value, str):
            hint = did_you_mean(value, choices)
            return [
                RuleFileError(
                    doc.loc(path),
                    f"unknown {label} {_q(value)}{' ' + where if where else ''}{hint};"
                    f" expected one of: {', '.join(choices)}",
                )
            ]
        if path == ("policy",):
            return [
                RuleFileError(
                    doc.loc(path),
                    f"'policy' must be a policy name ({', '.join(choices)}) or a mapping with keys"
                    f" {', '.join(POLICY_KEYS)}, not {_describe(value)}",
                )
            ]
        return [
            RuleFileError(
                doc.loc(path),
                f"'{label}'{' ' + where if where else ''} must be one of: {', '.join(choices)}; not {_describe(value)}",
            )
        ]
    if field_name in ("patterns", "unless", "subgenres") and (
        validator in ("minItems", "minLength", "oneOf") or instance in ([], "")
    ):
        if instance in ([], "", None):
            return [
                RuleFileError(
                    doc.loc(path),
                    f"empty {field_name} {where}: give at least one non-empty pattern",
                )
            ]
        return [
            RuleFileError(
                doc.loc(path),
                f"'{field_name}' {where} must be a string or a list of strings, not {_describe(instance)}",
            )
        ]
    if len(path) >= 2 and path[-2] in ("patterns", "unless", "subgenres") and validator in ("type", "minLength"):
        return [
            RuleFileError(
                doc.loc(path),
                f"{path[-2]} entry #{int(path[-1]) + 1} {where} must be a non-empty string, not {_describe(instance)}",
            )
        ]
    if validator == "minItems" and path[:2] == ("policy", "related"):
        return [
            RuleFileError(
                doc.loc(path),
                "a group of related targets in policy 'related' needs two targets or more (as in [rock, metal])",
            )
        ]
    if validator in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        ranges = {
            "threshold": "between 0 and 100",
            "min_share": "between 0 and 1",
            "min_margin": "between 0 and 1",
            "weight": "greater than 0",
        }
        bounds = ranges.get(field_name, _printable(err.message))
        if path[:1] == ("ignore",) and field_name == "weight":
            bounds = "0 (the entry abstains) or more"
        return [
            RuleFileError(
                doc.loc(path),
                f"{field_name} {instance} {where} is out of range: it must be {bounds}",
            )
        ]
    if validator == "type":
        wanted = err.validator_value
        names = {"object": "mapping", "array": "list", "integer": "integer", "number": "number", "string": "string"}
        wanted_list = wanted if isinstance(wanted, list) else [wanted]
        wanted_text = " or ".join(names.get(str(w), str(w)) for w in wanted_list)
        if wanted == "object" and not path:
            keys = ", ".join(TOP_KEYS)
            return [
                RuleFileError(
                    doc.loc(path),
                    # The whole file is this value: name its type, never quote it (it may be a `.env`).
                    f"a rule file must be a mapping with keys {keys}, not {_describe(instance, quote=False)}",
                )
            ]
        if wanted == "array" and path in (("rules",), ("ignore",), ("not_genres",)):
            return [
                RuleFileError(
                    doc.loc(path),
                    f"'{field_name}' must be a list of entries ('- ...' lines), not {_describe(instance)}",
                )
            ]
        if wanted == "object" and len(path) == 2 and path[0] == "rules":
            return [
                RuleFileError(
                    doc.loc(path),
                    f"rule #{int(path[1]) + 1} must be a mapping with keys name, target, kind, patterns,"
                    f" not {_describe(instance)}",
                )
            ]
        if wanted == "object" and len(path) == 2 and path[0] in IGNORE_SECTIONS:
            return [
                RuleFileError(
                    doc.loc(path),
                    f"{path[0]} entry #{int(path[1]) + 1} must be a mapping with keys reason and subgenre,"
                    f" subgenres or patterns, not {_describe(instance)}",
                )
            ]
        article = "an" if wanted_text[0] in "aeiou" else "a"
        noun = f"'{field_name}'" if field_name and not isinstance(path[-1], int) else "entry"
        return [
            RuleFileError(doc.loc(path), f"{noun} {where} must be {article} {wanted_text}, not {_describe(instance)}")
        ]
    if validator == "minLength":
        return [RuleFileError(doc.loc(path), f"'{field_name}' {where} must not be empty")]
    if validator == "oneOf" and len(path) >= 2 and path[0] == "targets":
        return [
            RuleFileError(
                doc.loc(path),
                f"target {_q(path[1])} needs a description string, not {_describe(instance)}",
            )
        ]
    return [RuleFileError(doc.loc(path), f"{_shorten(err.message, 120)} {where}")]


def _section(err: jsonschema.ValidationError) -> PathKey:
    """The part of the file a schema error spoils: the whole file, a section, or one entry."""
    path: PathKey = tuple(err.absolute_path)
    if not path:
        return () if err.validator == "type" else ("<top>",)
    return path[:1] if path[0] == "policy" else path[:2]


def _schema_errors(doc: _Doc) -> tuple[list[RuleFileError], set[PathKey]]:
    """Every schema problem of one file, and the parts of it that cannot be built."""
    if surely_valid(doc.data):
        return [], set()
    raw = list(_validator().iter_errors(doc.data))
    leaves = [leaf for err in raw for leaf in _leaves(err)]
    # A misspelt key explains the missing one ('patern' → missing 'patterns'): report it once.
    meant: dict[PathKey, set[str]] = {}
    for err in leaves:
        if err.validator == "additionalProperties":
            allowed = _allowed_keys(tuple(err.absolute_path))
            for key in _unknown_keys(err):
                meant.setdefault(tuple(err.absolute_path), set()).update(
                    difflib.get_close_matches(key, list(allowed), n=1, cutoff=0.6)
                )
    messages: list[RuleFileError] = []
    for err in leaves:
        if err.validator == "required" and isinstance(err.instance, dict):
            missing = {k for k in _listed(err.validator_value) if k not in err.instance}
            if missing and missing <= meant.get(tuple(err.absolute_path), set()):
                continue
        messages.extend(_schema_messages(err, doc))
    return messages, {_section(err) for err in raw}


def _as_list(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)


def _normalized_patterns(
    raw: tuple[str, ...],
    kind: str,
    doc: _Doc,
    path: PathKey,
    where: str,
    errors: list[RuleFileError],
) -> tuple[str, ...]:
    """Canonicalise patterns (regexes are kept as written, but compiled by RE2 to check them)."""
    out: list[str] = []
    for i, pattern in enumerate(raw):
        item_path = (*path, i) if (*path, i) in doc.value_at else path
        if kind == "regex":
            try:
                compile_regex(pattern)
            except RegexError as exc:
                errors.append(
                    RuleFileError(doc.loc(item_path), f"bad regex {_q(pattern)} {where}: {_printable(str(exc))}")
                )
                continue
            out.append(pattern)
            continue
        canonical = normalize_genre(pattern)
        if not canonical:
            errors.append(
                RuleFileError(
                    doc.loc(item_path),
                    f"pattern {_q(pattern)} {where} has no letters or digits, so it can match nothing: remove it",
                )
            )
            continue
        out.append(canonical)
    return tuple(out)


def _finite(
    raw: dict[str, Any],
    keys: tuple[str, ...],
    doc: _Doc,
    path: PathKey,
    where: str,
    errors: list[RuleFileError],
) -> bool:
    """NaN and infinity pass the schema's ranges but mean nothing: reject them."""
    ok = True
    for key in keys:
        value = raw.get(key)
        if isinstance(value, float) and not math.isfinite(value):
            errors.append(RuleFileError(doc.loc((*path, key)), f"{key} {value} {where} must be a finite number"))
            ok = False
    return ok


@dataclass
class _Building:
    """State carried across the files of one load."""

    ruleset: RuleSet = field(default_factory=RuleSet)
    first_seen: dict[str, Location] = field(default_factory=dict)
    target_at: dict[int, Location] = field(default_factory=dict)  # rule order → its `target` value
    related_at: list[list[Location]] = field(default_factory=list)  # each name of the policy's `related` groups


def _build(doc: _Doc, state: _Building, errors: list[RuleFileError], spoiled: set[PathKey]) -> None:
    """Turn one file's valid parts into domain objects, adding them to the rule set.

    Parts the schema rejected (`spoiled`: a section, or one entry of it) are left out, so the
    rest of the file is still checked and `lint` can list every problem at once.
    """
    data: dict[str, Any] = doc.data

    def usable(*path: str | int) -> bool:
        return path not in spoiled and path[:1] not in spoiled

    if usable("targets"):
        for name, value in (data.get("targets") or {}).items():
            if usable("targets", name):
                _build_target(doc, state, errors, name, value)
    if data.get("policy") is not None and usable("policy"):
        _build_policy(doc, state, errors, data["policy"])
    if usable("rules"):
        for i, raw in enumerate(data.get("rules") or []):
            if usable("rules", i):
                _build_rule(doc, state, errors, ("rules", i), raw)
    for section in IGNORE_SECTIONS:
        if usable(section):
            for i, raw in enumerate(data.get(section) or []):
                if usable(section, i):
                    _build_ignore(doc, state, errors, (section, i), raw)


def _build_target(doc: _Doc, state: _Building, errors: list[RuleFileError], name: str, value: Any) -> None:
    targets = state.ruleset.targets
    canonical = normalize_genre(name)
    at = doc.loc(("targets", name), key=True)
    if not canonical:
        errors.append(RuleFileError(at, f"target name {_q(name)} has no letters or digits"))
        return
    if canonical in targets:
        errors.append(
            RuleFileError(
                at,
                f"target '{canonical}' is declared twice (first at {targets[canonical].location}): remove one",
            )
        )
        return
    description = value if isinstance(value, str) else (value or {}).get("description", "")
    targets[canonical] = Target(canonical, description or "", at)


def _build_policy(doc: _Doc, state: _Building, errors: list[RuleFileError], policy: Any) -> None:
    at = doc.loc(("policy",), key=True)
    first = state.ruleset.policy.location
    if first is not None:
        errors.append(RuleFileError(at, f"policy is set twice (first at {first}): keep one"))
        return
    spec: dict[str, Any] = {"name": policy} if isinstance(policy, str) else policy
    if _finite(spec, ("min_share", "min_margin"), doc, ("policy",), "in policy", errors):
        state.ruleset.policy = Policy(
            name=spec["name"],
            min_share=float(spec.get("min_share", Policy.min_share)),
            min_margin=float(spec.get("min_margin", Policy.min_margin)),
            location=at,
            out_of_scope=spec.get("out_of_scope", Policy.out_of_scope),
            related=tuple(tuple(normalize_genre(t) for t in group) for group in spec.get("related") or ()),
        )
        state.related_at = [
            [doc.loc(("policy", "related", i, j)) for j in range(len(group))]
            for i, group in enumerate(spec.get("related") or ())
        ]


def _build_rule(doc: _Doc, state: _Building, errors: list[RuleFileError], path: PathKey, raw: dict[str, Any]) -> None:
    ruleset = state.ruleset
    where = _context(path, doc)
    name = raw["name"]
    location = doc.loc(path)
    if name in state.first_seen:
        errors.append(
            RuleFileError(
                doc.loc((*path, "name")),
                f"duplicate rule name {_q(name)} (first defined at {state.first_seen[name]}): rename one",
            )
        )
        return
    state.first_seen[name] = location
    kind = raw["kind"]
    if kind != "fuzzy" and ("threshold" in raw or "scorer" in raw):
        key = "threshold" if "threshold" in raw else "scorer"
        errors.append(
            RuleFileError(
                doc.loc((*path, key), key=True),
                f"'{key}' {where} only applies to fuzzy rules (this one is {kind}): remove it or use kind: fuzzy",
            )
        )
    if not _finite(raw, ("threshold", "weight"), doc, path, where, errors):
        return
    target = normalize_genre(raw["target"])
    if not target:
        errors.append(
            RuleFileError(
                doc.loc((*path, "target")),
                f"target {_q(raw['target'])} {where} has no letters or digits",
            )
        )
        return
    unless_kind = raw.get("unless_kind", "keyword")
    patterns = _normalized_patterns(_as_list(raw["patterns"]), kind, doc, (*path, "patterns"), where, errors)
    unless = _normalized_patterns(_as_list(raw.get("unless")), unless_kind, doc, (*path, "unless"), where, errors)
    state.target_at[len(ruleset.rules)] = doc.loc((*path, "target"))
    ruleset.rules.append(
        Rule(
            name=name,
            target=target,
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


def _build_ignore(doc: _Doc, state: _Building, errors: list[RuleFileError], path: PathKey, raw: dict[str, Any]) -> None:
    where = _context(path, doc)
    kind = raw.get("kind", "exact")
    patterns: tuple[str, ...] = ()
    for key in ("subgenre", "subgenres", "patterns"):
        if key in raw:
            patterns += _normalized_patterns(_as_list(raw[key]), kind, doc, (*path, key), where, errors)
    unless_kind = raw.get("unless_kind", "keyword")
    unless = _normalized_patterns(_as_list(raw.get("unless")), unless_kind, doc, (*path, "unless"), where, errors)
    if not _finite(raw, ("weight",), doc, path, where, errors):
        return
    weight = float(raw.get("weight", IgnoreEntry.weight))
    not_genre = path[0] == "not_genres"
    state.ruleset.ignore.append(
        IgnoreEntry(patterns, raw["reason"], doc.loc(path), kind, unless, unless_kind, weight, not_genre=not_genre)
    )


def _check_targets(state: _Building, errors: list[RuleFileError]) -> None:
    ruleset = state.ruleset
    if ruleset.rules and not ruleset.targets:
        first = ruleset.rules[0]
        errors.append(
            RuleFileError(first.location, "no targets are declared: add a 'targets:' mapping to one rule file")
        )
        return
    names = tuple(ruleset.targets)
    for group, places in zip(ruleset.policy.related, state.related_at, strict=True):
        for name, at in zip(group, places, strict=True):
            if name not in ruleset.targets:
                errors.append(
                    RuleFileError(
                        at,
                        f"unknown target {_q(name)} in policy 'related'{did_you_mean(name, names)}"
                        f" (declared targets: {', '.join(names)})",
                    )
                )
    for rule in ruleset.rules:
        if rule.target not in ruleset.targets:
            errors.append(
                RuleFileError(
                    state.target_at.get(rule.order, rule.location),
                    f"unknown target {_q(rule.target)} in rule {_q(rule.name)}"
                    f"{did_you_mean(rule.target, names)}"
                    f" (declared targets: {', '.join(names)})",
                )
            )


def rule_files(rules_dir: Path) -> list[Path]:
    """The YAML files of a rules directory, in the (file-name) order they are merged."""
    if not rules_dir.exists():
        raise UsageError(
            f"rules directory not found: {rules_dir} (pass --rules DIR, or run from a folder that has rules/)"
        )
    if not rules_dir.is_dir():
        raise UsageError(f"--rules must be a directory of *.yaml files, not a file: {rules_dir}")
    files = sorted(p for p in rules_dir.iterdir() if p.suffix in (".yaml", ".yml") and (p.is_file() or p.is_symlink()))
    if not files:
        raise UsageError(f"no rule files (*.yaml) in {rules_dir}")
    return files


def _link_problem(path: Path, root: Path) -> str | None:
    """Why a symbolic link in the rules folder is refused, or None for a plain file (or a link
    that stays inside the folder). A link leading out could make an error message quote a file
    that is no rule file at all (a `.env`), so it is never read. `root` is the folder resolved:
    the folder itself may be a link (the repository's `genremap/rules -> ../rules`)."""
    if not path.is_symlink():
        return None
    target = path.resolve()
    if not target.is_relative_to(root):
        return "symbolic link to a file outside the rules folder: refused (copy the file into the folder instead)"
    if not target.is_file():
        return "symbolic link to a missing file or a folder: fix or remove the link"
    return None


def display_path(path: Path) -> str:
    """The path as the user would type it: relative to the working folder when inside it."""
    relative = os.path.relpath(path.absolute(), Path.cwd())
    return _printable(relative if not relative.startswith("..") else str(path.absolute()))


def _may_declare_targets(path: Path) -> bool:
    """Whether an unreadable rule file might hold target declarations (it mentions them)."""
    try:
        return b"targets" in path.read_bytes()
    except OSError:
        return True


def load_rules(rules_dir: Path, *, collect_all: bool = False) -> RuleSet:
    """Load and validate every rule file of `rules_dir`.

    Raises RuleErrors (exit status 2) whose message is the first problem by file and line;
    `collect_all` keeps going through every file so `lint` can list all of them.
    """
    state = _Building()
    errors: list[RuleFileError] = []
    sources: list[tuple[str, bytes]] = []
    # Unknown targets are only worth reporting when every target declaration could be read.
    targets_known = True
    files = rule_files(rules_dir)
    root = rules_dir.resolve()
    for index, path in enumerate(files):
        display = display_path(path)
        try:
            refused = _link_problem(path, root)
            if refused is not None:
                raise RuleErrors([RuleFileError(Location(display, 1, 1), refused)])
            doc, file_errors = _parse_file(path, display)
        except RuleErrors as exc:
            errors.extend(exc.errors)
            targets_known = targets_known and refused is None and not _may_declare_targets(path)
        else:
            sources.append((path.name, path.read_bytes()))
            state.ruleset.files.append(display)
            schema_errors, spoiled = _schema_errors(doc)
            file_errors.extend(schema_errors)
            if any(p[:1] == ("targets",) for p in spoiled):
                targets_known = False
            if () not in spoiled:
                _build(doc, state, file_errors, spoiled)
            errors.extend(file_errors)
        if errors and not collect_all:
            targets_known = targets_known and index == len(files) - 1
            break
    if targets_known:
        _check_targets(state, errors)
    if errors:
        raise RuleErrors([_one_line(e) for e in errors])
    state.ruleset.source_hash = RuleSet.hash_sources(sources)
    return state.ruleset
