"""`genremap report --format html`: one offline page, checked as text and in a real browser.

The static tests parse the page with the standard library: it loads nothing (no URL but the SVG
namespace, a Content-Security-Policy of `default-src 'none'`), its tables hold what
`genremap subgenres` and `unmapped` say, and names from the store, the rules and the store's own
path stay text, however they are made. The browser tests open the page in headless Chromium
(Debian's `chromium` and `chromium-driver`, driven by selenium; they skip, saying why, where
either is missing): typing in the search box filters the table, headers sort it, the chart's
bars are drawn to scale with `report --format json`, a hostile name runs nothing, and a store of
20,000 subgenres stays quick. Each saves a screenshot in its temporary folder.
"""

from __future__ import annotations

import errno
import json
import os
import random
import re
import shutil
import time
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_hostile_names import HOSTILE
from typer.testing import CliRunner

from genremap import __version__, html_report
from genremap.cli import app
from genremap.engine import load_rules
from genremap.html_report import BAR_W, script_json
from genremap.store import ArtistRecord, Store
from genremap.text import terminal_safe

# Names that would run script or bend the page if written raw into HTML or a <script> element.
HTML_HOSTILE = [
    "</script><script>window.pwned = 1</script>",
    '<img src=x onerror="window.pwned = 1">',
    "<!-- <script>window.pwned = 1</script>",
    "Sep\u2028</SCRIPT ><svg onload=window.pwned=1>",
    "&lt;b&gt; entity &amp; <b>bold</b>",
    "{{data}} {{script}} slots",
    "\"'><iframe srcdoc='<script>window.pwned=1</script>'>",
]
ALL_HOSTILE = HOSTILE + HTML_HOSTILE


# --- helpers --------------------------------------------------------------------------------


class Page(HTMLParser):
    """The page's elements (tag, attributes) and the text of its script elements."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self.text: list[str] = []
        self._in_script = False
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))
        if tag not in ("code", "b", "i", "small", "span"):
            self.text.append(" ")  # a block starts: words of two blocks do not run together
        if tag == "script":
            self._in_script = True
            self.scripts.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts[-1] += data
        elif self.elements and self.elements[-1][0] == "style":
            pass
        else:
            self.text.append(data)

    def data(self) -> dict[str, Any]:
        """The tables embedded as JSON."""
        (index,) = [i for i, (tag, attrs) in enumerate(self.scripts_tags()) if attrs.get("type") == "application/json"]
        loaded: dict[str, Any] = json.loads(self.scripts[index])
        return loaded

    def scripts_tags(self) -> list[tuple[str, dict[str, str | None]]]:
        return [(tag, attrs) for tag, attrs in self.elements if tag == "script"]


def make_report(runner: CliRunner, db: Path, rules: Path, out: Path, *extra: str) -> str:
    result = runner.invoke(
        app, ["report", "--db", str(db), "--rules", str(rules), "--format", "html", "--out", str(out), *extra]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"wrote {out}: "), result.stdout
    return out.read_text(encoding="utf-8")


def cli_json(runner: CliRunner, *args: str) -> Any:
    result = runner.invoke(app, [*args, "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def rows_as_dicts(table: dict[str, Any]) -> list[dict[str, Any]]:
    keys = [c["key"] for c in table["columns"]]
    return [dict(zip(keys, row, strict=True)) for row in table["rows"]]


def matches(table: dict[str, Any], query: str) -> list[dict[str, Any]]:
    """The rows the page's search should keep: every word in some text column (case-insensitive)."""
    text_keys = [c["key"] for c in table["columns"] if c["type"] != "num"]
    words = query.lower().split()
    return [r for r in rows_as_dicts(table) if all(any(w in str(r[k]).lower() for k in text_keys) for w in words)]


