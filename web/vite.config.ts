import { defineConfig } from "vite";

// The dashboard: web/index.html and web/src, built into web/dist, which Podflow serves at `/`.
// Hashed file names under assets/ let the server cache them for good (src/dashboard.ts).
export default defineConfig({
  root: import.meta.dirname,
  base: "/",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    reportCompressedSize: true,
  },
});
