/**
 * The photo stage: shows the user's photo, turns clicks into point prompts and draws
 * the candidate masks over it.
 *
 * Coordinates: point prompts are in original-image pixels (x right, y down), the
 * convention of the segmentation API; the browser applies EXIF orientation to the
 * displayed image as the service does before its coordinates are defined.
 *
 * Input: click/tap = include point; Shift+click or long-press (>= 500 ms) = exclude
 * point. Keyboard on the focused stage: arrow keys move a cursor (Shift = bigger steps),
 * Enter/Space adds an include point, X or Shift+Enter an exclude point,
 * Backspace undoes the last point, Escape clears the points.
 */

export interface PointPrompt {
  x: number;
  y: number;
  /** 1 = include (foreground), 0 = exclude (background). */
  label: 0 | 1;
}

/** One candidate mask ready to draw: an alpha source at image size (any opaque pixel = garment). */
export interface DrawableMask {
  source: CanvasImageSource;
  color: string;
  bbox: [number, number, number, number] | null;
}

export const MASK_COLORS = ["#2f6fed", "#f08a24", "#21a366", "#c2185b"];

const LONG_PRESS_MS = 500;
const MAX_CANVAS_SIDE = 1400;

export interface PhotoStageElements {
  stage: HTMLElement;
  img: HTMLImageElement;
  canvas: HTMLCanvasElement;
  cursor: HTMLElement;
}

export class PhotoStage {
  points: PointPrompt[] = [];
  width = 0;
  height = 0;
  private masks: DrawableMask[] = [];
  private selected = -1;
  private scale = 1;
  private cursorPos: { x: number; y: number } | null = null;
  private pressTimer: number | undefined;
  private pressStart: { x: number; y: number; id: number } | null = null;
  private longPressed = false;
  private enabled = false;
  private pending = false;

  constructor(
    private readonly el: PhotoStageElements,
    private readonly onPointsChanged: (points: PointPrompt[]) => void,
  ) {
    el.stage.addEventListener("pointerdown", (e) => this.pointerDown(e));
    el.stage.addEventListener("pointerup", (e) => this.pointerUp(e));
    el.stage.addEventListener("pointercancel", () => this.cancelPress());
    el.stage.addEventListener("pointermove", (e) => this.pointerMove(e));
    el.stage.addEventListener("contextmenu", (e) => e.preventDefault());
    el.stage.addEventListener("keydown", (e) => this.keyDown(e));
    el.stage.addEventListener("focus", () => this.showCursor());
    el.stage.addEventListener("blur", () => (el.cursor.hidden = true));
    new ResizeObserver(() => this.placeCursor()).observe(el.stage);
  }

  /** Show a photo (object URL); resolves with its displayed (EXIF-oriented) size. */
  async show(url: string): Promise<{ width: number; height: number }> {
    this.clear(false);
    this.enabled = false;
    const { img } = this.el;
    img.src = url;
    await img.decode();
    this.width = img.naturalWidth;
    this.height = img.naturalHeight;
    this.scale = Math.min(1, MAX_CANVAS_SIDE / Math.max(this.width, this.height));
    this.el.canvas.width = Math.round(this.width * this.scale);
    this.el.canvas.height = Math.round(this.height * this.scale);
    this.cursorPos = { x: this.width / 2, y: this.height / 2 };
    this.draw();
    return { width: this.width, height: this.height };
  }

  /** Accept clicks (once the photo is shown). */
  setEnabled(enabled: boolean): void {
    this.enabled = enabled;
  }

  /**
   * Points added while `pending` wait for the service (the photo is still being read): they
   * are drawn hollow, and counted in the stage's `data-pending` attribute.
   */
  setPending(pending: boolean): void {
    this.pending = pending;
    this.draw();
  }

  setMasks(masks: DrawableMask[], selected: number): void {
    this.masks = masks;
    this.selected = selected;
    this.draw();
  }

  select(index: number): void {
    this.selected = index;
    this.draw();
  }

  undo(): void {
    if (!this.points.length) return;
    this.points.pop();
    this.changed();
  }

  clear(notify = true): void {
    this.points = [];
    this.masks = [];
    this.selected = -1;
    if (notify) this.changed();
    else this.draw();
  }

