"""Long-lived API tokens for tools: shown once at creation, stored hashed, revocable."""

from __future__ import annotations

from fastapi import APIRouter, status

from app.api.deps import CurrentUser, SessionDep
from app.api.params import IdPath
from app.models import TokenKind
from app.schemas_accounts import TokenCreate, TokenCreated, TokenPublic
from app.services.accounts import issue_token, list_tokens, revoke_token
from app.services.audit import record

router = APIRouter(prefix="/tokens", tags=["tokens"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=TokenCreated)
def create_token(body: TokenCreate, session: SessionDep, user: CurrentUser) -> TokenCreated:
    issued = issue_token(
        session=session, user=user, kind=TokenKind.API, name=body.name, expires_at=body.expires_at
    )
    record(
        session=session,
        actor=user,
        action="token.create",
        target_type="token",
        target_id=issued.row.id,
        details={
            "name": body.name,
            "expires_at": str(body.expires_at) if body.expires_at else None,
        },
    )
    public = TokenPublic.model_validate(issued.row)
    return TokenCreated(**public.model_dump(), token=issued.token)


@router.get("", response_model=list[TokenPublic])
def list_my_tokens(session: SessionDep, user: CurrentUser) -> list[TokenPublic]:
    return [TokenPublic.model_validate(t) for t in list_tokens(session=session, user=user)]


@router.delete("/{token_id}", response_model=TokenPublic)
def revoke_my_token(token_id: IdPath, session: SessionDep, user: CurrentUser) -> TokenPublic:
    row = revoke_token(session=session, user=user, token_id=token_id)
    record(
        session=session,
        actor=user,
        action="token.revoke",
        target_type="token",
        target_id=row.id,
        details={"name": row.name},
    )
    return TokenPublic.model_validate(row)
