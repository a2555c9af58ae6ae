// The destination form's text fields turned into the API's shapes, with a sentence for
// what cannot be read; the server checks the rest and names the field it refuses.
import type { Destination, DestinationIn } from "../api/endpoints";

export type FormValues = {
  url: string;
  name: string;
  stream: string;
  types: string;
  level: "user" | "progress" | "debug";
  filter: string;
  headers: string;
  retrySchedule: string;
  timeoutSecs: string;
  maxInFlight: string;
  concurrency: "adaptive" | "fixed";
  scheme: "standard" | "ed25519" | "hmac_sha256_hex";
  hmacHeader: string;
  hmacPrefix: string;
  hmacSigned: string;
  hmacTimestampHeader: string;
};

export const emptyForm: FormValues = {
  url: "",
  name: "",
  stream: "",
  types: "",
  level: "user",
  filter: "",
  headers: "",
  retrySchedule: "",
  timeoutSecs: "",
  maxInFlight: "",
  concurrency: "adaptive",
  scheme: "standard",
  hmacHeader: "X-Signature",
  hmacPrefix: "sha256=",
  hmacSigned: "{timestamp}.{body}",
  hmacTimestampHeader: "X-Timestamp",
};

export class FormError extends Error {
  constructor(
    readonly field: keyof FormValues,
    message: string,
  ) {
    super(message);
  }
}

export function valuesOf(d: Destination): FormValues {
  return {
    url: d.url,
    name: d.name ?? "",
    stream: d.stream ?? "",
    types: (d.types ?? []).join(", "),
    level: d.level,
    filter: d.filter ? JSON.stringify(d.filter, null, 2) : "",
    headers: Object.entries(d.headers)
      .map(([name, value]) => `${name}: ${value}`)
      .join("\n"),
    retrySchedule: d.retry_schedule_secs.join(", "),
    timeoutSecs: String(d.timeout_secs),
    maxInFlight: String(d.max_in_flight),
    concurrency: d.concurrency,
    scheme: d.signature.scheme,
    hmacHeader: d.signature.header ?? emptyForm.hmacHeader,
    hmacPrefix: d.signature.prefix ?? "",
    hmacSigned: d.signature.signed ?? emptyForm.hmacSigned,
    hmacTimestampHeader: d.signature.timestamp_header ?? "",
  };
}

// The request body for these values; the stream, set at create only, is not part of it.
export function bodyOf(v: FormValues): DestinationIn {
  const body: DestinationIn = { url: v.url.trim(), level: v.level };
  if (v.name.trim()) body.name = v.name.trim();
  const types = v.types
    .split(/[\s,]+/)
    .map((t) => t.trim())
    .filter(Boolean);
  body.types = types.length ? types : null;
  if (v.filter.trim()) {
    try {
      body.filter = JSON.parse(v.filter) as DestinationIn["filter"];
    } catch {
      throw new FormError("filter", "The filter is not valid JSON.");
    }
  } else {
    body.filter = null;
  }
  body.headers = headersOf(v.headers);
  if (v.retrySchedule.trim()) {
    const delays = v.retrySchedule.split(/[\s,]+/).filter(Boolean).map(Number);
    if (delays.some((d) => !Number.isInteger(d) || d < 0)) {
      throw new FormError("retrySchedule", "The retry schedule is whole seconds, separated by commas.");
    }
    body.retry_schedule_secs = delays;
  }
  if (v.timeoutSecs.trim()) {
    const secs = Number(v.timeoutSecs);
    if (!Number.isInteger(secs)) throw new FormError("timeoutSecs", "The timeout is a whole number of seconds.");
    body.timeout_secs = secs;
  }
  if (v.maxInFlight.trim()) {
    const most = Number(v.maxInFlight);
    if (!Number.isInteger(most)) throw new FormError("maxInFlight", "At most in flight is a whole number.");
    body.max_in_flight = most;
  }
  body.concurrency = v.concurrency;
  body.signature =
    v.scheme === "hmac_sha256_hex"
      ? {
          scheme: v.scheme,
          header: v.hmacHeader.trim(),
          prefix: v.hmacPrefix,
          signed: v.hmacSigned,
          timestamp_header: v.hmacTimestampHeader.trim() || null,
        }
      : { scheme: v.scheme };
  return body;
}

function headersOf(text: string): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [index, line] of text.split("\n").entries()) {
    if (!line.trim()) continue;
    const colon = line.indexOf(":");
    if (colon <= 0) throw new FormError("headers", `Header line ${index + 1} is not "Name: value".`);
    headers[line.slice(0, colon).trim()] = line.slice(colon + 1).trim();
  }
  return headers;
}
