// Destinations at a glance: state, success rate over the last day, last success and the
// current run of failures: the first place to look when a receiver goes quiet.
import type { Destination } from "../api/endpoints";
import { useApi } from "../context";
import { useLoad } from "../hooks";
import { href } from "../router";
import { Failure, Loading, Time } from "../ui/bits";
import { DestinationState, destinationLabel, percent } from "./state";

export function Destinations() {
  const api = useApi();
  const list = useLoad(() => api.destinations(), [api], 10000);
  return (
    <section>
      <div class="title-row">
        <h1>Destinations</h1>
        <a class="button" href={href(["destinations", "new"])}>
          New destination
        </a>
      </div>
      <Failure error={list.error} />
      {!list.data && !list.error ? <Loading what="destinations" /> : null}
      {list.data && list.data.data.length === 0 ? (
        <p class="empty">No destinations yet. Make one to start receiving events.</p>
      ) : null}
      {list.data && list.data.data.length > 0 ? (
        <div class="table-wrap">
          <table class="list">
            <thead>
              <tr>
                <th>Destination</th>
                <th>State</th>
                <th>Success (24 h)</th>
                <th>Last success</th>
                <th>Failures in a row</th>
              </tr>
            </thead>
            <tbody>
              {list.data.data.map((d) => (
                <Row key={d.id} destination={d} />
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
    </section>
  );
}

function Row({ destination }: { destination: Destination }) {
  const api = useApi();
  const stats = useLoad(() => api.stats(destination.id, "24h"), [api, destination.id]);
  return (
    <tr>
      <td class="wrap" data-label="Destination">
        <a href={href(["destinations", destination.id])}>{destinationLabel(destination)}</a>
        <div class="muted small-text">
          {destination.name ? destination.url : null}
          {destination.stream ? ` · stream ${destination.stream}` : " · org-wide"}
        </div>
      </td>
      <td data-label="State">
        <DestinationState destination={destination} />
      </td>
      <td data-label="Success (24 h)">{stats.data ? percent(stats.data.success_rate) : stats.error ? "?" : "…"}</td>
      <td data-label="Last success">
        <Time at={destination.last_success_at} />
      </td>
      <td data-label="Failures in a row" class={destination.consecutive_failures > 0 ? "bad-text" : ""}>{destination.consecutive_failures}</td>
    </tr>
  );
}
