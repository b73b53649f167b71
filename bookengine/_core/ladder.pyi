"""Typed face of the compiled ladder (see ladder.pyx): C functions only, nothing for Python.

The books use it through ``ladder.pxd``; this stub says so to mypy and stubtest.
"""
