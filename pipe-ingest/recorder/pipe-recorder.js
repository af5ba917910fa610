// pipe-recorder.js: records camera and microphone in the browser and streams the
// recording to a Pipe server while it is being recorded. Dependency-free ES module.
//
//   import { PipeRecorder } from "/recorder/pipe-recorder.js";
//   const recorder = new PipeRecorder({ preview: document.querySelector("video") });
//   recorder.addEventListener("saved", (e) => console.log("saved", e.detail.recordingId));
//   await recorder.init();   // asks for camera and mic, shows the preview, fires "ready"
//   recorder.start();        // fires "recordingstarted", then "uploadprogress" as bytes become durable
//   recorder.stop();         // fires "saved" once the server holds every byte
//
// Events (detail in brackets), in the spirit of Pipe's JS events API:
//   ready           {mimeType}                        ~ onReadyToRecord
//   recordingstarted {recordingId}                    ~ onRecordingStarted
//   chunk           {offset, data: Uint8Array}        every MediaRecorder chunk, in order
//   uploadprogress  {acked, total, percent}           ~ onUploadProgress
//   connection      {state: "open"|"reconnecting"|"closed", code?, reason?}
//   saved           {recordingId, length, durationMs} ~ onSaveOk
//   playable        {recordingId, url, snapshotUrl}   the MP4 can be played (short-lived link)
//   maxduration     {recordingId, maxDurationMs}      the environment's longest recording was
//                                                     reached; the recorder stops by itself
//   error           {message, code?}                  ~ onRecordingError
//
// The wire protocol is pipe-ingest/PROTOCOL.md (subprotocol "pipe.stream.v1"): every
// chunk carries its byte offset, the server acknowledges durable bytes only, and after any
// disconnect the recorder reconnects and resumes from the server's durable offset.

const SUBPROTOCOL = "pipe.stream.v1";

/** Close codes after which reconnecting cannot help. */
const FATAL_CLOSES = new Map([
  [1009, "a message was too big"],
  [4400, "the server refused a message"],
  [4401, "the server refused to resume this recording"],
  [4404, "the server does not know this recording"],
  [4410, "the recording was already finished"],
  [4413, "the recording is too large"],
]);

const MIME_CANDIDATES = [
  "video/webm;codecs=vp8,opus",
  "video/webm;codecs=vp9,opus",
  "video/webm",
  "video/mp4;codecs=avc1,mp4a",
  "video/mp4",
];

/** Picks the first MIME type this browser's MediaRecorder supports. */
export function pickMimeType(candidates = MIME_CANDIDATES) {
  if (typeof MediaRecorder === "undefined") return null;
  return candidates.find((type) => MediaRecorder.isTypeSupported(type)) ?? "";
}

/**
 * Streams bytes to a Pipe server with offsets, keeping every byte until the server says
 * it is durable, and resuming after disconnects.
 */
export class StreamUploader extends EventTarget {
  /**
   * @param {string} url     the WebSocket URL of /v1/stream
   * @param {object} options {mimeType, payload, maxRetryDelayMs, giveUpAfterMs, describe}
   *   describe: a function returning {cameraName, microphoneName, page}, asked only for
   *   what the server's environment collects (the `collect` of `started`); nothing else
   *   of it is sent.
   */
  constructor(url, options = {}) {
    super();
    this.url = url;
    this.mimeType = options.mimeType ?? "";
    this.payload = options.payload;
    this.describe = options.describe ?? null;
    this.maxRetryDelayMs = options.maxRetryDelayMs ?? 2000;
    this.giveUpAfterMs = options.giveUpAfterMs ?? 120000;
    this.recordingId = null;
    this.resumeToken = null;
    this.total = 0; // bytes pushed
    this.acked = 0; // bytes the server holds durably
    this.pending = []; // [{offset, data}] not yet acknowledged, in order
    this.sentUpTo = 0; // bytes sent on the current connection
    this.maxChunk = 1 << 20;
    this.finishing = false;
    this.done = false;
    this.socket = null;
    this.ready = false; // the server answered started/resumed on this socket
    this.retries = 0;
    this.disconnectedAt = null;
  }

