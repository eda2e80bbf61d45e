"""A local LaunchDarkly REST API simulator for big segment store integrations."""

from devtools.ldsim.app import Simulator
from devtools.ldsim.faults import Faults
from devtools.ldsim.scenario import (
    DEFAULT_TOKEN,
    Scenario,
    load_demo_scenario,
    load_scenario,
)
from devtools.ldsim.server import SimulatorServer
from devtools.ldsim.stats import Stats

__all__ = [
    "DEFAULT_TOKEN",
    "Faults",
    "Scenario",
    "Simulator",
    "SimulatorServer",
    "Stats",
    "load_demo_scenario",
    "load_scenario",
]
