"""`genremap report --format html`: the coverage report as one self-contained HTML page.

The page needs nothing but itself (CSS and JavaScript inline, no fonts, no network), so it can
be mailed, attached to an issue or opened years later. What a reader must see at once is drawn
here, in Python, as static HTML: the store and rules it was made from, the coverage chart (an
inline SVG) and the coverage numbers. The long tables (every subgenre, the unmapped ones with
their suggestions, the conflicts) travel as JSON in the page and a small vanilla script renders
one page of rows at a time, so 20,000 subgenres stay as quick to search and sort as 200.

Every value from the store (or from rule files and paths) is data, never markup: HTML text is
escaped with `html.escape`, the embedded JSON is pure ASCII with `<`, `>` and `&` written as
`\\u` escapes (no `</script>` or `<!--` can end or bend its script element, and U+2028 cannot
break it), and the script only ever sets `textContent`. Control characters, separators and
bidirectional overrides are shown escaped (`genremap.text.terminal_safe`), as on the terminal.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import html
import json
import os
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from genremap import __version__
from genremap.dataset.labels import Labelling
from genremap.engine import IGNORED, NOT_GENRE, UNMAPPED
from genremap.errors import UsageError
from genremap.report import STATUS_ROWS, coverage, subgenres, unmapped
from genremap.text import escape_unprintable, terminal_safe

DEFAULT_OUT = Path("coverage.html")
UNMAPPED_TOP = 1000  # unmapped subgenres listed with suggestions (the subgenre table has them all)
TEMPLATE = "coverage.html"

# The chart's geometry (SVG user units): label column, bar area, value column, row pitch.
LABEL_W, BAR_W, VALUE_W, ROW_H, BAR_H, TOP = 118.0, 300.0, 122.0, 24.0, 16.0, 8.0


@dataclass(frozen=True)
class Origin:
    """Where a report comes from: the store and rules folder as the user named them."""

    store: Path
    rules_dir: Path


@dataclass(frozen=True)
class Written:
    """What `write_report` wrote, for the CLI's one-line summary."""

    path: Path
    subgenres: int
    bytes: int


def check_out(path: Path) -> Path:
    """Refuse, before any work, an `--out` that cannot become a file: a folder, or a path below
    a file. A missing parent folder is fine (it is created)."""
    shown = escape_unprintable(str(path))
    if path.is_dir():
        raise UsageError(f"--out {shown} is a folder: give a file name, e.g. {shown}/{DEFAULT_OUT}")
    blocking = next((p for p in path.parents if p.exists()), None)
    if blocking is not None and not blocking.is_dir():
        raise UsageError(f"--out {shown}: {escape_unprintable(str(blocking))} is a file, not a folder")
    return path


def write_report(path: Path, labelling: Labelling, origin: Origin) -> Written:
    """Render the coverage report of `labelling` and write it to `path` whole."""
    data = report_data(labelling, origin)
    text = render_html(data)
    write_atomic(path, text)
    return Written(path, len(data["tables"]["subgenres"]["rows"]), len(text.encode("utf-8", "backslashreplace")))


def report_data(labelling: Labelling, origin: Origin) -> dict[str, Any]:
    """Everything the page shows, as plain data: provenance, coverage and the three tables."""
    ruleset = labelling.ruleset
    policy = labelling.policy
    rows = subgenres(labelling)
    suggestions = unmapped(labelling, top=UNMAPPED_TOP)
    return {
        "meta": {
            "store": str(origin.store),
            "store_absolute": str(origin.store.resolve()),
            "rules_dir": str(origin.rules_dir),
            "rules_files": list(ruleset.files),
            "rules_sha256": ruleset.source_hash,
            "policy": {"name": policy.name, "min_share": policy.min_share, "min_margin": policy.min_margin},
            "genre_source": labelling.genre_source,
            "generated": generated_at(),
            "version": __version__,
        },
        "coverage": coverage(labelling),
        "tables": {
            "subgenres": _subgenre_table(labelling, rows),
            "unmapped": _unmapped_table(suggestions, sum(r["status"] == UNMAPPED for r in rows)),
            "conflicts": _conflict_table(rows),
        },
    }


