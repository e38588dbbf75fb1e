// Plain OpenID Connect through a third-party client library: openid-client with
// client_secret_basic, the authorization code flow with PKCE, the refresh token grant,
// and a user who clicks Deny; Chromium signs in on the real pages.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import * as client from 'openid-client';

import { launchBrowser, signInAndDecide } from '../lib/browser.js';
import { startCallback } from '../lib/callback.js';
import { startServer, USER } from '../lib/server.js';

const CLIENT_ID = 'oidc-client';
const CLIENT_SECRET = 'interop-oidc-client-secret-0123456789';
let server;
let callback;
let browser;
let config;

before(async () => {
  callback = await startCallback();
  server = await startServer({
    name: 'oidc',
    clients: [{
      client_id: CLIENT_ID,
      client_name: 'Interop OIDC client',
      client_secret: CLIENT_SECRET,
      token_endpoint_auth_method: 'client_secret_basic',
      redirect_uris: [callback.redirectUri],
      grant_types: ['authorization_code', 'refresh_token'],
      scope: 'openid profile email',
    }],
  });
  browser = await launchBrowser();
  config = await client.discovery(
    new URL(server.issuer),
    CLIENT_ID,
    undefined,
    client.ClientSecretBasic(CLIENT_SECRET),
    { execute: [client.allowInsecureRequests] }, // the issuer is http://127.0.0.1 in tests
  );
});

after(async () => {
  await browser?.close();
  await callback?.close();
  await server?.stop();
});

/** A code-flow authorization URL with PKCE S256, and what the client must remember. */
async function authorizationRequest(scope = 'openid profile email') {
  const codeVerifier = client.randomPKCECodeVerifier();
  const nonce = client.randomNonce();
  const state = client.randomState();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: callback.redirectUri,
    scope,
    code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    nonce,
    state,
  });
  return { url, codeVerifier, nonce, state };
}

test('code + PKCE with client_secret_basic, then the refresh token grant', async () => {
  const request = await authorizationRequest();
  const returned = await signInAndDecide(browser, request.url, { user: USER, callback });
  assert.equal(returned.searchParams.get('iss'), server.issuer, 'RFC 9207 iss in the response');
  assert.equal(returned.searchParams.get('state'), request.state);

  const tokens = await client.authorizationCodeGrant(config, returned, {
    pkceCodeVerifier: request.codeVerifier,
    expectedNonce: request.nonce,
    expectedState: request.state,
    idTokenExpected: true,
  });
  assert.equal(tokens.token_type.toLowerCase(), 'bearer');
  assert.ok(tokens.refresh_token);
  assert.ok(tokens.expiresIn() > 0);
  const claims = tokens.claims();
  assert.equal(claims.iss, server.issuer);
  assert.equal(claims.aud, CLIENT_ID);
  assert.equal(claims.nonce, request.nonce);
  assert.deepEqual(claims.amr, ['pwd']);

  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  assert.equal(userinfo.name, USER.name);
  assert.equal(userinfo.email, USER.email);

  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
  assert.equal(refreshed.token_type.toLowerCase(), 'bearer');
  assert.notEqual(refreshed.access_token, tokens.access_token);
  if (refreshed.id_token) {
    // openid-client has already checked that it is about the same user.
    assert.equal(refreshed.claims().sub, claims.sub);
  }
  const again = await client.fetchUserInfo(config, refreshed.access_token, claims.sub);
  assert.equal(again.sub, claims.sub);
});

test('a redeemed code does not work twice', async () => {
  const request = await authorizationRequest('openid');
  const returned = await signInAndDecide(browser, request.url, { user: USER, callback });
  const checks = { pkceCodeVerifier: request.codeVerifier, expectedNonce: request.nonce, expectedState: request.state };
  await client.authorizationCodeGrant(config, returned, checks);
  await assert.rejects(
    client.authorizationCodeGrant(config, returned, checks),
    (err) => err instanceof client.ResponseBodyError && err.error === 'invalid_grant' && err.status === 400,
  );
});

test('the user clicks Deny: openid-client sees access_denied', async () => {
  const request = await authorizationRequest();
  const returned = await signInAndDecide(browser, request.url, { user: USER, callback, decision: 'deny' });
  assert.equal(returned.searchParams.get('error'), 'access_denied');
  await assert.rejects(
    client.authorizationCodeGrant(config, returned, {
      pkceCodeVerifier: request.codeVerifier,
      expectedNonce: request.nonce,
      expectedState: request.state,
    }),
    (err) => {
      assert.ok(err instanceof client.AuthorizationResponseError, `${err}`);
      assert.equal(err.error, 'access_denied');
      return true;
    },
  );
});
