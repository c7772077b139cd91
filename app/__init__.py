"""SamDSK service: FastAPI API, data layer and storage."""

__version__ = "0.1.0"
