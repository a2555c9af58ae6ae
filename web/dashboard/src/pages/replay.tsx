// Bulk replay of one destination's deliveries: count first (a dry run), confirm, then
// watch the stored job until it ends.
import { useState } from "preact/hooks";
import type { DeliveryStatus, Replay } from "../api/endpoints";
import { useApi } from "../context";
import { useAction, useLoad } from "../hooks";
import { Badge, Failure } from "../ui/bits";
import { StatusOptions } from "../ui/status";

// A replay sends again what has ended or is waiting for a retry.
const REPLAYABLE: DeliveryStatus[] = ["dead_letter", "failed", "delivered", "canceled", "intercepted"];

export function ReplayPanel({ id }: { id: string }) {
  const api = useApi();
  const [status, setStatus] = useState<DeliveryStatus>("dead_letter");
  const [since, setSince] = useState("");
  const [started, setStarted] = useState<Replay>();
  const request = { status, since: since ? new Date(since).toISOString() : null };
  const count = useAction(() => api.replayCount(id, request));
  const start = useAction(async () => {
    const job = await api.startReplay(id, request);
    count.reset();
    setStarted(job);
  });
  return (
    <section class="panel" aria-label="Replay">
      <h2>Replay</h2>
      <form
        class="inline"
        onSubmit={(e) => {
          e.preventDefault();
          void count.run();
        }}
      >
        <label>
          Deliveries that are
          <select
            value={status}
            onChange={(e) => {
              setStatus(e.currentTarget.value as DeliveryStatus);
              count.reset();
            }}
          >
            <StatusOptions statuses={REPLAYABLE} />
          </select>
        </label>
        <label>
          made since
          <input
            type="datetime-local"
            value={since}
            onInput={(e) => {
              setSince(e.currentTarget.value);
              count.reset();
            }}
          />
        </label>
        <button type="submit" disabled={count.busy}>
          Count (dry run)
        </button>
      </form>
      <Failure error={count.error ?? start.error} />
      {count.data ? (
        <div class="confirm" role="status">
          <p>
            <strong data-replay-count>{count.data.count}</strong> {count.data.count === 1 ? "delivery" : "deliveries"} would
            be sent again.
          </p>
          {count.data.count > 0 ? (
            <button type="button" onClick={() => void start.run()} disabled={start.busy}>
              Replay {count.data.count}
            </button>
          ) : null}
          <button type="button" class="quiet" onClick={count.reset}>
            Cancel
          </button>
        </div>
      ) : null}
      {started ? <Progress replay={started} /> : null}
    </section>
  );
}

function Progress({ replay }: { replay: Replay }) {
  const api = useApi();
  const job = useLoad(() => api.replay(replay.id), [api, replay.id], 1000);
  const cancel = useAction(() => api.cancelReplay(replay.id));
  const r = job.data ?? replay;
  const running = r.state === "running";
  return (
    <div class="progress-box" aria-live="polite">
      <p>
        Replay {r.id}: <Badge kind={running ? "warn" : "good"}>{r.state}</Badge> {r.done} of {r.total} sent
        {r.failed ? `, ${r.failed} skipped` : ""}
      </p>
      <progress max={Math.max(r.total, 1)} value={r.done + r.failed} />
      {running ? (
        <button type="button" class="small quiet" onClick={() => void cancel.run()} disabled={cancel.busy}>
          Cancel replay
        </button>
      ) : null}
      <Failure error={job.error ?? cancel.error} />
    </div>
  );
}
