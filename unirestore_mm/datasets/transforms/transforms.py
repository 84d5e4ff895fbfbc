"""Registered data-pipeline transforms: degradations, loading of image pairs,
paired crops, packing.

Every transform is an mmcv :class:`~mmcv.transforms.BaseTransform`
(``transform(results)`` does the work, calling the object does the same)
registered in ``unirestore_mm``'s ``TRANSFORMS`` registry under its class name
(``type='unirestore_mm.AddFog'``).  Besides :class:`RandomDegradation` and
:class:`Degradation` there is one class per corruption (``AddGaussianNoise``
... ``AddLowLightNoise``); ``NAMED_DEGRADATIONS`` maps the corruption names to
them.

Channel order: mmcv/mmengine pipelines carry **BGR** ``uint8`` images, so every
transform here takes ``channel_order='bgr'`` by default and flips to RGB around
the RGB degradation functions of :mod:`.degradations` (it matters for the
coloured ones: snow's grey level, frost's tint, haze's airlight).  Pass
``channel_order='rgb'`` for pipelines that load RGB.  Grayscale, RGBA, 16-bit
and float (16/32/64-bit, 0-255) images keep their shape and dtype; values stay
in 0-255 (0-65535 for 16-bit).

Seeding: a transform with ``seed=S`` draws sample ``i``'s corruption from
``sample_seed(S, i)`` where ``i`` is ``results['sample_idx']`` (mmengine's
``BaseDataset`` sets it), so a dataset index gives the same degraded image in
every worker and run.  Without ``sample_idx`` the image file name is used, then
the image bytes.  With ``seed=None`` each call draws a new seed from numpy's
global generator (training diversity; MMEngine's ``randomness`` setting seeds
it per worker), and the seed that was drawn is still recorded.  What was
applied goes to ``results['degradation']``:
``dict(name=..., severity=..., seed=..., short_side=...)``; add
``'degradation'`` to the packer's ``meta_keys`` (``PackRestorationInputs`` does
by default).
"""

import os.path as osp
import zlib
from typing import Dict, List, Optional, Sequence, Union

import cv2
import numpy as np
from mmcv.transforms import BaseTransform

from unirestore_mm.registry import TRANSFORMS

from .degradations import (
    ALL_CORRUPTIONS,
    COMPOSITE_CORRUPTIONS,
    IMAGENET_C_CORRUPTIONS,
    WEATHER_CORRUPTIONS,
    canonical_name,
    check_image,
    check_severity,
    corrupt,
    sample_seed,
)

PAPER_SEVERITY_PROBS = (0.05, 0.25, 0.40, 0.25, 0.05)
CORRUPTION_GROUPS = {
    'imagenet_c': IMAGENET_C_CORRUPTIONS,
    'weather': WEATHER_CORRUPTIONS,
    'composite': COMPOSITE_CORRUPTIONS,
    'all': ALL_CORRUPTIONS,
    # The five of DESIGN.md §10's small-scale trial (the embedded demo).
    'demo5': ('fog', 'snow', 'gaussian_noise', 'motion_blur', 'low_light'),
}


class CorruptImageError(RuntimeError):
    """An image file that cannot be read or decoded; the message names the
    file."""


def _expand_corruptions(corruptions) -> List[str]:
    if isinstance(corruptions, str):
        corruptions = [corruptions]
    names = []
    for c in corruptions:
        if isinstance(c, str) and c.lower() in CORRUPTION_GROUPS:
            names.extend(CORRUPTION_GROUPS[c.lower()])
        else:
            names.append(canonical_name(c))
    if not names:
        raise ValueError(
            'corruptions must name at least one corruption or group '
            f'({", ".join(CORRUPTION_GROUPS)})'
        )
    return list(dict.fromkeys(names))


def _flip_channels(img: np.ndarray) -> np.ndarray:
    """BGR <-> RGB for 3- and 4-channel images; other images are returned as
    they are."""
    if img.ndim == 3 and img.shape[2] in (3, 4):
        return np.concatenate([img[..., 2::-1], img[..., 3:]], axis=2)
    return img


