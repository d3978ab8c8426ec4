// buildx's dockerfile.v0 frontend attributes (build-arg:*, label:*, target, platform, no-cache, …) read
// into the parts of a kiln build request they decide. Pure: no session, no disk.
import { UserError } from '../../base/errors.js';
import { parsePlatform } from '../../base/oci/platform.js';
import type { Platform } from '../../base/oci/types.js';

export interface DockerfileAttrs {
  filename: string;
  target?: string;
  buildArgs: Record<string, string>;
  labels: Record<string, string>;
  platforms: Platform[];
  noCache: boolean;
  noCacheFilter: string[];
  pull: boolean;
  sourceDateEpoch?: number;
  extraHosts: { host: string; ip: string }[];
  network?: 'none' | 'host';
  /** context:NAME attrs: an image, or a dir the client shares under that name. */
  namedContexts: Record<string, { kind: 'image'; ref: string } | { kind: 'local'; dirName: string }>;
  provenance?: 'min' | 'max';
  sbom: boolean;
  /** --call / requestid: a subrequest (kiln answers frontend.lint, --call=check). */
  subrequest?: string;
}

/** The Dockerfile frontend image references that mean "the Dockerfile frontend": kiln uses its own. */
const DOCKERFILE_FRONTEND = /^(?:(?:docker\.io\/)?docker\/dockerfile(?:-upstream)?)(?::[A-Za-z0-9._-]+)?(?:@sha256:[a-f0-9]{64})?$/;

export class FrontendImageError extends UserError {}

/** `# syntax=` or BUILDKIT_SYNTAX naming another frontend image is refused in one line. */
export function checkSyntax(ref: string | undefined, where: string): void {
  if (!ref) return;
  const r = ref.trim();
  if (DOCKERFILE_FRONTEND.test(r)) return;
  throw new FrontendImageError(`${where}: frontend image "${r}" cannot be run by this builder (kiln runs its built-in Dockerfile frontend for docker/dockerfile only)`);
}

/** The `# syntax=` directive of a Dockerfile, if its leading comment lines have one. */
export function syntaxDirective(text: string): string | undefined {
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line.startsWith('#')) return undefined;
    const m = /^#\s*syntax\s*=\s*(\S+)\s*$/i.exec(line);
    if (m) return m[1];
  }
  return undefined;
}

export function readAttrs(attrs: Record<string, string>): DockerfileAttrs {
  const out: DockerfileAttrs = {
    filename: attrs.filename || 'Dockerfile',
    target: attrs.target || undefined,
    buildArgs: {},
    labels: {},
    platforms: [],
    noCache: false,
    noCacheFilter: [],
    pull: attrs['image-resolve-mode'] === 'pull',
    extraHosts: [],
    namedContexts: {},
    sbom: false,
  };
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith('build-arg:')) out.buildArgs[k.slice('build-arg:'.length)] = v;
    else if (k.startsWith('label:')) out.labels[k.slice('label:'.length)] = v;
    else if (k.startsWith('context:')) {
      const name = k.slice('context:'.length);
      if (v.startsWith('docker-image://')) out.namedContexts[name] = { kind: 'image', ref: v.slice('docker-image://'.length) };
      else if (v.startsWith('local:')) out.namedContexts[name] = { kind: 'local', dirName: v.slice('local:'.length) };
      else throw new UserError(`--build-context ${name}=${v}: this builder takes images (docker-image://) and local dirs`);
    }
  }
  if (attrs.platform) out.platforms = attrs.platform.split(',').filter(Boolean).map((p) => parsePlatform(p.trim()));
  if ('no-cache' in attrs) {
    if (attrs['no-cache'] === '') out.noCache = true;
    else out.noCacheFilter = attrs['no-cache'].split(',').filter(Boolean);
  }
  const epoch = out.buildArgs.SOURCE_DATE_EPOCH;
  if (epoch !== undefined && epoch !== '') {
    if (!/^[0-9]+$/.test(epoch)) throw new UserError(`invalid SOURCE_DATE_EPOCH "${epoch}": expected seconds since 1970`);
    out.sourceDateEpoch = Number(epoch);
  }
  for (const h of (attrs['add-hosts'] ?? '').split(',').filter(Boolean)) {
    const i = h.indexOf('=') >= 0 ? h.indexOf('=') : h.indexOf(':');
    if (i <= 0) throw new UserError(`--add-host ${h}: expected HOST=IP`);
    out.extraHosts.push({ host: h.slice(0, i), ip: h.slice(i + 1) });
  }
  const net = attrs['force-network-mode'];
  if (net === 'none' || net === 'host') out.network = net;
  const prov = attrs['attest:provenance'];
  if (prov !== undefined) {
    const fields = Object.fromEntries(prov.split(',').map((f) => [f.split('=')[0], f.split('=').slice(1).join('=')]));
    if (fields.disabled !== 'true' && fields.mode !== undefined) out.provenance = fields.mode === 'max' ? 'max' : 'min';
  }
  const sbom = attrs['attest:sbom'];
  out.sbom = sbom !== undefined && !/(^|,)disabled=true(,|$)/.test(sbom);
  if (attrs.requestid && attrs.requestid.startsWith('frontend.')) out.subrequest = attrs.requestid;
  checkSyntax(out.buildArgs.BUILDKIT_SYNTAX, 'build-arg BUILDKIT_SYNTAX');
  return out;
}

/** Secret ids a Dockerfile's RUN --mount=type=secret flags name (id=, or the target's base name). */
export function secretIds(text: string): string[] {
  const ids = new Set<string>();
  for (const m of text.matchAll(/--mount=([^\s\\]+)/g)) {
    const fields = Object.fromEntries(m[1].split(',').map((f) => [f.split('=')[0].toLowerCase(), f.split('=').slice(1).join('=')]));
    if (fields.type !== 'secret') continue;
    const id = fields.id || (fields.target ?? fields.dst ?? fields.destination ?? '').split('/').pop();
    if (id) ids.add(id);
  }
  return [...ids];
}
