// A real webhook receiver on 127.0.0.1 for the browser tests: it keeps what it gets and
// answers 200, or 500 while told to fail.
import http from "node:http";
import crypto from "node:crypto";

export async function startReceiver() {
  const received = [];
  let failing = false;
  const server = http.createServer((request, response) => {
    const chunks = [];
    request.on("data", (chunk) => chunks.push(chunk));
    request.on("end", () => {
      received.push({ headers: request.headers, body: Buffer.concat(chunks).toString("utf8") });
      response.writeHead(failing ? 500 : 200, { "content-type": "application/json" });
      response.end(JSON.stringify(failing ? { error: "receiver told to fail" } : { ok: true }));
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}/hooks`,
    received,
    fail: (on) => {
      failing = on;
    },
    close: () =>
      new Promise((resolve) => {
        server.close(resolve);
        server.closeAllConnections();
      }),
  };
}

// Standard Webhooks: HMAC-SHA256 over "id.timestamp.body" with the secret's bytes.
export function verifies(secret, { headers, body }) {
  const key = Buffer.from(secret.replace(/^whsec_/, ""), "base64");
  const expected = crypto
    .createHmac("sha256", key)
    .update(`${headers["webhook-id"]}.${headers["webhook-timestamp"]}.${body}`)
    .digest("base64");
  return headers["webhook-signature"].split(" ").some((s) => s === `v1,${expected}`);
}
