"""Test a checkpoint with an MMEngine Runner (the config's test_dataloader and test_evaluator).

    python tools/test.py CONFIG work_dirs/x/iter_2.pth
    python tools/test.py CONFIG CHECKPOINT --cfg-options test_dataloader.batch_size=4 --out results.pkl
    python tools/test.py CONFIG CHECKPOINT --show-dir pictures

``--show-dir DIR`` writes one picture per test sample, degraded | restored | clean side by side (RGB PNG, named
after the sample's image file, or its index), each file written atomically, by the config's
``unirestore_mm.RestorationVisualizationHook`` (added when the config has none).  A relative DIR goes under
``<work_dir>/<timestamp>/`` (as mmseg's ``--show-dir``; the log names the folder), an absolute one is used as is.
It draws restorer models (whose predictions carry ``pred_img``); asked of another model (an mmpretrain or mmseg
recognizer) the tool stops at the first batch with a one-line error.
"""
import argparse
import os
import os.path as osp
import sys

import torch
from mmengine.config import Config, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # run from a checkout without installing
import unirestore_mm  # noqa: E402,F401
from unirestore_mm.engine.launch import apply_command_line  # noqa: E402
from unirestore_mm.engine.visualization_hook import NoRestoredImageError, enable_test_pictures  # noqa: E402
from unirestore_mm.models.checkpoint_io import mmengine_safe_globals  # noqa: E402

# MMEngine's checkpoints hold message-hub buffers and numpy values besides tensors; allow exactly those, so that
# load_from/--resume work under torch.load's weights_only=True default without unpickling arbitrary objects.
torch.serialization.add_safe_globals(mmengine_safe_globals())


def parse_args():
    parser = argparse.ArgumentParser(description='Test (and evaluate) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the dir to save logs and results')
    parser.add_argument('--out', help='dump the predictions to this pickle file (DumpResults)')
    parser.add_argument('--show-dir', help='write a degraded | restored | clean picture of every test sample to '
                        'this folder (relative: under <work_dir>/<timestamp>/)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of the config (key=value pairs)')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def main():
    args = parse_args()
    cfg = Config.fromfile(args.config)
    apply_command_line(cfg, args.config, args.launcher, args.work_dir, args.cfg_options)
    cfg.load_from = args.checkpoint
    if args.out is not None:
        if not args.out.endswith(('.pkl', '.pickle')):
            raise ValueError('--out must be a .pkl or .pickle file')
        evaluator = cfg.test_evaluator
        evaluator = list(evaluator) if isinstance(evaluator, (list, tuple)) else [evaluator]
        cfg.test_evaluator = evaluator + [dict(type='DumpResults', out_file_path=args.out)]

    if args.show_dir:
        enable_test_pictures(cfg, args.show_dir)

    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    try:
        runner.test()
    except NoRestoredImageError as e:
        raise SystemExit(f'tools/test.py: error: --show-dir: {e}') from None


if __name__ == '__main__':
    main()
