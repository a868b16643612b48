/// <reference types="vitest/config" />
// Vite: `npm run dev` serves the app with the API and the WebSocket proxied to a funnel server
// (FUNNEL_SERVER, default http://127.0.0.1:8080); `npm run build` writes dist/ for
// `funnel serve --web-dir clients/web/dist`. With FUNNEL_API_STUB=1 the dev and preview servers
// answer GET/POST /api/v1/boards themselves (an in-memory list), for a server without the API.

import type { IncomingMessage, ServerResponse } from "node:http";
import { defineConfig, type Plugin } from "vite";
import { VitePWA } from "vite-plugin-pwa";

const server = process.env.FUNNEL_SERVER ?? "http://127.0.0.1:8080";

type Middlewares = {
  use(path: string, handler: (req: IncomingMessage, res: ServerResponse, next: () => void) => void): void;
};

/** A stand-in for the boards API: only for development against a server that lacks it. */
function apiStub(): Plugin {
  const boards: { id: string; name: string; entity: string; createdAt: number }[] = [];
  const mount = (middlewares: Middlewares) =>
    middlewares.use("/api/v1/boards", (req, res, next) => {
      if (req.url !== "/" && req.url !== "") return next();
      res.setHeader("content-type", "application/json");
      if (req.method === "GET") {
        res.end(JSON.stringify({ boards }));
        return;
      }
      if (req.method !== "POST") return next();
      let body = "";
      req.on("data", (chunk: Buffer) => (body += chunk.toString()));
      req.on("end", () => {
        const { entity, name } = JSON.parse(body || "{}") as { entity?: string; name?: string };
        const board = {
          id: `b${Date.now().toString(36)}`,
          name: name ?? "Deals",
          entity: entity ?? "deal",
          createdAt: Date.now(),
        };
        boards.push(board);
        res.statusCode = 201;
        res.end(JSON.stringify(board));
      });
    });
  return {
    name: "funnel-api-stub",
    configureServer(dev) {
      mount(dev.middlewares);
    },
    configurePreviewServer(preview) {
      mount(preview.middlewares);
    },
  };
}

const proxy = {
  "/api": { target: server },
  "/ws": { target: server.replace(/^http/, "ws"), ws: true },
  "/healthz": { target: server },
};

/**
 * The service worker (Workbox, generated at build time): it precaches the app's files so that a
 * reload or a new tab opens funnel while offline; the board itself then comes from IndexedDB.
 * Navigations fall back to the cached index.html, except the server's own paths.
 */
const offline = VitePWA({
  registerType: "autoUpdate",
  injectRegister: "script-defer",
  manifest: {
    name: "funnel",
    short_name: "funnel",
    description: "Real-time CRM pipelines",
    theme_color: "#1f6feb",
    background_color: "#f5f7fa",
    display: "standalone",
    start_url: "/",
    icons: [],
  },
  workbox: {
    globPatterns: ["**/*.{js,css,html,svg,png,ico,webmanifest}"],
    navigateFallback: "/index.html",
    // `/auth/`: the identity provider's sign-in and its callback are the server's, never the shell.
    navigateFallbackDenylist: [/^\/api\//, /^\/auth\//, /^\/ws\//, /^\/healthz/, /^\/readyz/, /^\/metrics/],
    clientsClaim: true,
    skipWaiting: true,
    cleanupOutdatedCaches: true,
  },
});

export default defineConfig({
  plugins: process.env.FUNNEL_API_STUB === "1" ? [apiStub(), offline] : [offline],
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  server: { proxy },
  preview: { proxy },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: true,
    target: "es2022",
  },
  test: {
    include: ["test/**/*.test.ts"],
    // The randomized store and convergence tests take seconds on a loaded 2-core machine.
    testTimeout: 30_000,
    environment: "node",
  },
});
