"""Benchmarks: naive server against the optimized stack, technique rows, a config sweep and a
hardware cost ranking (`python -m benchmarks run`), plus a standalone GPU script
(`python -m benchmarks gpu`).

Kept import-light: `benchmarks.gpu` must run on a GPU host without tritonclient or numpy<2.
"""
