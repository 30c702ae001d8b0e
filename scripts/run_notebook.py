"""Execute examples/notebook.ipynb in place, so the outputs stored in it are current.

Run it after changing the notebook or the API: `python scripts/run_notebook.py` (needs the
test extra: nbclient, ipykernel). It runs in examples/, beside ../shared when present, and
removes the store and dataset folder the notebook makes there. The test suite executes the
notebook too (tests/test_notebook.py), without writing it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nbclient
import nbformat

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "notebook.ipynb"
MADE = ("genremap.db", "genremap.db-wal", "genremap.db-shm", "sample-dataset")


def main() -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    folder = NOTEBOOK.parent
    try:
        nbclient.NotebookClient(
            notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(folder)}}
        ).execute()
    finally:
        for name in MADE:
            path = folder / name
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
    nbformat.write(notebook, NOTEBOOK)
    print(f"executed {NOTEBOOK}")


if __name__ == "__main__":
    main()
