// FAPI 2.0 Security Profile through a third-party client library: openid-client
// discovers the issuer, authenticates with private_key_jwt, pushes the request (PAR)
// with PKCE S256, and binds the tokens with DPoP; Chromium signs in on the real pages.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { join } from 'node:path';
import * as client from 'openid-client';

import { launchBrowser, signInAndDecide } from '../lib/browser.js';
import { startCallback } from '../lib/callback.js';
import { startServer, TARGET, USER } from '../lib/server.js';

const CLIENT_ID = 'fapi2-client';
let server;
let callback;
let browser;
let config;

before(async () => {
  // The client's key pair: made here, only the public half is registered.
  const { privateKey, publicKey } = await crypto.subtle.generateKey(
    { name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'],
  );
  const kid = 'fapi2-client-key-1';
  const jwk = { ...(await crypto.subtle.exportKey('jwk', publicKey)), kid, alg: 'ES256', use: 'sig' };
  delete jwk.key_ops;
  delete jwk.ext;

  callback = await startCallback({ tls: true }); // FAPI 2 redirect URIs are https
  server = await startServer({
    name: 'fapi2',
    clients: [{
      client_id: CLIENT_ID,
      client_name: 'Interop FAPI 2 client',
      profile: 'fapi2-security',
      token_endpoint_auth_method: 'private_key_jwt',
      token_endpoint_auth_signing_alg: 'ES256',
      jwks: { keys: [jwk] },
      redirect_uris: [callback.redirectUri],
      grant_types: ['authorization_code', 'refresh_token'],
      scope: 'openid profile email',
      dpop_bound_access_tokens: true,
    }],
  });
  browser = await launchBrowser();
  config = await client.discovery(
    new URL(server.issuer),
    CLIENT_ID,
    { id_token_signed_response_alg: 'PS256' },
    client.PrivateKeyJwt({ key: privateKey, kid }),
    { execute: [client.allowInsecureRequests] }, // the issuer is http://127.0.0.1 in tests
  );
});

after(async () => {
  await browser?.close();
  await callback?.close();
  await server?.stop();
});

test('discovery tells openid-client what a FAPI 2 client needs', () => {
  const meta = config.serverMetadata();
  assert.equal(meta.issuer, server.issuer);
  assert.ok(meta.pushed_authorization_request_endpoint, 'PAR endpoint advertised');
  assert.ok(meta.code_challenge_methods_supported.includes('S256'));
  assert.ok(meta.token_endpoint_auth_methods_supported.includes('private_key_jwt'));
  assert.ok(meta.dpop_signing_alg_values_supported.includes('ES256'));
  assert.equal(meta.authorization_response_iss_parameter_supported, true);
});

test('PAR + PKCE S256 + private_key_jwt + DPoP through the real pages', async () => {
  const dpop = client.getDPoPHandle(config, await client.randomDPoPKeyPair('ES256'));
  const codeVerifier = client.randomPKCECodeVerifier();
  const nonce = client.randomNonce();
  const state = client.randomState();

  const authorizationUrl = await client.buildAuthorizationUrlWithPAR(config, {
    redirect_uri: callback.redirectUri,
    scope: 'openid profile email',
    code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    nonce,
    state,
  }, { DPoP: dpop });
  // Only client_id and the pushed request's URI travel through the browser.
  assert.deepEqual([...authorizationUrl.searchParams.keys()].sort(), ['client_id', 'request_uri']);
  assert.match(authorizationUrl.searchParams.get('request_uri'), /^urn:ietf:params:oauth:request_uri:/);

  const returned = await signInAndDecide(browser, authorizationUrl, {
    user: USER,
    callback,
    screenshot: join(TARGET, 'screenshots', 'consent-page.png'),
  });
  assert.equal(returned.searchParams.get('iss'), server.issuer, 'RFC 9207 iss in the response');

  // openid-client checks state and iss, redeems the code with the verifier, a client
  // assertion and a DPoP proof (answering the server's nonce challenge), and validates
  // the ID token (signature from jwks_uri, iss, aud, exp, nonce).
  const tokens = await client.authorizationCodeGrant(config, returned, {
    pkceCodeVerifier: codeVerifier,
    expectedNonce: nonce,
    expectedState: state,
    idTokenExpected: true,
  }, undefined, { DPoP: dpop });
  assert.equal(tokens.token_type.toLowerCase(), 'dpop');
  assert.ok(tokens.refresh_token, 'a refresh token for a client with the refresh_token grant');
  const claims = tokens.claims();
  assert.equal(claims.iss, server.issuer);
  assert.equal(claims.aud, CLIENT_ID);
  assert.equal(claims.nonce, nonce);
  assert.ok(claims.sub);
  assert.ok(claims.auth_time, 'auth_time is always in the ID token');

  // The DPoP-bound token works at UserInfo only with a proof of the same key.
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub, { DPoP: dpop });
  assert.equal(userinfo.sub, claims.sub);
  assert.equal(userinfo.preferred_username, USER.username);
  assert.equal(userinfo.email, USER.email);

  // A refresh with the same DPoP key keeps the binding.
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token, undefined, { DPoP: dpop });
  assert.equal(refreshed.token_type.toLowerCase(), 'dpop');
  assert.notEqual(refreshed.access_token, tokens.access_token);
});

test('a FAPI 2 client may not skip PAR: openid-client sees the error at its redirect URI', async () => {
  const codeVerifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: callback.redirectUri,
    scope: 'openid',
    code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    nonce: client.randomNonce(),
    state,
  });
  const res = await fetch(url, { redirect: 'manual' });
  assert.equal(res.status, 303);
  const returned = new URL(res.headers.get('location'));
  await assert.rejects(
    client.authorizationCodeGrant(config, returned, { pkceCodeVerifier: codeVerifier, expectedState: state }),
    (err) => err instanceof client.AuthorizationResponseError && err.error === 'invalid_request',
  );
});
