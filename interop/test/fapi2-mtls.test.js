// FAPI 2.0 Security Profile with certificate-bound tokens (RFC 8705) instead of
// DPoP, through a third-party client library: openid-client pushes the request
// (PAR) with PKCE S256, authenticates with private_key_jwt over mutual TLS, and
// its tokens are bound to its client certificate. Chromium signs in on the real pages.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import * as client from 'openid-client';

import { launchBrowser, signInAndDecide } from '../lib/browser.js';
import { startCallback } from '../lib/callback.js';
import { startServer, USER } from '../lib/server.js';
import { selfSignedCertificate, tlsFetch, webCryptoKeys } from '../lib/tls.js';

const CLIENT_ID = 'fapi2-mtls-client';
const KID = 'fapi2-mtls-client-key-1';
let server;
let callback;
let browser;
let config;
let clientCertificate;

before(async () => {
  const serverCertificate = selfSignedCertificate('127.0.0.1', { ip: '127.0.0.1' });
  clientCertificate = selfSignedCertificate(CLIENT_ID);
  // The certificate's key also signs the client assertions.
  const { privateKey, publicJwk } = await webCryptoKeys(clientCertificate);
  const mtls = tlsFetch({ ca: serverCertificate.cert, cert: clientCertificate.cert, key: clientCertificate.key });

  callback = await startCallback({ tls: true }); // FAPI 2 redirect URIs are https
  server = await startServer({
    name: 'fapi2-mtls',
    tls: serverCertificate,
    fetch: mtls,
    clients: [{
      client_id: CLIENT_ID,
      client_name: 'Interop FAPI 2 client on mutual TLS',
      profile: 'fapi2-security',
      token_endpoint_auth_method: 'private_key_jwt',
      token_endpoint_auth_signing_alg: 'ES256',
      tls_client_certificate_bound_access_tokens: true,
      jwks: { keys: [{ ...publicJwk, kid: KID, alg: 'ES256', use: 'sig', x5c: [clientCertificate.x5c] }] },
      redirect_uris: [callback.redirectUri],
      grant_types: ['authorization_code', 'refresh_token'],
      scope: 'openid profile',
    }],
  });
  browser = await launchBrowser();
  config = await client.discovery(
    new URL(server.issuer),
    CLIENT_ID,
    { id_token_signed_response_alg: 'PS256', use_mtls_endpoint_aliases: true },
    client.PrivateKeyJwt({ key: privateKey, kid: KID }),
    { [client.customFetch]: mtls },
  );
});

after(async () => {
  await browser?.close();
  await callback?.close();
  await server?.stop();
});

test('PAR + PKCE S256 + private_key_jwt + certificate-bound tokens through the real pages', async () => {
  const codeVerifier = client.randomPKCECodeVerifier();
  const nonce = client.randomNonce();
  const state = client.randomState();
  const authorizationUrl = await client.buildAuthorizationUrlWithPAR(config, {
    redirect_uri: callback.redirectUri,
    scope: 'openid profile',
    code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    nonce,
    state,
  });
  assert.deepEqual([...authorizationUrl.searchParams.keys()].sort(), ['client_id', 'request_uri']);

  const returned = await signInAndDecide(browser, authorizationUrl, { user: USER, callback });
  assert.equal(returned.searchParams.get('iss'), server.issuer, 'RFC 9207 iss in the response');

  // No DPoP proof: the certificate binds the tokens (FAPI 2.0 Security Profile allows either).
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
  const payload = JSON.parse(Buffer.from(tokens.access_token.split('.')[1], 'base64url'));
  assert.equal(payload.cnf?.['x5t#S256'], clientCertificate.thumbprint);
  assert.equal(payload.cnf?.jkt, undefined, 'bound to the certificate only');

  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  assert.equal(userinfo.preferred_username, USER.username);

  // A refresh over the same certificate keeps the binding.
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
  const refreshedPayload = JSON.parse(Buffer.from(refreshed.access_token.split('.')[1], 'base64url'));
  assert.equal(refreshedPayload.cnf?.['x5t#S256'], clientCertificate.thumbprint);
});
