"""The demo's evaluation pieces: one encoding for several prompts, cached
cells, the summary and the goals."""

import json

import numpy as np
import pytest
import torch

from unirestore_mm import UniRestore
from unirestore_mm.apis.demo_eval import ROW_NAMES, check_goals, demo_rows
from unirestore_mm.evaluation.task_benchmark import (
    Row,
    degrade_set,
    evaluate_rows,
    load_cells,
    restore_with_prompts,
    summarise,
    write_tables,
)


def test_one_encoding_for_several_prompts_equals_restore_per_prompt():
    torch.manual_seed(0)
    model = UniRestore(preset='tiny').eval()
    # distinct prompts, so the tasks' outputs differ
    for p in model.prompts.prompts.values():
        p.data.normal_()
    x = torch.rand(2, 3, 32, 48)
    out = restore_with_prompts(model, x, ['ir', 'cls', 'seg'], seed=3)
    for task in ('ir', 'cls', 'seg'):
        assert torch.equal(out[task], model.restore(x, task=task, seed=3)), (
            task
        )
    assert not torch.equal(out['ir'], out['cls'])


def test_degraded_set_is_repeatable_per_image_and_corruption():
    imgs = np.random.default_rng(0).integers(
        0, 256, (3, 16, 16, 3), dtype=np.uint8
    )
    a = degrade_set(imgs, 'gaussian_noise', 3, seed=0)
    assert np.array_equal(a, degrade_set(imgs, 'gaussian_noise', 3, seed=0))
    assert not np.array_equal(
        a, degrade_set(imgs, 'gaussian_noise', 3, seed=1)
    )
    # image i's noise comes from (seed, corruption, i): changing another image
    # leaves it alone
    other = imgs.copy()
    other[0] = 255 - other[0]
    assert np.array_equal(
        a[1:], degrade_set(other, 'gaussian_noise', 3, seed=0)[1:]
    )


def cells_for(rows_values):
    cells = []
    for row, seed, corruption, value in rows_values:
        cells.append(
            dict(
                row=row,
                seed=seed,
                corruption=corruption,
                psnr=value,
                ssim=value / 100,
            )
        )
    return cells


def test_summary_averages_corruptions_then_seeds_with_half_range_spread(
    tmp_path,
):
    rows = [Row('in'), Row('ours', restorer='r', task='ir', seeds=(0, 1))]
    cells = cells_for(
        [
            ('in', 0, 'a', 10.0),
            ('in', 0, 'b', 20.0),
            ('ours', 0, 'a', 20.0),
            ('ours', 0, 'b', 22.0),
            ('ours', 1, 'a', 24.0),
            ('ours', 1, 'b', 26.0),
        ]
    )
    metrics, table = summarise(cells, rows)
    assert metrics == ['psnr', 'ssim']
    assert table[0]['psnr'] == 15.0 and table[0]['psnr/spread'] == 0.0
    assert table[1]['psnr'] == pytest.approx(23.0) and table[1][
        'psnr/spread'
    ] == pytest.approx(2.0)
    paths = write_tables(str(tmp_path), metrics, table, cells)
    md = open(paths['md']).read()
    assert '| ours | 23.00 ± 2.00 | 0.230 ± 0.020 |' in md
    assert '| in | 15.00 | 0.150 |' in md
    lines = open(paths['csv']).read().splitlines()
    assert lines[0] == 'row,seed,corruption,psnr,ssim' and len(
        lines
    ) == 1 + 2 + len(cells)
    assert json.load(open(paths['json']))['table'][1]['psnr'] == pytest.approx(
        23.0
    )


def test_cells_file_survives_a_cut_last_line(tmp_path):
    path = tmp_path / 'cells.jsonl'
    path.write_text(
        '{"row": "a", "seed": 0, "corruption": "x", "psnr": 1.0}\n{"row": '
        '"b", "se'
    )
    assert load_cells(str(path)) == [
        dict(row='a', seed=0, corruption='x', psnr=1.0)
    ]