def _resize_keep(img: np.ndarray, w: int, h: int, interp: int) -> np.ndarray:
    """Resize, keeping the dtype (float16, which OpenCV cannot resize, goes
    through float32) and, for floats, the 0-255 range (cubic interpolation
    overshoots)."""
    src = img.astype(np.float32) if img.dtype == np.float16 else img
    out = cv2.resize(src, (int(w), int(h)), interpolation=interp)
    if img.ndim == 3 and out.ndim == 2:
        out = out[..., None]
    if np.issubdtype(img.dtype, np.floating):
        out = np.clip(out, 0, 255)
    return out.astype(img.dtype, copy=False)


class _SeededTransform(BaseTransform):
    """Shared seeding for the degradation transforms below."""

    def __init__(self, seed: Optional[int]):
        if seed is not None and not isinstance(seed, (int, np.integer)):
            raise TypeError(f'seed must be an int or None, got {seed!r}')
        self.seed = None if seed is None else int(seed)

    def sample_seed(self, results: dict, key: str) -> int:
        if self.seed is None:
            # numpy's global generator: MMEngine's ``randomness.seed`` and its
            # worker_init_fn seed it per worker and rank, so a seeded run (and
            # an exact resume) repeats its degradations
            return int(np.random.randint(0, 2**32, dtype=np.uint64))
        if results.get('sample_idx') is not None:
            return sample_seed(self.seed, int(results['sample_idx']))
        for path_key in ('img_path', 'gt_path', 'lq_path'):
            if results.get(path_key):
                return sample_seed(
                    self.seed, osp.basename(str(results[path_key]))
                )
        img = np.ascontiguousarray(results[key])
        return sample_seed(self.seed, zlib.crc32(img.tobytes()))


