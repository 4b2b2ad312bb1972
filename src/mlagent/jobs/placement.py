"""The seed's `placement` ({clusterID, node, continuum}) and what the local backend honours.

On the `local` backend there is one cluster ("local") of one node (this host): `clusterID`
must be "*" or "local", `node` "*", "local" or this host's name. `continuum` (may the job
run anywhere on the edge-cloud continuum) is recorded; on one machine it changes nothing."""

from __future__ import annotations

import socket

from pydantic import BaseModel, ConfigDict, Field

from ..errors import ServiceError

LOCAL_NAMES = {"*", "local", "localhost"}


class Placement(BaseModel):
    model_config = ConfigDict(extra="allow")
    clusterID: str = "*"
    node: str = "*"
    continuum: bool = Field(False, strict=True)


def check_local(placement: Placement) -> None:
    host = socket.gethostname()
    if placement.clusterID not in LOCAL_NAMES:
        raise ServiceError(422, "placement_unavailable", f"Cluster {placement.clusterID!r} is not available: this "
                           "server runs on the local backend (clusterID '*' or 'local').", "placement.clusterID",
                           retryable=False)
    if placement.node not in LOCAL_NAMES | {host}:
        raise ServiceError(422, "placement_unavailable", f"Node {placement.node!r} is not available: this server's "
                           f"node is {host!r} (or use '*').", "placement.node", retryable=False)
