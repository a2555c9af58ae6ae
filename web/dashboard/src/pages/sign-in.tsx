// Sign in: the key is checked against the API before it is kept, so a wrong key is
// told apart from a server that is down.
import { useState } from "preact/hooks";
import { Client } from "../api/client";
import { api } from "../api/endpoints";
import { Failure } from "../ui/bits";
import { useAction } from "../hooks";

export function SignIn({ onSignedIn, notice }: { onSignedIn: (key: string) => void; notice?: string }) {
  const [key, setKey] = useState("");
  const check = useAction(async (candidate: string) => {
    await api(new Client(candidate)).testMode();
    onSignedIn(candidate);
  });
  const wrongKey = check.error?.status === 401;
  return (
    <main class="sign-in">
      <h1>Hookline</h1>
      {notice ? (
        <p class="failure" role="alert">
          {notice}
        </p>
      ) : null}
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void check.run(key.trim());
        }}
      >
        <label for="api-key">API key</label>
        <input
          id="api-key"
          type="password"
          autocomplete="off"
          placeholder="hk_…"
          value={key}
          onInput={(e) => setKey(e.currentTarget.value)}
          required
        />
        <p class="muted">Kept in this browser tab only, until you sign out or close it.</p>
        <button type="submit" disabled={check.busy || !key.trim()}>
          {check.busy ? "Checking…" : "Sign in"}
        </button>
        {wrongKey ? (
          <p class="failure" role="alert">
            That API key was not accepted. Check it, or make a new one with <code>hookline key create --org …</code>.
          </p>
        ) : (
          <Failure error={check.error} />
        )}
      </form>
    </main>
  );
}
