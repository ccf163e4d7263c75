"""Runnable how-to examples; the README's "In your test suite" quotes them.

(A package, so their module names cannot clash with tests/ files of the same name.)
"""
