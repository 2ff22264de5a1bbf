"""Routes under /api."""

from fastapi import APIRouter

router = APIRouter()
