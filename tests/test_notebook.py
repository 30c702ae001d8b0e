"""examples/notebook.ipynb runs from top to bottom on the current code (so it can never rot)."""

from __future__ import annotations

import os
from pathlib import Path

import nbclient
import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "examples" / "notebook.ipynb"
SHARED_CORPUS = REPO.parent / "shared" / "data" / "spotify_artists_genres.csv"  # as in conftest.py


def _outputs(cell: nbformat.NotebookNode) -> str:
    return "\n".join(str(o.get("text", o.get("data", {}).get("text/plain", ""))) for o in cell.get("outputs", []))


@pytest.fixture
def executed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[nbformat.NotebookNode]:
    """The notebook's code cells after a run in an empty folder (its store and dataset go there)."""
    monkeypatch.setenv("GENREMAP_CORPUS", str(SHARED_CORPUS))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = []
    client = nbclient.NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute(env=dict(os.environ))
    assert (tmp_path / "sample-dataset" / "tracks.csv").is_file()
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def test_the_notebook_runs_and_shows_its_results(executed: list[nbformat.NotebookNode]) -> None:
    shown = [_outputs(cell) for cell in executed]
    assert "['hip hop', 'jazz', 'metal', 'hip hop', 'house', None, None]" in shown
    assert any("winner" in text and "blues-over-other-families" in text for text in shown)
    assert any("disco -> blues" in text for text in shown)
    assert any(
        o.get("output_type") == "display_data" and "image/png" in o.get("data", {}) for c in executed for o in c.outputs
    )
    corpus_cell = next(text for text in shown if ("labelled" in text and "ignored" in text) or "not here" in text)
    if SHARED_CORPUS.exists():
        assert "labelled" in corpus_cell and "not here" not in corpus_cell


def test_the_stored_notebook_has_its_outputs() -> None:
    """The notebook in the repository was executed (scripts/run_notebook.py): readers see results."""
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert 10 <= len(code) <= 14
    assert all(cell.get("execution_count") for cell in code), "run scripts/run_notebook.py"
