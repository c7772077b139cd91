# One image for the API, the worker and the migration step.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /srv/samdsk
COPY pyproject.toml README.md alembic.ini ./
COPY samdsk ./samdsk
COPY app ./app
COPY workers ./workers
COPY migrations ./migrations
COPY frontend ./frontend
RUN pip install -e .
EXPOSE 8000
CMD ["samdsk", "api"]
