// Secrets reach the RUN that mounts them (as a file with its own mode and owner, or as an environment
// variable) and nothing else: not a layer, not the image config or history, not the progress output,
// not any file of kiln's state dir (cache db, snapshots, blobs), not an exported cache.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, readdirSync, lstatSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { buildSuite } from '../helpers/suite.js';
import { kilnBuild, errorLine } from '../helpers/build.js';

const suite = buildSuite();

/** Files under dir whose bytes (or gunzipped bytes) contain needle. */
function filesContaining(dir: string, needle: string): string[] {
  const hits: string[] = [];
  const want = Buffer.from(needle);
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      const st = lstatSync(p);
      if (st.isDirectory()) walk(p);
      else if (st.isFile()) {
        const data = readFileSync(p);
        let found = data.includes(want);
        if (!found && data[0] === 0x1f && data[1] === 0x8b) {
          try { found = gunzipSync(data).includes(want); } catch { /* not gzip after all */ }
        }
        if (found) hits.push(p);
      }
    }
  };
  walk(dir);
  return hits;
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

test('a secret is used by its RUN and appears nowhere else', () => {
  const fileSecret = `file-secret-${randomBytes(20).toString('hex')}`;
  const envSecret = `env-secret-${randomBytes(20).toString('hex')}`;
  // A control: a value a RUN writes on purpose must be found by the same searches.
  const control = `control-${randomBytes(20).toString('hex')}`;
  const secretFile = join(suite.outs, 'secret-src');
  writeFileSync(secretFile, fileSecret);
  const dest = join(suite.outs, 'secret-image.tar');
  const cacheDir = join(suite.outs, 'secret-cache');
  const df = [
    `FROM ${suite.base}`,
    'RUN --mount=type=secret,id=tok,target=/etc/app/token,mode=0440,uid=1000,gid=1000,required=true stat -c "%a %u %g" /etc/app/token > /perm && sha256sum /etc/app/token | cut -c1-64 > /file-hash',
    'RUN --mount=type=secret,id=envtok,env=TOKEN printf %s "$TOKEN" | sha256sum | cut -c1-64 > /env-hash',
    'RUN --mount=type=secret,id=tok cat /run/secrets/tok | wc -c > /default-target-size',
    'RUN --mount=type=secret,id=absent ls /run/secrets > /optional-listing 2>&1; true',
    `RUN echo ${control} > /control`,
  ].join('\n') + '\n';
  const r = kilnBuild(
    suite.root,
    { Dockerfile: df },
    [
      '--progress', 'rawjson',
      '--secret', `id=tok,src=${secretFile}`,
      '--secret', 'id=envtok,env=KILN_TEST_SECRET',
      '-o', `type=oci,dest=${dest},compression=uncompressed`,
      '--cache-to', `type=local,dest=${cacheDir},mode=max`,
    ],
    { env: { KILN_TEST_SECRET: envSecret } },
  );
  assert.equal(r.status, 0, r.stderr);
  // The RUNs saw the secrets, as a file with the asked mode and owner, and as an env var.
  const out = join(suite.outs, 'secret-rootfs');
  const local = kilnBuild(suite.root, { Dockerfile: df }, ['--secret', `id=tok,src=${secretFile}`, '--secret', 'id=envtok,env=KILN_TEST_SECRET', '-o', `type=local,dest=${out}`], {
    env: { KILN_TEST_SECRET: envSecret },
  });
  assert.equal(local.status, 0, local.stderr);
  assert.equal(readFileSync(join(out, 'perm'), 'utf8'), '440 1000 1000\n');
  assert.equal(readFileSync(join(out, 'file-hash'), 'utf8').trim(), sha256(fileSecret));
  assert.equal(readFileSync(join(out, 'env-hash'), 'utf8').trim(), sha256(envSecret));
  assert.equal(readFileSync(join(out, 'default-target-size'), 'utf8').trim(), String(fileSecret.length));
  assert.ok(readFileSync(dest).includes(Buffer.from(control)));
  assert.notDeepEqual(filesContaining(suite.root, control), []);
  assert.notDeepEqual(filesContaining(cacheDir, control), []);
  // Nowhere else: the image (layers, config, history), progress, the state dir, the exported cache.
  for (const secret of [fileSecret, envSecret]) {
    assert.ok(!readFileSync(dest).includes(Buffer.from(secret)), 'image archive');
    assert.ok(!r.stderr.includes(secret) && !r.stdout.includes(secret), 'progress output');
    assert.ok(!local.stderr.includes(secret), 'plain progress output');
    assert.deepEqual(filesContaining(suite.root, secret), [], 'state dir');
    assert.deepEqual(filesContaining(cacheDir, secret), [], 'exported cache');
    assert.deepEqual(filesContaining(out, secret), [], 'root filesystem');
  }
  // The secret's mount points left nothing in the image.
  assert.deepEqual(readdirSync(join(out, 'etc')).sort(), ['group', 'passwd']);
  assert.ok(!readdirSync(out).includes('run') || readdirSync(join(out, 'run')).length === 0);
});

test('a required secret that was not given is a one-line error naming it', () => {
  const r = kilnBuild(suite.root, { Dockerfile: `FROM ${suite.base}\nRUN --mount=type=secret,id=deploy_key,required=true true\n` });
  assert.notEqual(r.status, 0);
  assert.match(errorLine(r), /Dockerfile:2: secret deploy_key: not found \(pass it with --secret id=deploy_key,src=FILE\)/);
  const env = kilnBuild(suite.root, { Dockerfile: `FROM ${suite.base}\n` }, ['--secret', 'id=x,env=KILN_TEST_UNSET_VAR']);
  assert.notEqual(env.status, 0);
  assert.match(errorLine(env), /--secret id=x: environment variable KILN_TEST_UNSET_VAR is not set/);
});

test('secrets are staged in memory and removed after their RUN; a missing optional env secret leaves the variable unset', () => {
  const before = readdirSync('/dev/shm').filter((n) => n.startsWith('kiln-secret-'));
  const secretFile = join(suite.outs, 'staged');
  writeFileSync(secretFile, 'staged-value');
  const dest = join(suite.outs, 'optional-env');
  const r = kilnBuild(
    suite.root,
    { Dockerfile: `FROM ${suite.base}\nRUN --mount=type=secret,id=staged grep /run/secrets/staged /proc/self/mountinfo | sed 's/.* - \\([^ ]*\\) .*/\\1/' > /fstype\nRUN --mount=type=secret,id=nothere,env=MAYBE echo "\${MAYBE:-unset}" > /maybe\n` },
    ['--secret', `id=staged,src=${secretFile}`, '-o', `type=local,dest=${dest}`],
  );
  assert.equal(r.status, 0, r.stderr);
  assert.equal(readFileSync(join(dest, 'fstype'), 'utf8'), 'tmpfs\n', 'the secret file lives on a tmpfs');
  assert.equal(readFileSync(join(dest, 'maybe'), 'utf8'), 'unset\n');
  const after = readdirSync('/dev/shm').filter((n) => n.startsWith('kiln-secret-') && !before.includes(n));
  assert.deepEqual(after, []);
});
