"""ORM models. Import from here: ``from app.models import Image, Job``."""

from app.models.accounts import (
    ApiToken,
    AuditEvent,
    LoginAttempt,
    Membership,
    Role,
    TokenKind,
    User,
)
from app.models.base import Base, UTCDateTime, utcnow
from app.models.core import (
    Image,
    Job,
    JobStatus,
    Label,
    LabelSource,
    Project,
    Round,
    RoundStatus,
)

__all__ = [
    "ApiToken",
    "AuditEvent",
    "Base",
    "Image",
    "Job",
    "JobStatus",
    "Label",
    "LabelSource",
    "LoginAttempt",
    "Membership",
    "Project",
    "Role",
    "Round",
    "RoundStatus",
    "TokenKind",
    "UTCDateTime",
    "User",
    "utcnow",
]
