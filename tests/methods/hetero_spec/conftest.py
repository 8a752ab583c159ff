import pytest


@pytest.fixture(autouse=True)
def _one_thread_here(one_torch_thread):
    """Every test in this folder runs on one torch thread (tests/conftest.py)."""