  /** Opens the connection and starts a recording. */
  connect() {
    if (this.done) return;
    const socket = new WebSocket(this.url, SUBPROTOCOL);
    socket.binaryType = "arraybuffer";
    this.socket = socket;
    this.ready = false;
    socket.onopen = () => {
      const hello = this.recordingId
        ? { type: "resume", recording: this.recordingId, resumeToken: this.resumeToken }
        : { type: "start", mimeType: this.mimeType || undefined, payload: this.payload };
      socket.send(JSON.stringify(hello));
    };
    socket.onmessage = (event) => this.#onMessage(socket, event);
    socket.onclose = (event) => this.#onClose(socket, event);
  }

  /** Queues bytes that follow everything pushed before. */
  push(bytes) {
    const data = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
    if (data.byteLength === 0) return;
    this.pending.push({ offset: this.total, data });
    this.total += data.byteLength;
    this.#flush();
  }

  /** No more bytes will be pushed: finish once every byte is durable. */
  finish() {
    this.finishing = true;
    this.#maybeFinish();
  }

  /** Drops the connection (the recorder resumes on its own unless `stop` is true). */
  disconnect(stop = false) {
    if (stop) this.done = true;
    this.socket?.close();
  }

  #emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  #onMessage(socket, event) {
    if (socket !== this.socket || typeof event.data !== "string") return;
    const message = JSON.parse(event.data);
    switch (message.type) {
      case "started":
        this.recordingId = message.recording;
        this.resumeToken = message.resumeToken;
        this.#describe(socket, message.collect ?? []);
        this.#onReady(message.offset, message.maxChunk);
        this.#emit("started", { recordingId: this.recordingId, maxDurationMs: message.maxDurationMs ?? null });
        break;
      case "resumed":
        this.#onReady(message.offset, message.maxChunk);
        break;
      case "ack":
        this.#onAck(message.offset);
        break;
      case "finished":
        this.done = true;
        this.#emit("finished", { recordingId: message.recording, length: message.length });
        break;
    }
  }

  /** Tells the server what it collects of the person recording, and nothing more. */
  #describe(socket, collect) {
    if (!collect.length || !this.describe) return;
    const known = this.describe();
    const message = { type: "describe" };
    for (const field of ["cameraName", "microphoneName", "page"]) {
      if (collect.includes(field) && typeof known[field] === "string" && known[field]) {
        message[field] = known[field];
      }
    }
    if (Object.keys(message).length > 1) socket.send(JSON.stringify(message));
  }

  #onReady(offset, maxChunk) {
    this.ready = true;
    this.maxChunk = maxChunk;
    this.#emit("connection", { state: "open" });
    this.#onAck(offset);
    // Send again from what the server holds, which may be past our last ack.
    this.sentUpTo = this.acked;
    this.#flush();
  }

  #onAck(offset) {
    if (offset > this.acked) {
      this.acked = offset;
      // Only progress resets the backoff: a server that accepts the resume and then fails
      // every append (a full disk) must not be retried at full speed forever.
      this.retries = 0;
      this.disconnectedAt = null;
    }
    while (this.pending.length) {
      const first = this.pending[0];
      const end = first.offset + first.data.byteLength;
      if (end <= this.acked) {
        this.pending.shift();
      } else {
        if (first.offset < this.acked) {
          first.data = first.data.subarray(this.acked - first.offset);
          first.offset = this.acked;
        }
        break;
      }
    }
    this.#emit("progress", { acked: this.acked, total: this.total });
    this.#maybeFinish();
  }

  #flush() {
    const socket = this.socket;
    if (!socket || !this.ready || socket.readyState !== WebSocket.OPEN) return;
    for (const chunk of this.pending) {
      const end = chunk.offset + chunk.data.byteLength;
      if (end <= this.sentUpTo) continue;
      let from = Math.max(this.sentUpTo, chunk.offset);
      while (from < end) {
        const to = Math.min(end, from + this.maxChunk);
        const frame = new Uint8Array(8 + (to - from));
        new DataView(frame.buffer).setBigUint64(0, BigInt(from));
        frame.set(chunk.data.subarray(from - chunk.offset, to - chunk.offset), 8);
        socket.send(frame);
        from = to;
      }
      this.sentUpTo = end;
    }
  }

  #maybeFinish() {
    if (!this.finishing || this.done || !this.ready) return;
    if (this.acked === this.total && this.socket?.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify({ type: "finish", length: this.total }));
    }
  }

  #onClose(socket, event) {
    if (socket !== this.socket) return;
    this.ready = false;
    if (this.done) {
      this.#emit("connection", { state: "closed", code: event.code, reason: event.reason });
      return;
    }
    const fatal = FATAL_CLOSES.get(event.code);
    if (fatal) {
      this.done = true;
      this.#emit("error", { message: `${fatal}: ${event.reason}`, code: event.code });
      return;
    }
    this.disconnectedAt ??= Date.now();
    if (Date.now() - this.disconnectedAt > this.giveUpAfterMs) {
      this.done = true;
      this.#emit("error", { message: "the server could not be reached again", code: event.code });
      return;
    }
    const delay = Math.min(this.maxRetryDelayMs, 100 * 2 ** this.retries++);
    this.#emit("connection", { state: "reconnecting", code: event.code, reason: event.reason, delay });
    setTimeout(() => this.connect(), delay);
  }
}

