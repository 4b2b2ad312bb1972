"""Seed 001's gRPC surface: AgentService and MLService (grpc.aio), in the server process,
over the same services as REST; with standard health checking and server reflection."""
