// Throwaway certificates made with the openssl CLI, and a `fetch` for openid-client
// that speaks mutual TLS (node:https with a client certificate and a trusted CA).

import { execFileSync } from 'node:child_process';
import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A self-signed P-256 certificate: `{ key, cert }` as PEM text, `der` (Buffer),
 * `x5c` (base64 DER) and `thumbprint` (base64url SHA-256 of the DER, `x5t#S256`).
 */
export function selfSignedCertificate(commonName, { ip } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'outband-interop-tls-'));
  try {
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1',
      '-subj', `/CN=${commonName}`, ...(ip ? ['-addext', `subjectAltName=IP:${ip}`] : []),
    ], { stdio: 'ignore' });
    const key = readFileSync(join(dir, 'key.pem'), 'utf8');
    const cert = readFileSync(join(dir, 'cert.pem'), 'utf8');
    const der = new X509Certificate(cert).raw;
    return {
      key,
      cert,
      der,
      x5c: der.toString('base64'),
      thumbprint: createHash('sha256').update(der).digest('base64url'),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The certificate's EC key as a WebCrypto private key and public JWK. */
export async function webCryptoKeys(certificate) {
  const jwk = createPrivateKey(certificate.key).export({ format: 'jwk' });
  const privateKey = await crypto.subtle.importKey('jwk', jwk, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']);
  const { d: _, ...publicJwk } = jwk;
  return { privateKey, publicJwk };
}

/** A WHATWG-style `fetch(url, { method, headers, body })` over node:https with `tls` options. */
export function tlsFetch(tls) {
  return (url, options = {}) => new Promise((resolve, reject) => {
    const headers = options.headers instanceof Headers
      ? Object.fromEntries(options.headers.entries())
      : { ...(options.headers ?? {}) };
    const req = request(url, { method: options.method ?? 'GET', headers, ...tls }, (res) => {
      const chunks = [];
      res.on('data', (chunk) => chunks.push(chunk));
      res.on('end', () => {
        const responseHeaders = new Headers();
        for (const [name, value] of Object.entries(res.headers)) {
          for (const v of [value].flat()) responseHeaders.append(name, v);
        }
        const body = [204, 304].includes(res.statusCode) ? null : Buffer.concat(chunks);
        resolve(new Response(body, { status: res.statusCode, headers: responseHeaders }));
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    if (options.signal) options.signal.addEventListener('abort', () => req.destroy(new Error('aborted')));
    const body = options.body;
    if (body instanceof URLSearchParams || typeof body === 'string') req.write(String(body));
    else if (body !== undefined && body !== null) req.write(Buffer.from(body));
    req.end();
  });
}
