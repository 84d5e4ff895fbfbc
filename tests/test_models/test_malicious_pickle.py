"""A checkpoint whose unpickling would run code is refused by every loader of
the package (issue 12, item 7).

The payload is a realistic checkpoint (the right weights) with one extra object
whose ``__reduce__`` calls ``builtins.exec``; the code it would run writes a
marker file (harmless stand-in for ``os.system``).  A control shows each
payload file really runs the code when unpickled without restrictions.  Then
every loader gets it under the name and format it expects and must (1) raise an
error naming the file, (2) not create the marker.  The same loaders still read
the legitimate file of their kind.
"""

import os
import os.path as osp
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch

from unirestore_mm.models import UniRestore

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(REPO, 'tests'))
# torch.save's zip format, its legacy format, a bare pickle
FORMATS = ('zip', 'legacy', 'raw')


class RunsCode:
    """Unpickling this object runs ``exec(code)``, and the code writes
    ``marker``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').write('code ran')",)


def write_payload(path, content, marker, fmt='zip'):
    """``content`` (a dict) plus a code-running object, saved as ``fmt``."""
    # first, so every format reaches it before anything else
    obj = {'extra': {'note': RunsCode(marker)}}
    obj.update(content)
    path = str(path)
    if fmt == 'zip':
        torch.save(obj, path)
    elif fmt == 'legacy':
        torch.save(obj, path, _use_new_zipfile_serialization=False)
    else:
        with open(path, 'wb') as f:
            # torch's own protocol: the refusal is about the global
            pickle.dump(obj, f, protocol=2)
    return path


@pytest.fixture
def marker(tmp_path):
    m = tmp_path / 'MARKER_code_ran'
    yield m
    if m.exists():
        m.unlink()


def refused(call, path, marker, error=ValueError):
    """``call()`` raises ``error`` naming ``path``, and the payload's code did
    not run."""
    with pytest.raises(error) as info:
        call()
    assert osp.basename(str(path)) in str(info.value), str(info.value)
    assert not marker.exists(), (
        'the payload ran: the loader unpickled arbitrary code'
    )
    return str(info.value)


@pytest.fixture(scope='module')
def tiny():
    torch.manual_seed(0)
    return UniRestore(preset='tiny').eval()


def snapshot(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# -- the payload is live ------------------------------------------------------
@pytest.mark.parametrize('fmt', FORMATS)
def test_control_the_payload_runs_code_when_unpickled_unrestricted(
    tmp_path, marker, fmt
):
    path = write_payload(
        tmp_path / 'p.pth', {'state_dict': {'w': torch.zeros(2)}}, marker, fmt
    )
    if fmt == 'raw':
        with open(path, 'rb') as f:
            pickle.load(f)
    else:
        torch.load(path, weights_only=False)
    assert marker.read_text() == 'code ran'


# -- restorer weights ---------------------------------------------------------
@pytest.mark.parametrize('fmt', FORMATS)
def test_restorer_weights_pth(tmp_path, marker, tiny, fmt):
    from unirestore_mm.models.restorer_model import (
        build_restorer,
        load_restorer_weights,
    )

    before = snapshot(tiny)
    bad = write_payload(
        tmp_path / 'restorer.pth',
        {'state_dict': tiny.state_dict()},
        marker,
        fmt,
    )
    msg = refused(lambda: tiny.load_weights(bad), bad, marker)
    assert 'weights_only=True) refuses' in msg and 'GLOBAL exec' in msg
    refused(lambda: load_restorer_weights(tiny, bad), bad, marker)
    refused(
        lambda: build_restorer(dict(preset='tiny'), checkpoint=bad),
        bad,
        marker,
    )
    assert same(snapshot(tiny), before)  # nothing was loaded
    good = str(tmp_path / 'good.pth')
    torch.save(
        {
            'state_dict': {
                'restorer.' + k: v for k, v in tiny.state_dict().items()
            }
        },
        good,
    )
    tiny.load_weights(good)
    assert same(snapshot(tiny), before)


def test_restorer_folder_with_a_pickle_named_safetensors(
    tmp_path, marker, tiny
):
    from unirestore_mm.models.unirestore import WEIGHTS_NAME

    tiny.save_pretrained(str(tmp_path / 'r'))
    # legitimate
    assert same(
        snapshot(UniRestore.from_pretrained(str(tmp_path / 'r'))),
        snapshot(tiny),
    )
    bad = write_payload(
        tmp_path / 'r' / WEIGHTS_NAME,
        {'state_dict': tiny.state_dict()},
        marker,
    )
    msg = refused(
        lambda: UniRestore.from_pretrained(str(tmp_path / 'r')), bad, marker
    )
    assert 'safetensors' in msg
    refused(lambda: tiny.load_weights(str(tmp_path / 'r')), bad, marker)


# -- training checkpoints -----------------------------------------------------
@pytest.mark.parametrize('fmt', FORMATS)
def test_training_checkpoint(tmp_path, marker, fmt):
    from unirestore_mm.engine.checkpoint import (
        atomic_torch_save,
        load_training_checkpoint,
    )

    content = {
        'meta': {'iter': 2},
        'state_dict': {'cfrm.w': torch.ones(3)},
        'optimizer': {'state': {}},
    }
    good = str(tmp_path / 'iter_1.pth')
    atomic_torch_save(content, good)
    assert torch.equal(
        load_training_checkpoint(good)['state_dict']['cfrm.w'], torch.ones(3)
    )
    bad = write_payload(tmp_path / 'iter_2.pth', content, marker, fmt)
    refused(lambda: load_training_checkpoint(bad), bad, marker)


# -- the authors' Lightning checkpoints ---------------------------------------
@pytest.mark.parametrize('fmt', FORMATS)
def test_author_checkpoint_and_its_converter(tmp_path, marker, fmt):
    from test_training.test_author_checkpoint import (
        TINY,
        author_layout,
        lightning_file,
    )

    from unirestore_mm.models.author_checkpoint import (
        load_author_checkpoint,
        main,
    )

    stage1, stage2 = author_layout(**TINY)
    lightning_file(tmp_path / 'stage1.ckpt', stage1, seed=1)
    lightning_file(tmp_path / 'stage2.ckpt', stage2, seed=2)
    assert (
        load_author_checkpoint(
            UniRestore(preset='tiny'),
            [tmp_path / 'stage1.ckpt', tmp_path / 'stage2.ckpt'],
        )['missing']
        == []
    )
    good = torch.load(tmp_path / 'stage2.ckpt', weights_only=True)
    bad = write_payload(tmp_path / 'stage2_bad.ckpt', good, marker, fmt)
    msg = refused(
        lambda: load_author_checkpoint(
            UniRestore(preset='tiny'), [tmp_path / 'stage1.ckpt', bad]
        ),
        bad,
        marker,
    )
    assert '--allow-pickle' in msg  # how to opt in for a file one trusts
    out = tmp_path / 'out.safetensors'
    refused(
        lambda: main([str(tmp_path / 'stage1.ckpt'), bad, '-o', str(out)]),
        bad,
        marker,
    )
    assert not out.exists()


# -- recognizers --------------------------------------------------------------
@pytest.mark.parametrize('fmt', FORMATS)
def test_recognizer_checkpoint(tmp_path, marker, fmt):
    # a required dependency: a broken install must fail, not skip
    import mmpretrain  # noqa: F401
    from test_training.helpers import TINY_CLS, save_recognizer

    from unirestore_mm.models import build_recognizer

    good = save_recognizer(TINY_CLS, str(tmp_path / 'cls.pth'))
    assert build_recognizer(TINY_CLS, checkpoint=good).num_classes == 4
    bad = write_payload(
        tmp_path / 'cls_bad.pth',
        torch.load(good, weights_only=True),
        marker,
        fmt,
    )
    msg = refused(
        lambda: build_recognizer(TINY_CLS, checkpoint=bad), bad, marker
    )
    assert 'allow_pickle=True' in msg


def test_efficientnet_lite_weights(tmp_path, marker):
    timm = pytest.importorskip('timm')
    from unirestore_mm.models.efficientnet_lite import (
        load_efficientnet_lite,
        timm_model_name,
    )

    state = timm.create_model(
        timm_model_name('lite0'), pretrained=False
    ).state_dict()
    good = str(tmp_path / 'efficientnet-lite0.pth')
    torch.save(state, good)
    assert load_efficientnet_lite('lite0', weights=good).training is False
    bad = write_payload(tmp_path / 'efficientnet-lite0-bad.pth', state, marker)
    refused(lambda: load_efficientnet_lite('lite0', weights=bad), bad, marker)


# -- the prior ----------------------------------------------------------------
def test_prior_null_embedding_and_folder(tmp_path, marker, tiny):
    from unirestore_mm.models.prior import (
        NULL_EMBEDDING_FILE,
        DiffusionPrior,
        load_null_embedding,
    )

    emb = torch.randn(1, 77, tiny.prior.unet.config.cross_attention_dim)
    torch.save(emb, tmp_path / 'null.pt')
    assert torch.equal(load_null_embedding(str(tmp_path / 'null.pt')), emb)
    bad = str(tmp_path / 'null_bad.pt')
    with open(bad, 'wb') as f:  # a bare pickle of the tensor and the payload
        pickle.dump((RunsCode(marker), emb), f, protocol=2)
    refused(lambda: load_null_embedding(bad), bad, marker)
    # a diffusers folder: its weights files, and its cached null embedding
    folder = tmp_path / 'prior'
    tiny.prior.vae.save_pretrained(
        str(folder / 'vae'), safe_serialization=False
    )
    tiny.prior.unet.save_pretrained(
        str(folder / 'unet'), safe_serialization=False
    )
    from safetensors.torch import save_file

    save_file(
        {'null_embedding': emb.contiguous()}, str(folder / NULL_EMBEDDING_FILE)
    )
    prior = DiffusionPrior.from_pretrained(str(folder))
    assert torch.equal(prior.null_embedding, emb)
    refused(
        lambda: DiffusionPrior.from_pretrained(
            str(folder), null_embedding=bad
        ),
        bad,
        marker,
    )
    write_payload(
        folder / NULL_EMBEDDING_FILE, {'null_embedding': emb}, marker
    )
    refused(
        lambda: DiffusionPrior.from_pretrained(str(folder)),
        folder / NULL_EMBEDDING_FILE,
        marker,
    )
    save_file(
        {'null_embedding': emb.contiguous()}, str(folder / NULL_EMBEDDING_FILE)
    )
    unet_bin = folder / 'unet' / 'diffusion_pytorch_model.bin'
    write_payload(unet_bin, torch.load(unet_bin, weights_only=True), marker)
    refused(
        lambda: DiffusionPrior.from_pretrained(str(folder)),
        unet_bin,
        marker,
        error=OSError,
    )


# -- MMEngine's own loader (load_from, --resume, tools/test.py --checkpoint)
# ---
@pytest.mark.parametrize('fmt', FORMATS)
def test_mmengine_load_checkpoint_as_the_tools_set_it_up(
    tmp_path, marker, fmt
):
    from mmengine.logging.history_buffer import HistoryBuffer
    from mmengine.runner.checkpoint import _load_checkpoint

    from unirestore_mm.models.checkpoint_io import mmengine_safe_globals

    loss = HistoryBuffer()
    loss.update(0.5)
    content = {
        'meta': {'seed': np.int64(3), 'iter': 2},
        'state_dict': {'w': torch.ones(2)},
        'message_hub': {
            'log_scalars': {'train/loss': loss},
            'runtime_info': {'np': np.arange(3)},
        },
    }
    good = str(tmp_path / 'epoch_1.pth')
    torch.save(content, good)
    bad = write_payload(tmp_path / 'epoch_2.pth', content, marker, fmt)
    # tools/train.py and tools/test.py:
    # torch.serialization.add_safe_globals(mmengine_safe_globals())
    with torch.serialization.safe_globals(mmengine_safe_globals()):
        ckpt = _load_checkpoint(good, map_location='cpu')
        assert (
            ckpt['message_hub']['log_scalars']['train/loss'].current() == 0.5
        )
        with pytest.raises(pickle.UnpicklingError):
            _load_checkpoint(bad, map_location='cpu')
    assert not marker.exists()


# -- the command line ---------------------------------------------------------
def test_restore_tool_refuses_malicious_weights(tmp_path, marker, tiny):
    import cv2

    bad = write_payload(
        tmp_path / 'weights.pth', {'state_dict': tiny.state_dict()}, marker
    )
    cv2.imwrite(str(tmp_path / 'in.png'), np.zeros((8, 8, 3), np.uint8))
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1')
    out = subprocess.run(
        [
            sys.executable,
            osp.join(REPO, 'tools', 'restore.py'),
            str(tmp_path / 'in.png'),
            '--out',
            str(tmp_path / 'out'),
            '--checkpoint',
            bad,
        ],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode != 0
    assert 'weights.pth' in out.stdout + out.stderr
    assert not marker.exists()
    assert not (tmp_path / 'out' / 'in.png').exists()
