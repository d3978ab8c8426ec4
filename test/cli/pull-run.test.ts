// End to end through the CLI: pull from a real registry (Debian's docker-registry on 127.0.0.1), list,
// run in kiln's sandbox, and the one-line errors for bad input.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { readFileSync, existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { startRegistry, pushBusybox, type TestRegistry } from '../helpers/registry.js';
import { busyboxFixture } from '../helpers/fixtures.js';
import { kiln, kilnAsync, tempRoot } from '../helpers/kiln.js';
import { waitFor } from '../helpers/wait.js';

let reg: TestRegistry;
let image: string;
let root: string;

before(async () => {
  busyboxFixture();
  reg = await startRegistry();
  image = pushBusybox(reg, 'library/busybox', 'latest');
  root = tempRoot();
});
after(async () => {
  await reg?.stop();
  rmSync(root, { recursive: true, force: true });
});

function oneErrorLine(stderr: string): string {
  const lines = stderr.trim().split('\n');
  assert.equal(lines.length, 1, `expected one line of error, got:\n${stderr}`);
  return lines[0]!;
}

test('kiln pull by tag records the image for this platform', () => {
  const r = kiln(root, ['pull', image]);
  assert.equal(r.status, 0, r.stderr);
  const rows = kiln(root, ['images', '--format', 'json']).stdout.trim().split('\n').map((l) => JSON.parse(l));
  const row = rows.find((x) => x.name === image);
  assert.ok(row, `image ${image} listed: ${JSON.stringify(rows)}`);
  assert.equal(row.platform, 'linux/amd64');
  const index = JSON.parse(readFileSync(join(busyboxFixture().ociLayout, 'index.json'), 'utf8')).manifests[0].digest;
  assert.equal(row.digest, index, 'a tag pointing at an index records the index digest');
  const table = kiln(root, ['images']).stdout;
  assert.match(table, /^REPOSITORY\s+TAG\s+IMAGE ID\s+PLATFORM/m);
  assert.match(table, new RegExp(`${reg.host}/library/busybox\\s+latest\\s+[0-9a-f]{12}\\s+linux/amd64`));
});

test('kiln run --rm prints the command output and removes the container', () => {
  const r = kiln(root, ['run', '--rm', image, 'echo', 'hi']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, 'hi\n');
  const containers = join(root, 'containers');
  assert.deepEqual(existsSync(containers) ? readdirSync(containers) : [], []);
});

test('kiln run passes the exit code through', () => {
  assert.equal(kiln(root, ['run', '--rm', image, 'sh', '-c', 'exit 42']).status, 42);
  assert.equal(kiln(root, ['run', '--rm', image, 'false']).status, 1);
});

test('kiln run uses the image config and -e/-w/-u like docker run', () => {
  // Default Cmd is `sh`, which reads its script from stdin.
  const viaCmd = kiln(root, ['run', '--rm', '-i', image], { input: 'echo from-stdin $PATH\n' });
  assert.equal(viaCmd.status, 0, viaCmd.stderr);
  assert.equal(viaCmd.stdout, 'from-stdin /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n');
  const r = kiln(root, ['run', '--rm', '-e', 'FOO=bar', '-w', '/var/spool', '-u', 'nobody', image, 'sh', '-c', 'echo "$FOO $(pwd) $(id -u):$(id -g) $HOME"']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, 'bar /var/spool 65534:65534 /nonexistent\n');
  const numeric = kiln(root, ['run', '--rm', '-u', '1234:5', image, 'id']);
  assert.match(numeric.stdout, /^uid=1234 gid=5/);
  const ep = kiln(root, ['run', '--rm', '--entrypoint', 'echo', image, 'a', 'b']);
  assert.equal(ep.stdout, 'a b\n');
});

test('kiln run: hostname is the container id and the network can be none', () => {
  const r = kiln(root, ['run', '--rm', '--network', 'none', image, 'sh', '-c', 'hostname; ls /sys/class/net']);
  assert.equal(r.status, 0, r.stderr);
  const [host, ...ifaces] = r.stdout.trim().split('\n');
  assert.match(host!, /^[0-9a-f]{12}$/);
  assert.deepEqual(ifaces.join(' ').split(/\s+/).filter(Boolean), ['lo']);
});

