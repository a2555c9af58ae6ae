// One destination: how it is set up, what it has done lately (charts), and the
// operator's levers: pause, rotate the secret, send a test ping, replay, delete.
import type { ComponentChildren } from "preact";
import { useState } from "preact/hooks";
import type { Destination } from "../api/endpoints";
import { useApi } from "../context";
import { useAction, useLoad } from "../hooks";
import { go, href } from "../router";
import { Failure, Loading, Time } from "../ui/bits";
import { AttemptCard } from "../ui/attempt";
import { SecretOnce } from "../ui/secret";
import { Charts } from "./charts";
import { ReplayPanel } from "./replay";
import { DestinationState, destinationLabel } from "./state";

export function DestinationView({ id }: { id: string }) {
  const api = useApi();
  const loaded = useLoad(() => api.destination(id), [api, id], 5000);
  if (!loaded.data) return loaded.error ? <Failure error={loaded.error} /> : <Loading what="the destination" />;
  const d = loaded.data;
  return (
    <section>
      <p class="crumbs">
        <a href={href(["destinations"])}>Destinations</a> /
      </p>
      <div class="title-row">
        <h1 class="wrap">{destinationLabel(d)}</h1>
        <DestinationState destination={d} />
      </div>
      <Summary d={d} />
      <Actions d={d} onChange={loaded.reload} />
      <Charts id={d.id} />
      <ReplayPanel id={d.id} />
    </section>
  );
}

function Summary({ d }: { d: Destination }) {
  const rows: [string, ComponentChildren][] = [
    ["URL", <span class="wrap">{d.url}</span>],
    ["Scope", d.stream ? `stream ${d.stream}` : "every stream of the org"],
    ["Event types", d.types?.length ? d.types.join(", ") : "all"],
    ["Level", d.level],
    ["Signature", d.signature.scheme + (d.secret_hint ? ` (secret …${d.secret_hint})` : "")],
    ["Retry schedule", d.retry_schedule_secs.map(seconds).join(" → ")],
    ["Last attempt", <Time at={d.last_attempt_at} />],
    ["Last success", <Time at={d.last_success_at} />],
    ["Failures in a row", d.consecutive_failures],
    ["Concurrency", concurrency(d)],
  ];
  if (d.filter) rows.push(["Filter", <code class="wrap">{JSON.stringify(d.filter)}</code>]);
  if (Object.keys(d.headers).length) rows.push(["Headers", Object.keys(d.headers).join(", ")]);
  return (
    <dl class="summary">
      {rows.map(([name, value]) => (
        <div key={name}>
          <dt>{name}</dt>
          <dd>{value}</dd>
        </div>
      ))}
      <div>
        <dt>Deliveries</dt>
        <dd>
          <a href={href(["deliveries"], { destination: d.id })}>Open the delivery log for this destination</a>
        </dd>
      </div>
    </dl>
  );
}

// The limit as the node that answered holds it, and why it last moved.
function concurrency(d: Destination): string {
  const now = d.concurrency_now;
  const mode = `${d.concurrency}, at most ${d.max_in_flight}`;
  if (!now) return mode;
  const last = now.history[now.history.length - 1];
  return `${mode}; ${now.limit} at once now (${now.in_flight} open)` + (last ? `, last ${last.reason}` : "");
}

export function seconds(secs: number): string {
  return secs < 60 ? `${secs} s` : secs < 3600 ? `${Math.round(secs / 60)} min` : `${+(secs / 3600).toFixed(1)} h`;
}

function Actions({ d, onChange }: { d: Destination; onChange: () => Promise<void> }) {
  const api = useApi();
  const [confirming, setConfirming] = useState<"delete" | "rotate">();
  const [rotated, setRotated] = useState<string | null>();
  const toggle = useAction(async () => {
    await api.updateDestination(d.id, { enabled: !d.enabled || !!d.disabled_reason });
    await onChange();
  });
  const rotate = useAction(async () => {
    const answer = await api.rotateSecret(d.id);
    setConfirming(undefined);
    setRotated(answer.secret ?? null);
    await onChange();
  });
  const remove = useAction(async () => {
    await api.deleteDestination(d.id);
    go(["destinations"]);
  });
  const ping = useAction(() => api.testPing(d.id, {}));
  const paused = !d.enabled || !!d.disabled_reason;
  return (
    <div class="panel">
      <div class="actions">
        <a class="button" href={href(["destinations", d.id, "edit"])}>
          Edit
        </a>
        <button type="button" onClick={() => void toggle.run()} disabled={toggle.busy}>
          {paused ? "Resume" : "Pause"}
        </button>
        <button type="button" onClick={() => void ping.run()} disabled={ping.busy}>
          {ping.busy ? "Sending…" : "Send test ping"}
        </button>
        {d.signature.scheme === "ed25519" ? null : (
          <button type="button" onClick={() => setConfirming("rotate")}>
            Rotate secret
          </button>
        )}
        <button type="button" class="danger" onClick={() => setConfirming("delete")}>
          Delete
        </button>
      </div>
      <Failure error={toggle.error ?? rotate.error ?? remove.error ?? ping.error} />
      {confirming === "delete" ? (
        <div class="confirm" role="alertdialog" aria-label="Confirm delete">
          <p>Delete this destination? Its pending deliveries are canceled and never sent.</p>
          <button type="button" class="danger" autoFocus onClick={() => void remove.run()} disabled={remove.busy}>
            Delete for good
          </button>
          <button type="button" class="quiet" onClick={() => setConfirming(undefined)}>
            Keep it
          </button>
        </div>
      ) : null}
      {confirming === "rotate" ? (
        <div class="confirm" role="alertdialog" aria-label="Confirm rotation">
          <p>Make a new signing secret? For 24 hours requests carry signatures of both the old and the new one.</p>
          <button type="button" autoFocus onClick={() => void rotate.run()} disabled={rotate.busy}>
            Rotate
          </button>
          <button type="button" class="quiet" onClick={() => setConfirming(undefined)}>
            Cancel
          </button>
        </div>
      ) : null}
      {rotated !== undefined ? <SecretOnce secret={rotated} publicKey={d.public_key} /> : null}
      {ping.data ? (
        <div class="ping-result">
          <h2>Test ping: {ping.data.delivered ? "delivered" : "not delivered"}</h2>
          <AttemptCard attempt={ping.data} />
        </div>
      ) : null}
    </div>
  );
}
