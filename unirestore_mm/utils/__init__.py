"""Small helpers shared across the package."""

from .fileio import (
    atomic_imwrite,
    atomic_save_safetensors,
    atomic_torch_save,
    atomic_write,
    atomic_write_bytes,
    atomic_write_text,
)

__all__ = [
    'atomic_imwrite',
    'atomic_save_safetensors',
    'atomic_torch_save',
    'atomic_write',
    'atomic_write_bytes',
    'atomic_write_text',
]
