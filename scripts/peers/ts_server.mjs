// Real MCP peer: the official TypeScript SDK (@modelcontextprotocol/sdk), run with node.
//
//   node ts_server.mjs --mode MODE --host IP --port PORT [--path P]
//
// Modes:
//   streamable  StreamableHTTPServerTransport at --path (default /mcp), stateful (UUID session
//               ids), SSE replies; the request routing is the SDK's simpleStreamableHttp example
//   sse         legacy SSEServerTransport: GET --path (default /sse), POST /messages?sessionId=<uuid>
//
// The SDK is loaded from $MCP_SCOUT_PEERS/node (default <repo>/target/peers/node), where
// scripts/peers/setup.sh installs it. Host header validation: the SDK's hostHeaderValidation
// with [<ip>, localhost, 127.0.0.1, [::1]] (its localhost default generalised to the bound
// address), so any other Host gets 403 {"jsonrpc":"2.0","error":{"code":-32000,
// "message":"Invalid Host: <name>"},"id":null}.
//
// Prints exactly `READY <ip>:<port>` ([v6]:port for IPv6) once listening; exits on SIGTERM
// and when its parent process dies.
import { createRequire } from 'node:module';
import { randomUUID } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import net from 'node:net';

const here = dirname(fileURLToPath(import.meta.url));
const peers = process.env.MCP_SCOUT_PEERS || resolve(here, '../../target/peers');
const require = createRequire(join(peers, 'node', 'package.json'));
const { McpServer } = require('@modelcontextprotocol/sdk/server/mcp.js');
const { StreamableHTTPServerTransport } = require('@modelcontextprotocol/sdk/server/streamableHttp.js');
const { SSEServerTransport } = require('@modelcontextprotocol/sdk/server/sse.js');
const { createMcpExpressApp } = require('@modelcontextprotocol/sdk/server/express.js');
const { isInitializeRequest } = require('@modelcontextprotocol/sdk/types.js');
const z = require('zod');

function usage(msg) {
    process.stderr.write(`ts_server: ${msg}\nusage: ts_server.mjs --mode streamable|sse --host IP --port PORT [--path P]\n`);
    process.exit(2);
}

const opts = {};
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
    const m = /^--(mode|host|port|path)(?:=(.*))?$/.exec(argv[i]);
    if (!m) usage(`unknown argument ${argv[i]}`);
    opts[m[1]] = m[2] !== undefined ? m[2] : argv[++i];
    if (opts[m[1]] === undefined) usage(`--${m[1]} needs a value`);
}
const mode = opts.mode || 'streamable';
if (!['streamable', 'sse'].includes(mode)) usage(`unknown mode ${mode}`);
if (!opts.host || opts.port === undefined) usage('--host and --port are required');
const host = opts.host;
const port = Number(opts.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) usage(`bad port ${opts.port}`);
if (!net.isIP(host)) usage(`--host must be an IP literal, got ${host}`);
const loopback = net.isIPv6(host) ? host === '::1' : host.startsWith('127.');
if (!loopback && process.env.MCP_SCOUT_PEERS_ANY_ADDR !== '1') {
    usage(`refusing to bind ${host}: not a loopback address (set MCP_SCOUT_PEERS_ANY_ADDR=1 inside a test namespace)`);
}
const path = opts.path || (mode === 'sse' ? '/sse' : '/mcp');
if (!path.startsWith('/')) usage('--path must start with /');

const getServer = () => {
    const server = new McpServer(
        { name: 'weather-demo-ts', version: '1.0.0' },
        { instructions: 'Weather demo server (TypeScript SDK) for mcp-scout tests.' }
    );
    server.registerTool(
        'get_forecast',
        { description: 'Get the weather forecast for a city.', inputSchema: { city: z.string() } },
        async ({ city }) => ({ content: [{ type: 'text', text: `Sunny in ${city}, 21 C` }] })
    );
    server.registerTool(
        'add',
        { description: 'Add two integers.', inputSchema: { a: z.number().int(), b: z.number().int() } },
        async ({ a, b }) => ({ content: [{ type: 'text', text: String(a + b) }] })
    );
    return server;
};

