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
  },
  server: {
    proxy: { "/api": { target: api, changeOrigin: false } },
  },
});
