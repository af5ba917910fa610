// Drives Debian's headless Chromium with its fake camera and microphone through the real
// recorder page, for pipe-server's end-to-end tests (tests/it/browser.rs).
//
//   node drive.mjs record <page url> <seconds>
//       opens the page, clicks "Record", records <seconds>, clicks "Stop", waits for
//       "saved". Prints one JSON line per recorder event as it happens (so the test can
//       cut connections or kill the server mid-recording), then a final line
//       {"event":"done", recordingId, sha256, length, durationMs, reconnects}
//       where sha256 is over every byte MediaRecorder produced, in order.
//   node drive.mjs watch <page url> <seconds>
//       as record, then waits for the page's own playback: the demo page's
//       <video id="playback"> must reach canplay with the MP4 the server links to; prints
//       {"event":"played", duration, videoWidth, videoHeight, src}.
//   node drive.mjs play <page url> <media url>
//       opens the page, plays the media in a <video> and prints
//       {"event":"canplay", duration, videoWidth, videoHeight} or {"event":"error", …}.
//
// Exit code 0 on success; on failure a line {"event":"failed","message":…} and 1.

import { chromium } from "playwright-core";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const emit = (event) => process.stdout.write(JSON.stringify(event) + "\n");

async function launch() {
  const userDataDir = mkdtempSync(join(tmpdir(), "pipe-chromium-"));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.PIPE_CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--use-fake-device-for-media-stream",
      "--use-fake-ui-for-media-stream",
      "--autoplay-policy=no-user-gesture-required",
      // A server with a certificate made by the test: trust that one key, nothing else.
      ...(process.env.PIPE_CHROMIUM_SPKI
        ? [`--ignore-certificate-errors-spki-list=${process.env.PIPE_CHROMIUM_SPKI}`]
        : []),
    ],
  });
  return {
    context,
    close: async () => {
      await context.close();
      rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

async function record(pageUrl, seconds, watch = false) {
  const { context, close } = await launch();
  try {
    const page = await context.newPage();
    page.on("console", (m) => {
      if (m.type() === "error") emit({ event: "console", text: m.text() });
    });
    await page.exposeFunction("pipeReport", (e) => emit(e));
    await page.goto(pageUrl);
    await page.waitForFunction(() => window.pipeRecorder);
    await page.evaluate(() => {
      const r = window.pipeRecorder;
      window.pipeChunks = [];
      window.pipeReconnects = 0;
      r.addEventListener("chunk", (e) => window.pipeChunks.push(e.detail.data));
      for (const type of ["recordingstarted", "uploadprogress", "connection", "saved", "playable", "maxduration", "error"]) {
        r.addEventListener(type, (e) => {
          if (type === "connection" && e.detail.state === "reconnecting") window.pipeReconnects++;
          window.pipeReport({ event: type, ...e.detail });
        });
      }
    });
    // Playwright waits for the button to be enabled: the recorder is "ready".
    await page.getByRole("button", { name: "Record" }).click();
    await page.waitForTimeout(seconds * 1000);
    // The recorder may have stopped by itself (the environment's longest recording).
    const stop = page.getByRole("button", { name: "Stop" });
    if (await stop.isEnabled()) await stop.click();
    const outcome = await page.evaluate(
      () =>
        new Promise((resolve) => {
          const r = window.pipeRecorder;
          if (r.state === "saved") resolve({ ok: true });
          r.addEventListener("saved", () => resolve({ ok: true }));
          r.addEventListener("error", (e) => resolve({ ok: false, message: e.detail.message }));
          setTimeout(() => resolve({ ok: false, message: "not saved within 90 s" }), 90000);
        }),
    );
    if (!outcome.ok) throw new Error(outcome.message);
    const done = await page.evaluate(async () => {
      const r = window.pipeRecorder;
      const total = window.pipeChunks.reduce((n, c) => n + c.byteLength, 0);
      const all = new Uint8Array(total);
      let at = 0;
      for (const c of window.pipeChunks) {
        all.set(c, at);
        at += c.byteLength;
      }
      const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", all));
      const sha256 = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
      return {
        recordingId: r.uploader.recordingId,
        sha256,
        length: total,
        durationMs: r.durationMs,
        mimeType: r.recorder.mimeType,
        reconnects: window.pipeReconnects,
      };
    });
    emit({ event: "done", ...done });
    if (watch) {
      const played = await page.evaluate(
        () =>
          new Promise((resolve) => {
            const video = document.getElementById("playback");
            const report = () =>
              resolve({
                event: "played",
                duration: video.duration,
                videoWidth: video.videoWidth,
                videoHeight: video.videoHeight,
                src: video.currentSrc,
                hidden: video.hidden,
              });
            if (video.readyState >= 3) report();
            video.addEventListener("canplay", report);
            video.addEventListener("error", () =>
              resolve({ event: "failed", message: `playback: ${video.error?.message ?? "error"}` }),
            );
            setTimeout(() => resolve({ event: "failed", message: "the page did not play within 60 s" }), 60000);
          }),
      );
      emit(played);
    }
  } finally {
    await close();
  }
}

async function play(pageUrl, mediaUrl) {
  const { context, close } = await launch();
  try {
    const page = await context.newPage();
    await page.goto(pageUrl);
    const result = await page.evaluate(
      (src) =>
        new Promise((resolve) => {
          const video = document.createElement("video");
          video.muted = true;
          video.preload = "auto";
          video.oncanplay = () =>
            resolve({
              event: "canplay",
              duration: video.duration,
              videoWidth: video.videoWidth,
              videoHeight: video.videoHeight,
            });
          video.onerror = () =>
            resolve({ event: "error", code: video.error?.code, message: video.error?.message });
          setTimeout(() => resolve({ event: "error", message: "no canplay within 30 s" }), 30000);
          video.src = src;
          document.body.appendChild(video);
        }),
      mediaUrl,
    );
    emit(result);
    if (result.event !== "canplay") process.exitCode = 1;
  } finally {
    await close();
  }
}

const [mode, ...args] = process.argv.slice(2);
try {
  if (mode === "record") await record(args[0], Number(args[1] ?? 5));
  else if (mode === "watch") await record(args[0], Number(args[1] ?? 5), true);
  else if (mode === "play") await play(args[0], args[1]);
  else throw new Error(`unknown mode ${mode}: use record or play`);
} catch (e) {
  emit({ event: "failed", message: String(e?.stack ?? e) });
  process.exitCode = 1;
}
