"""The model registry: model metadata, uploaded artifacts (content-addressed), training runs."""
