"""The main job: UniRestore's claim measured at small scale on the embedded
set, from nothing, in one command.

    python tools/demo.py                 # the full chain (about 20 minutes on 2 CPU cores)
    python tools/demo.py --quick         # the same chain with a few iterations (minutes; the tests run it)

Steps, each a `tools/train.py` recipe run in its own work dir under --work-dir
(default work_dirs/demo):

1. build the embedded set (32x32 Fashion-MNIST items on scikit-image
   photographs; no download);
2. train the recognizers on clean images: the *seen* classifier (CIFAR
   ResNet-18, quarter width) and segmenter (PSPNet R-18-D8, quarter width) that
   the task prompts are trained through, and the *unseen* ones used only to
   evaluate (MobileNetV2, ViT; SegFormer);
3. pretrain the tiny prior (VAE, then UNet) and export it as a diffusers
   folder;
4. per restorer seed: UniRestore stage 1, then stage 2 with the `ir`, `cls` and
   `seg` prompts through the frozen seen recognizers, and the restoration-only
   baseline (stage 2 with the `ir` loss only, same budget);
5. evaluate on the embedded test set at severity 3 over the 15 ImageNet-C and 4
   weather corruptions and write the table (Markdown, CSV with the
   per-corruption breakdown, JSON), image grids and a bar chart to
   <work-dir>/results.

Finished steps are skipped on a second run; a killed run continues (each recipe
resumes from its last checkpoint, the evaluation from its last finished cell).
Two recipes run side by side, one thread each.
"""  # noqa: E501

import argparse
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)
from unirestore_mm.apis.demo_eval import (  # noqa: E402
    recognizer_checkpoint,
    run_evaluation,
)
from unirestore_mm.utils.fileio import atomic_write_bytes  # noqa: E402

DONE = 'demo_step_done.json'
STARTED = 'demo_step_started.json'


@dataclass
class Step:
    name: str
    config: str
    iters: int
    deps: Sequence[str] = ()
    options: Dict[str, object] = field(default_factory=dict)
    output: str = ''  # what the step must leave in its work dir (relative)

    def work_dir(self, root: str) -> str:
        return osp.join(root, self.name)


# -----------------------------------------------------------------------------
# The chain
# -----------------------------------------------------------------------------
FULL_ITERS = dict(recognizer=500, vae=1000, unet=600, stage1=400, stage2=600)
QUICK_ITERS = dict(recognizer=30, vae=40, unet=30, stage1=20, stage2=20)
RECOGNIZERS = dict(
    cls_seen='configs/demo/cls-seen_resnet18-w16-cifar_1xb64-500it_clean-'
    'embedded.py',
    cls_mobilenet='configs/demo/cls-unseen_mobilenet-v2-w0.5_1xb64-500it_'
    'clean-embedded.py',
    cls_vit='configs/demo/cls-unseen_vit-tiny-p4_1xb64-500it_clean-embedded.'
    'py',
    seg_seen='configs/demo/seg-seen_pspnet-r18-w16-d8_1xb32-500it_clean-'
    'embedded.py',
    seg_segformer='configs/demo/seg-unseen_segformer-mini_1xb32-500it_clean-'
    'embedded.py',
)
VAE_CONFIG = 'configs/prior/vae_unirestore-tiny_1xb32-1k_embedded.py'
UNET_CONFIG = 'configs/prior/unet_unirestore-tiny_1xb64-600it_embedded.py'
STAGE1_CONFIG = (
    'configs/demo/stage1_unirestore-tiny-prior_1xb32-400it_embedded.py'
)
STAGE2_CONFIG = (
    'configs/demo/stage2_unirestore-tiny-prior_1xb32-600it_embedded-3tasks.py'
)
BASELINE_CONFIG = (
    'configs/demo/stage2-ir-only_unirestore-tiny-prior_1xb32-'
    '600it_embedded-baseline.py'
)


