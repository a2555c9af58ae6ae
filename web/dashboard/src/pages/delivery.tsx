// One delivery with every attempt: what was sent, what came back, and what the retry
// schedule still holds. Redeliver sends it again now, whatever its state.
import type { ComponentChildren } from "preact";
import { useState } from "preact/hooks";
import type { Attempt, Delivery, Destination } from "../api/endpoints";
import { useApi } from "../context";
import { useAction, useLoad } from "../hooks";
import { href } from "../router";
import { Failure, Loading, Time } from "../ui/bits";
import { AttemptCard } from "../ui/attempt";
import { StatusBadge } from "../ui/status";
import { seconds } from "./destination";
import { destinationLabel } from "./state";

const FINAL = ["delivered", "dead_letter", "canceled", "intercepted"];

export function DeliveryView({ id }: { id: string }) {
  const api = useApi();
  const detail = useLoad(() => api.delivery(id), [api, id], 2000);
  const destination = useLoad(
    () => (detail.data ? api.destination(detail.data.destination) : Promise.resolve(undefined)),
    [api, detail.data?.destination],
  );
  const [older, setOlder] = useState<{ attempts: Attempt[]; cursor: string | null }>();
  const loadOlder = useAction(async (cursor: string) => {
    const page = await api.olderAttempts(id, cursor);
    setOlder({ attempts: [...(older?.attempts ?? []), ...page.data], cursor: page.next_cursor ?? null });
  });
  const redeliver = useAction(async () => {
    await api.redeliver(id);
    await detail.reload();
  });
  if (!detail.data) return detail.error ? <Failure error={detail.error} /> : <Loading what="the delivery" />;
  const d = detail.data;
  const attempts = [...d.attempt_history].reverse();
  const olderCursor = older ? older.cursor : (d.older_attempts_cursor ?? null);
  return (
    <section>
      <p class="crumbs">
        <a href={href(["deliveries"])}>Delivery log</a> /
      </p>
      <div class="title-row">
        <h1 class="wrap">{d.event_type}</h1>
        <StatusBadge status={d.status} />
      </div>
      <dl class="summary">
        <Item name="Delivery">{d.id}</Item>
        <Item name="Event">
          {d.event_id} (stream {d.stream}, seq {d.event_seq})
        </Item>
        <Item name="Destination">
          <a href={href(["destinations", d.destination])}>
            {destination.data ? destinationLabel(destination.data) : d.destination}
          </a>
        </Item>
        <Item name="Made">
          <Time at={d.created_at} />
        </Item>
        <Item name="Attempts">{d.attempts}</Item>
        <Item name="Last answer">{d.response_code ?? d.error ?? "—"}</Item>
        <Item name="Retries left">
          <Remaining delivery={d} destination={destination.data} />
        </Item>
      </dl>
      <div class="actions">
        <button type="button" onClick={() => void redeliver.run()} disabled={redeliver.busy}>
          {redeliver.busy ? "Queuing…" : "Redeliver now"}
        </button>
      </div>
      <Failure error={redeliver.error} />
      <h2>Attempts, newest first</h2>
      {attempts.length === 0 ? <p class="empty">No attempt yet.</p> : null}
      {attempts.map((a, index) => (
        <AttemptCard key={a.id} attempt={a} open={index === 0} />
      ))}
      {(older?.attempts ?? []).map((a) => (
        <AttemptCard key={a.id} attempt={a} open={false} />
      ))}
      {olderCursor ? (
        <button type="button" class="quiet" onClick={() => void loadOlder.run(olderCursor)} disabled={loadOlder.busy}>
          Load older attempts
        </button>
      ) : null}
      <Failure error={loadOlder.error} />
    </section>
  );
}

function Item({ name, children }: { name: string; children: ComponentChildren }) {
  return (
    <div>
      <dt>{name}</dt>
      <dd class="wrap">{children}</dd>
    </div>
  );
}

// What the schedule still holds after the attempts made: the next one's time, and the
// delays of the ones after it (each ±10% jitter).
function Remaining({ delivery: d, destination }: { delivery: Delivery; destination: Destination | undefined }) {
  if (FINAL.includes(d.status)) return <span class="muted">none: the delivery has ended</span>;
  if (!destination) return <span class="muted">…</span>;
  const later = destination.retry_schedule_secs.slice(d.attempts);
  return (
    <span>
      {d.next_attempt_at ? (
        <>
          next <Time at={d.next_attempt_at} />
        </>
      ) : (
        "next when a slot frees"
      )}
      {later.length ? `, then after ${later.map(seconds).join(", ")}` : ", the last one"}
    </span>
  );
}
