"""Data-pipeline transforms: ImageNet-C and adverse-weather degradations, paired loading and packing.

The corruption functions (:mod:`.degradations`) need only OpenCV and numpy.  The registered transforms are
mmcv :class:`~mmcv.transforms.BaseTransform` subclasses, so importing this package needs mmcv (its
``mmcv.transforms``, no compiled ops) and mmengine (the registry) as well; both are dependencies of the
package (mmsegmentation and mmpretrain need them anyway).  :class:`RestoreImage` imports torch and the
restorer only when it is built.
"""
from . import degradations
from .degradations import (ALL_CORRUPTIONS, COMPOSITE_CORRUPTIONS, CORRUPTION_FUNCS, IMAGENET_C_CORRUPTIONS,
                           SEVERITIES, WEATHER_CORRUPTIONS, add_brightness, add_contrast, add_defocus_blur,
                           add_elastic_transform, add_fog, add_frost, add_gaussian_noise, add_glass_blur, add_haze,
                           add_haze_rain, add_impulse_noise, add_jpeg_compression, add_low_light, add_low_light_noise,
                           add_motion_blur, add_pixelate, add_rain_streaks, add_raindrops, add_shot_noise, add_snow,
                           add_zoom_blur, canonical_name, check_severity, corrupt, get_corruption, make_rng,
                           sample_seed, synthetic_depth)
from .restore_image import RestoreImage
from .transforms import (CORRUPTION_GROUPS, DEFAULT_META_KEYS, NAMED_DEGRADATIONS, PAPER_SEVERITY_PROBS, AddBrightness,
                         AddContrast, AddDefocusBlur, AddElasticTransform, AddFog, AddFrost, AddGaussianNoise,
                         AddGlassBlur, AddHaze, AddHazeRain, AddImpulseNoise, AddJpegCompression, AddLowLight,
                         AddLowLightNoise, AddMotionBlur, AddPixelate, AddRainStreaks, AddRaindrops, AddShotNoise,
                         AddSnow, AddZoomBlur, CorruptImageError, Degradation, LoadCleanImage, LoadPairedImages,
                         PackRestorationInputs, PairedRandomCrop, RandomDegradation, read_image)

__all__ = [
    # degradation functions and their tables
    'degradations', 'ALL_CORRUPTIONS', 'COMPOSITE_CORRUPTIONS', 'CORRUPTION_FUNCS', 'IMAGENET_C_CORRUPTIONS',
    'SEVERITIES', 'WEATHER_CORRUPTIONS', 'canonical_name', 'check_severity', 'corrupt', 'get_corruption',
    'make_rng', 'sample_seed', 'synthetic_depth', 'add_gaussian_noise', 'add_shot_noise', 'add_impulse_noise',
    'add_defocus_blur', 'add_glass_blur', 'add_motion_blur', 'add_zoom_blur', 'add_snow', 'add_frost', 'add_fog',
    'add_brightness', 'add_contrast', 'add_elastic_transform', 'add_pixelate', 'add_jpeg_compression',
    'add_rain_streaks', 'add_haze', 'add_low_light', 'add_raindrops', 'add_haze_rain', 'add_low_light_noise',
    # registered transforms
    'CORRUPTION_GROUPS', 'DEFAULT_META_KEYS', 'NAMED_DEGRADATIONS', 'PAPER_SEVERITY_PROBS', 'CorruptImageError',
    'Degradation', 'RandomDegradation', 'AddGaussianNoise', 'AddShotNoise', 'AddImpulseNoise', 'AddDefocusBlur',
    'AddGlassBlur', 'AddMotionBlur', 'AddZoomBlur', 'AddSnow', 'AddFrost', 'AddFog', 'AddBrightness', 'AddContrast',
    'AddElasticTransform', 'AddPixelate', 'AddJpegCompression', 'AddRainStreaks', 'AddHaze', 'AddLowLight',
    'AddRaindrops', 'AddHazeRain', 'AddLowLightNoise', 'LoadPairedImages', 'LoadCleanImage', 'PairedRandomCrop',
    'PackRestorationInputs', 'RestoreImage', 'read_image'
]
