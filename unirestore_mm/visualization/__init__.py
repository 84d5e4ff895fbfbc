"""Visualizers (registered in ``unirestore_mm``'s VISUALIZERS)."""

from .visualizer import RestorationVisualizer

__all__ = ['RestorationVisualizer']
