// Who is signed in, shared with every view.
import { createContext } from "preact";
import { useContext } from "preact/hooks";
import type { Api } from "./api/endpoints";

export const ApiContext = createContext<Api | null>(null);

export function useApi(): Api {
  const api = useContext(ApiContext);
  if (!api) throw new Error("useApi outside a signed-in view");
  return api;
}
