"""The web layer: the aiohttp app, the status page and its assets, the debug probe."""
