"""A fake Bilibili API server for the tests, the demo and the benchmarks.

``app`` is the aiohttp application (screens, faults, admin routes); the API
areas ``videos``, ``users``, ``articles``, ``live`` and ``session`` hold each
endpoint and the data it serves; ``graph`` is the social graph and uploads
behind the users and articles areas; ``data`` the shared deterministic
primitives and user profiles; ``answers`` the envelopes and error answers;
``process`` runs the server as a subprocess (``python -m tests.fakeapi``).
"""
