"""Pictures of what the restorer does: degraded | restored | clean, at every
validation and, on request, for a whole test set.

:class:`RestorationVisualizationHook` reads the data samples that restorer
models return (``pred_img``, and ``gt_img`` when the set has clean images:
float RGB in [0, 1], as :class:`~unirestore_mm.models.UniRestoreModel` and the
prior models predict them) next to the degraded input of the batch (as loaded:
BGR ``uint8`` for mmcv's loaders), and

* at every validation draws the first ``num_images`` samples of the validation
  set (by dataset index, so the same images each time) through
  ``runner.visualizer``
  (:class:`~unirestore_mm.visualization.RestorationVisualizer`), named
  ``val_<index>_<file stem>`` with the iteration as step: ``LocalVisBackend``
  writes
  ``<work_dir>/<timestamp>/vis_data/vis_image/val_<index>_<stem>_<iter>.png``;
* in testing, when ``test_out_dir`` is set (``tools/test.py --show-dir``),
  writes one PNG per test sample, ``<test_out_dir>/<file stem>.png`` (the
  sample's index when it has no path), each written atomically.

Distributed runs: each process keeps the samples of the validation set it
validated; they are gathered and process 0 draws them.  In testing each process
writes the pictures of its own samples.
"""

import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
from mmengine.dist import all_gather_object, get_dist_info
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.structures import BaseDataElement

from ..registry import HOOKS
from ..utils.fileio import atomic_imwrite
from ..visualization.visualizer import _to_uint8_rgb

HOOK_TYPE = 'RestorationVisualizationHook'


class NoRestoredImageError(ValueError):
    """The model's predictions carry no ``pred_img``: there is no restored
    image to draw."""


def degraded_rgb(
    img,
    bgr_to_rgb: bool = True,
    scale: float = 255.0,
    size: Optional[Tuple[int, int]] = None,
) -> np.ndarray:
    """A degraded input as the pipeline packed it (``C x H x W``, ``uint8`` or
    float in ``[0, scale]``, BGR when ``bgr_to_rgb``) -> ``H x W x 3`` RGB
    ``uint8``, resized to ``size`` (``(h, w)``) when given and different."""
    x = torch.as_tensor(img).detach().cpu().float()
    if x.dim() == 2:
        x = x[None]
    if x.dim() != 3 or x.shape[0] not in (1, 3, 4):
        raise ValueError(
            'degraded_rgb: expected a (C, H, W) image with 1, 3 or 4 '
            f'channels, got {tuple(x.shape)}'
        )
    x = x.expand(3, -1, -1) if x.shape[0] == 1 else x[:3]
    if bgr_to_rgb:
        x = x.flip(0)
    out = (
        (x / scale)
        .clamp(0, 1)
        .mul(255)
        .round()
        .to(torch.uint8)
        .permute(1, 2, 0)
        .numpy()
    )
    if size is not None and tuple(out.shape[:2]) != tuple(size):
        h, w = int(size[0]), int(size[1])
        interpolation = (
            cv2.INTER_AREA
            if h * w < out.shape[0] * out.shape[1]
            else cv2.INTER_CUBIC
        )
        out = cv2.resize(out, (w, h), interpolation=interpolation)
    return np.ascontiguousarray(out)


def restoration_panel(degraded: np.ndarray, sample) -> np.ndarray:
    """``[degraded | pred_img | gt_img]`` as one RGB ``uint8`` array, the
    layout of :meth:`RestorationVisualizer.add_datasample` (shorter panels
    padded at the bottom)."""
    panels = [degraded] + [
        _to_uint8_rgb(sample.get(k))
        for k in ('pred_img', 'gt_img')
        if k in sample
    ]
    h = max(p.shape[0] for p in panels)
    return np.concatenate(
        [np.pad(p, ((0, h - p.shape[0]), (0, 0), (0, 0))) for p in panels],
        axis=1,
    )


def sample_stem(sample) -> Optional[str]:
    """The file stem of the sample's ``img_path`` (else ``gt_path``), or
    ``None``."""
    meta = getattr(sample, 'metainfo', {}) or {}
    path = meta.get('img_path') or meta.get('gt_path')
    return osp.splitext(osp.basename(str(path)))[0] if path else None


