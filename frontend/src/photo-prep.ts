/**
 * Getting a photo ready for upload, in the browser: photos under MIN_SIDE pixels on a side
 * are refused with a sentence (nothing can be found in them); photos over MAX_SIDE pixels on
 * their long side (phone photos of 12-50 MP) are downscaled to MAX_SIDE and re-encoded as
 * JPEG, so the upload is small and the service never refuses them for their size.
 * EXIF orientation is applied first (the pixels uploaded are the pixels shown).
 */

/** Longest side, in pixels, of the photo that is uploaded. */
export const MAX_SIDE = 2048;
/** Shortest side, in pixels, of a photo worth searching in. */
export const MIN_SIDE = 64;

export interface PreparedPhoto {
  /** What to upload and show: the file itself, or its downscaled JPEG. */
  file: File;
  /** Size of `file` in pixels (EXIF-oriented); 0 when the browser cannot decode it. */
  width: number;
  height: number;
  /** Size of the photo the shopper chose, before any downscaling. */
  originalWidth: number;
  originalHeight: number;
  scaled: boolean;
}

/** The photo is too small to search in; `message` says so to the shopper. */
export class PhotoTooSmall extends Error {}

/**
 * Prepare `file` for upload. Resolves with the file unchanged when the browser cannot decode it
 * (the service then says what is wrong with it). Throws PhotoTooSmall.
 */
export async function preparePhoto(file: File): Promise<PreparedPhoto> {
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
  } catch {
    return { file, width: 0, height: 0, originalWidth: 0, originalHeight: 0, scaled: false };
  }
  try {
    const { width, height } = bitmap;
    if (Math.min(width, height) < MIN_SIDE) {
      throw new PhotoTooSmall(
        `This photo is only ${width}×${height} pixels, too small to find a garment in. ` +
          `Choose a photo at least ${MIN_SIDE} pixels on each side.`,
      );
    }
    const long = Math.max(width, height);
    if (long <= MAX_SIDE) {
      return { file, width, height, originalWidth: width, originalHeight: height, scaled: false };
    }
    const s = MAX_SIDE / long;
    const w = Math.max(1, Math.round(width * s));
    const h = Math.max(1, Math.round(height * s));
    const canvas = new OffscreenCanvas(w, h);
    const ctx = canvas.getContext("2d");
    if (!ctx) throw new Error("This browser cannot shrink the photo; choose a smaller one.");
    ctx.imageSmoothingEnabled = true;
    ctx.imageSmoothingQuality = "high";
    ctx.drawImage(bitmap, 0, 0, w, h);
    const blob = await canvas.convertToBlob({ type: "image/jpeg", quality: 0.9 });
    const name = `${file.name.replace(/\.[^.]*$/, "") || "photo"}.jpg`;
    return {
      file: new File([blob], name, { type: "image/jpeg" }),
      width: w,
      height: h,
      originalWidth: width,
      originalHeight: height,
      scaled: true,
    };
  } finally {
    bitmap.close();
  }
}
