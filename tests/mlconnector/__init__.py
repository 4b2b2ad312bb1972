"""Helpers shared by the MLConnector (registry, deployments, training) tests."""