def test_evaluation_computes_only_missing_cells(tmp_path):
    rng = np.random.default_rng(0)
    clean = rng.integers(0, 256, (4, 16, 16, 3), dtype=np.uint8)
    labels = np.array([0, 1, 0, 1])
    masks = np.zeros((4, 16, 16), np.int64)
    built = []

    def identity():
        built.append(1)

        class Same:
            size_divisor = 16

            def encode(self, x, generator=None):
                return type('E', (), dict(latent=x, skips=[]))()

            def sample(self, z, num_steps=1, generator=None):
                return z

            def decode(self, z, skips, task):
                return z

        return Same()

    rows = [Row('deg'), Row('id', restorer='same', task='ir', seeds=(0,))]
    path = str(tmp_path / 'cells.jsonl')
    cells = evaluate_rows(
        rows,
        clean,
        labels,
        masks,
        ['gaussian_noise', 'fog'],
        {('same', 0): identity},
        {},
        {},
        path,
    )
    assert len(cells) == 4 and len(built) == 1
    by = {(c['row'], c['corruption']): c['psnr'] for c in cells}
    # an identity restorer returns its input: the same PSNR as the degraded row
    assert by[('id', 'fog')] == pytest.approx(by[('deg', 'fog')])
    again = evaluate_rows(
        rows,
        clean,
        labels,
        masks,
        ['gaussian_noise', 'fog'],
        {('same', 0): identity},
        {},
        {},
        path,
    )
    # nothing recomputed, the restorer not even built
    assert again == cells and len(built) == 1
    # killed while writing the last cell: the cut line is dropped, the missing
    # cells computed and appended whole
    text = open(path).read()
    open(path, 'w').write(text[: len(text) - 25])
    resumed = evaluate_rows(
        rows,
        clean,
        labels,
        masks,
        ['gaussian_noise', 'fog'],
        {('same', 0): identity},
        {},
        {},
        path,
    )
    assert resumed == cells and load_cells(path) == cells


def table_with(**values):
    rows = demo_rows((0,))
    base = dict(psnr=20.0, ssim=0.5)
    cols = {
        'top1/ResNet-18 (seen)': 50.0,
        'top1/MobileNetV2 (unseen)': 50.0,
        'top1/ViT (unseen)': 50.0,
        'miou/PSPNet (seen)': 40.0,
        'miou/SegFormer (unseen)': 40.0,
    }
    table = []
    for r in rows:
        entry = dict(row=r.name, **base, **cols)
        entry.update(values.get(r.name, {}))
        table.append(entry)
    return table


def test_goals_compare_the_right_rows():
    table = table_with(
        **{
            ROW_NAMES['degraded']: dict(psnr=15.0),
            ROW_NAMES['baseline']: dict(psnr=20.2),
            ROW_NAMES['cls']: {
                'top1/MobileNetV2 (unseen)': 54.0,
                'top1/ViT (unseen)': 52.0,
            },
            ROW_NAMES['seg']: {'miou/SegFormer (unseen)': 42.5},
            ROW_NAMES['clean_cls']: {'top1/ResNet-18 (seen)': 48.0},
        }
    )
    goals = {g['goal']: g for g in check_goals(table)}
    assert (
        goals['UniRestore ir PSNR >= degraded + 4 dB']['reached']
        and goals['UniRestore ir PSNR >= degraded + 4 dB']['value'] == 5.0
    )
    assert goals['UniRestore ir PSNR within 0.5 dB of restoration-only'][
        'reached'
    ]
    assert goals[
        'cls prompt top1/MobileNetV2 (unseen) >= restoration-only + 3 points'
    ]['reached']
    assert not goals[
        'cls prompt top1/ViT (unseen) >= restoration-only + 3 points'
    ]['reached']
    assert goals[
        'seg prompt miou/SegFormer (unseen) >= restoration-only + 2 points'
    ]['reached']
    clean = [
        g for g in goals.values() if g['goal'].startswith('clean restored')
    ][0]
    assert not clean['reached'] and clean['value'] == -2.0
