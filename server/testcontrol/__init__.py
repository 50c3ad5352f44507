# -*- test-case-name: tests.test_test_control, tests.test_test_control_units -*-
"""The reference server as a test double for API clients (``server.testControl``): a virtual
clock, scripted faults, known seeds and a request journal, under /_test/.

Off by default; when off, nothing of this package runs on a request. Only the places that
compose the server (``__main__.py``, ``app.py``) import it; the rest of the server knows
nothing of it. See the README, section "The server as a test double", and
server/test-control.yaml. The package's modules:

- ``clock.py``: the virtual clock every time-reading part of the server is given;
- ``faults.py``: scripted answers and the rules of what may be scripted;
- ``journal.py``: the bounded request journal;
- ``connection.py``: the handle on a request's connection, through the HTTP protocol's hook;
- ``error_shapes.py``: the error body a scripted status gets;
- ``seeds.py``: known TOTP seeds;
- ``control.py``: the state, bound to the store and seed key once the app has started;
- ``routes.py``: the /_test/ routes; ``middleware.py``: the ASGI middleware in front;
- ``origins.py``: which requests may reach /_test/ (none a web page can make);
- ``startup.py``: when a server with test control must not start;
- ``ownership.py``: a database of its own, marked when it is created, refused by others.
"""
