/**
 * The catalog admin page (admin.html): enter the admin token, preview and upload a feed,
 * start a crawl of a shop, watch the jobs (polled) with each job's report, list and delete sources.
 *
 * Talks to `/api/admin` (services/admin) with `Authorization: Bearer <token>`; the token is
 * kept in this tab's sessionStorage only.
 */

import "./admin.css";
import { describeError } from "./http";

const BASE = "/api/admin";
const TOKEN_KEY = "fittingroom.admin.token";
const FAST_POLL_MS = 1000;
const SLOW_POLL_MS = 5000;

interface BadRow {
  file: string;
  line: number | null;
  id: string | null;
  reason: string;
}

interface Job {
  id: string;
  kind: string;
  source: string;
  status: "queued" | "running" | "done" | "failed";
  done: number;
  total: number | null;
  progress: number | null;
  params: Record<string, unknown>;
  report: Record<string, unknown> | null;
  error: string | null;
  created_at: string;
}

interface IndexState {
  encoder: string;
  generation: number;
  written_at: string;
  vectors: number | null;
}

interface Source {
  name: string;
  products: number;
  images: number;
  tryon_able: number;
  tryon_share: number | null;
  without_link: number;
  without_image: number;
  index: IndexState | null;
  index_freshness: "fresh" | "stale" | "pending" | "no_index";
  last_job: Job | null;
}

interface Preview {
  format: string;
  preset: string;
  columns: string[];
  mapping: Record<string, string>;
  rows_read: number;
  products: number;
  bad_rows: BadRow[];
}

class AdminError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