@pytest.fixture
def hostile_store(tmp_path: Path) -> Path:
    """Artists with hostile names (test_hostile_names' and markup), filled as a collector would,
    in a store under a path of markup. Each carries 'bebop' (jazz), a subgenre of its own that
    no rule maps (so `unmapped` shows it as the example artist) and its own name as a genre,
    which the store keeps as that subgenre's spelling."""
    folder = tmp_path / "st<ore>" / "<script>window.pwned=1<"
    folder.mkdir(parents=True)
    db = folder / "x<img src=x onerror=window.pwned=1>.db"
    genres = {name: ("bebop", f"zeuhl variant {i:02d}", name) for i, name in enumerate(ALL_HOSTILE)}
    with Store.open(db) as store:
        store.upsert_artists(
            [ArtistRecord(f"h{i}", n, g, track_count=10 + i) for i, (n, g) in enumerate(genres.items())], "spotify"
        )
    return db


@pytest.fixture
def hostile_rules(write_rules: Callable[..., Path]) -> Path:
    """A rule name and an ignore reason that are markup too."""
    return write_rules(
        {
            "10-jazz.yaml": 'rules: [{name: "jazz</script><img src=x onerror=window.pwned=1>", target: jazz,'
            " kind: keyword, patterns: [bebop]}]\n"
            'ignore: [{subgenres: [zeuhl variant 00], reason: "<b onmouseover=window.pwned=1>no</b>\\u202e!"}]\n'
        }
    )


# --- the page as text -----------------------------------------------------------------------


@given(st.text())
def test_script_json_parses_back_and_cannot_leave_its_element(text: str) -> None:
    encoded = script_json({"name": text, "list": [text, 1]})
    assert json.loads(encoded) == {"name": text, "list": [text, 1]}
    assert encoded.isascii() and not re.search("[<>&]", encoded)


@pytest.mark.parametrize("text", [*ALL_HOSTILE, "\u2028\u2029", "\ud800 lone surrogate", "</scr\x00ipt>"])
def test_script_json_hostile(text: str) -> None:
    encoded = script_json([text])
    assert json.loads(encoded) == [text]
    assert encoded.isascii() and "<" not in encoded and "\u2028" not in encoded


def test_page_is_self_contained_and_matches_the_cli(
    runner: CliRunner, sample_db: Path, test_rules_dir: Path, tmp_path: Path
) -> None:
    text = make_report(runner, sample_db, test_rules_dir, tmp_path / "coverage.html")
    page = Page(text)
    # Nothing to fetch: no src, href or CSS url(), no link or iframe; the one URL is the SVG namespace.
    assert not [(t, a) for t, a in page.elements if {"src", "href", "srcset", "action"} & set(a)]
    assert not {t for t, _ in page.elements} & {"link", "iframe", "img", "object", "embed", "base", "form"}
    assert set(re.findall(r"https?://[^\s\"'<>)]*", text)) == {"http://www.w3.org/2000/svg"}
    assert not re.search(r"(?<![:\w])//[\w.-]+\.\w", text)  # no protocol-relative address either
    assert "url(" not in text and "@import" not in text
    (csp,) = [
        a["content"] for t, a in page.elements if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"
    ]
    assert csp is not None and csp.startswith("default-src 'none';") and "script-src 'sha256-" in csp
    assert [a for _, a in page.scripts_tags()] == [{"type": "application/json", "id": "report-data"}, {}]

    # The tables hold what the other commands say.
    data = page.data()
    common = ["--db", str(sample_db), "--rules", str(test_rules_dir)]
    listed = cli_json(runner, "subgenres", *common)
    keys = ("subgenre", "target", "status", "location", "artists", "tracks")
    assert [tuple(r[k] for k in keys) for r in rows_as_dicts(data["subgenres"])] == [
        tuple(r[k] for k in keys) for r in listed
    ]
    suggested = cli_json(runner, "unmapped", *common, "--top", "0")
    assert [(r["subgenre"], r["tracks"], r["suggested_target"]) for r in rows_as_dicts(data["unmapped"])] == [
        (r["subgenre"], r["tracks"], r["suggested_target"]) for r in suggested
    ]
    assert data["unmapped"]["total"] == len(suggested) > 0
    assert [r["subgenre"] for r in rows_as_dicts(data["conflicts"])] == [r["subgenre"] for r in listed if r["conflict"]]

    # Provenance: the store, the rules' hash, the policy, the version, when.
    shown = " ".join("".join(page.text).split())
    report = cli_json(runner, "report", *common)
    ruleset = load_rules(test_rules_dir)
    for part in (
        f"Store {sample_db}",
        f"{test_rules_dir}, {len(ruleset.files)} files, SHA-256 {ruleset.source_hash}",
        f"Policy {report['policy']} (min share 0.5, min margin 0.1); genres from {report['genre_source']}",
        f"by genremap {__version__}",
        f"{report['totals']['subgenres']:,} subgenres",
    ):
        assert part in shown, part
    assert re.search(r"Generated \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", shown)


