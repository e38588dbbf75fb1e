// FAPI 1.0 Advanced through a third-party client library: openid-client signs the
// request object (JAR), asks for a signed authorization response (JARM,
// response_mode=jwt) and verifies it, and authenticates with its self-signed client
// certificate over mutual TLS (self_signed_tls_client_auth), which also binds the
// tokens (RFC 8705). Chromium signs in on the real pages.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import * as client from 'openid-client';

import { launchBrowser, signInAndDecide } from '../lib/browser.js';
import { startCallback } from '../lib/callback.js';
import { startServer, USER } from '../lib/server.js';
import { selfSignedCertificate, tlsFetch, webCryptoKeys } from '../lib/tls.js';

const CLIENT_ID = 'fapi1-client';
const KID = 'fapi1-client-key-1';
let server;
let callback;
let browser;
let config;
let clientCertificate;
let requestObjectKey;

before(async () => {
  const serverCertificate = selfSignedCertificate('127.0.0.1', { ip: '127.0.0.1' });
  clientCertificate = selfSignedCertificate(CLIENT_ID);
  // One key: the client certificate's, which also signs the request objects.
  const { privateKey, publicJwk } = await webCryptoKeys(clientCertificate);
  requestObjectKey = { key: privateKey, kid: KID };
  // mutual TLS for every call openid-client makes: the client's certificate, and trust in the server's.
  const mtls = tlsFetch({ ca: serverCertificate.cert, cert: clientCertificate.cert, key: clientCertificate.key });

  callback = await startCallback({ tls: true }); // FAPI redirect URIs are https
  server = await startServer({
    name: 'fapi1-advanced',
    tls: serverCertificate,
    fetch: mtls,
    clients: [{
      client_id: CLIENT_ID,
      client_name: 'Interop FAPI 1 Advanced client',
      profile: 'fapi1-advanced',
      token_endpoint_auth_method: 'self_signed_tls_client_auth',
      tls_client_certificate_bound_access_tokens: true,
      jwks: { keys: [{ ...publicJwk, kid: KID, alg: 'ES256', use: 'sig', x5c: [clientCertificate.x5c] }] },
      redirect_uris: [callback.redirectUri],
      grant_types: ['authorization_code'],
      scope: 'openid profile',
    }],
  });
  browser = await launchBrowser();
  config = await client.discovery(
    new URL(server.issuer),
    CLIENT_ID,
    {
      authorization_signed_response_alg: 'PS256',
      id_token_signed_response_alg: 'PS256',
      use_mtls_endpoint_aliases: true,
    },
    client.TlsClientAuth(),
    { [client.customFetch]: mtls },
  );
  client.useJwtResponseMode(config);
});

after(async () => {
  await browser?.close();
  await callback?.close();
  await server?.stop();
});

test('discovery advertises JARM and mutual TLS', () => {
  const meta = config.serverMetadata();
  assert.ok(meta.response_modes_supported.includes('jwt'), `${meta.response_modes_supported}`);
  assert.ok(meta.authorization_signing_alg_values_supported.includes('PS256'));
  assert.ok(meta.token_endpoint_auth_methods_supported.includes('self_signed_tls_client_auth'));
  assert.equal(meta.tls_client_certificate_bound_access_tokens, true);
});

test('JAR + JARM + PKCE + mutual TLS through the real pages', async () => {
  const codeVerifier = client.randomPKCECodeVerifier();
  const nonce = client.randomNonce();
  const state = client.randomState();
  const authorizationUrl = await client.buildAuthorizationUrlWithJAR(config, {
    redirect_uri: callback.redirectUri,
    scope: 'openid profile',
    code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    nonce,
    state,
  }, requestObjectKey);
  assert.deepEqual([...authorizationUrl.searchParams.keys()].sort(), ['client_id', 'request']);

  const returned = await signInAndDecide(browser, authorizationUrl, { user: USER, callback });
  // JARM: the only parameter is the signed response; RFC 9207's iss is its iss claim.
  assert.deepEqual([...returned.searchParams.keys()], ['response']);

  // openid-client verifies the JARM JWT (signature from jwks_uri, iss, aud, exp), then
  // redeems the code over mutual TLS and validates the ID token.
  const tokens = await client.authorizationCodeGrant(config, returned, {
    pkceCodeVerifier: codeVerifier,
    expectedNonce: nonce,
    expectedState: state,
    idTokenExpected: true,
  });
  assert.equal(tokens.token_type.toLowerCase(), 'bearer');
  const claims = tokens.claims();
  assert.equal(claims.iss, server.issuer);
  assert.equal(claims.aud, CLIENT_ID);
  assert.equal(claims.nonce, nonce);

  // The access token is bound to the client certificate (RFC 8705 §3.1).
  const payload = JSON.parse(Buffer.from(tokens.access_token.split('.')[1], 'base64url'));
  assert.equal(payload.cnf?.['x5t#S256'], clientCertificate.thumbprint);

  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  assert.equal(userinfo.preferred_username, USER.username);
});
