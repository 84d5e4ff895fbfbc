"""unirestore_mm: UniRestore (Chen et al., CVPR 2025) as a pluggable restoration stage for OpenMMLab."""
from .version import __version__

__all__ = ['__version__']
