// The one place the page talks to the server: every call carries the API key and every
// failure becomes an `ApiError` with the API's own code and sentence, so pages show what
// the server said instead of a bare status.
import type { components } from "./schema";

export type Schemas = components["schemas"];
type ErrorBody = Schemas["ErrorBody"];

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string | null,
  ) {
    super(message);
  }
}

type Query = Record<string, string | number | boolean | undefined | null>;

export class Client {
  // `onUnauthorized` hears of a key the server stopped accepting (revoked while the page
  // was open), so the page can sign out instead of failing view by view.
  constructor(
    private readonly key: string,
    private readonly onUnauthorized?: () => void,
  ) {}

  async request<T>(method: string, path: string, options: { query?: Query; body?: unknown } = {}): Promise<T> {
    const url = new URL(path, window.location.origin);
    for (const [name, value] of Object.entries(options.query ?? {})) {
      if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, String(value));
    }
    const headers: Record<string, string> = { authorization: `Bearer ${this.key}` };
    if (options.body !== undefined) headers["content-type"] = "application/json";
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers,
        body: options.body === undefined ? undefined : JSON.stringify(options.body),
      });
    } catch {
      throw new ApiError(0, "unreachable", "The server did not answer. Is it running?");
    }
    const text = await response.text();
    const json: unknown = text ? safeParse(text) : undefined;
    if (!response.ok) {
      if (response.status === 401) this.onUnauthorized?.();
      const detail = (json as ErrorBody | undefined)?.error;
      throw new ApiError(
        response.status,
        detail?.code ?? "http_" + response.status,
        detail?.message ?? `The server answered ${response.status}.`,
        detail?.field,
      );
    }
    return json as T;
  }
}

function safeParse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
