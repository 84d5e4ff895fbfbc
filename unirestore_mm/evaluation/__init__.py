"""Metrics of the restorer (registered in ``unirestore_mm``'s METRICS)."""

from .metrics import PSNR, SSIM, psnr, ssim

__all__ = ['PSNR', 'SSIM', 'psnr', 'ssim']
