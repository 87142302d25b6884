"""Request and response bodies of the admin API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from fittingroom.catalog.jobs import JobRecord


class JobOut(BaseModel):
    """One catalog job (ingest of an uploaded feed, deletion of a source)."""

    id: str
    kind: str = Field(description="'ingest', 'delete_source' or 'crawl'.")
    source: str
    status: str = Field(description="'queued', 'running', 'done' or 'failed'.")
    done: int = Field(description="Products processed so far (a crawl in its crawl phase: pages fetched).")
    total: int | None = Field(description="Products in the feed (None until it is read).")
    progress: float | None = Field(description="done / total in [0, 1] (None until the total is known).")
    params: dict[str, Any]
    report: dict[str, Any] | None = Field(
        description="Ingest: new / updated / unchanged counts and bad_rows [{file, line, id, reason}]; "
        "delete: {deleted, index_vectors}; crawl: the ingest's plus phase, pages, products, "
        "failed_urls [{url, reason}] and crawl (the crawl summary); while running, the partial report."
    )
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def of(cls, job: JobRecord) -> JobOut:
        progress = None
        if job.total is not None:
            progress = 1.0 if job.total == 0 else round(min(1.0, job.done / job.total), 4)
        if job.status.value == "done":
            progress = 1.0
        return cls(
            id=job.id,
            kind=job.kind.value,
            source=job.source,
            status=job.status.value,
            done=job.done,
            total=job.total,
            progress=progress,
            params={k: v for k, v in job.params.items() if k != "feed"},  # never the server's path
            report=job.report,
            error=job.error,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
        )


class CrawlIn(BaseModel):
    """A crawl to start: the shop's start URL and the limits (default and upper bound: settings)."""

    url: str = Field(
        max_length=2048, description="Start URL: a shop's home, category, product page or sitemap."
    )
    max_pages: int | None = Field(default=None, ge=1, description="Stop after this many pages.")
    max_depth: int | None = Field(default=None, ge=1, description="Link depth limit from the start URL.")
    source: str | None = Field(default=None, description="Catalog source name (default: the URL's host).")


class JobList(BaseModel):
    jobs: list[JobOut]


class IndexOut(BaseModel):
    """The index generation on disk."""

    encoder: str
    generation: int = Field(description="Changes on every save (the index file's mtime, ns).")
    written_at: datetime = Field(description="When the index on disk was last written (UTC).")
    vectors: int | None = Field(description="Vectors in the index (from its manifest).")


class SourceOut(BaseModel):
    """One source's dashboard row."""

    name: str
    products: int
    images: int = Field(default=0, description="Images over all the source's products.")
    tryon_able: int = Field(default=0, description="Products with an image try-on can use.")
    tryon_share: float | None = Field(default=None, description="tryon_able / products in [0, 1].")
    without_link: int = Field(default=0, description="Products without a shop link.")
    without_image: int = Field(default=0, description="Products without an image.")
    index: IndexOut | None = Field(default=None, description="The index generation on disk (None: no index).")
    index_freshness: str = Field(
        default="no_index",
        description="'fresh' (the index was written after the source's last job started), 'stale' "
        "(written before it), 'pending' (a job of the source is queued or running), 'no_index'.",
    )
    last_job: JobOut | None = Field(default=None, description="The newest job of this source.")


class PruneIn(BaseModel):
    """Confirmation of a prune: ``confirm`` must repeat the source's name."""

    confirm: str = Field(description="The source's name, typed again.")


class SourceList(BaseModel):
    sources: list[SourceOut]


class BadRowOut(BaseModel):
    file: str
    line: int | None
    id: str | None
    reason: str


class PreviewOut(BaseModel):
    """How an uploaded feed's first rows map (nothing is stored)."""

    source: str
    format: str
    preset: str = Field(description="The mapping preset in force (given or detected).")
    columns: list[str] = Field(description="Field names found in the rows read.")
    mapping: dict[str, str] = Field(description="Feed field -> product field, for the fields present.")
    rows_read: int
    products: int = Field(description="Products the rows read map to.")
    bad_rows: list[BadRowOut]
    sample: list[dict[str, Any]]


class Health(BaseModel):
    status: str
    enabled: bool = Field(description="False when FITTINGROOM_ADMIN_TOKEN is unset (the routes answer 404).")
