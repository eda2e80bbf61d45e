"""`make demo`: the whole product on one machine, nothing to configure.

Starts the LaunchDarkly API simulator with the bundled scenario
(`devtools/ldsim/scenarios/demo.yaml`: integrations in healthy, potentially
stale, unavailable and erroring states across two projects), local
`redis-server` processes and a moto DynamoDB holding stores that match it
(`plan`, `redis_stores`, `dynamodb_stores`), and the daemon watching it all
(`run`). Prints where to look; stops everything it started on Ctrl-C.
"""

from devtools.demo.run import run_demo

__all__ = ["run_demo"]
