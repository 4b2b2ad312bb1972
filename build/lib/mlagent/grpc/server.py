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
from . import agent_runtime_pb2 as pb
from . import agent_runtime_pb2_grpc as pb_grpc
from .services import AgentService, MLService

log = logging.getLogger("mlagent.grpc")
SERVICE_NAMES = tuple(pb.DESCRIPTOR.services_by_name[n].full_name for n in ("AgentService", "MLService"))


class GrpcServer:
    def __init__(self, svc: Services, host: str, port: int) -> None:
        self.svc = svc
        self.host = host
        self.port = port
        self._server: grpc.aio.Server | None = None
        self._health: HealthServicer | None = None

    async def start(self) -> None:
        server = grpc.aio.server()
        pb_grpc.add_AgentServiceServicer_to_server(AgentService(self.svc), server)
        pb_grpc.add_MLServiceServicer_to_server(MLService(self.svc), server)
        self._health = HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        reflection.enable_server_reflection(
            (*SERVICE_NAMES, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
            server)
        host = f"[{self.host}]" if ":" in self.host else self.host
        bound = server.add_insecure_port(f"{host}:{self.port}")
        if not bound:
            raise RuntimeError(f"gRPC could not bind {self.host}:{self.port}")
        await server.start()
        for name in ("", *SERVICE_NAMES):
            await self._health.set(name, health_pb2.HealthCheckResponse.SERVING)
        self._server = server
        log.info("gRPC (AgentService, MLService, health, reflection) on %s:%s", self.host, bound)

    async def stop(self, grace: float = 3.0) -> None:
        if self._server is None:
            return
        if self._health is not None:
            await self._health.enter_graceful_shutdown()
        await self._server.stop(grace)
        self._server = None
