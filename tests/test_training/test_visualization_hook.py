"""RestorationVisualizationHook: degraded | restored | clean pictures of the
same validation images at every validation, and one picture per test sample
with ``tools/test.py --show-dir``."""

import glob
import os
import os.path as osp
import runpy
import sys
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch
from mmengine.registry import DefaultScope
from mmengine.runner import Runner
from mmengine.structures import BaseDataElement

from unirestore_mm.engine import (
    NoRestoredImageError,
    RestorationVisualizationHook,
    enable_test_pictures,
)
from unirestore_mm.registry import DATASETS

from .helpers import (
    CONFIGS,
    REPO,
    TINY_CLS,
    ir_dataset,
    load_cfg,
    save_recognizer,
    write_task_data,
)

RECIPE = osp.join(
    CONFIGS, 'unirestore', 'stage1_unirestore-tiny_1xb16-1k_embedded.py'
)
# 5 validation/test images of 32x32 in batches of 2; the first 3 drawn
N_DATA, N_PICS, SIZE = 5, 3, 32


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    return write_task_data(
        str(tmp_path_factory.mktemp('vis_data')), n=N_DATA, size=SIZE
    )


def write_config(folder, root):
    """The 1k-iteration stage-1 recipe (its hooks and visualizer) on 5 tiny
    images: 2 iterations, validating after each, 3 pictures per validation."""
    dataset = dict(ir_dataset(root), _delete_=True)
    path = osp.join(str(folder), 'cfg.py')
    with open(path, 'w') as f:
        f.write(f"""
_base_ = [{RECIPE!r}]
_loader = dict(batch_size=2, num_workers=0, persistent_workers=False, dataset={dataset!r})
train_dataloader = _loader
val_dataloader = _loader
test_dataloader = _loader
train_cfg = dict(max_iters=2, val_interval=1)
default_hooks = dict(checkpoint=dict(interval=2), logger=dict(interval=1), visualization=dict(num_images={N_PICS}))
optim_wrapper = dict(lr_scaling=dict(batch_size=2))
env_cfg = dict(dist_cfg=dict(backend='gloo'))
log_level = 'WARNING'
""")  # noqa: E501
    return path


@pytest.fixture(scope='module')
def trained(tmp_path_factory, data):
    folder = tmp_path_factory.mktemp('vis_run')
    cfg = load_cfg(write_config(folder, data))
    cfg.work_dir = str(folder / 'work')
    # a visualizer of its own: one named 'visualizer' made by an earlier Runner
    # in this process would be reused, with that run's vis_data folder
    cfg.visualizer.name = f'visualizer_{folder.name}'
    runner = Runner.from_cfg(cfg)
    runner.train()
    return SimpleNamespace(
        config=osp.join(str(folder), 'cfg.py'),
        work=str(folder / 'work'),
        timestamp=runner.timestamp,
        ckpt=str(folder / 'work' / 'iter_2.pth'),
    )


def expected(root, index):
    """(degraded, clean) of a sample as RGB uint8 H x W x 3, from the
    pipeline's BGR output."""
    with DefaultScope.overwrite_default_scope('unirestore_mm'):
        ds = DATASETS.build(ir_dataset(root))
    item = ds[index]
    to_hwc = lambda t: t.permute(1, 2, 0).numpy()  # noqa: E731
    return to_hwc(item['inputs'])[..., ::-1], to_hwc(
        item['data_samples'].gt_img
    )[..., ::-1]


def check_panel(path, root, index):
    picture = cv2.imread(path)
    assert picture is not None, path
    picture = picture[..., ::-1]  # cv2 reads BGR; the panel is RGB
    assert picture.shape == (SIZE, 3 * SIZE, 3)
    degraded, clean = expected(root, index)
    # the test images tell the channel orders apart
    assert not np.array_equal(degraded, degraded[..., ::-1])
    np.testing.assert_array_equal(picture[:, :SIZE], degraded)
    np.testing.assert_array_equal(picture[:, 2 * SIZE :], clean)
    # the restored image is the model's
    assert not np.array_equal(picture[:, SIZE : 2 * SIZE], degraded)


def run_test_tool(*args):
    """``python tools/test.py ARGS`` in this process (the tool's own code,
    without a second interpreter's imports)."""
    argv = sys.argv
    sys.argv = [osp.join(REPO, 'tools', 'test.py'), *map(str, args)]
    try:
        runpy.run_path(sys.argv[0], run_name='__main__')
    finally:
        sys.argv = argv


