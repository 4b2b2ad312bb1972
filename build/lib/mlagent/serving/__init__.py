"""Deployments: serving workers (one process per deployment), predict, explain, drift."""
