// Tag listing and manifest deletion (distribution spec "content discovery" and "content management").
// The cache writers use them: a reader lists the per-writer tags of a cache, a writer deletes the
// manifests its compaction dropped.
import type { ImageReference } from '../reference.js';
import { RegistryError } from './errors.js';
import { readBytes, type RegistryTransport } from './transport.js';

const MAX_TAG_PAGE_BYTES = 4 << 20;
const MAX_TAG_PAGES = 20;

/** Every tag of the repository, following `Link: <…>; rel="next"` pages (at most 20 pages). */
export async function listTags(t: RegistryTransport, ref: ImageReference): Promise<string[]> {
  const subject = `${ref.name} tags`;
  const tags: string[] = [];
  let next: string | undefined = 'tags/list?n=1000';
  for (let page = 0; next && page < MAX_TAG_PAGES; page++) {
    const path: string = next;
    const { body, link } = await t.retrying(ref.domain, async () => {
      const res = await t.send({ method: 'GET', ref, ...(path.startsWith('/') ? { path: '', url: path } : { path }), subject, kind: 'manifest' });
      const linkHeader = res.headers.link;
      return { body: await readBytes(res, MAX_TAG_PAGE_BYTES, true, subject), link: Array.isArray(linkHeader) ? linkHeader[0] : linkHeader };
    });
    let doc: { tags?: unknown };
    try {
      doc = JSON.parse(body.toString('utf8')) as { tags?: unknown };
    } catch {
      throw new RegistryError(`${subject}: the registry's tag list is not JSON`);
    }
    if (Array.isArray(doc.tags)) for (const tag of doc.tags) if (typeof tag === 'string') tags.push(tag);
    next = link ? /<([^>]+)>\s*;\s*rel="?next"?/.exec(link)?.[1] : undefined;
  }
  return tags;
}

/** Deletes a manifest by digest (with every tag naming it). */
export async function deleteManifest(t: RegistryTransport, ref: ImageReference, digest: string): Promise<void> {
  await t.retrying(ref.domain, async () => {
    const res = await t.send({ method: 'DELETE', ref, path: `manifests/${digest}`, subject: `${ref.name}@${digest}`, kind: 'manifest', push: true });
    await res.body.dump();
  });
}
