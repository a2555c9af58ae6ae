"""Verifies deliveries captured from a running Hookline server with implementations
that are not Hookline's own: the published Standard Webhooks library from PyPI
(`standardwebhooks`) for v1 signatures, and `cryptography` for v1a (ed25519).

Reads a JSON list of cases {kind, key, headers, body_b64, expect} from the file named
on the command line; prints one line per case; exits 1 if any verdict differs from
`expect` (cases with expect=false are tampered copies that must be refused).
"""

import base64
import json
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from standardwebhooks import Webhook, WebhookVerificationError


def verify_v1(key, headers, body):
    try:
        Webhook(key).verify(body, headers)
        return True
    except WebhookVerificationError:
        return False


def verify_v1a(key, headers, body):
    public = Ed25519PublicKey.from_public_bytes(base64.b64decode(key[len("whpk_"):]))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    for entry in headers["webhook-signature"].split(" "):
        version, _, signature = entry.partition(",")
        if version != "v1a":
            continue
        try:
            public.verify(base64.b64decode(signature), signed)
            return True
        except InvalidSignature:
            pass
    return False


def main():
    with open(sys.argv[1]) as f:
        cases = json.load(f)
    failures = 0
    for case in cases:
        body = base64.b64decode(case["body_b64"])
        check = verify_v1 if case["kind"] == "v1" else verify_v1a
        verdict = check(case["key"], case["headers"], body)
        ok = verdict == case["expect"]
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {case['name']}: verified={verdict} expected={case['expect']}")
    print(f"{len(cases)} cases, {failures} failures")
    sys.exit(1 if failures or not cases else 0)


if __name__ == "__main__":
    main()
