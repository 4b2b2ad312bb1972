"""The MLConnector composed: the model registry (`registry/`), training (`jobs/`),
deployments and monitoring (`serving/`) built into one set of services for the composition
root (`build.py`), and the agent's port onto them (`agent_port.py`). Only server.py imports
this package; the packages it composes do not know it."""
