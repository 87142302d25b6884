"""Catalog job records: what the background workers run (ingest a feed, delete a source, crawl
a shop), kept in the catalog store so a job survives a restart.

A job moves ``queued -> running -> done | failed``. ``done`` / ``total`` count products
(rows mapped to products) of the feed; ``report`` is the ingest report as a JSON object
(``catalog_ingest.runner.IngestReport.to_dict``; a crawl adds its crawl summary), and while a
job runs its partial report (a crawl: phase, pages, products, failed URLs); ``error`` says why
a job failed.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from fittingroom.catalog.models import utcnow


class JobStatus(StrEnum):
    queued = "queued"
    running = "running"
    done = "done"
    failed = "failed"

    @property
    def finished(self) -> bool:
        return self in (JobStatus.done, JobStatus.failed)


class JobKind(StrEnum):
    ingest = "ingest"
    delete_source = "delete_source"
    crawl = "crawl"
    prune = "prune"


def new_job_id() -> str:
    """A random 32-hex-digit job id."""
    return uuid.uuid4().hex


class JobRecord(BaseModel):
    """One catalog job. Timestamps are timezone-aware UTC."""

    id: str = Field(default_factory=new_job_id)
    kind: JobKind
    source: str
    status: JobStatus = JobStatus.queued
    done: int = Field(default=0, ge=0, description="Products processed so far.")
    total: int | None = Field(default=None, ge=0, description="Products in the feed, once it is read.")
    params: dict[str, Any] = Field(default_factory=dict, description="What the job was asked to do.")
    report: dict[str, Any] | None = None
    error: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def order_key(self) -> str:
        """``created_at`` as fixed-width UTC text (sorts like the time; what stores order jobs by)."""
        return self.created_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
