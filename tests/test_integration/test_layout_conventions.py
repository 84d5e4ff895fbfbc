"""OpenMMLab layout conventions: config names, configs that load, a README per
config folder that names every config (its results traceable to ``docs/``), the
distributed launchers, and the authors' checkpoint converter tool.
"""

import glob
import importlib.util
import math
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch
from integration_utils import REPO, subprocess_env
from mmengine.config import Config

CONFIGS = osp.join(REPO, 'configs')
# {algorithm}_{backbone}_{gpus}xb{batch}-{schedule}_{dataset}.py, lower case,
# fields joined by '-' inside (mmseg:
# pspnet_r18-d8_4xb2-80k_cityscapes-512x1024.py).  The schedule ends in a
# length: N iterations ('20it'), thousands of iterations ('1k') or epochs
# ('10e'); evaluation-only configs leave it out, as mmpretrain's third-party
# weight configs do (efficientnet-b0_3rdparty_8xb32_in1k.py).
FIELD = r'[a-z0-9][a-z0-9.-]*'
NAME = re.compile(
    rf'^(?P<algorithm>{FIELD})_(?P<backbone>{FIELD})_'
    r'(?P<gpus>\d+)xb(?P<batch>\d+)'
    r'(?:-(?P<schedule>(?:[a-z0-9.-]+-)?(?P<count>\d+)(?P<unit>it|k|e)))?'
    rf'_(?P<dataset>{FIELD})\.py$'
)
# Folders whose README must name every config in it: the recipe folders and the
# documented bases.
README_FOLDERS = sorted(
    [
        d
        for d in glob.glob(osp.join(CONFIGS, '*'))
        if osp.isdir(d) and osp.basename(d) != '_base_'
    ]
    + [
        osp.join(CONFIGS, '_base_', 'datasets'),
        osp.join(CONFIGS, '_base_', 'schedules'),
    ]
)
DIST_SCRIPTS = ('dist_train.sh', 'dist_test.sh', 'dist_benchmark.sh')


def rel(path):
    return osp.relpath(path, REPO)


def recipe_configs():
    return sorted(
        p
        for p in glob.glob(osp.join(CONFIGS, '*', '*.py'))
        if osp.basename(osp.dirname(p)) != '_base_'
    )


def all_configs():
    return sorted(glob.glob(osp.join(CONFIGS, '**', '*.py'), recursive=True))


def _find(tree, key):
    """The first value of ``key`` anywhere in a nested config."""
    if isinstance(tree, dict):
        if key in tree:
            return tree[key]
        tree = list(tree.values())
    if isinstance(tree, (list, tuple)):
        for value in tree:
            found = _find(value, key)
            if found is not None:
                return found
    return None


# ---------------------------------------------------------------- config names
@pytest.mark.parametrize('path', recipe_configs(), ids=osp.basename)
def test_config_name_follows_the_pattern_and_states_its_batch_and_schedule(
    path,
):
    name = osp.basename(path)
    m = NAME.match(name)
    assert m, (
        f'{rel(path)}: expected '
        f'{{algorithm}}_{{backbone}}_{{gpus}}xb{{batch}}-{{schedule}}_'
        f'{{dataset}}.py '
        '(lower case; "-" inside a field), e.g. '
        'pspnet_r18-d8_4xb2-80k_cityscapes-512x1024.py'
    )
    cfg = Config.fromfile(path, import_custom_modules=False).to_dict()
    batch = int(m['batch'])
    if m['schedule'] is None:
        assert (
            cfg.get('train_cfg') is None
            and cfg.get('train_dataloader') is None
        ), f'{name}: only evaluation-only configs may leave out the schedule'
        assert cfg['test_dataloader']['batch_size'] == batch, (
            f'{name}: the test batch is not {batch}'
        )
        return
    assert cfg['train_dataloader']['batch_size'] == batch, (
        f"{name}: names batch {batch}, trains with "
        f"{cfg['train_dataloader']['batch_size']}"
    )
    count, unit, max_iters = (
        int(m['count']),
        m['unit'],
        cfg['train_cfg']['max_iters'],
    )
    if unit == 'e':  # epochs of the training set, counted in iterations
        n_train = _find(cfg['train_dataloader']['dataset'], 'n_train')
        assert n_train, (
            f'{name}: an epoch schedule needs the training set size '
            '(n_train) to check'
        )
        expected = count * math.ceil(n_train / batch)
    else:
        expected = count * (1000 if unit == 'k' else 1)
    assert max_iters == expected, (
        f'{name}: names {m["schedule"]} ({expected} iterations), runs '
        f'{max_iters}'
    )


