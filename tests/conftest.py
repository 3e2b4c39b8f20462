"""Shared fixtures: the real data sets live in ../shared/datasets and are never copied here."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


def _shared_file(name: str) -> Path:
    path = SHARED / name
    if not path.exists():
        pytest.skip(
            f"real data set {name} not found: {SHARED} is absent (../shared beside the project)"
        )
    return path


@pytest.fixture(scope="session")
def hillstrom_path() -> Path:
    return _shared_file("hillstrom.csv")


@pytest.fixture(scope="session")
def groceries_path() -> Path:
    return _shared_file("groceries.csv")
