"""Development tools, never packaged: the API simulator, the demo, test servers."""
