"""Stage 2 and 3 of UniRestore (DESIGN §3): task prompts and TFAs trained
through recognizers.

:class:`TaskRestorer` trains chosen parts of a
:class:`~unirestore_mm.models.UniRestore` (stage 2: the TFAs and the prompts;
stage 3: one new prompt) with one loss per task:

* ``ir``:  ``weight * L1(pred, clean)`` (``weight`` 10 in the paper);
* ``cls``:
  ``weight * CE(classifier(pred), label) + ir_weight * L1(pred_ir, clean)``;
* ``seg``:
  ``weight * CE(segmenter(pred), mask, ignore_index=255) + ir_weight * L1(pred_ir, clean)``;

with ``weight`` 0.1 and ``ir_weight`` 1 for ``cls``/``seg`` in the paper,
``pred`` decoded under the task's prompt and ``pred_ir`` the same latent
decoded under the ``ir`` prompt.  The recognizers are built from any mmpretrain
or mmseg config and checkpoint
(:func:`~unirestore_mm.models.recognizers.build_recognizer`); frozen ones stay
in eval mode (frozen-recognizer training), trainable ones learn along (joint
training, with their own learning rate through
``paramwise_cfg.custom_keys={'recognizers.cls': dict(lr_mult=...)}``).

A batch may hold one task (``TaskBatchSampler``) or several (each sample's
``task`` metainfo, written by ``MultiTaskDataset``; each task's share of the
batch weighs its losses).

Example (stage 2 on the paper's three tasks)::

    model = dict(
        type='unirestore_mm.TaskRestorer',
        restorer=dict(preset='sd-turbo', prior=dict(pretrained='checkpoints/sd-turbo')),
        checkpoint='work_dirs/stage1/unirestore.safetensors',
        trainable='paper',  # or 'release' (prompts only), or a list of parts
        recognizers=dict(
            r50=dict(config='mmpretrain::resnet/resnet50_8xb32_in1k.py', checkpoint='checkpoints/r50.pth',
                     input_size=224),  # the geometry the release feeds its ImageNet classifier
            dlv3p=dict(config='mmseg::deeplabv3plus/...cityscapes-512x1024.py', checkpoint='checkpoints/dlv3p.pth',
                       align_corners=True)),  # the release upsamples its segmenter's logits so
        tasks=dict(ir=dict(type='ir'), cls=dict(type='cls', recognizer='r50'),
                   seg=dict(type='seg', recognizer='dlv3p')))

Stage 3 (a new prompt only): ``new_tasks=['det']``, ``trainable=['prompts']``,
``trainable_prompts=['det']``.
"""  # noqa: E501

import os.path as osp
from typing import Dict, List, Mapping, Optional, Sequence, Union

import torch
from mmengine.structures import BaseDataElement
from torch import nn
from torch.nn import functional as F

from ..registry import MODELS
from .autoencoder import needs_grad
from .losses import ir_loss
from .recognizers import Recognizer, build_recognizer
from .restorer_model import (
    DEFAULT_LATENT,
    RestorerSpec,
    UniRestoreModel,
    load_checkpoint_state,
    load_restorer_weights,
    pad_batch,
    resolve_trainable,
)
from .unirestore import WEIGHTS_NAME

TASK_TYPES = ('ir', 'cls', 'seg')
DEFAULT_WEIGHTS = dict(ir=10.0, cls=0.1, seg=0.1)
PAPER_TASKS = dict(
    ir=dict(type='ir'),
    cls=dict(type='cls', recognizer='cls'),
    seg=dict(type='seg', recognizer='seg'),
)


def _check_task_spec(
    name: str, spec: Mapping, recognizers: Mapping[str, Recognizer]
) -> dict:
    spec = dict(spec)
    kind = spec.get('type')
    if kind not in TASK_TYPES:
        raise ValueError(
            f'task {name!r} has no loss: give it type= one of '
            f'{list(TASK_TYPES)} (ir: L1 to the clean image; cls/seg: CE '
            f'through a recognizer plus the ir L1); got {dict(spec)}'
        )
    spec.setdefault('weight', DEFAULT_WEIGHTS[kind])
    spec.setdefault('prompt', name)
    spec.setdefault('loss', 'ce')
    if spec['loss'] not in ('ce', 'recognizer'):
        raise ValueError(
            f"task {name!r}: loss must be 'ce' (the paper's) or 'recognizer' "
            f"(its own configured losses); got {spec['loss']!r}"
        )
    if kind == 'ir':
        return spec
    spec.setdefault('ir_weight', 1.0)
    spec.setdefault('ir_prompt', 'ir')
    spec.setdefault('ignore_index', 255)
    rec = spec.get('recognizer')
    if rec not in recognizers:
        raise ValueError(
            f'task {name!r} ({kind}) needs recognizer= one of '
            f'{sorted(recognizers)} (the keys of recognizers=dict(...)); got '
            f'{rec!r}'
        )
    if recognizers[rec].kind != kind:
        raise ValueError(
            f'task {name!r} is a {kind} task but recognizer {rec!r} is a '
            f'{"classifier" if recognizers[rec].kind == "cls" else "segmentor"}'
        )
    return spec