def no_tmp_files(folder):
    return not [
        f
        for _, _, files in os.walk(folder)
        for f in files
        if f.endswith('.tmp')
    ]


def test_validation_draws_the_same_images_at_every_validation(trained, data):
    vis = osp.join(trained.work, trained.timestamp, 'vis_data', 'vis_image')
    names = sorted(osp.basename(p) for p in glob.glob(osp.join(vis, '*.png')))
    assert names == sorted(
        f'val_{i}_{i:05d}_{it}.png' for i in range(N_PICS) for it in (1, 2)
    )
    for it in (1, 2):
        for i in range(N_PICS):
            check_panel(osp.join(vis, f'val_{i}_{i:05d}_{it}.png'), data, i)


def test_show_dir_writes_one_picture_per_test_sample(trained, data, tmp_path):
    show = tmp_path / 'pictures'
    run_test_tool(
        trained.config,
        trained.ckpt,
        '--work-dir',
        tmp_path / 'work',
        '--show-dir',
        show,
    )
    # no .tmp left, nothing else
    assert sorted(os.listdir(show)) == [f'{i:05d}.png' for i in range(N_DATA)]
    for i in range(N_DATA):
        check_panel(str(show / f'{i:05d}.png'), data, i)


def test_relative_test_out_dir_goes_under_the_work_dir(
    trained, data, tmp_path
):
    cfg = load_cfg(trained.config)
    cfg.work_dir = str(tmp_path / 'work')
    cfg.load_from = trained.ckpt
    cfg.default_hooks.visualization.num_images = 0
    enable_test_pictures(cfg, 'pics')
    runner = Runner.from_cfg(cfg)
    runner.test()
    pics = tmp_path / 'work' / runner.timestamp / 'pics'
    assert sorted(os.listdir(pics)) == [f'{i:05d}.png' for i in range(N_DATA)]
    assert no_tmp_files(str(tmp_path / 'work'))
    # no validation pictures in testing
    assert not glob.glob(
        str(tmp_path / 'work' / '**' / 'vis_image' / '*.png'), recursive=True
    )


def test_show_dir_on_a_recognizer_config_is_a_one_line_error(
    data, tmp_path, capsys
):
    """tools/test.py also serves mmpretrain/mmseg configs; their models predict
    no restored image."""
    ckpt = save_recognizer(
        TINY_CLS,
        str(tmp_path / 'cls.pth'),
        classes=[f'class{i}' for i in range(4)],
    )
    cfg = tmp_path / 'cls_cfg.py'
    cfg.write_text(f"""
default_scope = 'mmpretrain'
model = {TINY_CLS!r}
test_dataloader = dict(batch_size=2, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='CustomDataset', data_root={data!r}, ann_file='meta/train.txt', data_prefix='images',
                 with_label=True, pipeline=[dict(type='LoadImageFromFile'), dict(type='PackInputs')]))
test_evaluator = dict(type='Accuracy')
test_cfg = dict()
""")  # noqa: E501
    with pytest.raises(SystemExit) as stop:
        run_test_tool(
            cfg,
            ckpt,
            '--work-dir',
            tmp_path / 'work',
            '--show-dir',
            tmp_path / 'pics',
        )
    # a usage error: one line on stderr, exit status 2
    assert stop.value.code == 2
    message = [
        line
        for line in capsys.readouterr().err.splitlines()
        if 'error:' in line
    ]
    assert len(message) == 1, message
    assert message[0].startswith(
        'test.py: error: --show-dir: ImageClassifier predicts no pred_img'
    ), message
    assert not os.listdir(tmp_path / 'pics')


class _Visualizer:
    def __init__(self):
        self.calls = []

    def add_datasample(self, name, image, data_sample=None, step=0):
        self.calls.append((name, image, data_sample, step))


def _runner(tmp_path, bgr_to_rgb=True):
    return SimpleNamespace(
        model=SimpleNamespace(
            data_preprocessor=SimpleNamespace(
                bgr_to_rgb=bgr_to_rgb, scale=255.0
            )
        ),
        visualizer=_Visualizer(),
        iter=7,
        work_dir=str(tmp_path),
        timestamp='ts',
        logger=SimpleNamespace(info=lambda *a: None, warning=lambda *a: None),
    )