const hostname = net.isIPv6(host) ? `[${host}]` : host;
const app = createMcpExpressApp({ host, allowedHosts: [...new Set([hostname, 'localhost', '127.0.0.1', '[::1]'])] });
const transports = new Map();
const MAX_SESSIONS = 1000;

if (mode === 'streamable') {
    app.post(path, async (req, res) => {
        const sessionId = req.headers['mcp-session-id'];
        try {
            const transport = sessionId ? transports.get(sessionId) : undefined;
            if (transport) {
                await transport.handleRequest(req, res, req.body);
            } else if (!sessionId && isInitializeRequest(req.body)) {
                if (transports.size >= MAX_SESSIONS) {
                    res.status(503).json({ jsonrpc: '2.0', error: { code: -32000, message: 'Too many open sessions' }, id: null });
                    return;
                }
                const t = new StreamableHTTPServerTransport({
                    sessionIdGenerator: () => randomUUID(),
                    onsessioninitialized: (sid) => transports.set(sid, t),
                });
                t.onclose = () => {
                    if (t.sessionId) transports.delete(t.sessionId);
                };
                await getServer().connect(t);
                await t.handleRequest(req, res, req.body);
            } else if (sessionId) {
                res.status(404).json({ jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null });
            } else {
                res.status(400).json({
                    jsonrpc: '2.0',
                    error: { code: -32000, message: 'Bad Request: No valid session ID provided' },
                    id: null,
                });
            }
        } catch (err) {
            process.stderr.write(`ts_server: ${err?.stack || err}\n`);
            if (!res.headersSent) {
                res.status(500).json({ jsonrpc: '2.0', error: { code: -32603, message: 'Internal server error' }, id: null });
            }
        }
    });
    const bySession = async (req, res) => {
        const sessionId = req.headers['mcp-session-id'];
        if (!sessionId) {
            res.status(400).send('Missing session ID');
            return;
        }
        const transport = transports.get(sessionId);
        if (!transport) {
            res.status(404).json({ jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null });
            return;
        }
        await transport.handleRequest(req, res);
    };
    app.get(path, bySession);
    app.delete(path, bySession);
} else {
    app.get(path, async (req, res) => {
        const t = new SSEServerTransport('/messages', res);
        transports.set(t.sessionId, t);
        res.on('close', () => transports.delete(t.sessionId));
        await getServer().connect(t);
    });
    app.post('/messages', async (req, res) => {
        const t = transports.get(String(req.query.sessionId || ''));
        if (!t) {
            res.status(400).send('No transport found for sessionId');
            return;
        }
        await t.handlePostMessage(req, res, req.body);
    });
}

const httpServer = app.listen(port, host, (err) => {
    if (err) {
        process.stderr.write(`ts_server: ${err.message}\n`);
        process.exit(1);
    }
    const a = httpServer.address();
    const shown = a.family === 'IPv6' || a.family === 6 ? `[${a.address}]` : a.address;
    process.stdout.write(`READY ${shown}:${a.port}\n`);
});
httpServer.on('error', (err) => {
    process.stderr.write(`ts_server: ${err.message}\n`);
    process.exit(1);
});
for (const sig of ['SIGTERM', 'SIGINT']) {
    process.on(sig, () => process.exit(0));
}
// Exit when the process that started us dies (a killed test harness must not leave peers
// behind); same rule and opt-out as _peerlib.watch_parent.
if (process.env.MCP_SCOUT_PEERS_DETACHED !== '1') {
    const ppid = process.ppid;
    setInterval(() => {
        if (process.ppid !== ppid) {
            process.stderr.write(`ts_server: parent ${ppid} is gone, stopping\n`);
            process.exit(0);
        }
    }, 500).unref();
}
