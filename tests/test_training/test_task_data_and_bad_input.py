"""Multi-task batches with sampling weights; bad input fails before training
with a clear message."""

import pytest
import torch
from mmengine.runner import Runner
from torch.utils.data import SequentialSampler

from unirestore_mm.engine import MultiTaskDataset, TaskBatchSampler
from unirestore_mm.models import TaskRestorer

from .helpers import (
    TINY_CLS,
    TINY_SEG,
    cls_dataset,
    ir_dataset,
    save_recognizer,
    write_task_data,
)


class _Items:
    def __init__(self, n, name):
        self.n, self.name, self.metainfo = n, name, dict(classes=('a', 'b'))

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        from mmengine.structures import BaseDataElement

        return dict(
            inputs=torch.zeros(1),
            data_samples=BaseDataElement(metainfo=dict(i=i, src=self.name)),
        )

    def get_data_info(self, i):
        return dict(i=i)


def test_task_batches_follow_the_sampling_weights():
    ds = MultiTaskDataset(
        dict(
            ir=_Items(100, 'ir'), cls=_Items(400, 'cls'), seg=_Items(10, 'seg')
        ),
        weights=dict(ir=1.0, cls=0.2, seg=10.0),
    )
    sampler = TaskBatchSampler(SequentialSampler(ds), batch_size=3, seed=0)
    probs = sampler.task_probabilities()
    assert probs == pytest.approx(
        dict(ir=100 / 280, cls=80 / 280, seg=100 / 280)
    )
    it = iter(sampler)
    counts = dict(ir=0, cls=0, seg=0)
    first = [next(it) for _ in range(2000)]
    for batch in first:
        tasks = {ds.locate(i)[0] for i in batch}
        assert len(tasks) == 1  # one task per batch
        counts[tasks.pop()] += 1
    for t, p in probs.items():
        assert counts[t] / 2000 == pytest.approx(p, abs=0.04)
    assert ds[first[0][0]]['data_samples'].task == ds.locate(first[0][0])[0]
    # the same seed gives the same stream (what --resume replays)
    again = iter(TaskBatchSampler(SequentialSampler(ds), batch_size=3, seed=0))
    assert [next(again) for _ in range(50)] == first[:50]
    # two processes: the same task sequence, different samples (within one pass
    # over the data)
    ds = MultiTaskDataset(dict(ir=_Items(200, 'ir'), seg=_Items(200, 'seg')))
    s0 = TaskBatchSampler(SequentialSampler(ds), batch_size=3, seed=0)
    s1 = TaskBatchSampler(SequentialSampler(ds), batch_size=3, seed=0)
    s0.rank, s0.world_size, s1.rank, s1.world_size = 0, 2, 1, 2
    b0, b1 = iter(s0), iter(s1)
    for _ in range(30):
        x, y = next(b0), next(b1)
        assert ds.locate(x[0])[0] == ds.locate(y[0])[0] and not set(x) & set(y)


def test_multitask_dataset_errors():
    with pytest.raises(
        ValueError, match='weights for tasks without a dataset'
    ):
        MultiTaskDataset(dict(ir=_Items(3, 'ir')), weights=dict(cls=1.0))
    with pytest.raises(ValueError, match='are empty'):
        MultiTaskDataset(dict(ir=_Items(0, 'ir')))
    with pytest.raises(TypeError, match='MultiTaskDataset'):
        TaskBatchSampler(SequentialSampler(_Items(3, 'x')), batch_size=2)


@pytest.fixture(scope='module')
def ckpts(tmp_path_factory):
    d = tmp_path_factory.mktemp('rec')
    return dict(
        cls=save_recognizer(TINY_CLS, str(d / 'cls.pth')),
        seg=save_recognizer(TINY_SEG, str(d / 'seg.pth')),
    )


