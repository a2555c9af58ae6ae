// Create or edit a destination. A new destination's secret is shown here once, with a
// copy button: the API never returns it again.
import { cloneElement, isValidElement, toChildArray, type ComponentChildren } from "preact";
import { useEffect, useState } from "preact/hooks";
import type { Destination } from "../api/endpoints";
import { useApi } from "../context";
import { useAction } from "../hooks";
import { go, href } from "../router";
import { Failure, Loading } from "../ui/bits";
import { SecretOnce } from "../ui/secret";
import { FormError, bodyOf, emptyForm, valuesOf, type FormValues } from "./form-fields";

export function DestinationForm({ id }: { id?: string }) {
  const api = useApi();
  const [original, setOriginal] = useState<Destination>();
  const [values, setValues] = useState<FormValues>(emptyForm);
  const [formError, setFormError] = useState<FormError>();
  const [created, setCreated] = useState<{ destination: Destination; secret?: string | null }>();
  const load = useAction(async (dst: string) => {
    const destination = await api.destination(dst);
    setOriginal(destination);
    setValues(valuesOf(destination));
  });
  useEffect(() => {
    if (id) void load.run(id);
  }, [id]);

  const save = useAction(async (v: FormValues) => {
    const body = bodyOf(v);
    if (original) {
      const { url, name, types, level, filter, headers, retry_schedule_secs, timeout_secs, max_in_flight, concurrency, signature } =
        body;
      const sameSignature = JSON.stringify(signature) === JSON.stringify(bodyOf(valuesOf(original)).signature);
      await api.updateDestination(original.id, {
        url,
        name: name ?? null,
        types,
        level,
        filter,
        headers,
        retry_schedule_secs: retry_schedule_secs ?? null,
        timeout_secs: timeout_secs ?? null,
        max_in_flight: max_in_flight ?? null,
        concurrency,
        ...(sameSignature ? {} : { signature }),
      });
      go(["destinations", original.id]);
    } else {
      const made = await api.createDestination(body, v.stream.trim() || undefined);
      setCreated({ destination: made, secret: made.secret });
    }
  });

  if (id && !original) return load.error ? <Failure error={load.error} /> : <Loading what="the destination" />;
  if (created) {
    return (
      <section>
        <h1>Destination created</h1>
        <SecretOnce secret={created.secret} publicKey={created.destination.public_key} />
        <p>
          <a class="button" href={href(["destinations", created.destination.id])}>
            Go to the destination
          </a>
        </p>
      </section>
    );
  }

  const set = (field: keyof FormValues) => (e: Event) =>
    setValues({ ...values, [field]: (e.currentTarget as HTMLInputElement).value });
  const submit = (e: Event) => {
    e.preventDefault();
    setFormError(undefined);
    try {
      bodyOf(values);
    } catch (error) {
      if (error instanceof FormError) return setFormError(error);
      throw error;
    }
    void save.run(values);
  };
  const problem = (field: keyof FormValues) =>
    formError?.field === field ? (
      <p class="failure" role="alert">
        {formError.message}
      </p>
    ) : null;

  return (
    <section>
      <h1>{original ? `Edit ${original.name || original.id}` : "New destination"}</h1>
      <form class="stacked" onSubmit={submit} noValidate>
        <Field label="URL" hint="Where events are sent (POST).">
          <input id="url" type="url" required value={values.url} onInput={set("url")} placeholder="https://example.com/webhooks" />
        </Field>
        <Field label="Name" hint="Optional; shown in lists instead of the URL.">
          <input id="name" value={values.name} onInput={set("name")} />
        </Field>
        {original ? null : (
          <Field label="Stream" hint="Optional: only this stream's events. Empty: every event of the org.">
            <input id="stream" value={values.stream} onInput={set("stream")} placeholder="sess_123" />
          </Field>
        )}
        <Field label="Event types" hint="Comma-separated, exact or prefix wildcard (run.*). Empty: every type.">
          <input id="types" value={values.types} onInput={set("types")} placeholder="turn.*, run.failed" />
        </Field>
        <Field label="Level" hint="user: user events; progress: and progress events; debug: everything.">
          <select id="level" value={values.level} onChange={set("level")}>
            <option value="user">user</option>
            <option value="progress">progress</option>
            <option value="debug">debug</option>
          </select>
        </Field>
        <Field label="Filter" hint='Optional JSON on the envelope, e.g. {"data.cost_usd": {"$gt": 1}}.'>
          <textarea id="filter" rows={3} value={values.filter} onInput={set("filter")} />
          {problem("filter")}
        </Field>
        <Field label="Headers" hint="One per line, Name: value. Secrets such as Authorization are sealed and shown masked.">
          <textarea id="headers" rows={3} value={values.headers} onInput={set("headers")} placeholder="Authorization: Bearer …" />
          {problem("headers")}
        </Field>
        <Field label="Retry schedule" hint="Seconds between attempts, comma-separated. Empty: the default (about 27 hours).">
          <input id="retry" value={values.retrySchedule} onInput={set("retrySchedule")} placeholder="5, 300, 1800, 7200" />
          {problem("retrySchedule")}
        </Field>
        <Field label="Timeout (seconds)" hint="Per attempt, 1–300. Empty: 30.">
          <input id="timeout" inputMode="numeric" value={values.timeoutSecs} onInput={set("timeoutSecs")} />
          {problem("timeoutSecs")}
        </Field>
        <Field label="At most in flight" hint="Requests open at once, 1–1000. Empty: 100.">
          <input id="max-in-flight" inputMode="numeric" value={values.maxInFlight} onInput={set("maxInFlight")} />
          {problem("maxInFlight")}
        </Field>
        <Field label="Concurrency" hint="Adaptive: as many at once as the receiver shows it can take, up to the most above.">
          <select id="concurrency" value={values.concurrency} onChange={set("concurrency")}>
            <option value="adaptive">adaptive</option>
            <option value="fixed">fixed</option>
          </select>
        </Field>
        <Field label="Signature scheme" hint="Standard Webhooks (HMAC) unless the receiver expects another convention.">
          <select id="scheme" value={values.scheme} onChange={set("scheme")}>
            <option value="standard">Standard Webhooks (HMAC-SHA256)</option>
            <option value="ed25519">Standard Webhooks (ed25519, v1a)</option>
            <option value="hmac_sha256_hex">HMAC-SHA256 hex in a header of your choice</option>
          </select>
        </Field>
        {values.scheme === "hmac_sha256_hex" ? (
          <fieldset>
            <legend>HMAC header</legend>
            <Field label="Signature header">
              <input id="hmac-header" value={values.hmacHeader} onInput={set("hmacHeader")} />
            </Field>
            <Field label="Prefix">
              <input id="hmac-prefix" value={values.hmacPrefix} onInput={set("hmacPrefix")} />
            </Field>
            <Field label="Signed content">
              <select id="hmac-signed" value={values.hmacSigned} onChange={set("hmacSigned")}>
                <option value="{timestamp}.{body}">{"{timestamp}.{body}"}</option>
                <option value="{body}">{"{body}"}</option>
              </select>
            </Field>
            <Field label="Timestamp header">
              <input id="hmac-timestamp" value={values.hmacTimestampHeader} onInput={set("hmacTimestampHeader")} />
            </Field>
          </fieldset>
        ) : null}
        <Failure error={save.error} />
        <div class="actions">
          <button type="submit" disabled={save.busy}>
            {save.busy ? "Saving…" : original ? "Save" : "Create destination"}
          </button>
          <a class="button quiet" href={original ? href(["destinations", original.id]) : href(["destinations"])}>
            Cancel
          </a>
        </div>
      </form>
    </section>
  );
}

// A labelled control: the label names it alone, and the hint is its description, so a
// screen reader (and a test) finds "URL" without the hint's words.
function Field({ label, hint, children }: { label: string; hint?: string; children: ComponentChildren }) {
  const [control, ...rest] = toChildArray(children);
  const id = isValidElement(control) ? (control.props as { id?: string }).id : undefined;
  const described = hint && isValidElement(control) ? cloneElement(control, { "aria-describedby": `${id}-hint` }) : control;
  return (
    <div class="field">
      <label class="label" for={id}>
        {label}
      </label>
      {described}
      {hint ? (
        <span class="hint" id={`${id}-hint`}>
          {hint}
        </span>
      ) : null}
      {rest}
    </div>
  );
}
