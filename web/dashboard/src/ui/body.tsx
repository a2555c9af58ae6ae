// A request or response body: JSON pretty-printed, anything else as text; collapsible,
// copyable, and never wider than its column however long a line is.
import { CopyButton } from "./copy";

export function pretty(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

export function Body({ title, text, open = true }: { title: string; text: string | null | undefined; open?: boolean }) {
  if (text === null || text === undefined || text === "") {
    return (
      <p class="muted">
        {title}: <em>empty</em>
      </p>
    );
  }
  const shown = pretty(text);
  return (
    <details class="body" open={open}>
      <summary>
        {title} <span class="muted">({text.length.toLocaleString()} bytes)</span>
      </summary>
      <div class="body-tools">
        <CopyButton value={shown} />
      </div>
      <pre tabIndex={0}>{shown}</pre>
    </details>
  );
}

export function Headers({ title, headers }: { title: string; headers: Record<string, string> }) {
  const names = Object.keys(headers).sort();
  return (
    <details class="body" open>
      <summary>
        {title} <span class="muted">({names.length})</span>
      </summary>
      {names.length === 0 ? (
        <p class="muted">none</p>
      ) : (
        <dl class="headers">
          {names.map((name) => (
            <div key={name}>
              <dt>{name}</dt>
              <dd>{headers[name]}</dd>
            </div>
          ))}
        </dl>
      )}
    </details>
  );
}
