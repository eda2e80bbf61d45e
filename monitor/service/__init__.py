"""The service: the `Monitor` (discovery, targets, probes), state, loops, reload."""