def generated_at() -> str:
    """Now in UTC, or SOURCE_DATE_EPOCH's time when set (for reproducible builds)."""
    moment = datetime.now(UTC)
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "")
    if epoch.isdigit():
        with contextlib.suppress(ValueError, OverflowError, OSError):  # out of range: the real time
            moment = datetime.fromtimestamp(int(epoch), UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _column(key: str, label: str, kind: str = "text", hidden: bool = False) -> dict[str, Any]:
    return {"key": key, "label": label, "type": kind, "hidden": hidden}


def _subgenre_table(labelling: Labelling, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Every subgenre: the rule that mapped it, or the reason it is ignored."""

    def rule_or_reason(row: dict[str, Any]) -> str:
        decision = labelling.decisions[row["subgenre"]]
        if row["status"] in (IGNORED, NOT_GENRE) and decision.ignored_by is not None:
            why = "ignored" if row["status"] == IGNORED else "not a genre"
            return f"{why}: " + " ".join(decision.ignored_by.reason.split())
        return str(row["rule"])

    columns = [
        _column("subgenre", "subgenre"),
        _column("target", "target"),
        _column("status", "status", "status"),
        _column("rule", "rule (or why ignored)", "clip"),
        _column("location", "file:line:col", "code"),
        _column("artists", "artists", "num"),
        _column("tracks", "tracks", "num"),
        _column("spellings", "spellings", hidden=True),
    ]
    keys = [c["key"] for c in columns]
    values = [[rule_or_reason(r) if key == "rule" else r[key] for key in keys] for r in rows]
    return {"columns": columns, "rows": values}


def _unmapped_table(rows: list[dict[str, Any]], total: int) -> dict[str, Any]:
    """The largest unmapped subgenres with a suggested target and its evidence."""
    columns = [
        _column("subgenre", "subgenre"),
        _column("tracks", "tracks", "num"),
        _column("artists", "artists", "num"),
        _column("example_artist", "example artist"),
        _column("suggested_target", "suggested target"),
        _column("evidence", "evidence"),
    ]
    if any("confidence" in r for r in rows):
        columns.insert(5, _column("confidence", "confidence", "num"))

    def evidence(row: dict[str, Any]) -> str:
        source = row.get("suggestion_source") or ""
        return f"{source}: {row.get('evidence', '')}" if source else str(row.get("evidence", ""))

    values = [[evidence(r) if c["key"] == "evidence" else r.get(c["key"], "") for c in columns] for r in rows]
    return {"columns": columns, "rows": values, "total": total}


def _conflict_table(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Subgenres that rules of equal priority claim for different targets (file order decided)."""
    columns = [
        _column("subgenre", "subgenre"),
        _column("target", "target (winner)"),
        _column("rule", "winning rule"),
        _column("location", "file:line:col", "code"),
        _column("conflict", "also claimed by"),
        _column("artists", "artists", "num"),
        _column("tracks", "tracks", "num"),
    ]
    values = [[r[c["key"]] for c in columns] for r in rows if r["conflict"]]
    return {"columns": columns, "rows": values}


# --- rendering ------------------------------------------------------------------------------


def shown(value: Any) -> str:
    """A value as HTML text: controls, separators and bidi overrides visible, markup escaped."""
    return html.escape(terminal_safe(str(value)), quote=True)


def _displayable(value: Any) -> Any:
    """`value` with every string made terminal-safe (escapes shown, as the CLI's tables do)."""
    if isinstance(value, str):
        return terminal_safe(value)
    if isinstance(value, list):
        return [_displayable(v) for v in value]
    if isinstance(value, dict):
        return {k: _displayable(v) for k, v in value.items()}
    return value


_SCRIPT_UNSAFE = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"}


def script_json(value: Any) -> str:
    """JSON for a `<script type="application/json">` element: ASCII only (U+2028, U+2029 and
    lone surrogates as escapes) and no `<`, `>` or `&`, so nothing inside can close the element,
    open a comment or be read as markup. JSON.parse gives back exactly `value`."""
    text = json.dumps(value, ensure_ascii=True, separators=(",", ":"), allow_nan=False)
    return re.sub("[<>&]", lambda m: _SCRIPT_UNSAFE[m.group()], text)


def render_html(data: dict[str, Any]) -> str:
    """The whole page: the template with its slots filled (each slot once, content never rescanned)."""
    template, style, script = (_template_text(name) for name in (TEMPLATE, "coverage.css", "coverage.js"))
    meta, cov = data["meta"], data["coverage"]
    slots = {
        "csp": CSP.format(script_hash=_sha256_base64(script)),
        "style": style,
        "script": script,
        "title": shown(f"genremap coverage of {Path(meta['store']).name}"),
        "heading": shown(Path(meta["store"]).name),
        "summary": _summary_html(cov),
        "meta": _meta_html(meta),
        "chart": _chart_html(cov),
        "coverage_table": _coverage_table_html(cov),
        "unmapped_note": _unmapped_note(data["tables"]["unmapped"]),
        "rules_files": "".join(f"<li><code>{shown(f)}</code></li>" for f in meta["rules_files"]),
        "version": shown(meta["version"]),
        "data": script_json(_displayable(data["tables"])),
    }
    names = set(SLOT.findall(template))
    if names != set(slots):  # a template and its filler out of step is a bug, not bad input
        raise RuntimeError(f"template slots {sorted(names)} do not match {sorted(slots)}")
    return SLOT.sub(lambda m: slots[m.group(1)], template)


SLOT = re.compile(r"\{\{(\w+)\}\}")
# Nothing may be fetched (no network, no CDN, no fonts); only the page's own script may run
# (by its hash: an event handler attribute, were one ever injected, would not).
CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; script-src 'sha256-{script_hash}';"
    " base-uri 'none'; form-action 'none'"
)


def _template_text(name: str) -> str:
    return resources.files("genremap").joinpath("templates", name).read_text(encoding="utf-8")


def _sha256_base64(text: str) -> str:
    return base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")


def _number(n: float) -> str:
    return f"{n:,}"


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _percent(part: float, whole: float) -> str:
    return f"{part / whole:.1%}" if whole else "0.0%"


def _summary_html(cov: dict[str, Any]) -> str:
    totals = cov["totals"]
    labelled_artists = sum(t["artists"] for t in cov["targets"])
    labelled_tracks = sum(t["tracks"] for t in cov["targets"])
    items = [
        (_percent(labelled_tracks, totals["tracks"]), f"of {_number(totals['tracks'])} tracks labelled"),
        (_percent(labelled_artists, totals["artists"]), f"of {_number(totals['artists'])} artists labelled"),
        (_number(totals["mapped_subgenres"]), f"of {_number(totals['subgenres'])} subgenres mapped to a target"),
        (_number(cov["unlabelled"]["subgenres"]), "subgenres no rule maps yet"),
        (_number(totals["conflicts"]), "conflicts between rules"),
    ]
    return "".join(f'<div class="stat"><b>{shown(big)}</b><span>{shown(small)}</span></div>' for big, small in items)


def _meta_html(meta: dict[str, Any]) -> str:
    policy = meta["policy"]
    rows = [
        ("Store", f"<code>{shown(meta['store'])}</code> <small>({shown(meta['store_absolute'])})</small>"),
        (
            "Rules",
            f"<code>{shown(meta['rules_dir'])}</code>, {_count(len(meta['rules_files']), 'file')},"
            f' SHA-256 <code class="hash">{shown(meta["rules_sha256"])}</code>',
        ),
        (
            "Policy",
            f"{shown(policy['name'])} (min share {shown(policy['min_share'])},"
            f" min margin {shown(policy['min_margin'])}); genres from {shown(meta['genre_source'])}",
        ),
        ("Generated", f"{shown(meta['generated'])} by genremap {shown(meta['version'])}"),
    ]
    return "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in rows)


def chart_rows(cov: dict[str, Any]) -> list[dict[str, Any]]:
    """The chart's rows: each target, then the unlabelled, ambiguous and ignored artists."""
    rows = [{"label": t["target"], "kind": "target", "values": t} for t in cov["targets"]]
    return rows + [{"label": f"({s})", "kind": s, "values": cov[s]} for s in STATUS_ROWS]


def _chart_html(cov: dict[str, Any]) -> str:
    """Two horizontal bar charts (tracks, artists) as inline SVG, bars to scale with the largest row."""
    rows = chart_rows(cov)
    return "".join(_bar_chart(rows, measure, cov["totals"][measure]) for measure in ("tracks", "artists"))


def _bar_chart(rows: list[dict[str, Any]], measure: str, total: int) -> str:
    largest = max((r["values"][measure] for r in rows), default=0)
    width = LABEL_W + BAR_W + VALUE_W
    gap = ROW_H / 2  # between the targets and the three status rows
    height = TOP * 2 + ROW_H * len(rows) + gap
    parts = [
        f'<figure class="chart" data-measure="{measure}"><figcaption>{measure.capitalize()} per target</figcaption>',
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:g} {height:g}" width="{width:g}"'
        f' height="{height:g}" role="img" aria-label="{measure} per target, with unlabelled, ambiguous and ignored">',
    ]
    for i, row in enumerate(rows):
        y = TOP + i * ROW_H + (gap if row["kind"] != "target" else 0)
        value = row["values"][measure]
        bar = round(value / largest * BAR_W, 2) if largest else 0.0
        text_y = y + BAR_H / 2 + 4
        note = f"{_number(value)} ({_percent(value, total)})"
        parts.append(
            f'<text class="label" x="{LABEL_W - 8:g}" y="{text_y:g}" text-anchor="end">{shown(row["label"])}</text>'
            f'<rect class="bar {row["kind"]}" x="{LABEL_W:g}" y="{y:g}" width="{bar:g}" height="{BAR_H:g}"'
            f' data-label="{shown(row["label"])}" data-value="{value}">'
            f"<title>{shown(row['label'])}: {note} {measure}</title></rect>"
            f'<text class="value" x="{LABEL_W + bar + 6:g}" y="{text_y:g}">{note}</text>'
        )
    parts.append("</svg></figure>")
    return "".join(parts)


