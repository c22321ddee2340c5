// An OpenID provider for the e2e tests: panva's oidc-provider (certified),
// with dynamic registration, resource indicators, rotating refresh tokens,
// revocation and the device flow, on a loopback port. Usage:
//
//	OIDC_PROVIDER_DIR=<dir with node_modules/oidc-provider> RESOURCE=<url> node server.mjs
//
// It prints "issuer <url>" once it listens, and serves until killed.
import http from 'node:http';
import { pathToFileURL } from 'node:url';

const dir = process.env.OIDC_PROVIDER_DIR;
const resource = process.env.RESOURCE;
const { default: Provider } = await import(pathToFileURL(`${dir}/node_modules/oidc-provider/lib/index.js`).href);

const server = http.createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  scopes: ['openid', 'offline_access', 'memory'],
  features: {
    devInteractions: { enabled: true },
    registration: { enabled: true },
    revocation: { enabled: true },
    deviceFlow: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => resource,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, indicator) => {
        if (indicator !== resource) throw new Error(`unknown resource ${indicator}`);
        return { scope: 'memory', accessTokenFormat: 'opaque', accessTokenTTL: 3600 };
      },
    },
  },
  rotateRefreshToken: true,
  issueRefreshToken: async (ctx, client, code) => client.grantTypeAllowed('refresh_token') && code.scopes.has('offline_access'),
  pkce: { required: () => true },
  clientBasedCORS: () => true,
});
provider.proxy = false;
server.on('request', provider.callback());
console.log(`issuer ${issuer}`);
