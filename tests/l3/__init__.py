"""Tests of the order-by-order (Kraken ``level3``) book, on both implementations."""