@TRANSFORMS.register_module()
class RandomDegradation(_SeededTransform):
    """Degrade ``results[key]`` with a randomly chosen corruption and severity;
    keep the clean image.

    The paper's sampling (DESIGN.md §3): one of the 15 ImageNet-C corruptions,
    severity 1..5 with probabilities ``.05/.25/.40/.25/.05``, the image first
    resized to a random short side in ``[128, 512)`` (only when that is
    smaller: a down-scale), corrupted, then resized back.

    Args:
        corruptions: names and/or groups (``'imagenet_c'``, ``'weather'``,
            ``'composite'``, ``'all'``, ``'demo5'``) to draw from; composites
            are ``'haze_rain'`` and ``'low_light_noise'``.
        weights: optional sampling weight per expanded corruption (default
            uniform).
        severity: a fixed severity 1..5, or ``None`` to draw with
            ``severity_probs``.
        severity_probs: five probabilities for severities 1..5.
        resize_short_side: ``(low, high)`` for the random short side, or
            ``None`` for no resizing.
        prob: probability of degrading at all (``0`` leaves the image
            unchanged).
        seed: base seed (see the module docstring), or ``None`` for fresh
            randomness.
        keys: image keys to degrade, all with the same corruption, severity and
            noise.
        gt_key: where the clean version of ``keys[0]`` goes (``None`` to not
            keep it).
        channel_order: ``'bgr'`` (mmcv's loading) or ``'rgb'``.
        meta_key: where the record of what was applied goes.
        depth_key: optional key of a depth map used by ``haze`` (else a
            synthetic depth is used).
    """

    def __init__(
        self,
        corruptions: Union[str, Sequence[str]] = 'imagenet_c',
        weights: Optional[Sequence[float]] = None,
        severity: Optional[int] = None,
        severity_probs: Sequence[float] = PAPER_SEVERITY_PROBS,
        resize_short_side: Optional[Sequence[int]] = (128, 512),
        prob: float = 1.0,
        seed: Optional[int] = None,
        keys: Sequence[str] = ('img',),
        gt_key: Optional[str] = 'gt_img',
        channel_order: str = 'bgr',
        meta_key: str = 'degradation',
        depth_key: Optional[str] = None,
    ):
        super().__init__(seed)
        self.corruptions = _expand_corruptions(corruptions)
        if weights is not None:
            weights = np.asarray(weights, np.float64)
            if (
                weights.shape != (len(self.corruptions),)
                or (weights < 0).any()
                or weights.sum() <= 0
            ):
                raise ValueError(
                    f'weights must be {len(self.corruptions)} non-negative '
                    f'numbers (one per corruption in {self.corruptions}), '
                    f'got {weights.tolist()}'
                )
            weights = weights / weights.sum()
        self.weights = weights
        self.severity = None if severity is None else check_severity(severity)
        probs = np.asarray(severity_probs, np.float64)
        if (
            probs.shape != (5,)
            or (probs < 0).any()
            or not np.isclose(probs.sum(), 1.0)
        ):
            raise ValueError(
                'severity_probs must be 5 probabilities summing to 1, got '
                f'{severity_probs}'
            )
        self.severity_probs = probs
        if resize_short_side is not None:
            lo, hi = (int(v) for v in resize_short_side)
            if not 1 <= lo < hi:
                raise ValueError(
                    'resize_short_side must be (low, high) with 1 <= low < '
                    f'high, got {resize_short_side}'
                )
            resize_short_side = (lo, hi)
        self.resize_short_side = resize_short_side
        if not 0.0 <= float(prob) <= 1.0:
            raise ValueError(f'prob must be in [0, 1], got {prob}')
        self.prob = float(prob)
        self.keys = [keys] if isinstance(keys, str) else list(keys)
        if not self.keys:
            raise ValueError('keys must name at least one image key')
        self.gt_key = gt_key
        if channel_order not in ('bgr', 'rgb'):
            raise ValueError(
                f"channel_order must be 'bgr' or 'rgb', got {channel_order!r}"
            )
        self.channel_order = channel_order
        self.meta_key = meta_key
        self.depth_key = depth_key

    def _degrade(
        self, img, name, severity, short_side, corruption_seed, depth
    ):
        if img.ndim == 3 and img.shape[2] == 4:
            # RGBA: the alpha channel is kept as it is (the down/up-scaling
            # would blur it)
            color = self._degrade(
                img[..., :3],
                name,
                severity,
                short_side,
                corruption_seed,
                depth,
            )
            return np.concatenate([color, img[..., 3:]], axis=2)
        h, w = img.shape[:2]
        x = _flip_channels(img) if self.channel_order == 'bgr' else img
        resized = short_side is not None and short_side < min(h, w)
        if resized:
            scale = short_side / min(h, w)
            x = _resize_keep(
                x,
                max(round(w * scale), 1),
                max(round(h * scale), 1),
                cv2.INTER_AREA,
            )
        kwargs = (
            {'depth': depth} if (depth is not None and name == 'haze') else {}
        )
        x = corrupt(
            x, name, severity, np.random.default_rng(corruption_seed), **kwargs
        )
        if resized:
            x = _resize_keep(x, w, h, cv2.INTER_CUBIC)
        return _flip_channels(x) if self.channel_order == 'bgr' else x

    def transform(self, results: dict) -> dict:
        for key in self.keys:
            if key not in results:
                raise KeyError(
                    f'{type(self).__name__}: results has no key {key!r} '
                    f'(keys: {sorted(results)})'
                )
            # before any resizing: OpenCV's own errors on bad images name
            # neither the key nor the problem
            check_image(
                results[key], where=f'{type(self).__name__}: results[{key!r}]'
            )
        seed = self.sample_seed(results, self.keys[0])
        rng = np.random.default_rng(seed)
        # Always draw all values, so the stream does not depend on the outcome
        # of the first draw.
        apply = rng.random() < self.prob
        name = self.corruptions[
            rng.choice(len(self.corruptions), p=self.weights)
        ]
        severity = self.severity or int(
            rng.choice(5, p=self.severity_probs) + 1
        )
        short_side = None
        if self.resize_short_side is not None:
            short_side = int(rng.integers(*self.resize_short_side))
        corruption_seed = int(rng.integers(0, 2**32))
        if self.gt_key is not None:
            results[self.gt_key] = results[self.keys[0]]
        if not apply:
            results[self.meta_key] = dict(
                name='none', severity=0, seed=seed, short_side=None
            )
            return results
        depth = results.get(self.depth_key) if self.depth_key else None
        img0 = results[self.keys[0]]
        for key in self.keys:
            results[key] = self._degrade(
                results[key],
                name,
                severity,
                short_side,
                corruption_seed,
                depth,
            )
        applied_short = (
            short_side
            if short_side is not None and short_side < min(img0.shape[:2])
            else None
        )
        results[self.meta_key] = dict(
            name=name, severity=severity, seed=seed, short_side=applied_short
        )
        return results

    def __repr__(self) -> str:
        sev = (
            self.severity
            if self.severity is not None
            else f'p={tuple(round(float(p), 3) for p in self.severity_probs)}'
        )
        return (
            f'{type(self).__name__}(corruptions={self.corruptions}, '
            'weights='
            f'{None if self.weights is None else [round(float(w), 4) for w in self.weights]}, '
            f'severity={sev}, resize_short_side={self.resize_short_side}, '
            f'prob={self.prob}, seed={self.seed}, keys={self.keys}, '
            f'gt_key={self.gt_key!r}, channel_order={self.channel_order!r})'
        )


