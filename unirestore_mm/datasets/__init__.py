"""Datasets: paired restoration, degraded task datasets, the embedded set and
the benchmark-set writer.

Transforms live in :mod:`unirestore_mm.datasets.transforms` (mmcv
BaseTransforms: importing them needs mmcv and mmengine).
"""

from .benchmark import load_manifest, make_benchmark_set
from .embedded import (
    EMBEDDED_CLASSES,
    EMBEDDED_PALETTE,
    EMBEDDED_SEG_CLASSES,
    EmbeddedClsDataset,
    EmbeddedRestorationDataset,
    EmbeddedSegDataset,
    build_embedded_set,
    default_data_root,
    embedded_cls_dataset_cfg,
    embedded_seg_dataset_cfg,
    embedded_set_path,
    load_fashion_mnist,
)
from .paired import CorruptSampleError, DegradedDataset, PairedImageDataset
from .sample_photos import (
    SAMPLE_PHOTOS,
    SamplePhotosDataset,
    build_sample_photos,
    load_sample_photos,
)
from .transforms import *  # noqa: F401,F403 - registers the transforms
from .transforms import __all__ as _transforms_all

__all__ = [
    'load_manifest',
    'make_benchmark_set',
    'EMBEDDED_CLASSES',
    'EMBEDDED_PALETTE',
    'EMBEDDED_SEG_CLASSES',
    'build_embedded_set',
    'default_data_root',
    'embedded_cls_dataset_cfg',
    'embedded_seg_dataset_cfg',
    'embedded_set_path',
    'load_fashion_mnist',
    'EmbeddedClsDataset',
    'EmbeddedRestorationDataset',
    'EmbeddedSegDataset',
    'CorruptSampleError',
    'DegradedDataset',
    'PairedImageDataset',
    'SAMPLE_PHOTOS',
    'SamplePhotosDataset',
    'build_sample_photos',
    'load_sample_photos',
] + list(_transforms_all)
