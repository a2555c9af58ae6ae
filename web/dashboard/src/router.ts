// Hash routes (`#/deliveries/dlv_…?…`): the server serves one page at `/`, and every view
// has an address that can be bookmarked, shared and reached with the back button.
import { useEffect, useState } from "preact/hooks";

export type Route = { path: string[]; query: URLSearchParams };

function current(): Route {
  const hash = window.location.hash.replace(/^#\/?/, "");
  const [path = "", query = ""] = hash.split("?", 2);
  return { path: path.split("/").filter(Boolean).map(decodeURIComponent), query: new URLSearchParams(query) };
}

export function useRoute(): Route {
  const [route, setRoute] = useState(current);
  useEffect(() => {
    const onChange = () => setRoute(current());
    window.addEventListener("hashchange", onChange);
    return () => window.removeEventListener("hashchange", onChange);
  }, []);
  return route;
}

// The address of a view, for `href`s.
export function href(path: string[], query?: Record<string, string | undefined>): string {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query ?? {})) if (value) params.set(name, value);
  const tail = params.toString();
  return "#/" + path.map(encodeURIComponent).join("/") + (tail ? "?" + tail : "");
}

export function go(path: string[], query?: Record<string, string | undefined>) {
  window.location.hash = href(path, query);
}