@TRANSFORMS.register_module()
class Degradation(RandomDegradation):
    """One named corruption at a fixed severity (no resizing), e.g. the paper's
    evaluation at 3.

    ``Degradation('fog', severity=3, seed=0)`` is ``RandomDegradation(['fog'],
    severity=3, resize_short_side=None, seed=0)``; ``severity=None`` draws with
    the paper's probabilities.
    """

    def __init__(
        self,
        corruption: str,
        severity: Optional[int] = 3,
        prob: float = 1.0,
        seed: Optional[int] = None,
        keys: Sequence[str] = ('img',),
        gt_key: Optional[str] = 'gt_img',
        channel_order: str = 'bgr',
        meta_key: str = 'degradation',
        depth_key: Optional[str] = None,
        resize_short_side: Optional[Sequence[int]] = None,
    ):
        super().__init__(
            corruptions=[corruption],
            severity=severity,
            prob=prob,
            seed=seed,
            keys=keys,
            gt_key=gt_key,
            channel_order=channel_order,
            meta_key=meta_key,
            depth_key=depth_key,
            resize_short_side=resize_short_side,
        )

    def __repr__(self) -> str:
        return (
            f'{type(self).__name__}(corruption={self.corruptions[0]!r}, '
            f'severity={self.severity}, prob={self.prob}, seed={self.seed}, '
            f'keys={self.keys}, gt_key={self.gt_key!r}, '
            f'channel_order={self.channel_order!r})'
        )


class _NamedDegradation(Degradation):
    """A :class:`Degradation` whose corruption is fixed by the subclass
    (``corruption`` class attribute)."""

    corruption: str = ''

    def __init__(
        self,
        severity: Optional[int] = 3,
        prob: float = 1.0,
        seed: Optional[int] = None,
        keys: Sequence[str] = ('img',),
        gt_key: Optional[str] = 'gt_img',
        channel_order: str = 'bgr',
        meta_key: str = 'degradation',
        depth_key: Optional[str] = None,
    ):
        super().__init__(
            self.corruption,
            severity=severity,
            prob=prob,
            seed=seed,
            keys=keys,
            gt_key=gt_key,
            channel_order=channel_order,
            meta_key=meta_key,
            depth_key=depth_key,
        )


# One transform per corruption, ``Add<CamelCaseName>``: the arguments of
# :class:`Degradation` without ``corruption`` (severity 3 by default).  What
# each corruption does: the ``add_<name>`` functions in :mod:`.degradations`.
@TRANSFORMS.register_module()
class AddGaussianNoise(_NamedDegradation):
    """Additive Gaussian noise (ImageNet-C ``gaussian_noise``); see
    :func:`.degradations.add_gaussian_noise`."""

    corruption = 'gaussian_noise'


@TRANSFORMS.register_module()
class AddShotNoise(_NamedDegradation):
    """Poisson noise (ImageNet-C ``shot_noise``); see
    :func:`.degradations.add_shot_noise`."""

    corruption = 'shot_noise'


@TRANSFORMS.register_module()
class AddImpulseNoise(_NamedDegradation):
    """Salt-and-pepper noise (ImageNet-C ``impulse_noise``); see
    :func:`.degradations.add_impulse_noise`."""

    corruption = 'impulse_noise'


@TRANSFORMS.register_module()
class AddDefocusBlur(_NamedDegradation):
    """Disc blur (ImageNet-C ``defocus_blur``); see
    :func:`.degradations.add_defocus_blur`."""

    corruption = 'defocus_blur'


