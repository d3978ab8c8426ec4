// `oci-layout://DIR[:TAG][@DIGEST]` references (buildx --build-context NAME=oci-layout://…).

export interface LayoutRef {
  dir: string;
  tag?: string;
  digest?: string;
}

export function parseLayoutRef(text: string): LayoutRef {
  let rest = text.replace(/^oci-layout:\/\//, '');
  let digest: string | undefined;
  const at = rest.lastIndexOf('@');
  if (at > 0 && /^sha256:[a-f0-9]{64}$/.test(rest.slice(at + 1))) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
  }
  const colon = rest.lastIndexOf(':');
  if (colon > 0 && !rest.slice(colon + 1).includes('/')) return { dir: rest.slice(0, colon), tag: rest.slice(colon + 1), digest };
  return { dir: rest, digest };
}
