// A delivery's status as a coloured word.
import type { DeliveryStatus } from "../api/endpoints";
import { Badge } from "./bits";

const KIND: Record<DeliveryStatus, string> = {
  pending: "info",
  delivering: "info",
  delivered: "good",
  failed: "warn",
  dead_letter: "bad",
  canceled: "muted",
  intercepted: "warn",
};

export function StatusBadge({ status }: { status: DeliveryStatus }) {
  return <Badge kind={KIND[status]}>{status.replace("_", " ")}</Badge>;
}
