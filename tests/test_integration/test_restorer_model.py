"""UniRestoreModel and PairedDataPreprocessor: loss / predict / tensor modes,
checkpoints, bad input."""

import pytest
import torch
from mmengine.optim import OptimWrapper
from mmengine.structures import BaseDataElement

from unirestore_mm.models import UniRestore
from unirestore_mm.models.restorer_model import (
    PairedDataPreprocessor,
    UniRestoreModel,
    build_restorer,
    load_restorer_weights,
    pad_batch,
)
from unirestore_mm.registry import MODELS


def make_batch(n=2, size=(32, 32), sizes=None, seed=0):
    g = torch.Generator().manual_seed(seed)
    sizes = sizes or [size] * n
    inputs, samples = [], []
    for h, w in sizes:
        inputs.append(
            torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=g)
        )
        samples.append(
            BaseDataElement(
                gt_img=torch.randint(
                    0, 256, (3, h, w), dtype=torch.uint8, generator=g
                ),
                metainfo=dict(img_shape=(h, w)),
            )
        )
    return dict(inputs=inputs, data_samples=samples)


@pytest.fixture(scope='module')
def model():
    torch.manual_seed(0)
    return MODELS.build(
        dict(
            type='UniRestoreModel',
            restorer=dict(type='UniRestore', preset='tiny'),
        )
    )


def test_preprocessor_converts_pads_and_flips():
    pre = PairedDataPreprocessor(bgr_to_rgb=True, pad_size_divisor=16)
    batch = make_batch(sizes=[(20, 30), (32, 17)])
    bgr0 = batch['inputs'][0].clone()
    out = pre(batch)
    x, samples = out['inputs'], out['data_samples']
    assert x.shape == (2, 3, 32, 32) and x.dtype == torch.float32
    rgb0 = bgr0.flip(0).float() / 255
    torch.testing.assert_close(x[0, :, :20, :30], rgb0, rtol=0, atol=0)
    # the padding reflects the image bottom/right (row 20 + k mirrors row 18 -
    # k, column 30 + k column 28 - k)
    torch.testing.assert_close(
        x[0, :, 20:, :30], rgb0.flip(1)[:, 1:13], rtol=0, atol=0
    )
    torch.testing.assert_close(
        x[0, :, :20, 30:], rgb0.flip(2)[:, :, 1:3], rtol=0, atol=0
    )
    assert (
        samples[0].gt_img.shape == (3, 20, 30)
        and samples[0].gt_img.dtype == torch.float32
    )
    assert samples[1].metainfo['img_shape'] == (32, 17) and samples[
        1
    ].metainfo['pad_shape'] == (32, 32)


def test_preprocessor_rejects_bad_channels():
    pre = PairedDataPreprocessor()
    with pytest.raises(ValueError, match='channels'):
        pre(dict(inputs=[torch.zeros(5, 8, 8, dtype=torch.uint8)]))
    with pytest.raises(ValueError, match='size'):
        pre(
            dict(
                inputs=[torch.zeros(3, 8, 8)],
                data_samples=[BaseDataElement(gt_img=torch.zeros(3, 4, 8))],
            )
        )


def test_pad_batch_reflects():
    a = torch.arange(12.0).view(1, 3, 4)
    out = pad_batch([a], size=(4, 6))
    assert out.shape == (1, 1, 4, 6)
    torch.testing.assert_close(out[0, 0, 3, :4], a[0, 1])  # reflected row


def test_train_step_stage1_updates_only_stage1_parts(model):
    before = {k: v.clone() for k, v in model.restorer.state_dict().items()}
    params = [p for p in model.parameters() if p.requires_grad]
    wrapper = OptimWrapper(torch.optim.AdamW(params, lr=1e-3))
    log = model.train_step(make_batch(), wrapper)
    assert set(log) >= {
        'loss',
        'loss_feat1',
        'loss_feat2',
        'loss_feat3',
        'loss_latent',
    }
    assert torch.isfinite(log['loss'])
    after = model.restorer.state_dict()
    changed = {
        k.split('.')[0] for k in after if not torch.equal(after[k], before[k])
    }
    # all three stage-1 parts learn, nothing else
    assert changed == {'cfrm', 'controller', 'skip_adapters'}


def test_stage2_ir_trains_prompt_and_tfa():
    m = UniRestoreModel(restorer=dict(preset='tiny'), stage=2, task='ir')
    trainable = {
        n.split('.')[1] for n, p in m.named_parameters() if p.requires_grad
    }
    assert trainable == {'tfa', 'prompts'}
    assert [
        t for t, p in m.restorer.prompts.prompts.items() if p.requires_grad
    ] == ['ir']
    losses = m.forward(**m.data_preprocessor(make_batch(), True), mode='loss')
    assert set(losses) == {'loss_ir'}
    losses['loss_ir'].backward()
    # gradients that move the prompt and the TFAs (a zero gradient would be
    # "not None" too); the one exception is the first TFA's filter gate, whose
    # output multiplies the prompt, which starts at zero
    assert m.restorer.prompts.prompts['ir'].grad.abs().sum() > 0
    still = sorted(
        n
        for n, p in m.restorer.tfa.named_parameters()
        if p.grad is None or not p.grad.abs().sum() > 0
    )
    assert all(n.startswith('adapters.0.filter_gate.') for n in still), still