  /** Put back points (a photo session reopened from its URL), without notifying. */
  setPoints(points: PointPrompt[]): void {
    this.points = points.map((p) => ({ ...p }));
    this.draw();
  }

  addPoint(x: number, y: number, label: 0 | 1): void {
    if (!this.enabled || !this.width) return;
    const px = Math.round(Math.min(Math.max(x, 0), this.width - 1));
    const py = Math.round(Math.min(Math.max(y, 0), this.height - 1));
    this.points.push({ x: px, y: py, label });
    this.changed();
  }

  private changed(): void {
    this.draw();
    this.onPointsChanged([...this.points]);
  }

  /** Client (CSS pixel) position -> original-image pixels. */
  private toImage(clientX: number, clientY: number): { x: number; y: number } {
    const rect = this.el.img.getBoundingClientRect();
    return {
      x: ((clientX - rect.left) / rect.width) * this.width,
      y: ((clientY - rect.top) / rect.height) * this.height,
    };
  }

  private pointerDown(e: PointerEvent): void {
    if (!this.enabled || e.button !== 0) return;
    this.longPressed = false;
    this.pressStart = { x: e.clientX, y: e.clientY, id: e.pointerId };
    window.clearTimeout(this.pressTimer);
    this.pressTimer = window.setTimeout(() => {
      if (!this.pressStart) return;
      this.longPressed = true;
      const p = this.toImage(this.pressStart.x, this.pressStart.y);
      this.addPoint(p.x, p.y, 0);
      navigator.vibrate?.(30);
    }, LONG_PRESS_MS);
  }

  private pointerMove(e: PointerEvent): void {
    if (this.pressStart && Math.hypot(e.clientX - this.pressStart.x, e.clientY - this.pressStart.y) > 10) {
      this.cancelPress();
    }
  }

  private pointerUp(e: PointerEvent): void {
    const start = this.pressStart;
    window.clearTimeout(this.pressTimer);
    this.pressStart = null;
    if (!start || this.longPressed || e.pointerId !== start.id) return;
    const p = this.toImage(e.clientX, e.clientY);
    if (p.x < 0 || p.y < 0 || p.x > this.width || p.y > this.height) return;
    this.cursorPos = p;
    this.addPoint(p.x, p.y, e.shiftKey ? 0 : 1);
  }

  private cancelPress(): void {
    window.clearTimeout(this.pressTimer);
    this.pressStart = null;
  }

  private keyDown(e: KeyboardEvent): void {
    if (!this.enabled || !this.cursorPos) return;
    const step = (e.shiftKey ? 0.08 : 0.02) * Math.max(this.width, this.height);
    const moves: Record<string, [number, number]> = {
      ArrowLeft: [-step, 0],
      ArrowRight: [step, 0],
      ArrowUp: [0, -step],
      ArrowDown: [0, step],
    };
    if (e.key in moves) {
      const [dx, dy] = moves[e.key];
      this.cursorPos = {
        x: Math.min(Math.max(this.cursorPos.x + dx, 0), this.width - 1),
        y: Math.min(Math.max(this.cursorPos.y + dy, 0), this.height - 1),
      };
      this.showCursor();
    } else if (e.key === "Enter" || e.key === " ") {
      this.addPoint(this.cursorPos.x, this.cursorPos.y, e.shiftKey ? 0 : 1);
    } else if (e.key === "x" || e.key === "X") {
      this.addPoint(this.cursorPos.x, this.cursorPos.y, 0);
    } else if (e.key === "Backspace") {
      this.undo();
    } else if (e.key === "Escape") {
      this.clear();
    } else {
      return;
    }
    e.preventDefault();
  }

  private showCursor(): void {
    if (!this.enabled) return;
    this.el.cursor.hidden = false;
    this.placeCursor();
  }

  private placeCursor(): void {
    if (!this.cursorPos || !this.width) return;
    const imgRect = this.el.img.getBoundingClientRect();
    const stageRect = this.el.stage.getBoundingClientRect();
    const left = imgRect.left - stageRect.left + (this.cursorPos.x / this.width) * imgRect.width;
    const top = imgRect.top - stageRect.top + (this.cursorPos.y / this.height) * imgRect.height;
    this.el.cursor.style.left = `${left}px`;
    this.el.cursor.style.top = `${top}px`;
  }

