// The client's redirect URI: a tiny HTTP (or HTTPS, with a throwaway self-signed
// certificate, see tls.js) listener on 127.0.0.1 that hands every request's
// full URL to the test.

import { createServer as createHttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';

import { selfSignedCertificate } from './tls.js';

/**
 * Starts the listener. Resolves to `{ redirectUri, next(), close() }`: `next()` resolves to
 * the URL (a `URL`) of the next request that reaches `/cb`.
 */
export async function startCallback({ tls = false } = {}) {
  const arrived = [];
  const waiting = [];
  const handler = (req, res) => {
    const url = new URL(req.url, `${tls ? 'https' : 'http'}://${req.headers.host}`);
    if (url.pathname !== '/cb') {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end('<!doctype html><title>Client</title><h1>Back at the client</h1>');
    const waiter = waiting.shift();
    if (waiter) waiter(url);
    else arrived.push(url);
  };
  const server = tls ? createHttpsServer(selfSignedCertificate('127.0.0.1', { ip: '127.0.0.1' }), handler) : createHttpServer(handler);
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address();
  return {
    redirectUri: `${tls ? 'https' : 'http'}://127.0.0.1:${port}/cb`,
    next() {
      const url = arrived.shift();
      return url ? Promise.resolve(url) : new Promise((resolve) => waiting.push(resolve));
    },
    close() {
      server.closeAllConnections?.();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}
