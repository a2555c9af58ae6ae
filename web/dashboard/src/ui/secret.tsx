// A secret the API shows once (at create and at rotation): displayed with a copy button
// and a plain warning that it cannot be shown again.
import { CopyButton } from "./copy";

export function SecretOnce({ secret, publicKey }: { secret?: string | null; publicKey?: string | null }) {
  if (!secret) {
    return (
      <div class="secret-once">
        <p>This destination signs with an ed25519 key pair. Receivers verify with its public key:</p>
        <code class="secret">{publicKey}</code>
        {publicKey ? <CopyButton value={publicKey} label="Copy public key" /> : null}
      </div>
    );
  }
  return (
    <div class="secret-once" role="status">
      <p>
        <strong>Signing secret. Copy it now: you will not see this again.</strong>
      </p>
      <code class="secret" data-secret>
        {secret}
      </code>
      <CopyButton value={secret} label="Copy secret" />
    </div>
  );
}