def _is_this_hook(hook_cfg) -> bool:
    t = hook_cfg.get('type') if isinstance(hook_cfg, dict) else None
    return t is RestorationVisualizationHook or (
        isinstance(t, str) and t.split('.')[-1] == HOOK_TYPE
    )


def enable_test_pictures(cfg, out_dir: str) -> dict:
    """Turn on the test pictures of a config (what ``tools/test.py --show-dir``
    does): the config's :class:`RestorationVisualizationHook` (in
    ``default_hooks`` or ``custom_hooks``) gets ``draw=True`` and
    ``test_out_dir=out_dir``; a config without one gets one in
    ``custom_hooks``.  Returns the hook's config."""
    for hook in list((cfg.get('default_hooks') or {}).values()) + list(
        cfg.get('custom_hooks') or []
    ):
        if _is_this_hook(hook):
            hook['draw'] = True
            hook['test_out_dir'] = out_dir
            return hook
    hook = dict(
        type=f'unirestore_mm.{HOOK_TYPE}', draw=True, test_out_dir=out_dir
    )
    cfg.custom_hooks = list(cfg.get('custom_hooks') or []) + [hook]
    return hook


@HOOKS.register_module()
class RestorationVisualizationHook(Hook):
    """Draw degraded | restored | clean for a few fixed validation images, and
    for every test image on request.

    Args:
        draw: draw at all (validation pictures; test pictures also need
            ``test_out_dir``).
        num_images: how many validation images are drawn at every validation:
            the samples of dataset index ``0 .. num_images - 1``
            (``sample_idx`` of the data sample; without one, the position in
            the validation loop, process ``r`` of ``W`` holding indices
            ``r, r + W, ...`` as mmengine's ``DefaultSampler`` without
            shuffling gives them).
        test_out_dir: folder of the test pictures (one ``<file stem>.png`` per
            test sample, written atomically); a relative path goes under
            ``<work_dir>/<timestamp>/`` (as mmseg's ``--show-dir``).  ``None``:
            no test pictures.
        bgr_to_rgb: channel order of the degraded inputs; ``None`` follows the
            model's data preprocessor (``bgr_to_rgb`` of
            :class:`~unirestore_mm.models.PairedDataPreprocessor`, BGR as mmcv
            loads images).

    In validation a model whose samples have no ``pred_img`` is skipped with a
    warning; in testing with ``test_out_dir`` it stops with
    :class:`NoRestoredImageError`.
    """

    priority = 'NORMAL'

    def __init__(
        self,
        draw: bool = True,
        num_images: int = 4,
        test_out_dir: Optional[str] = None,
        bgr_to_rgb: Optional[bool] = None,
    ):
        if not isinstance(num_images, int) or num_images < 0:
            raise ValueError(
                f'num_images must be a non-negative int, got {num_images!r}'
            )
        self.draw, self.num_images = bool(draw), num_images
        self.test_out_dir, self.bgr_to_rgb = test_out_dir, bgr_to_rgb
        self._test_dir: Optional[str] = None
        self._picked: Dict[int, tuple] = {}
        self._seen = 0
        self._names: set = set()
        self._warned = False

    # -- helpers --------------------------------------------------------------
    @staticmethod
    def _model(runner):
        return (
            runner.model.module
            if is_model_wrapper(runner.model)
            else runner.model
        )

    def _input_format(self, runner) -> Tuple[bool, float]:
        pre = getattr(self._model(runner), 'data_preprocessor', None)
        bgr = (
            self.bgr_to_rgb
            if self.bgr_to_rgb is not None
            else bool(getattr(pre, 'bgr_to_rgb', True))
        )
        return bgr, float(getattr(pre, 'scale', 255.0))

    def _indices(self, outputs: Sequence) -> List[int]:
        """Dataset index of each sample of a batch (``sample_idx``, else its
        place in the loop)."""
        rank, world = get_dist_info()
        out = []
        for sample in outputs:
            idx = (getattr(sample, 'metainfo', {}) or {}).get('sample_idx')
            out.append(
                int(idx) if idx is not None else rank + self._seen * world
            )
            self._seen += 1
        return out

    def _entry(self, runner, image, sample, idx: int) -> tuple:
        bgr, scale = self._input_format(runner)
        pred = _to_uint8_rgb(sample.pred_img)
        gt = _to_uint8_rgb(sample.gt_img) if 'gt_img' in sample else None
        return (
            idx,
            sample_stem(sample),
            degraded_rgb(image, bgr, scale, size=pred.shape[:2]),
            pred,
            gt,
        )

    @staticmethod
    def _no_pred(outputs) -> bool:
        return any('pred_img' not in s for s in outputs)

    # -- validation -----------------------------------------------------------
    def before_val_epoch(self, runner) -> None:
        self._picked, self._seen = {}, 0

    def after_val_iter(
        self, runner, batch_idx: int, data_batch=None, outputs=None
    ) -> None:
        if not self.draw or not self.num_images or not outputs:
            return
        indices = self._indices(outputs)
        if self._no_pred(outputs):
            if not self._warned:
                runner.logger.warning(
                    f'{HOOK_TYPE}: {type(self._model(runner)).__name__} predicts '
                    'no pred_img; '
                    'no validation pictures'
                )
                self._warned = True
            return
        for image, sample, idx in zip(data_batch['inputs'], outputs, indices):
            if idx < self.num_images and idx not in self._picked:
                self._picked[idx] = self._entry(runner, image, sample, idx)

    def after_val_epoch(self, runner, metrics=None) -> None:
        if not self.draw or not self.num_images:
            return
        entries = list(self._picked.values())
        self._picked = {}
        rank, world = get_dist_info()
        if world > 1:
            entries = [e for part in all_gather_object(entries) for e in part]
        if rank != 0:
            return
        for idx, stem, degraded, pred, gt in sorted(
            {e[0]: e for e in entries}.values(), key=lambda e: e[0]
        ):
            sample = (
                BaseDataElement(pred_img=pred)
                if gt is None
                else BaseDataElement(pred_img=pred, gt_img=gt)
            )
            name = f'val_{idx}' + (f'_{stem}' if stem else '')
            runner.visualizer.add_datasample(
                name, degraded, data_sample=sample, step=runner.iter
            )

    # -- test -----------------------------------------------------------------
    def before_test(self, runner) -> None:
        self._test_dir = None
        if self.draw and self.test_out_dir:
            # an absolute test_out_dir stays as it is
            self._test_dir = osp.join(
                runner.work_dir, runner.timestamp, self.test_out_dir
            )
            os.makedirs(self._test_dir, exist_ok=True)
            runner.logger.info(
                f'{HOOK_TYPE}: test pictures (degraded | restored | clean) '
                f'go to {self._test_dir}'
            )

    def before_test_epoch(self, runner) -> None:
        self._seen, self._names = 0, set()

    def after_test_iter(
        self, runner, batch_idx: int, data_batch=None, outputs=None
    ) -> None:
        if self._test_dir is None or not outputs:
            return
        indices = self._indices(outputs)
        if self._no_pred(outputs):
            raise NoRestoredImageError(
                f'{type(self._model(runner)).__name__} predicts no pred_img '
                '(restored image): test pictures '
                '(--show-dir, test_out_dir) are drawn for restorer models only'
            )
        for image, sample, idx in zip(data_batch['inputs'], outputs, indices):
            _, stem, degraded, pred, gt = self._entry(
                runner, image, sample, idx
            )
            name = stem if stem is not None else str(idx)
            # two samples with one file name (a concatenated set)
            if name in self._names:
                name = f'{name}_{idx}'
            self._names.add(name)
            panel = restoration_panel(
                degraded,
                dict(pred_img=pred, **({} if gt is None else dict(gt_img=gt))),
            )
            atomic_imwrite(
                panel[..., ::-1], osp.join(self._test_dir, f'{name}.png')
            )
