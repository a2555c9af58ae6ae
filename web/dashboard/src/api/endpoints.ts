// The API operations the dashboard uses, typed from the OpenAPI document the server
// serves (`schema.d.ts` is generated from `openapi.json`, which a Rust test keeps current).
import type { operations } from "./schema";
import type { Client, Schemas } from "./client";

type QueryOf<K extends keyof operations> = NonNullable<operations[K]["parameters"]["query"]>;

export type Destination = Schemas["DestinationOut"];
export type DestinationIn = Schemas["DestinationIn"];
export type DestinationPatch = Schemas["DestinationPatch"];
export type Delivery = Schemas["DeliveryOut"];
export type DeliveryStatus = Schemas["DeliveryStatus"];
export type Attempt = Schemas["AttemptOut"];
export type Replay = Schemas["ReplayOut"];
export type DestinationStats = Schemas["DestinationStats"];
export type Page<T> = { data: T[]; next_cursor?: string | null };
export type DeliveryQuery = QueryOf<"list_deliveries">;
export type StatsWindow = NonNullable<QueryOf<"get_destination_stats">["window"]>;

const id = (value: string) => encodeURIComponent(value);

export const api = (client: Client) => ({
  testMode: () => client.request<Schemas["TestModeOut"]>("GET", "/v1/test-mode"),
  setTestMode: (enabled: boolean) =>
    client.request<Schemas["TestModeOut"]>("POST", `/v1/test-mode/${enabled ? "enable" : "disable"}`),
  interceptedLog: (cursor?: string) =>
    client.request<Schemas["Page_AttemptOut"]>("GET", "/v1/test-mode/log", { query: { cursor, limit: 50 } }),
  clearInterceptedLog: () => client.request<Schemas["LogCleared"]>("DELETE", "/v1/test-mode/log"),

  destinations: (cursor?: string) =>
    client.request<Schemas["Page_DestinationOut"]>("GET", "/v1/destinations", { query: { cursor, limit: 200 } }),
  destination: (dst: string) => client.request<Destination>("GET", `/v1/destinations/${id(dst)}`),
  createDestination: (body: DestinationIn, stream?: string) =>
    client.request<Schemas["DestinationCreated"]>(
      "POST",
      stream ? `/v1/streams/${id(stream)}/destinations` : "/v1/destinations",
      { body },
    ),
  updateDestination: (dst: string, body: DestinationPatch) =>
    client.request<Destination>("PATCH", `/v1/destinations/${id(dst)}`, { body }),
  deleteDestination: (dst: string) => client.request<unknown>("DELETE", `/v1/destinations/${id(dst)}`),
  rotateSecret: (dst: string) =>
    client.request<Schemas["DestinationRotated"]>("POST", `/v1/destinations/${id(dst)}/rotate-secret`, { body: {} }),
  testPing: (dst: string, body: Schemas["TestPingIn"]) =>
    client.request<Schemas["TestPingOut"]>("POST", `/v1/destinations/${id(dst)}/test`, { body }),
  stats: (dst: string, window: StatsWindow) =>
    client.request<DestinationStats>("GET", `/v1/destinations/${id(dst)}/stats`, { query: { window } }),
  replayCount: (dst: string, body: Schemas["ReplayIn"]) =>
    client.request<Schemas["ReplayCount"]>("POST", `/v1/destinations/${id(dst)}/replay`, {
      body: { ...body, dry_run: true },
    }),
  startReplay: (dst: string, body: Schemas["ReplayIn"]) =>
    client.request<Replay>("POST", `/v1/destinations/${id(dst)}/replay`, { body: { ...body, dry_run: false } }),
  replay: (replayId: string) => client.request<Replay>("GET", `/v1/replays/${id(replayId)}`),
  cancelReplay: (replayId: string) => client.request<Replay>("DELETE", `/v1/replays/${id(replayId)}`),

  deliveries: (query: DeliveryQuery) =>
    client.request<Schemas["Page_DeliveryOut"]>("GET", "/v1/deliveries", { query }),
  delivery: (dlv: string) => client.request<Schemas["DeliveryDetail"]>("GET", `/v1/deliveries/${id(dlv)}`),
  redeliver: (dlv: string) => client.request<unknown>("POST", `/v1/deliveries/${id(dlv)}/redeliver`),
  olderAttempts: (dlv: string, cursor: string) =>
    client.request<Schemas["Page_AttemptOut"]>("GET", "/v1/attempts", { query: { delivery: dlv, cursor } }),
});

export type Api = ReturnType<typeof api>;