def _coverage_table_html(cov: dict[str, Any]) -> str:
    """The numbers behind the chart, as `genremap report` prints them, totals last."""
    body = [_coverage_row(row["label"], row["values"], row["kind"]) for row in chart_rows(cov)]
    totals = cov["totals"]
    return "".join(body) + _coverage_row("total", totals, "total")


def _coverage_row(label: str, values: dict[str, Any], kind: str) -> str:
    cells = "".join(
        f'<td class="num">{shown(v)}</td>'
        for v in (
            _number(values["artists"]),
            _number(values["tracks"]),
            f"{values['share']:.1%}",
            _number(values["subgenres"]),
        )
    )
    return f'<tr class="{kind}"><th scope="row">{shown(label)}</th>{cells}</tr>'


def _unmapped_note(table: dict[str, Any]) -> str:
    shown_rows, total = len(table["rows"]), table["total"]
    if shown_rows == total:
        return f"All {_number(total)} unmapped subgenres, largest first."
    return (
        f"The {_number(shown_rows)} largest of {_number(total)} unmapped subgenres; the subgenre table above lists"
        " them all (status unmapped), and <code>genremap unmapped --top 0</code> suggests a target for each."
    )


# --- writing --------------------------------------------------------------------------------


def write_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` whole: a temporary file beside it, flushed, then renamed into place.
    A reader (or a browser reloading) sees the old report or the new one, never half of one."""
    shown_path = escape_unprintable(str(path))
    partial = path.with_name(f".{path.name}.{secrets.token_hex(4)}.partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(partial, "x", encoding="utf-8", errors="backslashreplace") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot write --out {shown_path}: {exc.strerror or exc}") from None