def test_the_pattern_rejects_names_that_break_it():
    for bad in (
        'stage_common.py',
        'efficientnet-lite0_timm_in1k.py',
        'Stage1_unirestore-tiny_1xb4-20it_embedded.py',
        'resnet18-cifar_clean-embedded_for-frozen-recognizer_1xb32-1k.py',
        'stage3_unirestore-tiny_new-prompt-vit_1xb4-20it_embedded.py',
        'stage1_unirestore_1x4-20it_embedded.py',
        'stage1_unirestore-tiny_1xb4-20_embedded.py',
    ):
        assert NAME.match(bad) is None, bad
    for good in (
        'pspnet_r18-d8_4xb2-80k_cityscapes-512x1024.py',
        'stage1_unirestore-tiny_1xb4-20it_embedded.py',
        'cls_efficientnet-lite0-timm_1xb32_in1k.py',
        'cls-unseen_mobilenet-v2-w0.5_1xb64-500it_clean-embedded.py',
    ):
        assert NAME.match(good), good


# ------------------------------------------------------------- loading configs
@pytest.mark.parametrize('path', all_configs(), ids=rel)
def test_every_config_loads(path):
    cfg = Config.fromfile(path)
    assert cfg.filename == path


# --------------------------------------------------------------------- READMEs
@pytest.mark.parametrize('folder', README_FOLDERS, ids=rel)
def test_each_config_folder_has_a_readme_naming_every_config(folder):
    readme = osp.join(folder, 'README.md')
    assert osp.isfile(readme), f'{rel(folder)} has no README.md'
    text = open(readme, encoding='utf-8').read()
    missing = [
        osp.basename(p)
        for p in sorted(glob.glob(osp.join(folder, '*.py')))
        if osp.basename(p) not in text
    ]
    assert not missing, f'{rel(readme)} does not mention {missing}'


def config_readmes():
    return sorted(
        glob.glob(osp.join(CONFIGS, '**', 'README.md'), recursive=True)
    )


@pytest.mark.parametrize('readme', config_readmes(), ids=rel)
def test_readme_links_and_config_names_exist(readme):
    """Relative links resolve; a backticked ``.py`` of this repository (a bare
    name, or a path starting with ``../``, ``./``, ``configs/`` or ``tools/``)
    names a file that exists (library paths such as ``mmseg::...`` or
    ``resnet/resnet18_8xb16_cifar10.py``, and patterns, are not checked)."""
    here = osp.dirname(readme)
    text = open(readme, encoding='utf-8').read()
    known = {
        osp.basename(p)
        for p in glob.glob(
            osp.join(REPO, 'configs', '**', '*.py'), recursive=True
        )
    }
    known |= {
        osp.basename(p)
        for p in glob.glob(
            osp.join(REPO, 'tools', '**', '*.py'), recursive=True
        )
    }
    bad = []
    for target in re.findall(r'\]\(([^)\s]+)\)', text):
        if re.match(r'[a-z]+://', target) or target.startswith('#'):
            continue
        if not osp.exists(osp.join(here, target.split('#')[0])):
            bad.append(target)
    for token in re.findall(r'`([^`\s]+\.py)`', text):
        # library paths, patterns
        if '::' in token or '{' in token or '*' in token:
            continue
        if '/' not in token:
            if token not in known:
                bad.append(token)
        elif token.startswith(('../', './')):
            if not osp.exists(osp.join(here, token)):
                bad.append(token)
        elif token.startswith(('configs/', 'tools/')) and not osp.exists(
            osp.join(REPO, token)
        ):
            bad.append(token)
    assert not bad, f'{rel(readme)} names files that do not exist: {bad}'


