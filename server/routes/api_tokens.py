"""The JSON API for one's own API tokens (/api/v1/tokens): the same rules as the tokens on /profile
(server/auth.py)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from sqlmodel import col, select

from server import auth
from server.deps import CurrentStaff, SessionDep, staff_token_check
from server.errors import AppError, ErrorCode
from server.models import ApiToken
from server.schemas import PROBLEM_RESPONSES, WRITE, NewTokenOut, TokenIn, TokenOut, problems

router = APIRouter(
    prefix="/api/v1", tags=["api"], dependencies=[Depends(staff_token_check)], responses=PROBLEM_RESPONSES
)


def _token_out(record: ApiToken) -> TokenOut:
    return TokenOut(
        id=record.id or 0,
        name=record.name,
        prefix=record.prefix,
        read_only=record.read_only,
        created_at=record.created_at,
        last_used_at=record.last_used_at,
        revoked_at=record.revoked_at,
    )


@router.get("/tokens")
def list_tokens(staff: CurrentStaff, session: SessionDep) -> list[TokenOut]:
    """Your API tokens, newest first, revoked ones included."""
    records = session.exec(
        select(ApiToken).where(ApiToken.staff_id == staff.id).order_by(col(ApiToken.created_at).desc())
    ).all()
    return [_token_out(record) for record in records]


@router.post("/tokens", status_code=201, responses=problems(*WRITE))
def create_token(body: TokenIn, staff: CurrentStaff, session: SessionDep) -> NewTokenOut:
    """A new token in your name (a read-only token cannot make one: it is a write). The token is in this
    answer only; it ends when your password changes or your account is deactivated."""
    if not body.name.strip():
        raise AppError(ErrorCode.invalid_input)
    record, plain = auth.create_api_token(session, staff, body.name, read_only=body.read_only)
    return NewTokenOut(**_token_out(record).model_dump(), token=plain)


@router.post("/tokens/{token_id}/revoke", responses=problems(*WRITE, 404))
def revoke_token(token_id: int, staff: CurrentStaff, session: SessionDep) -> TokenOut:
    """End one of your tokens for good; revoking twice changes nothing."""
    auth.revoke_api_token(session, staff, token_id)
    record = session.get(ApiToken, token_id)
    assert record is not None  # revoke_api_token found it
    return _token_out(record)