function $(id: string): HTMLElement {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} is missing from admin.html`);
  return el;
}

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  text?: string,
  cls?: string,
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (cls) node.className = cls;
  return node;
}

function token(): string {
  return sessionStorage.getItem(TOKEN_KEY) ?? "";
}

async function api<T>(path: string, init: RequestInit = {}): Promise<T> {
  const headers = new Headers(init.headers);
  headers.set("Authorization", `Bearer ${token()}`);
  let resp: Response;
  try {
    resp = await fetch(BASE + path, { ...init, headers });
  } catch {
    throw new AdminError("The server cannot be reached.", 0);
  }
  const body: unknown = await resp.json().catch(() => null);
  if (!resp.ok) {
    const fallback =
      resp.status === 404 && path === "/jobs"
        ? "The admin API is off (FITTINGROOM_ADMIN_TOKEN is not set on the server)."
        : `HTTP ${resp.status}`;
    throw new AdminError(describeError(body, fallback), resp.status);
  }
  return body as T;
}

function say(id: string, text: string, kind: "ok" | "error" | "" = ""): void {
  const out = $(id);
  out.textContent = text;
  out.className = kind;
}

function formData(): FormData | null {
  const file = ($("feed-file") as HTMLInputElement).files?.[0];
  const source = ($("feed-source") as HTMLInputElement).value.trim();
  if (!file || !source) {
    say("upload-status", "Choose a feed file and give its source name.", "error");
    return null;
  }
  const data = new FormData();
  data.append("file", file, file.name);
  data.append("source", source);
  for (const spec of ($("feed-mapping") as HTMLInputElement).value.split(/\s+/)) {
    if (spec) data.append("mapping", spec);
  }
  data.append("prune", ($("feed-prune") as HTMLInputElement).checked ? "true" : "false");
  return data;
}

function badRowsList(rows: BadRow[], limit = 20): HTMLElement {
  const list = el("ul", undefined, "bad-rows");
  for (const row of rows.slice(0, limit)) {
    const where = row.line !== null ? `${row.file}:${row.line}` : row.file;
    list.append(el("li", `${where}: ${row.reason}`));
  }
  if (rows.length > limit) list.append(el("li", `… and ${rows.length - limit} more`));
  return list;
}

function showPreview(p: Preview): void {
  const box = $("preview");
  box.replaceChildren();
  box.hidden = false;
  box.append(
    el("p", `${p.format.toUpperCase()}, preset ${p.preset}: ${p.rows_read} rows read → ${p.products} products.`),
  );
  const table = el("table", undefined, "mapping");
  table.append(el("caption", "Column mapping"));
  for (const [src, dst] of Object.entries(p.mapping)) {
    const tr = el("tr");
    tr.append(el("td", src), el("td", "→"), el("td", dst));
    table.append(tr);
  }
  box.append(table);
  const unmapped = p.columns.filter((c) => !(c in p.mapping));
  if (unmapped.length) box.append(el("p", `Kept as product attributes: ${unmapped.join(", ")}`));
  box.append(el("h3", p.bad_rows.length ? "First bad rows" : "No bad rows in the rows read."));
  if (p.bad_rows.length) box.append(badRowsList(p.bad_rows));
}

interface FailedUrl {
  url: string;
  reason: string;
}

function failedUrlsList(rows: FailedUrl[], limit = 50): HTMLElement {
  const list = el("ul", undefined, "failed-urls");
  for (const row of rows.slice(0, limit)) list.append(el("li", `${row.url}: ${row.reason}`));
  if (rows.length > limit) list.append(el("li", `… and ${rows.length - limit} more`));
  return list;
}

function crawlSummary(cell: HTMLElement, r: Record<string, unknown>): void {
  const failed = (r.failed_urls as FailedUrl[] | undefined) ?? [];
  const phase = r.phase === "crawl" ? "crawling: " : r.phase === "ingest" ? "ingesting: " : "";
  cell.append(
    el("p", `${phase}${String(r.pages ?? 0)} pages, ${String(r.products ?? 0)} products, ${failed.length} failed URLs`, "crawl-summary"),
  );
  if (failed.length) {
    const details = el("details");
    details.append(el("summary", "failed URLs"), failedUrlsList(failed));
    cell.append(details);
  }
}

function reportSummary(job: Job): HTMLElement {
  const cell = el("td");
  if (job.error) cell.append(el("p", job.error, "error"));
  const r = job.report;
  if (!r) return cell;
  if (job.kind === "delete_source") {
    cell.append(el("p", `${String(r.deleted)} products deleted`));
    return cell;
  }
  if (job.kind === "prune") {
    cell.append(el("p", `${String(r.deleted)} products pruned (${String(r.seen)} seen in the last run)`));
    return cell;
  }
  if (job.kind === "crawl") {
    crawlSummary(cell, r);
    if (r.new === undefined) return cell; // still crawling (or failed before the ingest)
  }
  const bad = (r.bad_rows as BadRow[] | undefined) ?? [];
  cell.append(
    el("p", `${String(r.new)} new, ${String(r.updated)} updated, ${String(r.unchanged)} unchanged, ${bad.length} bad rows`, "summary"),
  );
  if (bad.length) {
    const details = el("details");
    details.append(el("summary", "bad rows"), badRowsList(bad, 50));
    cell.append(details);
  }
  return cell;
}

function jobRow(job: Job): HTMLTableRowElement {
  const tr = el("tr");
  tr.dataset.jobId = job.id;
  tr.dataset.status = job.status;
  const what =
    job.kind === "ingest"
      ? `ingest ${String(job.params.file ?? "")}`
      : job.kind === "crawl"
        ? `crawl ${String(job.params.url ?? "")}`
        : job.kind === "prune"
          ? "prune source"
          : "delete source";
  const bar = el("progress");
  bar.max = 1;
  if (job.progress !== null) bar.value = job.progress;
  const progress = el("td");
  const crawling = job.kind === "crawl" && job.status === "running" && job.report?.phase === "crawl";
  const unit = crawling ? " pages" : "";
  progress.append(bar, el("span", job.total !== null ? ` ${job.done}/${job.total}${unit}` : ""));
  tr.append(
    el("td", new Date(job.created_at).toLocaleTimeString()),
    el("td", what),
    el("td", job.source),
    el("td", job.status, `status ${job.status}`),
    progress,
    reportSummary(job),
  );
  return tr;
}

function indexCell(source: Source): HTMLTableCellElement {
  const cell = el("td", "", `freshness ${source.index_freshness}`);
  cell.dataset.freshness = source.index_freshness;
  if (!source.index) {
    cell.textContent = "no index";
    return cell;
  }
  const written = new Date(source.index.written_at);
  cell.textContent = `${source.index_freshness}: ${source.index.vectors ?? "?"} vectors, written ${written.toLocaleString()}`;
  cell.title = `generation ${source.index.generation} (${source.index.encoder})`;
  return cell;
}

function sourceButton(label: string, action: () => void): HTMLButtonElement {
  const button = el("button", label);
  button.type = "button";
  button.dataset.action = label.toLowerCase();
  button.addEventListener("click", action);
  return button;
}

function sourceRow(source: Source): HTMLTableRowElement {
  const tr = el("tr");
  tr.dataset.source = source.name;
  const action = el("td");
  action.append(
    sourceButton("Delete", () => void deleteSource(source)),
    sourceButton("Prune", () => void pruneSource(source)),
  );
  const share = source.tryon_share === null ? "" : ` (${Math.round(source.tryon_share * 100)}%)`;
  const cells: [string, string][] = [
    ["name", source.name],
    ["products", String(source.products)],
    ["images", String(source.images)],
    ["tryon", `${source.tryon_able}${share}`],
    ["no-link", String(source.without_link)],
    ["no-image", String(source.without_image)],
  ];
  for (const [key, text] of cells) {
    const td = el("td", text);
    td.dataset.col = key;
    tr.append(td);
  }
  tr.append(
    indexCell(source),
    el("td", source.last_job ? `${source.last_job.kind} ${source.last_job.status}` : ""),
    action,
  );
  return tr;
}

let timer: number | undefined;

async function refresh(): Promise<void> {
  window.clearTimeout(timer);
  let delay = SLOW_POLL_MS;
  if (!token()) {
    // say so at once when the server runs without an admin token (every admin route is off)
    const health: unknown = await fetch(BASE + "/healthz")
      .then((r) => r.json())
      .catch(() => null);
    if (health && (health as { enabled?: boolean }).enabled === false) {
      say("token-status", "The admin API is off: start the server with FITTINGROOM_ADMIN_TOKEN set.", "error");
    }
    return;
  }
  try {
    const [jobs, sources] = await Promise.all([
      api<{ jobs: Job[] }>("/jobs"),
      api<{ sources: Source[] }>("/sources"),
    ]);
    document.querySelector("#jobs tbody")!.replaceChildren(...jobs.jobs.map(jobRow));
    document.querySelector("#sources tbody")!.replaceChildren(...sources.sources.map(sourceRow));
    say("token-status", "Signed in.", "ok");
    if (jobs.jobs.some((j) => j.status === "queued" || j.status === "running")) delay = FAST_POLL_MS;
  } catch (err) {
    say("token-status", (err as Error).message, "error");
    if (err instanceof AdminError && (err.status === 401 || err.status === 403 || err.status === 404)) return;
  }
  timer = window.setTimeout(() => void refresh(), delay);
}

/** Resolves true once the user typed ``name`` and confirmed in the dialog, false on cancel. */
function confirmByName(title: string, text: string, name: string): Promise<boolean> {
  const dialog = $("confirm-dialog") as HTMLDialogElement;
  const input = $("confirm-name") as HTMLInputElement;
  const ok = $("confirm-ok") as HTMLButtonElement;
  $("confirm-title").textContent = title;
  $("confirm-text").textContent = text;
  input.value = "";
  input.placeholder = name;
  ok.disabled = true;
  input.oninput = () => {
    ok.disabled = input.value.trim() !== name;
  };
  ($("confirm-cancel") as HTMLButtonElement).onclick = () => dialog.close("cancel");
  dialog.returnValue = "";
  dialog.showModal();
  input.focus();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok" && input.value.trim() === name), {
      once: true,
    });
  });
}

async function deleteSource(source: Source): Promise<void> {
  const text = `Delete the ${source.products} products of "${source.name}" from the catalog?`;
  if (!(await confirmByName("Delete a source", text, source.name))) return;
  try {
    await api<Job>(`/sources/${encodeURIComponent(source.name)}`, { method: "DELETE" });
  } catch (err) {
    say("upload-status", (err as Error).message, "error");
  }
  void refresh();
}

async function pruneSource(source: Source): Promise<void> {
  const text = `Delete the products of "${source.name}" that its last successful upload or crawl did not contain?`;
  if (!(await confirmByName("Prune a source", text, source.name))) return;
  try {
    await api<Job>(`/sources/${encodeURIComponent(source.name)}/prune`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ confirm: source.name }),
    });
  } catch (err) {
    say("upload-status", (err as Error).message, "error");
  }
  void refresh();
}

function init(): void {
  const tokenInput = $("token") as HTMLInputElement;
  tokenInput.value = token();
  $("token-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, tokenInput.value.trim());
    void refresh();
  });
  $("preview-button").addEventListener("click", async () => {
    const data = formData();
    if (!data) return;
    say("upload-status", "Reading the feed…");
    try {
      showPreview(await api<Preview>("/feeds/preview", { method: "POST", body: data }));
      say("upload-status", "");
    } catch (err) {
      say("upload-status", (err as Error).message, "error");
    }
  });
  $("upload-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const data = formData();
    if (!data) return;
    const button = $("upload-button") as HTMLButtonElement;
    button.disabled = true;
    say("upload-status", "Uploading…");
    try {
      const job = await api<Job>("/feeds", { method: "POST", body: data });
      say("upload-status", `Queued as job ${job.id.slice(0, 8)}.`, "ok");
    } catch (err) {
      say("upload-status", (err as Error).message, "error");
    } finally {
      button.disabled = false;
    }
    void refresh();
  });
  $("crawl-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body: Record<string, unknown> = { url: ($("crawl-url") as HTMLInputElement).value.trim() };
    const source = ($("crawl-source") as HTMLInputElement).value.trim();
    if (source) body.source = source;
    for (const [id, key] of [
      ["crawl-pages", "max_pages"],
      ["crawl-depth", "max_depth"],
    ] as const) {
      const value = ($(id) as HTMLInputElement).value.trim();
      if (value) body[key] = Number(value);
    }
    const button = $("crawl-button") as HTMLButtonElement;
    button.disabled = true;
    say("crawl-status", "Starting…");
    try {
      const job = await api<Job>("/crawls", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
      say("crawl-status", `Queued as job ${job.id.slice(0, 8)} (source ${job.source}).`, "ok");
    } catch (err) {
      say("crawl-status", (err as Error).message, "error");
    } finally {
      button.disabled = false;
    }
    void refresh();
  });
  void refresh();
}

init();
