"""Storage: SQLAlchemy tables, the engine, repositories, and Alembic migrations.

One implementation serves SQLite and PostgreSQL; the few dialect differences
(row locking for claims) are handled by SQLAlchemy itself.
"""