  /** Redraw the selected mask and the points. */
  draw(): void {
    const ctx = this.el.canvas.getContext("2d");
    if (!ctx) return;
    const { width, height } = this.el.canvas;
    ctx.clearRect(0, 0, width, height);
    const mask = this.masks[this.selected];
    if (mask) {
      const tinted = tint(mask.source, mask.color, width, height);
      ctx.globalAlpha = 0.5;
      ctx.drawImage(tinted, 0, 0);
      ctx.globalAlpha = 1;
      // outline: the tinted mask minus itself shrunk by 2 px, drawn opaque
      const edge = outline(tinted, width, height);
      ctx.drawImage(edge, 0, 0);
    }
    const r = Math.max(6, Math.round(Math.max(width, height) / 90));
    if (this.pending && this.points.length) this.el.stage.dataset.pending = String(this.points.length);
    else delete this.el.stage.dataset.pending;
    for (const p of this.points) {
      const x = p.x * this.scale;
      const y = p.y * this.scale;
      ctx.beginPath();
      ctx.arc(x, y, r, 0, Math.PI * 2);
      const color = p.label === 1 ? "#1b7f4b" : "#b3261e";
      ctx.lineWidth = Math.max(2, r / 4);
      if (this.pending) {
        // waiting for the photo to be read: a dashed ring, no fill
        ctx.fillStyle = "rgb(255 255 255 / 0.6)";
        ctx.fill();
        ctx.setLineDash([r / 2, r / 3]);
        ctx.strokeStyle = color;
        ctx.stroke();
        ctx.setLineDash([]);
        ctx.beginPath();
      } else {
        ctx.fillStyle = color;
        ctx.fill();
        ctx.strokeStyle = "#fff";
      }
      ctx.stroke();
      ctx.beginPath();
      ctx.moveTo(x - r / 2, y);
      ctx.lineTo(x + r / 2, y);
      if (p.label === 1) {
        ctx.moveTo(x, y - r / 2);
        ctx.lineTo(x, y + r / 2);
      }
      ctx.stroke();
    }
  }
}

/** The mask source coloured with `color` (its alpha kept), at w x h. */
export function tint(source: CanvasImageSource, color: string, w: number, h: number): HTMLCanvasElement {
  const c = document.createElement("canvas");
  c.width = w;
  c.height = h;
  const ctx = c.getContext("2d")!;
  ctx.drawImage(source, 0, 0, w, h);
  ctx.globalCompositeOperation = "source-in";
  ctx.fillStyle = color;
  ctx.fillRect(0, 0, w, h);
  return c;
}

function outline(tinted: HTMLCanvasElement, w: number, h: number): HTMLCanvasElement {
  const c = document.createElement("canvas");
  c.width = w;
  c.height = h;
  const ctx = c.getContext("2d")!;
  const d = Math.max(2, Math.round(Math.max(w, h) / 400));
  for (const [dx, dy] of [
    [d, 0],
    [-d, 0],
    [0, d],
    [0, -d],
  ]) {
    ctx.drawImage(tinted, dx, dy);
  }
  ctx.globalCompositeOperation = "destination-out";
  ctx.drawImage(tinted, 0, 0);
  return c;
}

/**
 * A small preview of the photo cut out by the mask, cropped to its box, for the
 * candidate list (so the user sees which garment each candidate is).
 */
export function cutoutPreview(
  photo: HTMLImageElement,
  mask: DrawableMask,
  size = 160,
): HTMLCanvasElement {
  const W = photo.naturalWidth;
  const H = photo.naturalHeight;
  const [x0, y0, x1, y1] = mask.bbox ?? [0, 0, W, H];
  const bw = Math.max(1, x1 - x0);
  const bh = Math.max(1, y1 - y0);
  const s = size / Math.max(bw, bh);
  const full = document.createElement("canvas");
  full.width = Math.round(W * s);
  full.height = Math.round(H * s);
  const fctx = full.getContext("2d")!;
  fctx.drawImage(photo, 0, 0, full.width, full.height);
  fctx.globalCompositeOperation = "destination-in";
  fctx.drawImage(mask.source, 0, 0, full.width, full.height);
  const out = document.createElement("canvas");
  out.width = size;
  out.height = size;
  const octx = out.getContext("2d")!;
  octx.drawImage(full, -x0 * s + (size - bw * s) / 2, -y0 * s + (size - bh * s) / 2);
  return out;
}
