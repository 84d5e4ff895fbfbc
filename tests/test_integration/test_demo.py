"""tools/demo.py --quick: the whole chain (recognizers, prior, stages 1 and 2,
baseline, evaluation) as a subprocess, its table with every row, its pictures,
and a second run that skips or resumes what is there."""

import csv
import json
import math
import os
import os.path as osp
import subprocess
import sys

import cv2
import pytest
from integration_utils import REPO, subprocess_env

from unirestore_mm.apis.demo_eval import (
    CLASSIFIERS,
    QUICK_CORRUPTIONS,
    ROW_NAMES,
    SEGMENTERS,
)


def run_demo(work, data, *extra, timeout=1200):
    env = subprocess_env()
    env['UNIRESTORE_DATA'] = str(data)
    proc = subprocess.run(
        [
            sys.executable,
            'tools/demo.py',
            '--quick',
            '--work-dir',
            str(work),
            *extra,
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, (
        f'demo failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}'
    )
    return proc.stdout


@pytest.fixture(scope='module')
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp('demo')
    out = run_demo(root / 'work', root / 'data')
    return root, out


def test_quick_demo_table_has_every_row_and_column(demo):
    root, out = demo
    results = root / 'work' / 'results'
    with open(results / 'table.json', encoding='utf-8') as f:
        table = json.load(f)
    assert [e['row'] for e in table['table']] == list(ROW_NAMES.values())
    columns = (
        ['psnr', 'ssim']
        + [f'top1/{c}' for _, c in CLASSIFIERS]
        + [f'miou/{c}' for _, c in SEGMENTERS]
    )
    assert table['metrics'] == columns
    for entry in table['table']:
        for m in columns:
            if entry['row'] == ROW_NAMES['clean'] and m in ('psnr', 'ssim'):
                assert entry[m] is None  # an image against itself has no PSNR
                continue
            assert isinstance(entry[m], float) and math.isfinite(entry[m]), (
                entry['row'],
                m,
                entry[m],
            )
    # restorer rows carry the training seed, input rows none
    assert (
        table['table'][1]['seeds'] == [0] and table['table'][0]['seeds'] == []
    )
    # the per-corruption breakdown: a line per (row, corruption) besides the
    # means
    with open(results / 'table.csv', encoding='utf-8') as f:
        lines = list(csv.DictReader(f))
    degraded = {
        ln['corruption']
        for ln in lines
        if ln['row'] == ROW_NAMES['degraded'] and ln['seed'] != 'mean'
    }
    assert degraded == set(QUICK_CORRUPTIONS)
    md = (results / 'table.md').read_text()
    for name in ROW_NAMES.values():
        assert f'| {name} |' in md
    # the printed table is the written one
    assert md.strip().splitlines()[-1] in out
    assert 'goal' in out


def test_quick_demo_draws_its_pictures(demo):
    root, _ = demo
    results = root / 'work' / 'results'
    for name in ('grid.png', 'grid_seg.png', 'bars.png'):
        img = cv2.imread(str(results / name))
        assert img is not None and img.shape[0] > 200 and img.shape[1] > 300, (
            name
        )
        assert img.std() > 10, name  # not a blank canvas


def test_second_run_skips_finished_steps_and_resumes_the_rest(demo):
    root, _ = demo
    work = root / 'work'
    results = work / 'results'
    before = json.loads((results / 'table.json').read_text())
    # as if killed: the last baseline step lost its done marker, the evaluation
    # its last cells
    os.remove(work / 'baseline_seed0' / 'demo_step_done.json')
    cells = (results / 'cells.jsonl').read_text().splitlines()
    (results / 'cells.jsonl').write_text(
        '\n'.join(cells[: len(cells) // 2]) + '\n{"row": "trunc'
    )
    out = run_demo(work, root / 'data')
    assert out.count('done before, skipped') == 9, out
    assert 'baseline_seed0: started (resuming)' in out, out
    after = json.loads((results / 'table.json').read_text())
    assert len(after['cells']) == len(before['cells'])
    assert after['table'] == before['table']


def test_bad_arguments_fail_with_one_line(tmp_path):
    env = subprocess_env()
    proc = subprocess.run(
        [
            sys.executable,
            'tools/demo.py',
            '--quick',
            '--seeds',
            '1',
            '1',
            '--work-dir',
            str(tmp_path),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert 'Traceback' not in proc.stderr
    assert '--seeds must differ' in proc.stderr
    assert not osp.exists(tmp_path / 'results')
