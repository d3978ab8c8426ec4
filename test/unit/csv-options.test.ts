// base/csv-options.ts: buildx's `key=value,…` grammar (one CSV record as Go's encoding/csv reads it),
// shared by --output, --cache-to/--cache-from, --secret, --attest and RUN --mount.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { csvFields, parseCsvOptions } from '../../base/csv-options.js';
import { FlagError, InputSyntaxError } from '../../base/errors.js';
import { parseCacheTo, parseOutput, parseSecret } from '../../src/cli/build-options.js';
import { parseMount } from '../../frontends/dockerfile/run-mount.js';
import { parseAttestFlags } from '../../src/attest/flags.js';

test('CSV fields: quoted fields keep commas, "" is a quote, empty fields count', () => {
  assert.deepEqual(csvFields('a,b,c'), ['a', 'b', 'c']);
  assert.deepEqual(csvFields('"a,b",c'), ['a,b', 'c']);
  assert.deepEqual(csvFields('"say ""hi""",x'), ['say "hi"', 'x']);
  assert.deepEqual(csvFields(''), ['']);
  assert.deepEqual(csvFields('a,'), ['a', '']);
  assert.deepEqual(csvFields(',,'), ['', '', '']);
  assert.deepEqual(csvFields('""'), ['']);
});

test('CSV errors are Go\'s, with the column buildx reports', () => {
  const err = (line: string, message: string) => assert.throws(() => csvFields(line), (e: Error) => e instanceof InputSyntaxError && e.message === message, line);
  // `docker buildx build --secret 'id=x,src="/etc/hostname"'` says: column 10: bare " in non-quoted-field.
  err('id=x,src="/etc/hostname"', 'parse error on line 1, column 10: bare " in non-quoted-field');
  err('"abc', 'parse error on line 1, column 5: extraneous or missing " in quoted-field');
  err('"ab"c,d', 'parse error on line 1, column 5: extraneous or missing " in quoted-field');
});

test('options: keys trimmed and lower-cased, values as given, the first = splits', () => {
  assert.deepEqual(parseCsvOptions('--output', 'Type=local, Dest =out dir,x=a=b'), { type: 'local', dest: 'out dir', x: 'a=b' });
  assert.deepEqual(parseCsvOptions('--output', '"type=image","name=a,b",push=true'), { type: 'image', name: 'a,b', push: 'true' });
  const bad = (text: string, message: string) => assert.throws(() => parseCsvOptions('--output', text), (e: Error) => e instanceof FlagError && e.message === message, text);
  bad('type=local,dest', 'invalid value "type=local,dest" for flag --output: "dest" is not key=value');
  bad('type=local,', 'invalid value "type=local," for flag --output: "" is not key=value');
  bad('=x', 'invalid value "=x" for flag --output: "=x" is not key=value');
  bad('type=local,dest="o"', 'invalid value "type=local,dest="o"" for flag --output: parse error on line 1, column 17: bare " in non-quoted-field');
});

test('the flags use it: a quoted field carries commas into -o name=, --secret src=, --cache-to ref=', () => {
  const out = parseOutput('type=image,"name=r/a:1,r/b:2",push=true', []);
  assert.ok(out.type === 'image' && out.push);
  assert.deepEqual((out as { names: string[] }).names, ['r/a:1', 'r/b:2']);
  assert.throws(() => parseSecret('id=x,src="/etc/hostname"'), (e: Error) => e instanceof FlagError && e.message === 'invalid value "id=x,src="/etc/hostname"" for flag --secret: parse error on line 1, column 10: bare " in non-quoted-field');
  assert.deepEqual(parseSecret('"id=a,b",src=/etc/hostname').id, 'a,b');
  assert.equal(parseCacheTo('type=inline').type, 'inline');
  assert.throws(() => parseCacheTo('type=local,dest'), /for flag --cache-to: "dest" is not key=value/);
  assert.deepEqual(parseAttestFlags(undefined, undefined, ['type=provenance,mode=max']), parseAttestFlags(undefined, 'mode=max'));
  assert.throws(() => parseAttestFlags(undefined, undefined, ['type=sbom,"x']), /for flag --attest: parse error on line 1, column 13: extraneous or missing " in quoted-field/);
});

test('RUN --mount reads the same grammar, with its own error prefix', () => {
  const m = parseMount('type=bind,"source=a,b",target=/x', (w) => w);
  assert.equal(m.source, 'a,b');
  assert.equal(m.target, '/x');
  assert.throws(() => parseMount('type=bind,source="a"', (w) => w), (e: Error) => e instanceof InputSyntaxError && e.message === 'failed to parse csv: parse error on line 1, column 18: bare " in non-quoted-field');
});
