"""The Redis probe: a minimal RESP2 exchange, INFO health, TLS contexts."""
