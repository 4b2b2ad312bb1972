"""The services container the surfaces receive (no storage types leak through it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .auth.api_keys import ApiKeyRegistry
from .auth.hf_tokens import HfTokenValidator
from .config import Settings
from .finetune.service import FineTuningService
from .runtime.approvals import ApprovalsService
from .runtime.operator import OperatorService
from .runtime.service import ResponsesService
from .tasks.catalogue import ModelCatalogue
from .tasks.service import TasksService
from .usage.service import UsageService

if TYPE_CHECKING:
    from .registry.service import RegistryService
    from .registry.training import TrainingService
    from .serving.monitoring import MonitoringService
    from .serving.service import DeploymentService


@dataclass
class Services:
    settings: Settings
    hf_tokens: HfTokenValidator
    api_keys: ApiKeyRegistry
    responses: ResponsesService
    approvals: ApprovalsService
    usage: UsageService
    operator: OperatorService
    tasks: TasksService
    models: ModelCatalogue
    finetune: FineTuningService
    registry: RegistryService | Any = None
    deployments: DeploymentService | Any = None
    monitoring: MonitoringService | Any = None
    trainings: TrainingService | Any = None
