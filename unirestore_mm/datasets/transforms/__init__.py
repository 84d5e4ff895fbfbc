"""Data-pipeline transforms: ImageNet-C and adverse-weather degradations, paired loading and packing.

Importing this package needs only mmengine, OpenCV and numpy (no mmcv, mmseg or mmpretrain).
"""
from . import degradations
from .degradations import (ALL_CORRUPTIONS, COMPOSITE_CORRUPTIONS, CORRUPTION_FUNCS, IMAGENET_C_CORRUPTIONS,
                           WEATHER_CORRUPTIONS, canonical_name, check_severity, corrupt, get_corruption,
                           make_rng, sample_seed, synthetic_depth)
from .transforms import (CORRUPTION_GROUPS, DEFAULT_META_KEYS, NAMED_DEGRADATIONS, PAPER_SEVERITY_PROBS,
                         CorruptImageError, Degradation, LoadCleanImage, LoadPairedImages, PackRestorationInputs,
                         PairedRandomCrop, RandomDegradation, read_image)

__all__ = [
    'degradations', 'ALL_CORRUPTIONS', 'COMPOSITE_CORRUPTIONS', 'CORRUPTION_FUNCS', 'IMAGENET_C_CORRUPTIONS',
    'WEATHER_CORRUPTIONS', 'canonical_name', 'check_severity', 'corrupt', 'get_corruption', 'make_rng',
    'sample_seed', 'synthetic_depth', 'CORRUPTION_GROUPS', 'DEFAULT_META_KEYS', 'NAMED_DEGRADATIONS',
    'PAPER_SEVERITY_PROBS', 'CorruptImageError', 'Degradation', 'LoadCleanImage', 'LoadPairedImages', 'PackRestorationInputs',
    'PairedRandomCrop', 'RandomDegradation', 'read_image'
] + [cls.__name__ for cls in NAMED_DEGRADATIONS.values()]
globals().update({cls.__name__: cls for cls in NAMED_DEGRADATIONS.values()})
from .restore_image import RestoreImage  # noqa: F401