def build_steps(
    root: str, iters: Dict[str, int], seeds: Sequence[int]
) -> List[Step]:
    """The chain, in priority order: a free slot takes the first step whose
    inputs are ready, so the critical path (prior, then each seed's stages)
    goes first and the recognizers that only the evaluation needs fill gaps."""

    def recognizer(name):
        return Step(
            name,
            RECOGNIZERS[name],
            iters['recognizer'],
            options={'train_cfg.max_iters': iters['recognizer']},
            output=f'iter_{iters["recognizer"]}.pth',
        )

    vae_prior = osp.join(root, 'prior_vae', 'prior')
    prior = osp.join(root, 'prior_unet', 'prior')
    steps = [
        Step(
            'prior_vae',
            VAE_CONFIG,
            iters['vae'],
            options={
                'train_cfg.max_iters': iters['vae'],
                'train_cfg.val_interval': iters['vae'],
            },
            output='prior/vae',
        ),
        recognizer('cls_seen'),
        recognizer('seg_seen'),
        Step(
            'prior_unet',
            UNET_CONFIG,
            iters['unet'],
            deps=['prior_vae'],
            options={
                'train_cfg.max_iters': iters['unet'],
                'train_cfg.val_interval': iters['unet'],
                'model.prior.pretrained': vae_prior,
            },
            output='prior/unet',
        ),
    ]
    ck = {
        k: recognizer_checkpoint(root, k, iters['recognizer'])
        for k in ('cls_seen', 'seg_seen')
    }
    for s in seeds:
        steps.append(
            Step(
                f'stage1_seed{s}',
                STAGE1_CONFIG,
                iters['stage1'],
                deps=['prior_unet'],
                options={
                    'train_cfg.max_iters': iters['stage1'],
                    'train_cfg.val_interval': iters['stage1'],
                    'model.restorer.prior.pretrained': prior,
                    'randomness.seed': s,
                },
                output='unirestore.safetensors',
            )
        )
    for s in seeds:
        stage2 = {
            'train_cfg.max_iters': iters['stage2'],
            'model.restorer.prior.pretrained': prior,
            'model.checkpoint': osp.join(
                root, f'stage1_seed{s}', 'unirestore.safetensors'
            ),
            'randomness.seed': s,
        }
        steps.append(
            Step(
                f'stage2_seed{s}',
                STAGE2_CONFIG,
                iters['stage2'],
                deps=[f'stage1_seed{s}', 'cls_seen', 'seg_seen'],
                options=dict(
                    stage2,
                    **{
                        'model.recognizers.cls.checkpoint': ck['cls_seen'],
                        'model.recognizers.seg.checkpoint': ck['seg_seen'],
                        'model.recognizers.cls.config': osp.join(
                            REPO, RECOGNIZERS['cls_seen']
                        ),
                        'model.recognizers.seg.config': osp.join(
                            REPO, RECOGNIZERS['seg_seen']
                        ),
                    },
                ),
                output='unirestore.safetensors',
            )
        )
        steps.append(
            Step(
                f'baseline_seed{s}',
                BASELINE_CONFIG,
                iters['stage2'],
                deps=[f'stage1_seed{s}'],
                options=stage2,
                output='unirestore.safetensors',
            )
        )
    steps += [
        recognizer(n) for n in RECOGNIZERS if n not in ('cls_seen', 'seg_seen')
    ]
    return steps


# -----------------------------------------------------------------------------
# Running steps
# -----------------------------------------------------------------------------
def _identity(step: Step) -> Dict[str, object]:
    """What a step's work dir was made by: its recipe and options (as JSON
    gives them back)."""
    return json.loads(
        json.dumps(dict(config=step.config, options=step.options))
    )


def _read_json(path: str) -> Optional[dict]:
    try:
        with open(path, encoding='utf-8') as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _write_json(path: str, obj: dict) -> None:
    atomic_write_bytes(json.dumps(obj).encode('utf-8'), path)


def is_done(step: Step, root: str) -> bool:
    """Finished with the same recipe and options, and its output is there."""
    wd = step.work_dir(root)
    info = _read_json(osp.join(wd, DONE))
    if info is None or not osp.exists(osp.join(wd, step.output)):
        return False
    return {k: info.get(k) for k in ('config', 'options')} == _identity(step)


def command(step: Step, root: str) -> List[str]:
    wd = step.work_dir(root)
    cmd = [
        sys.executable,
        osp.join(REPO, 'tools', 'train.py'),
        osp.join(REPO, step.config),
        '--work-dir',
        wd,
    ]
    if osp.isfile(osp.join(wd, 'last_checkpoint')):
        cmd.append('--resume')
    cmd += ['--cfg-options'] + [f'{k}={v}' for k, v in step.options.items()]
    return cmd