@TRANSFORMS.register_module()
class AddGlassBlur(_NamedDegradation):
    """Frosted-glass blur (ImageNet-C ``glass_blur``); see
    :func:`.degradations.add_glass_blur`."""

    corruption = 'glass_blur'


@TRANSFORMS.register_module()
class AddMotionBlur(_NamedDegradation):
    """Directional blur (ImageNet-C ``motion_blur``); see
    :func:`.degradations.add_motion_blur`."""

    corruption = 'motion_blur'


@TRANSFORMS.register_module()
class AddZoomBlur(_NamedDegradation):
    """Radial zoom blur (ImageNet-C ``zoom_blur``); see
    :func:`.degradations.add_zoom_blur`."""

    corruption = 'zoom_blur'


@TRANSFORMS.register_module()
class AddSnow(_NamedDegradation):
    """Falling snow (ImageNet-C ``snow``); see
    :func:`.degradations.add_snow`."""

    corruption = 'snow'


@TRANSFORMS.register_module()
class AddFrost(_NamedDegradation):
    """Ice on the lens (ImageNet-C ``frost``); see
    :func:`.degradations.add_frost`."""

    corruption = 'frost'


@TRANSFORMS.register_module()
class AddFog(_NamedDegradation):
    """Fractal fog (ImageNet-C ``fog``); see :func:`.degradations.add_fog`."""

    corruption = 'fog'


@TRANSFORMS.register_module()
class AddBrightness(_NamedDegradation):
    """Raised brightness (ImageNet-C ``brightness``); see
    :func:`.degradations.add_brightness`."""

    corruption = 'brightness'


@TRANSFORMS.register_module()
class AddContrast(_NamedDegradation):
    """Lowered contrast (ImageNet-C ``contrast``); see
    :func:`.degradations.add_contrast`."""

    corruption = 'contrast'


@TRANSFORMS.register_module()
class AddElasticTransform(_NamedDegradation):
    """Smooth random warp (ImageNet-C ``elastic_transform``); see
    :func:`.degradations.add_elastic_transform`."""

    corruption = 'elastic_transform'


@TRANSFORMS.register_module()
class AddPixelate(_NamedDegradation):
    """Blocky down- and up-sampling (ImageNet-C ``pixelate``); see
    :func:`.degradations.add_pixelate`."""

    corruption = 'pixelate'


@TRANSFORMS.register_module()
class AddJpegCompression(_NamedDegradation):
    """JPEG artefacts (ImageNet-C ``jpeg_compression``); see
    :func:`.degradations.add_jpeg_compression`."""

    corruption = 'jpeg_compression'


@TRANSFORMS.register_module()
class AddRainStreaks(_NamedDegradation):
    """Rain streaks (Rain100L-style); see
    :func:`.degradations.add_rain_streaks`."""

    corruption = 'rain_streaks'


@TRANSFORMS.register_module()
class AddHaze(_NamedDegradation):
    """Atmospheric haze (``depth_key`` names a depth map, else a synthetic
    one); see :func:`.degradations.add_haze`."""

    corruption = 'haze'


@TRANSFORMS.register_module()
class AddLowLight(_NamedDegradation):
    """Low light (gamma darkening, exposure scaling); see
    :func:`.degradations.add_low_light`."""

    corruption = 'low_light'


@TRANSFORMS.register_module()
class AddRaindrops(_NamedDegradation):
    """Raindrops on the lens; see :func:`.degradations.add_raindrops`."""

    corruption = 'raindrops'


@TRANSFORMS.register_module()
class AddHazeRain(_NamedDegradation):
    """Haze, then rain streaks (composite); see
    :func:`.degradations.add_haze_rain`."""

    corruption = 'haze_rain'


@TRANSFORMS.register_module()
class AddLowLightNoise(_NamedDegradation):
    """Low light, then sensor noise (composite); see
    :func:`.degradations.add_low_light_noise`."""

    corruption = 'low_light_noise'


# Corruption name -> transform class, built from the classes above (tests check
# it against ALL_CORRUPTIONS).
NAMED_DEGRADATIONS: Dict[str, type] = {
    cls.corruption: cls
    for cls in (
        AddGaussianNoise,
        AddShotNoise,
        AddImpulseNoise,
        AddDefocusBlur,
        AddGlassBlur,
        AddMotionBlur,
        AddZoomBlur,
        AddSnow,
        AddFrost,
        AddFog,
        AddBrightness,
        AddContrast,
        AddElasticTransform,
        AddPixelate,
        AddJpegCompression,
        AddRainStreaks,
        AddHaze,
        AddLowLight,
        AddRaindrops,
        AddHazeRain,
        AddLowLightNoise,
    )
}