def test_bad_task_and_recognizer_specs_fail_at_build(ckpts):
    rec = dict(cls=dict(config=TINY_CLS, checkpoint=ckpts['cls']))
    with pytest.raises(ValueError, match="task 'det' has no loss"):
        TaskRestorer(tasks=dict(det=dict(weight=1.0)))
    with pytest.raises(ValueError, match='needs its trained weights'):
        TaskRestorer(
            recognizers=dict(cls=dict(config=TINY_CLS)),
            tasks=dict(cls=dict(type='cls', recognizer='cls')),
        )
    with pytest.raises(ValueError, match='needs recognizer='):
        TaskRestorer(
            recognizers=rec, tasks=dict(cls=dict(type='cls', recognizer='r50'))
        )
    with pytest.raises(ValueError, match='is a seg task but recognizer'):
        TaskRestorer(
            recognizers=rec, tasks=dict(seg=dict(type='seg', recognizer='cls'))
        )
    with pytest.raises(ValueError, match="no 'det' prompt"):
        TaskRestorer(
            recognizers=rec, tasks=dict(det=dict(type='cls', recognizer='cls'))
        )
    with pytest.raises(ValueError, match='used by no task'):
        TaskRestorer(recognizers=rec, tasks=dict(ir=dict(type='ir')))
    with pytest.raises(ValueError, match='nothing to train'):
        TaskRestorer(
            tasks=dict(ir=dict(type='ir')),
            trainable=['prompts'],
            trainable_prompts=[],
        )
    model = TaskRestorer(
        recognizers=rec, tasks=dict(cls=dict(type='cls', recognizer='cls'))
    )
    with pytest.raises(ValueError, match="task 'seg'.*no loss"):
        model.check_dataset('seg', None)
    with pytest.raises(ValueError, match='the dataset has 3 classes'):
        model.check_dataset('cls', dict(classes=('a', 'b', 'c')))
    with pytest.raises(ValueError, match='differ from those recognizer'):
        model.check_dataset(
            'cls', dict(classes=('class0', 'class1', 'x', 'class3'))
        )
    model.check_dataset(
        'cls', dict(classes=('class0', 'class1', 'class2', 'class3'))
    )


def test_multitask_data_for_a_task_without_loss_stops_before_training(
    tmp_path, ckpts
):
    from .helpers import CONFIGS, load_cfg, tiny_runtime

    data = write_task_data(str(tmp_path / 'data'))
    cfg = load_cfg(
        f'{CONFIGS}/unirestore/stage2_unirestore-tiny_1xb4-20it_embedded-'
        '3tasks.py'
    )
    cfg.model.recognizers = dict(
        cls=dict(config=TINY_CLS, checkpoint=ckpts['cls'])
    )
    cfg.model.tasks = dict(
        ir=dict(type='ir'), cls=dict(type='cls', recognizer='cls')
    )
    cfg.train_dataloader.dataset.datasets = dict(
        ir=ir_dataset(data), cls=cls_dataset(data), det=cls_dataset(data)
    )
    cfg.train_dataloader.dataset.weights = dict(ir=1.0, cls=1.0, det=1.0)
    runner = Runner.from_cfg(tiny_runtime(cfg, tmp_path / 'work', 2))
    with pytest.raises(
        ValueError, match="task 'det', but the model has no loss"
    ):
        runner.train()
    assert runner.iter == 0


def test_task_restorer_joint_mode_trains_the_recognizer_too(ckpts):
    from mmpretrain.structures import DataSample

    from unirestore_mm.engine import trained_keys

    model = TaskRestorer(
        recognizers=dict(
            cls=dict(config=TINY_CLS, checkpoint=ckpts['cls'], frozen=False)
        ),
        tasks=dict(
            cls=dict(type='cls', recognizer='cls', weight=0.5, ir_weight=2.0)
        ),
    )
    model.train()
    assert model.recognizers['cls'].model.training

    def sample(label):
        s = DataSample().set_gt_label(label)
        s.set_metainfo(dict(img_shape=(32, 32)))
        return s

    samples = [sample(i) for i in range(2)]
    losses = model.compute_losses(
        torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32), samples
    )
    assert set(losses) == {'loss_cls_ce', 'loss_cls_ir'}
    sum(losses.values()).backward()
    assert model.recognizers['cls'].model.head.fc.weight.grad is not None
    keys = trained_keys(model)
    assert any(k.endswith('bn1.running_mean') for k in keys) and any(
        '.tfa.' in k for k in keys
    )
    with pytest.raises(ValueError, match='outside the recognizer'):
        bad = [sample(7)]
        model.compute_losses(
            torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32), bad
        )


def test_authors_latent_path_trains_the_same_parts():
    model = TaskRestorer(tasks=dict(ir=dict(type='ir')), latent='authors')
    model.train()
    losses = model.compute_losses(
        torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32), None
    )
    losses['loss_ir'].backward()
    r = model.restorer
    assert (
        all(p.grad is not None for p in r.tfa.parameters())
        and r.prompts['ir'].grad is not None
    )
    assert all(
        p.grad is None
        for m in (r.cfrm, r.controller, r.skip_adapters)
        for p in m.parameters()
    )
    with pytest.raises(ValueError, match="latent must be 'sample'"):
        TaskRestorer(tasks=dict(ir=dict(type='ir')), latent='x')
