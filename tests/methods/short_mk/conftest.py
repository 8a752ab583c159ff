import pytest


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny matrices: one thread is as fast idle and far faster on a busy machine (OpenMP spinning)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
