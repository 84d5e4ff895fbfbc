"""The unirestore_mm registries: scope, children of MMEngine's, and
`custom_imports` from other libraries' configs."""

import subprocess
import sys

import pytest
from integration_utils import REPO, subprocess_env
from mmengine.registry import MODELS as MMENGINE_MODELS

from unirestore_mm import registry


def test_children_of_mmengine_with_scope():
    for name in (
        'MODELS',
        'TRANSFORMS',
        'DATASETS',
        'METRICS',
        'HOOKS',
        'VISUALIZERS',
    ):
        reg = getattr(registry, name)
        assert reg.scope == 'unirestore_mm'
        assert reg.parent is not None and reg.parent.scope == 'mmengine'
    assert MMENGINE_MODELS.get('unirestore_mm.UniRestoreModel') is not None
    import unirestore_mm.datasets  # noqa: F401
    import unirestore_mm.evaluation  # noqa: F401
    import unirestore_mm.visualization  # noqa: F401

    assert registry.TRANSFORMS.get('RestoreImage') is not None
    assert (
        registry.METRICS.get('PSNR') is not None
        and registry.METRICS.get('SSIM') is not None
    )
    assert registry.VISUALIZERS.get('RestorationVisualizer') is not None
    for name in (
        'UniRestore',
        'UniRestoreModel',
        'PairedDataPreprocessor',
        'RestoredBackbone',
    ):
        assert registry.MODELS.get(name) is not None, name


SCRIPT = r'''
import sys
from mmengine.config import Config
from mmengine.registry import MODELS, TRANSFORMS, METRICS, init_default_scope
cfg = Config.fromfile(sys.argv[1])   # custom_imports runs here, in a fresh interpreter
init_default_scope(cfg.default_scope)
print('BUILT', type(MODELS.build(cfg.model)).__name__)
print('BUILT', type(TRANSFORMS.build(cfg.transform)).__name__)
print('BUILT', type(METRICS.build(cfg.metric)).__name__)
'''


@pytest.mark.parametrize(
    'scope', ['mmseg', 'mmpretrain', 'mmengine', 'unirestore_mm']
)
def test_custom_imports_in_any_default_scope(tmp_path, scope):
    if scope in ('mmseg', 'mmpretrain'):
        pytest.importorskip(scope)
    cfg = tmp_path / 'cfg.py'
    cfg.write_text(f"""
default_scope = {scope!r}
custom_imports = dict(imports=['unirestore_mm'], allow_failed_imports=False)
model = dict(type='unirestore_mm.UniRestoreModel', restorer=dict(type='unirestore_mm.UniRestore', preset='tiny'))
transform = dict(type='unirestore_mm.RestoreImage', task='seg', allow_random_weights=True)
metric = dict(type='unirestore_mm.PSNR')
""")  # noqa: E501
    proc = subprocess.run(
        [sys.executable, '-c', SCRIPT, str(cfg)],
        cwd=REPO,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    built = [
        ln.split()[1]
        for ln in proc.stdout.splitlines()
        if ln.startswith('BUILT ')
    ]
    assert built == ['UniRestoreModel', 'RestoreImage', 'PSNR']
