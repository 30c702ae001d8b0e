"""Rule files parsed with libyaml read exactly as with PyYAML's own parser.

The loader composes rule files with libyaml when PyYAML has it (ten times faster), and with
PyYAML's parser when libyaml refuses a file or the file holds characters the two could treat
differently. Whatever the file, the result must be the same as with PyYAML's parser alone:
the same data, the same line and column for every value and key, the same errors.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from genremap.engine import default_rules_dir, loader
from genremap.errors import RuleErrors

pytestmark = pytest.mark.skipif(loader._FAST_LOADER is None, reason="PyYAML was built without libyaml")

RULE_FILES = sorted(default_rules_dir().glob("*.yaml"))
SETTINGS = settings(
    max_examples=int(os.environ.get("GENREMAP_FUZZ_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
# fmt: off
TOKENS = st.sampled_from([
    "\n", "\n  ", "\n    ", "\n  - ", "- ", ": ", ":", "? ", ", ", ",", "[", "]", "{", "}", "'", '"', "#", " #",
    "|\n", "|-\n", ">\n", ">+\n", "---\n", "...\n", "--- ", "%YAML 1.1\n", "%YAML 1.2\n", "%TAG ! tag:x,2000:\n",
    "&a ", "&b ", "*a", "*b", "<<: ", "<<: *a", "!!float ", "!!int ", "!!str ", "!!null ", "!!set ", "!foo ",
    "!<tag:yaml.org,2002:str> ", "rules", "targets", "name", "target", "kind", "patterns", "reason", "rock",
    "hip hop", "0", "-1", ".nan", ".inf", "1e400", "0x1F", "2001-02-03", "yes", "~", "null", "é", "日本",
    "\U0001f600", "\\", "\\n", "\\x85", "\\u2028", "@", "`", "%", " ", "  ", "\t", "\r", "\r\n", "\x85",
    "\u2028", "\u2029", "\ufeff", "\x00", "\x7f", "\x9b", "a" * 1100, "?", "t?x", "[a?", "a:b", "a:", "{a: b}",
    "[a, b]", "{a, b}", "-", "--", "...", "=", "<<", "&x", "*x", "!", "!!map ", "!!seq ", "!!omap ", ": &a", ": *a",
])
# fmt: on


def _doc(text: str, tmp: Path) -> tuple[str, Any]:
    """What the loader makes of `text`: its data, positions and errors, or its error messages."""
    path = tmp / "10-x.yaml"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    try:
        doc, errors = loader._parse_file(path, "10-x.yaml")
    except RuleErrors as exc:
        return "refused", [str(e) for e in exc.errors]
    return "read", (repr(doc.data), doc.value_at, doc.key_at, doc.values, [str(e) for e in errors])


def _agree(text: str, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fast = _doc(text, tmp)
    with monkeypatch.context() as patch:
        patch.setattr(loader, "_FAST_LOADER", None)
        slow = _doc(text, tmp)
    assert fast == slow


@st.composite
def soups(draw: st.DrawFn) -> str:
    return "".join(draw(st.lists(TOKENS, max_size=40)))


@st.composite
def mutated_rule_files(draw: st.DrawFn) -> str:
    """A packaged rule file with a few tokens inserted, deleted or replaced."""
    text = draw(st.sampled_from(RULE_FILES)).read_text(encoding="utf-8")
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        cut = draw(st.integers(0, 6))
        text = text[:at] + draw(TOKENS | st.just("")) + text[at + cut :]
    return text


@st.composite
def dumped_documents(draw: st.DrawFn) -> str:
    """Real YAML of odd values, dumped in block or flow style."""
    leaves = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10)
    data = draw(
        st.recursive(
            leaves, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
        )
    )
    return yaml.safe_dump(
        {"rules": [data]},
        allow_unicode=draw(st.booleans()),
        default_flow_style=draw(st.sampled_from([None, True, False])),
    )


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_packaged_rule_files_read_the_same(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = path.read_text(encoding="utf-8")
    assert loader._FAST_SAFE.fullmatch(text), "the packaged rules take the fast path"
    assert loader._libyaml_agrees(yaml.compose(text, Loader=loader._FAST_LOADER))
    _agree(text, tmp_path, monkeypatch)


@SETTINGS
@given(text=soups())
@example(text="rules:\n  - name: a\n    patterns: [x]\n\t")
@example(text="a: b\r\nc: d\r\n")
@example(text="%YAML 1.2\n---\na: 1\n")
@example(text="a: &a [*a]\n")
@example(text="? [a, b]\n: c\n")
@example(text="a: 'x\u2028y'\n")
def test_token_soup_reads_the_same(text: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    with pytest.MonkeyPatch.context() as monkeypatch:
        _agree(text, tmp_path_factory.mktemp("soup"), monkeypatch)


@SETTINGS
@given(text=mutated_rule_files())
def test_edited_rule_files_read_the_same(text: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    with pytest.MonkeyPatch.context() as monkeypatch:
        _agree(text, tmp_path_factory.mktemp("edit"), monkeypatch)


@SETTINGS
@given(text=dumped_documents())
def test_dumped_documents_read_the_same(text: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    with pytest.MonkeyPatch.context() as monkeypatch:
        _agree(text, tmp_path_factory.mktemp("dump"), monkeypatch)
