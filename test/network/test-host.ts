// A "test host": a network namespace of the test's own, plugged into kiln's bridge by a veth pair, with
// an address from the upper half of the bridge's subnet (never leased to sandboxes) and an HTTP server
// inside it. RUN steps reach it through the bridge; the server records who connected.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { ensureBridge, intToIp, type BridgeConfig } from '../../native/network/bridge.js';

export interface TestHost {
  ip: string;
  port: number;
  url: string;
  /** Remote address of each request, in order. */
  clients: string[];
  /** Request paths, in order. */
  paths: string[];
  bridge: BridgeConfig;
  stop(): Promise<void>;
}

const ipToInt = (ip: string) => ip.split('.').reduce((a, p) => ((a << 8) | Number(p)) >>> 0, 0);

/** slot: a small number distinct per concurrently running test file (addresses and names derive from it). */
export async function startTestHost(slot: number, files: Record<string, string>): Promise<TestHost> {
  const bridge = await ensureBridge();
  const base = ipToInt(bridge.gateway) - 1;
  const upperHalf = base + 2 ** (32 - bridge.prefixLen - 1);
  const ip = intToIp(upperHalf + 100 + slot);
  const ns = `kiln-th-${process.pid}-${slot}`;
  const outer = `kth${process.pid % 100000}x${slot}`.slice(0, 15);
  const sh = (cmd: string[]) => execFileSync(cmd[0]!, cmd.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
  sh(['ip', 'netns', 'add', ns]);
  let server: ChildProcess | undefined;
  const cleanup = () => {
    server?.kill('SIGKILL');
    try { sh(['ip', 'link', 'del', outer]); } catch { /* gone with the namespace */ }
    try { sh(['ip', 'netns', 'del', ns]); } catch { /* already gone */ }
  };
  try {
    sh(['ip', 'link', 'add', outer, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    sh(['ip', 'link', 'set', outer, 'master', bridge.name, 'up']);
    sh(['ip', '-n', ns, 'addr', 'add', `${ip}/${bridge.prefixLen}`, 'dev', 'eth0']);
    sh(['ip', '-n', ns, 'link', 'set', 'eth0', 'up']);
    sh(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
    const code = `
      const files = ${JSON.stringify(files)};
      const s = require('http').createServer((req, res) => {
        process.stdout.write(JSON.stringify({ client: req.socket.remoteAddress, path: req.url }) + '\\n');
        const body = files[req.url];
        if (body === undefined) { res.writeHead(404); res.end('not found'); return; }
        res.end(body);
      });
      // A DNS server for RUNs that resolve names (--dns): every A query is answered with this host's address.
      const dns = require('dgram').createSocket('udp4');
      dns.on('message', (q, from) => {
        let i = 12;
        while (i < q.length && q[i] !== 0) i += q[i] + 1;
        const question = q.subarray(12, i + 5);
        const qtype = q.readUInt16BE(i + 1);
        const head = Buffer.from([q[0], q[1], 0x81, 0x80, 0, 1, 0, qtype === 1 ? 1 : 0, 0, 0, 0, 0]);
        const answer = qtype === 1 ? Buffer.from([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4, ...'${ip}'.split('.').map(Number)]) : Buffer.alloc(0);
        dns.send(Buffer.concat([head, question, answer]), from.port, from.address);
      });
      let up = 0;
      const ready = () => { if (++up === 2) process.stdout.write('READY\\n'); };
      dns.bind(53, '${ip}', ready);
      s.listen(8080, '${ip}', ready);`;
    server = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
    const host: TestHost = {
      ip,
      port: 8080,
      url: `http://${ip}:8080`,
      clients: [],
      paths: [],
      bridge,
      stop: async () => cleanup(),
    };
    let buf = '';
    let ready!: () => void;
    const isReady = new Promise<void>((r) => (ready = r));
    server.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line === 'READY') ready();
        else {
          const r = JSON.parse(line) as { client: string; path: string };
          host.clients.push(r.client);
          host.paths.push(r.path);
        }
      }
    });
    await Promise.race([isReady, once(server, 'exit').then(() => { throw new Error('test host server exited'); })]);
    return host;
  } catch (err) {
    cleanup();
    throw err;
  }
}

/** Whether ip is in the sandbox lease range of the bridge (lower half, above the gateway). */
export function isLeasedAddress(bridge: BridgeConfig, ip: string): boolean {
  const base = ipToInt(bridge.gateway) - 1;
  const n = ipToInt(ip) - base - 2;
  return n >= 0 && n < bridge.poolSize;
}

/** The host end of the veth for a sandbox address. */
export function vethFor(bridge: BridgeConfig, ip: string): string {
  return `${bridge.vethPrefix}${ipToInt(ip) - (ipToInt(bridge.gateway) - 1) - 2}`;
}
