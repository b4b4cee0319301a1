// node oidc-provider with Client ID Metadata Documents enabled, for the side-by-side benchmark.
//
// Started by the `side-by-side` load driver (scripts/bench/side-by-side.sh), never by hand in CI.
// Environment:
//   PORT                   the loopback port to listen on (the issuer is http://127.0.0.1:PORT)
//   NODE_EXTRA_CA_CERTS    the harness CA, so HTTPS document fetches verify like the reference AS's
// The process prints one JSON line ({"issuer", "authorization_endpoint"}) once it listens, and
// runs until it is killed.
//
// How documents are fetched. oidc-provider 9.13 fetches a CIMD document with the `fetch` helper
// from its configuration (default: globalThis.fetch) through an undici dispatcher that destroys
// any socket connected to a special-use address, loopback included, and it accepts only https
// client IDs. The load test's client hosts (`*.example`) live on 127.0.0.1, so this server's
// `fetch` maps those names to 127.0.0.1 with a dispatcher of its own, exactly like the reference
// AS's `--resolve '*.example=127.0.0.1'`, and every other name keeps the default protected path.
// Client IDs under `*.plain.example` are fetched over plain http (same host and port, scheme
// rewritten): the setup the baseline figures were taken with.

import Provider from 'oidc-provider';

const port = Number.parseInt(process.env.PORT ?? '', 10);
if (!Number.isInteger(port) || port <= 0) {
  console.error('oidc-provider-server: set PORT to a free loopback port');
  process.exit(2);
}
const issuer = `http://127.0.0.1:${port}`;

// Node does not export undici's Agent; its global dispatcher is one (oidc-provider's own
// SSRF-protected dispatcher is built the same way). Touching Response loads undici.
// eslint-disable-next-line no-unused-expressions
Response;
const Agent = (globalThis[Symbol.for('undici.globalDispatcher.2')]
  ?? globalThis[Symbol.for('undici.globalDispatcher.1')])?.constructor;
if (typeof Agent !== 'function') {
  console.error('oidc-provider-server: cannot find undici\'s Agent behind fetch');
  process.exit(2);
}

const MAPPED_SUFFIX = '.example';
const PLAIN_SUFFIX = '.plain.example';

function toLoopback(hostname, options, callback) {
  if (options?.all) {
    callback(null, [{ address: '127.0.0.1', family: 4 }]);
  } else {
    callback(null, '127.0.0.1', 4);
  }
}

const mapped = new Agent({ connect: { lookup: toLoopback } });

const provider = new Provider(issuer, {
  features: {
    clientIdMetadataDocument: { enabled: true, ack: 'draft-02' },
    devInteractions: { enabled: true },
  },
  cookies: { keys: ['side-by-side benchmark cookie key'] },
  // The demo client's document asks for these scopes; a provider refuses a client whose
  // `scope` names one it does not support.
  scopes: ['openid', 'offline_access', 'mcp:tools', 'mcp:resources'],
  async fetch(url, options) {
    const target = new URL(url);
    if (!target.hostname.endsWith(MAPPED_SUFFIX)) {
      return globalThis.fetch(url, options);
    }
    if (target.hostname.endsWith(PLAIN_SUFFIX)) {
      target.protocol = 'http:';
    }
    return globalThis.fetch(target, { ...options, dispatcher: mapped });
  },
});

// A few errors on stderr help diagnose a failing load; thousands would only slow it down.
let reported = 0;
for (const event of ['authorization.error', 'server_error']) {
  provider.on(event, (_ctx, error) => {
    if (reported < 5) {
      reported += 1;
      console.error(`oidc-provider ${event}: ${error?.name}: ${error?.message} ${error?.error_description ?? ''} ${error?.cause ?? ''}`);
    }
  });
}

const server = provider.listen(port, '127.0.0.1', () => {
  console.log(JSON.stringify({
    issuer,
    authorization_endpoint: `${issuer}/auth`,
  }));
});
server.on('error', (error) => {
  console.error(`oidc-provider-server: ${error.message}`);
  process.exit(1);
});
