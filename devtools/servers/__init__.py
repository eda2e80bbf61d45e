"""Real servers for tests, bench and demo: redis, moto, a fault proxy, TLS."""
