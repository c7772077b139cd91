"""Celery tasks, registered on import by ``workers.celery_app``."""
