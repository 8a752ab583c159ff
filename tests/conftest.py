"""Shared fixtures. HF_HUB_OFFLINE is set before anything imports huggingface_hub: a failed
hub lookup otherwise retries for ~46 s."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("EFFEVAL_ZOO_DIR", os.path.expanduser("~/.cache/effeval/zoo"))

import pytest


@pytest.fixture()
def one_torch_thread():
    """One torch thread for the test: tiny matrices run as fast on one thread when the machine is
    idle and far faster when it is busy (OpenMP threads spin against other processes). Use it with
    ``pytestmark = pytest.mark.usefixtures("one_torch_thread")`` or from a folder's conftest."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def zoo_path():
    """``zoo_path(name, trained=False)`` -> directory of a zoo model (built once, cached on disk)."""
    from effeval import zoo

    cache: dict = {}

    def get(name: str, trained: bool = False) -> str:
        key = (name, trained)
        if key not in cache:
            cache[key] = str(zoo.get(name, trained=trained))
        return cache[key]

    return get


@pytest.fixture(scope="session")
def repo_root():
    from pathlib import Path

    return Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def shared_dir(repo_root):
    """../shared (peer prompt files etc.); tests that need it skip when it is absent."""
    path = repo_root.parent / "shared"
    if not path.is_dir():
        pytest.skip("../shared is not present")
    return path
