"""Project habits: notebooks are committed without outputs."""

from __future__ import annotations

import json
from pathlib import Path

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def test_notebooks_have_no_outputs():
    dirty = []
    for path in NOTEBOOKS:
        cells = json.loads(path.read_text())["cells"]
        if any(
            c.get("outputs") or c.get("execution_count") for c in cells if c["cell_type"] == "code"
        ):
            dirty.append(path.name)
    assert not dirty, f"clear the outputs of {dirty} before committing"


def test_notebooks_have_one_parameters_cell():
    for path in NOTEBOOKS:
        cells = json.loads(path.read_text())["cells"]
        tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(tagged) == 1, f"{path.name} needs exactly one cell tagged 'parameters'"
