"""Envelope types used by every route."""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel

__all__ = ["ErrorBody", "ErrorDetail", "Page"]

T = TypeVar("T")


class ErrorDetail(BaseModel):
    message: str
    type: str
    code: str
    param: str | None = None


class ErrorBody(BaseModel):
    """The one error envelope (the OpenAI shape): ``{"error": {...}}``."""

    error: ErrorDetail


class Page(BaseModel, Generic[T]):
    """A page of a listing. Pass ``next_cursor`` back as ``cursor`` for the next page; None means the end."""

    items: list[T]
    next_cursor: str | None = None
