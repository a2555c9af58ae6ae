// A delivery's status as a coloured word, and as a choice in a list.
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
  return <Badge kind={KIND[status]}>{statusWord(status)}</Badge>;
}

export const STATUSES = Object.keys(KIND) as DeliveryStatus[];

export function statusWord(status: DeliveryStatus): string {
  return status.replace("_", " ");
}

export function StatusOptions({ statuses = STATUSES }: { statuses?: DeliveryStatus[] }) {
  return (
    <>
      {statuses.map((s) => (
        <option key={s} value={s}>
          {statusWord(s)}
        </option>
      ))}
    </>
  );
}
