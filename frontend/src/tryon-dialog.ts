/**
 * The try-on dialog: asks once for the user's full-body photo (kept in sessionStorage for
 * this browser session, removable), runs the job with progress, then shows a before/after
 * comparison with a download button. CPU preview results are labelled as previews.
 */

import { ApiError } from "./http";
import type { ProductSummary } from "./retrieval";
import { fetchResult, startTryOn, uploadPerson, waitForJob, type JobOut } from "./tryon";

const STORAGE_KEY = "fittingroom.person";
/** Longest side of the copy of the person photo kept for the before/after view. */
const KEPT_PHOTO_SIDE = 1024;

interface KeptPerson {
  personId: string;
  /** JPEG data URL of the user's photo (downscaled), for the "before" side. */
  photo: string;
}

function $<T extends HTMLElement>(id: string): T {
  return document.getElementById(id) as T;
}

function loadPerson(): KeptPerson | null {
  try {
    const raw = sessionStorage.getItem(STORAGE_KEY);
    return raw ? (JSON.parse(raw) as KeptPerson) : null;
  } catch {
    return null;
  }
}

function savePerson(person: KeptPerson | null): void {
  try {
    if (person) sessionStorage.setItem(STORAGE_KEY, JSON.stringify(person));
    else sessionStorage.removeItem(STORAGE_KEY);
  } catch {
    // storage full or disabled: the person is kept only until the page reloads
  }
}

async function downscaled(file: File): Promise<string> {
  const url = URL.createObjectURL(file);
  try {
    const img = new Image();
    img.src = url;
    await img.decode();
    const s = Math.min(1, KEPT_PHOTO_SIDE / Math.max(img.naturalWidth, img.naturalHeight));
    const canvas = document.createElement("canvas");
    canvas.width = Math.round(img.naturalWidth * s);
    canvas.height = Math.round(img.naturalHeight * s);
    canvas.getContext("2d")!.drawImage(img, 0, 0, canvas.width, canvas.height);
    return canvas.toDataURL("image/jpeg", 0.85);
  } finally {
    URL.revokeObjectURL(url);
  }
}

const STAGE_LABELS: Record<string, string> = {
  queued: "Waiting for a free slot…",
  running: "Rendering…",
};

export class TryOnDialog {
  private readonly dialog = $<HTMLDialogElement>("tryon-dialog");
  private readonly personStep = $("tryon-person-step");
  private readonly personKept = $("tryon-person-kept");
  private readonly personInput = $<HTMLInputElement>("person-input");
  private readonly progress = $("tryon-progress");
  private readonly progressBar = $<HTMLProgressElement>("tryon-progress-bar");
  private readonly progressLabel = $("tryon-progress-label");
  private readonly result = $("tryon-result");
  private readonly error = $("tryon-error");
  private readonly download = $<HTMLAnchorElement>("tryon-download");
  private product: ProductSummary | null = null;
  private person: KeptPerson | null = loadPerson();
  private controller: AbortController | null = null;
  private resultUrl: string | null = null;

  constructor(private readonly reportError: (err: unknown) => void) {
    $("person-button").addEventListener("click", () => this.personInput.click());
    this.personInput.addEventListener("change", () => {
      const file = this.personInput.files?.[0];
      this.personInput.value = "";
      if (file) void this.usePerson(file);
    });
    $("person-remove").addEventListener("click", () => this.removePerson());
    const slider = $<HTMLInputElement>("compare-slider");
    slider.addEventListener("input", () => {
      $("compare").style.setProperty("--split", `${slider.value}%`);
    });
    this.dialog.addEventListener("close", () => this.cancel());
  }

  open(product: ProductSummary): void {
    this.product = product;
    $("tryon-product").textContent = [product.title, product.brand].filter(Boolean).join(" · ");
    this.reset();
    this.dialog.showModal();
    if (this.person) {
      this.showKept();
      void this.run();
    } else {
      this.personStep.hidden = false;
      $("person-button").focus();
    }
  }

