"""Everything the tests share: fixtures (plugin.py) and helpers; no tests.

Test modules import from here and never from one another or a conftest.py.
The servers behind the fixtures (redis-server, moto, TLS material, the fault
proxy) live in devtools/servers, which the benchmarks use too.
"""
