import os

import torch

# The training tests share two cores with other jobs: one intra-op thread per process avoids OpenMP spin-wait
# contention (10-50x slower steps under load) and keeps in-process and subprocess runs bit-comparable.
os.environ['OMP_NUM_THREADS'] = '1'
os.environ['MKL_NUM_THREADS'] = '1'
torch.set_num_threads(1)
