"""The gRPC server of the HTTP process: started and stopped by the FastAPI lifespan.

`MLAGENT_GRPC_PORT` (default 50051; 0 disables) on `MLAGENT_HOST`. Health checking
reports SERVING for both services while the server runs; reflection lists them."""

from __future__ import annotations

import logging

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from ..services import Services
from . import agent_runtime_pb2 as pb, agent_runtime_pb2_grpc as pb_grpc
from .services import AgentService, MLService

log = logging.getLogger("mlagent.grpc")
SERVICE_NAMES = tuple(pb.DESCRIPTOR.services_by_name[n].full_name for n in ("AgentService", "MLService"))


class PortInUse(RuntimeError):
    """The gRPC port is taken: start-up stops with this message."""


class GrpcServer:
    """Bound first (`bind`: the port is reserved and known, 0 picks a free one), started
    when the services exist (`start`). The port is never shared: SO_REUSEPORT is off, so a
    second server on a taken port fails at once instead of silently splitting the traffic."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._server: grpc.aio.Server | None = None
        self._health: HealthServicer | None = None
        self.serving = False

    def bind(self) -> int:
        """Reserve the port; returns the bound port. Raises `PortInUse` with a clear message."""
        if self._server is not None:
            return self.port
        server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
        host = f"[{self.host}]" if ":" in self.host else self.host
        try:
            bound = server.add_insecure_port(f"{host}:{self.port}")
        except RuntimeError:
            bound = 0
        if not bound:
            raise PortInUse(f"the gRPC port {self.host}:{self.port} is already in use (another mlagent?); "
                            "free it or set MLAGENT_GRPC_PORT to another port (0 disables gRPC)")
        self._server, self.port = server, bound
        return bound

    async def start(self, svc: Services) -> None:
        self.bind()
        server = self._server
        assert server is not None
        pb_grpc.add_AgentServiceServicer_to_server(AgentService(svc), server)
        pb_grpc.add_MLServiceServicer_to_server(MLService(svc), server)
        self._health = HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        reflection.enable_server_reflection(
            (*SERVICE_NAMES, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
            server)
        await server.start()
        for name in ("", *SERVICE_NAMES):
            await self._health.set(name, health_pb2.HealthCheckResponse.SERVING)
        self.serving = True
        log.info("gRPC (AgentService, MLService, health, reflection) on %s:%s", self.host, self.port)

    async def stop(self, grace: float = 3.0) -> None:
        if self._server is None:
            return
        if self._health is not None:
            await self._health.enter_graceful_shutdown()
        self.serving = False
        await self._server.stop(grace)
        self._server = None
