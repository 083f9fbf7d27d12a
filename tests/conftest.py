"""Fixtures shared by several test modules."""

import pytest
import torch


@pytest.fixture
def one_thread():
    """Run a test with one torch thread, restored afterwards. Tiny networks: on a shared 2-core
    machine two OpenMP threads spin against other processes and run ~20x slower than one."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
