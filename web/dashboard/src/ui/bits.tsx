// Small pieces every view uses: times, status badges, error notes.
import type { ComponentChildren } from "preact";
import type { ApiError } from "../api/client";

export function Time({ at }: { at: string | null | undefined }) {
  if (!at) return <span class="muted">never</span>;
  const date = new Date(at);
  return (
    <time dateTime={at} title={date.toISOString()}>
      {ago(date)}
    </time>
  );
}

export function ago(date: Date, now = Date.now()): string {
  const secs = Math.round((now - date.getTime()) / 1000);
  const future = secs < 0;
  const abs = Math.abs(secs);
  const text =
    abs < 5 ? "just now" : abs < 90 ? `${abs} s` : abs < 5400 ? `${Math.round(abs / 60)} min` : abs < 129600 ? `${Math.round(abs / 3600)} h` : `${Math.round(abs / 86400)} d`;
  if (text === "just now") return text;
  return future ? `in ${text}` : `${text} ago`;
}

export function Badge({ kind, children }: { kind: string; children: ComponentChildren }) {
  return <span class={`badge badge-${kind}`}>{children}</span>;
}

export function Failure({ error }: { error: ApiError | undefined }) {
  if (!error) return null;
  return (
    <p class="failure" role="alert">
      {error.message}
      {error.field ? <span class="muted"> (field: {error.field})</span> : null}
    </p>
  );
}

export function Loading({ what }: { what: string }) {
  return <p class="muted">Loading {what}…</p>;
}