# -----------------------------------------------------------------------------
# Loading
# -----------------------------------------------------------------------------
_IMREAD = {
    'color': cv2.IMREAD_COLOR,
    'grayscale': cv2.IMREAD_GRAYSCALE,
    'unchanged': cv2.IMREAD_UNCHANGED,
}


def read_image(
    path: str,
    color_type: str = 'color',
    channel_order: str = 'bgr',
    backend_args: Optional[dict] = None,
) -> np.ndarray:
    """Read an image file; raise :class:`CorruptImageError` naming ``path``
    when it cannot be read."""
    if color_type not in _IMREAD:
        raise ValueError(
            f'color_type must be one of {sorted(_IMREAD)}, got {color_type!r}'
        )
    try:
        if backend_args:
            from mmengine.fileio import get

            data = get(path, backend_args=backend_args)
        else:
            with open(path, 'rb') as f:
                data = f.read()
    except OSError as e:
        raise CorruptImageError(f'cannot read image file {path}: {e}') from e
    img = (
        cv2.imdecode(np.frombuffer(data, np.uint8), _IMREAD[color_type])
        if data
        else None
    )
    if img is None:
        raise CorruptImageError(
            f'cannot decode image file {path} ({len(data)} bytes)'
        )
    if channel_order == 'rgb':
        img = _flip_channels(img)
    return img


@TRANSFORMS.register_module()
class LoadPairedImages(BaseTransform):
    """Load ``results['img_path']`` into ``img`` and ``results['gt_path']``
    into ``gt_img``.

    When both paths are the same (a clean-only dataset that degrades on the
    fly) only ``img`` is read; a later :class:`RandomDegradation` keeps the
    clean copy.  ``seg_map_path``, when present and ``with_seg=True``, is read
    unchanged into ``gt_seg_map``.  Unreadable files raise
    :class:`CorruptImageError` with the path (the datasets turn that into
    skip-or-fail).
    """

    def __init__(
        self,
        color_type: str = 'color',
        channel_order: str = 'bgr',
        to_float32: bool = False,
        with_seg: bool = True,
        backend_args: Optional[dict] = None,
    ):
        self.color_type, self.channel_order = color_type, channel_order
        self.to_float32, self.with_seg, self.backend_args = (
            to_float32,
            with_seg,
            backend_args,
        )

    def _read(self, path):
        img = read_image(
            path, self.color_type, self.channel_order, self.backend_args
        )
        return img.astype(np.float32) if self.to_float32 else img

    def transform(self, results: dict) -> dict:
        results['img'] = self._read(results['img_path'])
        gt_path = results.get('gt_path')
        if gt_path and gt_path != results['img_path']:
            results['gt_img'] = self._read(gt_path)
            if results['gt_img'].shape[:2] != results['img'].shape[:2]:
                raise CorruptImageError(
                    f'image pair sizes differ: {results["img_path"]} '
                    f'{results["img"].shape[:2]} vs {gt_path} '
                    f'{results["gt_img"].shape[:2]}'
                )
        if self.with_seg and results.get('seg_map_path'):
            seg = read_image(
                results['seg_map_path'], 'unchanged', 'bgr', self.backend_args
            )
            results['gt_seg_map'] = seg if seg.ndim == 2 else seg[..., 0]
            results.setdefault('seg_fields', []).append('gt_seg_map')
        results['img_shape'] = results['img'].shape[:2]
        results['ori_shape'] = results['img'].shape[:2]
        return results

    def __repr__(self) -> str:
        return (
            f'{type(self).__name__}(color_type={self.color_type!r}, '
            f'channel_order={self.channel_order!r}, '
            f'to_float32={self.to_float32}, with_seg={self.with_seg})'
        )


