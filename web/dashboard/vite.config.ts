// Builds the page into the folder the binary embeds. File names carry no hash, so the
// Rust side names three fixed files; the output is the same bytes for the same sources
// and lockfile, which `scripts/build-dashboard --check` relies on.
import { defineConfig } from "vite";

export default defineConfig({
  base: "/dashboard/",
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: {
    outDir: process.env.HOOKLINE_DASHBOARD_OUT ?? "../../crates/hookline-api/assets/dashboard",
    emptyOutDir: true,
    modulePreload: false,
    assetsInlineLimit: 0,
    cssCodeSplit: false,
    rolldownOptions: {
      output: {
        entryFileNames: "app.js",
        chunkFileNames: "app-[name].js",
        assetFileNames: "app[extname]",
      },
    },
  },
});
