"""unirestore_mm: UniRestore (Chen et al., CVPR 2025) as a pluggable
restoration stage for OpenMMLab.

``custom_imports = dict(imports=['unirestore_mm'])`` in an mmseg or mmpretrain
config registers everything below under the ``unirestore_mm`` scope.
"""

# registers modules
from . import datasets, engine, evaluation, models, visualization  # noqa: F401
from .models import DiffusionPrior, UniRestore
from .version import __version__

__all__ = ['DiffusionPrior', 'UniRestore', '__version__']