@MODELS.register_module()
class TaskRestorer(UniRestoreModel):
    """Multi-task training of UniRestore through recognizers (stage 2), a new
    prompt only (stage 3), or jointly.

    Args:
        restorer, checkpoint: as :class:`UniRestoreModel` (``checkpoint``: the
            stage-1 or stage-2 weights).
        tasks: ``{task: dict(type='ir'|'cls'|'seg', weight=..., recognizer=...,
            ir_weight=..., prompt=..., loss='ce'|'recognizer',
            ignore_index=255)}``; ``prompt`` defaults to the task name.
        recognizers: ``{name: dict(config=..., checkpoint=..., frozen=True,
            allow_pickle=False, input_size=None,
            align_corners=None)}`` (``input_size``/``align_corners``: the
            recognizer's input geometry, see :class:`Recognizer`) or built
            :class:`Recognizer` modules.
        trainable: restorer parts that learn, or a named stage-2 set:
            ``'paper'`` (default; the TFAs and the prompts, as the paper
            describes stage 2) or ``'release'`` (the prompts only, as the
            release's stage-2 code does: it freezes its TFAs); see
            :data:`~.restorer_model.TRAINABLE_SETS`.
        trainable_prompts: only these prompts learn (stage 3: the new one);
            ``None``: all.
        new_tasks: prompts to add before training (``{name: init_from}`` or
            names; zeros by default).
        task: the prompt ``predict``/``tensor`` restore with (evaluation).
        latent: the latent the TFAs decode in training, as
            :class:`UniRestoreModel` (same default, ``'sample'``: the deployed
            path; ``'authors'``: the release's ``pred_z0`` of the noised clean
            latent).
        num_steps, seed, data_preprocessor: as :class:`UniRestoreModel`.
    """

    def __init__(
        self,
        restorer: RestorerSpec = dict(
            type='unirestore_mm.UniRestore', preset='tiny'
        ),
        checkpoint: Optional[str] = None,
        tasks: Optional[Mapping[str, Mapping]] = None,
        recognizers: Optional[Mapping[str, object]] = None,
        trainable: Union[str, Sequence[str]] = 'paper',
        trainable_prompts: Optional[Sequence[str]] = None,
        new_tasks=(),
        task: str = 'ir',
        num_steps: int = 1,
        seed: Optional[int] = 0,
        latent: str = DEFAULT_LATENT,
        data_preprocessor: Optional[dict] = None,
        init_cfg: Optional[dict] = None,
    ):
        trainable = resolve_trainable(trainable)
        if not tasks:
            raise ValueError(
                "TaskRestorer needs tasks=dict(...), e.g. "
                "dict(ir=dict(type='ir'), cls=dict(type='cls', "
                "recognizer='cls'))"
            )
        if isinstance(new_tasks, str):
            new_tasks = [new_tasks]
        new_names = list(new_tasks)
        super().__init__(
            restorer=restorer,
            checkpoint=None,
            stage=2,
            trainable=tuple(trainable),
            task='ir' if task in new_names else task,
            num_steps=num_steps,
            seed=seed,
            latent=latent,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg,
        )
        # -- new prompts (stage 3): those the checkpoint already has (a resumed
        # or chained stage 3) are added before loading it, the others after, as
        # zeros or copies --
        items = (
            new_tasks.items()
            if isinstance(new_tasks, Mapping)
            else [(n, None) for n in new_tasks]
        )
        pending = [(n, f) for n, f in items if n not in self.restorer.prompts]
        if checkpoint:
            keys = (
                set(load_checkpoint_state(checkpoint))
                if not osp.isdir(checkpoint)
                else set(
                    load_checkpoint_state(osp.join(checkpoint, WEIGHTS_NAME))
                )
            )
            saved = [
                (n, f)
                for n, f in pending
                if any(k.endswith('prompts.prompts.' + n) for k in keys)
            ]
            for name, _ in saved:
                self.restorer.add_task(name)
            pending = [p for p in pending if p not in saved]
            load_restorer_weights(self.restorer, checkpoint)
        for name, init_from in pending:
            self.restorer.add_task(name, init_from=init_from)
        self.restorer.prompts[task]
        self.task = task
        # -- recognizers --
        self.recognizers = nn.ModuleDict()
        for name, spec in (recognizers or {}).items():
            if isinstance(spec, Recognizer):
                self.recognizers[name] = spec
                continue
            spec = dict(spec)
            if 'config' not in spec:
                raise ValueError(
                    f"recognizer {name!r} needs config= (an mmpretrain/mmseg "
                    "config file or model dict) "
                    'and checkpoint='
                )
            self.recognizers[name] = build_recognizer(
                spec.pop('config'),
                checkpoint=spec.pop('checkpoint', None),
                **spec,
            )
        # -- tasks and their losses --
        self.task_specs: Dict[str, dict] = {}
        for name, spec in tasks.items():
            spec = _check_task_spec(name, spec, self.recognizers)
            for key in ('prompt', 'ir_prompt'):
                if key in spec and spec[key] not in self.restorer.prompts:
                    raise ValueError(
                        f'task {name!r}: the restorer has no {spec[key]!r} '
                        f'prompt; its prompts are {self.restorer.tasks} (add '
                        f'one with new_tasks=[{spec[key]!r}])'
                    )
            self.task_specs[name] = spec
        unused = set(self.recognizers) - {
            s.get('recognizer') for s in self.task_specs.values()
        }
        if unused:
            raise ValueError(
                f'recognizers {sorted(unused)} are used by no task; tasks: '
                f'{dict(self.task_specs)}'
            )
        # -- what learns --
        self.restorer.set_trainable(
            tuple(trainable), prompts=trainable_prompts
        )
        self.trainable_parts, self.trainable_prompts = (
            tuple(trainable),
            trainable_prompts,
        )
        if not any(p.requires_grad for p in self.parameters()):
            raise ValueError(
                f'nothing to train: trainable={list(trainable)}, '
                f'trainable_prompts={trainable_prompts} '
                'and every recognizer frozen'
            )

    # -- checks ---------------------------------------------------------------
    def check_dataset(self, task: str, metainfo: Optional[Mapping]) -> None:
        """Fail before training when a task has no loss or its data's classes
        do not fit its recognizer."""
        if task not in self.task_specs:
            raise ValueError(
                f'data for task {task!r}, but the model has no loss for it; '
                f'its tasks are {list(self.task_specs)}'
            )
        spec = self.task_specs[task]
        if spec['type'] == 'ir' or not metainfo:
            return
        rec = self.recognizers[spec['recognizer']]
        classes = metainfo.get('classes')
        if classes is None:
            return
        classes = list(classes)
        if rec.num_classes and len(classes) != rec.num_classes:
            raise ValueError(
                f'task {task!r}: the dataset has {len(classes)} classes but '
                f'recognizer {spec["recognizer"]!r} predicts '
                f'{rec.num_classes}; the labels would not match'
            )
        if rec.classes is not None and list(rec.classes) != classes:
            diff = [
                (i, a, b)
                for i, (a, b) in enumerate(zip(classes, rec.classes))
                if a != b
            ][:3]
            raise ValueError(
                f'task {task!r}: the dataset\'s classes differ from those '
                f'recognizer {spec["recognizer"]!r} was trained on (index, '
                f'dataset, recognizer): {diff}'
            )

    # -- nn.Module ------------------------------------------------------------
    def train(self, mode: bool = True):
        super().train(mode)
        self.restorer.prior.eval()
        return self

    # -- losses ---------------------------------------------------------------
    def _task_of(self, sample: BaseDataElement) -> str:
        task = sample.metainfo.get('task') if sample is not None else None
        if task is None:
            if len(self.task_specs) == 1:
                return next(iter(self.task_specs))
            raise ValueError(
                'a sample has no task; with several tasks use '
                'unirestore_mm.MultiTaskDataset, which '
                'marks each sample, or give a single task (tasks: '
                f'{list(self.task_specs)})'
            )
        if task not in self.task_specs:
            raise ValueError(
                f'a sample of task {task!r}, but the model has no loss for '
                f'it; tasks: {list(self.task_specs)}'
            )
        return task

    def compute_losses(
        self,
        inputs: torch.Tensor,
        gt: torch.Tensor,
        data_samples: Optional[List[BaseDataElement]] = None,
    ) -> Dict[str, torch.Tensor]:
        samples = (
            list(data_samples)
            if data_samples is not None
            else [None] * inputs.shape[0]
        )
        groups: Dict[str, List[int]] = {}
        for i, s in enumerate(samples):
            groups.setdefault(self._task_of(s), []).append(i)
        losses: Dict[str, torch.Tensor] = {}
        n = inputs.shape[0]
        for task, idx in groups.items():
            sel = torch.as_tensor(idx, device=inputs.device)
            part = self.task_losses(
                task, inputs[sel], gt[sel], [samples[i] for i in idx]
            )
            share = len(idx) / n
            for k, v in part.items():
                losses[k] = (
                    losses.get(k, 0) + v * share if k.startswith('loss') else v
                )
        return losses

    def task_losses(
        self,
        task: str,
        lq: torch.Tensor,
        gt: torch.Tensor,
        samples: List[Optional[BaseDataElement]],
    ) -> Dict[str, torch.Tensor]:
        """The losses of one task's samples (``lq``/``gt`` padded batches in
        [0, 1])."""
        spec = self.task_specs[task]
        r = self.restorer
        enc = r.encode(lq)
        latent = self.training_latent(enc.latent, gt)
        pred = r.decode(latent, enc.skips, spec['prompt'])
        if spec['type'] == 'ir':
            return {f'loss_{task}': ir_loss(pred, gt, weight=spec['weight'])}
        rec = self.recognizers[spec['recognizer']]
        losses: Dict[str, torch.Tensor] = {}
        if spec['loss'] == 'recognizer':
            own = rec.loss(self._crop(pred, samples), samples)
            for k, v in own.items():
                key = f'{task}.{k}'
                losses[key] = (
                    v * spec['weight']
                    if k.startswith('loss') and torch.is_tensor(v)
                    else v
                )
        elif spec['type'] == 'cls':
            logits = rec.logits(self._crop(pred, samples))
            labels = self._labels(samples, rec, task)
            losses[f'loss_{task}_ce'] = spec['weight'] * F.cross_entropy(
                logits.float(), labels.to(logits.device)
            )
        else:
            logits = rec.logits(pred)
            target = self._masks(
                samples, pred.shape[-2:], spec['ignore_index'], rec, task
            ).to(pred.device)
            losses[f'loss_{task}_ce'] = spec['weight'] * F.cross_entropy(
                logits.float(), target, ignore_index=spec['ignore_index']
            )
        ir_w = spec['ir_weight']
        # the ir decode adds a gradient only if the ir prompt or the TFAs learn
        if ir_w and needs_grad(
            r.tfa, r.prompts[spec['ir_prompt']], *enc.skips, latent
        ):
            pred_ir = r.decode(latent, enc.skips, spec['ir_prompt'])
            losses[f'loss_{task}_ir'] = ir_loss(pred_ir, gt, weight=ir_w)
        return losses

    # -- targets --------------------------------------------------------------
    @staticmethod
    def _crop(pred: torch.Tensor, samples) -> torch.Tensor:
        shapes = {
            tuple(s.metainfo.get('img_shape', pred.shape[-2:]))[:2]
            for s in samples
            if s is not None
        }
        if len(shapes) == 1:
            h, w = shapes.pop()
            return pred[..., :h, :w]
        return pred

    @staticmethod
    def _labels(samples, rec: Recognizer, task: str) -> torch.Tensor:
        labels = []
        for s in samples:
            if s is None or 'gt_label' not in s:
                raise ValueError(
                    f'task {task!r}: every sample needs a gt_label (pack with '
                    "PackRestorationInputs(sample_type='cls'))"
                )
            labels.append(s.gt_label.reshape(-1)[:1])
        labels = torch.cat(labels).long()
        if rec.num_classes and (
            labels.min() < 0 or labels.max() >= rec.num_classes
        ):
            raise ValueError(
                f'task {task!r}: labels {labels.tolist()} outside the '
                f'recognizer\'s {rec.num_classes} classes'
            )
        return labels

    @staticmethod
    def _masks(
        samples, size, ignore_index: int, rec: Recognizer, task: str
    ) -> torch.Tensor:
        masks = []
        for s in samples:
            if s is None or 'gt_sem_seg' not in s:
                raise ValueError(
                    f'task {task!r}: every sample needs a gt_sem_seg (pack '
                    'with '
                    "PackRestorationInputs(sample_type='seg'))"
                )
            m = s.gt_sem_seg.data.reshape(
                1, *s.gt_sem_seg.data.shape[-2:]
            ).long()
            masks.append(
                F.pad(
                    m,
                    (0, size[1] - m.shape[-1], 0, size[0] - m.shape[-2]),
                    value=ignore_index,
                )[0]
            )
        target = torch.stack(masks)
        valid = target[target != ignore_index]
        if (
            rec.num_classes
            and valid.numel()
            and (valid.min() < 0 or valid.max() >= rec.num_classes)
        ):
            raise ValueError(
                f'task {task!r}: mask values '
                f'{sorted(set(valid.unique().tolist()))[:12]} outside the '
                f'segmentor\'s {rec.num_classes} classes (ignore_index '
                f'{ignore_index})'
            )
        return target


__all__ = ['PAPER_TASKS', 'TaskRestorer', 'pad_batch']
