import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

// `npm run dev` serves the page with hot reload and proxies the APIs to a running
// `fittingroom serve` (FITTINGROOM_API, default http://127.0.0.1:8000), so the page
// uses the same /api/<service>/ URLs as in production.
const api = process.env.FITTINGROOM_API ?? "http://127.0.0.1:8000";

export default defineConfig({
  base: "/",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: true,
    target: "es2022",
    // two pages: the shop page and the catalog admin page (its own entry, src/admin.ts)
    rollupOptions: {
      input: {
        main: fileURLToPath(new URL("./index.html", import.meta.url)),
        admin: fileURLToPath(new URL("./admin.html", import.meta.url)),
      },
    },
  },
  server: {
    proxy: { "/api": { target: api, changeOrigin: false } },
  },
});
