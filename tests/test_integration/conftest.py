import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    """Two shared cores: oversubscribed intra-op threads make the tiny model
    ~100x slower."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
