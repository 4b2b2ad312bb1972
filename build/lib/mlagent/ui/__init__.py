"""The web dashboard (`/ui`) and the offline API docs (`/docs`, `/redoc`).

Everything is served from this package: the dashboard's plain ES modules and CSS under
`static/`, and Swagger UI / ReDoc from the `fastapi-offline` package's vendored files, so
no page loads anything from another host (docs/ui.md)."""

from .routes import install

__all__ = ["install"]
