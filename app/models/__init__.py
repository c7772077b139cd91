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
from app.models.base import MAX_DB_INT, Base, UTCDateTime, utcnow
from app.models.core import (
    IMAGE_IN_USE,
    Image,
    Job,
    JobStatus,
    Label,
    LabelSource,
    Project,
    Round,
    RoundStatus,
)
from app.models.review import Candidate, CandidateStatus, ModelVersion

__all__ = [
    "IMAGE_IN_USE",
    "MAX_DB_INT",
    "ApiToken",
    "AuditEvent",
    "Base",
    "Candidate",
    "CandidateStatus",
    "Image",
    "Job",
    "JobStatus",
    "Label",
    "LabelSource",
    "LoginAttempt",
    "Membership",
    "ModelVersion",
    "Project",
    "Role",
    "Round",
    "RoundStatus",
    "TokenKind",
    "UTCDateTime",
    "User",
    "utcnow",
]
