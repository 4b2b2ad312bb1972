"""The services container the surfaces receive (no storage types leak through it). Built
once, complete, by the composition root (`server.py`); frozen, so a route never meets a
service that is not there yet."""

from __future__ import annotations

from dataclasses import dataclass

from .auth.api_keys import ApiKeys
from .auth.hf_tokens import HfTokenValidator
from .config import Settings
from .finetune.service import FineTuningService
from .registry.service import RegistryService
from .registry.training import TrainingService
from .runtime.approvals import ApprovalsService
from .runtime.operator import OperatorService
from .runtime.service import ResponsesService
from .serving.monitoring import MonitoringService
from .serving.service import DeploymentService
from .tasks.catalogue import ModelCatalogue
from .tasks.service import TasksService
from .usage.service import UsageService


@dataclass(frozen=True)
class Services:
    settings: Settings
    hf_tokens: HfTokenValidator
    api_keys: ApiKeys
    responses: ResponsesService
    approvals: ApprovalsService
    usage: UsageService
    operator: OperatorService
    tasks: TasksService
    models: ModelCatalogue
    finetune: FineTuningService
    registry: RegistryService
    deployments: DeploymentService
    monitoring: MonitoringService
    trainings: TrainingService
