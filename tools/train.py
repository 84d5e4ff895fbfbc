"""Train with an MMEngine Runner: any unirestore_mm, mmpretrain or mmseg config
that imports unirestore_mm.

python tools/train.py configs/unirestore/stage1_unirestore-tiny_1xb16-1k_embedded.py
python tools/train.py CONFIG --work-dir work_dirs/x --amp --cfg-options train_cfg.max_iters=100
bash tools/dist_train.sh CONFIG 2                      # torchrun, several processes
"""

import argparse
import os
import os.path as osp
import sys

import torch
from mmengine.config import Config, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

# run from a checkout without installing
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
import unirestore_mm  # noqa: E402,F401
from unirestore_mm.engine.launch import (  # noqa: E402
    apply_command_line,
    end_distributed,
)
from unirestore_mm.models.checkpoint_io import (  # noqa: E402
    mmengine_safe_globals,
)

# MMEngine's checkpoints hold message-hub buffers and numpy values besides
# tensors; allow exactly those, so that load_from/--resume work under
# torch.load's weights_only=True default without unpickling arbitrary objects.
torch.serialization.add_safe_globals(mmengine_safe_globals())


def parse_args():
    parser = argparse.ArgumentParser(
        description='Train a model (UniRestore, or a recognizer with a '
        'restorer)'
    )
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from this checkpoint, or from the latest one in the '
        'work dir if no path is given',
    )
    parser.add_argument(
        '--amp',
        action='store_true',
        default=False,
        help='enable automatic-mixed-precision training',
    )
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, e.g. train_cfg.max_iters=2 '
        '(key=value pairs; lists as key="[a,b]", nesting as '
        'key="[(a,b),(c,d)]", no spaces)',
    )
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher',
    )
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def main():
    args = parse_args()
    cfg = Config.fromfile(args.config)
    apply_command_line(
        cfg, args.config, args.launcher, args.work_dir, args.cfg_options
    )

    if args.amp:
        from mmengine.device import get_device

        optim_wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
        if optim_wrapper in (
            'AmpOptimWrapper',
            'unirestore_mm.BF16OptimWrapper',
            'BF16OptimWrapper',
        ):
            print(
                'Mixed-precision training is already enabled in your config.'
            )
        else:
            if optim_wrapper not in ('OptimWrapper', 'mmengine.OptimWrapper'):
                raise SystemExit(
                    '--amp works on a config whose optim_wrapper is '
                    f'OptimWrapper, not {optim_wrapper}'
                )
            if get_device() == 'cpu':
                # MMEngine's AmpOptimWrapper needs an accelerator; bf16
                # autocast runs on the CPU
                cfg.optim_wrapper.type = 'unirestore_mm.BF16OptimWrapper'
            else:
                cfg.optim_wrapper.type = 'AmpOptimWrapper'
                cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')

    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume

    runner = (
        Runner.from_cfg(cfg)
        if 'runner_type' not in cfg
        else RUNNERS.build(cfg)
    )
    runner.train()
    end_distributed()


if __name__ == '__main__':
    main()
