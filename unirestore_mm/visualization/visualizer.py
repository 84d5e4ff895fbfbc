"""``RestorationVisualizer``: degraded | restored | clean side by side, through
MMEngine's vis backends."""

from typing import Optional

import numpy as np
import torch
from mmengine.visualization import Visualizer

from ..registry import VISUALIZERS


def _to_uint8_rgb(img) -> Optional[np.ndarray]:
    """(3, H, W) float tensor in [0, 1] or H x W x 3 uint8 array -> H x W x 3
    uint8 RGB (None passes through)."""
    if img is None:
        return None
    if isinstance(img, torch.Tensor):
        img = img.detach().float().cpu()
        if img.dim() == 3 and img.shape[0] in (1, 3):
            img = img.permute(1, 2, 0)
        img = (img.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    img = np.asarray(img)
    if img.ndim == 2:
        img = img[..., None]
    if img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    return np.ascontiguousarray(img[..., :3])


@VISUALIZERS.register_module()
class RestorationVisualizer(Visualizer):
    """Draws ``[input | pred_img | gt_img]`` for a data sample of
    :class:`~unirestore_mm.models.UniRestoreModel`.

    ``image`` is the degraded input as an RGB ``uint8`` array (what
    ``VisualizationHook``-style hooks pass); ``pred_img``/``gt_img`` are read
    from ``data_sample`` (float RGB in [0, 1]).
    """

    def add_datasample(
        self,
        name: str,
        image: Optional[np.ndarray] = None,
        data_sample=None,
        draw_gt: bool = True,
        draw_pred: bool = True,
        show: bool = False,
        wait_time: float = 0,
        out_file: Optional[str] = None,
        step: int = 0,
    ) -> np.ndarray:
        panels = [_to_uint8_rgb(image)]
        if data_sample is not None:
            if draw_pred and 'pred_img' in data_sample:
                panels.append(_to_uint8_rgb(data_sample.pred_img))
            if draw_gt and 'gt_img' in data_sample:
                panels.append(_to_uint8_rgb(data_sample.gt_img))
        panels = [p for p in panels if p is not None]
        if not panels:
            raise ValueError(
                'RestorationVisualizer: nothing to draw (no image, pred_img '
                'or gt_img)'
            )
        h = max(p.shape[0] for p in panels)
        panels = [
            np.pad(p, ((0, h - p.shape[0]), (0, 0), (0, 0))) for p in panels
        ]
        drawn = np.concatenate(panels, axis=1)
        self.set_image(drawn)
        if show:
            self.show(drawn, win_name=name, wait_time=wait_time)
        if out_file is not None:
            from ..utils.fileio import atomic_imwrite

            atomic_imwrite(drawn[..., ::-1], out_file)
        else:
            self.add_image(name, drawn, step)
        return drawn
