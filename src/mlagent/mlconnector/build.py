"""Builds the MLConnector services (registry, training, deployments, monitoring) for server.py."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ..blobs import BlobStore
from ..config import Settings
from ..jobs import make_backend
from ..registry.artifacts import ArtifactStore
from ..registry.service import RegistryService
from ..registry.training import TrainingService
from ..serving.monitoring import MonitoringService
from ..serving.operations import OperationRecorder
from ..serving.service import DeploymentService
from ..store.registry import RegistryStore


@dataclass
class MLConnector:
    registry: RegistryService
    deployments: DeploymentService
    monitoring: MonitoringService
    trainings: TrainingService
    recorder: OperationRecorder

    async def close(self) -> None:
        await self.trainings.shutdown()
        await self.deployments.shutdown()
        await self.recorder.close()


async def build_mlconnector(settings: Settings, sessions: async_sessionmaker[AsyncSession], blobs: BlobStore) -> MLConnector:
    store = RegistryStore(sessions)
    registry = RegistryService(store, ArtifactStore(blobs, settings.data_dir / "artifacts"), settings.max_upload_bytes)
    recorder = OperationRecorder(store, max_pending=settings.operations_max_pending)
    recorder.start()
    deployments = DeploymentService(settings, store, registry, recorder)
    trainings = TrainingService(settings, store, registry, make_backend(settings, settings.data_dir / "jobs" / "logs",
                                                                        blobs))
    await trainings.recover()
    trainings.start()
    await deployments.resume()
    return MLConnector(registry, deployments, MonitoringService(deployments), trainings, recorder)
