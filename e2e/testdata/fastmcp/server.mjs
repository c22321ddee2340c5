// An MCP server as people deploy it with npm's fastmcp: its OAuthProxy, with
// its default settings (consent page, redirect allow-list
// "http://localhost:*" and "http://127.0.0.1:*", no revocation), in front of
// an upstream OpenID provider (panva's oidc-provider, whose confidential
// client the proxy is), on loopback ports. Usage:
//
//	FASTMCP_DIR=<dir with node_modules/fastmcp> OIDC_PROVIDER_DIR=<dir with node_modules/oidc-provider> node server.mjs
//
// It prints "mcp <url>" and "upstream <issuer>" once both listen, and
// serves until killed.
import http from 'node:http';
import net from 'node:net';
import { pathToFileURL } from 'node:url';

const { FastMCP, OAuthProvider } = await import(pathToFileURL(`${process.env.FASTMCP_DIR}/node_modules/fastmcp/dist/FastMCP.js`).href);
const { default: Provider } = await import(pathToFileURL(`${process.env.OIDC_PROVIDER_DIR}/node_modules/oidc-provider/lib/index.js`).href);

// The proxy's port, taken first: the upstream client's redirect URI names it.
const port = await new Promise((resolve) => {
  const probe = net.createServer();
  probe.listen(0, '127.0.0.1', () => {
    const p = probe.address().port;
    probe.close(() => resolve(p));
  });
});
const base = `http://127.0.0.1:${port}`;
const secret = 'fastmcp-proxy-secret-0123456789';

const upstreamServer = http.createServer();
await new Promise((resolve) => upstreamServer.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${upstreamServer.address().port}`;
const upstream = new Provider(issuer, {
  clients: [{
    client_id: 'fastmcp-proxy', client_secret: secret, redirect_uris: [`${base}/oauth/callback`],
    grant_types: ['authorization_code', 'refresh_token'], scope: 'openid offline_access',
  }],
  scopes: ['openid', 'offline_access'],
  features: { devInteractions: { enabled: true } },
  rotateRefreshToken: true,
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'), // the proxy asks for no prompt=consent
});
upstream.proxy = false;
upstreamServer.on('request', upstream.callback());

const server = new FastMCP({
  name: 'memory',
  version: '1.0.0',
  auth: new OAuthProvider({
    authorizationEndpoint: `${issuer}/auth`,
    tokenEndpoint: `${issuer}/token`,
    clientId: 'fastmcp-proxy',
    clientSecret: secret,
    baseUrl: base,
    scopes: ['openid', 'offline_access'],
  }),
});
server.addTool({ name: 'remember', description: 'Say what is remembered.', execute: async () => 'nothing yet' });
await server.start({ transportType: 'httpStream', httpStream: { port, host: '127.0.0.1' } });
console.log(`upstream ${issuer}`);
console.log(`mcp ${base}/mcp`);
