"""Celery workers: thin tasks that take job ids, call the method library and write results."""
