"""The `/_sim` control routes: stats, faults and status changes over HTTP."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from devtools.ldsim.app import Simulator


def add_control_routes(app: web.Application, simulator: Simulator) -> None:
    """Register the control routes (no token needed, never faulted or counted)."""
    control = _Control(simulator)
    app.router.add_get("/_sim/stats", control.stats)
    app.router.add_post("/_sim/stats/reset", control.reset_stats)
    app.router.add_get("/_sim/faults", control.faults)
    app.router.add_post("/_sim/faults", control.set_faults)
    app.router.add_post("/_sim/faults/clear", control.clear_faults)
    app.router.add_patch("/_sim/integrations/{id}/status", control.patch_status)
    app.router.add_get("/_sim/first_sync", control.first_sync)
    app.router.add_post("/_sim/first_sync", control.set_first_sync)


class _Control:
    """Handlers of the control routes over one simulator."""

    def __init__(self, simulator: Simulator) -> None:
        self._sim = simulator

    async def stats(self, _request: web.Request) -> web.Response:
        """Return `{endpoint: {code: n}}`."""
        return web.json_response(self._sim.stats.snapshot())

    async def reset_stats(self, _request: web.Request) -> web.Response:
        """Forget every count."""
        self._sim.stats.reset()
        return web.Response(status=204)

    async def faults(self, _request: web.Request) -> web.Response:
        """Return the fault switches and pending counts."""
        return web.json_response(self._sim.faults.snapshot())

    async def set_faults(self, request: web.Request) -> web.Response:
        """Apply a faults body (see `Faults.configure`); 400 applies nothing."""
        try:
            self._sim.faults.configure(await _body(request))
        except ValueError as err:
            return _problem(400, str(err))
        return web.json_response(self._sim.faults.snapshot())

    async def clear_faults(self, _request: web.Request) -> web.Response:
        """Turn every fault off."""
        self._sim.faults.clear()
        return web.Response(status=204)

    async def first_sync(self, _request: web.Request) -> web.Response:
        """Return the simulated first sync's settings and what it did."""
        return web.json_response(self._sim.first_sync.snapshot())

    async def set_first_sync(self, request: web.Request) -> web.Response:
        """Apply `{"enabled", "delay", "dynamodb_endpoint_url"}` (400: nothing)."""
        try:
            self._sim.first_sync.configure(await _body(request))
        except ValueError as err:
            return _problem(400, str(err))
        return web.json_response(self._sim.first_sync.snapshot())

    async def patch_status(self, request: web.Request) -> web.Response:
        """Merge API-named `_status` fields into one integration."""
        integration_id = request.match_info["id"]
        try:
            fields = await _body(request)
            if not isinstance(fields, dict):
                return _problem(400, "body must be a JSON object of _status fields")
            self._sim.update_status(integration_id, **fields)
        except KeyError as err:
            return _problem(404, str(err.args[0]))
        except ValueError as err:
            return _problem(400, str(err))
        return web.json_response(
            {"_status": self._sim.integration(integration_id)["_status"]}
        )


async def _body(request: web.Request) -> Any:
    """Return the parsed JSON body; ValueError if it is not JSON."""
    try:
        return json.loads(await request.read())
    except ValueError as err:
        raise ValueError(f"body is not valid JSON: {err}") from err


def _problem(status: int, message: str) -> web.Response:
    """Return a control-route error reply."""
    return web.json_response(
        {"code": "invalid_request", "message": message}, status=status
    )