/**
 * Camera and microphone recorder with a live preview that streams to a Pipe server.
 */
export class PipeRecorder extends EventTarget {
  /**
   * @param {object} options
   *   server     base URL of the Pipe server (default: where this module was loaded from)
   *   preview    a <video> element for the live preview
   *   payload    the operator's string, echoed in every webhook
   *   environment the id of the environment to record into (Pipe's eid; default: the
   *              server's default environment, `production`)
   *   mimeType   force a MediaRecorder type (default: the first supported of WebM, MP4)
   *   timeslice  milliseconds between chunks, at most 1000 (default 1000)
   *   constraints getUserMedia constraints (default: camera and microphone)
   *   playback   after "saved", ask the server for a short-lived link to the MP4 and fire
   *              "playable" {recordingId, url, snapshotUrl} once it exists (default true;
   *              the environment may turn client playback off)
   */
  constructor(options = {}) {
    super();
    const base = new URL(options.server ?? new URL("..", import.meta.url));
    base.protocol = base.protocol === "https:" ? "wss:" : "ws:";
    const root = base.href.endsWith("/") ? base.href : base.href + "/";
    this.playbackUrl = new URL("v1/stream/playback", root.replace(/^ws/, "http")).href;
    this.playback = options.playback ?? true;
    const stream = new URL("v1/stream", root);
    if (options.environment) stream.searchParams.set("environment", options.environment);
    this.streamUrl = stream.href;
    this.preview = options.preview ?? null;
    this.payload = options.payload;
    this.mimeType = options.mimeType ?? null;
    this.timeslice = Math.min(options.timeslice ?? 1000, 1000);
    this.constraints = options.constraints ?? { video: true, audio: true };
    this.media = null;
    this.recorder = null;
    this.uploader = null;
    this.state = "idle"; // idle → ready → recording → uploading → saved | error (→ recording …)
    this.startedAt = 0;
    this.durationMs = 0;
  }

