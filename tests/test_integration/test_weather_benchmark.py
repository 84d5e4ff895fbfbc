"""tools/benchmark.py end to end on a tiny set: every file and row, resume
without recomputation, two gloo processes giving the same table as one, and bad
input refused before any computation.

The restorer and recognizers here have random weights: these tests check the
tool's mechanics, not quality (the README's benchmark figures come from the
demo's trained models).
"""

import importlib.util
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CLS_CFG = osp.join(
    REPO,
    'configs/demo/cls-seen_resnet18-w16-cifar_1xb64-500it_clean-embedded.py',
)
SEG_CFG = osp.join(
    REPO,
    'configs/demo/seg-seen_pspnet-r18-w16-d8_1xb32-500it_clean-embedded.py',
)
CONDITIONS = ['fog/1', 'fog/3', 'contrast/1', 'contrast/3']
ROWS = ['degraded', 'ur/ir', 'ur/cls', 'ur/seg', 'clean']


def _load_tool():
    spec = importlib.util.spec_from_file_location(
        'benchmark_tool', osp.join(REPO, 'tools', 'benchmark.py')
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    """The embedded set, a tiny restorer folder and two recognizer checkpoints
    (random weights)."""
    root = tmp_path_factory.mktemp('bench')
    old = os.environ.get('UNIRESTORE_DATA')
    os.environ['UNIRESTORE_DATA'] = str(root / 'data')
    from unirestore_mm.datasets.embedded import build_embedded_set

    build_embedded_set()
    from unirestore_mm.models import UniRestore
    from unirestore_mm.models.recognizers import build_recognizer

    torch.manual_seed(0)
    UniRestore(preset='tiny').save_pretrained(str(root / 'restorer'))
    ckpts = {}
    for name, cfg in (('cls', CLS_CFG), ('seg', SEG_CFG)):
        rec = build_recognizer(cfg, frozen=False)
        ckpts[name] = str(root / f'{name}.pth')
        torch.save(
            dict(state_dict=rec.model.state_dict(), meta={}), ckpts[name]
        )
    yield dict(root=root, restorer=str(root / 'restorer'), **ckpts)
    if old is None:
        del os.environ['UNIRESTORE_DATA']
    else:
        os.environ['UNIRESTORE_DATA'] = old


def _argv(setup, work_dir, limit=5, extra=()):
    return [
        '--data',
        'embedded-seg',
        '--limit',
        str(limit),
        '--corruptions',
        'fog',
        'contrast',
        '--severities',
        '1',
        '3',
        '--restorer',
        'ur',
        setup['restorer'],
        '--model',
        'psp',
        SEG_CFG,
        setup['seg'],
        '--model',
        'r18',
        CLS_CFG,
        setup['cls'],
        '--batch-size',
        '2',
        '--work-dir',
        str(work_dir),
        *extra,
    ]


def _cells(work_dir):
    with open(osp.join(work_dir, 'cells.jsonl')) as f:
        return [json.loads(line) for line in f]


def _table(work_dir):
    with open(osp.join(work_dir, 'table.json')) as f:
        return json.load(f)


@pytest.fixture(scope='module')
def first_run(setup):
    work = setup['root'] / 'run1'
    assert _load_tool().main(_argv(setup, work)) == 0
    return work


def test_every_file_row_and_cell(first_run):
    work = first_run
    for name in (
        'cells.jsonl',
        'settings.json',
        'table.md',
        'table.csv',
        'table.json',
        'bars.png',
        'grid.png',
        'heatmap_PSNR.png',
        'heatmap_SSIM.png',
        'heatmap_psp_mIoU.png',
        'heatmap_r18_accuracy_top1.png',
    ):
        assert osp.getsize(osp.join(work, name)) > 0, name
    assert not [f for f in os.listdir(work) if f.endswith('.tmp')]
    cells = _cells(work)
    keys = {(c['row'], c['condition']) for c in cells}
    expected = {(r, c) for r in ROWS[:-1] for c in CONDITIONS} | {
        ('clean', 'clean/0')
    }
    assert keys == expected and len(cells) == len(expected)
    table = _table(work)
    assert [e['row'] for e in table['table']] == ROWS
    for m in ('PSNR', 'SSIM', 'psp/mIoU', 'psp/aAcc', 'r18/accuracy/top1'):
        assert m in table['metrics']
    # PSNR is measured against the clean image for every restored/degraded
    # cell, and not for clean itself
    assert all(
        c['PSNR'] is not None and 0 < c['PSNR'] < 60
        for c in cells
        if c['row'] != 'clean'
    )
    assert next(c for c in cells if c['row'] == 'clean')['PSNR'] is None
    # r18 has no labels on the segmentation set: its reference is its own clean
    # prediction, so clean agrees fully
    assert (
        next(c for c in cells if c['row'] == 'clean')['r18/accuracy/top1']
        == 100.0
    )
    with open(osp.join(work, 'table.csv')) as f:
        lines = f.read().splitlines()
    # header, the means, one line per cell
    assert len(lines) == 1 + len(ROWS) + len(expected)
    md = open(osp.join(work, 'table.md')).read()
    assert (
        all(f'| {r} |' in md for r in ROWS)
        and 'r18: clean-prediction' in md
        and 'psp: dataset' in md
    )


def test_corruption_and_severity_change_the_input(first_run):
    """Each condition really degrades with its own corruption and severity (the
    cells differ, degraded PSNR falls from severity 1 to 3)."""
    cells = {(c['row'], c['condition']): c for c in _cells(first_run)}
    for corruption in ('fog', 'contrast'):
        assert (
            cells[('degraded', f'{corruption}/3')]['PSNR']
            < cells[('degraded', f'{corruption}/1')]['PSNR']
        )
    assert (
        cells[('degraded', 'fog/3')]['PSNR']
        != cells[('degraded', 'contrast/3')]['PSNR']
    )


def test_resume_computes_no_finished_cell(setup, first_run, monkeypatch):
    import shutil

    work = setup['root'] / 'resume'
    shutil.copytree(first_run, work)
    before = _table(first_run)
    from unirestore_mm.apis import benchmark as bench

    calls = {'restore': 0, 'predict': 0}
    real_restore, real_predict = bench.restore_batch, bench.Downstream.predict

    def counting_restore(*a, **k):
        calls['restore'] += 1
        return real_restore(*a, **k)

    def counting_predict(self, batch):
        calls['predict'] += 1
        return real_predict(self, batch)

    monkeypatch.setattr(bench, 'restore_batch', counting_restore)
    monkeypatch.setattr(bench.Downstream, 'predict', counting_predict)
    tool = _load_tool()
    assert tool.main(_argv(setup, work, extra=['--no-figures'])) == 0
    assert calls == {'restore': 0, 'predict': 0}  # everything was cached
    assert _table(work)['table'] == before['table']

    # a run killed while writing: the last two cells lost, a third cut in half
    with open(work / 'cells.jsonl') as f:
        lines = f.read().splitlines(keepends=True)
    lost = [json.loads(line) for line in lines[-3:]]
    with open(work / 'cells.jsonl', 'w') as f:
        f.write(''.join(lines[:-3]) + lines[-3][:25])
    assert tool.main(_argv(setup, work, extra=['--no-figures'])) == 0
    assert calls['restore'] > 0
    cells = _cells(work)
    assert len(cells) == len(lines)
    assert {(c['row'], c['condition']) for c in cells[-3:]} == {
        (c['row'], c['condition']) for c in lost
    }
    # the recomputed cells are the same numbers
    assert _table(work)['table'] == before['table']

    # results of other settings are refused, not mixed in
    with pytest.raises(SystemExit) as exit_info:
        tool.main(_argv(setup, work, extra=['--no-figures', '--seed', '1']))
    assert exit_info.value.code == 2
    assert len(_cells(work)) == len(lines)


def test_two_gloo_processes_give_the_same_table(setup, first_run, tmp_path):
    """torchrun with 2 CPU processes (gloo): 5 images split 3 + 2 (MMEngine's
    sampler pads, the evaluators drop the repeat), every metric collected
    before it is computed: the same cells as one process."""
    env = dict(
        os.environ,
        OMP_NUM_THREADS='1',
        PORT='29655',
        UNIRESTORE_DATA=os.environ['UNIRESTORE_DATA'],
    )
    proc = subprocess.run(
        ['bash', osp.join(REPO, 'tools', 'dist_benchmark.sh'), '2']
        + _argv(setup, tmp_path / 'dist', extra=['--no-figures']),
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
        cwd=str(tmp_path),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert '2 process(es)' in proc.stdout
    one = {(c['row'], c['condition']): c for c in _cells(first_run)}
    two = {(c['row'], c['condition']): c for c in _cells(tmp_path / 'dist')}
    assert one.keys() == two.keys()
    for key, cell in one.items():
        for m, v in cell.items():
            if isinstance(v, float):
                # batches differ: float noise only
                assert two[key][m] == pytest.approx(v, rel=1e-4, abs=1e-4), (
                    key,
                    m,
                )


def _fails(argv, cwd):
    proc = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', 'benchmark.py')] + argv,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=str(cwd),
        env=dict(os.environ, OMP_NUM_THREADS='1'),
    )
    assert proc.returncode == 2, (proc.stdout[-1000:], proc.stderr[-2000:])
    err = [
        line
        for line in proc.stderr.splitlines()
        if line.startswith('benchmark.py: error:')
    ]
    assert len(err) == 1 and 'Traceback' not in proc.stderr, proc.stderr[
        -2000:
    ]
    # nothing started: no restorer ran, no cell was written
    assert 'benchmark:' not in proc.stdout
    return err[0]


def test_bad_input_fails_before_any_computation(setup, tmp_path):
    base = _argv(setup, tmp_path / 'w')
    # a downstream config without a test pipeline
    no_test = tmp_path / 'no_test.py'
    no_test.write_text(
        f"_base_ = ['{CLS_CFG}']\ntest_pipeline = None\ntest_dataloader = "
        "None\n"
        'test_cfg = None\ntest_evaluator = None\n'
    )
    msg = _fails([a if a != CLS_CFG else str(no_test) for a in base], tmp_path)
    assert "'r18'" in msg and 'no test pipeline' in msg
    # a checkpoint that does not fit its config (the segmenter's weights for
    # the classifier)
    msg = _fails(
        [a if a != setup['cls'] else setup['seg'] for a in base], tmp_path
    )
    assert "'r18'" in msg and 'does not fit' in msg
    # a task the restorer lacks
    msg = _fails(base + ['--tasks', 'ir', 'dehaze'], tmp_path)
    assert "'ur'" in msg and 'dehaze' in msg
    # an empty data set
    empty = tmp_path / 'empty_set'
    empty.mkdir()
    (empty / 'manifest.json').write_text(
        json.dumps(
            dict(
                metainfo=dict(corruptions=['fog'], severities=[3]),
                data_list=[],
            )
        )
    )
    msg = _fails(
        [
            '--data',
            str(empty),
            '--restorer',
            'ur',
            setup['restorer'],
            '--model',
            'psp',
            SEG_CFG,
            setup['seg'],
            '--work-dir',
            str(tmp_path / 'w'),
        ],
        tmp_path,
    )
    assert 'empty' in msg or 'no sample' in msg
    # labels asked of a set without them
    msg = _fails(base + ['--labels', 'dataset'], tmp_path)
    assert "'r18'" in msg and 'labels' in msg
    # a missing restorer
    msg = _fails(
        [
            a if a != setup['restorer'] else str(tmp_path / 'nope')
            for a in base
        ],
        tmp_path,
    )
    assert "'ur'" in msg and 'nope' in msg
    assert not osp.exists(tmp_path / 'w' / 'cells.jsonl')


def test_benchmark_set_folder_and_a_set_of_real_pairs(setup, tmp_path):
    """The two other kinds of data: a make_benchmark_set folder (its manifest's
    conditions, its labels and masks) and a set of real degraded/clean pairs in
    a documented layout (one condition, as given)."""
    import cv2
    import numpy as np

    from unirestore_mm.datasets import build_embedded_set, make_benchmark_set
    from unirestore_mm.evaluation import psnr

    tool = _load_tool()
    bench_set = make_benchmark_set(
        build_embedded_set(),
        str(tmp_path / 'bset'),
        ['fog', 'contrast'],
        [2],
        limit=3,
    )
    work = tmp_path / 'w_set'
    assert (
        tool.main(
            [
                '--data',
                bench_set,
                '--restorer',
                'ur',
                setup['restorer'],
                '--tasks',
                'ir',
                '--model',
                'psp',
                SEG_CFG,
                setup['seg'],
                '--model',
                'r18',
                CLS_CFG,
                setup['cls'],
                '--work-dir',
                str(work),
                '--no-figures',
            ]
        )
        == 0
    )
    cells = _cells(work)
    assert {(c['row'], c['condition']) for c in cells} == {
        (r, k) for r in ('degraded', 'ur/ir') for k in ('fog/2', 'contrast/2')
    } | {('clean', 'clean/0')}
    assert (
        'psp: dataset' in open(work / 'table.md').read()
        and 'r18: dataset' in open(work / 'table.md').read()
    )

    # Rain100L's layout: test/input and test/target, same names
    rng = np.random.default_rng(0)
    clean, rainy = [], []
    for i in range(3):
        c = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
        r = np.clip(
            c.astype(int) + rng.integers(-40, 41, c.shape), 0, 255
        ).astype(np.uint8)
        for sub, img in (('target', c), ('input', r)):
            os.makedirs(tmp_path / 'rain' / 'test' / sub, exist_ok=True)
            cv2.imwrite(
                str(tmp_path / 'rain' / 'test' / sub / f'{i}.png'), img
            )
        clean.append(c)
        rainy.append(r)
    work = tmp_path / 'w_rain'
    assert (
        tool.main(
            [
                '--data',
                osp.join(REPO, 'configs/_base_/datasets/rain100l.py'),
                '--data-options',
                f'test_dataloader.dataset.data_root={tmp_path / "rain"}',
                '--restorer',
                'ur',
                setup['restorer'],
                '--tasks',
                'ir',
                '--model',
                'r18',
                CLS_CFG,
                setup['cls'],
                '--work-dir',
                str(work),
                '--no-figures',
            ]
        )
        == 0
    )
    cells = {(c['row'], c['condition']): c for c in _cells(work)}
    assert set(cells) == {
        ('degraded', 'as-given/0'),
        ('ur/ir', 'as-given/0'),
        ('clean', 'clean/0'),
    }

    def t(imgs):
        return (
            torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).float() / 255
        )

    expected = float(psnr(t(rainy), t(clean)).mean())
    assert cells[('degraded', 'as-given/0')]['PSNR'] == pytest.approx(
        expected, abs=1e-6
    )
    # corruptions do not apply to real degradations
    with pytest.raises(SystemExit):
        tool.main(
            [
                '--data',
                osp.join(REPO, 'configs/_base_/datasets/rain100l.py'),
                '--data-options',
                f'test_dataloader.dataset.data_root={tmp_path / "rain"}',
                '--corruptions',
                'fog',
                '--model',
                'r18',
                CLS_CFG,
                setup['cls'],
                '--work-dir',
                str(tmp_path / 'w3'),
            ]
        )
