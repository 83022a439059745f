import os

import pytest
import torch

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture
def isolated_data(tmp_path, monkeypatch):
    """Point the dataset/zoo caches at a temporary folder."""
    monkeypatch.setenv("ADVEXP_DATA_DIR", str(tmp_path / "datasets"))
    monkeypatch.setenv("ADVEXP_RESULTS_DIR", str(tmp_path / "results"))
    return tmp_path
