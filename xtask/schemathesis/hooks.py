"""Credentials for `cargo xtask schemathesis`, loaded through SCHEMATHESIS_HOOKS.

Without them every protected operation answers 401 and schemathesis fuzzes
nothing past the authentication check. Each provider gets real credentials from
the live demo server the way a client or an authenticator does:

- the OAuth endpoints: the demo merchant's `client_secret_basic` credentials;
- the admin endpoint: the demo's admin token;
- UserInfo, grants, payments and consents: an access token for the demo user
  `bob` (who approves CIBA requests himself) from a poll-mode CIBA flow;
- the device API: a device enrolled for `alice` with a fresh ES256 key, whose
  DPoP-bound token is presented with a new proof (nonce, `ath`) on each call.

`xtask/src/schemathesis.rs` sets the FUZZ_* variables read below.
"""

import base64
import hashlib
import json
import os
import time
import uuid

import jwt
import requests
import schemathesis
from cryptography.hazmat.primitives.asymmetric import ec

SERVER = os.environ["FUZZ_SERVER_URL"]
CLIENT = (os.environ["FUZZ_CLIENT_ID"], os.environ["FUZZ_CLIENT_SECRET"])
with open(os.environ["FUZZ_ADMIN_TOKEN_FILE"]) as file:
    ADMIN_TOKEN = file.read().strip()
with open(os.environ["FUZZ_INVITATION_FILE"]) as file:
    ACTIVATION_CODE = json.load(file)["code"]
TIMEOUT = 10


def _with_header(case, name, value):
    case.headers = {**(case.headers or {}), name: value}


def _basic(credentials):
    raw = f"{credentials[0]}:{credentials[1]}".encode()
    return "Basic " + base64.b64encode(raw).decode()


@schemathesis.auth(refresh_interval=None).apply_to(
    path_regex=r"^/(token|introspect|revoke|par|bc-authorize(/cancel)?)$"
)
class ClientSecretBasic:
    def get(self, case, ctx):
        return CLIENT

    def set(self, case, credentials, ctx):
        _with_header(case, "Authorization", _basic(credentials))


@schemathesis.auth(refresh_interval=None).apply_to(path_regex=r"^/admin/")
class AdminToken:
    def get(self, case, ctx):
        return ADMIN_TOKEN

    def set(self, case, token, ctx):
        _with_header(case, "Authorization", f"Bearer {token}")


def _ciba_access_token():
    """An access token for `bob` through a poll-mode CIBA flow."""
    started = requests.post(
        f"{SERVER}/bc-authorize",
        auth=CLIENT,
        data={"scope": "openid payments accounts refunds", "login_hint": "bob", "binding_message": "FUZZ"},
        timeout=TIMEOUT,
    )
    started.raise_for_status()
    body = started.json()
    interval = body.get("interval", 5)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        answer = requests.post(
            f"{SERVER}/token",
            auth=CLIENT,
            data={"grant_type": "urn:openid:params:grant-type:ciba", "auth_req_id": body["auth_req_id"]},
            timeout=TIMEOUT,
        )
        if answer.status_code == 200:
            return answer.json()["access_token"]
        error = answer.json().get("error")
        if error == "slow_down":
            interval += 5
        elif error != "authorization_pending":
            raise RuntimeError(f"CIBA token request failed: {answer.status_code} {answer.text}")
        time.sleep(interval)
    raise RuntimeError("CIBA flow for bob did not complete within 60 s")


# Tokens live 300 s. Refreshing on a 401 would start a CIBA flow for each, and fuzzed requests earn many.
@schemathesis.auth(refresh_interval=240, retry_on=[]).apply_to(
    path_regex=r"^/(userinfo|grants/|api/|open-banking/)"
)
class BobsAccessToken:
    def get(self, case, ctx):
        return _ciba_access_token()

    def set(self, case, token, ctx):
        _with_header(case, "Authorization", f"Bearer {token}")


class Device:
    """A device enrolled for `alice`, with its key and latest server nonce."""

    def __init__(self):
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.public_jwk = jwt.algorithms.ECAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        enrolled = requests.post(
            f"{SERVER}/device/v1/enroll",
            json={"activation_code": ACTIVATION_CODE, "public_jwk": self.public_jwk, "name": "schemathesis"},
            timeout=TIMEOUT,
        )
        enrolled.raise_for_status()
        self.credential = enrolled.json()["device_credential"]
        self.nonce = enrolled.headers["DPoP-Nonce"]

    def proof(self, method, url, access_token=None):
        claims = {"htm": method, "htu": url, "iat": int(time.time()), "jti": str(uuid.uuid4()), "nonce": self.nonce}
        if access_token is not None:
            digest = hashlib.sha256(access_token.encode()).digest()
            claims["ath"] = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        headers = {"typ": "dpop+jwt", "jwk": self.public_jwk}
        return jwt.encode(claims, self.key, algorithm="ES256", headers=headers)

    def access_token(self):
        url = f"{SERVER}/device/v1/token"
        answer = requests.post(
            url,
            json={"device_credential": self.credential},
            headers={"DPoP": self.proof("POST", url)},
            timeout=TIMEOUT,
        )
        self.nonce = answer.headers.get("DPoP-Nonce", self.nonce)
        answer.raise_for_status()
        return answer.json()["access_token"]


_device = None


def _the_device():
    global _device
    if _device is None:
        _device = Device()
    return _device


# Tokens live 300 s and nonces 5 minutes; a 401 (a stale nonce) fetches both again.
# The event stream never ends and revoking the device would end the run's coverage,
# so those two operations keep failing authentication.
@schemathesis.auth(refresh_interval=240).apply_to(path_regex=r"^/device/v1/(requests|grants)")
class DeviceDpop:
    def get(self, case, ctx):
        return _the_device().access_token()

    def set(self, case, token, ctx):
        device = _the_device()
        _with_header(case, "Authorization", f"DPoP {token}")
        _with_header(case, "DPoP", device.proof(case.method.upper(), SERVER + case.formatted_path, token))
