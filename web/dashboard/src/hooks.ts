// Loading what a view shows: the data, the error if the call failed, a way to load again,
// and an optional interval for views that update live.
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { ApiError } from "./api/client";

export type Loaded<T> = { data: T | undefined; error: ApiError | undefined; reload: () => Promise<void> };

export function useLoad<T>(load: () => Promise<T>, deps: unknown[], everyMs?: number): Loaded<T> {
  const [data, setData] = useState<T>();
  const [error, setError] = useState<ApiError>();
  const generation = useRef(0);
  const reload = useCallback(async () => {
    const mine = ++generation.current;
    try {
      const value = await load();
      if (mine === generation.current) {
        setData(value);
        setError(undefined);
      }
    } catch (e) {
      if (mine === generation.current) setError(asApiError(e));
    }
  }, deps);
  useEffect(() => {
    setData(undefined);
    void reload();
    if (!everyMs) return;
    const timer = window.setInterval(() => {
      if (document.visibilityState === "visible") void reload();
    }, everyMs);
    return () => {
      generation.current++;
      window.clearInterval(timer);
    };
  }, [reload, everyMs]);
  return { data, error, reload };
}

export function asApiError(e: unknown): ApiError {
  return e instanceof ApiError ? e : new ApiError(0, "unexpected", e instanceof Error ? e.message : String(e));
}

// An action a button starts: whether it is running, what it last gave, what went wrong.
export function useAction<A extends unknown[], T>(act: (...args: A) => Promise<T>) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError>();
  const [data, setData] = useState<T>();
  const run = async (...args: A): Promise<T | undefined> => {
    setBusy(true);
    setError(undefined);
    try {
      const value = await act(...args);
      setData(value);
      return value;
    } catch (e) {
      setError(asApiError(e));
      return undefined;
    } finally {
      setBusy(false);
    }
  };
  return { run, busy, error, data, reset: () => setData(undefined) };
}
