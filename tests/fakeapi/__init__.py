"""A fake Bilibili API server for the tests, the demo and the benchmarks.

``app`` is the aiohttp application, ``data`` the deterministic videos and users
it serves, ``process`` runs it as a subprocess (``python -m tests.fakeapi``).
"""