def _batch(values, meta=True):
    """Batch of 4x6 images whose B, G, R channels are ``v, v + 1, v + 2``;
    samples without paths, with ``sample_idx = v`` when ``meta``."""
    inputs = [
        torch.tensor([v, v + 1, v + 2], dtype=torch.uint8)[
            :, None, None
        ].expand(3, 4, 6)
        for v in values
    ]
    samples = [
        BaseDataElement(
            pred_img=torch.zeros(3, 4, 6),
            gt_img=torch.ones(3, 4, 6),
            metainfo=dict(sample_idx=v) if meta else {},
        )
        for v in values
    ]
    return dict(inputs=inputs), samples


def test_hook_without_sample_indices_draws_the_first_samples_of_the_loop(
    tmp_path,
):
    hook, runner = (
        RestorationVisualizationHook(num_images=3),
        _runner(tmp_path),
    )
    hook.before_val_epoch(runner)
    for values in ([10, 20], [30, 40], [50]):
        hook.after_val_iter(runner, 0, *_batch(values, meta=False))
    hook.after_val_epoch(runner)
    calls = runner.visualizer.calls
    assert [c[0] for c in calls] == ['val_0', 'val_1', 'val_2'] and {
        c[3] for c in calls
    } == {7}
    # BGR -> RGB
    assert [c[1][0, 0].tolist() for c in calls] == [
        [12, 11, 10],
        [22, 21, 20],
        [32, 31, 30],
    ]
    assert calls[0][1].shape == (4, 6, 3) and calls[0][1].dtype == np.uint8
    # inputs already RGB (a preprocessor with bgr_to_rgb=False): shown as they
    # are
    hook, runner = (
        RestorationVisualizationHook(num_images=1),
        _runner(tmp_path, bgr_to_rgb=False),
    )
    hook.before_val_epoch(runner)
    hook.after_val_iter(runner, 0, *_batch([10], meta=False))
    hook.after_val_epoch(runner)
    assert runner.visualizer.calls[0][1][0, 0].tolist() == [10, 11, 12]


def test_hook_test_pictures_and_a_model_without_pred_img(tmp_path):
    hook, runner = (
        RestorationVisualizationHook(test_out_dir=str(tmp_path / 'out')),
        _runner(tmp_path),
    )
    hook.before_test(runner)
    hook.before_test_epoch(runner)
    hook.after_test_iter(runner, 0, *_batch([0, 1], meta=False))
    assert sorted(os.listdir(tmp_path / 'out')) == ['0.png', '1.png']
    assert cv2.imread(str(tmp_path / 'out' / '0.png')).shape == (4, 18, 3)
    data_batch, samples = _batch([2])
    del samples[0].pred_img
    with pytest.raises(NoRestoredImageError, match='predicts no pred_img'):
        hook.after_test_iter(runner, 1, data_batch, samples)
    # draw=False, or no test_out_dir: no test pictures
    for hook in (
        RestorationVisualizationHook(
            draw=False, test_out_dir=str(tmp_path / 'off')
        ),
        RestorationVisualizationHook(),
    ):
        hook.before_test(runner)
        hook.after_test_iter(runner, 0, *_batch([0]))
    assert not (tmp_path / 'off').exists() and not (tmp_path / 'ts').exists()


VALIDATING = sorted(
    glob.glob(osp.join(CONFIGS, 'unirestore', 'stage[0-9]*.py'))
    + glob.glob(osp.join(CONFIGS, 'demo', 'stage[0-9]*.py'))
)


def test_every_restorer_recipe_that_validates_draws_a_few_images():
    validating = 0
    for path in VALIDATING:
        cfg = load_cfg(path)
        hook = cfg.default_hooks.visualization
        assert hook.type == 'unirestore_mm.RestorationVisualizationHook', path
        if cfg.get('val_dataloader') and cfg.get('val_cfg'):
            validating += 1
            assert hook.draw and 0 < hook.num_images <= 8, path
            assert (
                cfg.visualizer.type == 'unirestore_mm.RestorationVisualizer'
            ), path
    # stage 1 (tiny 1k, sd-turbo), stage 2-ir (tiny 1k), the demo's stage 1
    assert validating >= 4