def result_tables(text):
    """``(sources, rows)`` for each table that follows a ``Source: `docs/...```
    line (before the next blank line pair or heading): its cited files and its
    body rows."""
    out = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if not line.startswith('Source: '):
            continue
        sources = re.findall(r'`(docs/[^`]+)`', line)
        j = i + 1
        while (
            j < len(lines)
            and not lines[j].startswith('|')
            and not lines[j].startswith('#')
        ):
            sources += re.findall(r'`(docs/[^`]+)`', lines[j])
            j += 1
        rows = []
        while j < len(lines) and lines[j].startswith('|'):
            rows.append(lines[j])
            j += 1
        out.append((sources, rows[2:]))
    return out


@pytest.mark.parametrize('readme', config_readmes(), ids=rel)
def test_every_result_in_a_readme_table_is_in_the_docs_file_it_cites(readme):
    text = open(readme, encoding='utf-8').read()
    for sources, rows in result_tables(text):
        assert sources, f'{rel(readme)}: a "Source:" line names no docs/ file'
        docs = ''
        for src in sources:
            assert osp.isfile(osp.join(REPO, src)), (
                f'{rel(readme)} cites {src}, which does not exist'
            )
            docs += open(osp.join(REPO, src), encoding='utf-8').read()
        assert rows, (
            f'{rel(readme)}: no table after the "Source:" line naming '
            f'{sources}'
        )
        for row in rows:
            # config names may hold digits and dots (w0.5)
            values = re.sub(r'`[^`]*`', '', row)
            for number in re.findall(r'(?<![\w.])\d+\.\d+(?![\w.])', values):
                assert number in docs, (
                    f'{rel(readme)}: {number} (row {row[:60]}...) is not in '
                    f'{sources}'
                )


def test_readmes_with_results_cite_docs_and_the_sd_turbo_recipes_are_not_scored():
    demo = open(
        osp.join(CONFIGS, 'demo', 'README.md'), encoding='utf-8'
    ).read()
    assert len(result_tables(demo)) >= 2
    uni = open(
        osp.join(CONFIGS, 'unirestore', 'README.md'), encoding='utf-8'
    ).read()
    for path in glob.glob(osp.join(CONFIGS, 'unirestore', '*sd-turbo*.py')):
        row = next(
            line
            for line in uni.splitlines()
            if line.startswith(f'| `{osp.basename(path)}`')
            and 'not trained here' in line
        )
        assert 'no SD-Turbo weights/no GPU' in row


# ------------------------------------------------------- distributed launchers
@pytest.mark.parametrize('script', DIST_SCRIPTS)
def test_dist_scripts_run_the_python_of_the_environment(script):
    path = osp.join(REPO, 'tools', script)
    assert osp.isfile(path), f'tools/{script} is missing'
    text = open(path, encoding='utf-8').read()
    assert '"${PYTHON:-python}" -m torch.distributed.run' in text
    bare = [
        line for line in text.splitlines() if re.match(r'\s*python3?\s', line)
    ]
    assert not bare, f'tools/{script} calls a bare python: {bare}'


def _fake_python(tmp_path):
    log = tmp_path / 'argv.txt'
    fake = tmp_path / 'fake-python'
    fake.write_text(f'#!/usr/bin/env bash\nprintf "%s\\n" "$@" > {log}\n')
    fake.chmod(0o755)
    return str(fake), log


