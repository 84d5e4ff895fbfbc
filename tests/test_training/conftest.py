import os

import pytest
import torch

# The training tests share two cores with other jobs: one intra-op thread per
# process avoids OpenMP spin-wait contention (10-50x slower steps under load)
# and keeps in-process and subprocess runs bit-comparable.
os.environ['OMP_NUM_THREADS'] = '1'
os.environ['MKL_NUM_THREADS'] = '1'
torch.set_num_threads(1)


@pytest.fixture(scope='module')
def embedded(tmp_path_factory):
    """The recipes' own data: the embedded set, written once per module under a
    temporary root."""
    old = os.environ.get('UNIRESTORE_DATA')
    os.environ['UNIRESTORE_DATA'] = str(
        tmp_path_factory.mktemp('unirestore_data')
    )
    from unirestore_mm.datasets.embedded import build_embedded_set

    yield build_embedded_set()
    if old is None:
        del os.environ['UNIRESTORE_DATA']
    else:
        os.environ['UNIRESTORE_DATA'] = old
