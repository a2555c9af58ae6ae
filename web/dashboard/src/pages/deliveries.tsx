// The delivery log, newest first. The first page is read again every two seconds, so new
// deliveries and changes of state show up without a reload; filters live in the address.
import { useEffect, useRef, useState } from "preact/hooks";
import type { Delivery, DeliveryQuery, DeliveryStatus, Destination } from "../api/endpoints";
import { useApi } from "../context";
import { useAction, useLoad } from "../hooks";
import { go, href } from "../router";
import { Failure, Loading, Time } from "../ui/bits";
import { StatusBadge, StatusOptions } from "../ui/status";
import { destinationLabel } from "./state";

const FILTERS = ["destination", "status", "event_type", "stream", "since", "until"] as const;
type Filters = Partial<Record<(typeof FILTERS)[number], string>>;

export function Deliveries({ query }: { query: URLSearchParams }) {
  const api = useApi();
  const filters: Filters = {};
  for (const name of FILTERS) filters[name] = query.get(name) ?? undefined;
  const request: DeliveryQuery = {
    ...filters,
    status: filters.status as DeliveryStatus | undefined,
    since: filters.since ? new Date(filters.since).toISOString() : undefined,
    until: filters.until ? new Date(filters.until).toISOString() : undefined,
    limit: 50,
  };
  const key = JSON.stringify(request);
  const live = useLoad(() => api.deliveries(request), [api, key], 2000);
  const [older, setOlder] = useState<Delivery[]>([]);
  const [cursor, setCursor] = useState<string | null>();
  useEffect(() => {
    setOlder([]);
    setCursor(undefined);
  }, [key]);
  const more = useAction(async () => {
    const page = await api.deliveries({ ...request, cursor: (cursor ?? live.data?.next_cursor) || undefined });
    setOlder([...older, ...page.data]);
    setCursor(page.next_cursor ?? null);
  });
  const seen = useRef(new Set<string>());
  const rows = merge(live.data?.data ?? [], older);
  const fresh = new Set(rows.filter((d) => seen.current.size > 0 && !seen.current.has(d.id)).map((d) => d.id));
  useEffect(() => {
    for (const d of rows) seen.current.add(d.id);
  });
  const hasMore = cursor === undefined ? !!live.data?.next_cursor : cursor !== null;
  const destinations = useLoad(() => api.destinations(), [api]).data?.data ?? [];
  const names = new Map(destinations.map((d) => [d.id, destinationLabel(d)]));

  return (
    <section>
      <div class="title-row">
        <h1>Delivery log</h1>
        <span class="live" aria-live="off">
          {live.error ? "not updating" : "live"}
        </span>
      </div>
      {/* Made afresh when the address's filters change, so what is typed is never reset
          by an update that lands after it. */}
      <FilterForm key={JSON.stringify(filters)} filters={filters} destinations={destinations} />
      <Failure error={live.error} />
      {!live.data && !live.error ? <Loading what="deliveries" /> : null}
      {live.data && rows.length === 0 ? <p class="empty">No deliveries match. New ones appear here as they are made.</p> : null}
      {rows.length > 0 ? (
        <div class="table-wrap">
          <table class="list" aria-label="Deliveries">
            <thead>
              <tr>
                <th>Event</th>
                <th>Status</th>
                <th>Attempts</th>
                <th class="wide-only">Destination</th>
                <th>Made</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((d) => (
                <tr key={d.id} class={fresh.has(d.id) ? "fresh" : ""} data-delivery={d.id}>
                  <td class="wrap" data-label="Event">
                    <a href={href(["deliveries", d.id])}>{d.event_type}</a>
                    <div class="muted small-text">
                      {d.stream} #{d.event_seq}
                    </div>
                  </td>
                  <td data-label="Status">
                    <StatusBadge status={d.status} />
                    {d.response_code ? <span class="muted small-text"> {d.response_code}</span> : null}
                  </td>
                  <td data-label="Attempts">{d.attempts}</td>
                  <td class="wide-only wrap" data-label="Destination">
                    <a href={href(["destinations", d.destination])}>{names.get(d.destination) ?? d.destination}</a>
                  </td>
                  <td data-label="Made">
                    <Time at={d.created_at} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
      {hasMore ? (
        <button type="button" class="quiet" onClick={() => void more.run()} disabled={more.busy}>
          Load older
        </button>
      ) : null}
      <Failure error={more.error} />
    </section>
  );
}

function merge(live: Delivery[], older: Delivery[]): Delivery[] {
  const ids = new Set(live.map((d) => d.id));
  return [...live, ...older.filter((d) => !ids.has(d.id))];
}

function FilterForm({ filters, destinations }: { filters: Filters; destinations: Destination[] }) {
  const [draft, setDraft] = useState<Filters>(filters);
  const set = (name: keyof Filters) => (e: Event) =>
    setDraft({ ...draft, [name]: (e.currentTarget as HTMLInputElement).value || undefined });
  return (
    <form
      class="filters"
      aria-label="Filters"
      onSubmit={(e) => {
        e.preventDefault();
        go(["deliveries"], draft);
      }}
    >
      <label>
        Destination
        <select value={draft.destination ?? ""} onChange={set("destination")}>
          <option value="">all</option>
          {destinations.map((d) => (
            <option key={d.id} value={d.id}>
              {destinationLabel(d)}
            </option>
          ))}
        </select>
      </label>
      <label>
        Status
        <select value={draft.status ?? ""} onChange={set("status")}>
          <option value="">all</option>
          <StatusOptions />
        </select>
      </label>
      <label>
        Event type
        <input value={draft.event_type ?? ""} onInput={set("event_type")} placeholder="turn.completed" />
      </label>
      <label>
        Stream
        <input value={draft.stream ?? ""} onInput={set("stream")} />
      </label>
      <label>
        Since
        <input type="datetime-local" value={draft.since ?? ""} onInput={set("since")} />
      </label>
      <label>
        Until
        <input type="datetime-local" value={draft.until ?? ""} onInput={set("until")} />
      </label>
      <div class="actions">
        <button type="submit">Filter</button>
        <a class="button quiet" href={href(["deliveries"])}>
          Clear
        </a>
      </div>
    </form>
  );
}