class Runner:
    """Runs the steps, ``jobs`` at a time, in dependency order; prints one line
    per start and finish."""

    def __init__(
        self,
        steps: List[Step],
        root: str,
        jobs: int = 2,
        threads: Optional[int] = None,
    ):
        self.steps = {s.name: s for s in steps}
        self.root = root
        self.jobs = max(1, jobs)
        self.threads = threads or max(1, (os.cpu_count() or 2) // self.jobs)
        self.total = len(steps)

    def log(self, msg: str) -> None:
        print(f'[demo {time.strftime("%H:%M:%S")}] {msg}', flush=True)

    def run(self) -> None:
        done = {n for n, s in self.steps.items() if is_done(s, self.root)}
        for n in sorted(done):
            self.log(f'{n}: done before, skipped')
        running: Dict[str, tuple] = {}
        pending = [n for n in self.steps if n not in done]
        while pending or running:
            for name in list(pending):
                if len(running) >= self.jobs:
                    break
                step = self.steps[name]
                if all(d in done for d in step.deps):
                    pending.remove(name)
                    running[name] = self.start(step)
            time.sleep(0.5)
            for name, (proc, start, logf) in list(running.items()):
                if proc.poll() is None:
                    continue
                logf.close()
                del running[name]
                step = self.steps[name]
                log_path = osp.join(step.work_dir(self.root), 'demo_step.log')
                if proc.returncode != 0 or not osp.exists(
                    osp.join(step.work_dir(self.root), step.output)
                ):
                    for other, (p, _, f) in running.items():
                        p.terminate()
                    tail = _tail(log_path)
                    raise SystemExit(
                        f'demo: step {name} failed (exit {proc.returncode}); '
                        f'its log is {log_path}:\n{tail}'
                    )
                _write_json(
                    osp.join(step.work_dir(self.root), DONE),
                    dict(
                        _identity(step), seconds=round(time.time() - start, 1)
                    ),
                )
                done.add(name)
                self.log(
                    f'{name}: finished in {time.time() - start:.0f} s '
                    f'({len(done)}/{self.total} steps done)'
                )

    def start(self, step: Step):
        wd = step.work_dir(self.root)
        started = osp.join(wd, STARTED)
        if osp.isdir(wd) and _read_json(started) != _identity(step):
            # checkpoints of other settings (e.g. a --quick run in the same
            # folder) must not be resumed
            shutil.rmtree(wd)
        os.makedirs(wd, exist_ok=True)
        _write_json(started, _identity(step))
        cmd = command(step, self.root)
        env = dict(
            os.environ,
            OMP_NUM_THREADS=str(self.threads),
            MKL_NUM_THREADS=str(self.threads),
        )
        logf = open(osp.join(wd, 'demo_step.log'), 'a', encoding='utf-8')
        resumed = ' (resuming)' if '--resume' in cmd else ''
        self.log(
            f'{step.name}: started{resumed}: {step.config}, {step.iters} '
            f'iterations, log {wd}/demo_step.log'
        )
        proc = subprocess.Popen(
            cmd,
            cwd=REPO,
            env=env,
            stdout=logf,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        return proc, time.time(), logf


def _tail(path: str, n: int = 15) -> str:
    try:
        with open(path, encoding='utf-8', errors='replace') as f:
            return ''.join(f.readlines()[-n:])
    except OSError:
        return ''


# -----------------------------------------------------------------------------
def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split('\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        '--work-dir',
        default=None,
        help='root of the steps\' work dirs and of results/ (default: '
        'work_dirs/demo, with --quick work_dirs/demo-quick)',
    )
    p.add_argument(
        '--quick',
        action='store_true',
        help='a few iterations per step and a small evaluation (minutes): '
        'checks the chain, not quality',
    )
    p.add_argument(
        '--seeds',
        type=int,
        nargs='+',
        default=None,
        help='restorer training seeds (default: 0 1; --quick: 0)',
    )
    p.add_argument(
        '--jobs',
        type=int,
        default=2,
        help='recipes run side by side (default 2)',
    )
    p.add_argument(
        '--eval-images',
        type=int,
        default=None,
        help='test images evaluated (default: the first 200 of 500; --quick: '
        '40)',
    )
    p.add_argument(
        '--corruptions',
        nargs='+',
        default=None,
        help='corruptions evaluated (default: the 15 ImageNet-C and 4 '
        'weather ones; --quick: 3)',
    )
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    root = osp.abspath(
        args.work_dir
        or osp.join(REPO, 'work_dirs', 'demo-quick' if args.quick else 'demo')
    )
    seeds = args.seeds or ([0] if args.quick else [0, 1])
    if len(set(seeds)) != len(seeds):
        raise SystemExit(f'demo: --seeds must differ, got {seeds}')
    os.makedirs(root, exist_ok=True)
    t0 = time.time()
    from unirestore_mm.datasets.embedded import build_embedded_set

    try:
        data = build_embedded_set()
    except (FileNotFoundError, ImportError, RuntimeError) as err:
        raise SystemExit(f'demo: cannot build the embedded set: {err}')
    print(f'[demo] embedded set: {data}', flush=True)
    iters = QUICK_ITERS if args.quick else FULL_ITERS
    steps = build_steps(root, iters, seeds)
    Runner(steps, root, jobs=args.jobs).run()

    configs = {k: osp.join(REPO, v) for k, v in RECOGNIZERS.items()}
    run_evaluation(
        root,
        data,
        seeds=seeds,
        recognizer_iters=iters['recognizer'],
        configs=configs,
        quick=args.quick,
        n_images=args.eval_images,
        corruptions=args.corruptions,
    )
    print(
        f'[demo] total {time.time() - t0:.0f} s; results in '
        f'{osp.join(root, "results")}',
        flush=True,
    )
    return 0


if __name__ == '__main__':
    sys.exit(main())
