"""A local LaunchDarkly REST API simulator for big segment store integrations."""

from monitor.simulator.app import Simulator
from monitor.simulator.faults import Faults
from monitor.simulator.scenario import (
    DEFAULT_TOKEN,
    Scenario,
    load_demo_scenario,
    load_scenario,
)
from monitor.simulator.server import SimulatorServer
from monitor.simulator.stats import Stats

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