def test_conflicts_are_listed(
    runner: CliRunner, sample_db: Path, write_rules: Callable[..., Path], tmp_path: Path
) -> None:
    rules = write_rules(
        {
            "10-a.yaml": "rules: [{name: jazzy, target: jazz, kind: keyword, patterns: [jazz]},"
            " {name: funky, target: disco, kind: keyword, patterns: [funk]}]\n"
        }
    )
    data = Page(make_report(runner, sample_db, rules, tmp_path / "c.html")).data()
    conflicts = rows_as_dicts(data["conflicts"])
    assert {r["subgenre"] for r in conflicts} == {"jazz funk"}  # both keywords, equal priority
    assert conflicts[0]["target"] == "jazz" and conflicts[0]["conflict"] == "funky → disco"


def test_hostile_names_stay_text(runner: CliRunner, hostile_store: Path, hostile_rules: Path, tmp_path: Path) -> None:
    text = make_report(runner, hostile_store, hostile_rules, tmp_path / "hostile.html")
    plain_db = tmp_path / "plain.db"
    with Store.open(plain_db) as store:
        store.upsert_artists([ArtistRecord("p1", "Plain", ("bebop", "zeuhl variant 01"), track_count=3)], "spotify")
    clean = make_report(runner, plain_db, hostile_rules, tmp_path / "plain.html")
    page, plain = Page(text), Page(clean)
    # The same elements, attributes and scripts as a page made from harmless names would have.
    assert [(t, sorted(a)) for t, a in page.elements] == [(t, sorted(a)) for t, a in plain.elements]
    assert page.scripts[1] == plain.scripts[1]
    assert not [a for _, a in page.elements if any(k.startswith("on") for k in a)]
    # The names are all there, as text, shown the way the terminal shows them.
    data = page.data()
    examples = {r["example_artist"] for r in rows_as_dicts(data["unmapped"])}
    assert {terminal_safe(n) for n in ALL_HOSTILE[1:]} <= examples  # the first one's subgenre is ignored
    spellings = " | ".join(r["spellings"] for r in rows_as_dicts(data["subgenres"]))
    assert all(terminal_safe(n) in spellings for n in HTML_HOSTILE)
    rules = {r["rule"] for r in rows_as_dicts(data["subgenres"])}
    assert "jazz</script><img src=x onerror=window.pwned=1>" in rules
    assert "ignored: <b onmouseover=window.pwned=1>no</b>\\u202e!" in rules
    shown = "".join(page.text)
    assert "x<img src=x onerror=window.pwned=1>.db" in shown and "<script>window.pwned=1<" in shown
    assert "\u2028" not in text and "\u202e" not in text


def test_an_empty_store_gives_a_page(runner: CliRunner, test_rules_dir: Path, tmp_path: Path) -> None:
    with Store.open(tmp_path / "empty.db"):
        pass
    page = Page(make_report(runner, tmp_path / "empty.db", test_rules_dir, tmp_path / "empty.html"))
    assert [len(t["rows"]) for t in page.data().values()] == [0, 0, 0]
    bars = [a for t, a in page.elements if t == "rect"]
    assert len(bars) == 2 * (9 + 3) and {(a["width"], a["data-value"]) for a in bars} == {("0", "0")}


# --- the command ----------------------------------------------------------------------------


