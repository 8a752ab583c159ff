import pytest


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tiny models: one thread is faster than two fighting over a shared 2-core machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
