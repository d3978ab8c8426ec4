// Offline after the first build (issue 19, item 5): a build whose base images are all in the local store
// sends no request to any registry (BuildKit's "load metadata" always asks, buildkit#5340); `--pull`
// still asks, and fails with one clear line when the registry is gone. The base image is reached through
// a proxy on 127.0.0.1 that counts every request and can be switched off.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request, type Server } from 'node:http';
import { rmSync } from 'node:fs';
import { buildSuite } from '../helpers/suite.js';
import { tempRoot } from '../helpers/kiln.js';
import { kilnBuildAsync, errorLine } from '../helpers/build.js';
import { freePort } from '../helpers/registry.js';

const suite = buildSuite();

/** A registry front on 127.0.0.1 that forwards to the test registry and counts what it is asked. */
class CountingFront {
  requests: string[] = [];
  private server?: Server;
  constructor(
    readonly port: number,
    private readonly upstream: string,
  ) {}
  get host(): string {
    return `127.0.0.1:${this.port}`;
  }
  async start(): Promise<void> {
    const up = new URL(this.upstream);
    this.server = createServer((req, res) => {
      this.requests.push(`${req.method} ${req.url}`);
      const fwd = request({ host: up.hostname, port: up.port, method: req.method, path: req.url, headers: { ...req.headers, host: up.host } }, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      });
      fwd.on('error', () => res.destroy());
      req.pipe(fwd);
    });
    await new Promise<void>((r) => this.server!.listen(this.port, '127.0.0.1', r));
  }
  /** The registry is gone: the port is closed. */
  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (s) await new Promise<void>((r) => s.close(() => r()) && s.closeAllConnections());
  }
}

let front: CountingFront;
async function startFront(): Promise<void> {
  front ??= new CountingFront(await freePort(), suite.reg.url);
  await front.start();
}
after(async () => front?.stop());

/** The digest the busybox tag names (its index), as the registry serves it. */
async function indexDigest(): Promise<string> {
  const r = await fetch(`${suite.reg.url}/v2/library/busybox/manifests/latest`, { method: 'HEAD', headers: { accept: 'application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json' } });
  const digest = r.headers.get('docker-content-digest');
  assert.match(digest ?? '', /^sha256:[a-f0-9]{64}$/);
  return digest!;
}

test('a build whose base images are local sends no request to the registry, with FROM by tag, by tag@digest, COPY --from and RUN --mount=from; --pull asks', async () => {
  await startFront();
  const image = `${front.host}/library/busybox:latest`;
  const pinned = `${image}@${await indexDigest()}`;
  const root = tempRoot();
  const dockerfile = (n: number) =>
    [
      `FROM ${image} AS base`,
      `RUN echo run-${n} > /n`,
      `FROM ${pinned}`,
      `COPY --from=${image} /bin/busybox /copied-busybox`,
      `RUN --mount=from=${image},target=/img test -f /img/bin/busybox && echo mounted-${n} > /m`,
      'COPY --from=base /n /n',
      '',
    ].join('\n');
  try {
    // The first build pulls through the front.
    const first = await kilnBuildAsync(root, { Dockerfile: dockerfile(1) }, ['-t', 'offline:1']);
    assert.equal(first.status, 0, first.stderr);
    assert.ok(front.requests.length > 0, 'the first build pulls');

    // A changed Dockerfile (its RUN steps run again) with everything local: not one request.
    front.requests = [];
    const second = await kilnBuildAsync(root, { Dockerfile: dockerfile(2) }, ['-t', 'offline:2']);
    assert.equal(second.status, 0, second.stderr);
    assert.match(second.stderr, /RUN echo run-2/);
    assert.deepEqual([...front.requests], [], 'a build with local base images asked the registry');

    // --pull asks the registry again (the tag may have moved).
    const pulled = await kilnBuildAsync(root, { Dockerfile: dockerfile(2) }, ['--pull']);
    assert.equal(pulled.status, 0, pulled.stderr);
    assert.ok(front.requests.some((r) => r.startsWith('GET /v2/library/busybox/manifests/latest')), `--pull did not resolve the tag: ${front.requests.join(', ')}`);

    // The registry is gone: the local build still works, --pull fails with one line naming the registry.
    await front.stop();
    const offline = await kilnBuildAsync(root, { Dockerfile: dockerfile(3) }, ['-t', 'offline:3']);
    assert.equal(offline.status, 0, offline.stderr);
    const refused = await kilnBuildAsync(root, { Dockerfile: dockerfile(3) }, ['--pull']);
    assert.notEqual(refused.status, 0);
    assert.match(errorLine(refused), new RegExp(`^kiln: Dockerfile:1: ${front.host.replace(/\./g, '\\.')}/library/busybox:latest: cannot reach registry ${front.host.replace(/\./g, '\\.')}: `));
  } finally {
    await front.stop();
    rmSync(root, { recursive: true, force: true });
  }
});

test('a cold two-platform build fetches each manifest and config once: the pull reuses what the resolver fetched', async () => {
  await startFront();
  const root = tempRoot();
  try {
    front.requests = [];
    const dockerfile = `FROM ${front.host}/library/busybox:latest\nRUN echo hi > /hi\n`;
    const r = await kilnBuildAsync(root, { Dockerfile: dockerfile }, ['--platform', 'linux/amd64,linux/arm64', '-t', 'twoplat:1']);
    assert.equal(r.status, 0, r.stderr);
    const byDigest = front.requests.filter((q) => q.startsWith('GET ') && /\/(manifests|blobs)\/sha256:/.test(q));
    assert.ok(byDigest.length >= 4, `expected both platforms' manifests and configs: ${front.requests.join(', ')}`);
    const twice = byDigest.filter((q, i) => byDigest.indexOf(q) !== i);
    assert.deepEqual(twice, [], `fetched more than once: ${front.requests.join(', ')}`);
  } finally {
    await front.stop();
    rmSync(root, { recursive: true, force: true });
  }
});