@pytest.mark.parametrize(
    'script,args,tool',
    [
        ('dist_train.sh', ['c.py', '2'], ['train.py', 'c.py']),
        ('dist_test.sh', ['c.py', 'w.pth', '2'], ['test.py', 'c.py', 'w.pth']),
        ('dist_benchmark.sh', ['2'], ['benchmark.py']),
    ],
)
def test_dist_scripts_pass_everything_to_torchrun_with_the_pytorch_launcher(
    tmp_path, script, args, tool
):
    fake, log = _fake_python(tmp_path)
    proc = subprocess.run(
        ['bash', osp.join(REPO, 'tools', script), *args, '--foo', 'a b'],
        capture_output=True,
        text=True,
        env=dict(subprocess_env(), PYTHON=fake, PORT='29123', NNODES='1'),
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    argv = log.read_text().splitlines()
    assert argv == [
        '-m',
        'torch.distributed.run',
        '--nnodes=1',
        '--node_rank=0',
        '--master_addr=127.0.0.1',
        '--nproc_per_node=2',
        '--master_port=29123',
        osp.join(REPO, 'tools', tool[0]),
        *tool[1:],
        '--launcher',
        'pytorch',
        '--foo',
        'a b',
    ]


@pytest.mark.parametrize(
    'script,args',
    [
        ('dist_train.sh', ['c.py']),
        ('dist_test.sh', ['c.py', 'w.pth']),
        ('dist_benchmark.sh', []),
    ],
)
def test_dist_scripts_refuse_missing_arguments(tmp_path, script, args):
    fake, log = _fake_python(tmp_path)
    proc = subprocess.run(
        ['bash', osp.join(REPO, 'tools', script), *args],
        capture_output=True,
        text=True,
        env=dict(subprocess_env(), PYTHON=fake),
        timeout=60,
    )
    assert proc.returncode == 2 and proc.stderr.startswith(
        'usage: bash tools/' + script
    ), proc.stderr
    assert not log.exists()


def test_dist_test_on_two_cpu_processes(tmp_path):
    """tools/dist_test.sh end to end: torchrun, two gloo processes, the test
    set sharded, metrics collected."""
    from integration_utils import write_images
    from mmengine.registry import init_default_scope

    from unirestore_mm.registry import MODELS

    write_images(str(tmp_path / 'data' / 'gt'), n=4)
    cfg_path = tmp_path / 'cfg.py'
    base = osp.join(
        CONFIGS, 'unirestore', 'stage1_unirestore-tiny_1xb4-20it_embedded.py'
    )
    cfg_path.write_text(f"""
_base_ = [{base!r}]
test_dataloader = dict(_delete_=True, batch_size=2, num_workers=0, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='unirestore_mm.PairedImageDataset', data_root={str(tmp_path / 'data')!r},
                 data_prefix=dict(img_path=None, gt_path='gt'),
                 pipeline=[dict(type='unirestore_mm.LoadPairedImages'),
                           dict(type='unirestore_mm.RandomDegradation', resize_short_side=None, severity=3, seed=0),
                           dict(type='unirestore_mm.PackRestorationInputs', sample_type='base')]))
""")  # noqa: E501
    cfg = Config.fromfile(str(cfg_path))
    init_default_scope('unirestore_mm')
    torch.manual_seed(0)
    ckpt = tmp_path / 'weights.pth'
    torch.save({'state_dict': MODELS.build(cfg.model).state_dict()}, ckpt)
    proc = subprocess.run(
        [
            'bash',
            'tools/dist_test.sh',
            str(cfg_path),
            str(ckpt),
            '2',
            '--work-dir',
            str(tmp_path / 'work'),
        ],
        cwd=REPO,
        env=dict(subprocess_env(), PORT='29531'),
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-5000:]
    assert (
        "dist_cfg=dict(backend='gloo')" in out
        and 'Distributed training: True' in out
    ), out[-3000:]
    # MMEngine's name for the world size, CPU processes included
    assert 'GPU number: 2' in out, out[-3000:]
    # 4 images, batch 2, two processes: one batch each (the test set sharded),
    # the metric over all 4
    assert re.search(r'Iter\(test\) \[1/1\]\s+PSNR: \d+\.\d+\s+SSIM: ', out), (
        out[-3000:]
    )


# ------------------------------------------- the authors' checkpoint converter
CONVERTER = osp.join(
    REPO, 'tools', 'model_converters', 'unirestore_author_to_unirestore_mm.py'
)


def converter():
    spec = importlib.util.spec_from_file_location(
        'unirestore_author_to_unirestore_mm', CONVERTER
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def authors_file(path, state):
    """A Lightning-style file of the authors' release holding ``state`` (this
    package's keys) under their names: the Controller, the skip adapters and
    the task prompts."""
    ours_to_theirs = [
        ('controller.mid_block.', 'controller.middle_block.'),
        ('controller.level_outs.', 'controller.fea_tran.'),
        ('controller.', 'controller.'),
        ('skip_adapters.adapters.', 'base_model.csc_editors.'),
        ('prompts.prompts.', 'ae.vae.decoder.task_prompts.'),
    ]
    theirs = {}
    for key, value in state.items():
        for ours, their in ours_to_theirs:
            if key.startswith(ours):
                theirs['model.' + their + key[len(ours) :]] = value.clone()
                break
    torch.save({'state_dict': theirs, 'epoch': 3, 'global_step': 100}, path)
    return sorted(
        k
        for k in state
        if k.startswith(('controller.', 'skip_adapters.', 'prompts.'))
    )


def test_converter_tool_writes_the_restorer_weights(tmp_path):
    from safetensors.torch import load_file

    from unirestore_mm.models import UniRestore

    torch.manual_seed(0)
    state = UniRestore(preset='tiny').state_dict()
    keys = authors_file(tmp_path / 'stage1.ckpt', state)
    assert any('mid_block' in k for k in keys) and any(
        k.startswith('skip_adapters.') for k in keys
    )
    out = tmp_path / 'out' / 'unirestore.safetensors'
    proc = subprocess.run(
        [
            sys.executable,
            CONVERTER,
            str(tmp_path / 'stage1.ckpt'),
            '-o',
            str(out),
        ],
        cwd=str(tmp_path),
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    converted = load_file(str(out))
    assert sorted(converted) == keys
    for k in keys:
        assert torch.equal(converted[k], state[k]), k


def _run_converter(argv, capsys):
    code = converter().main(argv)
    err = capsys.readouterr().err
    return code, err


def test_converter_tool_user_errors_are_one_line_and_exit_2(tmp_path, capsys):
    from unirestore_mm.models import UniRestore

    prog = 'unirestore_author_to_unirestore_mm.py: error: '
    ckpt = tmp_path / 'stage1.ckpt'
    authors_file(ckpt, UniRestore(preset='tiny').state_dict())
    out = tmp_path / 'w.safetensors'
    cases = [
        ([str(tmp_path / 'missing.ckpt'), '-o', str(out)], 'no such file'),
        (
            [str(ckpt), '-o', str(tmp_path / 'w.pth')],
            'expected a path ending in .safetensors',
        ),
        ([str(ckpt)], 'required: -o/--out'),
        (
            [str(ckpt), '-o', str(out), '--check-preset', 'tiny'],
            'restorer weights missing',
        ),
        (
            [str(ckpt), '-o', str(out), '--check-preset', 'no-such-preset'],
            'no-such-preset',
        ),
    ]
    other = tmp_path / 'other.ckpt'
    torch.save(
        {'state_dict': {'model.classifier.weight': torch.zeros(2)}}, other
    )
    cases.append(
        ([str(other), '-o', str(out)], "holds none of UniRestore's modules")
    )
    for argv, expected in cases:
        code, err = _run_converter(argv, capsys)
        assert code == 2, (argv, err)
        assert (
            err.startswith(prog) and err.count('\n') == 1 and expected in err
        ), (argv, err)
        assert not out.exists(), argv