def test_out_defaults_to_coverage_html(
    runner: CliRunner, sample_db: Path, test_rules_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["report", "--db", str(sample_db), "--rules", str(test_rules_dir), "-f", "html"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("wrote coverage.html: ") and Page((tmp_path / "coverage.html").read_text()).data()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file left


@pytest.mark.parametrize(
    ("out", "message"),
    [
        ("folder", "error: --out {tmp}/folder is a folder: give a file name, e.g. {tmp}/folder/coverage.html"),
        ("file.txt/page.html", "error: --out {tmp}/file.txt/page.html: {tmp}/file.txt is a file, not a folder"),
        (
            "file.txt/deeper/page.html",
            "error: --out {tmp}/file.txt/deeper/page.html: {tmp}/file.txt is a file, not a folder",
        ),
    ],
)
def test_bad_out_is_one_line(
    runner: CliRunner, sample_db: Path, test_rules_dir: Path, tmp_path: Path, out: str, message: str
) -> None:
    (tmp_path / "folder").mkdir()
    (tmp_path / "file.txt").write_text("mine\n")
    result = runner.invoke(app, ["report", "--db", str(sample_db), "-f", "html", "--out", str(tmp_path / out)])
    assert (result.exit_code, result.stderr) == (2, message.format(tmp=tmp_path) + "\n")
    assert (tmp_path / "file.txt").read_text() == "mine\n"


def test_out_is_only_for_html(runner: CliRunner, sample_db: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["report", "--db", str(sample_db), "--out", str(tmp_path / "x.html")])
    assert (result.exit_code, result.stderr) == (
        2,
        "error: --out is for --format html; --format table prints to stdout\n",
    )
    result = runner.invoke(app, ["report", "--db", str(sample_db), "-f", "pdf"])
    assert (result.exit_code, result.stderr) == (2, "error: --format 'pdf': expected one of table, json, csv, html\n")


def test_missing_folders_are_created(runner: CliRunner, sample_db: Path, test_rules_dir: Path, tmp_path: Path) -> None:
    make_report(runner, sample_db, test_rules_dir, tmp_path / "reports" / "2026" / "coverage.html")


def test_a_failed_write_keeps_the_previous_report(
    runner: CliRunner, sample_db: Path, test_rules_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "coverage.html"
    previous = make_report(runner, sample_db, test_rules_dir, out)

    def disk_full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(html_report.os, "fsync", disk_full)
    result = runner.invoke(
        app, ["report", "--db", str(sample_db), "--rules", str(test_rules_dir), "-f", "html", "--out", str(out)]
    )
    assert (result.exit_code, result.stderr) == (2, f"error: cannot write --out {out}: No space left on device\n")
    assert out.read_text(encoding="utf-8") == previous
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # nor a temporary file


# --- 20,000 subgenres -----------------------------------------------------------------------


def words(text: str) -> list[str]:
    return text.split()


PLACES = words(
    """nordic osaka texas brazilian polish dutch irish kenyan chilean turkish finnish korean
mexican lagos detroit memphis berlin bristol leeds glasgow oslo lyon quebec cuban swiss greek
indonesian thai israeli hungarian czech welsh basque catalan sicilian andean cajun tuvan
kurdish"""
)
STYLES = words(
    """dark deep lo-fi neo acid melodic progressive experimental indie traditional modern
classic underground instrumental psychedelic minimal vintage avant-garde raw atmospheric
ambient cosmic gothic industrial"""
)
HEADS = words(
    """jazz metal rock house blues folk pop trap soul funk techno punk hip hop country disco
opera choir drill grime polka cumbia zouk gamelan chanson fado tango qawwali ska reggae
shoegaze"""
)


@pytest.fixture(scope="module")
def big_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20,000 distinct subgenres named like Spotify's, on 20,000 artists, each with one or two more."""
    rng = random.Random(20000)
    names = sorted({f"{p} {s} {h}" for p in PLACES for s in STYLES for h in HEADS})
    subgenres = rng.sample(names, 20000)
    artists = [
        ArtistRecord(
            artist_id=f"a{i:05d}",
            name=f"Artist {i:05d}",
            genres=tuple(dict.fromkeys([subgenre, *rng.sample(subgenres, rng.randint(0, 2))])),
            track_count=rng.randint(1, 60),
        )
        for i, subgenre in enumerate(subgenres)
    ]
    db = tmp_path_factory.mktemp("big") / "big.db"
    with Store.open(db) as store:
        store.upsert_artists(artists, origin="spotify")
    return db


@pytest.fixture(scope="module")
def big_report(big_store: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    out = tmp_path_factory.mktemp("big-report") / "coverage.html"
    runner = CliRunner(env={"COLUMNS": "200", "NO_COLOR": "1"})
    started = time.perf_counter()
    result = runner.invoke(app, ["report", "--db", str(big_store), "--format", "html", "--out", str(out)])
    seconds = time.perf_counter() - started
    assert result.exit_code == 0, result.output
    return out, seconds


def test_20000_subgenres_generate_quickly(big_report: tuple[Path, float]) -> None:
    out, seconds = big_report
    data = Page(out.read_text(encoding="utf-8")).data()
    assert len(data["subgenres"]["rows"]) == 20000
    assert len(data["unmapped"]["rows"]) == min(html_report.UNMAPPED_TOP, data["unmapped"]["total"])
    # About 5 s here (labelling, the three tables and the page); a generous bound against a regression
    # to quadratic work, which takes minutes at this size.
    assert seconds < 60, seconds
    assert out.stat().st_size < 20000 * 400  # about 200 bytes a subgenre


# --- in a real browser ----------------------------------------------------------------------


def _browser_binaries() -> tuple[str, str]:
    """Chromium and its driver (GENREMAP_CHROMIUM / GENREMAP_CHROMEDRIVER, else on PATH), or skip."""
    chromium = os.environ.get("GENREMAP_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    driver = os.environ.get("GENREMAP_CHROMEDRIVER") or shutil.which("chromedriver")
    if not chromium or not driver:
        missing = " and ".join(n for n, found in (("chromium", chromium), ("chromedriver", driver)) if not found)
        pytest.skip(
            f"no {missing} on PATH: install Debian's chromium and chromium-driver "
            "(apt-get install chromium chromium-driver; .ci/run does) to run the browser tests"
        )
    return chromium, driver


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Headless Chromium through chromedriver: offline flags, a fresh profile, console logs kept."""
    chromium, driver_path = _browser_binaries()
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is missing: pip install -e '.[test]'")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    profile = tmp_path_factory.mktemp("chromium-profile")
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        "--window-size=1280,1000",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(driver_path))
    try:
        yield driver
    finally:
        driver.quit()


def open_page(browser: Any, path: Path) -> None:
    browser.get(path.resolve().as_uri())
    assert browser.execute_script("return document.documentElement.dataset.ready") == "true"


def console_errors(browser: Any) -> list[str]:
    return [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]


# The visible rows of one table, as lists of cell texts.
ROWS_JS = """
return Array.from(document.querySelectorAll('[data-table="' + arguments[0] + '"] tbody tr'),
  tr => Array.from(tr.cells, td => td.textContent));
"""


def widget_text(browser: Any, table: str, selector: str) -> str:
    text: str = browser.execute_script(
        "return document.querySelector(arguments[0]).textContent", f'[data-table="{table}"] {selector}'
    )
    return text


def first_column(browser: Any, table: str) -> list[str]:
    return [row[0] for row in browser.execute_script(ROWS_JS, table)]


def status_filter(browser: Any) -> Any:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    return Select(browser.find_element(By.CSS_SELECTOR, '[data-table="subgenres"] select[data-filter="status"]'))


def until(browser: Any, condition: Callable[[], bool]) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 10).until(lambda _: condition())


def test_in_chromium_search_sort_and_chart(
    browser: Any, runner: CliRunner, sample_db: Path, test_rules_dir: Path, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    out = tmp_path / "coverage.html"
    data = Page(make_report(runner, sample_db, test_rules_dir, out)).data()
    table = data["subgenres"]
    everything = rows_as_dicts(table)
    open_page(browser, out)
    browser.save_screenshot(str(tmp_path / "coverage.png"))
    assert (tmp_path / "coverage.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert widget_text(browser, "subgenres", ".count") == f"{len(everything):,} subgenres"
    assert len(browser.execute_script(ROWS_JS, "subgenres")) == min(100, len(everything))

    # The chart: one bar per target and status, to scale with `report --format json`.
    report = cli_json(runner, "report", "--db", str(sample_db), "--rules", str(test_rules_dir))
    for measure in ("tracks", "artists"):
        expected = [(t["target"], t[measure]) for t in report["targets"]]
        expected += [(f"({s})", report[s][measure]) for s in ("unlabelled", "ambiguous", "ignored")]
        bars = browser.execute_script(
            "return Array.from(document.querySelectorAll('figure[data-measure=\"' + arguments[0] + '\"] rect.bar'),"
            " r => [r.dataset.label, Number(r.dataset.value), r.getBBox().width, r.getBoundingClientRect().width])",
            measure,
        )
        assert [(label, value) for label, value, _, _ in bars] == expected
        largest = max(v for _, v in expected)
        for label, value, width, on_screen in bars:
            assert width == pytest.approx(value / largest * BAR_W, abs=0.01), label
            assert (on_screen > 0) == (value > 0), label

    # Typing filters: every word must appear in some column (here "hip" and "hop").
    search = browser.find_element(By.CSS_SELECTOR, '[data-table="subgenres"] input[type="search"]')
    search.send_keys("HIP hop")
    wanted = matches(table, "hip hop")
    assert 0 < len(wanted) < len(everything)
    until(browser, lambda: widget_text(browser, "subgenres", ".count").startswith(f"{len(wanted):,} of"))
    assert first_column(browser, "subgenres") == [r["subgenre"] for r in wanted][:100]
    assert widget_text(browser, "subgenres", ".count") == f"{len(wanted):,} of {len(everything):,} subgenres match"
    search.clear()
    search.send_keys("no such subgenre anywhere")
    until(browser, lambda: browser.execute_script(ROWS_JS, "subgenres") == [])
    assert widget_text(browser, "subgenres", ".where") == "no match"
    search.clear()
    search.send_keys(" ")  # clear() sends no input event: a blank query shows everything again
    until(browser, lambda: widget_text(browser, "subgenres", ".count") == f"{len(everything):,} subgenres")

    # Sorting: numbers largest first, again for smallest first; text A to Z.
    headers = {b.text: b for b in browser.find_elements(By.CSS_SELECTOR, '[data-table="subgenres"] thead button')}
    assert list(headers) == [
        "subgenre",
        "target",
        "status",
        "rule (or why ignored)",
        "file:line:col",
        "artists",
        "tracks",
    ]
    headers["artists"].click()
    by_artists = sorted(everything, key=lambda r: -r["artists"])  # stable: ties keep the page's order
    assert first_column(browser, "subgenres") == [r["subgenre"] for r in by_artists][:100]
    headers["artists"].click()
    by_artists = sorted(everything, key=lambda r: r["artists"])
    assert first_column(browser, "subgenres") == [r["subgenre"] for r in by_artists][:100]
    headers["subgenre"].click()
    names = first_column(browser, "subgenres")
    assert names == sorted(r["subgenre"] for r in everything)[:100]
    sort_state = browser.execute_script(
        "return Array.from(document.querySelectorAll('[data-table=\"subgenres\"] th[aria-sort]'),"
        " th => [th.dataset.key, th.getAttribute('aria-sort')])"
    )
    assert sort_state == [["subgenre", "ascending"]]

    # The status filter, with the search, and the pager.
    status_filter(browser).select_by_visible_text("unmapped")
    unmapped = [r for r in everything if r["status"] == "unmapped"]
    until(browser, lambda: widget_text(browser, "subgenres", ".count").startswith(f"{len(unmapped):,} of"))
    assert {r[2] for r in browser.execute_script(ROWS_JS, "subgenres")} == {"unmapped"}
    status_filter(browser).select_by_index(0)
    assert widget_text(browser, "subgenres", ".where") == f"1–100 of {len(everything):,}"
    browser.find_element(By.XPATH, '//*[@data-table="subgenres"]//button[contains(., "next")]').click()
    assert widget_text(browser, "subgenres", ".where") == f"101–200 of {len(everything):,}"
    assert first_column(browser, "subgenres") == sorted(r["subgenre"] for r in everything)[100:200]

    # The unmapped table with its suggestions, and the conflicts (the test rules have some).
    suggested = [r["subgenre"] for r in rows_as_dicts(data["unmapped"])]
    assert first_column(browser, "unmapped") == suggested[:100]
    conflicts = [[r[0], r[4]] for r in browser.execute_script(ROWS_JS, "conflicts")]
    assert conflicts == [[r["subgenre"], r["conflict"]] for r in rows_as_dicts(data["conflicts"])] != []
    assert console_errors(browser) == []


def test_in_chromium_hostile_names_run_nothing(
    browser: Any, runner: CliRunner, hostile_store: Path, hostile_rules: Path, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    out = tmp_path / "hostile.html"
    make_report(runner, hostile_store, hostile_rules, out)
    open_page(browser, out)
    browser.save_screenshot(str(tmp_path / "hostile.png"))
    search = browser.find_element(By.CSS_SELECTOR, '[data-table="unmapped"] input[type="search"]')
    for name in HTML_HOSTILE:
        search.clear()
        search.send_keys(" " + name[:12])  # typing shows the row, the name as text
        shown = terminal_safe(name)
        until(browser, lambda shown=shown: shown in [r[3] for r in browser.execute_script(ROWS_JS, "unmapped")])
    rules = [r[3] for r in browser.execute_script(ROWS_JS, "subgenres")]
    assert "jazz</script><img src=x onerror=window.pwned=1>" in rules
    counts = browser.execute_script(
        "return [window.pwned === undefined, document.querySelectorAll('img, iframe, b[onmouseover]').length,"
        " document.scripts.length, document.querySelectorAll('svg').length]"
    )
    assert counts == [True, 0, 2, 2]  # the two scripts and the two charts are the page's own
    no_conflicts = "None: no subgenre is claimed by two rules of the same priority."
    assert widget_text(browser, "conflicts", ".empty") == no_conflicts
    title = browser.title
    assert title == "genremap coverage of x<img src=x onerror=window.pwned=1>.db"
    assert console_errors(browser) == []


def test_in_chromium_20000_subgenres_stay_quick(browser: Any, big_report: tuple[Path, float], tmp_path: Path) -> None:
    out, _ = big_report
    open_page(browser, out)
    browser.save_screenshot(str(tmp_path / "big.png"))
    loaded = browser.execute_script(
        "const t = performance.getEntriesByType('navigation')[0]; return t.loadEventEnd - t.startTime"
    )
    # One page of rows in the DOM, whatever the size; typing and sorting answer at once.
    timing = browser.execute_script(
        """
        const root = document.querySelector('[data-table="subgenres"]');
        const search = root.querySelector('input[type="search"]');
        const rows = () => root.querySelectorAll('tbody tr').length;
        const before = rows();
        let t = performance.now();
        search.value = 'nordic jazz';
        search.dispatchEvent(new Event('input'));
        const searched = performance.now() - t;
        const found = root.querySelector('.count').textContent;
        search.value = '';
        search.dispatchEvent(new Event('input'));
        t = performance.now();
        root.querySelector('th[data-key="subgenre"] button').click();
        const sorted = performance.now() - t;
        return {before, searched, found, sorted, first: root.querySelector('tbody td').textContent};
        """
    )
    data = Page(out.read_text(encoding="utf-8")).data()
    expected = matches(data["subgenres"], "nordic jazz")
    assert timing["before"] == 100
    assert timing["found"] == f"{len(expected):,} of 20,000 subgenres match"
    assert timing["first"] == min(r[0] for r in data["subgenres"]["rows"])
    # Here: load about 0.3 s, a search 10 ms, a sort 100 ms; the bounds only catch a page that
    # renders all 20,000 rows or rescans them per keystroke.
    assert loaded < 10000 and timing["searched"] < 1000 and timing["sorted"] < 3000, (loaded, timing)
    assert console_errors(browser) == []
