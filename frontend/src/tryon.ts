/**
 * Client of the try-on service (services/tryon/schemas.py): `POST /persons` (the user's
 * full-body photo, preprocessed once) -> person id; `POST /tryon` -> job id;
 * `GET /tryon/{job_id}` -> status and progress; `GET /tryon/{job_id}/result.png`.
 */

import { postJson, request, requestJson, serviceUrl } from "./http";

export interface PersonOut {
  person_id: string;
  width: number;
  height: number;
}

export type JobStatus = "queued" | "running" | "done" | "failed";

export interface JobOut {
  job_id: string;
  status: JobStatus;
  progress: number;
  stage: string | null;
  backend: string;
  preview: boolean;
  error: string | null;
  result_url: string | null;
}

export async function uploadPerson(file: Blob, signal?: AbortSignal): Promise<PersonOut> {
  const form = new FormData();
  form.append("file", file, file instanceof File ? file.name : "person.jpg");
  return requestJson<PersonOut>("tryon", "/persons", { method: "POST", body: form, signal });
}

export function startTryOn(personId: string, productId: string, signal?: AbortSignal): Promise<JobOut> {
  return postJson<JobOut>("tryon", "/tryon", { person_id: personId, product_id: productId }, signal);
}

export function getJob(jobId: string, signal?: AbortSignal): Promise<JobOut> {
  return requestJson<JobOut>("tryon", `/tryon/${encodeURIComponent(jobId)}`, { signal });
}

export async function fetchResult(job: JobOut, signal?: AbortSignal): Promise<Blob> {
  const url = job.result_url
    ? serviceUrl("tryon", job.result_url)
    : `/api/tryon/tryon/${encodeURIComponent(job.job_id)}/result.png`;
  const response = await request("tryon", url, { signal });
  return response.blob();
}

/** Wait for a job to end, reporting progress; resolves with the finished job, throws when it failed. */
export async function waitForJob(
  job: JobOut,
  onProgress: (job: JobOut) => void,
  signal?: AbortSignal,
  intervalMs = 400,
): Promise<JobOut> {
  let current = job;
  while (current.status === "queued" || current.status === "running") {
    onProgress(current);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
    if (signal?.aborted) throw new DOMException("cancelled", "AbortError");
    current = await getJob(current.job_id, signal);
  }
  onProgress(current);
  if (current.status === "failed") throw new Error(current.error || "The try-on failed.");
  return current;
}
