// A destination's state in a word, with the reason when Hookline turned it off itself.
import type { Destination } from "../api/endpoints";
import { Badge } from "../ui/bits";

export function DestinationState({ destination }: { destination: Destination }) {
  if (destination.disabled_reason) {
    return <Badge kind="bad">auto-disabled: {destination.disabled_reason}</Badge>;
  }
  return destination.enabled ? <Badge kind="good">enabled</Badge> : <Badge kind="warn">paused</Badge>;
}

// A destination's name, or its URL shortened in the middle: a heading or a list cell
// stays one or two lines however long the URL is (the full one is on its page).
export function destinationLabel(destination: { name?: string | null; url: string }): string {
  if (destination.name) return destination.name;
  const url = destination.url;
  return url.length <= 64 ? url : `${url.slice(0, 44)}…${url.slice(-16)}`;
}

export function percent(rate: number | null | undefined): string {
  return rate === null || rate === undefined ? "—" : `${(rate * 100).toFixed(rate === 1 ? 0 : 1)}%`;
}
