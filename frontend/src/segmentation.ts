/**
 * Client of the segmentation service (services/segmentation/schemas.py):
 * `POST /images` (multipart photo) -> image id; `POST /images/{image_id}/masks`
 * (point prompts) -> candidate masks, best first;
 * `GET /images/{image_id}/masks/{mask_id}/cutout` -> the garment as an RGBA PNG;
 * `GET /images/{image_id}` -> the uploaded photo again (JPEG; 404 once the service dropped it).
 */

import { postJson, request, requestJson } from "./http";
import type { PointPrompt } from "./photo";

export interface UploadedImage {
  image_id: string;
  width: number;
  height: number;
}

export interface MaskCandidate {
  mask_id: string;
  score: number;
  area: number;
  bbox: [number, number, number, number];
  /** PNG of the mask at image size, base64 (no data: prefix) or a data: URL. */
  mask_png: string;
}

export interface MasksResponse {
  image_id: string;
  candidates: MaskCandidate[];
}

export async function uploadImage(file: Blob, signal?: AbortSignal): Promise<UploadedImage> {
  const form = new FormData();
  form.append("file", file, file instanceof File ? file.name : "photo.jpg");
  return requestJson<UploadedImage>("segmentation", "/images", { method: "POST", body: form, signal });
}

/**
 * Candidate masks for point prompts. `previousMaskId`: the mask these points correct (SAM's
 * iterative refinement uses it as its mask prompt); send all points so far.
 */
export function predictMasks(
  imageId: string,
  points: PointPrompt[],
  signal?: AbortSignal,
  previousMaskId?: string,
): Promise<MasksResponse> {
  const body = previousMaskId ? { points, previous_mask_id: previousMaskId } : { points };
  return postJson<MasksResponse>("segmentation", `/images/${encodeURIComponent(imageId)}/masks`, body, signal);
}

/** The photo the service keeps under `imageId` (a photo session reopened from its URL). */
export async function fetchImage(imageId: string, signal?: AbortSignal): Promise<Blob> {
  const response = await request("segmentation", `/images/${encodeURIComponent(imageId)}`, { signal });
  return response.blob();
}

export async function fetchCutout(imageId: string, maskId: string, signal?: AbortSignal): Promise<Blob> {
  const path = `/images/${encodeURIComponent(imageId)}/masks/${encodeURIComponent(maskId)}/cutout`;
  const response = await request("segmentation", path, { signal });
  return response.blob();
}

/**
 * Decode a candidate's mask into a canvas whose alpha is the mask (opaque = garment),
 * whatever the PNG's mode (grey levels or alpha).
 */
export async function maskAlpha(candidate: MaskCandidate): Promise<HTMLCanvasElement> {
  const src = candidate.mask_png.startsWith("data:")
    ? candidate.mask_png
    : `data:image/png;base64,${candidate.mask_png}`;
  const img = new Image();
  img.src = src;
  await img.decode();
  const canvas = document.createElement("canvas");
  canvas.width = img.naturalWidth;
  canvas.height = img.naturalHeight;
  const ctx = canvas.getContext("2d", { willReadFrequently: true })!;
  ctx.drawImage(img, 0, 0);
  const data = ctx.getImageData(0, 0, canvas.width, canvas.height);
  const px = data.data;
  for (let i = 0; i < px.length; i += 4) {
    const on = px[i + 3] > 127 && px[i] + px[i + 1] + px[i + 2] > 381;
    px[i] = px[i + 1] = px[i + 2] = 255;
    px[i + 3] = on ? 255 : 0;
  }
  ctx.putImageData(data, 0, 0);
  return canvas;
}