  private reset(): void {
    this.cancel();
    for (const node of [this.personStep, this.personKept, this.progress, this.result, this.error]) node.hidden = true;
    $("tryon-preview-label").hidden = true;
  }

  private cancel(): void {
    this.controller?.abort();
    this.controller = null;
  }

  private showKept(): void {
    if (!this.person) return;
    $<HTMLImageElement>("person-thumb").src = this.person.photo;
    this.personKept.hidden = false;
    this.personStep.hidden = true;
  }

  private fail(text: string): void {
    this.progress.hidden = true;
    this.error.textContent = text;
    this.error.hidden = false;
  }

  private removePerson(): void {
    this.cancel();
    this.person = null;
    savePerson(null);
    this.reset();
    this.personStep.hidden = false;
    $("person-button").focus();
  }

  private async usePerson(file: File): Promise<void> {
    this.reset();
    this.progress.hidden = false;
    this.progressLabel.textContent = "Checking your photo…";
    this.progressBar.removeAttribute("value");
    const controller = new AbortController();
    this.controller = controller;
    try {
      const [uploaded, photo] = await Promise.all([
        uploadPerson(file, controller.signal),
        downscaled(file).catch(() => ""),
      ]);
      this.person = { personId: uploaded.person_id, photo };
      savePerson(this.person);
      this.showKept();
      await this.run();
    } catch (err) {
      if (err instanceof DOMException && err.name === "AbortError") return;
      this.personStep.hidden = false;
      const unreadable = err instanceof ApiError && (err.status === 415 || err.status === 422);
      this.fail(unreadable ? `We can't use this photo: ${(err as Error).message}` : (err as Error).message);
    }
  }

  private async run(): Promise<void> {
    if (!this.person || !this.product) return;
    const controller = new AbortController();
    this.controller = controller;
    this.error.hidden = true;
    this.result.hidden = true;
    this.progress.hidden = false;
    this.progressLabel.textContent = "Starting…";
    this.progressBar.value = 0;
    try {
      const job = await startTryOn(this.person.personId, this.product.uid, controller.signal);
      const done = await waitForJob(job, (j) => this.onProgress(j), controller.signal);
      const blob = await fetchResult(done, controller.signal);
      this.showResult(done, blob);
    } catch (err) {
      if (err instanceof DOMException && err.name === "AbortError") return;
      if (err instanceof ApiError && err.status === 404 && /person/i.test(err.message)) {
        // the service no longer knows this photo (restarted or expired): ask again
        this.removePerson();
        this.fail("Please choose your photo again: the server no longer has it.");
        return;
      }
      this.fail(err instanceof Error ? err.message : String(err));
      if (!(err instanceof ApiError)) this.reportError(err);
    }
  }

  private onProgress(job: JobOut): void {
    this.progressBar.value = Math.max(0, Math.min(1, job.progress ?? 0));
    this.progressLabel.textContent = job.stage || STAGE_LABELS[job.status] || "Rendering…";
  }

  private showResult(job: JobOut, blob: Blob): void {
    if (this.resultUrl) URL.revokeObjectURL(this.resultUrl);
    this.resultUrl = URL.createObjectURL(blob);
    $<HTMLImageElement>("compare-before").src = this.person?.photo || this.resultUrl;
    $<HTMLImageElement>("compare-after").src = this.resultUrl;
    const slider = $<HTMLInputElement>("compare-slider");
    slider.value = "50";
    $("compare").style.setProperty("--split", "50%");
    this.download.href = this.resultUrl;
    const safe = (this.product?.uid ?? "tryon").replace(/[^A-Za-z0-9_-]+/g, "-");
    this.download.download = `fittingroom-${safe}.png`;
    $("tryon-preview-label").hidden = !job.preview;
    this.progress.hidden = true;
    this.result.hidden = false;
  }
}
