"""tools/analysis_tools/benchmark_speed.py at tiny sizes on the CPU: the
table's rows and numbers parse, the ratios are the measured times' ratios, the
FLOPs add up across rows, the CUDA suite's grid runs (on the CPU here), and
command-line mistakes are one-line errors with exit status 2."""

import json
import math
import os
import os.path as osp
import statistics
import subprocess
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SCRIPT = osp.join(REPO, 'tools', 'analysis_tools', 'benchmark_speed.py')


def run(args, cwd, timeout=240):
    env = dict(os.environ, OMP_NUM_THREADS='1')
    return subprocess.run(
        [sys.executable, SCRIPT, *args],
        cwd=str(cwd),
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def md_tables(text):
    """Each markdown table of ``text`` as a list of rows (lists of cell
    strings), header first."""
    tables, current = [], []
    for line in text.splitlines():
        if line.startswith('|'):
            cells = [c.strip() for c in line.strip().strip('|').split('|')]
            if not all(set(c) <= {'-'} for c in cells):
                current.append(cells)
        elif current:
            tables.append(current)
            current = []
    if current:
        tables.append(current)
    return tables


def table_with(tables, first_header):
    found = [t for t in tables if t[0][0] == first_header]
    assert len(found) == 1, tables
    return found[0]


def number(cell):
    return float(cell.split()[0].replace(',', ''))


@pytest.fixture(scope='module')
def quick(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('speed')
    proc = run(
        [
            '--quick',
            '--device',
            'cpu',
            '--repeat',
            '2',
            '--out',
            'speed.md',
            'speed.json',
        ],
        tmp,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    with open(tmp / 'speed.json') as f:
        data = json.load(f)
    return proc, (tmp / 'speed.md').read_text(), data


def test_header_names_machine_and_versions(quick):
    proc, md, data = quick
    import diffusers
    import torch

    for text in (proc.stdout, md):
        assert (
            f'torch {torch.__version__}' in text
            and f'diffusers {diffusers.__version__}' in text
        )
        assert 'python 3.' in text and 'threads' in text
    assert data['machine']['torch'] == torch.__version__
    assert data['peaks']['fp32'] > 1e6  # FLOP/s of the matmul


def test_rows_are_measured_and_parse(quick):
    proc, md, data = quick
    rows = data['rows']
    assert [r['kind'] for r in rows] == [
        'unirestore',
        'bare',
        'ddim',
        'tiny',
        'train2',
    ]
    for r in rows:
        assert 'error' not in r, r
        assert r['finite'] is True
        assert (
            len(r['times']) == (2 if r['kind'] != 'ddim' else len(r['times']))
            and r['times']
        )
        assert r['median_s'] == statistics.median(r['times']) > 0
        assert math.isclose(r['images_per_s'], r['batch'] / r['median_s'])
        # this process's resident peak
        assert 50 * 2**20 < r['peak_bytes'] < 8 * 2**30
        assert r['flops'] > 0
    table = table_with(md_tables(md), 'row')
    assert table[0][:6] == [
        'row',
        'preset',
        'size',
        'batch',
        'dtype',
        'median s',
    ]
    assert len(table) == 1 + len(rows)
    for cells, r in zip(table[1:], rows):
        assert number(cells[5]) == pytest.approx(r['median_s'], abs=6e-4)
        assert number(cells[6]) == pytest.approx(r['images_per_s'], rel=1e-2)
        assert number(cells[7]) == pytest.approx(
            r['peak_bytes'] / 2**30, abs=6e-3
        )
        assert number(cells[8]) == pytest.approx(r['flops'] / 1e9, abs=0.6)
        assert number(cells[10]) == pytest.approx(
            r['median_s'] / (r['flops'] / data['peaks']['fp32']), rel=1e-2
        )
    # every row ran in its own process: the rows do not all report the same
    # peak
    assert len({r['peak_bytes'] for r in rows}) > 1


def test_ratios_are_the_measured_times_ratios(quick):
    proc, md, data = quick
    rows = {r['kind']: r for r in data['rows']}
    ratios = {q['name']: q for q in data['ratios']}
    u, b, d = rows['unirestore'], rows['bare'], rows['ddim']
    q = ratios['UniRestore / bare prior']
    assert q['value'] == pytest.approx(
        u['median_s'] / b['median_s'], rel=1e-12
    )
    assert q['flop_ratio'] == pytest.approx(u['flops'] / b['flops'], rel=1e-12)
    q50 = ratios[f'{d["steps"]}-step prior / UniRestore']
    assert q50['value'] == pytest.approx(
        d['median_s'] / u['median_s'], rel=1e-12
    )
    table = table_with(md_tables(md), 'ratio')
    printed = {cells[0]: cells for cells in table[1:]}
    assert number(printed['UniRestore / bare prior'][5]) == pytest.approx(
        q['value'], abs=6e-4
    )
    assert number(printed['UniRestore / bare prior'][6]) == pytest.approx(
        q['flop_ratio'], abs=6e-4
    )
    assert printed['UniRestore / bare prior'][8] == (
        'yes' if q['value'] <= 1.2 else 'no'
    )
    assert number(printed[q50['name']][5]) == pytest.approx(
        q50['value'], abs=6e-4
    )


def test_flops_add_up_across_rows(quick):
    proc, md, data = quick
    rows = {r['kind']: r for r in data['rows']}
    u, b, d = (
        rows['unirestore']['flops_parts'],
        rows['bare']['flops_parts'],
        rows['ddim'],
    )
    # the same frozen modules at the same shapes: UniRestore's VAE and UNet
    # cost what the bare prior's do
    for part in ('encode', 'unet', 'decode'):
        assert u[part] == b[part] > 0
    assert set(b) == {'encode', 'unet', 'decode'}
    for part in ('cfrm', 'tfa', 'controller', 'skip_adapters'):
        assert u[part] > 0
    assert (
        sum(u.values()) <= rows['unirestore']['flops'] < 1.01 * sum(u.values())
    )
    assert d['flops'] == b['encode'] + d['steps'] * b['unet'] + b['decode']
    assert not d['extrapolated'] and len(d['times']) >= 1
    # the DDIM note says how the estimate was formed
    assert f'{d["steps"]} x UNet step' in md
    # the stage-2 step trains the TFAs and one prompt; its FLOPs include the
    # backward pass
    assert (
        rows['train2']['trainable_params'] > 0
        and rows['train2']['flops'] > rows['tiny']['flops']
    )


def _tool():
    import importlib.util

    spec = importlib.util.spec_from_file_location('benchmark_speed', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ddim_row_extrapolated_when_over_budget():
    """In process (no fork): a DDIM row whose estimate exceeds the budget is
    extrapolated, and says so."""
    tool = _tool()
    base = dict(
        device='cpu',
        prior=None,
        repeat=1,
        preset='tiny',
        size=32,
        batch=1,
        dtype='fp32',
        channels_last=False,
        compile=False,
    )
    bare = tool.measure_row(dict(base, kind='bare', steps=1, count_flops=True))
    d = tool.measure_row(
        dict(
            base,
            kind='ddim',
            steps=6,
            count_flops=False,
            probe_steps=2,
            ddim_budget=0.0,
        )
    )
    assert d['extrapolated'] is True and len(d['times']) == 1
    p = d['probe']
    assert p['unet_steps_timed'] == 2
    assert d['median_s'] == pytest.approx(
        p['encode'] + 6 * p['unet_step'] + p['decode']
    )
    rows = [bare, d]
    tool.derive(rows, {'fp32': 1e10})
    assert (
        d['flops']
        == bare['flops_parts']['encode']
        + 6 * bare['flops_parts']['unet']
        + bare['flops_parts']['decode']
    )
    args = tool.parse_args(['--quick', '--device', 'cpu'])
    args.command, args.isolation = 'x', 'in process'
    text = tool.render(
        dict(device='cpu', platform='p', python='3', torch='t', diffusers='d'),
        args,
        rows,
        [],
        {'fp32': 1e10},
        (0.0, 0.0),
    )
    assert (
        '(extrapolated)' in text
        and 'extrapolated (not run in full)' in text
        and '6 x UNet step' in text
    )


def test_cuda_suite_grid_on_cpu(tmp_path):
    proc = run(
        [
            '--cuda-suite',
            '--quick',
            '--device',
            'cpu',
            '--dtype',
            'fp32',
            'bf16',
            '--sizes',
            '32',
            '--batches',
            '1',
            '2',
            '--repeat',
            '1',
            '--no-flops',
            '--out',
            'suite.md',
            'suite.json',
        ],
        tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    data = json.loads((tmp_path / 'suite.json').read_text())
    grid = {
        (r['kind'], r['dtype'], r['size'], r['batch']) for r in data['rows']
    }
    assert grid == {
        (k, dt, 32, bs)
        for k in ('unirestore', 'bare')
        for dt in ('fp32', 'bf16')
        for bs in (1, 2)
    }
    table = table_with(md_tables((tmp_path / 'suite.md').read_text()), 'row')
    assert len(table) == 9 and {c[4] for c in table[1:]} == {'fp32', 'bf16'}
    for cells in table[1:]:
        assert (
            number(cells[5]) > 0
            and number(cells[6]) > 0
            and number(cells[7]) > 0
        )
    ratios = table_with(
        md_tables((tmp_path / 'suite.md').read_text()), 'ratio'
    )
    assert len(ratios) == 5  # one UniRestore / bare ratio per (dtype, batch)
    rows = {(r['kind'], r['dtype'], r['batch']): r for r in data['rows']}
    for q in data['ratios']:
        u, b = (
            rows['unirestore', q['dtype'], q['batch']],
            rows['bare', q['dtype'], q['batch']],
        )
        assert q['value'] == pytest.approx(
            u['median_s'] / b['median_s'], rel=1e-12
        )


@pytest.mark.parametrize(
    'args, message',
    [
        (['--sizes', '0'], '--sizes must be positive'),
        (['--repeat', '0'], '--repeat must be at least 1'),
        (['--out', 'table.txt'], '.md or .json'),
        (['--prior', '/no/such/folder'], 'not a diffusers folder'),
        (
            ['--device', 'cuda:7']
            if not __import__('torch').cuda.is_available()
            else ['--device', 'tpu'],
            '--device',
        ),
        (['--dtype', 'fp64'], 'invalid choice'),
    ],
)
def test_user_errors_are_one_line(tmp_path, args, message):
    proc = run(args, tmp_path, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert 'Traceback' not in proc.stderr and message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not proc.stdout
