// One attempt as the inspector shows it: the request exactly as sent (signed headers and
// body), and what the receiver answered, or why nothing was answered.
import type { Attempt } from "../api/endpoints";
import { Badge, Time } from "./bits";
import { Body, Headers } from "./body";

export function outcome(a: Attempt): { kind: string; text: string } {
  if (a.error_kind === "intercepted") return { kind: "warn", text: "intercepted" };
  if (a.response_status && a.response_status >= 200 && a.response_status < 300) {
    return { kind: "good", text: String(a.response_status) };
  }
  if (a.response_status) return { kind: "bad", text: String(a.response_status) };
  return { kind: "bad", text: a.error_kind ?? "failed" };
}

export function AttemptCard({ attempt: a, open = true }: { attempt: Attempt; open?: boolean }) {
  const result = outcome(a);
  return (
    <article class="attempt" aria-label={`Attempt ${a.attempt}`}>
      <header>
        <strong>Attempt {a.attempt}</strong>
        <Badge kind={result.kind}>{result.text}</Badge>
        <span>{a.latency_ms} ms</span>
        <Time at={a.started_at} />
        <span class="muted small-text">{a.id}</span>
      </header>
      {a.error ? (
        <p class="failure">
          {a.error_kind ? <strong>{a.error_kind}: </strong> : null}
          {a.error}
        </p>
      ) : null}
      <div class="exchange">
        <div>
          <h3>Request</h3>
          <p class="wrap">
            <code>POST {a.url}</code>
          </p>
          <Headers title="Headers" headers={a.request_headers} />
          <Body title="Body" text={a.request_body} open={open} />
        </div>
        <div>
          <h3>Response</h3>
          {a.response_status ? (
            <>
              <p>
                Status <code>{a.response_status}</code>
                {a.response_truncated ? <span class="muted"> (body cut at the capture limit)</span> : null}
              </p>
              <Headers title="Headers" headers={a.response_headers} />
              <Body title="Body" text={a.response_body} open={open} />
            </>
          ) : (
            <p class="muted">No response{a.error_kind === "intercepted" ? ": test mode kept it from being sent." : "."}</p>
          )}
        </div>
      </div>
    </article>
  );
}