def test_predict_returns_cropped_pred_and_gt(model):
    """pred_img is the restorer's result on the padded batch, cropped to the
    sample's own (top-left) region; gt_img is the clean image as RGB floats in
    [0, 1]."""
    batch = make_batch(sizes=[(20, 28), (32, 32)])
    gts = [s.gt_img.clone() for s in batch['data_samples']]
    out = model.val_step(batch)
    assert len(out) == 2
    assert out[0].pred_img.shape == (3, 20, 28) == out[0].gt_img.shape
    inputs = model.data_preprocessor(make_batch(sizes=[(20, 28), (32, 32)]))[
        'inputs'
    ]
    assert inputs.shape == (2, 3, 32, 32)
    full = model.restorer.restore(
        inputs,
        task=model.task,
        generator=torch.Generator().manual_seed(model.seed),
    )
    assert torch.equal(out[0].pred_img, full[0, :, :20, :28])
    assert torch.equal(out[1].pred_img, full[1])
    for sample, gt in zip(out, gts):
        # BGR uint8 -> RGB
        torch.testing.assert_close(
            sample.gt_img, gt.flip(0).float() / 255, rtol=0, atol=0
        )
    again = model.val_step(make_batch(sizes=[(20, 28), (32, 32)]))
    # seeded noise: repeatable
    assert torch.equal(out[1].pred_img, again[1].pred_img)


def test_predict_noise_follows_the_sample_not_its_batch(model):
    """With sample_idx in the metainfo (every dataset gives it), a test image's
    noise is seeded by its index, as tools/benchmark.py does: the same image
    restores alike alone, first or second in a batch of two."""

    def batch(indices, seed):
        b = make_batch(n=len(indices), seed=seed)
        for s, i in zip(b['data_samples'], indices):
            s.set_metainfo(dict(sample_idx=i))
        return b

    pair = model.val_step(_merge(batch([7], 1), batch([3], 2)))
    alone = model.val_step(batch([3], 2))
    swapped = model.val_step(_merge(batch([3], 2), batch([7], 1)))
    # equal up to float32 rounding of batched against single-image kernels
    # (measured ~1e-7)
    torch.testing.assert_close(
        pair[1].pred_img, alone[0].pred_img, rtol=0, atol=1e-5
    )
    torch.testing.assert_close(
        swapped[0].pred_img, alone[0].pred_img, rtol=0, atol=1e-5
    )
    # and the index matters: the same image as sample 4 gets other noise, far
    # beyond that tolerance
    other = model.val_step(batch([4], 2))
    assert (other[0].pred_img - alone[0].pred_img).abs().max() > 1e-2


def _merge(a, b):
    return dict(
        inputs=a['inputs'] + b['inputs'],
        data_samples=a['data_samples'] + b['data_samples'],
    )


def test_tensor_mode(model):
    y = model(torch.rand(1, 3, 32, 32), mode='tensor')
    assert y.shape == (1, 3, 32, 32)
    with pytest.raises(ValueError, match='mode'):
        model(torch.rand(1, 3, 32, 32), mode='bogus')


def test_checkpoint_round_trip_and_mismatch(tmp_path, model):
    torch.save(
        dict(state_dict=model.state_dict(), meta=dict(iter=1)),
        tmp_path / 'ckpt.pth',
    )
    restored = UniRestoreModel(
        restorer=dict(preset='tiny'), checkpoint=str(tmp_path / 'ckpt.pth')
    )
    for k, v in model.restorer.state_dict().items():
        torch.testing.assert_close(restored.restorer.state_dict()[k], v)
    model.restorer.save_pretrained(str(tmp_path / 'pre'))
    r = build_restorer(str(tmp_path / 'pre'))
    assert isinstance(r, UniRestore)
    other = UniRestore(preset='tiny', tasks=['ir'])
    with pytest.raises(ValueError, match='do not match'):
        load_restorer_weights(other, str(tmp_path / 'ckpt.pth'))
    with pytest.raises(ValueError, match='do not match'):
        UniRestoreModel(
            restorer=dict(preset='tiny', tasks=['ir', 'cls', 'seg', 'det']),
            checkpoint=str(tmp_path / 'ckpt.pth'),
        )


def test_bad_arguments():
    with pytest.raises(ValueError, match='stage'):
        UniRestoreModel(stage=3)
    with pytest.raises(ValueError, match='det'):
        UniRestoreModel(task='det')
    with pytest.raises(FileNotFoundError):
        UniRestoreModel(checkpoint='/nonexistent/ckpt.pth')
    with pytest.raises(FileNotFoundError, match='save_pretrained'):
        build_restorer('/nonexistent/folder')
    with pytest.raises(ValueError, match='num_steps'):
        UniRestoreModel(num_steps=9)


def test_visualizer_draws_input_pred_and_gt(tmp_path, model):
    from unirestore_mm.visualization import RestorationVisualizer

    vis = RestorationVisualizer(name='vis_test', save_dir=str(tmp_path))
    sample = model.val_step(make_batch(n=1, sizes=[(16, 24)]))[0]
    lq = (torch.rand(16, 24, 3) * 255).to(torch.uint8).numpy()
    drawn = vis.add_datasample(
        'sample', lq, sample, out_file=str(tmp_path / 'v.png')
    )
    assert drawn.shape == (16, 72, 3) and (tmp_path / 'v.png').is_file()
