// The explorer's static build: `npx vite build web` (scripts/setup.sh) writes web/dist, which the
// server serves at `/`. Relative asset paths, no CDN, everything bundled, so it works offline.
import { defineConfig } from 'vite';
import preact from '@preact/preset-vite';

export default defineConfig({
  base: './',
  plugins: [preact()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: false,
    // One small app: keep it in as few requests as possible.
    assetsInlineLimit: 0,
    chunkSizeWarningLimit: 300,
  },
  server: { proxy: { '/api': 'http://127.0.0.1:8080' } },
});
