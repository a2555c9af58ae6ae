// Test mode: while on, deliveries are built and signed exactly as they would be sent,
// and kept here instead of sent. The log shows each signed request.
import { useApi } from "../context";
import { useAction, useLoad } from "../hooks";
import { Badge, Failure, Loading, Time } from "../ui/bits";
import { AttemptCard } from "../ui/attempt";

export function TestMode() {
  const api = useApi();
  const mode = useLoad(() => api.testMode(), [api], 5000);
  const log = useLoad(() => api.interceptedLog(), [api], 2000);
  const toggle = useAction(async (enabled: boolean) => {
    await api.setTestMode(enabled);
    await Promise.all([mode.reload(), log.reload()]);
  });
  const clear = useAction(async () => {
    await api.clearInterceptedLog();
    await log.reload();
  });
  const enabled = mode.data?.enabled ?? false;
  return (
    <section>
      <div class="title-row">
        <h1>Test mode</h1>
        {mode.data ? <Badge kind={enabled ? "warn" : "muted"}>{enabled ? "on" : "off"}</Badge> : null}
      </div>
      <div class="panel">
        <button
          type="button"
          role="switch"
          class="switch"
          aria-checked={enabled}
          disabled={!mode.data || toggle.busy}
          onClick={() => void toggle.run(!enabled)}
        >
          <span class="knob" aria-hidden="true" />
          Intercept deliveries instead of sending them
        </button>
        <p class="muted">
          {enabled ? (
            <>
              On since <Time at={mode.data?.since} />. Nothing is sent to receivers (test pings still are). Turning it off does
              not send what was intercepted.
            </>
          ) : (
            "Off: deliveries are sent."
          )}
        </p>
        <Failure error={mode.error ?? toggle.error} />
      </div>
      <div class="title-row">
        <h2>Intercepted requests</h2>
        <button type="button" class="small quiet" onClick={() => void clear.run()} disabled={clear.busy}>
          Clear the log
        </button>
      </div>
      <Failure error={log.error ?? clear.error} />
      {!log.data && !log.error ? <Loading what="the log" /> : null}
      {log.data && log.data.data.length === 0 ? <p class="empty">Nothing intercepted.</p> : null}
      {(log.data?.data ?? []).map((a, index) => (
        <AttemptCard key={a.id} attempt={a} open={index === 0} />
      ))}
    </section>
  );
}