@TRANSFORMS.register_module()
class LoadCleanImage(BaseTransform):
    """Load the clean counterpart of a real degraded image into ``gt_img`` by
    rewriting its path.

    For sets whose clean image sits in a parallel folder, e.g. Foggy
    Cityscapes:
    ``replace=[('_foggy_beta_0.02', ''), ('leftImg8bit_foggy/', 'leftImg8bit/')]``
    (applied in order) maps
    ``leftImg8bit_foggy/val/x/a_leftImg8bit_foggy_beta_0.02.png`` to
    ``leftImg8bit/val/x/a_leftImg8bit.png``.  Put it before any geometric
    transform, so both images are transformed alike (mmseg's transforms only
    move ``img`` and the masks).
    """

    def __init__(
        self,
        replace: Sequence[Sequence[str]],
        path_key: str = 'img_path',
        key: str = 'gt_img',
        color_type: str = 'color',
        channel_order: str = 'bgr',
        backend_args: Optional[dict] = None,
    ):
        self.replace = [tuple(r) for r in replace]
        if not self.replace or any(len(r) != 2 for r in self.replace):
            raise ValueError(
                f'replace must be a list of (old, new) pairs, got {replace}'
            )
        self.path_key, self.key = path_key, key
        self.color_type, self.channel_order, self.backend_args = (
            color_type,
            channel_order,
            backend_args,
        )

    def transform(self, results: dict) -> dict:
        path = str(results[self.path_key])
        for old, new in self.replace:
            path = path.replace(old, new)
        if path == results[self.path_key]:
            raise ValueError(
                f'LoadCleanImage: {self.replace} does not change {path}'
            )
        results[self.key] = read_image(
            path, self.color_type, self.channel_order, self.backend_args
        )
        results['gt_path'] = path
        if (
            'img' in results
            and results[self.key].shape[:2] != results['img'].shape[:2]
        ):
            raise CorruptImageError(
                f'clean image {path} has size {results[self.key].shape[:2]}, '
                f'degraded {results[self.path_key]} has '
                f'{results["img"].shape[:2]}'
            )
        return results

    def __repr__(self) -> str:
        return (
            f'{type(self).__name__}(replace={self.replace}, key={self.key!r})'
        )


@TRANSFORMS.register_module()
class PairedRandomCrop(BaseTransform):
    """Crop the same random window from every key (image pairs, masks), padding
    by reflection if small.

    Draws from ``np.random`` (mmengine seeds each worker) unless ``seed`` is
    given, in which case the window depends only on ``(seed, sample_idx)``.
    """

    def __init__(
        self,
        crop_size: Union[int, Sequence[int]],
        keys: Sequence[str] = ('img', 'gt_img', 'gt_seg_map'),
        seed: Optional[int] = None,
    ):
        self.crop_size = (
            (crop_size, crop_size)
            if isinstance(crop_size, int)
            else tuple(crop_size)
        )
        if len(self.crop_size) != 2 or min(self.crop_size) < 1:
            raise ValueError(
                f'crop_size must be a positive int or (h, w), got {crop_size}'
            )
        self.keys, self.seed = list(keys), seed

    def transform(self, results: dict) -> dict:
        present = [k for k in self.keys if results.get(k) is not None]
        if not present:
            raise KeyError(f'PairedRandomCrop: none of {self.keys} in results')
        ch, cw = self.crop_size
        h, w = results[present[0]].shape[:2]
        for k in present:
            if results[k].shape[:2] != (h, w):
                raise ValueError(
                    f'PairedRandomCrop: {k} has size {results[k].shape[:2]}, '
                    f'expected {(h, w)}'
                )
        if self.seed is not None and results.get('sample_idx') is not None:
            rng = np.random.default_rng(
                sample_seed(self.seed, int(results['sample_idx']), 'crop')
            )
            top, left = (
                int(rng.integers(0, max(h - ch, 0) + 1)),
                int(rng.integers(0, max(w - cw, 0) + 1)),
            )
        else:
            top, left = (
                np.random.randint(0, max(h - ch, 0) + 1),
                np.random.randint(0, max(w - cw, 0) + 1),
            )
        for k in present:
            v = results[k]
            if h < ch or w < cw:
                pad = ((0, max(ch - h, 0)), (0, max(cw - w, 0))) + (
                    (0, 0),
                ) * (v.ndim - 2)
                v = np.pad(
                    v,
                    pad,
                    mode='reflect' if k != 'gt_seg_map' else 'constant',
                    **({} if k != 'gt_seg_map' else {'constant_values': 255}),
                )
            results[k] = np.ascontiguousarray(
                v[top : top + ch, left : left + cw]
            )
        results['img_shape'] = (ch, cw)
        return results

    def __repr__(self) -> str:
        return (
            f'{type(self).__name__}(crop_size={self.crop_size}, '
            f'keys={self.keys}, seed={self.seed})'
        )


