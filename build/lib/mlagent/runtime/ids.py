"""Identifier formats (`resp_…`, `sess_…`, `msg_…`, `fc_…`)."""

import uuid


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"
