import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseWwwAuthenticate, TokenCache } from '../../base/oci/registry/auth.js';
import { insecureRegistriesFromEnv, registryEndpoint } from '../../base/oci/registry/endpoint.js';

test('WWW-Authenticate challenges parse like distribution/containerd', () => {
  const cases: Array<[string, Array<{ scheme: string; params: Record<string, string> }>]> = [
    [
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"',
      [{ scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/busybox:pull' } }],
    ],
    ['Basic realm="kiln-test"', [{ scheme: 'basic', params: { realm: 'kiln-test' } }]],
    [
      'Bearer realm="https://r/t", scope="repository:a:pull,push repository:b:pull"',
      [{ scheme: 'bearer', params: { realm: 'https://r/t', scope: 'repository:a:pull,push repository:b:pull' } }],
    ],
    ['Bearer realm=https://r/t,service=svc', [{ scheme: 'bearer', params: { realm: 'https://r/t', service: 'svc' } }]],
    ['bearer REALM="x\\"y"', [{ scheme: 'bearer', params: { realm: 'x"y' } }]],
    [
      'Basic realm="b", Bearer realm="https://t", service="s"',
      [
        { scheme: 'basic', params: { realm: 'b' } },
        { scheme: 'bearer', params: { realm: 'https://t', service: 's' } },
      ],
    ],
    ['Negotiate', [{ scheme: 'negotiate', params: {} }]],
    ['', []],
  ];
  for (const [header, expected] of cases) assert.deepEqual(parseWwwAuthenticate(header), expected, header);
});

test('token cache keys by realm, service and scope and expires tokens', () => {
  const c = new TokenCache();
  const now = 1_000_000;
  c.set('r', 's', 'repository:a:pull', 'tok-a', 300, now);
  assert.equal(c.get('r', 's', 'repository:a:pull', now + 1000), 'tok-a');
  assert.equal(c.get('r', 's', 'repository:b:pull', now), undefined);
  assert.equal(c.get('r', 'other', 'repository:a:pull', now), undefined);
  assert.equal(c.get('r', 's', 'repository:a:pull', now + 300_000), undefined, 'expired (with margin)');
  c.set('r', 's', 'x', 'short', 5, now);
  assert.equal(c.get('r', 's', 'x', now + 45_000), 'short', 'lifetimes under 60 s count as 60 s');
});

test('registry endpoints: Docker Hub API host, HTTP only for loopback and insecure registries', () => {
  const cases: Array<[string, string[], string]> = [
    ['docker.io', [], 'https://registry-1.docker.io'],
    ['ghcr.io', [], 'https://ghcr.io'],
    ['127.0.0.1:5000', [], 'http://127.0.0.1:5000'],
    ['127.1.2.3:5000', [], 'http://127.1.2.3:5000'],
    ['localhost:5000', [], 'http://localhost:5000'],
    ['localhost', [], 'http://localhost'],
    ['[::1]:5000', [], 'http://[::1]:5000'],
    ['registry.lan:5000', [], 'https://registry.lan:5000'],
    ['registry.lan:5000', ['registry.lan:5000'], 'http://registry.lan:5000'],
    ['registry.lan:5000', ['registry.lan'], 'http://registry.lan:5000'],
    ['registry.lan:5000', ['registry.lan:6000'], 'https://registry.lan:5000'],
    ['127.0.0.1.example.com', [], 'https://127.0.0.1.example.com'],
  ];
  for (const [domain, insecure, origin] of cases) assert.equal(registryEndpoint(domain, insecure).origin, origin, `${domain} ${insecure}`);
  assert.deepEqual(insecureRegistriesFromEnv({ KILN_INSECURE_REGISTRIES: ' a.lan:5000, http://b.lan/ ,,' }), ['a.lan:5000', 'b.lan']);
  assert.deepEqual(insecureRegistriesFromEnv({}), []);
});