# -----------------------------------------------------------------------------
# Packing
# -----------------------------------------------------------------------------
DEFAULT_META_KEYS = (
    'img_path',
    'gt_path',
    'seg_map_path',
    'ori_shape',
    'img_shape',
    'sample_idx',
    'degradation',
    'source',
    'scale_factor',
    'flip',
    'flip_direction',
    'reduce_zero_label',
)


def _to_chw_tensor(img: np.ndarray):
    import torch

    if img.ndim == 2:
        img = img[..., None]
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))


@TRANSFORMS.register_module()
class PackRestorationInputs(BaseTransform):
    """Pack a (degraded, clean[, label or mask]) sample as
    ``dict(inputs=..., data_samples=...)``.

    ``inputs`` is the degraded image as a ``C×H×W`` tensor (dtype kept, channel
    order as loaded); the data sample carries ``gt_img`` (``C×H×W`` tensor,
    when present) and the metainfo in ``meta_keys`` (including
    ``degradation``).  ``sample_type``:

    * ``'base'``: :class:`mmengine.structures.BaseDataElement` (restoration
      only);
    * ``'cls'``: :class:`mmpretrain.structures.DataSample` with ``gt_label``
      from ``results['gt_label']``;
    * ``'seg'``: :class:`mmseg.structures.SegDataSample` with ``gt_sem_seg``
      from ``results['gt_seg_map']`` (and ``gt_label``, a tensor, when the
      results have one as well);
    * ``'auto'``: ``'seg'`` when a mask is present, else ``'cls'`` when a label
      is, else ``'base'``.
    """

    def __init__(
        self,
        input_key: str = 'img',
        gt_key: str = 'gt_img',
        sample_type: str = 'auto',
        meta_keys: Sequence[str] = DEFAULT_META_KEYS,
    ):
        if sample_type not in ('auto', 'base', 'cls', 'seg'):
            raise ValueError(
                "sample_type must be 'auto', 'base', 'cls' or 'seg', got "
                f"{sample_type!r}"
            )
        self.input_key, self.gt_key, self.sample_type = (
            input_key,
            gt_key,
            sample_type,
        )
        self.meta_keys = tuple(meta_keys)

    def transform(self, results: dict) -> dict:
        import torch

        kind = self.sample_type
        if kind == 'auto':
            kind = (
                'seg'
                if results.get('gt_seg_map') is not None
                else 'cls'
                if results.get('gt_label') is not None
                else 'base'
            )
        if kind == 'seg':
            from mmengine.structures import PixelData
            from mmseg.structures import SegDataSample

            sample = SegDataSample()
            seg = results['gt_seg_map']
            sample.gt_sem_seg = PixelData(
                data=torch.from_numpy(
                    np.ascontiguousarray(seg[None].astype(np.int64))
                )
            )
            # a set with both (the embedded one) keeps its labels too
            if results.get('gt_label') is not None:
                sample.set_field(
                    torch.as_tensor(
                        results['gt_label'], dtype=torch.int64
                    ).reshape(-1),
                    'gt_label',
                )
        elif kind == 'cls':
            from mmpretrain.structures import DataSample

            sample = DataSample()
            sample.set_gt_label(results['gt_label'])
        else:
            from mmengine.structures import BaseDataElement

            sample = BaseDataElement()
        if results.get(self.gt_key) is not None:
            sample.set_field(_to_chw_tensor(results[self.gt_key]), 'gt_img')
        sample.set_metainfo(
            {k: results[k] for k in self.meta_keys if k in results}
        )
        return dict(
            inputs=_to_chw_tensor(results[self.input_key]), data_samples=sample
        )

    def __repr__(self) -> str:
        return (
            f'{type(self).__name__}(input_key={self.input_key!r}, '
            f'gt_key={self.gt_key!r}, sample_type={self.sample_type!r}, '
            f'meta_keys={self.meta_keys})'
        )
