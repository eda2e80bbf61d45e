"""Real-store test infrastructure: redis-server, moto, TLS material, fault proxy."""
