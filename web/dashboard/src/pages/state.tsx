// A destination's state in a word, with the reason when Hookline turned it off itself.
import type { Destination } from "../api/endpoints";
import { Badge } from "../ui/bits";

export function DestinationState({ destination }: { destination: Destination }) {
  if (destination.disabled_reason) {
    return <Badge kind="bad">auto-disabled: {destination.disabled_reason}</Badge>;
  }
  return destination.enabled ? <Badge kind="good">enabled</Badge> : <Badge kind="warn">paused</Badge>;
}

export function destinationLabel(destination: Destination): string {
  return destination.name || destination.url;
}

export function percent(rate: number | null | undefined): string {
  return rate === null || rate === undefined ? "—" : `${(rate * 100).toFixed(rate === 1 ? 0 : 1)}%`;
}
