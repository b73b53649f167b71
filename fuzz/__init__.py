"""Fuzz targets for bookengine (atheris); the checks live in :mod:`fuzz.harness`."""