  #emit(type, detail = {}) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  #fail(message, code) {
    this.state = "error";
    this.#emit("error", { message, code });
  }

  /** Asks for camera and microphone and shows the preview. */
  async init() {
    if (!navigator.mediaDevices?.getUserMedia || typeof MediaRecorder === "undefined") {
      this.#fail("this browser cannot record (no getUserMedia or MediaRecorder)");
      return;
    }
    try {
      this.media = await navigator.mediaDevices.getUserMedia(this.constraints);
    } catch (e) {
      this.#fail(`camera or microphone not available: ${e.name}: ${e.message}`);
      return;
    }
    this.mimeType ??= pickMimeType();
    if (this.preview) {
      this.preview.muted = true;
      this.preview.srcObject = this.media;
      this.preview.play?.().catch(() => {});
    }
    this.state = "ready";
    this.#emit("ready", { mimeType: this.mimeType });
  }

  /** Starts recording and streaming: after "ready", and again after "saved" or "error". */
  start() {
    if (!this.media || !["ready", "saved", "error"].includes(this.state)) {
      throw new Error(`cannot start while ${this.state}`);
    }
    if (this.recorder?.state === "recording") {
      // A recording whose upload failed: let it go before starting the next.
      this.recorder.ondataavailable = this.recorder.onstop = null;
      this.recorder.stop();
    }
    const recorder = new MediaRecorder(this.media, this.mimeType ? { mimeType: this.mimeType } : {});
    const mimeType = recorder.mimeType || this.mimeType || "";
    const media = this.media;
    const uploader = new StreamUploader(this.streamUrl, {
      mimeType,
      payload: this.payload,
      // Read only if the server's environment collects them.
      describe: () => ({
        cameraName: media.getVideoTracks()[0]?.label,
        microphoneName: media.getAudioTracks()[0]?.label,
        page: location.href,
      }),
    });
    this.recorder = recorder;
    this.uploader = uploader;

    uploader.addEventListener("started", (e) => {
      this.#emit("recordingstarted", { recordingId: e.detail.recordingId });
      // The environment's longest recording: stop there, as Pipe's recorder does at `mrt`.
      const limit = e.detail.maxDurationMs;
      if (limit) {
        const left = Math.max(0, this.startedAt + limit - Date.now());
        setTimeout(() => {
          if (this.recorder === recorder && this.state === "recording") {
            this.#emit("maxduration", { recordingId: e.detail.recordingId, maxDurationMs: limit });
            this.stop();
          }
        }, left);
      }
    });
    uploader.addEventListener("progress", (e) => {
      const { acked, total } = e.detail;
      const percent = total ? Math.floor((100 * acked) / total) : 0;
      this.#emit("uploadprogress", { acked, total, percent });
    });
    uploader.addEventListener("connection", (e) => this.#emit("connection", e.detail));
    uploader.addEventListener("finished", (e) => {
      this.state = "saved";
      this.#emit("saved", { recordingId: e.detail.recordingId, length: e.detail.length, durationMs: this.durationMs });
      if (this.playback) this.#watchPlayback(uploader, Date.now() + 120000);
    });
    uploader.addEventListener("error", (e) => this.#fail(e.detail.message, e.detail.code));

    // Blobs arrive in order, but reading them is asynchronous: chain the reads so bytes
    // are pushed in the order they were recorded.
    let queue = Promise.resolve();
    recorder.ondataavailable = (event) => {
      if (!event.data || event.data.size === 0) return;
      const blob = event.data;
      queue = queue.then(async () => {
        const data = new Uint8Array(await blob.arrayBuffer());
        this.#emit("chunk", { offset: uploader.total, data });
        uploader.push(data);
      });
    };
    recorder.onstop = () => {
      this.durationMs = Date.now() - this.startedAt;
      queue = queue.then(() => uploader.finish());
    };
    recorder.onerror = (event) => this.#fail(`recording failed: ${event.error?.message ?? "unknown"}`);

    uploader.connect();
    recorder.start(this.timeslice);
    this.startedAt = Date.now();
    this.state = "recording";
  }

  /**
   * Asks the server, once a second until `deadline`, for a link to the recording's MP4;
   * the resume token is the capability. Fires "playable" when there is one. Gives up
   * quietly on a refusal (playback off, another origin) or when the recording failed.
   */
  async #watchPlayback(uploader, deadline) {
    const body = JSON.stringify({ recording: uploader.recordingId, resumeToken: uploader.resumeToken });
    while (Date.now() < deadline && this.uploader === uploader) {
      try {
        const response = await fetch(this.playbackUrl, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body,
        });
        if (!response.ok && response.status !== 503) return;
        if (response.ok) {
          const answer = await response.json();
          if (answer.mp4Url) {
            this.#emit("playable", {
              recordingId: uploader.recordingId,
              url: answer.mp4Url,
              snapshotUrl: answer.snapshotUrl ?? null,
            });
            return;
          }
          if (answer.state === "failed") return;
        }
      } catch {
        // The network: try again.
      }
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }

  /** Stops recording; "saved" follows once the server holds every byte. */
  stop() {
    if (this.state !== "recording") return;
    this.state = "uploading";
    this.recorder.stop();
  }

  /** Stops the camera and microphone. */
  release() {
    this.media?.getTracks().forEach((track) => track.stop());
  }
}