test('kiln run pulls a missing image by digest, and a memory limit is enforced', () => {
  const fresh = tempRoot();
  try {
    const index = JSON.parse(readFileSync(join(busyboxFixture().ociLayout, 'index.json'), 'utf8')).manifests[0].digest;
    const byDigest = `${reg.host}/library/busybox@${index}`;
    const r = kiln(fresh, ['run', '--rm', byDigest, 'true']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /Unable to find image/);
    const oom = kiln(fresh, ['run', '--rm', '--memory', '32m', byDigest, 'sh', '-c', 'head -c 200m /dev/zero | tail > /dev/null']);
    assert.notEqual(oom.status, 0);
    assert.match(oom.stderr, /out of memory/);
  } finally {
    rmSync(fresh, { recursive: true, force: true });
  }
});

test('kiln pull --platform linux/arm64 takes the arm64 entry of the index', () => {
  const r = kiln(root, ['pull', '--platform', 'linux/arm64', image]);
  assert.equal(r.status, 0, r.stderr);
  const rows = kiln(root, ['images', '--format', 'json']).stdout.trim().split('\n').map((l) => JSON.parse(l));
  const arm = rows.find((x) => x.name === image && x.platform === 'linux/arm64/v8');
  assert.ok(arm, JSON.stringify(rows));
  const run = kiln(root, ['run', '--rm', '--platform', 'linux/arm64', image, 'uname', '-m']);
  if (run.status === 0) {
    assert.equal(run.stdout, 'aarch64\n'); // an emulator is registered in binfmt_misc
  } else {
    const line = oneErrorLine(run.stderr);
    assert.match(line, /linux\/arm64/);
    assert.match(line, /qemu-aarch64/);
  }
});

test('bad input gives one clear line and a non-zero exit', async () => {
  const unknown = kiln(root, ['pull', `${reg.host}/library/nope:latest`]);
  assert.notEqual(unknown.status, 0);
  assert.match(oneErrorLine(unknown.stderr), /nope.*not found/);

  const unknownTag = kiln(root, ['run', '--rm', `${reg.host}/library/busybox:v9`, 'true']);
  assert.notEqual(unknownTag.status, 0);
  assert.match(unknownTag.stderr.trim().split('\n').at(-1)!, /busybox:v9.*not found/);

  const unreachable = kiln(root, ['pull', '127.0.0.1:1/x:latest']);
  assert.notEqual(unreachable.status, 0);
  assert.match(oneErrorLine(unreachable.stderr), /127\.0\.0\.1:1/);

  const badFlag = kiln(root, ['run', '--bogus', image]);
  assert.notEqual(badFlag.status, 0);
  assert.match(oneErrorLine(badFlag.stderr), /unknown flag: --bogus/);

  const badRef = kiln(root, ['pull', 'UPPER/Case']);
  assert.notEqual(badRef.status, 0);
  oneErrorLine(badRef.stderr);

  const missingCmd = kiln(root, ['run', '--rm', image, 'no-such-command']);
  assert.equal(missingCmd.status, 127);
  assert.match(missingCmd.stderr, /no-such-command/);

  // A registry that serves a malformed manifest.
  const srv: Server = createServer((req, res) => {
    if (req.url === '/v2/') return res.writeHead(200).end('{}');
    res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }).end('{"schemaVersion": 2, "layers": 7');
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  try {
    const port = (srv.address() as { port: number }).port;
    // kiln runs as a child process here so this process's event loop can serve it.
    const bad = await kilnAsync(root, ['pull', `127.0.0.1:${port}/bad:latest`]).done;
    assert.notEqual(bad.status, 0);
    assert.match(oneErrorLine(bad.stderr), /manifest/i);
  } finally {
    srv.close();
  }
});


test('kiln run passes SIGTERM to the container process', async () => {
  const run = kilnAsync(root, ['run', '--rm', image, 'sh', '-c', 'trap "echo got-term; exit 5" TERM; echo ready; while true; do sleep 0.1; done']);
  await waitFor(() => run.output().stdout.includes('ready'), { timeoutMs: 20_000, what: 'the container to print ready' });
  run.child.kill('SIGTERM');
  const r = await run.done;
  assert.equal(r.stdout, 'ready\ngot-term\n');
  assert.equal(r.status, 5);
});
