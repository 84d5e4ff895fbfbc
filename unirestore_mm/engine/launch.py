"""What ``tools/train.py`` and ``tools/test.py`` do to a config before building
the Runner."""

import os.path as osp
from typing import Optional

import torch
from mmengine.config import Config


def apply_command_line(
    cfg: Config,
    config_path: str,
    launcher: str = 'none',
    work_dir: Optional[str] = None,
    cfg_options: Optional[dict] = None,
) -> Config:
    """Merge ``--cfg-options``, pick the work dir and make a distributed launch
    work on CPU-only machines.

    The work dir is the command line's, else the config's, else
    ``./work_dirs/<config name>``.  With a launcher and no CUDA (``torchrun``
    on a laptop or in CI), the process group uses ``gloo`` instead of ``nccl``
    and DDP gets no device ids; the group is started here because MMEngine's
    ``init_dist`` calls ``torch.cuda.set_device``.
    """
    cfg.launcher = launcher
    if cfg_options is not None:
        cfg.merge_from_dict(cfg_options)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join(
            './work_dirs', osp.splitext(osp.basename(config_path))[0]
        )
    if launcher != 'none' and not torch.cuda.is_available():
        dist_cfg = cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})
        if dist_cfg.get('backend', 'nccl') == 'nccl':
            dist_cfg['backend'] = 'gloo'
        wrapper = cfg.get('model_wrapper_cfg') or dict(
            type='MMDistributedDataParallel'
        )
        wrapper.setdefault('device_ids', None)
        cfg.model_wrapper_cfg = wrapper
        if launcher == 'pytorch' and not torch.distributed.is_initialized():
            # env:// from torchrun
            torch.distributed.init_process_group(backend=dist_cfg['backend'])
    return cfg


def end_distributed() -> None:
    """End a distributed run that finished normally: wait for every rank, then
    tear down the process group (a no-op outside a distributed run).

    A ``gloo`` group left to the interpreter's exit, or torn down while a peer
    still talks to it, can abort a rank with "terminate called without an
    active exception" after its work is done, turning a finished ``torchrun``
    into a failed one.  Call it on success only: after an error the other ranks
    may never reach the barrier.
    """
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
