"""High-level entry points: the evaluation behind tools/demo.py."""
