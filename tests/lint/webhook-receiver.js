// A webhook receiver for the tests, written the way a platform would write one: every request is checked with the
// `standardwebhooks` library (npm), and each webhook-id is processed once however often it arrives.
//
// usage: node webhook-receiver.js LOG_FILE SECRET[,SECRET...] [--simulated-time] [--tls CERT_PEM KEY_PEM]
//   Prints "listening on PORT" (loopback, any free port). A request verifies when any of the secrets verifies it
//   (a receiver that knows only the old or only the new secret during a rotation).
//   --simulated-time: the sender runs under a manual clock (simulated hours), so the timestamp's 5-minute
//   tolerance is measured against the sender's timestamp instead of this machine's clock; the signature, which
//   covers the timestamp, is still checked.
//   --tls: https with this certificate and key.
// Control: POST /__mode with a body of
//   up            verify, process once, answer 200 (400 when the signature does not verify)
//   down          drop the connection without an answer (an unreachable receiver)
//   gone          answer 410
//   throttle:N    answer 429 with Retry-After: N
//   hold          keep requests unanswered until the next mode change, which answers them as that mode would
// Log: one JSON line per request: {"id", "type", "valid", "error", "duplicate", "answer", "sequence", "contact",
// "data" (the payload's), "at"}.
"use strict";
const http = require("http");
const https = require("https");
const fs = require("fs");
const { Webhook } = require("standardwebhooks");

const [logFile, secretList, ...flags] = process.argv.slice(2);
if (!logFile || !secretList) {
  console.error("usage: node webhook-receiver.js LOG_FILE SECRET[,SECRET...] [--simulated-time] [--tls CERT KEY]");
  process.exit(2);
}
const simulated = flags.includes("--simulated-time");
const hooks = secretList.split(",").map((s) => {
  const w = new Webhook(s);
  if (simulated) w.verifyTimestamp = (header) => new Date(parseInt(header, 10) * 1000);
  return w;
});
const processed = new Set();
let mode = "up";
let held = [];

function log(entry) {
  fs.appendFileSync(logFile, JSON.stringify({ ...entry, at: Date.now() }) + "\n");
}

function answer(req, res, body) {
  const id = req.headers["webhook-id"];
  if (mode === "down") {
    log({ id, answer: "dropped" });
    req.socket.destroy();
    return;
  }
  if (mode === "gone") {
    log({ id, answer: 410 });
    res.writeHead(410).end();
    return;
  }
  if (mode.startsWith("throttle:")) {
    log({ id, answer: 429 });
    res.writeHead(429, { "Retry-After": mode.slice("throttle:".length) }).end();
    return;
  }
  let payload = null;
  let error = null;
  for (const w of hooks) {
    try {
      payload = w.verify(body, req.headers);
      error = null;
      break;
    } catch (e) {
      error = e.message;
    }
  }
  if (!payload) {
    log({ id, valid: false, error, answer: 400 });
    res.writeHead(400).end();
    return;
  }
  const duplicate = processed.has(id);
  processed.add(id);
  log({ id, type: payload.type, valid: true, duplicate, answer: 200, sequence: payload.sequence, contact: payload.contact_id,
        data: payload.data });
  res.writeHead(200, { "Content-Type": "application/json" }).end('{"received":true}');
}

const tlsAt = flags.indexOf("--tls");
const handler = (req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const body = Buffer.concat(chunks).toString("utf8");
    if (req.url === "/__mode") {
      mode = body.trim();
      const waiting = held;
      held = [];
      res.writeHead(204).end();
      for (const h of waiting) if (!h.req.socket.destroyed) answer(h.req, h.res, h.body);
      return;
    }
    if (mode === "hold") {
      log({ id: req.headers["webhook-id"], answer: "held" });
      held.push({ req, res, body });
      return;
    }
    answer(req, res, body);
  });
};
const server = tlsAt >= 0
  ? https.createServer({ cert: fs.readFileSync(flags[tlsAt + 1]), key: fs.readFileSync(flags[tlsAt + 2]) }, handler)
  : http.createServer(handler);
server.keepAliveTimeout = 60000;
server.listen(0, "127.0.0.1", () => console.log(`listening on ${server.address().port}`));
